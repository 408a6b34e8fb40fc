"""The clip store: labelled speech from public demo pages, rebuilt from pinned repository snapshots.

    python -m synthscan_train.clipstore check --mirrors DIR        rows of sources.csv against the snapshots
    python -m synthscan_train.clipstore build --mirrors DIR        audio store + training/clips.csv
    python -m synthscan_train.clipstore summary                    counts per family / label / split

Inputs:
  training/sources.csv  one row per repository and path pattern: repo, commit, pattern (an fnmatch glob on the
                        path inside the repository; within one repository the first matching row wins), label
                        (spoof, bonafide, or exclude), system, family, language, licence, evidence (how the
                        label was decided, from the page's own table or text)
  --mirrors DIR         the snapshots, one bare git directory per repository at DIR/<owner>+<name>/ (any git
                        directory below it that holds the pinned commit)
  ../shared/eval-reserved.txt  repositories and clip sha1s reserved for independent evaluation: a reserved
                        repository in sources.csv stops the build, a reserved clip is skipped wherever it is

Outputs:
  training/.cache/demo/<repo>/<sha1>.flac + manifest.csv   the store (git-ignored; 16 kHz mono, silence
                        trimmed like every other source, cut to recipe max_clip_s)
  training/clips.csv    committed: repo, commit, path, sha1, label, system, family, language, duration_s, split

The same snapshots give the same store: files are read from the pinned commits, taken in sha1 order under the
caps of recipe.toml [demo], and an exact duplicate (same sha1) is kept once, at its first repository in
sources.csv order. The split is by repository (recipe.toml [demo] dev_repos), so dev measures recording chains and
pages never trained on.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import hashlib
import io
import subprocess
import sys
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf

from . import augment
from . import recipe
from .trim import trim_and_cut

TRAIN_DIR = Path(__file__).resolve().parents[1]
SOURCES = TRAIN_DIR / "sources.csv"
CLIPS = TRAIN_DIR / "clips.csv"
STORE = TRAIN_DIR / ".cache" / "demo"
RESERVED = TRAIN_DIR.parent.parent / "shared" / "eval-reserved.txt"
AUDIO_EXT = (".wav", ".mp3", ".flac", ".ogg", ".m4a", ".opus", ".webm", ".aac")
LABELS = ("spoof", "bonafide", "exclude")
FAMILIES = ("human", "commercial", "codec_lm", "flow_diffusion", "zero_shot", "vc", "codec_resynth", "vocoder",
            "tts")
SOURCE_COLUMNS = ["repo", "commit", "pattern", "label", "system", "family", "language", "licence", "evidence"]
CLIP_COLUMNS = ["repo", "commit", "path", "sha1", "label", "system", "family", "language", "duration_s", "split"]
SR = 16000


class SourceError(Exception):
    """sources.csv or a snapshot is not what the build needs (message says which row or repository)."""


def read_reserved(path: Path) -> tuple[set[str], set[str]]:
    """(reserved repositories, lower-cased; reserved clip sha1s)."""
    repos, sha1s = set(), set()
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("sha1 "):
            sha1s.add(line.split()[1].lower())
        else:
            repos.add(line.lower())
    return repos, sha1s


def read_sources(path: Path, reserved_repos: set[str]) -> list[dict]:
    """The rows of sources.csv, validated: known labels and families, one commit per repository, no reserved
    repository."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    commits: dict[str, str] = {}
    for i, r in enumerate(rows, start=2):
        where = f"{path.name} line {i} ({r.get('repo')})"
        if set(SOURCE_COLUMNS) - set(r):
            raise SourceError(f"{where}: columns must be {','.join(SOURCE_COLUMNS)}")
        if r["repo"].lower() in reserved_repos:
            raise SourceError(f"{where}: {r['repo']} is reserved for independent evaluation and may not be used")
        if r["label"] not in LABELS:
            raise SourceError(f"{where}: label {r['label']!r} is not one of {', '.join(LABELS)}")
        if r["label"] != "exclude":
            if r["family"] not in FAMILIES:
                raise SourceError(f"{where}: family {r['family']!r} is not one of {', '.join(FAMILIES)}")
            if (r["label"] == "bonafide") != (r["family"] == "human"):
                raise SourceError(f"{where}: bonafide rows and only they have family 'human'")
        if commits.setdefault(r["repo"], r["commit"]) != r["commit"]:
            raise SourceError(f"{where}: {r['repo']} is pinned to two commits")
    return rows


