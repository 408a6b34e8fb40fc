"""Prints the run directory whose final-epoch dev selection score (mean of clean + phone file-level EER
over all / waveglow / vc / kokoro) is lowest. Model selection is the only use of dev here.

A dual run is scored on its full-band branch alone (`full_branch` in its history), the network that
ship.py --branch full exports; a run without that entry is scored on its output as trained."""
import json
import sys
from pathlib import Path


def main():
    best = None
    for d in sys.argv[1:]:
        h = json.loads((Path(d) / "dev.json").read_text())["history"][-1]
        h = h.get("full_branch", h)
        print(f"{d}: selection score {h['selection_score']:.4f}", file=sys.stderr)
        if best is None or h["selection_score"] < best[1]:
            best = (d, h["selection_score"])
    print(best[0])


if __name__ == "__main__":
    main()
