"""Step 2: train the recipe's network on cached Rust features; report dev file-level EER (Python side).

    python -m synthscan_train.train --out .cache/runs/base                         the base run (recipe.toml [train])
    python -m synthscan_train.train --init RUN/model.pt --narrowband ...           its fine-tune ([finetune])
Writes OUT/model.pt, OUT/dev.json (per-epoch dev EERs: the corpus dev and the clip store's dev pages).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as Fn

from . import config
from . import data
from . import datasums
from . import models
from . import recipe
from . import store

# SpecAugment: (p freq, freq masks [lo, hi), max freq width, p time, time masks [lo, hi), max time width)
SPECAUG = (0.6, (1, 3), 10, 0.5, (1, 2), 15)


def spec_augment(x: torch.Tensor, rng: np.random.Generator) -> torch.Tensor:
    """Frequency / time masking; masked cells get the window's per-bin mean (0 after CMN)."""
    pf, nf, wf, pt, nt, wt = SPECAUG
    B, T, NB = x.shape
    mean = x.mean(dim=1, keepdim=True).expand_as(x)
    mask = torch.zeros(B, T, NB, dtype=torch.bool)
    for b in range(B):
        if rng.random() < pf:
            for _ in range(int(rng.integers(*nf))):
                w = int(rng.integers(1, wf + 1))
                f0 = int(rng.integers(0, NB - w))
                mask[b, :, f0:f0 + w] = True
        if rng.random() < pt:
            # (one time mask: no draw for the count, which keeps the random stream the shipped model saw)
            for _ in range(nt[0]):
                w = int(rng.integers(1, wt + 1))
                t0 = int(rng.integers(0, T - w))
                mask[b, t0:t0 + w, :] = True
    return torch.where(mask, mean, x)


def recalibrate_bn(model, train_s, usable, starts, rng, n_batches=120, bs=64):
    """Re-estimates BatchNorm running statistics for averaged weights (SWA)."""
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not bns:
        return
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        for _ in range(n_batches):
            bi = rng.choice(usable, size=bs)
            bst = np.array([starts[i][rng.integers(len(starts[i]))] for i in bi], np.int64)
            model(torch.from_numpy(train_s.batch(bi, bst)))
    model.eval()


def predictor(model):
    model.eval()

    def f(xb: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(xb)).numpy()
    return f


def dev_stores() -> tuple[store.Store, store.Store, store.Store, store.Store]:
    """The dev features, clean and through the G.711 dev channel: the corpus dev, and the clip store's dev pages
    (empty stores when the clip store has not been built)."""
    dev = data.read_dev_table()
    return tuple(store.Store([d for d in dev if d["role"] == role and d["condition"] == c])
                 for role in ("dev", "dev_demo") for c in ("clean", "phone"))


def is_narrowband(row: dict) -> bool:
    """Whether the Rust front end reads this file at <= 8 kHz (the G.711, GSM and 8 kHz copies, and clean files
    recorded at 8 kHz): the inputs that the manifest's threshold_narrowband judges."""
    import soundfile as sf
    return sf.info(row["path"]).samplerate <= config.NARROWBAND_MAX_RATE_HZ


def load_stores(narrowband: bool = False):
    """Train and calibration features plus the dev stores; narrowband keeps only the narrowband train files."""
    variants = data.read_csv(data.VARIANTS)
    rows = [v for v in variants if v["role"] == "train"]
    if narrowband:
        rows = [v for v in rows if is_narrowband(v)]
    train = store.Store(rows)
    calib = store.Store([v for v in variants if v["role"] == "calib"])
    return (train, calib, *dev_stores())


def dev_eval(model, devs) -> dict:
    """File-level EER on the corpus dev (overall and per held-out family; their mean, clean and G.711, is the
    selection score) and, when built, on the clip store's dev pages (overall)."""
    devc, devp, storec, storep = devs
    p = predictor(model)
    rc = store.report(store.file_scores(devc, p), devc.rows)
    rp = store.report(store.file_scores(devp, p), devp.rows)
    keys = [k for k in ("all", "waveglow", "vc", "kokoro") if k in rc]
    sel = float(np.mean([rc[k] for k in keys] + [rp[k] for k in keys]))
    out = {"clean": rc, "phone": rp, "selection_score": sel}
    if storec.rows:
        out["store"] = {c: store.report(store.file_scores(st, p), st.rows)["all"]
                        for c, st in (("clean", storec), ("phone", storep))}
    return out