def git_dir(mirrors: Path, repo: str, commit: str) -> Path:
    """The bare git directory under mirrors/<owner>+<name>/ that holds `commit`."""
    base = mirrors / repo.replace("/", "+")
    candidates = [base] + sorted(p.parent for p in base.glob("**/HEAD") if p.parent != base)
    for d in candidates:
        if (d / "objects").is_dir() and subprocess.run(
                ["git", "--git-dir", str(d), "cat-file", "-e", f"{commit}^{{commit}}"],
                capture_output=True).returncode == 0:
            return d
    raise SourceError(f"no snapshot of {repo} at {commit[:12]} under {base}")


def list_files(gd: Path, commit: str) -> list[str]:
    out = subprocess.run(["git", "--git-dir", str(gd), "ls-tree", "-r", "--name-only", "-z", commit],
                         capture_output=True, check=True).stdout
    return [p.decode("utf-8", "surrogateescape") for p in out.split(b"\0") if p]


def match(rows: list[dict], files: list[str]) -> dict[str, dict]:
    """Each audio file -> the first row of its repository whose pattern matches it (exclude rows included)."""
    out = {}
    for f in files:
        if not f.lower().endswith(AUDIO_EXT):
            continue
        for r in rows:
            if fnmatch.fnmatchcase(f, r["pattern"]):
                out[f] = r
                break
    return out


def read_blobs(gd: Path, commit: str, paths: list[str]) -> dict[str, bytes]:
    """File contents at `commit` through one `git cat-file --batch` (absent blobs are left out)."""
    if not paths:
        return {}
    req = b"".join(f"{commit}:{p}\n".encode("utf-8", "surrogateescape") for p in paths)
    out = subprocess.run(["git", "--git-dir", str(gd), "cat-file", "--batch"], input=req,
                         capture_output=True, check=True).stdout
    blobs, pos = {}, 0
    for p in paths:
        nl = out.index(b"\n", pos)
        head = out[pos:nl].split()
        pos = nl + 1
        if len(head) == 3 and head[1] == b"blob":
            n = int(head[2])
            blobs[p] = out[pos:pos + n]
            pos += n + 1
        # "missing" lines carry no body
    return blobs


def decode(data: bytes) -> np.ndarray | None:
    """Mono float32 at 16 kHz, or None when neither libsndfile nor ffmpeg can read it."""
    try:
        x, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
        x = x.mean(axis=1)
    except Exception:
        p = subprocess.run(["ffmpeg", "-v", "quiet", "-i", "pipe:0", "-ac", "1", "-ar", str(SR), "-f", "f32le",
                            "pipe:1"], input=data, capture_output=True)
        if p.returncode != 0 or not p.stdout:
            return None
        x, sr = np.frombuffer(p.stdout, np.float32).copy(), SR
    if not np.all(np.isfinite(x)):
        return None
    return augment.resample(x, sr, SR)


def _prepare_clip(job: tuple[bytes, str, float]) -> tuple[str, float | None]:
    """Decode, trim, cut and write one clip; (output path, seconds) or (path, None) when it holds no speech. A clip
    already in the store is kept: its name is its source's sha1 (delete the store after changing max_clip_s)."""
    data, out, max_s = job
    if Path(out).exists():
        return out, sf.info(out).frames / SR
    x = decode(data)
    if x is None or len(x) < SR // 2 or float(np.abs(x).max()) < 1e-3:
        return out, None
    y, _, _ = trim_and_cut(x, SR, max_s=max_s)
    if len(y) < SR:  # under a second after trimming: too short for one scoring window
        return out, None
    peak = float(np.abs(y).max())
    if peak > 1.0:
        y = y / peak
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    sf.write(out, y, SR, subtype="PCM_16", format="FLAC")
    return out, len(y) / SR


