"""The training recipe (training/recipe.toml): the values the shipped model was made with, read by every step
that needs them, so the recipe is read in one file and not through the scripts' defaults."""

from __future__ import annotations

import sys
import tomllib
from functools import cache
from pathlib import Path

RECIPE = Path(__file__).resolve().parents[1] / "recipe.toml"


@cache
def load() -> dict:
    with open(RECIPE, "rb") as f:
        return tomllib.load(f)


def get(dotted: str):
    """One value by its dotted name, e.g. get("train.epochs")."""
    v = load()
    for part in dotted.split("."):
        v = v[part]
    return v


if __name__ == "__main__":
    # `python -m synthscan_train.recipe train.epochs` prints one value (run.sh reads the recipe this way)
    val = get(sys.argv[1])
    print(" ".join(map(str, val)) if isinstance(val, list) else val)
