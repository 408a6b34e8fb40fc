#!/usr/bin/env bash
# Puts the ONNX Runtime shared library from the PyPI `onnxruntime` wheel into .ort/, where
# synthscan (and `cargo run` / `cargo test`, via .cargo/config.toml) finds it.
# No other download source is used: ort's own binary download is disabled in Cargo.toml.
set -euo pipefail
ORT_VERSION="${ORT_VERSION:-1.31.1}"
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.ort"
lib="libonnxruntime.so.$ORT_VERSION"
if [ -f "$dest/$lib" ]; then
  echo "ONNX Runtime $ORT_VERSION already in $dest"
  exit 0
fi
py="${PYTHON:-python3}"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
"$py" -m pip download -q --no-deps --only-binary=:all: "onnxruntime==$ORT_VERSION" -d "$tmp"
wheel="$(ls "$tmp"/onnxruntime-*.whl)"
mkdir -p "$dest"
"$py" - "$wheel" "$dest" "$lib" <<'PY'
import sys, zipfile, shutil, os
wheel, dest, lib = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    member = next(n for n in z.namelist() if n.endswith("capi/" + lib))
    with z.open(member) as src, open(os.path.join(dest, lib), "wb") as out:
        shutil.copyfileobj(src, out)
PY
echo "ONNX Runtime $ORT_VERSION installed in $dest/$lib"
