"""Which parts of its input a model decides from: the corpus dev split scored with each feature window altered.

A diagnostic, not part of training or shipping. Every operation changes the [frames x bands] log-power windows
before the network sees them; the file score stays the mean logit over the Rust-rule windows, as everywhere else.

  flat G     the bands of frequency group G each held at their own mean over the window's frames: the band's
             level stays, its movement in time goes
  only G     every band outside group G held flat as above: only group G's movement is left to decide from
  shuffle    the frames of each window put in a random order: each frame's spectrum stays, its order in time goes
  fsmooth K  each frame's spectrum replaced by its K-band moving average: spectral detail finer than K bands
             (harmonics, the ripple a vocoder leaves between bands) goes, the envelope stays
  tsmooth K  each band replaced by its K-frame moving average: movement faster than K frames (10 ms each) goes

The networks that ship subtract each band's mean over the window first (models.py, CMN), so a band held at any
constant is the same input to them as a band held at its own mean: `flat` is the only way to remove a band.

Reported per condition (clean, G.711): EER overall and per family group, and the mean change of the file logit of
each group (genuine, each dev family) against the unaltered input. A large drop of a family's logit under an
operation on group G means the model reads that family's synthetic cue there; a change that moves genuine as much
means the band only sets the overall level.

usage (from training/):
  python experiments/occlusion.py [--onnx ../models/synthscan.onnx | --run RUN] [--groups 8] [--json OUT]
--run scores a training run's model.pt as ship.py would export it (a dual run's full-band branch alone).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthscan_train import config  # noqa: E402
from synthscan_train import ship  # noqa: E402
from synthscan_train import store  # noqa: E402
from synthscan_train import train  # noqa: E402


def moving_average(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """K-point moving average along dim; the ends average over the points that exist (no zero padding)."""
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    c = torch.nn.functional.pad(torch.cumsum(x.double(), dim=-1), (1, 0))
    i = torch.arange(n)
    lo = (i - k // 2).clamp(0, n)
    hi = (i + (k - 1 - k // 2) + 1).clamp(0, n)
    return ((c[..., hi] - c[..., lo]) / (hi - lo)).to(x.dtype).movedim(-1, dim)

GROUPS = ("genuine", "waveglow", "vc", "kokoro", "others")


def band_groups(n_groups: int) -> list[tuple[np.ndarray, str]]:
    """Consecutive equal groups of filterbank bands, each with the range of its band centres in Hz."""
    n = config.FEATURES["n_bins"]
    f_min, f_max = config.FEATURES["f_min_hz"], config.FEATURES["f_max_hz"]
    if config.FEATURES["filterbank"] != "linear":
        raise SystemExit("occlusion: the band labels assume the linear filterbank (SYNTHSCAN_FILTERBANK=linear)")
    centres = np.linspace(f_min, f_max, n + 2)[1:-1]
    out = []
    for idx in np.array_split(np.arange(n), n_groups):
        out.append((idx, f"{centres[idx[0]] / 1000:.1f}-{centres[idx[-1]] / 1000:.1f} kHz"))
    return out


def operation(name: str, arg, rng: np.random.Generator):
    """A function [N, F, B] -> [N, F, B] (a new array; the store is never written). arg: the band indices of
    `flat` and `only`, the width of the smoothings."""
    def flat(x, idx):
        x = x.copy()
        x[:, :, idx] = x[:, :, idx].mean(axis=1, keepdims=True)
        return x

    def smooth(x, k, dim):
        import torch
        return moving_average(torch.from_numpy(x), k, dim).numpy()

    def shuffle(x):
        perm = np.argsort(rng.random(x.shape[:2]), axis=1)
        return np.take_along_axis(x, perm[:, :, None], axis=1)

    return {"none": lambda x: x,
            "flat": lambda x: flat(x, arg),
            "only": lambda x: flat(x, np.setdiff1d(np.arange(x.shape[2]), arg)),
            "shuffle": shuffle,
            "fsmooth": lambda x: smooth(x, arg, 2),
            "tsmooth": lambda x: smooth(x, arg, 1)}[name]


def onnx_predictor(path: Path):
    if not path.exists():
        raise SystemExit(f"occlusion: no model at {path}")
    sess = ship.session(path, config.threads())
    return lambda xb: sess.run(None, {"features": xb})[0].reshape(-1)


def run_predictor(run: Path):
    import torch

    from synthscan_train import models
    net, info = models.load_run(run, config.FEATURES["n_bins"], config.WINDOW["frames"])
    torch.set_num_threads(config.threads())
    return train.predictor(net.full if info["arch"].startswith("dual") else net)


def group_means(scores: np.ndarray, rows: list[dict]) -> dict:
    fam = np.array([store.family_group(r["family"], r["label"]) for r in rows])
    return {g: float(np.nanmean(scores[fam == g])) for g in GROUPS if (fam == g).any()}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--onnx", type=Path, default=Path(__file__).resolve().parents[2] / "models" / "synthscan.onnx")
    ap.add_argument("--run", type=Path, help="a training run's directory instead (a dual run: its full-band branch)")
    ap.add_argument("--groups", type=int, default=8, help="number of equal groups of filterbank bands")
    ap.add_argument("--seed", type=int, default=0, help="seed of the frame order of `shuffle`")
    ap.add_argument("--json", type=Path, help="also write every figure here")
    a = ap.parse_args(argv)
    predict = run_predictor(a.run) if a.run else onnx_predictor(a.onnx)
    groups = band_groups(a.groups)
    plan = [("none", None, "as is")]
    plan += [("flat", idx, label) for idx, label in groups]
    plan += [("only", idx, label) for idx, label in groups]
    plan += [("shuffle", None, "all bands")]
    plan += [(op, k, f"{k} {unit}") for op, unit in (("fsmooth", "bands"), ("tsmooth", "frames"))
             for k in (2, 3, 5)]
    results = {}
    for cond, st in zip(("clean", "phone"), train.dev_stores()[:2]):
        base = None
        rows_out = []
        for op, arg, label in plan:
            f = operation(op, arg, np.random.default_rng(a.seed))
            sc = store.file_scores(st, lambda xb: predict(f(xb)))
            rep = store.report(sc, st.rows)
            means = group_means(sc, st.rows)
            if base is None:
                base = means
            shift = {g: means[g] - base[g] for g in means}
            rows_out.append({"op": op, "bands": label, "eer": {k: v for k, v in rep.items() if not k.startswith("n")},
                             "logit_shift": shift, "logit_mean": means})
            print(f"{cond:5s} {op:7s} {label:14s} EER " +
                  " ".join(f"{k}={100 * v:5.1f}" for k, v in rep.items() if not k.startswith("n")) +
                  " | logit shift " + " ".join(f"{g}={shift[g]:+6.2f}" for g in shift), flush=True)
        results[cond] = rows_out
    if a.json:
        a.json.write_text(json.dumps({"model": str(a.run or a.onnx), "groups": a.groups, "results": results}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
