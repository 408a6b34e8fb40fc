"""Float64 numpy REFERENCE implementation of the synthscan feature extractor.

This mirrors, step by step, the spec the Rust code (src/) implements. It is
written for clarity, not speed; use it for golden files and for checking.

Spec (cfg = manifest "features" dict):
  frames     frame t covers samples [t*hop, t*hop+win_len); samples past the end are 0.
             n_frames(N) = 0 if N == 0; 1 if N <= win_len; else 1 + ceil((N - win_len)/hop).
  window     periodic Hann: w[n] = 0.5 - 0.5*cos(2*pi*n/win_len), n < win_len.
  spectrum   X_t = rfft(n_fft buffer: x[t*hop+n]*w[n] for n < win_len, zeros after);
             P_t[k] = |X_t[k]|^2, k = 0..n_fft/2.
  filterbank f_k = k*sample_rate_hz/n_fft; edges e_0..e_{n_bins+1} equally spaced on the
             HTK mel scale mel(f) = 2595*log10(1+f/700) ("mel") or in Hz ("linear")
             between f_min_hz and f_max_hz; weight[m][k] =
             max(0, min((f_k-e_m)/(e_{m+1}-e_m), (e_{m+2}-f_k)/(e_{m+2}-e_{m+1}))).
  features   feat[t][m] = ln(sum_k weight[m][k]*P_t[k] + log_floor)   -> [n_frames, n_bins]
  energy     energy_db[t] = 10*log10(sum_n (x[t*hop+n]*w[n])^2 / sum_n w[n]^2 + 1e-10)

CLI (run from training/):
  python -m synthscan_train.features_ref IN.wav OUT_PREFIX [--filterbank mel|linear]
                                         [--manifest MODEL.json]
writes OUT_PREFIX.features.npy (float32 [n_frames, n_bins]) and
OUT_PREFIX.energy.npy (float32 [n_frames]).
"""

from __future__ import annotations

import argparse
import json
import sys
import wave

import numpy as np

DEFAULT_FEATURES = {
    "sample_rate_hz": 16000,
    "n_fft": 512,
    "win_len": 400,
    "hop_len": 160,
    "filterbank": "mel",
    "n_bins": 64,
    "f_min_hz": 20.0,
    "f_max_hz": 8000.0,
    "log_floor": 1e-6,
}

ENERGY_EPS = 1e-10


def n_frames(n_samples: int, win_len: int, hop_len: int) -> int:
    if n_samples <= 0:
        return 0
    if n_samples <= win_len:
        return 1
    return 1 + (n_samples - win_len + hop_len - 1) // hop_len  # ceil division


def hann_periodic(win_len: int) -> np.ndarray:
    n = np.arange(win_len, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / win_len)


def hz_to_mel(f):
    return 2595.0 * np.log10(1.0 + np.asarray(f, dtype=np.float64) / 700.0)


def mel_to_hz(m):
    return 700.0 * (10.0 ** (np.asarray(m, dtype=np.float64) / 2595.0) - 1.0)


def band_edges(cfg: dict) -> np.ndarray:
    """Edge frequencies e_0..e_{n_bins+1} in Hz."""
    n_bins = int(cfg["n_bins"])
    f_min, f_max = float(cfg["f_min_hz"]), float(cfg["f_max_hz"])
    kind = cfg["filterbank"]
    if kind == "mel":
        return mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_bins + 2))
    if kind == "linear":
        return np.linspace(f_min, f_max, n_bins + 2)
    raise ValueError(f"unknown filterbank {kind!r} (expected 'mel' or 'linear')")


