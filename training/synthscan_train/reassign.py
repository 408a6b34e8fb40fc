"""EXPERIMENT (session 22): phase-derived features beside the log filterbank, computed in Python.

The shipped front end keeps only the log power of 80 linear bands (~100 Hz wide, 3.2 FFT bins each),
so where a harmonic sits inside a band, and how coherent the phase is from bin to bin, are lost. The
misses are resynthesis and voice conversion (a neural vocoder rendering natural-sounding spectra), and
vocoder traces may live in the phase. This adds two channels per band from the reassignment operators
(Auger & Flandrin 1995), both as ratios of power-weighted sums so silent or weak bins cannot blow up:

  freq[t, m] = -sum_k w_mk Im(Xd_k conj X_k) / (sum_k w_mk |X_k|^2 + floor) * n_fft / (2 pi)
      the power-weighted mean distance (in FFT bins) between the frequency each bin's phase says its
      energy is at and the bin's own frequency: ~0 for a steady partial seen by several bins (the
      magnitude and phase agree), non-zero where they disagree;
  time[t, m] =  sum_k w_mk Re(Xt_k conj X_k) / (sum_k w_mk |X_k|^2 + floor) / hop
      the power-weighted centre of the band's energy inside the frame (in hops from the frame centre):
      glottal pulses and other transients, and how regularly they fall.

X uses the periodic Hann window h, Xt the window (n - c) h[n] (c the window centre), Xd the window's
derivative dh/dn. Frames, window, FFT size and bands are the shipped front end's (features_ref.py).

If the experiment pays, the Rust front end computes these (and the training pipeline reads them from
`synthscan features`, as for the log filterbank); until then they are a Python-side trial only, never
shipped. Run from training/ after prepare (reads the same file lists):

    SYNTHSCAN_FILTERBANK=linear ... python -m synthscan_train.reassign
writes <feature cache>/<stem>.reassign.npy, float16 [frames, 2, n_bins], frames = the Rust features' count.
"""

from __future__ import annotations

import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from . import config as C
from . import data as D
from . import features_ref as R

CLIP = 8.0  # |freq| and |time| beyond this are noise floor behaviour, not structure


def _windows(cfg: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    win = int(cfg["win_len"])
    n = np.arange(win, dtype=np.float64)
    h = R.hann_periodic(win)
    th = (n - win / 2.0) * h
    dh = (np.pi / win) * np.sin(2.0 * np.pi * n / win)  # d/dn of 0.5 - 0.5 cos(2 pi n / win)
    return h, th, dh


def reassign(x: np.ndarray, cfg: dict, fb: np.ndarray) -> np.ndarray:
    """[n_frames, 2, n_bins] float32: freq and time channels."""
    win, n_fft, hop = int(cfg["win_len"]), int(cfg["n_fft"]), int(cfg["hop_len"])
    h, th, dh = _windows(cfg)
    frames = R.frame_signal(x, cfg) if x.size else np.zeros((0, win))
    out = np.zeros((frames.shape[0], 2, fb.shape[0]), np.float32)
    for a in range(0, frames.shape[0], 2048):
        f = frames[a:a + 2048]
        X = np.fft.rfft(f * h, n=n_fft, axis=1)
        Xt = np.fft.rfft(f * th, n=n_fft, axis=1)
        Xd = np.fft.rfft(f * dh, n=n_fft, axis=1)
        p = (X.real ** 2 + X.imag ** 2) @ fb.T + float(cfg["log_floor"])
        im = (Xd.imag * X.real - Xd.real * X.imag) @ fb.T   # Im(Xd conj X)
        re = (Xt.real * X.real + Xt.imag * X.imag) @ fb.T   # Re(Xt conj X)
        out[a:a + 2048, 0] = np.clip(-im / p * n_fft / (2 * np.pi), -CLIP, CLIP)
        out[a:a + 2048, 1] = np.clip(re / p / hop, -CLIP, CLIP)
    return out


def ra_path(path: str):
    return D.feat_paths(path)[0].with_name(D.stem(path) + ".reassign.npy")


def _one(path: str) -> int:
    """Writes one file's channels; returns how many frames its count differed from the Rust features' by."""
    out = ra_path(path)
    sp = D.feat_paths(path)[1]
    if out.exists() or not sp.exists():
        return 0
    cfg = dict(C.FEATURES)
    x = D.load16(path).astype(np.float64)
    ra = reassign(x, cfg, R.filterbank(cfg))
    T = np.load(sp, mmap_mode="r").shape[0]
    off = ra.shape[0] - T
    if off:  # the Rust resampler's length can differ from scipy's: trim, or pad with zero frames
        ra = ra[:T] if off > 0 else np.concatenate([ra, np.zeros((-off,) + ra.shape[1:], np.float32)])
    np.save(out, ra.astype(np.float16))
    return abs(off)


def main() -> None:
    t0 = time.time()
    paths = [r["path"] for r in D.read_csv(D.VARIANTS)] + [r["path"] for r in D.read_csv(D.DEV_TABLE)]
    todo = [p for p in paths if not ra_path(p).exists()]
    print(f"reassign: {len(todo)} of {len(paths)} to compute", flush=True)
    fitted = 0
    with ProcessPoolExecutor(2) as ex:
        for i, off in enumerate(ex.map(_one, todo, chunksize=32)):
            fitted += off > 0
            if i % 2000 == 0:
                print(f"  {i}  ({time.time() - t0:.0f}s)", flush=True)
    print(f"done ({time.time() - t0:.0f}s); {fitted} files trimmed or padded to the Rust frame count", flush=True)


if __name__ == "__main__":
    sys.exit(main())
