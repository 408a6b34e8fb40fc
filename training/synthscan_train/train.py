"""Step 2: train one architecture on cached Rust features; report dev file-level EER (Python side).

    python -m synthscan_train.train --arch tcnn --epochs 12 --out .cache/runs/tcnn
Writes OUT/model.pt, OUT/dev.json (per-epoch dev EERs, used only to choose the architecture).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as Fn

from . import config as C
from . import data as D
from . import models as M
from . import store as S


def spec_augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Frequency / time masking; masked cells get the window's per-bin mean (0 after CMN)."""
    B, T, NB = x.shape
    mean = x.mean(dim=1, keepdim=True).expand_as(x)
    mask = torch.zeros(B, T, NB, dtype=torch.bool)
    for b in range(B):
        if rng.random() < 0.6:
            for _ in range(int(rng.integers(1, 3))):
                w = int(rng.integers(1, 11))
                f0 = int(rng.integers(0, NB - w))
                mask[b, :, f0:f0 + w] = True
        if rng.random() < 0.5:
            w = int(rng.integers(1, 16))
            t0 = int(rng.integers(0, T - w))
            mask[b, t0:t0 + w, :] = True
    return torch.where(mask, mean, x)


def predictor(model):
    model.eval()

    def f(xb: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(xb)).numpy()
    return f


def load_stores(extra_weight_ok=True):
    variants = D.read_csv(D.CACHE / "variants.csv")
    dev = D.read_csv(D.CACHE / "dev.csv")
    train = S.Store([v for v in variants if v["role"] == "train"])
    calib = S.Store([v for v in variants if v["role"] == "calib"])
    devc = S.Store([d for d in dev if d["role"] == "dev" and d["condition"] == "clean"])
    devp = S.Store([d for d in dev if d["role"] == "dev" and d["condition"] == "phone"])
    return train, calib, devc, devp


def dev_eval(model, devc, devp) -> dict:
    p = predictor(model)
    rc = S.report(S.file_scores(devc, p), devc.rows)
    rp = S.report(S.file_scores(devp, p), devp.rows)
    keys = [k for k in ("all", "waveglow", "vc", "kokoro") if k in rc]
    sel = float(np.mean([rc[k] for k in keys] + [rp[k] for k in keys]))
    return {"clean": rc, "phone": rp, "selection_score": sel}


def train(arch: str, epochs: int, out: Path, seed: int = 0, per_file: int = 3, bs: int = 64,
          lr: float = 2e-3, stores=None, log=print) -> torch.nn.Module:
    torch.manual_seed(seed)
    torch.set_num_threads(int(__import__('os').environ.get('SYNTHSCAN_THREADS', '2')))
    rng = np.random.default_rng(seed)
    train_s, calib_s, devc, devp = stores or load_stores()
    out.mkdir(parents=True, exist_ok=True)
    starts = [train_s.valid_starts(i) for i in range(len(train_s.rows))]
    usable = np.array([i for i in range(len(starts)) if len(starts[i])], np.int64)
    y = train_s.y
    n_pos = y[usable].sum()
    n_neg = len(usable) - n_pos
    # class-balanced weights; extra generated data is one more "source" of spoof, weighted like corpus
    cw = {1.0: len(usable) / (2 * n_pos), 0.0: len(usable) / (2 * n_neg)}
    log(f"[{arch}] train files {len(usable)} (spoof {int(n_pos)}, genuine {int(n_neg)}), "
        f"frames {len(train_s.x)}")
    model = M.build(arch, C.FEATURES["n_bins"], C.WINDOW["frames"])
    log(f"[{arch}] params {M.n_params(model)}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-2)
    steps_per_epoch = int(np.ceil(len(usable) * per_file / bs))
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps_per_epoch,
                                                pct_start=0.15)
    hist = []
    for ep in range(epochs):
        t0 = time.time()
        model.train()
        idx = np.repeat(usable, per_file)
        rng.shuffle(idx)
        st = np.array([starts[i][rng.integers(len(starts[i]))] for i in idx], np.int64)
        tot, nb = 0.0, 0
        for a in range(0, len(idx), bs):
            bi, bst = idx[a:a + bs], st[a:a + bs]
            xb = torch.from_numpy(train_s.batch(bi, bst))
            xb = spec_augment(xb, rng)
            yb = torch.from_numpy(y[bi])
            wb = torch.tensor([cw[float(v)] for v in y[bi]], dtype=torch.float32)
            loss = Fn.binary_cross_entropy_with_logits(model(xb), yb, weight=wb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            tot += float(loss.detach())
            nb += 1
        ev = dev_eval(model, devc, devp)
        hist.append({"epoch": ep + 1, "loss": tot / nb, **ev})
        log(f"[{arch}] ep {ep + 1} loss {tot / nb:.4f} ({time.time() - t0:.0f}s) "
            f"dev clean {fmt(ev['clean'])} | phone {fmt(ev['phone'])} | sel {ev['selection_score']:.4f}")
        torch.save(model.state_dict(), out / "model.pt")
        (out / "dev.json").write_text(json.dumps({"arch": arch, "epochs": epochs, "per_file": per_file, "features": C.FEATURES, "vad": C.VAD, "history": hist}, indent=1))
    return model


def fmt(r: dict) -> str:
    return " ".join(f"{k}={100 * v:.1f}" for k, v in r.items() if k in ("all", "waveglow", "vc", "kokoro", "others"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="tcnn")
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--per-file", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, required=True)
    a = ap.parse_args()
    train(a.arch, a.epochs, a.out, a.seed, a.per_file)


if __name__ == "__main__":
    main()
