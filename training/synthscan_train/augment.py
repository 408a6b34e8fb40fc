"""Channel / noise augmentation for synthscan training (numpy + scipy; lossy codecs in memory via libsndfile).

Every augmentation is applied to BOTH classes with the same probabilities, so that no channel
property (bandwidth, codec, silence, level) can predict the label.

Output of `augment(x, rng, ...)` is (audio float32 in [-1, 1], sample_rate): either 16 kHz, or
8 kHz for telephone-type channels (the Rust front end then resamples it to 16 kHz exactly as it
would a real call).

Also provides `phone_channel(x)`: the deterministic G.711 mu-law 8 kHz 300-3400 Hz channel used
for the "phone" dev condition (evaluate.py).
"""

from __future__ import annotations

import io

import numpy as np
import soundfile as sf
from scipy import signal

SR = 16000

# ---------------------------------------------------------------- G.711 (ITU-T, segment based)

_MU_BIAS = 0x84
_MU_CLIP = 32635


def mulaw_encode(pcm16: np.ndarray) -> np.ndarray:
    x = pcm16.astype(np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _MU_CLIP) + _MU_BIAS
    exp = np.floor(np.log2(mag)).astype(np.int32) - 7  # 0..7
    exp = np.clip(exp, 0, 7)
    mant = (mag >> (exp + 3)) & 0x0F
    return (~(sign | (exp << 4) | mant) & 0xFF).astype(np.uint8)


def mulaw_decode(code: np.ndarray) -> np.ndarray:
    u = (~code.astype(np.int32)) & 0xFF
    sign = u & 0x80
    exp = (u >> 4) & 0x07
    mant = u & 0x0F
    mag = (((mant << 3) + _MU_BIAS) << exp) - _MU_BIAS
    return np.where(sign != 0, -mag, mag).astype(np.int16)


def alaw_encode(pcm16: np.ndarray) -> np.ndarray:
    x = pcm16.astype(np.int32) >> 3  # 13-bit
    sign = np.where(x >= 0, 0x80, 0)
    mag = np.where(x >= 0, x, -x - 1)
    mag = np.minimum(mag, 0x0FFF)
    exp = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    exp = np.clip(exp, 0, 7)
    mant = np.where(exp == 0, mag >> 1, mag >> exp) & 0x0F
    return ((sign | (exp << 4) | mant) ^ 0x55).astype(np.uint8)


def alaw_decode(code: np.ndarray) -> np.ndarray:
    a = code.astype(np.int32) ^ 0x55
    sign = a & 0x80
    exp = (a >> 4) & 0x07
    mant = a & 0x0F
    mag = np.where(exp == 0, (mant << 4) + 8, ((mant << 4) + 0x108) << np.maximum(exp - 1, 0))
    return np.where(sign != 0, mag, -mag).astype(np.int16)


def to_pcm16(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 32767.0), -32768, 32767).astype(np.int16)


def g711(x: np.ndarray, law: str) -> np.ndarray:
    p = to_pcm16(x)
    if law == "mu":
        y = mulaw_decode(mulaw_encode(p))
    else:
        y = alaw_decode(alaw_encode(p))
    return y.astype(np.float32) / 32768.0


# ---------------------------------------------------------------- filters / resampling

