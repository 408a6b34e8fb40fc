"""Evaluate the SHIPPED model through the Rust binary, exactly as users run it.

    cargo build --release
    cd training && python -m synthscan_train.evaluate [--model models/synthscan.json]

Runs `target/release/synthscan analyze --model models/synthscan.json --format jsonl FILES...` on
  clean  the corpus dev split as stored (16 kHz FLAC)
  phone  the same files through a deterministic telephone channel: 8 kHz, 300-3400 Hz band-pass
         (6th-order Butterworth), G.711 mu-law WAV (written once to training/.cache/devphone/)
and reports file-level EER (overall and per family: waveglow, vc, kokoro, others; each family's
synthetic files vs all genuine files), detection rate and genuine false-flag rate at the shipped
threshold, and the share of inconclusive files (too little speech). EER is computed over conclusive
files (verdict genuine/synthetic); inconclusive ones are counted separately.

Also runs shortcut probes (silence-only and noise-only inputs; narrowband-only dev; dev with 2 s
of leading silence), a channel probe (dev through ffmpeg's afftdn noise reduction, as handsets and
conferencing software clean speech; training never applies it), when present, the held-out generated TTS
systems (training/.cache/gen dev), and the leave-repositories-out table of the clip store's dev pages
(clipstore.py), clean and through the same G.711 channel.

Writes training/results/dev_eval.json and training/results/dev_eval.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf

from . import augment
from . import data
from . import rust
from .store import (
    NARROWBAND_MAX_RATE_HZ, bounded_split_thresholds, choose_threshold, eer, family_group, rank_score, threshold_at)

RESULTS = data.TRAIN_DIR / "results"
PROBE = data.CACHE / "probe"
BASELINE = {"clean": {"all": 17.8, "vc": 20.0, "waveglow": 21.6, "kokoro": 0.0},
            "phone": {"all": 38.0, "vc": 41.9, "waveglow": 30.0, "kokoro": 35.1}}


def ensure_dev() -> list[dict]:
    if not data.DEV_TABLE.exists():
        from synthscan_train import prepare
        data.write_csv(data.DEV_TABLE, prepare.dev_tables(data.all_rows()))
    return data.read_dev_table()


def probe_files() -> dict[str, list[str]]:
    """Synthetic probes for shortcuts: silence / noise only (should be inconclusive)."""
    PROBE.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    out = {"silence_or_noise": []}
    n = 10 * 16000
    sigs = {
        "digital_silence": np.zeros(n, np.float32),
        "hiss_-60dB": (rng.standard_normal(n) * 1e-3).astype(np.float32),
        "white_-20dB": (rng.standard_normal(n) * 0.1).astype(np.float32),
        "pink_-25dB": (augment.pink_noise(n, rng) * 0.056).astype(np.float32),
        "hum_50Hz": (0.1 * np.sin(2 * np.pi * 50 * np.arange(n) / 16000)).astype(np.float32),
        "dialtone_350_440": (0.05 * (np.sin(2 * np.pi * 350 * np.arange(n) / 16000)
                                     + np.sin(2 * np.pi * 440 * np.arange(n) / 16000))).astype(np.float32),
    }
    for k, x in sigs.items():
        p = PROBE / f"{k}.wav"
        sf.write(p, x, 16000, subtype="PCM_16")
        out["silence_or_noise"].append(str(p))
    return out


# the channel probes: kind -> what the markdown calls it
VARIANTS = {"nb": "8 kHz PCM, no codec", "lead2s": "2 s leading digital silence",
            "denoise": "ffmpeg afftdn noise reduction at its defaults, at the file's own rate"}


def variant_files(dev: list[dict], kind: str) -> dict[str, str]:
    """Deterministic dev variants: 'nb' (8 kHz PCM, no codec), 'lead2s' (2 s digital silence first), 'denoise'
    (ffmpeg's FFT noise reduction at its defaults: 12 dB less of the noise it tracks, which smooths the low-level
    texture between harmonics and in pauses that the occlusion diagnostic found the model reads)."""
    d = PROBE / kind
    d.mkdir(parents=True, exist_ok=True)
    m = {}
    for r in dev:
        p = d / (data.stem(r["path"]) + ".wav")
        if not p.exists() and kind == "denoise":
            # written under a temporary name first, so that an interrupted run leaves no short file behind
            tmp = p.with_suffix(".part.wav")
            subprocess.run(["ffmpeg", "-v", "error", "-y", "-i", r["path"], "-ac", "1",
                            "-af", "afftdn", "-c:a", "pcm_s16le", str(tmp)], check=True)
            tmp.rename(p)
        elif not p.exists():
            x = data.load16(r["path"])
            if kind == "nb":
                sf.write(p, augment.resample(x, 16000, 8000), 8000, subtype="PCM_16")
            else:
                sf.write(p, np.concatenate([np.zeros(32000, np.float32), x]), 16000, subtype="PCM_16")
        m[r["path"]] = str(p)
    return m


def metrics(rows: list[dict], res: dict[str, dict], key: str = "path") -> dict:
    score = np.array([np.nan if res[r[key]]["score"] is None or res[r[key]]["verdict"] == "inconclusive"
                      else res[r[key]]["score"] for r in rows], dtype=float)
    verdict = np.array([res[r[key]]["verdict"] for r in rows])
    y = np.array([1.0 if r["label"] == "spoof" else 0.0 for r in rows])
    fam = np.array([family_group(r["family"], r["label"]) for r in rows])
    out = {"n_files": len(rows), "inconclusive_share": float(np.mean(verdict == "inconclusive")),
           "eer": {"all": eer(score, y)}}
    for f in ("waveglow", "vc", "kokoro", "others"):
        m = (fam == f) | (fam == "genuine")
        if (fam == f).any():
            out["eer"][f] = eer(score[m], y[m])
    gen, spf = y == 0, y == 1
    out["genuine_flagged"] = float(np.mean(verdict[gen] == "synthetic")) if gen.any() else None
    out["detection_rate"] = float(np.mean(verdict[spf] == "synthetic")) if spf.any() else None
    out["detection_rate_conclusive"] = (float(np.mean(verdict[spf & (verdict != "inconclusive")] == "synthetic"))
                                        if (spf & (verdict != "inconclusive")).any() else None)
    out["detection_by_family"] = {f: float(np.mean(verdict[fam == f] == "synthetic"))
                                  for f in ("waveglow", "vc", "kokoro", "others") if (fam == f).any()}
    # per synthesis system: a family's figure can hide systems it never catches (e.g. WaveGlow
    # resynthesis of natural recordings in a family whose TTS systems are caught)
    sysname = np.array([r.get("system", "") or "?" for r in rows])
    out["detection_by_system"] = {}
    for sname in sorted(set(sysname[spf])):
        m = (sysname == sname) & spf
        out["detection_by_system"][sname] = {
            "family": rows[int(np.flatnonzero(m)[0])]["family"], "n": int(m.sum()),
            "detected": float(np.mean(verdict[m] == "synthetic")),
            "median_p": float(np.nanmedian(score[m])) if (~np.isnan(score[m])).any() else None}
    out["n_genuine"], out["n_spoof"] = int(gen.sum()), int(spf.sum())
    ds = np.array([r.get("dataset", "") or "?" for r in rows])
    out["genuine_by_dataset"] = {d: {"n": int(((ds == d) & gen).sum()),
                                     "flagged": float(np.mean(verdict[(ds == d) & gen] == "synthetic")),
                                     "median_p": float(np.nanmedian(score[(ds == d) & gen]))
                                     if (~np.isnan(score[(ds == d) & gen])).any() else None}
                                 for d in sorted(set(ds[gen]))}
    # files are named relative to the corpus / cache (data.portable): results compare across checkouts
    out["files"] = [{"file": data.portable(r["orig"] if "orig" in r else r[key]), "label": r["label"],
                     "family": r["family"], "system": r.get("system", "") or "?",
                     "dataset": r.get("dataset", "") or "?", "p": res[r[key]]["score"],
                     "verdict": res[r[key]]["verdict"], "rate": res[r[key]]["sample_rate_hz"]} for r in rows]
    return out


def split_rule(p: dict, rate: dict, selections: list[dict]) -> tuple[float, float]:
    """The split rule (store.bounded_split_thresholds) on the genuine files each selection picks: p and rate map
    a condition to arrays of rank scores and input rates, a selection maps a condition to an index or a mask."""
    return bounded_split_thresholds([tuple(list(zip(p[c][s[c]], rate[c][s[c]])) for c in ("clean", "phone"))
                                     for s in selections])


def threshold_selection(training: dict) -> tuple[bool, bool]:
    """(the threshold was chosen on the wide set's genuine files, the corpus dev's were also bounded on their
    own) for the manifest's training block: from the threshold_selection that ship.py writes, or, in a manifest
    written before that field existed, from the phrases of its prose threshold_rule."""
    sel = training.get("threshold_selection")
    if sel is not None:
        return sel["genuine"] == "wide", bool(sel["bound_corpus"])
    rule = training.get("threshold_rule") or ""
    return "held-out genuine package" in rule, "corpus dev genuine files on their own" in rule


def threshold_stability(R: dict, genuine_from: str = "corpus", bound_corpus: bool = False, n_boot: int = 2000,
                        seed: int = 0) -> dict:
    """How much the shipped threshold, and detection at it, depend on which genuine dev files there are.

    The rule (ship.py) takes the lowest threshold with <= 2 % of genuine dev files flagged, clean and through
    G.711, the stricter of the two: with the ~120 corpus genuine files it is set by the 3rd-4th highest genuine
    score, with the ~590 of the wide set (genuine_from="wide", ship.py --threshold-genuine wide) by the 12th.
    Resampling the genuine files (the same files in both conditions, with replacement) and re-applying the
    rule gives the spread a different draw of genuine speakers would have given. Detection at each resampled
    threshold is over all synthetic dev files (inconclusive ones count as missed, as in detection_rate).
    Files are resampled, not speakers or source datasets: the top genuine scores come from a few demo pages
    (r9y9's Japanese ground truth at 2026-11-29), so the true spread is if anything wider than this.
    With the split rule (ship.py --threshold-on split) the resampled files set both thresholds, and each
    synthetic file is judged by the one of its input rate; "threshold" is then the wideband one. bound_corpus
    (the manifest's rule holds the corpus dev genuine files on their own to <= 2 % as well) applies that bound
    to the resampled corpus files among the draw.
    Also reported: each channel at its own threshold (shown for a single-threshold model only)."""
    gen, rate, spoof, spoof_narrow = {}, {}, {}, {}
    for c in ("clean", "phone"):
        fs = R[c]["files"]
        # the genuine files the shipped rule counted: the corpus dev's, or the wide set's (ship.py
        # --threshold-genuine wide)
        gf = R["wide"][c]["files"] if genuine_from == "wide" else fs
        gen[c] = {f["file"]: rank_score(f["p"], f["verdict"]) for f in gf if f["label"] == "bonafide"}
        rate[c] = {f["file"]: f.get("rate", 16000) for f in gf if f["label"] == "bonafide"}
        spoof[c] = np.array([f["p"] if f["verdict"] != "inconclusive" and f["p"] is not None else -1.0
                             for f in fs if f["label"] == "spoof"], dtype=float)
        spoof_narrow[c] = np.array([f.get("rate", 16000) <= NARROWBAND_MAX_RATE_HZ
                                    for f in fs if f["label"] == "spoof"])
    names = sorted(set(gen["clean"]) & set(gen["phone"]))
    g = {c: np.array([gen[c][n] for n in names], dtype=float) for c in gen}
    gr = {c: np.array([rate[c][n] for n in names]) for c in gen}
    split = R.get("threshold_narrowband") is not None
    corpus_names = {f["file"] for f in R["clean"]["files"] if f["label"] == "bonafide"}
    in_corpus = np.array([n in corpus_names for n in names])

    def rule(idx):
        """The shipped rule on the genuine files idx: a threshold per spoof file, per condition."""
        if split:
            subsets = [idx] + ([idx[in_corpus[idx]]] if bound_corpus else [])
            t_wb, t_nb = split_rule(g, gr, [{c: ix for c in g} for ix in subsets])
            return t_wb, {c: np.where(spoof_narrow[c], t_nb, t_wb) for c in g}
        t = max(choose_threshold(g[c][idx]) for c in g)
        return t, {c: t for c in g}

    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_boot):
        idx = rng.integers(0, len(names), len(names))
        own = {c: choose_threshold(g[c][idx]) for c in g}
        t, per_file = rule(idx)
        rows.append([t] + [float(np.mean(spoof[c] >= per_file[c])) for c in g]
                    + [own[c] for c in g] + [float(np.mean(spoof[c] >= own[c])) for c in g])
    a = np.array(rows)
    keys = ["threshold", "detected_clean", "detected_phone", "own_threshold_clean", "own_threshold_phone",
            "own_detected_clean", "own_detected_phone"]
    own_now = {c: choose_threshold(g[c]) for c in g}
    return {"n_genuine": len(names), "genuine_from": genuine_from, "n_boot": n_boot, "percentiles": [5, 50, 95],
            "split": split,
            **{k: [float(v) for v in np.percentile(a[:, i], [5, 50, 95])] for i, k in enumerate(keys)},
            "own_threshold_on_dev": own_now,
            "own_detected_on_dev": {c: float(np.mean(spoof[c] >= own_now[c])) for c in g}}


def source_transfer(R: dict, bound_corpus: bool = False) -> dict:
    """Genuine flagged on a source the threshold never saw: for each genuine source (dataset) of the wide dev
    set, the shipped rule (<= 2 % flagged, clean and G.711, the stricter; or the split rule, each file judged by
    the threshold of its input rate) is applied to the genuine files of all OTHER sources, and the share of the held-out source's files flagged at that threshold is recorded. Pooled
    over sources (weighted by files), it estimates the false-alarm rate on genuine speech from a new source,
    which the in-sample rate (<= 2 % by construction, where the threshold was chosen on these files) cannot.
    bound_corpus: as in threshold_stability, the corpus dev files among the other sources are bounded too."""
    gen = {c: [f for f in R["wide"][c]["files"] if f["label"] == "bonafide"] for c in ("clean", "phone")}
    p = {c: np.array([rank_score(f["p"], f["verdict"]) for f in gen[c]], dtype=float) for c in gen}
    rate = {c: np.array([f.get("rate", 16000) for f in gen[c]]) for c in gen}
    ds = {c: np.array([f["dataset"] for f in gen[c]]) for c in gen}
    corpus_names = {c: {f["file"] for f in R[c]["files"] if f["label"] == "bonafide"} for c in gen}
    corpus = {c: np.array([f["file"] in corpus_names[c] for f in gen[c]]) for c in gen}
    split = R.get("threshold_narrowband") is not None
    out = {}
    for d in sorted(set(ds["clean"])):
        if split:
            keeps = [{c: ds[c] != d for c in gen}]
            if bound_corpus:
                keeps.append({c: (ds[c] != d) & corpus[c] for c in gen})
            t, t_nb = split_rule(p, rate, keeps)
        else:
            t, t_nb = max(choose_threshold(p[c][ds[c] != d]) for c in gen), None
        e = {"n": int((ds["clean"] == d).sum()), "threshold": t}
        if t_nb is not None:
            e["threshold_narrowband"] = t_nb
        for c in gen:
            m = ds[c] == d
            thr = np.array([threshold_at(r, t, t_nb) for r in rate[c][m]])
            e["flagged_" + c] = float(np.mean(np.nan_to_num(p[c][m], nan=-1.0) >= thr))
        out[d] = e
    n = sum(e["n"] for e in out.values())
    pooled = {c: sum(e["n"] * e["flagged_" + c] for e in out.values()) / n for c in gen}
    return {"by_source": out, "pooled": pooled, "n_sources": len(out), "n_files": n}


def compact_json(R: dict) -> str:
    """Indented JSON with each per-file record on one line (there are ~4,000 of them)."""
    text = json.dumps(R, indent=1)
    return re.sub(r'\{\n\s*("file": [^{}\[\]]*?)\n\s*\}',
                  lambda m: "{" + " ".join(part.strip() for part in m.group(1).split("\n")) + "}", text)


def pct(v):
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f} %"


def markdown(R: dict) -> str:
    rule = R.get("threshold_rule") or "chosen on dev clean: lowest with ≤ 2 % genuine flagged"
    nb = R.get("threshold_narrowband")
    thr = (f"thresholds {R['threshold']:.4f} (wideband input) and {nb:.4f} (input at <= 8 kHz: every G.711 copy)"
           if nb is not None else f"threshold {R['threshold']:.4f}")
    L = [f"Model `{R['model']['name']}` sha256 `{R['model']['sha256'][:16]}…`, {thr} "
         f"({rule}). File-level, through `synthscan analyze`.", "",
         "| condition | EER | waveglow | vc | kokoro (jm_kumo) | others | detected @thr | genuine flagged @thr | inconclusive |",
         "|---|---|---|---|---|---|---|---|---|"]
    for c in ("clean", "phone"):
        m = R[c]
        e = m["eer"]
        L.append(f"| {c} | {pct(e['all'])} | {pct(e.get('waveglow'))} | {pct(e.get('vc'))} | "
                 f"{pct(e.get('kokoro'))} | {pct(e.get('others'))} | {pct(m['detection_rate'])} | "
                 f"{pct(m['genuine_flagged'])} | {pct(m['inconclusive_share'])} |")
        b = BASELINE[c]
        L.append(f"| {c} (README baseline) | {b['all']} % | {b['waveglow']} % | {b['vc']} % | {b['kokoro']} % | | | | |")
    if "detection_by_system" in R["clean"]:
        bs = {c: R[c]["detection_by_system"] for c in ("clean", "phone")}

        def med(v):
            return "–" if v is None else f"{v:.2f}"

        L += ["", "Corpus dev synthetic files by system (every one held out from training), detected at the "
              "threshold and median score, clean / G.711:", "",
              "| family | system | n | detected clean | detected G.711 | median score clean | median score G.711 |",
              "|---|---|---|---|---|---|---|"]
        for sname, v in sorted(bs["clean"].items(), key=lambda kv: (kv[1]["family"], kv[1]["detected"], kv[0])):
            ph = bs["phone"].get(sname, {})
            L.append(f"| {v['family']} | {sname} | {v['n']} | {pct(v['detected'])} | {pct(ph.get('detected'))} | "
                     f"{med(v['median_p'])} | {med(ph.get('median_p'))} |")
    L += ["", "Shortcut and channel probes (the corpus dev split, altered):", ""]
    for k in VARIANTS:
        if k in R:
            m = R[k]
            L.append(f"- dev `{k}` ({VARIANTS[k]}): "
                     f"EER {pct(m['eer']['all'])}, genuine flagged {pct(m['genuine_flagged'])}, "
                     f"detected {pct(m['detection_rate'])}")
    if "silence_or_noise" in R:
        v = R["silence_or_noise"]
        L.append("- silence/noise/tone-only 10 s inputs: " + ", ".join(f"{k}: {x['verdict']}" for k, x in v.items()))
    if "gen_dev" in R:
        g = R["gen_dev"]
        L.append("")
        L.append("Held-out generated TTS (training/.cache/gen dev split), detection at threshold: "
                 + ", ".join(f"{k} {pct(v['detection_rate'])} (n={v['n']}, clean) / "
                             f"{pct(v.get('detection_rate_phone'))} (phone)" for k, v in g.items()))
        if any("eer" in v for v in g.values()):
            L.append("")
            L.append("EER of each held-out generated system against the corpus dev genuine files (same condition): "
                     + ", ".join(f"{k} {pct(v.get('eer'))} clean / {pct(v.get('eer_phone'))} phone"
                                 for k, v in g.items()))
    if "wide" in R:
        L += ["", "Wide dev set (the corpus dev plus the held-out genuine package speech and generated TTS of "
              "genuine.py and generate.py):", "",
              "| condition | EER | genuine files | synthetic files | detected @thr | genuine flagged @thr | inconclusive |",
              "|---|---|---|---|---|---|---|"]
        for c in ("clean", "phone"):
            m = R["wide"][c]
            L.append(f"| {c} | {pct(m['eer']['all'])} | {m['n_genuine']} | {m['n_spoof']} | "
                     f"{pct(m['detection_rate'])} | {pct(m['genuine_flagged'])} | {pct(m['inconclusive_share'])} |")
        L += ["", "Genuine flagged at the threshold by source (clean / G.711; n files):", "",
              "| source | n | clean | G.711 |", "|---|---|---|---|"]
        gb = {c: R["wide"][c]["genuine_by_dataset"] for c in ("clean", "phone")}
        for d in sorted(gb["clean"]):
            L.append(f"| {d} | {gb['clean'][d]['n']} | {pct(gb['clean'][d]['flagged'])} | "
                     f"{pct(gb['phone'].get(d, {}).get('flagged'))} |")
    if "source_transfer" in R:
        t = R["source_transfer"]
        worst = sorted(t["by_source"].items(), key=lambda kv: -max(kv[1]["flagged_clean"], kv[1]["flagged_phone"]))
        L += ["", f"Genuine flagged on a source the threshold never saw (each of the {t['n_sources']} genuine sources "
              "of the wide set held out in turn, the threshold rule applied to the others): pooled "
              f"{pct(t['pooled']['clean'])} clean / {pct(t['pooled']['phone'])} G.711 over {t['n_files']} files; "
              "worst sources: " + ", ".join(f"{d} {pct(e['flagged_clean'])} / {pct(e['flagged_phone'])} (n={e['n']})"
                                           for d, e in worst[:4])
              + f"; {sum(max(e['flagged_clean'], e['flagged_phone']) > 0.02 for e in t['by_source'].values())} of "
              f"{t['n_sources']} sources above 2 % in either condition. This estimates the false-alarm rate on genuine "
              "speech from somewhere new."]
    if "threshold_stability" in R:
        s = R["threshold_stability"]

        def span(k, scale=100.0, fmt="{:.1f}"):
            lo, _, hi = s[k]
            return f"{fmt.format(scale * lo)}-{fmt.format(scale * hi)}"

        k = int(np.floor(0.02 * s["n_genuine"])) + 1
        L += ["", f"Threshold stability ({s['n_boot']} bootstrap resamples of the {s['n_genuine']} genuine "
              f"{'wide-set' if s.get('genuine_from') == 'wide' else 'corpus'} dev files the rule counts, 5-95 % "
              f"range): the shipped rule gives a {'wideband ' if s.get('split') else ''}threshold of "
              f"{span('threshold', 1.0, '{:.3f}')}, and detection "
              f"of the corpus dev synthetic files of {span('detected_clean')} % clean and "
              f"{span('detected_phone')} % through G.711. "
              + ("Each threshold sits just above the 2 % quantile of its group's genuine scores" if s.get("split")
                 else f"The threshold sits just above the {k}th highest genuine score of the stricter channel")
              + ", so a few genuine files move it (files are resampled, not "
              "speakers, so the true spread is if anything wider)."]
        if not s.get("split"):
            L += ["", "Each channel at its own threshold (not shipped: the shipped threshold is the stricter of the "
                  "two; ship.py --threshold-on split decides the channel from the input's rate): clean "
                  f"{s['own_threshold_on_dev']['clean']:.4f}, detecting {pct(s['own_detected_on_dev']['clean'])} "
                  f"(resampled {span('own_detected_clean')} %); G.711 {s['own_threshold_on_dev']['phone']:.4f}, "
                  f"detecting {pct(s['own_detected_on_dev']['phone'])} (resampled {span('own_detected_phone')} %)."]
    return "\n".join(L) + "\n"


def store_table(rows: list[dict], res: dict[str, dict]) -> dict:
    """The leave-repositories-out dev table: the clip store's dev pages (clipstore.py), whose pages, recording
    chains and mostly systems are never trained on. Per family (each family's synthetic files against every
    genuine file of these pages), per page, and detection at the shipped thresholds; inconclusive files count as
    not flagged and not detected, and are left out of EER."""
    def one(rs: list[dict]) -> dict:
        sc = np.array([np.nan if res[r["path"]]["verdict"] == "inconclusive" or res[r["path"]]["score"] is None
                       else res[r["path"]]["score"] for r in rs], dtype=float)
        y = np.array([r["label"] == "spoof" for r in rs], dtype=float)
        flagged = np.array([res[r["path"]]["verdict"] == "synthetic" for r in rs])
        out = {"n_genuine": int((y == 0).sum()), "n_spoof": int(y.sum()), "eer": eer(sc, y),
               "inconclusive_share": float(np.isnan(sc).mean()) if len(rs) else None}
        out["genuine_flagged"] = float(flagged[y == 0].mean()) if (y == 0).any() else None
        out["detected"] = float(flagged[y == 1].mean()) if y.any() else None
        return out
    out = {}
    for c in ("clean", "phone"):
        rc = [r for r in rows if r["condition"] == c]
        gen = [r for r in rc if r["label"] == "bonafide"]
        t = {"all": one(rc), "family": {}, "page": {}}
        for fam in sorted({r["family"] for r in rc if r["label"] == "spoof"}):
            t["family"][fam] = one(gen + [r for r in rc if r["family"] == fam and r["label"] == "spoof"])
            t["family"][fam]["systems"] = len({r["system"] for r in rc if r["family"] == fam})
        for page in sorted({r["dataset"] for r in rc}):
            t["page"][page] = one([r for r in rc if r["dataset"] == page])
        t["operating_points"] = operating_points(rc, res)
        out[c] = t
    return out


# shares of genuine files flagged at which the operating points are given (the shipped rule's is 2 %)
OPERATING_FLAG_RATES = (0.01, 0.02, 0.05, 0.10, 0.20)


def operating_points(rows: list[dict], res: dict[str, dict]) -> list[dict]:
    """What `--threshold T` trades on these files: for each share of genuine files flagged, the lowest threshold
    that flags no more of them (store.choose_threshold) and the share of synthetic files, and of commercial
    voices, it detects. Chosen on these very files, so a new recording chain will see more false flags than
    the share says (source_transfer estimates how many)."""
    def p(r):
        v = res[r["path"]]
        return np.nan if v["verdict"] == "inconclusive" or v["score"] is None else float(v["score"])
    gen = np.array([p(r) for r in rows if r["label"] == "bonafide"], dtype=float)
    spoof = [r for r in rows if r["label"] == "spoof"]
    sp = np.array([p(r) for r in spoof], dtype=float)
    commercial = np.array([r["family"] == "commercial" for r in spoof])
    out = []
    for rate in OPERATING_FLAG_RATES:
        t = choose_threshold(gen, rate)
        hit = np.nan_to_num(sp, nan=-1.0) >= t  # inconclusive files are not detected
        out.append({"max_genuine_flagged": rate, "threshold": t,
                    "genuine_flagged": float((np.nan_to_num(gen, nan=-1.0) >= t).mean()),
                    "detected": float(hit.mean()),
                    "commercial_detected": float(hit[commercial].mean()) if commercial.any() else None})
    return out


def store_markdown(T: dict) -> str:
    def pct(v):
        return "–" if v is None or v != v else f"{100 * v:.1f}"
    L = ["", "### Leave-repositories-out dev (the clip store's held-out pages)", "",
         "| family | systems | genuine / synthetic files | EER clean | EER G.711 | detected clean | detected G.711 |",
         "|---|---|---|---|---|---|---|"]
    cl, ph = T["clean"], T["phone"]
    for fam in cl["family"]:
        a, b = cl["family"][fam], ph["family"][fam]
        L.append(f"| {fam} | {a['systems']} | {a['n_genuine']} / {a['n_spoof']} | {pct(a['eer'])} | {pct(b['eer'])} | "
                 f"{pct(a['detected'])} | {pct(b['detected'])} |")
    a, b = cl["all"], ph["all"]
    L.append(f"| **all** | | {a['n_genuine']} / {a['n_spoof']} | **{pct(a['eer'])}** | **{pct(b['eer'])}** | "
             f"{pct(a['detected'])} | {pct(b['detected'])} |")
    L += ["", f"Genuine files flagged at the shipped thresholds: {pct(a['genuine_flagged'])} % clean, "
          f"{pct(b['genuine_flagged'])} % through G.711.", "",
          "| page | genuine / synthetic | EER clean | EER G.711 | genuine flagged clean / G.711 | detected clean / G.711 |",
          "|---|---|---|---|---|---|"]
    for page in cl["page"]:
        a, b = cl["page"][page], ph["page"][page]
        L.append(f"| {page} | {a['n_genuine']} / {a['n_spoof']} | {pct(a['eer'])} | {pct(b['eer'])} | "
                 f"{pct(a['genuine_flagged'])} / {pct(b['genuine_flagged'])} | {pct(a['detected'])} / {pct(b['detected'])} |")
    L += ["", "Operating points (one `--threshold` for every input; chosen on these files):", "",
          *operating_markdown(T)]
    return "\n".join(L) + "\n"


def operating_markdown(T: dict) -> list[str]:
    """The operating points of the leave-repositories-out table as a markdown table (also in the model card)."""
    def pct(v):
        return "–" if v is None or v != v else f"{100 * v:.1f} %"
    L = ["| genuine flagged at most | threshold clean | detected clean | commercial clean | threshold G.711 | "
         "detected G.711 | commercial G.711 |", "|---|---|---|---|---|---|---|"]
    for a, b in zip(T["clean"].get("operating_points", []), T["phone"].get("operating_points", [])):
        L.append(f"| {100 * a['max_genuine_flagged']:.0f} % | {a['threshold']:.4f} | {pct(a['detected'])} | "
                 f"{pct(a['commercial_detected'])} | {b['threshold']:.4f} | {pct(b['detected'])} | "
                 f"{pct(b['commercial_detected'])} |")
    return L


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", type=Path, default=data.REPO / "models" / "synthscan.json")
    ap.add_argument("--no-probes", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS, help="results folder (default training/results)")
    a = ap.parse_args()
    a.model = a.model.resolve()
    man = json.loads(a.model.read_text())
    onnx_path = a.model.parent / man["onnx"]
    sha = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    assert sha == man["sha256"], "manifest sha256 does not match the onnx file"
    # a model trained on half of the KDE languages must be measured without them (and one trained without, with)
    kde_train = bool(man.get("training", {}).get("kde_train", False))
    if kde_train != data.KDE_TRAIN:
        raise SystemExit(f"{a.model.name} was trained {'with' if kde_train else 'without'} the KDE home recordings "
                         "in training: measure it under a recipe with the same kde_train (and a prepare run under it)")
    dev_all = ensure_dev()
    dev = [r for r in dev_all if r["role"] == "dev"]
    clean = [r for r in dev if r["condition"] == "clean"]
    phone = [r for r in dev if r["condition"] == "phone"]
    R = {"model": {"name": man["name"], "version": man["version"], "sha256": sha},
         "threshold": man["threshold"], "threshold_narrowband": man.get("threshold_narrowband"),
         "calibration": man["calibration"], "baseline_readme": BASELINE,
         "threshold_rule": man.get("training", {}).get("threshold_rule")}
    res = rust.analyze([r["path"] for r in clean + phone], a.model)
    R["clean"] = metrics(clean, res)
    R["phone"] = metrics(phone, res)
    if not a.no_probes:
        for kind in VARIANTS:
            vm = variant_files(clean, kind)
            rows = [{**r, "path": vm[r["path"]]} for r in clean]
            R[kind] = metrics(rows, rust.analyze([r["path"] for r in rows], a.model))
        pf = probe_files()["silence_or_noise"]
        pr = rust.analyze(pf, a.model)
        R["silence_or_noise"] = {Path(p).stem: {"verdict": pr[p]["verdict"], "score": pr[p]["score"],
                                                "speech_s": pr[p]["speech_s"]} for p in pf}
    extra = [r for r in dev_all if r["role"] == "dev_extra"]
    if extra and not a.no_probes:
        xres = rust.analyze([r["path"] for r in extra], a.model)
        gd = [r for r in extra if r["label"] == "spoof"]
        if gd:
            R["gen_dev"] = {}
            for sysname in sorted({r["system"] for r in gd}):
                for cond in ("clean", "phone"):
                    rs = [r for r in gd if r["system"] == sysname and r["condition"] == cond]
                    det = float(np.mean([xres[r["path"]]["verdict"] == "synthetic" for r in rs]))
                    e = R["gen_dev"].setdefault(sysname, {"n": len(rs)})
                    e["detection_rate" if cond == "clean" else "detection_rate_phone"] = det
                    # EER of this held-out system vs the corpus dev genuine files of the same condition
                    gm = R[cond]["files"]
                    gs = [f["p"] if f["verdict"] != "inconclusive" else None for f in gm if f["label"] == "bonafide"]
                    ss = [xres[r["path"]]["score"] if xres[r["path"]]["verdict"] != "inconclusive" else None
                          for r in rs]
                    sc = np.array([np.nan if v is None else v for v in gs + ss], dtype=float)
                    yy = np.array([0.0] * len(gs) + [1.0] * len(ss))
                    e["eer" if cond == "clean" else "eer_phone"] = eer(sc, yy)
        # the wide dev set: corpus dev plus every held-out source the project collected itself (genuine
        # speech from packages, generated TTS); more genuine speakers and channels than the corpus dev alone
        res_all = {**res, **xres}
        R["wide"] = {c: metrics([r for r in dev + extra if r["condition"] == c], res_all) for c in ("clean", "phone")}
    store_dev = [r for r in dev_all if r["role"] == "dev_demo"]
    if store_dev:
        R["store_dev"] = store_table(store_dev, rust.analyze([r["path"] for r in store_dev], a.model))
    wide_rule, bound_corpus = threshold_selection(man.get("training", {}))
    if "wide" in R:
        R["source_transfer"] = source_transfer(R, bound_corpus)
    if wide_rule and "wide" not in R:
        raise SystemExit("the threshold was chosen on the wide dev set: run without --no-probes, after genuine.py")
    R["threshold_stability"] = threshold_stability(R, "wide" if wide_rule else "corpus", bound_corpus)
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "dev_eval.json").write_text(compact_json(R) + "\n")
    md = markdown(R) + (store_markdown(R["store_dev"]) if "store_dev" in R else "")
    (a.out / "dev_eval.md").write_text(md)
    print(md)


if __name__ == "__main__":
    main()
