#!/usr/bin/env bash
# Package a trained run WITHOUT shipping it and measure it through the Rust binary:
#   training/candidate.sh .cache/runs_v2/NAME      -> RUN/pkg/synthscan.{onnx,json}, RUN/pkg/results/dev_eval.*
# THRESHOLD_ON=both picks one threshold on dev clean and phone; THRESHOLD_ON=split one per input band (wideband / <= 8 kHz), as run.sh; THRESHOLD_GENUINE=wide counts genuine.py's dev too; BRANCH=full exports only a dual model's full-band branch.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PY:-/work/venv/bin/python}
run=$1
nice -n 5 "$PY" -m synthscan_train.ship --run "$run" --out-dir "$run/pkg" ${THRESHOLD_ON:+--threshold-on $THRESHOLD_ON} ${THRESHOLD_GENUINE:+--threshold-genuine $THRESHOLD_GENUINE} ${BRANCH:+--branch $BRANCH}
nice -n 5 "$PY" evaluate.py --model "$run/pkg/synthscan.json" --out "$run/pkg/results"