def resample(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    if sr_in == sr_out:
        return x.astype(np.float32)
    g = np.gcd(sr_in, sr_out)
    return signal.resample_poly(x, sr_out // g, sr_in // g).astype(np.float32)


def bandpass(x: np.ndarray, sr: int, lo: float, hi: float, order: int = 6) -> np.ndarray:
    hi = min(hi, 0.45 * sr)
    sos = signal.butter(order, [lo, hi], btype="bandpass", fs=sr, output="sos")
    return signal.sosfilt(sos, x).astype(np.float32)


def lowpass(x: np.ndarray, sr: int, hi: float, order: int = 8) -> np.ndarray:
    sos = signal.butter(order, hi, btype="lowpass", fs=sr, output="sos")
    return signal.sosfilt(sos, x).astype(np.float32)


def phone_channel(x: np.ndarray, sr: int = SR, law: str = "mu") -> np.ndarray:
    """Deterministic telephone channel: -> 8 kHz, 300-3400 Hz band-pass, G.711. Returns 8 kHz."""
    y = resample(x, sr, 8000)
    y = bandpass(y, 8000, 300.0, 3400.0)
    peak = np.max(np.abs(y)) if y.size else 0.0
    if peak > 0.99:
        y = y * (0.99 / peak)
    return g711(y, law)


# ---------------------------------------------------------------- lossy codecs (libsndfile, in memory)
# Encoded and decoded inside this process by the libsndfile that the pinned soundfile wheel bundles
# (LAME + mpg123, libopus, GSM 06.10). The earlier ffmpeg pipes cost two process launches per round trip
# and made augmentation ~80 % waiting on ffmpeg (training/README.md). libsndfile picks a bitrate from a
# compression level in [0, 1), so each codec below maps the wanted kbps onto that level; the levels were
# read off the encoded sizes at 16 kHz mono (tests in training/check_codecs.py).

MP3_KBPS = (16, 24, 32, 48)
OPUS_KBPS = (6, 8, 12, 16, 24)


def mp3_level(kbps: int) -> float:
    """Compression level for constant-bitrate MP3 at 16 kHz: libsndfile spans 160 (0.0) to 8 kbps."""
    return min(max((160 - kbps) / 152, 0.0), 0.99)


def opus_level(kbps: int) -> float:
    """Compression level for Opus at 16 kHz mono: ~258 kbps at 0.0, ~9 kbps at 0.99 (near linear)."""
    return min(max(1.0 - (kbps - 6) / 250, 0.0), 0.999)


def codec_settings(codec: str, kbps: int | None = None) -> dict:
    """soundfile.write keyword arguments for one codec ("mp3", "opus" or "gsm") at `kbps`."""
    if codec == "mp3":
        return {"format": "MP3", "subtype": "MPEG_LAYER_III", "compression_level": mp3_level(kbps),
                "bitrate_mode": "CONSTANT"}
    if codec == "opus":
        return {"format": "OGG", "subtype": "OPUS", "compression_level": opus_level(kbps)}
    if codec == "gsm":
        return {"format": "WAV", "subtype": "GSM610"}
    raise ValueError(codec)


def encode(x: np.ndarray, sr: int, settings: dict) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, to_pcm16(x), sr, **settings)
    return buf.getvalue()


def decode(data: bytes, n: int) -> np.ndarray:
    """Decoded audio cut or padded to `n` samples: decoders may pad the last frame (MP3: up to 1152 +
    delay samples), and the copy must keep the input's length."""
    y, _ = sf.read(io.BytesIO(data), dtype="float32")
    return y[:n] if len(y) >= n else np.pad(y, (0, n - len(y)))


def vorbis(x: np.ndarray, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """An Ogg Vorbis round trip at a random quality (libsndfile compression level 0.3-0.9: roughly quality 7
    down to 1), as home recordings and web audio are often stored."""
    settings = {"format": "OGG", "subtype": "VORBIS", "compression_level": float(rng.uniform(0.3, 0.9))}
    return decode(encode(np.clip(x, -1, 1), sr, settings), len(x))


def gsm_input(x: np.ndarray, sr: int = SR) -> np.ndarray:
    """What GSM 06.10 is fed: 8 kHz, 200-3600 Hz."""
    return np.clip(bandpass(resample(x, sr, 8000), 8000, 200.0, 3600.0), -1, 1)


def gsm(x: np.ndarray, sr: int = SR):
    y8 = gsm_input(x, sr)
    return decode(encode(y8, 8000, codec_settings("gsm")), len(y8)), 8000


def mp3(x: np.ndarray, rng: np.random.Generator, sr: int = SR):
    br = int(rng.choice(MP3_KBPS))
    return decode(encode(x, sr, codec_settings("mp3", br)), len(x)), sr


def opus(x: np.ndarray, rng: np.random.Generator, sr: int = SR):
    br = int(rng.choice(OPUS_KBPS))
    return decode(encode(x, sr, codec_settings("opus", br)), len(x)), sr


# ---------------------------------------------------------------- noise, reverb, level, loss

def pink_noise(n: int, rng: np.random.Generator) -> np.ndarray:
    w = rng.standard_normal(n)
    spec = np.fft.rfft(w)
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    y = np.fft.irfft(spec / np.sqrt(f), n)
    return (y / (np.std(y) + 1e-9)).astype(np.float32)


def babble(n: int, rng: np.random.Generator, pool: list[np.ndarray]) -> np.ndarray:
    if not pool:
        return pink_noise(n, rng)
    out = np.zeros(n, dtype=np.float32)
    for _ in range(int(rng.integers(3, 7))):
        c = pool[int(rng.integers(len(pool)))]
        if c.size == 0:
            continue
        reps = int(np.ceil(n / c.size))
        c = np.tile(c, reps)
        off = int(rng.integers(c.size - n + 1))
        seg = c[off:off + n]
        out += seg / (np.std(seg) + 1e-9)
    return out / (np.std(out) + 1e-9)


def add_noise(x: np.ndarray, rng: np.random.Generator, pool) -> np.ndarray:
    kind = rng.choice(["white", "pink", "babble"], p=[0.3, 0.35, 0.35])
    n = x.size
    if kind == "white":
        noise = rng.standard_normal(n).astype(np.float32)
    elif kind == "pink":
        noise = pink_noise(n, rng)
    else:
        noise = babble(n, rng, pool)
    snr = rng.uniform(5.0, 30.0)
    active = x[np.abs(x) > 0.02 * (np.max(np.abs(x)) + 1e-9)]
    p_sig = np.mean(active ** 2) if active.size else np.mean(x ** 2)
    scale = np.sqrt(p_sig / (10 ** (snr / 10.0)) + 1e-12)
    return (x + scale * noise).astype(np.float32)


def reverb(x: np.ndarray, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    rt60 = rng.uniform(0.15, 0.8)
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    rir = rng.standard_normal(n) * np.exp(-6.9 * t / rt60)
    rir[0] = 1.0 / rng.uniform(0.5, 2.0)  # direct path (direct-to-reverb ratio)
    rir /= np.sqrt(np.sum(rir ** 2))
    y = signal.fftconvolve(x, rir)[: x.size]
    return y.astype(np.float32)


def packet_loss(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    f = int(0.02 * sr)
    n = x.size // f
    if n == 0:
        return x
    rate = rng.uniform(0.01, 0.08)
    lost = rng.random(n) < rate
    y = x.copy()
    for i in np.nonzero(lost)[0]:
        y[i * f:(i + 1) * f] = 0.0
    return y


def trim_silence(x: np.ndarray, sr: int, thresh_db: float = -40.0) -> np.ndarray:
    f = int(0.01 * sr)
    if x.size < 4 * f:
        return x
    n = x.size // f
    e = 10 * np.log10(np.mean(x[: n * f].reshape(n, f) ** 2, axis=1) + 1e-10)
    ref = np.max(e)
    act = np.nonzero(e > ref + thresh_db)[0]
    if act.size == 0:
        return x
    a, b = max(act[0] - 3, 0), min(act[-1] + 4, n)
    return x[a * f:b * f]


def silence_pad(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Randomise leading/trailing silence: trim, then pad 0-1.5 s of digital zero or faint noise."""
    x = trim_silence(x, sr)
    pads = []
    for _ in range(2):
        n = int(rng.uniform(0.0, 1.5) * sr) if rng.random() < 0.7 else 0
        if rng.random() < 0.5:
            pads.append(np.zeros(n, np.float32))
        else:
            lvl = 10 ** (rng.uniform(-75, -45) / 20)
            pads.append((rng.standard_normal(n) * lvl).astype(np.float32))
    return np.concatenate([pads[0], x, pads[1]]).astype(np.float32)


def noise_gate(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """What a noise gate, an editor's "generate silence" or VoIP silence suppression does to the pauses:
    frames well below the loudest one become digital zero, or faint comfort noise. Many TTS engines write
    exact zeros between phrases while most genuine recordings keep their room noise, so a model can learn
    "gated pauses mean synthetic"; genuine recordings that were gated (home recordings cleaned up in an
    editor, calls with silence suppression) are then flagged. Applied to both classes alike."""
    frame = int(rng.uniform(0.01, 0.03) * sr)
    n = x.size // frame
    if n < 3:
        return x
    rms = np.sqrt((x[: n * frame].reshape(n, frame).astype(np.float64) ** 2).mean(axis=1) + 1e-20)
    open_ = 20 * np.log10(rms / rms.max()) >= rng.uniform(-45.0, -25.0)
    hold = int(rng.integers(0, 4))  # frames the gate stays open around a loud one (release time)
    if hold:
        open_ = np.convolve(open_.astype(np.int32), np.ones(2 * hold + 1, np.int32), mode="same") > 0
    y = x.copy()
    comfort = rng.random() < 0.3
    level = 10 ** (rng.uniform(-75.0, -55.0) / 20)
    for i in np.nonzero(~open_)[0]:
        y[i * frame:(i + 1) * frame] = (rng.standard_normal(frame) * level if comfort else 0.0)
    return y.astype(np.float32)


def noise_reduction(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Single-channel noise reduction as handsets, conferencing software and call recorders apply it: a short-time
    spectral gain from a noise estimate per bin (a low percentile of the bin's power over the clip, as minimum-
    statistics trackers do), over-subtracted by 1-3x, floored at 6-25 dB of attenuation and smoothed over frames by a
    one-pole filter (a slower gain leaves less "musical noise"). It replaces the texture of the noise floor between
    harmonics and in pauses, which the shipped model reads (docs/experiments.md: ffmpeg's afftdn on the dev split
    lifts genuine scores and lowers synthetic ones). Applied to both classes alike. Not afftdn itself, so that
    evaluate.py's afftdn probe stays a method training never saw."""
    n_fft = 512 if sr > 8000 else 256
    hop = n_fft // 4
    if x.size < 2 * n_fft:
        return x
    _, _, S = signal.stft(x.astype(np.float64), fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop)
    P = np.abs(S) ** 2
    noise = np.quantile(P, rng.uniform(0.05, 0.3), axis=1, keepdims=True)
    over = rng.uniform(1.0, 3.0)
    floor = 10 ** (-rng.uniform(6.0, 25.0) / 20)
    gain = np.sqrt(np.clip(1.0 - over * noise / np.maximum(P, 1e-20), 0.0, 1.0))
    gain = np.maximum(gain, floor)
    alpha = rng.uniform(0.0, 0.8)
    if alpha > 0:
        gain = signal.lfilter([1.0 - alpha], [1.0, -alpha], gain, axis=1)
    _, y = signal.istft(S * gain, fs=sr, window="hann", nperseg=n_fft, noverlap=n_fft - hop)
    y = y[: x.size]
    if y.size < x.size:
        y = np.concatenate([y, np.zeros(x.size - y.size)])
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def voice_shift(x: np.ndarray, rng: np.random.Generator, sr: int = SR) -> np.ndarray:
    """Every frequency of x raised by a factor of 1.1-1.35 (pitch and formants together; the tempo rises too) by
    resampling and playing the result at the old rate: a shorter vocal tract and a higher voice, as children's and
    other high voices have, of which the training data has almost none. Only upward: a downward shift would leave
    the top of the band empty, a mark the model could learn."""
    target = int(round(sr / rng.uniform(1.1, 1.35) / 100)) * 100
    return resample(x, sr, target)


def _random_band_fir(rng: np.random.Generator, sr: int) -> np.ndarray:
    """An FIR filter with 1-4 random stop bands (each 2-10 % of the band wide): the uneven response of a handset,
    a line or a cheap converter."""
    nyq = sr / 2
    taps = int(rng.integers(10, 101)) | 1  # odd, so any band layout is realisable
    edges = []
    for _ in range(int(rng.integers(1, 5))):
        centre = rng.uniform(50.0, 0.9 * nyq)
        width = rng.uniform(0.02, 0.1) * nyq
        lo, hi = max(centre - width / 2, 20.0), min(centre + width / 2, 0.95 * nyq)
        if hi - lo > 50.0:
            edges.append((lo, hi))
    if not edges:
        return np.array([1.0])
    edges.sort()
    merged = [list(edges[0])]
    for lo, hi in edges[1:]:
        if lo <= merged[-1][1] + 50.0:
            merged[-1][1] = max(merged[-1][1], hi)
        else:
            merged.append([lo, hi])
    cut = [f for band in merged for f in band]
    return signal.firwin(taps, cut, fs=sr, pass_zero=True)


def nonlinear_channel(x: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Convolutive and nonlinear distortion plus signal-dependent impulsive noise, after RawBoost (Tak et al.,
    ICASSP 2022): the sum of x, x^2 and x^3 each through its own random multi-band FIR filter (higher orders
    10-30 dB weaker: a driven amplifier or a cheap converter), then, half the time, 0.5-3 % of the samples
    pushed by up to twice their own value (clicks that follow the signal). A per-bin constant gain would
    be cancelled by the models' cepstral mean normalisation; these are not, because the distortion products and
    the clicks move with the speech."""
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak <= 0:
        return x
    u = x.astype(np.float64) / peak
    y = np.zeros_like(u)
    for order in range(1, 4):
        gain = 1.0 if order == 1 else 10 ** (-rng.uniform(10.0, 30.0) / 20)
        h = _random_band_fir(rng, sr)
        y += gain * signal.lfilter(h, [1.0], u ** order)
    if rng.random() < 0.5:
        n = int(rng.uniform(0.005, 0.03) * y.size)
        idx = rng.choice(y.size, size=n, replace=False)
        y[idx] += y[idx] * rng.uniform(-2.0, 2.0, n)
    return np.asarray(normalize_peak(y, peak), np.float32)


def normalize_peak(x: np.ndarray, peak: float) -> np.ndarray:
    m = np.max(np.abs(x)) if x.size else 0.0
    return x if m <= 0 else (x * (peak / m)).astype(np.float32)


# ---------------------------------------------------------------- the random chain

def augment(x: np.ndarray, rng: np.random.Generator, pool=None, sr: int = SR):
    """One random augmentation chain. x: float32 mono at 16 kHz. Returns (y, sample_rate)."""
    y = x.astype(np.float32)
    if rng.random() < 0.6:
        y = silence_pad(y, rng, sr)
    if rng.random() < 0.25:
        y = reverb(y, rng, sr)
    if rng.random() < 0.4:
        y = add_noise(y, rng, pool)
    # level: peak between -30 and 0 dBFS; occasionally drive into clipping
    y = normalize_peak(y, 10 ** (rng.uniform(-30, -1) / 20))
    if rng.random() < 0.08:
        g = 10 ** (rng.uniform(3, 12) / 20)
        y = np.clip(y * g, -1.0, 1.0) * 0.95
    ch = rng.choice(["g711", "gsm", "mp3", "opus", "nb", "none"],
                    p=[0.40, 0.10, 0.08, 0.08, 0.14, 0.20])
    out_sr = sr
    if ch == "g711":
        y8 = resample(y, sr, 8000)
        lo, hi = rng.uniform(200, 400), rng.uniform(3200, 3600)
        y8 = bandpass(y8, 8000, lo, hi)
        y, out_sr = g711(np.clip(y8, -1, 1), "mu" if rng.random() < 0.6 else "a"), 8000
    elif ch == "gsm":
        y, out_sr = gsm(np.clip(y, -1, 1), sr)
    elif ch == "mp3":
        y, out_sr = mp3(np.clip(y, -1, 1), rng, sr)
    elif ch == "opus":
        y, out_sr = opus(np.clip(y, -1, 1), rng, sr)
    elif ch == "nb":
        if rng.random() < 0.5:
            y, out_sr = resample(y, sr, 8000), 8000
        else:
            y = lowpass(y, sr, rng.uniform(3400, 4000))
    if rng.random() < 0.12:
        y = packet_loss(y, rng, out_sr)
    return np.clip(y, -1.0, 1.0).astype(np.float32), out_sr, str(ch)
