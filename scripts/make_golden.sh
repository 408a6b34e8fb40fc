#!/usr/bin/env bash
# Regenerates the golden reference files in tests/fixtures/golden/:
#   speech16k.features.npy         float32 [299, 64] mel features of tests/fixtures/speech_16000.wav
#   speech16k.energy.npy           float32 [299]     frame energy (dB) of the same
#   speech16k.linear.features.npy  float32 [299, 64] same with the "linear" filterbank
#   test_model_input.npy           float32 [3, 128, 64] windows of the mel features at frames 0, 64, 128
#   test_model_logits.npy          float32 [3] onnxruntime output of models/test/synthscan-test.onnx
# (also rebuilds models/test/ with scripts/make_test_model.py).
# Needs python with numpy, onnx, onnxruntime: $PYTHON, else training/.venv, venv/, python3.
# Run scripts/make_fixtures.sh first if tests/fixtures/speech_16000.wav is missing.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  for p in "$ROOT/training/.venv/bin/python" "$ROOT/venv/bin/python" python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import numpy, onnx, onnxruntime' 2>/dev/null; then
      PYTHON="$p"; break
    fi
  done
fi
PY="${PYTHON:?no python with numpy+onnx+onnxruntime found; set PYTHON}"
FIX="$ROOT/tests/fixtures"
GOLD="$FIX/golden"
WAV="$FIX/speech_16000.wav"
[ -f "$WAV" ] || { echo "make_golden: $WAV missing (run scripts/make_fixtures.sh)" >&2; exit 1; }
mkdir -p "$GOLD"

cd "$ROOT/training"
"$PY" -m synthscan_train.features_ref "$WAV" "$GOLD/speech16k" --filterbank mel
"$PY" -m synthscan_train.features_ref "$WAV" "$GOLD/speech16k.linear" --filterbank linear
rm -f "$GOLD/speech16k.linear.energy.npy"   # identical to speech16k.energy.npy

cd "$ROOT"
"$PY" scripts/make_test_model.py --out-dir "$ROOT/models/test"
"$PY" - "$GOLD" <<'PYEOF'
import sys
import numpy as np
gold = sys.argv[1]
f = np.load(f"{gold}/speech16k.features.npy")
wins = []
for start in (0, 64, 128):
    w = np.zeros((128, f.shape[1]), dtype=np.float32)
    part = f[start:start + 128]
    w[: part.shape[0]] = part
    wins.append(w)
np.save(f"{gold}/test_model_input.npy", np.stack(wins).astype(np.float32))
PYEOF
"$PY" scripts/onnx_reference.py models/test/synthscan-test.onnx "$GOLD/test_model_input.npy" \
  --out "$GOLD/test_model_logits.npy" --check
ls -l "$GOLD"
