"""Step 3: export the chosen model to ONNX, fit Platt calibration on the held-out TRAIN slice
("calib" role, file level, Rust windowing rule), measure latency, write models/synthscan.{onnx,json},
then set the threshold from the Rust binary's dev-clean output (lowest threshold with <= 2 % of
genuine dev files flagged).

    python -m synthscan_train.ship --run .cache/runs/tcnn [--out-dir DIR] [--threshold-on clean|both|split]
                                   [--threshold-genuine corpus|wide]

--out-dir writes the pair somewhere other than models/ (to evaluate a candidate without shipping it).
--threshold-on clean (default, the v1 rule): <= 2 % of genuine dev-clean files flagged; both: the stricter
of the dev-clean and dev-phone thresholds, so that <= 2 % of genuine dev files are flagged in BOTH
conditions (recommended for phone deployments; see card_notes.md).
--threshold-on split: two thresholds, one for wideband input and one for telephone-rate input (<= 8 kHz, as the
G.711 dev copies), each <= 2 % of its genuine dev files flagged (store.split_thresholds); the Rust binary applies
threshold_narrowband to input at <= 8 kHz.
--threshold-genuine corpus (default) counts the corpus dev genuine files alone (~124); wide also counts the
held-out genuine package speech of genuine.py (dev split: codec2, JFK, LibriVox, praat, six IVR voices, meeting
excerpts, KDE home recordings; ~985 files in all), so that one demo page or one voice moves the threshold less.
With split, wide also holds the corpus dev genuine files on their own to <= 2 % in each band (the issue's
criterion; store.bounded_split_thresholds).
--threshold-only re-runs only the threshold step on the pair already in models/ (or --out-dir): the network,
its calibration and sha256 stay as they are (for a new threshold rule; no --run needed).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from scipy.optimize import minimize

from . import config
from . import data
from . import models
from . import recipe
from . import store
from . import rust

MODELS = data.REPO / "models"
ONNX = MODELS / "synthscan.onnx"
JSON = MODELS / "synthscan.json"
AUGMENTATION = (
    "Per clip: the clean copy plus 4 random chains (2 for the clip store's clips; seeded by clip id), same "
    "probabilities for both "
    "classes: trim + random leading/trailing silence 0-1.5 s of digital zero or faint noise (p 0.6); "
    "synthetic exponential RIR reverb, RT60 0.15-0.8 s (p 0.25); white/pink/babble noise at 5-30 dB SNR "
    "(p 0.4); peak level -30..-1 dBFS; clipping +3..+12 dB (p 0.08); then one channel: G.711 mu/A-law at "
    "8 kHz with a 200-400 / 3200-3600 Hz band-pass (p 0.40), GSM 06.10 at 8 kHz (0.10), MP3 16-48 kbit/s "
    "CBR (0.08), Opus 6-24 kbit/s (0.08) (the three codecs encoded and decoded in memory by libsndfile), "
    "plain 8 kHz / 3.4-4 kHz band-limit (0.14), none (0.20); "
    "packet loss of 20 ms frames at 1-8 % (p 0.12). Telephone-type outputs are written at 8 kHz, so the "
    "Rust resampler sees them as it sees a call. Short clips (< 1.6 s, e.g. FSDD digits) of one speaker are "
    "concatenated into 3-6 s recordings. SpecAugment masking during training.")


def export(model: torch.nn.Module, path: Path) -> None:
    model.eval()
    x = torch.randn(4, config.WINDOW["frames"], config.FEATURES["n_bins"])
    torch.onnx.export(model, x, str(path), input_names=["features"], output_names=["logit"],
                      dynamic_axes={"features": {0: "batch"}, "logit": {0: "batch"}},
                      opset_version=17, dynamo=False, do_constant_folding=True)
    m = onnx.load(str(path))
    onnx.checker.check_model(m)
    onnx.save(m, str(path))  # single file, weights inline


def session(path: Path, threads: int = 1) -> ort.InferenceSession:
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def latency_ms(path: Path, batch: int = 32, reps: int = 60) -> float:
    s = session(path, 1)
    x = np.random.default_rng(0).standard_normal((batch, config.WINDOW["frames"], config.FEATURES["n_bins"])).astype(np.float32)
    for _ in range(10):
        s.run(None, {"features": x})
    best = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(reps // 5):
            s.run(None, {"features": x})
        best.append((time.perf_counter() - t) / (reps // 5) / batch * 1000)
    return float(np.median(best))


def platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    ok = ~np.isnan(scores)
    s, y = scores[ok], y[ok]
    w = np.where(y == 1, 0.5 / y.sum(), 0.5 / (1 - y).sum())

    def nll(p):
        z = p[0] * s + p[1]
        return float(np.sum(w * (np.logaddexp(0, z) - y * z)))
    r = minimize(nll, np.array([1.0, 0.0]), method="Nelder-Mead", options={"xatol": 1e-6, "fatol": 1e-10})
    return float(r.x[0]), float(r.x[1])


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_pair(onnx_src: Path, manifest: dict) -> None:
    """Installs onnx + manifest (sha256 of the final file) as a consistent pair."""
    MODELS.mkdir(parents=True, exist_ok=True)
    tmp_onnx, tmp_json = ONNX.with_suffix(".onnx.tmp"), JSON.with_suffix(".json.tmp")
    tmp_onnx.write_bytes(onnx_src.read_bytes())
    manifest["sha256"] = sha256(tmp_onnx)
    tmp_json.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp_onnx, ONNX)
    os.replace(tmp_json, JSON)


def write_manifest(manifest: dict) -> None:
    assert manifest["sha256"] == sha256(ONNX)
    tmp = JSON.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    os.replace(tmp, JSON)


# what `synthscan info` calls an exported network, where its arch name alone would be cryptic
NETWORK_NAMES = {"dual:full": "the full-band LCNN of a jointly trained dual LCNN"}


def train_description(info: dict) -> dict:
    o = info.get("train_opts", {})
    if o.get("init"):
        # a fine-tune (train.py --init): the base run's training, then this run's continuation of it
        base = json.loads((Path(o["init"]).parent / "dev.json").read_text())
        d = train_description(base)
        d["optimizer"] = d["optimizer"].replace("shipped weights", "the base run's weights")
        d["fine_tune"] = {**train_description({**info, "train_opts": {k: v for k, v in o.items() if k != "init"}}),
                          "train_files": o.get("train_files", "all"), "from": Path(o["init"]).parent.name}
        return d
    hist = info["history"]
    sa = o.get("specaug_params", (0.6, (1, 3), 10, 0.5, (1, 2), 15))
    d = {"epochs": info["epochs"], "windows_per_file_per_epoch": info.get("per_file", 3),
         "loss": o.get("loss", "class-balanced BCE"),
         "optimizer": f"AdamW lr {o.get('lr', 2e-3):g} wd {o.get('weight_decay', 1e-2):g}, one-cycle",
         "batch": o.get("batch", 64),
         "specaugment": f"{sa[1][0]}-{sa[1][1] - 1} freq masks <= {sa[2]} bins (p {sa[0]}), "
                        f"{sa[4][0]}-{sa[4][1] - 1} time masks <= {sa[5]} frames (p {sa[3]})",
         "final_train_loss": round(hist[-1]["loss"], 4)}
    if o.get("swa_last_epochs"):
        d["optimizer"] += (f" over the first {info['epochs'] - o['swa_last_epochs']} epochs, then constant lr "
                           f"{o['swa_lr']:g}; shipped weights = mean of the last {o['swa_last_epochs']} epochs "
                           "(SWA), BatchNorm statistics re-estimated on train windows")
    if o.get("distill"):
        k = o["distill"]
        d["distillation"] = (f"loss = {1 - k['alpha']:g} x the label loss + {k['alpha']:g} x T^2 x BCE of the "
                             f"student's logit / T against sigmoid(teacher logit / T), T = {k['temperature']:g}, "
                             f"for the mean and each branch; teacher {k['teacher']} scores the window before "
                             "SpecAugment")
    if o.get("mixup_within_class_p"):
        d["mixup"] = f"within-class mixup of log features, p {o['mixup_within_class_p']} per window"
    if o.get("freq_mixstyle_p"):
        d["mixstyle"] = (f"frequency-wise MixStyle, p {o['freq_mixstyle_p']} per window: per-band mean and spread "
                         "over time mixed (Beta(0.3, 0.3)) with another window's of the same input band")
    if o.get("sam_rho"):
        d["optimizer"] += f", sharpness-aware minimisation (rho {o['sam_rho']:g})"
    return d


def main():
    global MODELS, ONNX, JSON
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", type=Path)
    ap.add_argument("--out-dir", type=Path, default=None)
    ap.add_argument("--threshold-on", choices=("clean", "both", "split"), default=recipe.get("ship.threshold_on"),
                    help="split: a wideband threshold and one for telephone-rate input (store.split_thresholds)")
    ap.add_argument("--threshold-genuine", choices=("corpus", "wide"), default=recipe.get("ship.threshold_genuine"),
                    help="which genuine dev files set the threshold: the corpus dev, or it plus genuine.py's dev")
    ap.add_argument("--branch", choices=("full",), default=recipe.get("ship.branch") or None,
                    help="export one branch of a dual model (trained jointly) instead of the branches' mean")
    ap.add_argument("--threshold-only", action="store_true",
                    help="keep the shipped network and calibration; only choose the threshold again")
    a = ap.parse_args()
    if a.out_dir is not None:
        MODELS = a.out_dir.resolve()
        ONNX, JSON = MODELS / "synthscan.onnx", MODELS / "synthscan.json"
    if a.threshold_only:
        man = json.loads(JSON.read_text())
        set_threshold(a, man["training"].get("onnx_bytes", ONNX.stat().st_size))
        return
    if a.run is None:
        ap.error("--run is required (unless --threshold-only)")
    torch.set_num_threads(2)
    info = json.loads((a.run / "dev.json").read_text())
    arch = info["arch"]
    # the run's front-end config is the one shipped (and the one whose cached features are read)
    config.FEATURES.update(info.get("features", {}))
    config.VAD.update(info.get("vad", {}))
    data.FEAT = data._feat_dir()
    print(f"front end: {config.FEATURES['filterbank']} x {config.FEATURES['n_bins']}, vad {config.VAD}; features {data.FEAT}")
    model, run_info = models.load_run(a.run, config.FEATURES["n_bins"], config.WINDOW["frames"])
    if run_info.get("dev_spoof_train"):
        # (runs of the removed leave-one-family-out trials)
        ap.error(f"{a.run} trained on dev synthetic clips, so its dev numbers are not held out: it cannot ship")
    if a.branch:
        # dual models are trained with a loss on each branch, so either one is a whole classifier
        model = getattr(model, a.branch)
        arch = f"{arch}:{a.branch}"
    model.eval()
    out_onnx = a.run / "model.onnx"
    export(model, out_onnx)
    size = out_onnx.stat().st_size
    n_par = models.n_params(model)
    assert n_par <= 1_000_000 and size <= 4 * 1024 * 1024, (n_par, size)

    # calibration on the held-out train slice, file level (clean + augmented variants)
    variants = data.read_csv(data.VARIANTS)
    calib = store.Store([v for v in variants if v["role"] == "calib"])
    sess = session(out_onnx, 2)
    pred = lambda xb: sess.run(None, {"features": xb})[0]
    # parity check torch vs onnx
    xb = calib.batch(np.zeros(8, np.int64), np.zeros(8, np.int64)) if len(calib.rows) else None
    if xb is not None:
        with torch.no_grad():
            d = np.abs(model(torch.from_numpy(xb)).numpy() - pred(xb)).max()
        print(f"torch vs onnx max |diff| {d:.2e}")
    cs = store.file_scores(calib, pred)
    scale, bias = platt(cs, calib.y)
    print(f"Platt on {int((~np.isnan(cs)).sum())} calib files: scale {scale:.4f} bias {bias:.4f}")
    lat = latency_ms(out_onnx)
    print(f"latency {lat:.3f} ms/window (1 thread, batch 32)")

    summary = json.loads((a.run / "summary.json").read_text()) if (a.run / "summary.json").exists() else {}
    from .card import data_stats
    # scored here rather than read from the run's history, which scored the branches' mean of a dual run
    from .train import dev_eval, dev_stores
    ev = dev_eval(model, dev_stores())
    training = {
        **summary,
        "data": data_stats(data.all_rows()),
        # the audio the run read (datasums.provenance, through its dev.json), when prepare recorded it
        **({"data_sources": info["data_sources"]} if info.get("data_sources") else {}),
        "augmentation": AUGMENTATION,
        "train": train_description(info),
        "dev_python_final_epoch": {"clean": ev["clean"], "phone": ev["phone"]},
        "architecture": arch,
        "params": n_par,
        "onnx_bytes": size,
        "latency_ms_per_window_1thread_b32": round(lat, 4),
        "calibration_fit": {"method": "Platt (class-balanced) on file-level mean logits",
                            "data": "held-out ~12 % slice of TRAIN (by speaker / system), clean + augmented",
                            "n_files": int((~np.isnan(cs)).sum())},
    }
    man = config.manifest(scale=scale, bias=bias, threshold=0.5, training=training,
                     description="Synthetic-speech detector: %s over %d %s log filterbank bins, "
                                 "%d-frame windows" % (NETWORK_NAMES.get(arch, arch), config.FEATURES["n_bins"],
                                                       config.FEATURES["filterbank"], config.WINDOW["frames"]))
    write_pair(out_onnx, man)
    set_threshold(a, size)


def set_threshold(a, size: int) -> None:
    # threshold from the Rust binary on dev genuine files (clean, and phone unless --threshold-on clean)
    conds = ("clean",) if a.threshold_on == "clean" else ("clean", "phone")
    roles = ("dev", "dev_extra", "dev_demo") if a.threshold_genuine == "wide" else ("dev",)
    dev = [d for d in data.read_dev_table() if d["role"] in roles and d["condition"] in conds and d["label"] == "bonafide"]
    n_extra = sum(d["role"] == "dev_extra" for d in dev if d["condition"] == "clean")
    if a.threshold_genuine == "wide" and not n_extra:
        raise SystemExit("--threshold-genuine wide: no held-out genuine package speech in dev.csv (run genuine.py, "
                         "then prepare)")
    res = rust.analyze([d["path"] for d in dev], JSON)
    man = json.loads(JSON.read_text())
    if a.threshold_on == "split":
        def scored(files):
            return tuple([(store.rank_score(res[d["path"]]["score"], res[d["path"]]["verdict"]),
                           res[d["path"]]["sample_rate_hz"]) for d in files if d["condition"] == c] for c in conds)
        # with the wide set, each dev table on its own is bounded too (store.bounded_split_thresholds): the corpus
        # dev, the held-out package speech and the clip store's dev pages; a pool dominated by one kind of source
        # guarantees none of them
        sets = [scored(dev)] + ([scored([d for d in dev if d["role"] == role])
                                 for role in ("dev", "dev_extra", "dev_demo")
                                 if any(d["role"] == role for d in dev)]
                                if a.threshold_genuine == "wide" else [])
        thr, thr_nb = store.bounded_split_thresholds(sets)
        print(f"threshold wideband {thr:.6f}, narrowband {thr_nb:.6f}")
        man["threshold_narrowband"] = thr_nb
    else:
        per = {}
        for c in conds:
            gen = np.array([store.rank_score(res[d["path"]]["score"], res[d["path"]]["verdict"])
                            for d in dev if d["condition"] == c], dtype=float)
            per[c] = store.choose_threshold(gen)
        thr = max(per.values())
        print("threshold per condition: " + ", ".join(f"{c} {t:.6f}" for c, t in per.items()))
        man.pop("threshold_narrowband", None)
    man["threshold"] = thr
    n_gen = sum(d["condition"] == "clean" for d in dev)
    n_demo = sum(d["role"] == "dev_demo" for d in dev if d["condition"] == "clean")
    which = (f"genuine dev files ({n_gen}: the corpus dev, {n_extra} held-out genuine package clips and {n_demo} "
             "clips of the clip store's dev pages)"
             if a.threshold_genuine == "wide" else "genuine dev files")
    man["training"]["threshold_rule"] = (
        f"lowest threshold with <= 2 % of {which} flagged clean (chosen on dev)" if a.threshold_on == "clean"
        else f"lowest thresholds with <= 2 % of {which} flagged among the inputs each judges: one for input at "
             "<= 8 kHz (every G.711 dev copy, and the clean files recorded at 8 kHz), one for wideband input (the "
             "other clean files), the wideband one never below the narrowband one"
             + ("; the same holds for each of the three on its own"
                if a.threshold_genuine == "wide"
                else "") + " (chosen on dev)"
        if a.threshold_on == "split"
        else f"lowest threshold with <= 2 % of {which} flagged both clean and through the G.711 dev "
             "channel (the stricter of the two; chosen on dev)")
    # the same rule as data, for evaluate.py's threshold bootstrap and leave-one-source-out
    # evaluate.py measures the model under the same setting (the KDE languages it trained on are not dev for it)
    man["training"]["kde_train"] = data.KDE_TRAIN
    man["training"]["threshold_selection"] = {
        "on": a.threshold_on, "genuine": a.threshold_genuine,
        "bound_corpus": a.threshold_on == "split" and a.threshold_genuine == "wide"}
    write_manifest(man)
    print(f"threshold {thr:.6f}; shipped {ONNX} ({size} bytes, sha256 {man['sha256'][:12]}...)")


if __name__ == "__main__":
    main()
