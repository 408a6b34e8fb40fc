"""Runs `synthscan analyze --format jsonl` (the shipped inference path) over many files."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from . import data


def _run(paths: list[str], manifest: Path) -> list[dict]:
    out = []
    for a in range(0, len(paths), 200):
        chunk = paths[a:a + 200]
        p = subprocess.run(["nice", "-n", "5", str(data.BIN), "analyze", "--model", str(manifest),
                            "--format", "jsonl", "--color", "never", *chunk],
                           capture_output=True, text=True, cwd=data.REPO)
        got = [json.loads(l) for l in p.stdout.splitlines() if l.strip().startswith("{")]
        if len(got) != len(chunk):
            print(f"warning: analyze returned {len(got)} of {len(chunk)} (rc {p.returncode}): "
                  f"{p.stderr[-500:]}")
        out += got
    return out


def analyze(paths: list[str], manifest: Path, workers: int = 2) -> dict[str, dict]:
    parts = [paths[w::workers] for w in range(workers)]
    with ThreadPoolExecutor(workers) as ex:
        res = list(ex.map(lambda p: _run(p, manifest), parts))
    out = {}
    for r in res:
        for j in r:
            out[j["file"]] = j
    return out
