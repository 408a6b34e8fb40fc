"""Small window classifiers. Input [B, F, n_bins] log filterbank (from the Rust front end),
output [B] logit (higher = more likely synthetic).

Both start with per-bin cepstral mean normalisation over the window's time axis (CMN), so absolute
level and a fixed channel colouring cannot drive the decision.

  lcnn   LCNN-style 2-D CNN with max-feature-map (MFM) over (time, freq), mean+std pooling over time.
  tcnn   1-D temporal ResNet over the bins (bins = channels) with squeeze-excitation and attentive
         statistics pooling.

Suffix "_oc" (e.g. lcnn_oc): the same network with a one-class softmax head (Zhang et al. 2021,
"One-class learning towards synthetic voice spoofing detection"): the 64-d embedding is L2-normalised
and compared with one learned unit vector w (the genuine direction); the exported output is
logit = OC_SCALE * (-cos(w, e)), so higher still means more likely synthetic and the manifest's
calibration / threshold mechanism is unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F


def cmn(x: torch.Tensor) -> torch.Tensor:
    return x - x.mean(dim=1, keepdim=True)


class _MaxFeatureMap(torch.autograd.Function):
    """max(first half, second half) of the channels, with a one-mask backward.

    torch.max(a, b)'s own backward splits the gradient at ties and builds it from five elementwise
    passes; on the training CPU that was a fifth of a step. Here the winner mask is kept from the
    forward pass and the gradient goes to the winner only, which is the same wherever a != b (ties
    between two float activations do not occur in practice). Training only: export uses torch.max.
    """

    @staticmethod
    def forward(ctx, h):
        a, b = h.chunk(2, dim=1)
        first = a >= b
        ctx.save_for_backward(first)
        return torch.where(first, a, b)

    @staticmethod
    def backward(ctx, g):
        (first,) = ctx.saved_tensors
        zero = torch.zeros((), dtype=g.dtype)
        return torch.cat([torch.where(first, g, zero), torch.where(first, zero, g)], dim=1)


class MFM2d(nn.Module):
    def __init__(self, cin, cout, k, s=1, p=0):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, k, s, p)
        self.bn = nn.BatchNorm2d(2 * cout)

    def forward(self, x):
        h = self.bn(self.conv(x))
        if self.training and torch.is_grad_enabled():
            return _MaxFeatureMap.apply(h)
        a, b = h.chunk(2, dim=1)
        return torch.max(a, b)


PHASE_SCALE = 8.0  # reassignment channels (experiment): ~0.2 spread -> ~1.6, near the CMN log power's

OC_SCALE = 20.0  # alpha of OC-softmax; logit = -alpha * cos


class OCHead(nn.Module):
    """Output = -OC_SCALE * cos(w, e): one learned genuine direction w."""

    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.randn(d) * 0.25)

    def forward(self, e):
        e = F.normalize(e, dim=1)
        w = F.normalize(self.w, dim=0)
        return -OC_SCALE * (e * w).sum(dim=1)


AM_SCALE, AM_MARGIN = 20.0, 0.2  # additive-margin softmax: scale s and margin m on the cosines


class AMHead(nn.Module):
    """Additive-margin softmax over two classes, exported as one logit: s * (cos(e, w_spoof) - cos(e, w_genuine)).
    With two classes the AM-softmax loss is BCE on that logit moved by s * m against its label
    (train.py), so the margin needs no second output."""

    def __init__(self, d):
        super().__init__()
        self.w = nn.Parameter(torch.randn(2, d) * 0.25)

    def forward(self, e):
        cos = F.normalize(e, dim=1) @ F.normalize(self.w, dim=1).T  # [B, 2]: genuine, spoof
        return AM_SCALE * (cos[:, 1] - cos[:, 0])


class LCNN(nn.Module):
    def __init__(self, n_bins=80, frames=100, w=(8, 16, 24, 32), head="bce", norm="cmn", fstride=2, in_ch=1,
                 phase_hi=None, phase_drop=0.0):
        super().__init__()
        self.head = head
        self.norm = norm
        self.in_ch, self.n_bins = in_ch, n_bins
        # the phase channels of bins >= phase_hi are zeroed (None: all kept); in training, each window's phase
        # channels are zeroed with probability phase_drop, so the network must also decide from the power alone
        self.phase_hi, self.phase_drop = phase_hi, phase_drop
        c1, c2, c3, c4 = w
        # fstride 4 (with a 7-bin kernel): a finer filterbank (160 bins) read by the first layer only, whose
        # output then has the 80-bin layout's size, so every later layer costs what it does at 80 bins (the
        # shapes below are for fstride 2)
        stem = MFM2d(in_ch, c1, 5, 2, 2) if fstride == 2 else MFM2d(in_ch, c1, (5, 7), (2, fstride), (2, 3))
        self.net = nn.Sequential(
            stem,                                   # [F/2, B/fstride]
            nn.MaxPool2d(2),                        # [F/4, B/4]
            MFM2d(c1, c1, 1), MFM2d(c1, c2, 3, 1, 1),
            nn.MaxPool2d(2),                        # [F/8, B/8]
            MFM2d(c2, c2, 1), MFM2d(c2, c3, 3, 1, 1),
            nn.MaxPool2d((1, 2)),                   # [F/8, B/16]
            MFM2d(c3, c3, 1), MFM2d(c3, c4, 3, 1, 1),
        )
        fdim = c4 * (n_bins // (8 * fstride))
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(2 * fdim, 64)
        if head == "oc":
            self.oc = OCHead(64)
        elif head == "am":
            self.am = AMHead(64)
        else:
            self.fc2 = nn.Linear(64, 1)

    def _image(self, x):
        if self.in_ch == 1:
            return (cmn(x) if self.norm == "cmn" else x - x.mean(dim=(1, 2), keepdim=True)).unsqueeze(1)  # [B,1,T,F]
        # [B,T,C*F] with the log power first: normalise it as above; the phase channels are offsets already
        # (~0.2 spread), scaled to about the spread of the normalised log power
        B, T, _ = x.shape
        x = x.reshape(B, T, self.in_ch, self.n_bins)
        lp = x[:, :, 0]
        lp = cmn(lp) if self.norm == "cmn" else lp - lp.mean(dim=(1, 2), keepdim=True)
        ph = PHASE_SCALE * x[:, :, 1:]
        if self.phase_hi is not None:
            ph = torch.cat([ph[..., :self.phase_hi], torch.zeros_like(ph[..., self.phase_hi:])], dim=-1)
        if self.training and self.phase_drop > 0.0:
            keep = (torch.rand(B, 1, 1, 1) >= self.phase_drop).to(ph.dtype)
            ph = ph * keep
        return torch.cat([lp.unsqueeze(2), ph], dim=2).permute(0, 2, 1, 3)  # [B,C,T,F]

    def forward(self, x):
        x = self._image(x)
        h = self.net(x)                             # [B,C,T',F']
        h = h.permute(0, 2, 1, 3).flatten(2)        # [B,T',C*F']
        mu = h.mean(dim=1)
        sd = torch.sqrt(h.var(dim=1, unbiased=False) + 1e-5)
        z = self.drop(torch.cat([mu, sd], dim=1))
        if self.head == "oc":
            return self.oc(self.fc1(z))            # embedding = fc1 output (no activation)
        if self.head == "am":
            return self.am(self.fc1(z))
        z = F.leaky_relu(self.fc1(z), 0.1)
        return self.fc2(self.drop(z)).squeeze(1)


# Telephone band (300-3400 Hz) in the 80-bin linear layout (20-8000 Hz, ~100 Hz per bin): bins 3..34.
BAND = (3, 35)


def band_bins(n_bins: int) -> tuple[int, int]:
    """BAND scaled to another linear layout over the same 20-8000 Hz (e.g. 160 bins: 6..69)."""
    return round(BAND[0] * n_bins / 80), round(BAND[1] * n_bins / 80)


def band_view(x: torch.Tensor, in_ch: int, n_bins: int, lo: int, hi: int) -> torch.Tensor:
    """Bins lo..hi of each channel of [B, T, in_ch * n_bins] rows, as [B, T, in_ch * (hi - lo)]."""
    if in_ch == 1:
        return x[:, :, lo:hi]
    B, T, _ = x.shape
    return x.reshape(B, T, in_ch, n_bins)[..., lo:hi].reshape(B, T, -1)


class DualLCNN(nn.Module):
    """A full-band LCNN and a telephone-band LCNN (bins BAND only) whose logits are averaged.

    The band branch never sees energy outside 300-3400 Hz, so it must learn in-band cues and cannot
    use bandwidth at all; clean audio gives it as much training signal as phone audio does. The
    full-band branch keeps the high-band vocoder artefacts that clean audio shows.
    """

    def __init__(self, n_bins=80, frames=100, norm="cmn", band_norm=None,
                 full_w=(8, 16, 24, 32), band_w=(8, 16, 24, 32), fstride=2, head="bce", in_ch=1, phase_hi=None,
                 phase_drop=0.0):
        super().__init__()
        self.full = LCNN(n_bins, frames, w=full_w, norm=norm, fstride=fstride, head=head, in_ch=in_ch,
                         phase_hi=phase_hi, phase_drop=phase_drop)
        self.band_lo, self.band_hi = band_bins(n_bins)
        self.band = LCNN(self.band_hi - self.band_lo, frames, w=band_w, norm=band_norm or norm, fstride=fstride,
                         head=head, in_ch=in_ch, phase_drop=phase_drop)
        self.last = None

    def forward(self, x):
        a = self.full(x)
        b = self.band(band_view(x, self.full.in_ch, self.full.n_bins, self.band_lo, self.band_hi))
        if self.training:
            self.last = (a, b)
        return 0.5 * (a + b)


class BandLCNN(nn.Module):
    """An LCNN over the telephone band (bins BAND) alone, trained on its own rather than as half of a dual
    model's mean (EXPERIMENT, session 22: with the phase channels, a network for G.711 input)."""

    def __init__(self, n_bins=80, frames=100, in_ch=1):
        super().__init__()
        self.band_lo, self.band_hi = band_bins(n_bins)
        self.in_ch, self.n_bins = in_ch, n_bins
        self.net = LCNN(self.band_hi - self.band_lo, frames, in_ch=in_ch)

    def forward(self, x):
        return self.net(band_view(x, self.in_ch, self.n_bins, self.band_lo, self.band_hi))


