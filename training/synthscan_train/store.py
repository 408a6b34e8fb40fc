"""Feature store (cached Rust features as one float16 array) and the Rust windowing/pooling rule."""

from __future__ import annotations

import math

import numpy as np

from . import config
from . import data

F = config.WINDOW["frames"]
H = config.WINDOW["hop_frames"]
MIN_FRAC = config.WINDOW["min_speech_fraction"]
HOP_S = config.FEATURES["hop_len"] / config.FEATURES["sample_rate_hz"]


def rust_window_starts(T: int) -> list[int]:
    """Window starts exactly as src/detect/mod.rs next_window_start (regular hop + one tail window)."""
    starts, last = [], None
    while True:
        nxt = 0 if last is None else last + H
        if nxt + F <= T:
            starts.append(nxt)
            last = nxt
            continue
        if T >= F:
            covered = 0 if last is None else last + F
            tail = T - F
            if T > covered and T - covered >= math.ceil(H / 2) and (last is None or tail > last):
                starts.append(tail)
        break
    return starts


class Store:
    """All frames of a list of files, float16, concatenated; per-file offset/length/speech."""

    def __init__(self, rows: list[dict]):
        feats, speech, self.off, self.len, self.rows = [], [], [], [], []
        o = 0
        for r in rows:
            fp, sp = data.feat_paths(r["path"])
            if not sp.exists():
                continue
            f = np.load(fp).astype(np.float16)
            s = np.load(sp).astype(bool)
            feats.append(f)
            speech.append(s)
            self.off.append(o)
            self.len.append(len(s))
            self.rows.append(r)
            o += len(s)
        self.x = np.concatenate(feats) if feats else np.zeros((0, config.FEATURES["n_bins"]), np.float16)
        self.speech = np.concatenate(speech) if speech else np.zeros(0, bool)
        self.off = np.array(self.off, np.int64)
        self.len = np.array(self.len, np.int64)
        self.y = np.array([1.0 if r["label"] == "spoof" else 0.0 for r in self.rows], np.float32)

    def valid_starts(self, i: int) -> np.ndarray:
        """All starts (any offset) whose window passes the speech rule."""
        T = self.len[i]
        if T < F:
            return np.zeros(0, np.int64)
        s = self.speech[self.off[i]:self.off[i] + T].astype(np.int32)
        c = np.concatenate([[0], np.cumsum(s)])
        cnt = c[F:] - c[:-F]
        return np.nonzero((cnt >= MIN_FRAC * F) & (cnt > 0))[0]

    def rust_windows(self, i: int) -> np.ndarray:
        T = int(self.len[i])
        s = self.speech[self.off[i]:self.off[i] + T]
        out = [st for st in rust_window_starts(T)
               if s[st:st + F].sum() >= MIN_FRAC * F and s[st:st + F].sum() > 0]
        return np.array(out, np.int64)

    def speech_s(self, i: int) -> float:
        return float(self.speech[self.off[i]:self.off[i] + self.len[i]].sum()) * HOP_S

    def batch(self, idx: np.ndarray, starts: np.ndarray) -> np.ndarray:
        base = self.off[idx] + starts
        return self.x[base[:, None] + np.arange(F)[None, :]].astype(np.float32)


def file_scores(store: Store, predict) -> np.ndarray:
    """Mean logit over each file's Rust-rule windows (NaN when none). predict: [N,F,B] -> [N]."""
    idx, st = [], []
    for i in range(len(store.rows)):
        for s in store.rust_windows(i):
            idx.append(i)
            st.append(s)
    idx, st = np.array(idx, np.int64), np.array(st, np.int64)
    logits = np.zeros(len(idx), np.float32)
    for a in range(0, len(idx), 512):
        logits[a:a + 512] = predict(store.batch(idx[a:a + 512], st[a:a + 512]))
    out = np.full(len(store.rows), np.nan)
    if len(idx):
        sums = np.bincount(idx, weights=logits, minlength=len(store.rows))
        cnts = np.bincount(idx, minlength=len(store.rows))
        ok = cnts > 0
        out[ok] = sums[ok] / cnts[ok]
    return out