def train(arch: str, epochs: int, out: Path, seed: int = 0, per_file: int = 3, bs: int = 64,
          lr: float = 2e-3, log=print, swa: int = 0, swa_lr: float = 5e-4, wd: float = 1e-2,
          init: Path | None = None, narrowband: bool = False) -> torch.nn.Module:
    torch.manual_seed(seed)
    torch.set_num_threads(config.threads())
    rng = np.random.default_rng(seed)
    train_s, calib_s, *devs = load_stores(narrowband)
    out.mkdir(parents=True, exist_ok=True)
    starts = [train_s.valid_starts(i) for i in range(len(train_s.rows))]
    usable = np.array([i for i in range(len(starts)) if len(starts[i])], np.int64)
    y = train_s.y
    n_pos = y[usable].sum()
    n_all = len(usable)
    # class-balanced weights
    cw = {1.0: n_all / (2 * n_pos), 0.0: n_all / (2 * (n_all - n_pos))}
    log(f"[{arch}] train files {n_all} (spoof {int(n_pos)}, genuine {int(n_all - n_pos)}), frames {len(train_s.x)}")
    # channels-last convolutions are ~25 % faster per training step on CPU (oneDNN's preferred layout);
    # the arithmetic is the same up to float rounding, and the state dict loads into any layout
    model = models.build(arch, config.FEATURES["n_bins"], config.WINDOW["frames"]).to(memory_format=torch.channels_last)
    log(f"[{arch}] params {models.n_params(model)}")
    if init is not None:
        # fine-tuning: start from another run's weights (same arch and features)
        model.load_state_dict(torch.load(init))
    opts = {"arch": arch, "loss": "class-balanced BCE", "lr": lr, "weight_decay": wd, "specaug_params": SPECAUG,
            "swa_last_epochs": swa, "swa_lr": swa_lr if swa else None, "seed": seed, "batch": bs}
    if init is not None:
        # absolute, so that ship.py finds the base run's dev.json from any working directory
        opts["init"] = str(init.resolve())
    if narrowband:
        opts["train_files"] = "narrowband only (read at <= 8 kHz)"
    log(f"[{arch}] options {opts}")
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=wd)
    steps_per_epoch = int(np.ceil(n_all * per_file / bs))
    # one-cycle over the first epochs - swa epochs, then (SWA) a constant lr while averaging weights
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=(epochs - swa) * steps_per_epoch,
                                                pct_start=0.15)
    swa_state, swa_n = None, 0
    hist = []
    # the source clips behind the variants table (prepare writes it)
    prov = datasums.provenance_path(data.VARIANTS)
    data_sources = json.loads(prov.read_text()) if prov.exists() else None

    def save_history():
        (out / "dev.json").write_text(json.dumps({"arch": arch, "epochs": epochs, "per_file": per_file,
                                                  "features": config.FEATURES, "vad": config.VAD, "train_opts": opts,
                                                  "data_sources": data_sources,
                                                  "history": hist}, indent=1))

    def log_eval(what: str, ev: dict) -> None:
        store_text = (f" | store dev clean {100 * ev['store']['clean']:.1f} phone {100 * ev['store']['phone']:.1f}"
                 if "store" in ev else "")
        log(f"[{arch}] {what}: dev clean {fmt(ev['clean'])} | phone {fmt(ev['phone'])} | "
            f"sel {ev['selection_score']:.4f}{store_text}")
    for ep in range(epochs):
        in_swa = ep >= epochs - swa
        if in_swa:
            for g in opt.param_groups:
                g["lr"] = swa_lr
        t0 = time.time()
        model.train()
        idx = np.repeat(usable, per_file)
        rng.shuffle(idx)
        st = np.array([starts[i][rng.integers(len(starts[i]))] for i in idx], np.int64)
        tot, nb = 0.0, 0
        for a in range(0, len(idx), bs):
            bi, bst = idx[a:a + bs], st[a:a + bs]
            xb = spec_augment(torch.from_numpy(train_s.batch(bi, bst)), rng)
            yb = torch.from_numpy(y[bi])
            wb = torch.tensor([cw[float(v)] for v in y[bi]], dtype=torch.float32)
            z = model(xb)
            # each branch of a dual model must stand on its own, not only their average
            outs = [(z, 1.0)] + ([(part, 0.5) for part in model.last] if arch == "dual" else [])
            loss = sum(k * Fn.binary_cross_entropy_with_logits(o, yb, weight=wb) for o, k in outs)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if not in_swa:
                sched.step()
            tot += float(loss.detach())
            nb += 1
        ev = dev_eval(model, devs)
        hist.append({"epoch": ep + 1, "loss": tot / nb, **ev})
        log_eval(f"ep {ep + 1} loss {tot / nb:.4f} ({time.time() - t0:.0f}s)", ev)
        torch.save(model.state_dict(), out / "model.pt")
        if in_swa:
            sd = {k: v.detach().clone().float() for k, v in model.state_dict().items()}
            if swa_state is None:
                swa_state = sd
            else:
                for k in swa_state:
                    if sd[k].is_floating_point():
                        swa_state[k] += sd[k]
            swa_n += 1
        save_history()
    if swa_n > 1:
        # weight average of the last swa epochs (BN statistics re-estimated on train windows)
        torch.save(model.state_dict(), out / "model_last.pt")
        ref = model.state_dict()
        avg = {k: (v / swa_n if ref[k].is_floating_point() else ref[k]).to(ref[k].dtype) for k, v in swa_state.items()}
        model.load_state_dict(avg)
        recalibrate_bn(model, train_s, usable, starts, np.random.default_rng(seed + 99))
        ev = dev_eval(model, devs)
        hist.append({"epoch": f"swa{swa_n}", "loss": hist[-1]["loss"], **ev})
        log_eval(f"SWA of last {swa_n} epochs", ev)
        torch.save(model.state_dict(), out / "model.pt")
        save_history()
    if arch == "dual":
        # ship.py --branch full exports this branch alone: its figures are those of the network that ships
        ev = dev_eval(model.full, devs)
        hist[-1]["full_branch"] = ev
        log_eval("full-band branch alone", ev)
        save_history()
    return model


