"""Prints the run directory whose final-epoch dev selection score (mean of clean + phone file-level EER
over all / waveglow / vc / kokoro) is lowest. Model selection is the only use of dev here."""
import json
import sys
from pathlib import Path


def main():
    best = None
    for d in sys.argv[1:]:
        h = json.loads((Path(d) / "dev.json").read_text())["history"][-1]
        print(f"{d}: selection score {h['selection_score']:.4f}", file=sys.stderr)
        if best is None or h["selection_score"] < best[1]:
            best = (d, h["selection_score"])
    print(best[0])


if __name__ == "__main__":
    main()