def eer(scores: np.ndarray, labels: np.ndarray) -> float:
    """Equal error rate (labels 1 = spoof = positive, higher score = more spoof)."""
    ok = ~np.isnan(scores)
    s, y = scores[ok], labels[ok]
    if y.min() == y.max():
        return float("nan")
    order = np.argsort(-s, kind="mergesort")
    s, y = s[order], y[order]
    P, N = y.sum(), (1 - y).sum()
    tp = np.cumsum(y)
    fp = np.cumsum(1 - y)
    # thresholds between distinct scores
    last = np.r_[s[1:] != s[:-1], True]
    tp, fp = np.r_[0, tp[last]], np.r_[0, fp[last]]
    fnr = 1 - tp / P
    fpr = fp / N
    k = np.argmin(np.abs(fnr - fpr))
    # linear interpolation between neighbours for a smoother estimate
    if k + 1 < len(fnr) and (fnr[k] - fpr[k]) * (fnr[k + 1] - fpr[k + 1]) < 0:
        a, b = fnr[k] - fpr[k], fnr[k + 1] - fpr[k + 1]
        t = a / (a - b)
        return float(fpr[k] + t * (fpr[k + 1] - fpr[k]))
    return float((fnr[k] + fpr[k]) / 2)


# the shipped threshold's rule: at most this share of genuine dev files flagged
MAX_GENUINE_FLAG = 0.02


def choose_threshold(probs: np.ndarray, max_flagged: float = MAX_GENUINE_FLAG) -> float:
    """Lowest threshold t (verdict synthetic iff p >= t) with <= max_flagged (2 %) of genuine files flagged."""
    n = len(probs)
    p = np.sort(probs[~np.isnan(probs)])[::-1]
    k = int(np.floor(max_flagged * n))  # files allowed above
    if k >= len(p):
        return 0.0
    # just above the (k+1)-th highest genuine score; `analyze` prints scores rounded to 4 decimals, so
    # step a whole unit of that rounding (a nextafter of the rounded score could still flag that file)
    t = round(float(p[k]) + 1e-4, 4)
    return min(t, 1.0)


# input at or below this rate gets threshold_narrowband (the manifest's narrowband_max_rate_hz)
NARROWBAND_MAX_RATE_HZ = config.NARROWBAND_MAX_RATE_HZ


def split_thresholds(clean: list[tuple[float, int]], phone: list[tuple[float, int]]) -> tuple[float, float]:
    """The split rule (ship.py --threshold-on split): (wideband, narrowband) thresholds from genuine files'
    (rank score, input sample rate) in the clean and the G.711 condition.

    Each threshold flags <= 2 % of the genuine inputs it judges: the narrowband one of every input at <= 8 kHz
    (each G.711 copy, and each clean file recorded at 8 kHz), the wideband one of the other clean files. The
    wideband threshold is never below the narrowband one, so that telephone audio resampled to a wideband rate
    is not judged more leniently than it would be at its own rate."""
    nb = NARROWBAND_MAX_RATE_HZ
    t_nb = choose_threshold(np.array([s for s, r in clean + phone if r <= nb], dtype=float))
    t_wb = max(choose_threshold(np.array([s for s, r in clean if r > nb], dtype=float)), t_nb)
    return t_wb, t_nb


def bounded_split_thresholds(sets: list[tuple[list[tuple[float, int]], list[tuple[float, int]]]]
                             ) -> tuple[float, float]:
    """The split rule applied to several sets of genuine files at once: each (clean, phone) pair in sets, as
    split_thresholds takes it, gets its own pair of thresholds, and the highest of each is kept, so that every
    set has <= 2 % of its inputs flagged in each band. ship.py --threshold-genuine wide passes the pooled wide
    set and the corpus dev alone: the pool keeps one odd source from setting the threshold, the corpus dev
    bound is the issue's own criterion, which a pool dominated by other sources does not guarantee."""
    pairs = [split_thresholds(clean, phone) for clean, phone in sets]
    return max(t for t, _ in pairs), max(t for _, t in pairs)


def threshold_at(rate: int, t_wb: float, t_nb: float | None) -> float:
    return t_nb if t_nb is not None and rate <= NARROWBAND_MAX_RATE_HZ else t_wb


def rank_score(score: float | None, verdict: str) -> float:
    """A genuine file's score as choose_threshold ranks it: an inconclusive file is never flagged, whatever its
    score, so it counts in the 2 % (as not flagged) but must not set the threshold (NaN)."""
    return np.nan if score is None or verdict == "inconclusive" else score


def family_group(fam: str, label: str) -> str:
    if label == "bonafide":
        return "genuine"
    return fam if fam in ("waveglow", "vc", "kokoro") else "others"


def report(scores: np.ndarray, rows: list[dict]) -> dict:
    """Overall and per-family (each family's spoofs vs all genuine) EER."""
    y = np.array([1.0 if r["label"] == "spoof" else 0.0 for r in rows])
    fam = np.array([family_group(r["family"], r["label"]) for r in rows])
    out = {"all": eer(scores, y)}
    for f in sorted(set(fam) - {"genuine"}):
        m = (fam == f) | (fam == "genuine")
        out[f] = eer(scores[m], y[m])
    out["n_scored"] = int((~np.isnan(scores)).sum())
    out["n"] = len(rows)
    return out
