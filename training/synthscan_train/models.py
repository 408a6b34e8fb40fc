"""The window classifier. Input [B, F, n_bins] log filterbank (from the Rust front end), output [B] logit (higher =
more likely synthetic).

  dual   a full-band LCNN (2-D CNN with max-feature-map over time and frequency, mean+std pooling over time)
         and a telephone-band LCNN (300-3400 Hz bins only), trained jointly with a loss on each branch; the
         full-band branch alone ships (ship.py --branch full).

Each LCNN starts with per-bin cepstral mean normalisation over the window's time axis (CMN), so absolute level and
a fixed channel colouring cannot drive the decision.
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


class LCNN(nn.Module):
    def __init__(self, n_bins=80, frames=100, w=(8, 16, 24, 32)):
        super().__init__()
        c1, c2, c3, c4 = w
        self.net = nn.Sequential(
            MFM2d(1, c1, 5, 2, 2),                  # [F/2, B/2]
            nn.MaxPool2d(2),                        # [F/4, B/4]
            MFM2d(c1, c1, 1), MFM2d(c1, c2, 3, 1, 1),
            nn.MaxPool2d(2),                        # [F/8, B/8]
            MFM2d(c2, c2, 1), MFM2d(c2, c3, 3, 1, 1),
            nn.MaxPool2d((1, 2)),                   # [F/8, B/16]
            MFM2d(c3, c3, 1), MFM2d(c3, c4, 3, 1, 1),
        )
        fdim = c4 * (n_bins // 16)
        self.drop = nn.Dropout(0.3)
        self.fc1 = nn.Linear(2 * fdim, 64)
        self.fc2 = nn.Linear(64, 1)

    def forward(self, x):
        h = self.net(cmn(x).unsqueeze(1))          # [B,C,T',F']
        h = h.permute(0, 2, 1, 3).flatten(2)        # [B,T',C*F']
        mu = h.mean(dim=1)
        sd = torch.sqrt(h.var(dim=1, unbiased=False) + 1e-5)
        z = self.drop(torch.cat([mu, sd], dim=1))
        z = F.leaky_relu(self.fc1(z), 0.1)
        return self.fc2(self.drop(z)).squeeze(1)


# Telephone band (300-3400 Hz) in the 80-bin linear layout (20-8000 Hz, ~100 Hz per bin): bins 3..34.
BAND = (3, 35)


def band_bins(n_bins: int) -> tuple[int, int]:
    """BAND scaled to another linear layout over the same 20-8000 Hz (e.g. 160 bins: 6..69)."""
    return round(BAND[0] * n_bins / 80), round(BAND[1] * n_bins / 80)


class DualLCNN(nn.Module):
    """A full-band LCNN and a telephone-band LCNN (bins BAND only) whose logits are averaged.

    The band branch never sees energy outside 300-3400 Hz, so it must learn in-band cues and cannot
    use bandwidth at all; clean audio gives it as much training signal as phone audio does. The
    full-band branch keeps the high-band vocoder artefacts that clean audio shows.
    """

    def __init__(self, n_bins=80, frames=100):
        super().__init__()
        self.full = LCNN(n_bins, frames)
        self.band_lo, self.band_hi = band_bins(n_bins)
        self.band = LCNN(self.band_hi - self.band_lo, frames)
        self.last = None

    def forward(self, x):
        a = self.full(x)
        b = self.band(x[:, :, self.band_lo:self.band_hi])
        if self.training:
            self.last = (a, b)
        return 0.5 * (a + b)


def build(name: str, n_bins: int, frames: int) -> nn.Module:
    if name == "dual":
        return DualLCNN(n_bins, frames)
    raise ValueError(f"unknown network {name!r} (the recipe's is 'dual')")


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
