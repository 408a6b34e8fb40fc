"""Data tables, augmented copies and Rust feature extraction (all under training/.cache/).

Sources (same columns, `file` relative to the manifest's folder):
  ../shared/corpus/manifest.csv         the shared corpus (train/dev as given), beside the repository
  training/.cache/<set>/manifest.csv    each data set recipe.toml [data] sets names, when it has been made:
                                        gen (generate.py: offline TTS engines), genuine (genuine.py: speech
                                        shipped in packages), vocoded, vocoded_hifigan, vocoded_hifigan22
                                        (vocode.py: copy-synthesis of genuine TRAIN clips), demo (clipstore.py:
                                        labelled public demo audio)

Roles: corpus dev -> "dev"; the clip store's dev repositories -> "dev_demo"; other extra dev -> "dev_extra" (each
reported separately); train rows -> "train",
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
import subprocess
import zlib
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from . import augment
from . import recipe

TRAIN_DIR = Path(__file__).resolve().parents[1]
REPO = TRAIN_DIR.parent
CACHE = (TRAIN_DIR / ".cache").resolve()  # resolved: the cache may be a symlink shared by worktrees
# the shared corpus lies beside the repository (its README: never copied into it)
CORPUS = REPO.parent / "shared" / "corpus"
_DATA = recipe.get("data")
# the data sets beside the corpus, folders under .cache, each read when it has been made (generate.py, genuine.py,
# vocode.py, clipstore.py; training/README.md)
EXTRA = [CACHE / name for name in _DATA["sets"]]
# the clip store of public demo audio (clipstore.py): its dev repositories are a dev table of their own
DEMO = CACHE / "demo"
VARIANTS = CACHE / "variants.csv"
AUD = CACHE / "aud"
# genuine.py's KDE home recordings of half of the languages (by a hash of the language code, so one language's
# speakers stay on one side) are genuine TRAIN speech; the KDE files are Ogg Vorbis, so a share of the augmented
# copies of both classes goes through a Vorbis round trip after its channel, or the codec would mark them
KDE_TRAIN = bool(_DATA["kde_train"])
KDE_DATASETS = ("klettres_", "ktuberling_")
VORBIS_SHARE = float(_DATA["vorbis_share"]) if KDE_TRAIN else 0.0
VORBIS_AUD = CACHE / "aud_vorbis"
# the dev table prepare writes (clean and G.711 dev copies, roles dev / dev_extra / dev_demo)
DEV_TABLE = CACHE / "dev.csv"
BIN = REPO / "target" / "release" / "synthscan"
SR = 16000
N_AUG = int(_DATA["n_aug"])
CALIB_FRAC = float(_DATA["calib_fraction"])
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
    """DEV_TABLE's rows; stops when they hold other KDE recordings than the recipe holds out (a table written
    under another kde_train setting would score training languages as dev, or lose dev recordings)."""
    dev = read_csv(DEV_TABLE)
    def kde(rows):
        return {r["dataset"] for r in rows if is_kde(r)}
    want = kde(r for r in all_rows() if r["role"] == "dev_extra")
    have = kde(dev)
    if want != have:
        raise SystemExit(f"{DEV_TABLE} holds KDE recordings of {len(have)} folders where the recipe holds out "
                         f"{len(want)}: it was written under another recipe; run `python -m synthscan_train.prepare`")
    return dev


def is_kde(r: dict) -> bool:
    """A KDE home recording (genuine.py: one dataset per package and language folder)."""
    return r.get("dataset", "").startswith(KDE_DATASETS)


def all_rows() -> list[dict]:
    rows = read_manifest(CORPUS / "manifest.csv", "corpus")
    for d in EXTRA:
        m = d / "manifest.csv"
        if m.exists():
            rows += read_manifest(m, d.name)
    for r in rows:
        if KDE_TRAIN and is_kde(r) and h01("kde:" + r["language"]) < 0.5:
            r["split"] = "train"
        if r["split"] == "dev":
            # the store's held-out repositories are the leave-repositories-out dev table of their own
            r["role"] = {"corpus": "dev", DEMO.name: "dev_demo"}.get(r["source"], "dev_extra")
        else:
            # vocoded = copy-synthesis of genuine train speakers (vocode.py): grouped by speaker like them
            key = r["speaker"] if (r["label"] == "bonafide" or r["source"].startswith("vocoded")) else r["system"]
            r["role"] = "calib" if h01("calib:" + r["source"] + ":" + key) < CALIB_FRAC else "train"
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
    return augment.resample(x, sr, SR) if sr != SR else x


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


def _augmented(x: np.ndarray, u: dict, v: int):
    """Augmented copy v of unit u's audio x: (audio, rate, channel), the chain drawn from the unit and variant."""
    rng = np.random.default_rng(zlib.crc32(f"aug:{v}:{u['id']}".encode()))
    return augment.augment(x, rng, _POOL)


def _vorbis_drawn(u: dict, v: int) -> np.random.Generator | None:
    """The generator of augmented copy v's Vorbis round trip, or None when it is not drawn (a draw of its own per
    unit and variant, so that the other copies stay as they are)."""
    rng = np.random.default_rng(zlib.crc32(f"vorbis:{v}:{u['id']}".encode()))
    return rng if rng.random() < VORBIS_SHARE else None


def _do_unit(u: dict) -> list[dict]:
    out = []
    rng0 = np.random.default_rng(zlib.crc32(("clean:" + u["id"]).encode()))
    x = None
    n_aug = recipe.get("demo.n_aug") if u["source"] == DEMO.name else N_AUG
    for v in range(n_aug + 1):
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
        if v > 0 and (rng := _vorbis_drawn(u, v)) is not None:
            done = VORBIS_AUD / path.name
            if not done.exists():
                y, osr = sf.read(path, dtype="float32")
                sf.write(done, augment.vorbis(y, rng, osr), osr, subtype="PCM_16")
            path, ch = done, f"{ch}+vorbis"
        out.append({"unit": u["id"], "variant": v, "path": str(path), "label": u["label"],
                    "family": u["family"], "system": u["system"], "speaker": u["speaker"],
                    "role": u["role"], "source": u["source"], "dataset": u["dataset"], "channel": ch})
    return out


def build_variants(units: list[dict], workers: int = 2) -> list[dict]:
    AUD.mkdir(parents=True, exist_ok=True)
    VORBIS_AUD.mkdir(parents=True, exist_ok=True)
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
