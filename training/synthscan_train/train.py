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
from . import datasums as DS
from . import models as M
from . import store as S


# SpecAugment settings: (p freq, freq masks [lo, hi), max freq width, p time, time masks [lo, hi), max time width)
SPECAUG = {
    "base": (0.6, (1, 3), 10, 0.5, (1, 2), 15),      # the shipped v1 model
    "strong": (0.8, (1, 4), 14, 0.6, (1, 3), 20),
    "none": (0.0, (1, 2), 1, 0.0, (1, 2), 1),
}


def spec_augment(x: torch.Tensor, rng: np.random.Generator, kind: str = "base") -> torch.Tensor:
    """Frequency / time masking; masked cells get the window's per-bin mean (0 after CMN)."""
    pf, nf, wf, pt, nt, wt = SPECAUG[kind]
    B, T, NB = x.shape
    mean = x.mean(dim=1, keepdim=True).expand_as(x)
    # with several channels per band (C.IN_CH) a frequency mask covers the same bands in each
    NB //= C.IN_CH
    mask = torch.zeros(B, T, NB, dtype=torch.bool)
    for b in range(B):
        if rng.random() < pf:
            for _ in range(int(rng.integers(*nf))):
                w = int(rng.integers(1, wf + 1))
                f0 = int(rng.integers(0, NB - w))
                mask[b, :, f0:f0 + w] = True
        if rng.random() < pt:
            # (no draw for a fixed count of 1: keeps the v1 random stream for "base")
            for _ in range(int(rng.integers(*nt)) if nt[1] - nt[0] > 1 else nt[0]):
                w = int(rng.integers(1, wt + 1))
                t0 = int(rng.integers(0, T - w))
                mask[b, t0:t0 + w, :] = True
    return torch.where(mask.repeat(1, 1, C.IN_CH), mean, x)


