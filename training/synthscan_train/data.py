"""Data tables, augmented copies and Rust feature extraction (all under training/.cache/).

Sources (same columns, `file` relative to the manifest's folder):
  /work/shared/corpus/manifest.csv      the shared corpus (train/dev as given)
  training/.cache/gen/manifest.csv      locally generated TTS (spoof), if present
  training/.cache/genuine/manifest.csv  genuine speech from packages, if present
  training/.cache/vocoded/manifest.csv  copy-synthesis of genuine TRAIN clips (spoof; vocode.py), if
                                        present AND SYNTHSCAN_VOCODED=1
  training/.cache/vocoded_world/manifest.csv  the same through WORLD (vocode.py --vocoders world), if
                                        present AND SYNTHSCAN_WORLD=1
  training/.cache/gen_mix/manifest.csv  Kokoro with blended voice styles (generate.py --engines kokoromix),
                                        if present AND SYNTHSCAN_KMIX=1
  training/.cache/vocoded_hifigan{,22}/manifest.csv  copy-synthesis through HiFi-GAN (vocode.py --vocoders
                                        hifigan / hifigan22), if present AND SYNTHSCAN_HIFIGAN{,22}=1

Roles: corpus dev -> "dev"; extra dev -> "dev_extra" (reported separately); train rows -> "train",
or "calib" (~12 % of train, grouped by speaker for genuine and copy-synthesis, by system for synthetic) which is kept
out of model training and used only to fit Platt scaling.

Units: a train/calib clip, or several short clips (< 1.6 s) of one speaker and dataset concatenated
into one ~3-6 s recording (short clips alone give no scoring window). Each unit gets variant 0 (clean)
plus N_AUG augmented variants (augment.py), all written as WAV to .cache/aud/ (variant 0 of a
single-clip unit is the source file itself).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from . import augment as A

TRAIN_DIR = Path(__file__).resolve().parents[1]
REPO = TRAIN_DIR.parent
CACHE = (TRAIN_DIR / ".cache").resolve()  # resolved: the cache may be a symlink shared by worktrees
CORPUS = Path(os.environ.get("SYNTHSCAN_CORPUS", "/work/shared/corpus"))
EXTRA = [CACHE / "gen", CACHE / "genuine"]
# optional data sets, each read only when its switch is "1": (switch, folder under .cache, variants-table tag)
OPTIONAL_SETS = [
    # copy-synthesis (vocode.py); run.sh sets it: the shipped model uses it
    ("SYNTHSCAN_VOCODED", "vocoded", "_vocoded"),
    # WORLD copy-synthesis (vocode.py --vocoders world --out .cache/vocoded_world)
    ("SYNTHSCAN_WORLD", "vocoded_world", "_world"),
    # blended-voice Kokoro speech (generate.py --engines kokoromix --out .cache/gen_mix)
    ("SYNTHSCAN_KMIX", "gen_mix", "_kmix"),
    # HiFi-GAN copy-synthesis (vocode.py --vocoders hifigan --out .cache/vocoded_hifigan)
    ("SYNTHSCAN_HIFIGAN", "vocoded_hifigan", "_hifigan"),
    # 22.05 kHz HiFi-GAN copy-synthesis (vocode.py --vocoders hifigan22 --out .cache/vocoded_hifigan22)
    ("SYNTHSCAN_HIFIGAN22", "vocoded_hifigan22", "_hifigan22"),
    # HiFi-GAN copy-synthesis through perturbed weights (vocode.py --vocoders hifiganpert --out .cache/vocoded_hifiganpert)
    ("SYNTHSCAN_HIFIGANPERT", "vocoded_hifiganpert", "_hifiganpert"),
    # copy-synthesis through the vocoder vocoder_train.py trains (vocode.py --vocoders istft --out .cache/vocoded_istft)
    ("SYNTHSCAN_ISTFT", "vocoded_istft", "_istft"),
    # the same vocoder after adversarial fine-tuning (vocode.py --vocoders istftgan --out .cache/vocoded_istftgan)
    ("SYNTHSCAN_ISTFTGAN", "vocoded_istftgan", "_istftgan"),
]
ENABLED_SETS = [(folder, tag) for switch, folder, tag in OPTIONAL_SETS if os.environ.get(switch) == "1"]
EXTRA += [CACHE / folder for folder, _ in ENABLED_SETS]
# SYNTHSCAN_AUG_SALT draws another set of augmentation chains (same units, same probabilities), written to
# their own audio folder and variants table, to measure how much a model depends on the particular draw
AUG_SALT = os.environ.get("SYNTHSCAN_AUG_SALT", "")
_SALT_TAG = f"_salt{AUG_SALT}" if AUG_SALT else ""
# the table of train/calib variants (one per data set); SYNTHSCAN_VARIANTS picks another name
VARIANTS = CACHE / os.environ.get(
    "SYNTHSCAN_VARIANTS", "variants" + "".join(tag for _, tag in ENABLED_SETS) + _SALT_TAG + ".csv")
AUD = CACHE / ("aud" + _SALT_TAG)
# Experiment switches that replace a share of the augmented copies of both classes by a processed copy, the share
# drawn on its own per unit, variant and tag (so every other copy stays as it was), in .cache/aud_<tag>/ and with a
# variants table of its own (the suffix). A "before" process takes the unit's audio, which then goes through the
# chain of the copy it replaces; an "after" process takes the finished copy. Befores run first, then afters, each
# in table order (a copy drawn by two befores is the later one's).
#   (switch, variants-table suffix, tag, share, process, stage)
COPY_SWITCHES = [
    # pauses cut to digital zero or faint comfort noise (augment.noise_gate): an editor, VoIP silence suppression
    ("SYNTHSCAN_GATE", "_gate", "gate", 0.2, A.noise_gate, "after"),
    # with KDE_TRAIN (below) an Ogg Vorbis round trip: the KDE files are Vorbis, and without it the codec would mark
    # the new genuine speech
    ("SYNTHSCAN_KDE_TRAIN", "_kdetrain", "vorbis", 0.1, A.vorbis, "after"),
    # pitch and formants raised (augment.voice_shift): children's and high voices, for both classes alike
    ("SYNTHSCAN_SHIFT", "_shift", "shift", 0.15, A.voice_shift, "before"),
    # RawBoost-style distortion and signal-dependent clicks (augment.nonlinear_channel), as a handset or a
    # converter adds before the codec
    ("SYNTHSCAN_NONLIN", "_nonlin", "nonlin", 0.25, A.nonlinear_channel, "before"),
    # spectral noise reduction of the finished copy (augment.noise_reduction), as the receiving side's software or
    # a recorder cleans a call
    ("SYNTHSCAN_DENOISE", "_denoise", "denoise", 0.2, A.noise_reduction, "after"),
]
_COPIES_ON = [c for c in COPY_SWITCHES if os.environ.get(c[0]) == "1"]
ENABLED_COPIES = [(tag, p, process, stage, CACHE / f"aud_{tag}{_SALT_TAG}")
                  for _, _, tag, p, process, stage in _COPIES_ON]
VARIANTS = VARIANTS.with_name(VARIANTS.stem + "".join(suffix for _, suffix, *_ in _COPIES_ON) + ".csv")
# SYNTHSCAN_DEV_SPOOF_TRAIN=vc (corpus families, comma-separated): a leave-one-family-out trial. That held-out
# family's synthetic dev clips become training data (train or calib, by system, as the train split's are); its
# genuine dev speakers and every other dev clip stay held out. It asks whether one more unseen family in training
# helps on another the network never saw. Such a run's dev numbers for that family are training numbers, so
# ship.py refuses it, and its variants and dev tables get names of their own.
DEV_SPOOF_TRAIN = tuple(sorted({f for f in os.environ.get("SYNTHSCAN_DEV_SPOOF_TRAIN", "").split(",") if f}))
_DEV_SPOOF_TAG = "_devspoof-" + "-".join(DEV_SPOOF_TRAIN) if DEV_SPOOF_TRAIN else ""
VARIANTS = VARIANTS.with_name(VARIANTS.stem + _DEV_SPOOF_TAG + ".csv")
# SYNTHSCAN_KDE_TRAIN=1 (run.sh sets it by default since session 19): genuine.py's KDE home recordings of half of
# the languages (by a hash of the language code, so one language's speakers stay on one side) become genuine TRAIN
# speech (and its Vorbis copies above are made)
KDE_TRAIN = os.environ.get("SYNTHSCAN_KDE_TRAIN") == "1"
KDE_DATASETS = ("klettres_", "ktuberling_")
# the dev table prepare writes (clean and G.711 dev copies, roles dev / dev_extra); read it with read_dev_table
DEV_TABLE = CACHE / f"dev{_DEV_SPOOF_TAG}.csv"
FEAT = CACHE / "feat"  # + "_<config hash>" (set below, after imports)
# SYNTHSCAN_BIN overrides the binary (e.g. a copy outside a tree where cargo is rebuilding it)
BIN = Path(os.environ.get("SYNTHSCAN_BIN", str(REPO / "target" / "release" / "synthscan")))
SR = 16000
N_AUG = 4
CALIB_FRac = 0.12
SHORT_S = 1.6


def _feat_dir() -> Path:
    from . import config as C
    key = json.dumps([C.FEATURES, C.VAD], sort_keys=True)
    return CACHE / ("feat_" + hashlib.sha1(key.encode()).hexdigest()[:10])


FEAT = _feat_dir()


def h01(s: str) -> float:
    return (zlib.crc32(s.encode()) & 0xFFFFFFFF) / 2 ** 32


def read_manifest(path: Path, source: str) -> list[dict]:
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            r = dict(r)
            p = Path(r["file"])
            r["path"] = str(p if p.is_absolute() else (path.parent / p).resolve())
            r["source"] = source
            if not Path(r["path"]).exists():
                continue
            rows.append(r)
    return rows


def read_dev_table() -> list[dict]:
    """DEV_TABLE's rows; stops when it was written under the other SYNTHSCAN_KDE_TRAIN setting: prepare rewrites it
    on each run, so after a KDE_TRAIN prepare a plain run would lose half of the KDE dev recordings, and after a
    plain prepare a KDE_TRAIN run would score its own training languages as dev."""
    dev = read_csv(DEV_TABLE)
    def kde(rows):
        return {r["dataset"] for r in rows if is_kde(r)}
    want = kde(r for r in all_rows() if r["role"] == "dev_extra")
    have = kde(dev)
    if want != have:
        setting = "with SYNTHSCAN_KDE_TRAIN=1" if KDE_TRAIN else "without SYNTHSCAN_KDE_TRAIN"
        raise SystemExit(f"{DEV_TABLE} holds KDE recordings of {len(have)} folders where a run {setting} "
                         f"holds out {len(want)}: it was written by a prepare run under the other setting; run "
                         f"`{'SYNTHSCAN_KDE_TRAIN=1 ' if KDE_TRAIN else ''}python -m synthscan_train.prepare` first")
    return dev


def is_kde(r: dict) -> bool:
    """A KDE home recording (genuine.py: one dataset per package and language folder)."""
    return r.get("dataset", "").startswith(KDE_DATASETS)


def all_rows() -> list[dict]:
    rows = read_manifest(CORPUS / "manifest.csv", "corpus")
    dev_spoof_families = {r["family"] for r in rows if r["split"] == "dev" and r["label"] == "spoof"}
    unknown = sorted(set(DEV_SPOOF_TRAIN) - dev_spoof_families)
    if unknown:
        raise SystemExit(f"SYNTHSCAN_DEV_SPOOF_TRAIN names {', '.join(unknown)}; the corpus dev synthetic families "
                         f"are {', '.join(sorted(dev_spoof_families))}")
    for d in EXTRA:
        m = d / "manifest.csv"
        if m.exists():
            rows += read_manifest(m, d.name)
    for r in rows:
        if KDE_TRAIN and is_kde(r) and h01("kde:" + r["language"]) < 0.5:
            r["split"] = "train"
        if (r["source"] == "corpus" and r["split"] == "dev" and r["label"] == "spoof"
                and r["family"] in DEV_SPOOF_TRAIN):
            r["split"] = "train"
        if r["split"] == "dev":
            r["role"] = "dev" if r["source"] == "corpus" else "dev_extra"
        else:
            # vocoded = copy-synthesis of genuine train speakers (vocode.py): grouped by speaker like them
            key = r["speaker"] if (r["label"] == "bonafide" or r["source"].startswith("vocoded")) else r["system"]
            r["role"] = "calib" if h01("calib:" + r["source"] + ":" + key) < CALIB_FRac else "train"
    return rows


_PORTABLE_ROOTS = ((CACHE, "cache"), (CORPUS.resolve(), "corpus"))  # resolved as read_manifest's paths are


def portable(path: str) -> str:
    """`path` relative to the corpus or the cache it lies in, so that what is derived from it (unit ids, and
    through them the augmentation seeds and cached file names) does not depend on where the repository or
    the corpus is checked out. Paths elsewhere stay absolute."""
    p = Path(path)
    for root, name in _PORTABLE_ROOTS:
        try:
            return f"{name}/{p.relative_to(root)}"
        except ValueError:
            continue
    return path


def make_units(rows: list[dict]) -> list[dict]:
    units, short = [], {}
    for r in rows:
        if r["role"] not in ("train", "calib"):
            continue
        try:
            d = float(r["duration_s"])
        except ValueError:
            d = 99.0
        if d < SHORT_S:
            short.setdefault((r["role"], r["label"], r["source"], r["dataset"], r["speaker"], r["system"]), []).append(r)
        else:
            units.append({"members": [r]})
    for key, rs in sorted(short.items()):
        rs = sorted(rs, key=lambda r: r["path"])
        cur, dur = [], 0.0
        target = 3.0 + 3.0 * h01("len:" + portable(rs[0]["path"]))
        for r in rs:
            cur.append(r)
            dur += float(r["duration_s"]) + 0.3
            if dur >= target:
                units.append({"members": cur})
                cur, dur = [], 0.0
        if cur and dur >= 1.2:
            units.append({"members": cur})
    for u in units:
        m0 = u["members"][0]
        base = Path(m0["path"]).stem
        tag = hashlib.sha1("|".join(portable(m["path"]) for m in u["members"]).encode()).hexdigest()[:8]
        u["id"] = f"{m0['source']}_{m0['family']}_{base}_{tag}"
        for k in ("label", "family", "system", "speaker", "role", "source", "dataset"):
            u[k] = m0.get(k, "")
    return units


def load16(path: str) -> np.ndarray:
    x, sr = sf.read(path, dtype="float32", always_2d=True)
    x = x.mean(axis=1)
    return A.resample(x, sr, SR) if sr != SR else x


_POOL: list[np.ndarray] = []


def _init_pool(paths: list[str]):
    global _POOL
    _POOL = []
    for p in paths:
        try:
            _POOL.append(load16(p))
        except Exception:
            pass


def _unit_audio(u: dict, rng: np.random.Generator) -> np.ndarray:
    parts = []
    for m in u["members"]:
        x = load16(m["path"])
        parts.append(x)
        if len(u["members"]) > 1:
            parts.append(np.zeros(int(rng.uniform(0.1, 0.5) * SR), np.float32))
    return np.concatenate(parts)


def _drawn(u: dict, v: int, tag: str, p: float) -> np.random.Generator | None:
    """The generator of augmented copy v's processed copy `tag`, or None when that copy is not drawn (probability
    1 - p; a draw of its own per unit, variant and tag, so that the other copies stay as they were)."""
    rng = np.random.default_rng(zlib.crc32(f"{tag}:{v}:{u['id']}{_SALT_TAG}".encode()))
    return rng if rng.random() < p else None


def _augmented(x: np.ndarray, u: dict, v: int):
    """Augmented copy v of unit u's audio x: (audio, rate, channel). The chain is drawn from the unit and variant
    alone, so a copy made from processed audio (a "before" switch of COPY_SWITCHES) goes through the chain of the copy
    it replaces."""
    rng = np.random.default_rng(zlib.crc32(f"aug:{v}:{u['id']}{_SALT_TAG}".encode()))
    return A.augment(x, rng, _POOL)


def _do_unit(u: dict) -> list[dict]:
    out = []
    rng0 = np.random.default_rng(zlib.crc32(("clean:" + u["id"]).encode()))
    x = None
    for v in range(N_AUG + 1):
        path = AUD / f"{u['id']}__v{v}.wav"
        # the chain is known only when the file is made here; a file from an earlier run is not re-drawn
        ch = "clean" if v == 0 else "cached"
        if v == 0 and len(u["members"]) == 1:
            path = Path(u["members"][0]["path"])
        elif not path.exists():
            if x is None:
                x = _unit_audio(u, rng0)
            if v == 0:
                sf.write(path, x, SR, subtype="PCM_16")
            else:
                y, osr, ch = _augmented(x, u, v)
                sf.write(path, y, osr, subtype="PCM_16")
        for tag, p, process, stage, folder in (ENABLED_COPIES if v > 0 else []):
            if stage != "before" or (rng := _drawn(u, v, tag, p)) is None:
                continue
            path, ch = folder / path.name, f"cached+{tag}"
            if not path.exists():
                if x is None:
                    x = _unit_audio(u, rng0)
                y, osr, ch = _augmented(process(x, rng, SR), u, v)
                sf.write(path, y, osr, subtype="PCM_16")
                ch += f"+{tag}"
        for tag, p, process, stage, folder in (ENABLED_COPIES if v > 0 else []):
            if stage != "after" or (rng := _drawn(u, v, tag, p)) is None:
                continue
            done = folder / path.name
            if not done.exists():
                y, osr = sf.read(path, dtype="float32")
                sf.write(done, process(y, rng, osr), osr, subtype="PCM_16")
            path, ch = done, f"{ch}+{tag}"
        out.append({"unit": u["id"], "variant": v, "path": str(path), "label": u["label"],
                    "family": u["family"], "system": u["system"], "speaker": u["speaker"],
                    "role": u["role"], "source": u["source"], "dataset": u["dataset"], "channel": ch})
    return out


def build_variants(units: list[dict], workers: int = 2) -> list[dict]:
    AUD.mkdir(parents=True, exist_ok=True)
    for *_, folder in ENABLED_COPIES:
        folder.mkdir(parents=True, exist_ok=True)
    gen = [m["path"] for u in units if u["label"] == "bonafide" and u["role"] == "train"
           and u["source"] == "corpus" for m in u["members"]]
    rng = np.random.default_rng(7)
    pool_paths = list(rng.choice(gen, size=min(150, len(gen)), replace=False)) if gen else []
    rows = []
    with ProcessPoolExecutor(workers, initializer=_init_pool, initargs=(pool_paths,)) as ex:
        for i, r in enumerate(ex.map(_do_unit, units, chunksize=8)):
            rows += r
            if i % 500 == 0:
                print(f"  augment {i}/{len(units)}", flush=True)
    return rows


def stem(path: str) -> str:
    p = Path(path)
    rel = p.relative_to("/")
    return str(rel.with_suffix("")).replace("/", "__")


def feat_paths(path: str) -> tuple[Path, Path]:
    s = stem(path)
    return FEAT / f"{s}.features.npy", FEAT / f"{s}.speech.npy"


def extract_features(paths: list[str], config: Path, workers: int = 2) -> None:
    """Runs the Rust front end on every path whose features are not cached yet."""
    FEAT.mkdir(parents=True, exist_ok=True)
    import time
    while not BIN.exists():
        print("  waiting for", BIN, flush=True)
        time.sleep(15)
    todo = [p for p in paths if not feat_paths(p)[1].exists()]
    print(f"  features: {len(todo)} of {len(paths)} to extract", flush=True)
    if not todo:
        return
    procs = []
    for w in range(workers):
        part = todo[w::workers]
        if not part:
            continue
        lst = CACHE / f"featlist_{w}.txt"
        lst.write_text("\n".join(part) + "\n")
        procs.append(subprocess.Popen(
            ["nice", "-n", "5", str(BIN), "features", "--feature-config", str(config),
             "--from-list", str(lst), "--out-dir", str(FEAT), "--relative-to", "/"]))
    for p in procs:
        p.wait()


def write_csv(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0].keys()))
        w.writeheader()
        w.writerows(rows)


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))
