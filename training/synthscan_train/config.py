"""Front-end and windowing configuration shared by training, export and evaluation. The filterbank and its
number of bins come from recipe.toml [features]; each setting has its own feature cache.
"""
import os

from . import recipe

FEATURES = {
    "sample_rate_hz": 16000,
    "n_fft": 512,
    "win_len": 400,
    "hop_len": 160,
    "filterbank": recipe.get("features.filterbank"),
    "n_bins": int(recipe.get("features.n_bins")),
    "f_min_hz": 20.0,
    "f_max_hz": 8000.0,
    "log_floor": 1e-6,
}
WINDOW = {"frames": 100, "hop_frames": 50, "min_speech_fraction": 0.5}
VAD = {"min_energy_db": -50.0, "max_tonality": 0.99, "noise_margin_db": 6.0}
MIN_SPEECH_S = 1.0
# input at or below this rate is judged by threshold_narrowband (G.711 calls are 8 kHz); written to the manifest
NARROWBAND_MAX_RATE_HZ = 8000


def threads() -> int:
    """Threads for torch and onnxruntime in training and the diagnostics (SYNTHSCAN_THREADS, default 2: this machine
    kind's cores). A run on one thread is another run: the thread count changes the result."""
    return int(os.environ.get("SYNTHSCAN_THREADS", "2"))


def manifest(sha256="0" * 64, scale=1.0, bias=0.0, threshold=0.5, training=None, description=None):
    return {
        "name": "synthscan",
        "version": "0.1.0",
        "description": description or "synthscan synthetic-speech detector",
        "onnx": "synthscan.onnx",
        "sha256": sha256,
        "features": dict(FEATURES),
        "window": dict(WINDOW),
        "vad": dict(VAD),
        "io": {"input": "features", "output": "logit"},
        "calibration": {"scale": float(scale), "bias": float(bias)},
        "threshold": float(threshold),
        "narrowband_max_rate_hz": NARROWBAND_MAX_RATE_HZ,
        "min_speech_s": MIN_SPEECH_S,
        "training": training or {},
    }
