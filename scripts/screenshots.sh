#!/usr/bin/env bash
# The README's screenshots of the page, made from the real page: the browser tests drive
# headless Chromium through an upload of a shipped sample and through the live view (its fake
# microphone playing a shipped sample), and save what the browser shows into docs/screenshots.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
SYNTHSCAN_SCREENSHOTS="$root/docs/screenshots" cargo test --locked --test it browser:: -- --test-threads=1
ls -l docs/screenshots