class SE1d(nn.Module):
    def __init__(self, c, r=4):
        super().__init__()
        self.fc1 = nn.Linear(c, c // r)
        self.fc2 = nn.Linear(c // r, c)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(x.mean(dim=2)))))
        return x * s.unsqueeze(2)


class ResBlock1d(nn.Module):
    def __init__(self, cin, cout, k=3, stride=1):
        super().__init__()
        self.c1 = nn.Conv1d(cin, cout, k, stride, k // 2, bias=False)
        self.b1 = nn.BatchNorm1d(cout)
        self.c2 = nn.Conv1d(cout, cout, k, 1, k // 2, bias=False)
        self.b2 = nn.BatchNorm1d(cout)
        self.se = SE1d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv1d(cin, cout, 1, stride, bias=False), nn.BatchNorm1d(cout))

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = self.se(self.b2(self.c2(h)))
        return F.relu(h + (x if self.short is None else self.short(x)))


class TCNN(nn.Module):
    def __init__(self, n_bins=80, c=(96, 96, 128)):
        super().__init__()
        c0, c1, c2 = c
        self.inorm = nn.BatchNorm1d(n_bins)
        self.stem = nn.Sequential(nn.Conv1d(n_bins, c0, 3, 2, 1, bias=False), nn.BatchNorm1d(c0), nn.ReLU())
        self.blocks = nn.Sequential(ResBlock1d(c0, c1, 3, 1), ResBlock1d(c1, c2, 3, 2))
        self.att = nn.Sequential(nn.Conv1d(c2, 32, 1), nn.Tanh(), nn.Conv1d(32, c2, 1))
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(2 * c2, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, x):
        x = cmn(x).transpose(1, 2)                  # [B,bins,T]
        h = self.blocks(self.stem(self.inorm(x)))   # [B,C,T']
        w = torch.softmax(self.att(h), dim=2)
        mu = (h * w).sum(dim=2)
        sd = torch.sqrt(((h * h) * w).sum(dim=2) - mu * mu + 1e-5)
        z = self.drop(torch.cat([mu, sd], dim=1))
        z = F.relu(self.fc1(z))
        return self.fc2(self.drop(z)).squeeze(1)


def build(name: str, n_bins: int, frames: int) -> nn.Module:
    if name == "lcnn":
        return LCNN(n_bins, frames)
    if name == "lcnn_oc":
        return LCNN(n_bins, frames, head="oc")
    if name == "lcnn_gm":
        return LCNN(n_bins, frames, norm="global")
    if name == "dual":
        return DualLCNN(n_bins, frames)
    if name == "dual_ra":
        # EXPERIMENT (session 22): the shipped dual over [log power, reassignment freq, time] (reassign.py)
        return DualLCNN(n_bins, frames, in_ch=3)
    if name == "band_ra":
        # EXPERIMENT (session 22): the telephone band alone, log power and the two phase channels
        return BandLCNN(n_bins, frames, in_ch=3)
    if name == "dual_ra_pd":
        # dual_ra with the phase channels of half the training windows zeroed (both branches)
        return DualLCNN(n_bins, frames, in_ch=3, phase_drop=0.5)
    if name == "dual_ra_lo":
        # the same with the full-band branch's phase channels kept in the telephone band only (bins < BAND[1]):
        # with them everywhere it fitted high-band phase that G.711 removes
        return DualLCNN(n_bins, frames, in_ch=3, phase_hi=band_bins(n_bins)[1])
    if name == "dual_am":
        # both branches with an additive-margin softmax head
        return DualLCNN(n_bins, frames, head="am")
    if name == "dual_f4":
        # for 160 bins: the first layer strides 4 bins, the rest of the network is the 80-bin one
        return DualLCNN(n_bins, frames, fstride=4)
    if name == "dual_w6":
        # for 160 bins at full resolution: narrower layers (6/12/16/24 channels) to stay near the 80-bin cost
        return DualLCNN(n_bins, frames, full_w=(6, 12, 16, 24), band_w=(6, 12, 16, 24))
    if name == "dual_slim":
        # the band branch at half width: ~1/4 of its convolution cost, to win back whole-pipeline speed
        return DualLCNN(n_bins, frames, band_w=(4, 8, 12, 16))
    if name == "dual_slim2":
        # both branches narrower (full 3/4 width, band half width)
        return DualLCNN(n_bins, frames, full_w=(6, 12, 18, 24), band_w=(4, 8, 12, 16))
    if name == "dual_gm":
        return DualLCNN(n_bins, frames, norm="global")
    if name == "dual_mix":
        # full band keeps the long-term spectrum (global level only removed); band branch uses CMN
        return DualLCNN(n_bins, frames, norm="global", band_norm="cmn")
    if name == "tcnn":
        return TCNN(n_bins)
    raise ValueError(name)


class MeanLogit(nn.Module):
    """Several trained networks over the same features as one: the mean of their logits. Seeds of one
    recipe disagree on which unseen files they miss, so their mean is steadier than any one of them."""

    def __init__(self, members: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([m(x) for m in self.members], 0).mean(0)


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def load_run(run: Path, n_bins: int, frames: int) -> tuple[nn.Module, dict]:
    """A training run's network with its trained weights (model.pt), and the run's dev.json (arch, front end,
    per-epoch dev figures)."""
    info = run / "dev.json"
    if not info.exists():
        raise SystemExit(f"{run} is not a training run (no dev.json)")
    run_info = json.loads(info.read_text())
    net = build(run_info["arch"], n_bins, frames)
    net.load_state_dict(torch.load(run / "model.pt"))
    return net, run_info