def check(a) -> None:
    reserved_repos, reserved_sha1 = read_reserved(a.reserved)
    rows = read_sources(a.sources, reserved_repos)
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_repo[r["repo"]].append(r)
    for repo, rs in by_repo.items():
        try:
            gd = git_dir(a.mirrors, repo, rs[0]["commit"])
        except SourceError as e:
            print(f"{repo}: {e}")
            continue
        files = list_files(gd, rs[0]["commit"])
        m = match(rs, files)
        audio = [f for f in files if f.lower().endswith(AUDIO_EXT)]
        counts = Counter(id(r) for r in m.values())
        print(f"{repo}: {len(audio)} audio files, {len(audio) - len(m)} matched by no row")
        for r in rs:
            print(f"  {counts[id(r)]:5d}  {r['label']:8s} {r['system']:24s} {r['pattern']}")


def build(a) -> None:
    cfg = recipe.load()["demo"]
    reserved_repos, reserved_sha1 = read_reserved(a.reserved)
    rows = read_sources(a.sources, reserved_repos)
    dev_repos = set(cfg["dev_repos"])
    unknown_dev = dev_repos - {r["repo"] for r in rows}
    if unknown_dev:
        raise SourceError(f"recipe.toml [demo] dev_repos names repositories not in sources.csv: "
                          f"{', '.join(sorted(unknown_dev))}")
    by_repo: dict[str, list[dict]] = defaultdict(list)
    for r in rows:
        by_repo[r["repo"]].append(r)
    seen: set[str] = set()
    skipped: Counter = Counter()
    kept: list[dict] = []
    # seconds taken so far per (repository, label), (repository, system) and synthetic system
    taken: Counter = Counter()
    caps = {"repo_label": 60 * cfg["max_minutes_per_repo_label"],
            "repo_system": 60 * cfg["max_minutes_per_repo_system"], "system": 60 * cfg["max_minutes_per_system"]}
    with ProcessPoolExecutor(a.workers) as ex:
        for repo, rs in by_repo.items():
            commit = rs[0]["commit"]
            gd = git_dir(a.mirrors, repo, commit)
            m = {p: r for p, r in match(rs, list_files(gd, commit)).items() if r["label"] != "exclude"}
            blobs = read_blobs(gd, commit, sorted(m))
            skipped["absent from snapshot (large file or LFS)"] += len(m) - len(blobs)
            cand = []
            for p, data in blobs.items():
                if data.startswith(b"version https://git-lfs"):
                    skipped["absent from snapshot (large file or LFS)"] += 1
                    continue
                sha1 = hashlib.sha1(data).hexdigest()
                if sha1 in reserved_sha1:
                    skipped["reserved clip"] += 1
                    continue
                if sha1 in seen:
                    skipped["exact duplicate"] += 1
                    continue
                seen.add(sha1)
                cand.append((sha1, p, data))
            # sha1 order: a deterministic draw that does not follow a page's folder order; decoded in chunks, so
            # that clips whose caps are already full are never decoded
            cand.sort()
            slug = repo.replace("/", "+")
            n0 = len(kept)

            def cap_keys(r: dict) -> dict:
                keys = {"repo_label": (repo, r["label"])}
                if r["label"] == "spoof":
                    keys.update(repo_system=(repo, r["system"]), system=r["system"])
                return keys
            for c0 in range(0, len(cand), 64):
                # a clip is at least 1 s long: one whose caps hold less than that cannot fit
                chunk = [(sha1, p, data) for sha1, p, data in cand[c0:c0 + 64]
                         if all(taken[k] + 1.0 <= caps[cap] for cap, k in cap_keys(m[p]).items())]
                skipped["over a cap"] += min(64, len(cand) - c0) - len(chunk)
                jobs = [(data, str(STORE / slug / f"{sha1}.flac"), cfg["max_clip_s"]) for sha1, _, data in chunk]
                done = dict(ex.map(_prepare_clip, jobs, chunksize=4))
                for sha1, p, _ in chunk:
                    r, out = m[p], STORE / slug / f"{sha1}.flac"
                    d = done[str(out)]
                    if d is None:
                        skipped["undecodable, silent or under 1 s"] += 1
                        continue
                    # caps, in sha1 order: no repository, page system or synthetic system dominates
                    keys = cap_keys(r)
                    if any(taken[k] + d > caps[cap] for cap, k in keys.items()):
                        skipped["over a cap"] += 1
                        out.unlink(missing_ok=True)
                        continue
                    for k in keys.values():
                        taken[k] += d
                    kept.append({"repo": repo, "commit": commit, "path": p, "sha1": sha1, "label": r["label"],
                                 "system": r["system"], "family": r["family"], "language": r["language"],
                                 "split": "dev" if repo in dev_repos else "train", "licence": r["licence"],
                                 "duration_s": f"{d:.3f}"})
            print(f"  {repo}: {len(kept) - n0} clips of {len(m)} matched", flush=True)
    with open(a.clips, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=CLIP_COLUMNS, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(kept)
    write_manifest(kept)
    print(f"kept {len(kept)} clips; skipped: " + ", ".join(f"{n} {why}" for why, n in skipped.most_common()))
    summary(a)


def write_manifest(kept: list[dict]) -> None:
    """The store's manifest in the columns of the corpus manifest (data.py reads both alike)."""
    STORE.mkdir(parents=True, exist_ok=True)
    cols = ["file", "label", "system", "family", "speaker", "language", "dataset", "source_repo", "license",
            "duration_s", "split"]
    with open(STORE / "manifest.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols, lineterminator="\n")
        w.writeheader()
        for c in kept:
            slug = c["repo"].replace("/", "+")
            # speaker: the page (demo pages rarely say who speaks); calibration rows are grouped by it
            w.writerow({"file": f"{slug}/{c['sha1']}.flac", "label": c["label"], "system": c["system"],
                        "family": c["family"], "speaker": f"page:{slug}", "language": c["language"],
                        "dataset": slug, "source_repo": c["repo"], "license": c["licence"],
                        "duration_s": c["duration_s"], "split": c["split"]})


def summary(a) -> None:
    with open(a.clips, newline="") as f:
        rows = list(csv.DictReader(f))
    t = defaultdict(lambda: [0, 0.0])
    systems = defaultdict(set)
    for r in rows:
        k = (r["split"], r["label"], r["family"])
        t[k][0] += 1
        t[k][1] += float(r["duration_s"]) / 60
        systems[k].add(r["system"])
    print("| split | label | family | clips | minutes | systems |\n|---|---|---|---|---|---|")
    for k in sorted(t):
        print(f"| {k[0]} | {k[1]} | {k[2]} | {t[k][0]} | {t[k][1]:.1f} | {len(systems[k])} |")
    spoof = [r for r in rows if r["label"] == "spoof"]
    print(f"\nrepositories {len({r['repo'] for r in rows})}, synthetic systems {len({r['system'] for r in spoof})}, "
          f"synthetic {sum(float(r['duration_s']) for r in spoof) / 3600:.2f} h, genuine "
          f"{sum(float(r['duration_s']) for r in rows if r['label'] == 'bonafide') / 3600:.2f} h, languages "
          f"{len({r['language'] for r in rows})}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["check", "build", "summary"])
    ap.add_argument("--sources", type=Path, default=SOURCES)
    ap.add_argument("--clips", type=Path, default=CLIPS)
    ap.add_argument("--mirrors", type=Path, help="folder of snapshots, <owner>+<name>/ each (check, build)")
    ap.add_argument("--reserved", type=Path, default=RESERVED)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    if a.command != "summary" and a.mirrors is None:
        ap.error(f"{a.command} needs --mirrors")
    try:
        {"check": check, "build": build, "summary": summary}[a.command](a)
    except SourceError as e:
        sys.exit(f"clipstore: {e}")


if __name__ == "__main__":
    main()
