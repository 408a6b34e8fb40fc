"""Content checksums of the training data: a committed record of the generated sets, and cache invalidation.

Two jobs:

1. training/data_sums/<set>.tsv (committed) records the sha256 of every clip of the generated data sets that
   run.sh trains on (gen, genuine, vocoded, vocoded_hifigan, vocoded_hifigan22) and a digest per system of the
   corpus. Data regenerated on another machine can differ (float rounding in the neural engines differs between
   CPUs), and a model rebuilt from other data is another model. `check` says, per set and system,
   how many clips are the recorded ones:

       python -m synthscan_train.datasums check [--strict]     (from training/; --strict: exit 1 on a difference)
       python -m synthscan_train.datasums write --note "..."   (record the data now in .cache as the reference)

2. The caches under training/.cache are keyed by path, not content: augmented copies (aud*/<unit>__vN.wav),
   Rust features (feat_*/<path stem>.*.npy), G.711 dev copies (devphone/) and the evaluation's probe copies
   (probe/<kind>/). A data set regenerated in place keeps its file names, so without a content check prepare
   would silently reuse what was made from the old audio. prepare calls `refresh_caches`, which keeps the sha256
   of every source file in .cache/sources.sha256 and deletes what was derived from a file whose content changed.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections import defaultdict
from pathlib import Path

from . import data

SUMS_DIR = data.TRAIN_DIR / "data_sums"
# the sets run.sh trains on, each a folder under .cache with a manifest.csv whose `file` column is relative to it
RECORDED_SETS = ("gen", "genuine", "vocoded", "vocoded_hifigan", "vocoded_hifigan22")
STAMP = data.CACHE / "sources.sha256"
# hex digits kept per clip in the committed record: 64 bits tell regenerated clips apart and keep the files small
SHORT = 16


def sha256(path: Path | str, known: dict[str, str] | None = None) -> str:
    """The file's sha256; `known` (absolute resolved path -> sha256) holds files already hashed by this process."""
    if known and str(path) in known:
        return known[str(path)]
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _manifest_rows(manifest: Path) -> list[dict]:
    with open(manifest, newline="") as f:
        return list(csv.DictReader(f))


