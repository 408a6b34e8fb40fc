"""The clip store's guards, on throwaway git snapshots made here: reserved repositories stop the build, reserved
clips are skipped wherever they turn up, an exact duplicate is kept once, caps hold, and the split follows the
repository.

    cd training && python -m unittest discover -s tests        (the training venv; needs git, no network)
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import subprocess
import tempfile
import unittest
from pathlib import Path
from unittest import mock

import numpy as np
import soundfile as sf

from synthscan_train import clipstore

COMMITTER = ["-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def wav(seconds: float, seed: int) -> bytes:
    """Noise at a speech-like level, seconds long at 16 kHz: decodable and not trimmed away."""
    x = np.random.default_rng(seed).normal(0, 0.1, int(16000 * seconds)).astype(np.float32)
    buf = io.BytesIO()
    sf.write(buf, x, 16000, format="WAV", subtype="PCM_16")
    return buf.getvalue()


def snapshot(mirrors: Path, repo: str, files: dict[str, bytes]) -> str:
    """A bare snapshot of `repo` holding `files`, under mirrors/<owner>+<name>/, as `fetch` leaves one; its
    commit."""
    work = mirrors / "work" / repo.replace("/", "+")
    for path, data in files.items():
        (work / path).parent.mkdir(parents=True, exist_ok=True)
        (work / path).write_bytes(data)
    run = lambda *a, cwd=work: subprocess.run(["git", *COMMITTER, *a], cwd=cwd, check=True,  # noqa: E731
                                              capture_output=True, text=True).stdout.strip()
    run("init", "-q")
    run("add", "-A")
    run("commit", "-qm", "demo page")
    commit = run("rev-parse", "HEAD")
    subprocess.run(["git", "clone", "-q", "--bare", str(work), str(mirrors / repo.replace("/", "+"))], check=True)
    return commit


def source_row(repo, commit, pattern, label, system, family) -> dict:
    return {"repo": repo, "commit": commit, "pattern": pattern, "label": label, "system": system, "family": family,
            "language": "en", "licence": "MIT", "evidence": "the page's table"}


class ClipStoreTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.dir = Path(self.tmp.name)
        self.mirrors = self.dir / "mirrors"
        self.mirrors.mkdir()

    def tearDown(self):
        self.tmp.cleanup()

    def write_sources(self, rows: list[dict]) -> Path:
        path = self.dir / "sources.csv"
        with open(path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=clipstore.SOURCE_COLUMNS)
            w.writeheader()
            w.writerows(rows)
        return path

    def build(self, sources: Path, reserved: str, demo: dict) -> list[dict]:
        (self.dir / "reserved.txt").write_text(reserved)
        a = argparse.Namespace(sources=sources, clips=self.dir / "clips.csv", mirrors=self.mirrors,
                               reserved=self.dir / "reserved.txt", workers=1)
        cfg = {"demo": {"max_clip_s": 10.0, "max_minutes_per_repo_label": 60.0, "max_minutes_per_repo_system": 12.0,
                        "max_minutes_per_system": 40.0, "dev_repos": [], **demo}}
        with mock.patch.object(clipstore, "STORE", self.dir / "store"), \
                mock.patch.object(clipstore.recipe, "load", return_value=cfg), \
                mock.patch("builtins.print"):
            clipstore.build(a)
        with open(a.clips, newline="") as f:
            return list(csv.DictReader(f))

    def test_a_reserved_repository_stops_the_build_whatever_its_case(self):
        sources = self.write_sources([source_row("Lab/Demo", "a" * 40, "*.wav", "spoof", "x", "tts")])
        (self.dir / "reserved.txt").write_text("# reserved\nlab/demo\n")
        reserved_repos, _ = clipstore.read_reserved(self.dir / "reserved.txt")
        with self.assertRaisesRegex(clipstore.SourceError, "reserved for independent evaluation"):
            clipstore.read_sources(sources, reserved_repos)

    def test_reserved_clips_duplicates_caps_and_the_split(self):
        shared, reserved_clip = wav(3.0, 1), wav(3.0, 2)
        c1 = snapshot(self.mirrors, "lab/one", {
            "samples/tts/a.wav": wav(3.0, 3),
            "samples/tts/shared.wav": shared,
            "samples/tts/leaked.wav": reserved_clip,
            "samples/gt/b.wav": wav(3.0, 4),
            "samples/tts/c_edit.wav": wav(3.0, 5),
        })
        # a fork that copied the page: the same clip again, and the reserved clip under another name
        c2 = snapshot(self.mirrors, "fork/one", {
            "audio/shared.wav": shared,
            "audio/renamed.wav": reserved_clip,
            "audio/own.wav": wav(3.0, 6),
        })
        sources = self.write_sources([
            # a speech-editing output among the page's TTS files: the exclude row comes first, so it wins
            source_row("lab/one", c1, "samples/tts/*_edit.wav", "exclude", "", ""),
            source_row("lab/one", c1, "samples/tts/*", "spoof", "sysA", "tts"),
            source_row("lab/one", c1, "samples/gt/*", "bonafide", "human", "human"),
            source_row("fork/one", c2, "audio/*", "spoof", "sysB", "tts"),
        ])
        reserved = f"# reserved\nsomeone/else\nsha1 {hashlib.sha1(reserved_clip).hexdigest().upper()}\n"
        clips = self.build(sources, reserved, {"dev_repos": ["fork/one"]})
        by_path = {(c["repo"], c["path"]): c for c in clips}
        self.assertEqual(set(by_path), {("lab/one", "samples/tts/a.wav"), ("lab/one", "samples/tts/shared.wav"),
                                        ("lab/one", "samples/gt/b.wav"), ("fork/one", "audio/own.wav")})
        self.assertEqual(by_path[("lab/one", "samples/gt/b.wav")]["label"], "bonafide")
        self.assertEqual({c["split"] for c in clips if c["repo"] == "fork/one"}, {"dev"})
        self.assertEqual({c["split"] for c in clips if c["repo"] == "lab/one"}, {"train"})
        self.assertTrue(all(abs(float(c["duration_s"]) - 3.0) < 0.1 for c in clips), clips)
        stored = sorted(p.stem for p in (self.dir / "store").rglob("*.flac"))
        self.assertEqual(stored, sorted(c["sha1"] for c in clips))

    def test_a_system_cap_holds_across_repositories(self):
        c1 = snapshot(self.mirrors, "lab/a", {f"s/{i}.wav": wav(3.0, 10 + i) for i in range(4)})
        c2 = snapshot(self.mirrors, "lab/b", {f"s/{i}.wav": wav(3.0, 20 + i) for i in range(4)})
        sources = self.write_sources([source_row("lab/a", c1, "s/*", "spoof", "sysA", "tts"),
                                      source_row("lab/b", c2, "s/*", "spoof", "sysA", "tts")])
        # 0.25 min = 15 s per system over every repository: five 3 s clips, whichever page they come from
        clips = self.build(sources, "", {"max_minutes_per_system": 0.25})
        self.assertEqual(len(clips), 5)
        self.assertLessEqual(sum(float(c["duration_s"]) for c in clips), 15.0)


if __name__ == "__main__":
    unittest.main()
