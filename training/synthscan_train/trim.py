"""Silence trimming and cutting of source clips, shared by every data maker (generate.py, genuine.py,
make_samples.py, clipstore.py): both classes are trimmed the same way, so the length of leading or trailing
silence cannot mark a label."""

import numpy as np

MAX_CLIP_S = 8.0
PAD_S = 0.03


def leading_silence(audio, sr, thresh_db=-40.0):
    """Seconds before the first 10 ms frame whose RMS is within thresh_db of the clip's peak frame."""
    win = max(1, int(0.01 * sr))
    n = len(audio) // win
    if n == 0:
        return 0.0, 0.0
    frames = audio[: n * win].reshape(n, win)
    rms = np.sqrt((frames ** 2).mean(axis=1) + 1e-12)
    db = 20 * np.log10(rms / (rms.max() + 1e-12) + 1e-12)
    voiced = np.where(db > thresh_db)[0]
    if len(voiced) == 0:
        return 0.0, 0.0
    return voiced[0] * win / sr, (n - 1 - voiced[-1]) * win / sr


def trim_and_cut(audio, sr, max_s=MAX_CLIP_S, pad_s=PAD_S, thresh_db=-40.0):
    """Trim silence at both ends to pad_s; if still longer than max_s, cut at the quietest 10 ms frame in the
    last 2 s before max_s and fade out over 20 ms."""
    lead, trail = leading_silence(audio, sr, thresh_db)
    start = max(0, int((lead - pad_s) * sr))
    end = len(audio) - max(0, int((trail - pad_s) * sr))
    audio = audio[start:end]
    limit = int(max_s * sr)
    if len(audio) > limit:
        win = int(0.01 * sr)
        lo = int((max_s - 2.0) * sr) // win
        hi = limit // win
        frames = audio[lo * win: hi * win].reshape(-1, win)
        cut = (lo + int(np.argmin((frames ** 2).mean(axis=1))) + 1) * win
        audio = audio[:cut].copy()
        fade = min(len(audio), int(0.02 * sr))
        audio[-fade:] *= np.linspace(1.0, 0.0, fade, dtype=np.float32)
    return audio, lead, trail
