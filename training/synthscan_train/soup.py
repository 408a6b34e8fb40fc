"""Weight-average runs that share one starting point into one network (a "model soup", Wortsman et al., ICML 2022).

    python -m synthscan_train.soup --out .cache/runs_vX/SOUP RUN_A RUN_B [...]

Meant for fine-tunes of one base run (e.g. run.sh's narrowband fine-tune at two learning rates): their weights stay
close enough for the average to be a working network, at the cost of one network per window (ship.py --ensemble
averages logits instead and costs one network per run). Float tensors, BatchNorm running statistics included, are
averaged; integer ones (BatchNorm's batch counter) are taken from the first run. The output folder holds model.pt and
a dev.json copied from the first run with `train_opts.soup_of` naming the runs, so that ship.py and candidate.sh take
it like any run; its history is the first run's, not a measurement of the soup (candidate.sh measures it).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch


def average(state_dicts: list[dict]) -> dict:
    first = state_dicts[0]
    for sd in state_dicts[1:]:
        if sd.keys() != first.keys():
            raise ValueError("the runs do not share one architecture (state dict keys differ)")
    out = {}
    for k, v in first.items():
        if v.is_floating_point():
            out[k] = (sum(sd[k].float() for sd in state_dicts) / len(state_dicts)).to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", type=Path, nargs="+", help="run folders (model.pt, dev.json), at least two")
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    if len(a.runs) < 2:
        ap.error("a soup needs at least two runs")
    infos = [json.loads((r / "dev.json").read_text()) for r in a.runs]
    if len({(i["arch"], json.dumps(i["features"], sort_keys=True)) for i in infos}) != 1:
        ap.error("the runs differ in architecture or front end")
    soup = average([torch.load(r / "model.pt") for r in a.runs])
    a.out.mkdir(parents=True, exist_ok=True)
    torch.save(soup, a.out / "model.pt")
    info = dict(infos[0])
    info["train_opts"] = {**info.get("train_opts", {}), "soup_of": [str(r.resolve()) for r in a.runs]}
    (a.out / "dev.json").write_text(json.dumps(info, indent=1))
    print(f"averaged {len(a.runs)} runs -> {a.out / 'model.pt'}")


if __name__ == "__main__":
    main()
