#!/usr/bin/env python3
"""Checks the in-memory codec round trips of synthscan_train/augment.py (MP3, Opus, GSM 06.10).

    python training/experiments/check_codecs.py      (with the training venv)

For each bitrate augment.py draws (MP3_KBPS, OPUS_KBPS; GSM has one), it encodes the shipped JFK sample
(samples/genuine_jfk.wav, public domain) with augment.py's own settings, checks the encoded size against the
wanted bitrate (within BITRATE_TOL), that the decoded audio keeps the input's length and still correlates
with it (the codec ran, not a silent fallback), and prints the time per second of audio. Exits 1 if any
case fails. augment.py's compression-level mappings
(mp3_level, opus_level) were read off these sizes; a soundfile/libsndfile upgrade must pass this again.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthscan_train import augment  # noqa: E402

BITRATE_TOL = 0.35  # relative; Opus is variable-bitrate and speech with pauses undershoots
MIN_CORR = 0.5      # decoded vs input, after the codec's own delay is searched for


def best_corr(x: np.ndarray, y: np.ndarray, max_lag: int = 2000) -> float:
    n = min(len(x), len(y)) - max_lag
    return max(float(np.corrcoef(x[:n], y[lag:lag + n])[0, 1]) for lag in range(0, max_lag, 16))


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    x, sr = sf.read(root / "samples" / "genuine_jfk.wav", dtype="float32")
    assert sr == augment.SR, sr
    x8 = augment.gsm_input(x, sr)
    cases = [(f"mp3 {k} kbps", k, x, sr, augment.codec_settings("mp3", k)) for k in augment.MP3_KBPS]
    cases += [(f"opus {k} kbps", k, x, sr, augment.codec_settings("opus", k)) for k in augment.OPUS_KBPS]
    cases.append(("gsm 13 kbps", 13.2, x8, 8000, augment.codec_settings("gsm")))
    failed = False
    for name, want, ref, rate, settings in cases:
        t = time.perf_counter()
        data = augment.encode(ref, rate, settings)
        y = augment.decode(data, len(ref))
        ms = (time.perf_counter() - t) * 1000 / (len(ref) / rate)
        got = len(data) * 8 / (len(ref) / rate) / 1000
        c = best_corr(ref, y)
        ok = abs(got - want) <= BITRATE_TOL * want and len(y) == len(ref) and c >= MIN_CORR
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:14s} encoded {got:6.1f} kbps, corr {c:.3f}, {ms:5.1f} ms per s of audio")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
