"""Scores training runs the way train.py scores a run, on one table: the full-band branch's mean window logit per
file, EER on the corpus dev and on the clip store's leave-repositories-out dev pages, clean and through G.711.

    python experiments/score_runs.py .cache/runs/base_nb .cache/runs/seed1_nb ...
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from synthscan_train import config, models, store, train  # noqa: E402

TABLES = ("corpus dev clean", "corpus dev G.711", "store dev clean", "store dev G.711")


def score(run: Path, devs) -> list[float]:
    """EER (%) of the run's full-band branch on each dev table of TABLES."""
    net, _ = models.load_run(run, config.FEATURES["n_bins"], config.WINDOW["frames"])
    p = train.predictor(net.full)
    return [100 * store.report(store.file_scores(d, p), d.rows)["all"] for d in devs]


def table(rows: list[tuple[str, Path]]) -> None:
    """A markdown table of (label, run) rows, printed as each is scored."""
    devs = train.dev_stores()
    print("| run | " + " | ".join(TABLES) + " |")
    print("|---|" + "---|" * len(TABLES))
    for label, run in rows:
        print(f"| {label} | " + " | ".join(f"{v:.1f} %" for v in score(run, devs)) + " |", flush=True)


if __name__ == "__main__":
    table([(Path(r).name, Path(r)) for r in sys.argv[1:]])
