#!/usr/bin/env bash
# One-time set-up on a fresh Debian 12 machine: system packages the build links against, and
# the ONNX Runtime library from the PyPI onnxruntime wheel (scripts/setup-ort.sh).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
need=()
# chromium and chromium-driver: the test suite drives the page of `serve` in a real browser;
# sip-tester (SIPp): it drives `siprec` as a real SIP recording client; openssl: its s_client is
# the TLS client of `siprec`'s SIP over TLS; ffmpeg: its SRTP sender encrypts a recorded stream.
for pkg in pkg-config libasound2-dev libfontconfig1-dev libfreetype-dev fonts-dejavu-core python3-pip \
    chromium chromium-driver sip-tester openssl ffmpeg; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
# python3-pip is only needed where no pip is on the PATH already.
if python3 -m pip --version >/dev/null 2>&1; then
  need=("${need[@]/python3-pip}")
fi
need=(${need[@]+"${need[@]}"})
if [ ${#need[@]} -gt 0 ]; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${need[@]}"
fi
"$root/scripts/setup-ort.sh"
# The test command checks formatting and lints first; toolchains installed without them get the components.
for tool in clippy:clippy rustfmt:fmt; do
  if ! cargo "${tool#*:}" --version >/dev/null 2>&1 && command -v rustup >/dev/null 2>&1; then
    rustup component add "${tool%%:*}"
  fi
done
