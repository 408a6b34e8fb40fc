"""What the clip store's training data is worth: the recipe's base run and phone-channel fine-tune with the clip
store's train and calibration files left out (every other source, the augmentation and the schedule unchanged),
on several seeds, scored the way train.py scores a run: the full-band branch's mean window logit per file, EER on
the corpus dev and on the clip store's leave-repositories-out dev pages, clean and through G.711.

    python experiments/without_store.py --seeds 0 1 2 --out .cache/runs/nostore [--with-runs base_nb seed1_nb ...]

Runs are written to OUT/seedN and OUT/seedN_nb (a finished one is reused); --with-runs scores the recipe's own runs
(names under .cache/runs) into the same table, so that both recipes are compared on one table, seed for seed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthscan_train import recipe, store, train  # noqa: E402
from score_runs import table  # noqa: E402

RUNS = Path(__file__).resolve().parents[1] / ".cache" / "runs"


def without_store(load_stores):
    """load_stores with the clip store's files dropped from train and calibration (the dev stores untouched)."""
    def load(narrowband: bool = False):
        tr, cal, *devs = load_stores(narrowband)
        keep = lambda s: store.Store([r for r in s.rows if r["source"] != "demo"])  # noqa: E731
        return (keep(tr), keep(cal), *devs)
    return load


def run_pair(out: Path, seed: int) -> Path:
    """The base run and its fine-tune, as run.sh runs them, unless already finished."""
    base, nb = out / f"seed{seed}", out / f"seed{seed}_nb"
    if not (base / "model.pt").exists() or "full_branch" not in json.loads((base / "dev.json").read_text())["history"][-1]:
        train.train(recipe.get("train.arch"), recipe.get("train.epochs"), base, seed, recipe.get("train.per_file"),
                    lr=recipe.get("train.lr"), wd=recipe.get("train.weight_decay"), swa=recipe.get("train.swa"))
    if not (nb / "dev.json").exists() or "full_branch" not in json.loads((nb / "dev.json").read_text())["history"][-1]:
        train.train(recipe.get("train.arch"), recipe.get("finetune.epochs"), nb, seed, recipe.get("train.per_file"),
                    lr=recipe.get("finetune.lr"), wd=recipe.get("train.weight_decay"), swa=0,
                    init=base / "model.pt", narrowband=True)
    return nb


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=RUNS / "nostore")
    ap.add_argument("--with-runs", nargs="*", default=[], help="the recipe's own runs to score beside")
    a = ap.parse_args()
    train.load_stores = without_store(train.load_stores)
    rows = [(f"without the store, seed {s}", run_pair(a.out, s)) for s in a.seeds]
    rows += [(f"recipe, {name}", RUNS / name) for name in a.with_runs]
    table(rows)


if __name__ == "__main__":
    main()
