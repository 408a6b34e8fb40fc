#!/usr/bin/env bash
# The recipe (training/recipe.toml) -> the shipped model (models/synthscan.{onnx,json}, models/MODEL_CARD.md).
#   PY=/path/to/venv/bin/python training/run.sh      (from anywhere; PY defaults to the python on the PATH)
# The data sets of recipe.toml [data] are read when they have been made (training/README.md, "Data").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-python3}
recipe() { (cd training && "$PY" -m synthscan_train.recipe "$1"); }
# the binary loads ONNX Runtime from .ort/ (from the PyPI wheel; a no-op when already there)
PYTHON="$PY" scripts/setup-ort.sh
cargo build --release
cd training
# is the data the recorded data (training/data_sums)? A difference is reported, not fatal: other data make another model
"$PY" -m synthscan_train.datasums check
# 1. tables, augmented copies, phone-channel dev copies, Rust features
nice -n 5 "$PY" -m synthscan_train.prepare
# 2. the base run, then its fine-tune on the train files read at <= 8 kHz (recipe.toml [train], [finetune])
mkdir -p .cache/runs
base=.cache/runs/base
nice -n 5 "$PY" -m synthscan_train.train --out "$base" > "$base.log" 2>&1
nice -n 5 "$PY" -m synthscan_train.train --init "$base/model.pt" --narrowband --swa 0 \
    --epochs "$(recipe finetune.epochs)" --lr "$(recipe finetune.lr)" --out "${base}_nb" > "${base}_nb.log" 2>&1
# 3. export, Platt calibration on the held-out train slice, thresholds through the Rust binary (recipe.toml [ship]);
#    installs models/synthscan.{onnx,json}
nice -n 5 "$PY" -m synthscan_train.ship --run "${base}_nb"
# reference logits of the new model for the Rust-vs-onnxruntime test
PYTHON="$PY" ../scripts/make_shipped_golden.sh
# 4. measure the shipped pair through the Rust binary; write the model card
nice -n 5 "$PY" -m synthscan_train.evaluate
"$PY" -m synthscan_train.card