def fmt(r: dict) -> str:
    return " ".join(f"{k}={100 * v:.1f}" for k, v in r.items() if k in ("all", "waveglow", "vc", "kokoro", "others"))


def main():
    ap = argparse.ArgumentParser()
    # defaults: the recipe's base run (recipe.toml [train]); run.sh passes the fine-tune's values
    ap.add_argument("--arch", default=recipe.get("train.arch"))
    ap.add_argument("--epochs", type=int, default=recipe.get("train.epochs"))
    ap.add_argument("--per-file", type=int, default=recipe.get("train.per_file"))
    ap.add_argument("--seed", type=int, default=recipe.get("train.seed"))
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--lr", type=float, default=recipe.get("train.lr"))
    ap.add_argument("--wd", type=float, default=recipe.get("train.weight_decay"))
    ap.add_argument("--swa", type=int, default=recipe.get("train.swa"), help="average the weights of the last N epochs")
    ap.add_argument("--swa-lr", type=float, default=5e-4)
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (a run's model.pt)")
    ap.add_argument("--narrowband", action="store_true",
                    help="train only on the files read at <= 8 kHz (a phone-channel fine-tune, with --init)")
    a = ap.parse_args()
    train(a.arch, a.epochs, a.out, a.seed, a.per_file, lr=a.lr, wd=a.wd, swa=a.swa, swa_lr=a.swa_lr,
          init=a.init, narrowband=a.narrowband)


if __name__ == "__main__":
    main()
