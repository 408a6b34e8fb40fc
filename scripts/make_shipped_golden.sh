#!/usr/bin/env bash
# Reference logits of the SHIPPED model (models/synthscan.onnx) from Python onnxruntime, for the test
# that the Rust scorer gives the same numbers on the same features. Rerun after shipping a model
# (training/run.sh does):
#   tests/fixtures/golden/shipped_model_input.npy   float32 [3, frames, bins] windows of the features
#                                                   `synthscan features` extracts from samples/synthetic_robocall.wav
#   tests/fixtures/golden/shipped_model_logits.npy  float32 [3] onnxruntime output
#   tests/fixtures/golden/shipped_model.sha256      the model these logits belong to
# Needs target/release/synthscan and python with numpy + onnxruntime ($PYTHON, else training/.venv,
# python3).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
if [ -z "${PYTHON:-}" ]; then
  for p in "$ROOT/training/.venv/bin/python" python3; do
    if command -v "$p" >/dev/null && "$p" -c 'import numpy, onnxruntime' 2>/dev/null; then
      PYTHON="$p"; break
    fi
  done
fi
PY="${PYTHON:?no python with numpy+onnxruntime found; set PYTHON}"
GOLD="$ROOT/tests/fixtures/golden"
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
"$ROOT/target/release/synthscan" features --model "$ROOT/models/synthscan.json" --out-dir "$TMP" \
  "$ROOT/samples/synthetic_robocall.wav" >/dev/null
"$PY" - "$TMP/synthetic_robocall.features.npy" "$ROOT/models/synthscan.json" "$GOLD/shipped_model_input.npy" <<'PYEOF'
import json, sys
import numpy as np
f = np.load(sys.argv[1]).astype(np.float32)
frames = json.load(open(sys.argv[2]))["window"]["frames"]
# three windows spread over the clip
starts = [0, (len(f) - frames) // 2, len(f) - frames]
np.save(sys.argv[3], np.stack([f[s:s + frames] for s in starts]).astype(np.float32))
PYEOF
"$PY" "$ROOT/scripts/onnx_reference.py" "$ROOT/models/synthscan.onnx" "$GOLD/shipped_model_input.npy" \
  --out "$GOLD/shipped_model_logits.npy"
sha256sum "$ROOT/models/synthscan.onnx" | cut -d' ' -f1 > "$GOLD/shipped_model.sha256"
ls -l "$GOLD"/shipped_model*