def moving_average(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """K-point moving average along dim; the ends average over the points that exist (no zero padding)."""
    x = x.movedim(dim, -1)
    n = x.shape[-1]
    c = torch.nn.functional.pad(torch.cumsum(x.double(), dim=-1), (1, 0))
    i = torch.arange(n)
    lo = (i - k // 2).clamp(0, n)
    hi = (i + (k - 1 - k // 2) + 1).clamp(0, n)
    return ((c[..., hi] - c[..., lo]) / (hi - lo)).to(x.dtype).movedim(-1, dim)


def smooth_augment(x: torch.Tensor, rng: np.random.Generator, p: float, widths=(2, 3)) -> torch.Tensor:
    """With probability p per window, a 2- or 3-point moving average over its frames or over its bands (a coin
    decides), of either class. EXPERIMENT (session 27, occlusion.py): a 2-frame or 2-band average of the input
    raises the shipped model's logit by 3.5-7 on every dev class, genuine included, so its level of "synthetic"
    rests on fine texture that noise suppression and low-rate codecs smooth away; this asks the network to rank
    the classes without it."""
    if p <= 0:
        return x
    out = x.clone()
    for b in range(x.shape[0]):
        if rng.random() < p:
            k = int(rng.choice(widths))
            dim = 0 if rng.random() < 0.5 else 1
            out[b] = moving_average(x[b], k, dim)
    return out


def mixup_within_class(x: torch.Tensor, y: np.ndarray, rng: np.random.Generator, p: float,
                       alpha: float = 0.4) -> torch.Tensor:
    """With probability p per window, mix its log features with another window of the SAME class
    (labels unchanged), lam ~ Beta(alpha, alpha) folded to >= 0.5 so the window stays dominant."""
    if p <= 0:
        return x
    out = x.clone()
    for lab in (0.0, 1.0):
        ids = np.nonzero(y == lab)[0]
        if len(ids) < 2:
            continue
        partner = rng.permutation(ids)
        for i, j in zip(ids, partner):
            if i != j and rng.random() < p:
                lam = rng.beta(alpha, alpha)
                lam = max(lam, 1 - lam)
                out[i] = lam * x[i] + (1 - lam) * x[j]
    return out


def freq_mixstyle(x: torch.Tensor, rng: np.random.Generator, p: float, groups: np.ndarray, alpha: float = 0.3,
                  eps: float = 1e-6) -> torch.Tensor:
    """Frequency-wise MixStyle (Kim et al. 2022, after Zhou et al. 2021): with probability p per window, its
    per-band mean and spread over time are replaced by a Beta(alpha, alpha) mix of its own and those of another
    window of the batch, of either class. The long-term spectrum (a microphone's or a channel's colour, and a
    corpus's) then stops telling the classes apart, and the network must lean on what is left.

    The partner comes from the same group (`groups`, one label per window: here whether the file is read at
    <= 8 kHz). Mixing a phone-band window with a wideband one paints level and spread into bands that hold
    only the noise floor, an input no channel produces. EXPERIMENT (session 23, card notes): at p 0.5, with
    partners of any band or of the same band, dev EER was 2.5-6 points worse than without mixing by epoch 4."""
    if p <= 0:
        return x
    if C.IN_CH != 1:
        raise ValueError("freq_mixstyle works on the log power alone (C.IN_CH == 1)")
    B = x.shape[0]
    sel = torch.from_numpy(rng.random(B) < p).view(B, 1, 1)
    perm_np = np.arange(B)
    for g in np.unique(groups):
        ids = np.nonzero(groups == g)[0]
        perm_np[ids] = rng.permutation(ids)
    perm = torch.from_numpy(perm_np)
    lam = torch.from_numpy(rng.beta(alpha, alpha, B).astype(np.float32)).view(B, 1, 1)
    mu = x.mean(dim=1, keepdim=True)
    sig = (x.var(dim=1, keepdim=True) + eps).sqrt()
    mixed = (x - mu) / sig * (lam * sig + (1 - lam) * sig[perm]) + lam * mu + (1 - lam) * mu[perm]
    return torch.where(sel, mixed, x)


def sam_ascent(params: list[torch.nn.Parameter], rho: float) -> list[tuple[torch.nn.Parameter, torch.Tensor]]:
    """Sharpness-aware minimisation, first half (Foret et al. 2021): move the weights by rho along the
    normalised gradient, to the worst nearby point; returns each parameter's move."""
    with torch.no_grad():
        grads = [p.grad for p in params if p.grad is not None]
        norm = torch.norm(torch.stack([g.norm(2) for g in grads]), 2) + 1e-12
        moves = [(p, p.grad * (rho / norm)) for p in params if p.grad is not None]
        for p, e in moves:
            p.add_(e)
    return moves


def sam_descent(moves: list[tuple[torch.nn.Parameter, torch.Tensor]]) -> None:
    """Second half: back to the weights before the move; the optimiser then steps with the gradient taken there."""
    with torch.no_grad():
        for p, e in moves:
            p.sub_(e)


def oc_softmax_loss(logit: torch.Tensor, y: torch.Tensor, w: torch.Tensor, m_real: float = 0.9,
                    m_fake: float = 0.2) -> torch.Tensor:
    """OC-softmax on the cosine recovered from the exported logit (logit = -alpha * cos)."""
    a = M.OC_SCALE
    cos = -logit / a
    z = torch.where(y > 0.5, a * (cos - m_fake), a * (m_real - cos))
    return (Fn.softplus(z) * w).mean()


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


def dev_stores() -> tuple[S.Store, S.Store]:
    """The dev split's features, clean and through the G.711 dev channel."""
    dev = D.read_dev_table()
    return tuple(S.Store([d for d in dev if d["role"] == "dev" and d["condition"] == c])
                 for c in ("clean", "phone"))


def is_narrowband(row: dict) -> bool:
    """Whether the Rust front end reads this file at <= 8 kHz (the G.711, GSM and 8 kHz copies, and clean files
    recorded at 8 kHz): the inputs that the manifest's threshold_narrowband judges."""
    import soundfile as sf
    return sf.info(row["path"]).samplerate <= 8000


# corpus families whose systems without an acoustic model in their name ("tts+...") are vocoders driven by a
# recording's own features (copy-synthesis)
VOCODER_FAMILIES = {"hifigan", "melgan", "pwg", "wavenet", "wavernn", "clarinet", "parallel_wavenet"}


def is_resynthesis(row: dict) -> bool:
    """Synthetic speech that renders a natural recording's features: the copy-synthesis sets of vocode.py, the
    corpus's vocoder-only systems, and voice conversion."""
    fam, system = row["family"], row["system"]
    return (fam.startswith("copysyn_") or (fam in VOCODER_FAMILIES and "+" not in system)
            or system.endswith("_vc") or system.startswith("dnn_vc"))


def load_stores(narrowband: bool = False, resynthesis_only: bool = False, other_share: float = 0.0):
    """Train and calibration features plus the dev stores. narrowband keeps only the narrowband train files
    (is_narrowband); resynthesis_only keeps every genuine file, the synthetic ones of is_resynthesis, and a fixed
    other_share of the other synthetic units (drawn by a hash of the unit, so every variant of a unit goes together)."""
    variants = D.read_csv(D.VARIANTS)
    rows = [v for v in variants if v["role"] == "train"]
    if narrowband:
        rows = [v for v in rows if is_narrowband(v)]
    if resynthesis_only:
        rows = [v for v in rows if v["label"] == "bonafide" or is_resynthesis(v) or D.h01(v["unit"]) < other_share]
    train = S.Store(rows)
    calib = S.Store([v for v in variants if v["role"] == "calib"])
    return (train, calib, *dev_stores())


def dev_eval(model, devc, devp) -> dict:
    p = predictor(model)
    rc = S.report(S.file_scores(devc, p), devc.rows)
    rp = S.report(S.file_scores(devp, p), devp.rows)
    keys = [k for k in ("all", "waveglow", "vc", "kokoro") if k in rc]
    sel = float(np.mean([rc[k] for k in keys] + [rp[k] for k in keys]))
    return {"clean": rc, "phone": rp, "selection_score": sel}


def train(arch: str, epochs: int, out: Path, seed: int = 0, per_file: int = 3, bs: int = 64,
          lr: float = 2e-3, stores=None, log=print, specaug: str = "base", mixup: float = 0.0,
          mixstyle: float = 0.0, smooth: float = 0.0, sam: float = 0.0, swa: int = 0, swa_lr: float = 5e-4,
          wd: float = 1e-2,
          teacher: Path | None = None,
          kd_alpha: float = 0.5, kd_temp: float = 2.0, init: Path | None = None,
          narrowband: bool = False, wideband_share: float = 0.0, resynthesis_only: bool = False,
          other_share: float = 0.0) -> torch.nn.Module:
    torch.manual_seed(seed)
    threads = C.threads()
    torch.set_num_threads(threads)
    rng = np.random.default_rng(seed)
    if not 0.0 <= wideband_share < 1.0:
        raise ValueError(f"wideband_share must be in [0, 1), got {wideband_share}")
    if init is not None:
        # a fine-tune under another dev split than its base would score the base's training clips as dev (checked
        # before the stores load, which takes a minute)
        base_info = init.parent / "dev.json"
        base_split = json.loads(base_info.read_text()).get("dev_spoof_train", []) if base_info.exists() else []
        if base_split != list(D.DEV_SPOOF_TRAIN):
            raise SystemExit(f"{init} was trained with SYNTHSCAN_DEV_SPOOF_TRAIN={','.join(base_split) or '(unset)'} "
                             f"and this fine-tune runs with {','.join(D.DEV_SPOOF_TRAIN) or '(unset)'}: run it with "
                             "the base's setting")
    # a mixed fine-tune reads every train file and draws its wideband part anew each epoch
    train_s, calib_s, devc, devp = stores or load_stores(narrowband and wideband_share == 0.0, resynthesis_only,
                                                          other_share)
    out.mkdir(parents=True, exist_ok=True)
    starts = [train_s.valid_starts(i) for i in range(len(train_s.rows))]
    usable = np.array([i for i in range(len(starts)) if len(starts[i])], np.int64)
    wide_pool = np.zeros(0, np.int64)
    n_wide = 0
    # whether each train file is read at <= 8 kHz (one header read per file): the wideband draw of a mixed
    # fine-tune and freq_mixstyle's partner groups both need it
    narrow = (np.array([is_narrowband(r) for r in train_s.rows], bool)
              if mixstyle > 0 or (narrowband and wideband_share > 0.0) else None)
    if narrowband and wideband_share > 0.0:
        nb_mask = narrow[usable]
        usable, wide_pool = usable[nb_mask], usable[~nb_mask]
        # wideband files per epoch so that they are wideband_share of the epoch's files
        n_wide = min(len(wide_pool), int(round(len(usable) * wideband_share / (1.0 - wideband_share))))
    y = train_s.y
    n_spoof = y[usable].sum()
    # the class balance of an epoch's files: the wideband draw is expected to hold the pool's share of spoof
    n_pos = n_spoof + n_wide * y[wide_pool].mean() if n_wide else n_spoof
    n_all = len(usable) + n_wide
    n_neg = n_all - n_pos
    # class-balanced weights; extra generated data is one more "source" of spoof, weighted like corpus
    cw = {1.0: n_all / (2 * n_pos), 0.0: n_all / (2 * n_neg)}
    log(f"[{arch}] train files {len(usable)} (spoof {int(n_spoof)}, genuine {int(len(usable) - n_spoof)}), "
        f"frames {len(train_s.x)}"
        + (f"; plus {n_wide} of {len(wide_pool)} wideband files drawn each epoch" if n_wide else ""))
    # channels-last convolutions are ~25 % faster per training step on CPU (oneDNN's preferred layout);
    # the arithmetic is the same up to float rounding, and the state dict loads into any layout
    model = M.build(arch, C.FEATURES["n_bins"], C.WINDOW["frames"]).to(memory_format=torch.channels_last)
    log(f"[{arch}] params {M.n_params(model)}")
    if init is not None:
        # fine-tuning: start from another run's weights (same arch and features)
        model.load_state_dict(torch.load(init))
    opts = {"arch": arch, "loss": "OC-softmax (alpha 20, m 0.9/0.2), class-balanced" if arch.endswith("_oc")
            else f"AM-softmax (s {M.AM_SCALE:g}, m {M.AM_MARGIN:g}), class-balanced" if arch.endswith("_am")
            else "class-balanced BCE", "lr": lr, "weight_decay": wd, "specaug": specaug,
            "specaug_params": SPECAUG[specaug], "mixup_within_class_p": mixup, "swa_last_epochs": swa,
            "swa_lr": swa_lr if swa else None, "seed": seed, "batch": bs}
    if mixstyle > 0:
        opts["freq_mixstyle_p"] = mixstyle
    if smooth > 0:
        opts["smooth_p"] = smooth
    if sam > 0:
        # (BatchNorm running statistics see both passes of a step)
        opts["sam_rho"] = sam
    if init is not None:
        # absolute, so that ship.py finds the base run's dev.json from any working directory
        opts["init"] = str(init.resolve())
    if narrowband:
        opts["train_files"] = ("narrowband only (read at <= 8 kHz)" if not n_wide else
                               f"narrowband (read at <= 8 kHz) plus a {wideband_share:.0%} share of wideband "
                               "files drawn anew each epoch")
    if resynthesis_only:
        opts["synthetic_files"] = ("resynthesis (vocoders driven by recordings, voice conversion)"
                                   + (f" plus {other_share:.0%} of the other synthetic units" if other_share else " only"))
    teach = None
    if teacher is not None:
        # knowledge distillation: the teacher (an exported ONNX model over the same features, e.g. a
        # `ship.py --ensemble` of several seeds) scores each window as the student sees it before
        # SpecAugment; its tempered probability is a second target next to the label
        import onnxruntime as ort
        so = ort.SessionOptions()
        so.intra_op_num_threads = threads
        teach = ort.InferenceSession(str(teacher), so, providers=["CPUExecutionProvider"])
        opts["distill"] = {"teacher": teacher.name, "alpha": kd_alpha, "temperature": kd_temp}
    log(f"[{arch}] options {opts}")
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    steps_per_epoch = int(np.ceil(n_all * per_file / bs))
    # one-cycle over the first epochs - swa epochs, then (SWA) a constant lr while averaging weights
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=(epochs - swa) * steps_per_epoch,
                                                pct_start=0.15)
    swa_state, swa_n = None, 0
    hist = []
    # the source clips behind the variants table (prepare writes it; None for a table made before session 28)
    prov = DS.provenance_path(D.VARIANTS)
    data_sources = json.loads(prov.read_text()) if prov.exists() else None

    def save_history():
        (out / "dev.json").write_text(json.dumps({"arch": arch, "epochs": epochs, "per_file": per_file,
                                                  "features": C.FEATURES, "vad": C.VAD, "train_opts": opts,
                                                  "dev_spoof_train": list(D.DEV_SPOOF_TRAIN),
                                                  "data_sources": data_sources,
                                                  "history": hist}, indent=1))
    for ep in range(epochs):
        in_swa = ep >= epochs - swa
        if in_swa:
            for g in opt.param_groups:
                g["lr"] = swa_lr
        t0 = time.time()
        model.train()
        epoch_files = usable
        if n_wide:
            epoch_files = np.concatenate([usable, rng.choice(wide_pool, n_wide, replace=False)])
        idx = np.repeat(epoch_files, per_file)
        rng.shuffle(idx)
        st = np.array([starts[i][rng.integers(len(starts[i]))] for i in idx], np.int64)
        tot, nb = 0.0, 0
        for a in range(0, len(idx), bs):
            bi, bst = idx[a:a + bs], st[a:a + bs]
            xnp = train_s.batch(bi, bst)
            xb = torch.from_numpy(xnp)
            soft = (torch.sigmoid(torch.from_numpy(teach.run(None, {"features": xnp})[0] / kd_temp))
                    if teach is not None else None)
            xb = mixup_within_class(xb, y[bi], rng, mixup)
            if mixstyle > 0:
                xb = freq_mixstyle(xb, rng, mixstyle, narrow[bi])
            xb = smooth_augment(xb, rng, smooth)
            xb = spec_augment(xb, rng, specaug)
            yb = torch.from_numpy(y[bi])
            wb = torch.tensor([cw[float(v)] for v in y[bi]], dtype=torch.float32)
            def batch_loss() -> torch.Tensor:
                if arch.endswith("_oc"):
                    return oc_softmax_loss(model(xb), yb, wb)
                z = model(xb)
                # each branch of a dual model must stand on its own, not only their average
                outs = [(z, 1.0)] + ([(part, 0.5) for part in model.last] if arch.startswith("dual") else [])
                # AM-softmax over two classes = BCE on the cosine logit moved by s * m against the label
                shift = M.AM_SCALE * M.AM_MARGIN * (2 * yb - 1) if arch.endswith("_am") else 0.0
                loss = sum(k * Fn.binary_cross_entropy_with_logits(o - shift, yb, weight=wb) for o, k in outs)
                if soft is not None:
                    kd = sum(k * Fn.binary_cross_entropy_with_logits(o / kd_temp, soft, weight=wb) for o, k in outs)
                    loss = (1 - kd_alpha) * loss + kd_alpha * kd_temp ** 2 * kd
                return loss
            opt.zero_grad()
            loss = batch_loss()
            loss.backward()
            if sam > 0:
                moves = sam_ascent(params, sam)
                opt.zero_grad()
                batch_loss().backward()
                sam_descent(moves)
            opt.step()
            if not in_swa:
                sched.step()
            tot += float(loss.detach())
            nb += 1
        ev = dev_eval(model, devc, devp)
        hist.append({"epoch": ep + 1, "loss": tot / nb, **ev})
        log(f"[{arch}] ep {ep + 1} loss {tot / nb:.4f} ({time.time() - t0:.0f}s) "
            f"dev clean {fmt(ev['clean'])} | phone {fmt(ev['phone'])} | sel {ev['selection_score']:.4f}")
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
        ev = dev_eval(model, devc, devp)
        hist.append({"epoch": f"swa{swa_n}", "loss": hist[-1]["loss"], **ev})
        log(f"[{arch}] SWA of last {swa_n} epochs: dev clean {fmt(ev['clean'])} | phone {fmt(ev['phone'])} | "
            f"sel {ev['selection_score']:.4f}")
        torch.save(model.state_dict(), out / "model.pt")
        save_history()
    if arch.startswith("dual"):
        # ship.py --branch full exports this branch alone, so select.py compares runs on it
        ev = dev_eval(model.full, devc, devp)
        hist[-1]["full_branch"] = ev
        log(f"[{arch}] full-band branch alone: dev clean {fmt(ev['clean'])} | phone {fmt(ev['phone'])} | "
            f"sel {ev['selection_score']:.4f}")
        save_history()
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
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=1e-2)
    ap.add_argument("--specaug", default="base", choices=sorted(SPECAUG))
    ap.add_argument("--mixup", type=float, default=0.0, help="p of within-class mixup per window")
    ap.add_argument("--mixstyle", type=float, default=0.0,
                    help="p of frequency-wise MixStyle per window (band statistics mixed across the batch)")
    ap.add_argument("--smooth", type=float, default=0.0,
                    help="p per window of a 2- or 3-point moving average over frames or bands (EXPERIMENT)")
    ap.add_argument("--sam", type=float, default=0.0,
                    help="rho of sharpness-aware minimisation (two forward/backward passes per step); 0 = off")
    ap.add_argument("--swa", type=int, default=0, help="average the weights of the last N epochs")
    ap.add_argument("--swa-lr", type=float, default=5e-4)
    ap.add_argument("--teacher", type=Path, default=None,
                    help="ONNX model (same features) whose tempered outputs are distilled into this one")
    ap.add_argument("--kd-alpha", type=float, default=0.5, help="weight of the teacher's target vs the label")
    ap.add_argument("--kd-temp", type=float, default=2.0, help="temperature of teacher and student logits")
    ap.add_argument("--init", type=Path, default=None, help="start from these weights (a run's model.pt)")
    ap.add_argument("--narrowband", action="store_true",
                    help="train only on the files read at <= 8 kHz (a phone-channel fine-tune, with --init)")
    ap.add_argument("--wideband-share", type=float, default=0.0,
                    help="with --narrowband: this share of each epoch's files are wideband ones, drawn anew each epoch")
    ap.add_argument("--resynthesis-only", action="store_true",
                    help="synthetic train files only of vocoders driven by recordings and voice conversion "
                         "(is_resynthesis; a fine-tune, with --init)")
    ap.add_argument("--other-share", type=float, default=0.0,
                    help="with --resynthesis-only: keep this share of the other synthetic units too")
    a = ap.parse_args()
    if a.other_share and not a.resynthesis_only:
        ap.error("--other-share needs --resynthesis-only")
    if a.wideband_share and not a.narrowband:
        ap.error("--wideband-share needs --narrowband")
    train(a.arch, a.epochs, a.out, a.seed, a.per_file, lr=a.lr, wd=a.wd, specaug=a.specaug,
          mixup=a.mixup, mixstyle=a.mixstyle, smooth=a.smooth, sam=a.sam, swa=a.swa, swa_lr=a.swa_lr,
          teacher=a.teacher,
          kd_alpha=a.kd_alpha, kd_temp=a.kd_temp,
          init=a.init, narrowband=a.narrowband, wideband_share=a.wideband_share,
          resynthesis_only=a.resynthesis_only, other_share=a.other_share)


if __name__ == "__main__":
    main()