def set_sums(folder: Path, known: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(short sha256, file, system) of every clip a set's manifest lists and that exists, sorted by file."""
    out = []
    for r in _manifest_rows(folder / "manifest.csv"):
        p = (folder / r["file"]).resolve()
        if p.exists():
            out.append((sha256(p, known)[:SHORT], r["file"], r["system"]))
    return sorted(out, key=lambda t: t[1])


def corpus_sums(corpus: Path, known: dict[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(digest, system, clip count) per corpus system: the corpus is shared and read-only, so one line a system is
    enough to tell whether it is the corpus the record was made from."""
    per = defaultdict(list)
    for r in _manifest_rows(corpus / "manifest.csv"):
        p = (corpus / r["file"]).resolve()
        if p.exists():
            per[r["system"]].append(f"{r['file']} {sha256(p, known)}")
    return [(hashlib.sha256("\n".join(sorted(v)).encode()).hexdigest()[:SHORT], s, str(len(v)))
            for s, v in sorted(per.items())]


def _write_tsv(path: Path, header: str, rows: list[tuple[str, str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as f:
        f.write(header)
        for row in rows:
            f.write("\t".join(row) + "\n")


def _read_tsv(path: Path) -> list[list[str]]:
    return [line.rstrip("\n").split("\t") for line in path.read_text().splitlines()
            if line and not line.startswith("#")]


def write(note: str) -> None:
    for name in RECORDED_SETS:
        folder = data.CACHE / name
        if not (folder / "manifest.csv").exists():
            print(f"{name}: not in .cache, not recorded")
            continue
        rows = set_sums(folder)
        _write_tsv(SUMS_DIR / f"{name}.tsv", f"# sha256[:{SHORT}]\tfile\tsystem  ({name}; {note})\n", rows)
        print(f"{name}: {len(rows)} clips recorded")
    rows = corpus_sums(data.CORPUS)
    header = f"# digest\tsystem\tclips  (the corpus as read with the sets above: {note})\n"
    _write_tsv(SUMS_DIR / "corpus.tsv", header, rows)
    print(f"corpus: {len(rows)} systems recorded")


def compare_set(recorded: list[list[str]], now: list[tuple[str, str, str]]) -> dict[str, dict[str, int]]:
    """Per system: clips the same as recorded, different, recorded but absent now, and present but not recorded."""
    rec = {f: (h, s) for h, f, s in recorded}
    cur = {f: (h, s) for h, f, s in now}
    out: dict[str, dict[str, int]] = defaultdict(lambda: {"same": 0, "differ": 0, "missing": 0, "new": 0})
    for f, (h, s) in rec.items():
        key = "missing" if f not in cur else ("same" if cur[f][0] == h else "differ")
        out[s][key] += 1
    for f, (_, s) in cur.items():
        if f not in rec:
            out[s]["new"] += 1
    return dict(sorted(out.items()))


def check(print=print, known: dict[str, str] | None = None) -> bool:
    """Prints (through `print`) a per-system table of how the data in .cache matches the record; True when it all
    matches. `known`: files already hashed (sha256's), so that prepare does not read them twice."""
    ok = True
    print("data against training/data_sums (clips: same / differ / missing / new)")
    for name in RECORDED_SETS:
        tsv, folder = SUMS_DIR / f"{name}.tsv", data.CACHE / name
        if not tsv.exists():
            print(f"  {name}: no record")
            continue
        if not (folder / "manifest.csv").exists():
            print(f"  {name}: not generated (training/README.md section 1)")
            ok = False
            continue
        per = compare_set(_read_tsv(tsv), set_sums(folder, known))
        bad = {s: c for s, c in per.items() if c["same"] == 0 or c["differ"] or c["missing"] or c["new"]}
        same = sum(c["same"] for c in per.values())
        total = sum(c["same"] + c["differ"] + c["missing"] for c in per.values())
        print(f"  {name}: {same} of {total} recorded clips the same" + ("" if bad else ", every system"))
        for s, c in bad.items():
            print(f"    {s}: {c['same']} / {c['differ']} / {c['missing']} / {c['new']}")
        ok = ok and not bad
    tsv = SUMS_DIR / "corpus.tsv"
    if not (data.CORPUS / "manifest.csv").exists():
        print(f"  corpus: not found at {data.CORPUS} (SYNTHSCAN_CORPUS)")
        ok = False
    elif tsv.exists():
        rec = {s: (h, n) for h, s, n in _read_tsv(tsv)}
        cur = {s: (h, n) for h, s, n in corpus_sums(data.CORPUS, known)}
        differ = sorted(s for s in rec.keys() | cur.keys() if rec.get(s) != cur.get(s))
        print(f"  corpus: {len(rec) - len(set(differ) & rec.keys())} of {len(rec)} systems the same"
              + (f"; differ: {', '.join(differ)}" if differ else ""))
        ok = ok and not differ
    return ok


def derived_files(sources: list[str], units: list[dict]) -> list[Path]:
    """Every cached file made from the source clips at `sources` (absolute paths), as prepare and evaluate.py name
    them: their features, their G.711 and probe copies (and those copies' features), and the augmented copies of
    the units they are members of (and those copies' features)."""
    copy_dirs = [data.CACHE / "devphone", *sorted(p for p in data.CACHE.glob("probe/*") if p.is_dir())]
    aud_dirs = sorted(p for p in data.CACHE.glob("aud*") if p.is_dir())
    feat_dirs = sorted(p for p in data.CACHE.glob("feat_*") if p.is_dir())
    unit_ids = defaultdict(list)
    for u in units:
        for m in u["members"]:
            unit_ids[m["path"]].append(u["id"])
    made = []
    for source in sources:
        made += [d / f"{data.stem(source)}.wav" for d in copy_dirs]
        made += [d / f"{uid}__v{v}.wav" for uid in unit_ids[source] for d in aud_dirs for v in range(data.N_AUG + 1)]
    made = [p for p in made if p.exists()]
    feats = [d / f"{data.stem(str(p))}.{kind}.npy" for p in [*map(Path, sources), *made] for d in feat_dirs
             for kind in ("features", "speech")]
    return made + [f for f in feats if f.exists()]


def refresh_caches(rows: list[dict], units: list[dict]) -> dict[str, str]:
    """Deletes what the caches hold of every source clip whose content changed since the last call, then records
    the sources' sha256 in .cache/sources.sha256. Returns {path: sha256} of the rows' clips. The first call
    on a cache has nothing to compare with: it records the sources and trusts the cache."""
    now = {data.portable(r["path"]): (r["path"], sha256(r["path"])) for r in rows}
    old = {}
    if STAMP.exists():
        old = dict(line.split("\t") for line in STAMP.read_text().splitlines() if line)
    changed = [path for key, (path, h) in now.items() if key in old and old[key] != h]
    if changed:
        gone = derived_files(changed, units)
        for f in gone:
            f.unlink(missing_ok=True)
        print(f"  {len(changed)} source clips changed since the caches were made: {len(gone)} cached files "
              f"made from them deleted (remade below)", flush=True)
    elif not old:
        print("  no record of the sources the caches were made from: recorded now", flush=True)
    # sources no longer read (a switch turned off) keep their entry, so their caches are checked when they return
    merged = {**old, **{key: h for key, (_, h) in now.items()}}
    tmp = STAMP.with_suffix(".part")
    tmp.write_text("".join(f"{k}\t{h}\n" for k, h in sorted(merged.items())))
    tmp.rename(STAMP)
    return {path: h for path, h in now.values()}


def provenance_path(variants: Path) -> Path:
    """Where prepare describes the source clips behind a variants table (read by train.py into its dev.json)."""
    return variants.with_name(variants.stem + ".sources.json")


def provenance(sums: dict[str, str]) -> dict:
    """What a run was trained and measured on: the number of source clips (corpus and generated, train and dev), one
    sha256 over their paths and contents, and whether the generated sets in .cache are the recorded ones. Two runs
    with the same digest read the same audio. `sums`: refresh_caches' {path: sha256}."""
    lines = "".join(sorted(f"{data.portable(path)}\t{h}\n" for path, h in sums.items()))
    return {"clips": len(sums), "sha256": hashlib.sha256(lines.encode()).hexdigest(),
            "matches_data_sums": check(print=lambda *_: None, known=sums)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("check", help="compare the data in .cache with training/data_sums")
    c.add_argument("--strict", action="store_true", help="exit 1 when anything differs")
    w = sub.add_parser("write", help="record the data in .cache as the reference")
    w.add_argument("--note", required=True, help="where and when the data was made (goes into each header)")
    a = ap.parse_args()
    if a.cmd == "write":
        write(a.note)
    elif not check() and a.strict:
        sys.exit(1)


if __name__ == "__main__":
    main()
