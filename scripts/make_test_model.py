#!/usr/bin/env python3
"""Build the deterministic synthscan TEST model (not a detector) and its manifest.

    logit = 0.8 * (mean(features[:, :, 40:64]) - mean(features[:, :, 0:24])) + 4.0

i.e. high-band minus low-band mean log-mel energy, per batch item.
Input  "features" float32 [batch, 128, 64] (batch dynamic), output "logit" float32 [batch].
Built with onnx.helper only (no training), opset 17, IR version 8.

Usage: python scripts/make_test_model.py [--out-dir models/test]
Writes synthscan-test.onnx and synthscan-test.json (manifest with the file's sha256).
"""

import argparse
import hashlib
import json
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

NAME = "synthscan-test"
FRAMES, BINS = 128, 64
LOW = (0, 24)    # bins 0..23
HIGH = (40, 64)  # bins 40..63
SCALE, OFFSET = 0.8, 4.0

FEATURES = {"sample_rate_hz": 16000, "n_fft": 512, "win_len": 400, "hop_len": 160,
            "filterbank": "mel", "n_bins": BINS, "f_min_hz": 20.0, "f_max_hz": 8000.0,
            "log_floor": 1e-6}


def const(name, values, dtype):
    return numpy_helper.from_array(np.asarray(values, dtype=dtype), name=name)


def build_model() -> onnx.ModelProto:
    inits = [
        const("low_start", [LOW[0]], np.int64), const("low_end", [LOW[1]], np.int64),
        const("high_start", [HIGH[0]], np.int64), const("high_end", [HIGH[1]], np.int64),
        const("axis_bins", [2], np.int64),
        const("squeeze_axes", [1, 2], np.int64),
        const("scale", SCALE, np.float32), const("offset", OFFSET, np.float32),
    ]
    nodes = [
        helper.make_node("Slice", ["features", "high_start", "high_end", "axis_bins"], ["high"], name="slice_high"),
        helper.make_node("Slice", ["features", "low_start", "low_end", "axis_bins"], ["low"], name="slice_low"),
        # opset 17: ReduceMean takes axes as an attribute.
        helper.make_node("ReduceMean", ["high"], ["high_mean"], axes=[1, 2], keepdims=1, name="mean_high"),
        helper.make_node("ReduceMean", ["low"], ["low_mean"], axes=[1, 2], keepdims=1, name="mean_low"),
        helper.make_node("Sub", ["high_mean", "low_mean"], ["diff"], name="sub"),
        helper.make_node("Mul", ["diff", "scale"], ["scaled"], name="mul"),
        helper.make_node("Add", ["scaled", "offset"], ["logit_b11"], name="add"),
        helper.make_node("Squeeze", ["logit_b11", "squeeze_axes"], ["logit"], name="squeeze"),
    ]
    graph = helper.make_graph(
        nodes, NAME,
        inputs=[helper.make_tensor_value_info("features", TensorProto.FLOAT, ["batch", FRAMES, BINS])],
        outputs=[helper.make_tensor_value_info("logit", TensorProto.FLOAT, ["batch"])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="synthscan-make_test_model", producer_version="0")
    model.ir_version = 8
    model.doc_string = "Deterministic test model (not a detector): high-band minus low-band log-mel energy."
    onnx.checker.check_model(model, full_check=True)
    return model


def numpy_logits(x: np.ndarray) -> np.ndarray:
    """Same computation in numpy (float64), for checks."""
    x = np.asarray(x, dtype=np.float64)
    hi = x[:, :, HIGH[0]:HIGH[1]].mean(axis=(1, 2))
    lo = x[:, :, LOW[0]:LOW[1]].mean(axis=(1, 2))
    return SCALE * (hi - lo) + OFFSET


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=os.path.join(root, "models", "test"))
    args = ap.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)

    blob = build_model().SerializeToString(deterministic=True)
    onnx_path = os.path.join(args.out_dir, f"{NAME}.onnx")
    with open(onnx_path, "wb") as f:
        f.write(blob)
    manifest = {
        "name": NAME,
        "version": "0.0.0-test",
        "description": "Deterministic test model (not a detector): high-band minus low-band log-mel energy.",
        "onnx": f"{NAME}.onnx",
        "sha256": hashlib.sha256(blob).hexdigest(),
        "features": FEATURES,
        "window": {"frames": FRAMES, "hop_frames": 64, "min_speech_fraction": 0.5},
        "vad": {"min_energy_db": -50.0, "max_tonality": 0.85},
        "io": {"input": "features", "output": "logit"},
        "calibration": {"scale": 1.0, "bias": 0.0},
        "threshold": 0.5,
        "min_speech_s": 1.0,
        "training": {"summary": "none: hand-built test model"},
    }
    json_path = os.path.join(args.out_dir, f"{NAME}.json")
    with open(json_path, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"wrote {onnx_path} ({len(blob)} bytes, sha256 {manifest['sha256']})")
    print(f"wrote {json_path}")


if __name__ == "__main__":
    main()