def filterbank(cfg: dict) -> np.ndarray:
    """Triangular weights, shape [n_bins, n_fft/2 + 1], float64."""
    n_fft = int(cfg["n_fft"])
    sr = float(cfg["sample_rate_hz"])
    e = band_edges(cfg)
    f = np.arange(n_fft // 2 + 1, dtype=np.float64) * sr / n_fft
    n_bins = int(cfg["n_bins"])
    w = np.zeros((n_bins, f.size), dtype=np.float64)
    for m in range(n_bins):
        rise = (f - e[m]) / (e[m + 1] - e[m])
        fall = (e[m + 2] - f) / (e[m + 2] - e[m + 1])
        w[m] = np.maximum(0.0, np.minimum(rise, fall))
    return w


def frame_signal(x: np.ndarray, cfg: dict) -> np.ndarray:
    """Frames [n_frames, win_len] (unwindowed), zero past the end of x."""
    win, hop = int(cfg["win_len"]), int(cfg["hop_len"])
    nf = n_frames(x.size, win, hop)
    padded = np.zeros((nf - 1) * hop + win if nf else 0, dtype=np.float64)
    padded[: x.size] = x
    frames = np.zeros((nf, win), dtype=np.float64)
    for t in range(nf):
        frames[t] = padded[t * hop : t * hop + win]
    return frames


def features(x, cfg: dict | None = None):
    """Return (feats [n_frames, n_bins] float64, energy_db [n_frames] float64)."""
    cfg = dict(DEFAULT_FEATURES if cfg is None else cfg)
    x = np.asarray(x, dtype=np.float64).reshape(-1)
    win, n_fft = int(cfg["win_len"]), int(cfg["n_fft"])
    if win > n_fft:
        raise ValueError("win_len must be <= n_fft")
    w = hann_periodic(win)
    fb = filterbank(cfg)
    frames = frame_signal(x, cfg) * w[None, :]
    nf = frames.shape[0]
    if nf == 0:
        return np.zeros((0, fb.shape[0])), np.zeros((0,))
    buf = np.zeros((nf, n_fft), dtype=np.float64)
    buf[:, :win] = frames
    spec = np.fft.rfft(buf, n=n_fft, axis=1)
    power = spec.real ** 2 + spec.imag ** 2                    # [nf, n_fft/2+1]
    feats = np.log(power @ fb.T + float(cfg["log_floor"]))     # [nf, n_bins]
    energy_db = 10.0 * np.log10(np.sum(frames ** 2, axis=1) / np.sum(w ** 2) + ENERGY_EPS)
    return feats, energy_db


def read_wav_mono16(path: str):
    """Read a mono 16-bit PCM WAV; returns (float64 samples / 32768, sample_rate)."""
    with wave.open(path, "rb") as wf:
        if wf.getsampwidth() != 2 or wf.getnchannels() != 1:
            raise ValueError(f"{path}: need mono 16-bit PCM WAV "
                             f"(got {wf.getnchannels()} ch, {8 * wf.getsampwidth()} bit)")
        sr = wf.getframerate()
        data = wf.readframes(wf.getnframes())
    return np.frombuffer(data, dtype="<i2").astype(np.float64) / 32768.0, sr


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m synthscan_train.features_ref",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("wav", help="16 kHz mono 16-bit PCM WAV")
    ap.add_argument("out_prefix")
    ap.add_argument("--filterbank", choices=["mel", "linear"], default=None,
                    help="override the filterbank (default: mel, or the manifest's)")
    ap.add_argument("--manifest", help="model manifest JSON whose 'features' dict to use")
    args = ap.parse_args(argv)

    cfg = dict(DEFAULT_FEATURES)
    if args.manifest:
        with open(args.manifest) as f:
            cfg.update(json.load(f)["features"])
    if args.filterbank:
        cfg["filterbank"] = args.filterbank

    x, sr = read_wav_mono16(args.wav)
    if sr != int(cfg["sample_rate_hz"]):
        print(f"error: {args.wav} is {sr} Hz, features expect {cfg['sample_rate_hz']} Hz",
              file=sys.stderr)
        return 2
    feats, energy = features(x, cfg)
    np.save(args.out_prefix + ".features.npy", feats.astype(np.float32))
    np.save(args.out_prefix + ".energy.npy", energy.astype(np.float32))
    print(f"{args.wav}: {x.size} samples -> features {feats.shape} ({cfg['filterbank']}), "
          f"energy {energy.shape}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
