#!/usr/bin/env python3
"""Checks the in-memory codec round trips of synthscan_train/augment.py (MP3, Opus, GSM 06.10).

    /work/venv/bin/python training/check_codecs.py

For each bitrate augment.py draws, it encodes the shipped JFK sample (samples/genuine_jfk.wav, public
domain), checks the encoded size against the wanted bitrate (within BITRATE_TOL), that the decoded audio
keeps the input's length and still correlates with it (the codec ran, not a silent fallback), and prints
the time per second of audio. Exits 1 on the first failure. augment.py's compression-level mappings
(mp3_level, opus_level) were read off these sizes; a soundfile/libsndfile upgrade must pass this again.
"""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthscan_train import augment as A  # noqa: E402

BITRATE_TOL = 0.35  # relative; Opus is variable-bitrate and speech with pauses undershoots
MIN_CORR = 0.5      # decoded vs input, after the codec's own delay is searched for


def encoded_kbps(x, sr, fmt, subtype, level=None, mode=None) -> float:
    buf = io.BytesIO()
    sf.write(buf, A.to_pcm16(x), sr, format=fmt, subtype=subtype, compression_level=level, bitrate_mode=mode)
    return buf.tell() * 8 / (len(x) / sr) / 1000


def best_corr(x: np.ndarray, y: np.ndarray, max_lag: int = 2000) -> float:
    n = min(len(x), len(y)) - max_lag
    return max(float(np.corrcoef(x[:n], y[lag:lag + n])[0, 1]) for lag in range(0, max_lag, 16))


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    x, sr = sf.read(root / "samples" / "genuine_jfk.wav", dtype="float32")
    assert sr == A.SR, sr
    x8 = A.bandpass(A.resample(x, sr, 8000), 8000, 200.0, 3600.0)
    cases = [(f"mp3 {k} kbps", k, lambda k=k: encoded_kbps(x, sr, "MP3", "MPEG_LAYER_III", A.mp3_level(k), "CONSTANT"),
              lambda k=k: A._sndfile_roundtrip(x, sr, "MP3", "MPEG_LAYER_III", A.mp3_level(k), "CONSTANT"), x)
             for k in (16, 24, 32, 48)]
    cases += [(f"opus {k} kbps", k, lambda k=k: encoded_kbps(x, sr, "OGG", "OPUS", A.opus_level(k)),
               lambda k=k: A._sndfile_roundtrip(x, sr, "OGG", "OPUS", A.opus_level(k)), x)
              for k in (6, 8, 12, 16, 24)]
    cases.append(("gsm 13 kbps", 13.2, lambda: encoded_kbps(x8, 8000, "WAV", "GSM610"),
                  lambda: A.gsm(x, sr)[0], x8))
    failed = False
    for name, want, size_fn, trip_fn, ref in cases:
        got = size_fn()
        t = time.perf_counter()
        y = trip_fn()
        ms = (time.perf_counter() - t) * 1000 / (len(ref) / (8000 if ref is x8 else sr))
        c = best_corr(ref, y)
        ok = abs(got - want) <= BITRATE_TOL * want and len(y) == len(ref) and c >= MIN_CORR
        failed |= not ok
        print(f"{'ok  ' if ok else 'FAIL'} {name:14s} encoded {got:6.1f} kbps, corr {c:.3f}, {ms:5.1f} ms per s of audio")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
