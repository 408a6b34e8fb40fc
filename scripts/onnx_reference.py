#!/usr/bin/env python3
"""Run an ONNX model with Python onnxruntime on a saved input, for golden comparisons.

Usage: python scripts/onnx_reference.py MODEL.onnx INPUT.npy [--out LOGITS.npy]
                                        [--input features] [--output logit] [--check]

INPUT.npy: float32 [batch, frames, bins] (converted to float32 if needed).
Prints one logit per line (repr of the float32 value); --out saves them as float32 .npy.
--check also compares against the numpy formula of the test model (make_test_model.py).
"""

import argparse
import os
import sys

import numpy as np
import onnxruntime as ort


def run(model_path, x, input_name="features", output_name="logit"):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(model_path, sess_options=opts, providers=["CPUExecutionProvider"])
    return sess.run([output_name], {input_name: np.ascontiguousarray(x, dtype=np.float32)})[0]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("input")
    ap.add_argument("--out")
    ap.add_argument("--input-name", default="features")
    ap.add_argument("--output-name", default="logit")
    ap.add_argument("--check", action="store_true")
    args = ap.parse_args()

    x = np.load(args.input)
    y = run(args.model, x, args.input_name, args.output_name)
    for v in np.asarray(y).reshape(-1):
        print(repr(float(v)))
    if args.out:
        np.save(args.out, np.asarray(y, dtype=np.float32))
    if args.check:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from make_test_model import numpy_logits
        ref = numpy_logits(x)
        err = float(np.max(np.abs(ref - y))) if y.size else 0.0
        print(f"check: max |onnxruntime - numpy| = {err:.3g}", file=sys.stderr)
        if not err < 1e-4:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
