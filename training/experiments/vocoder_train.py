#!/usr/bin/env python3
"""Train a small vocoder of our own on genuine TRAIN speech, for copy-synthesis data (vocode.py --vocoders istft).

    python training/vocoder_train.py --minutes 20 --out training/.cache/istft_vocoder
    python training/vocoder_train.py --adversarial --init training/.cache/istft_vocoder/model.pt \
        --segment 8000 --batch 6 --minutes 45 --out training/.cache/istft_gan_vocoder

Why: the registries carry only three vocoder checkpoints (all HiFi-GAN), and the dev systems the detector misses
are vocoders of other kinds. A vocoder trained here adds one: log-mel (the 80 Slaney bands HiFi-GAN reads) ->
ConvNeXt blocks over frames -> a log-magnitude and a phase per STFT bin -> inverse STFT, the way Vocos and
iSTFTNet make their waveform (no upsampling layers, so none of their periodic traces). It is trained with
reconstruction losses only (multi-resolution STFT and log-mel), no discriminator: cheap on two cores, but its
phase is what those losses allow, so it is a weaker vocoder than a published one (the shipped detector scores
its output 1.000). --adversarial adds what HiFi-GAN and Vocos train against: period sub-discriminators (periods
2-11) and STFT-resolution sub-discriminators, least-squares GAN loss, feature matching and 45 x mel L1, both
discriminator families narrowed so a step of 6 half-second segments takes about a second on two cores. Started
from the reconstruction-only checkpoint (--init), it has minutes of GAN training where published vocoders have days:
its output is nearer a real vocoder's, not equal to one. An adversarial run also writes discriminators.pt, and
--init from its model.pt continues with them; --device cuda runs the same training on a GPU where one is lent.

Only genuine clips whose role is train (never dev speakers, nor the calibration slice) are read. Output: model.pt
and config.json in --out. Seeded, but torch on CPU threads is not bit-exact across machines.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from synthscan_train import data  # noqa: E402

SR, N_FFT, HOP, N_MELS = 16000, 640, 160, 80


def mel_basis() -> torch.Tensor:
    from vocode import mel_fb
    return torch.tensor(mel_fb(N_FFT, N_MELS, 8000.0, SR, slaney=True), dtype=torch.float32)


class Block(nn.Module):
    """ConvNeXt block over frames: depthwise conv, layer norm, pointwise MLP, scaled residual."""

    def __init__(self, dim: int):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, 7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim)
        self.up = nn.Linear(dim, 3 * dim)
        self.down = nn.Linear(3 * dim, dim)
        self.gain = nn.Parameter(torch.full((dim,), 1e-2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dw(x).transpose(1, 2)
        y = self.down(F.gelu(self.up(self.norm(y)))) * self.gain
        return x + y.transpose(1, 2)


class IstftVocoder(nn.Module):
    def __init__(self, dim: int = 192, blocks: int = 6):
        super().__init__()
        self.inp = nn.Conv1d(N_MELS, dim, 7, padding=3)
        self.norm_in = nn.LayerNorm(dim)
        self.blocks = nn.Sequential(*[Block(dim) for _ in range(blocks)])
        self.norm_out = nn.LayerNorm(dim)
        self.out = nn.Linear(dim, N_FFT + 2)
        self.register_buffer("window", torch.hann_window(N_FFT), persistent=False)

    def forward(self, logmel: torch.Tensor) -> torch.Tensor:
        """(batch, 80, frames) natural-log mel, frames centred every HOP samples -> (batch, HOP * (frames - 1))."""
        x = self.norm_in(self.inp(logmel).transpose(1, 2)).transpose(1, 2)
        x = self.blocks(x)
        y = self.out(self.norm_out(x.transpose(1, 2))).transpose(1, 2)
        bins = N_FFT // 2 + 1
        mag = torch.exp(torch.clamp(y[:, :bins], max=6.0))  # clamped so an early step cannot overflow
        return torch.istft(torch.polar(mag, y[:, bins:]), N_FFT, HOP, window=self.window, center=True)


def logmel(x: torch.Tensor, basis: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    spec = torch.stft(x, N_FFT, HOP, window=window, center=True, return_complex=True).abs()
    return torch.log(torch.clamp(basis @ spec, min=1e-5))


def stft_loss(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Spectral convergence + log-magnitude L1 at three resolutions (Yamamoto et al., Parallel WaveGAN)."""
    total = y.new_zeros(())
    for n in (256, 512, 1024):
        w = torch.hann_window(n, device=y.device)
        ys = torch.stft(y, n, n // 4, window=w, return_complex=True).abs() + 1e-5
        xs = torch.stft(x, n, n // 4, window=w, return_complex=True).abs() + 1e-5
        total = total + torch.linalg.norm(xs - ys) / torch.linalg.norm(xs) + F.l1_loss(ys.log(), xs.log())
    return total / 3


def _feature_maps(convs: nn.ModuleList, post: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """A sub-discriminator's score map (flattened) and every layer's output, which feature matching compares."""
    maps = []
    for conv in convs:
        x = F.leaky_relu(conv(x), 0.1)
        maps.append(x)
    x = post(x)
    maps.append(x)
    return x.flatten(1), maps


class PeriodDiscriminator(nn.Module):
    """HiFi-GAN's period sub-discriminator (samples folded into rows of `period`), narrowed (16-256 channels where
    HiFi-GAN has 32-1024) so a step fits two CPU cores."""

    def __init__(self, period: int, widths=(16, 64, 128, 256, 256)):
        super().__init__()
        self.period = period
        chans = (1,) + tuple(widths)
        wn = nn.utils.parametrizations.weight_norm
        self.convs = nn.ModuleList(
            wn(nn.Conv2d(chans[i], chans[i + 1], (5, 1), (3 if i < len(widths) - 1 else 1, 1), padding=(2, 0)))
            for i in range(len(widths)))
        self.post = wn(nn.Conv2d(widths[-1], 1, (3, 1), padding=(1, 0)))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        b, t = x.shape
        if t % self.period:
            x = F.pad(x, (0, self.period - t % self.period), mode="reflect")
        x = x.view(b, 1, -1, self.period)
        return _feature_maps(self.convs, self.post, x)


class ResolutionDiscriminator(nn.Module):
    """UnivNet's resolution sub-discriminator: 2-D convolutions over one STFT magnitude, at half its width (32) so
    a step fits two CPU cores."""

    def __init__(self, n_fft: int, width: int = 16):
        super().__init__()
        self.n_fft = n_fft
        wn = nn.utils.parametrizations.weight_norm
        self.convs = nn.ModuleList([
            wn(nn.Conv2d(1, width, (3, 9), padding=(1, 4))),
            *[wn(nn.Conv2d(width, width, (3, 9), (1, 2), padding=(1, 4))) for _ in range(3)],
            wn(nn.Conv2d(width, width, (3, 3), padding=(1, 1)))])
        self.post = wn(nn.Conv2d(width, 1, (3, 3), padding=(1, 1)))
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        spec = torch.stft(x, self.n_fft, self.n_fft // 4, window=self.window, center=True, return_complex=True)
        x = spec.abs().transpose(1, 2).unsqueeze(1)  # (batch, 1, frames, bins)
        return _feature_maps(self.convs, self.post, x)


class Discriminators(nn.Module):
    """Periods 2, 3, 5, 7, 11 (HiFi-GAN) and three STFT resolutions (UnivNet), as Vocos trains against."""

    def __init__(self):
        super().__init__()
        self.subs = nn.ModuleList([PeriodDiscriminator(p) for p in (2, 3, 5, 7, 11)]
                                  + [ResolutionDiscriminator(n) for n in (256, 512, 1024)])

    def forward(self, x: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        return [d(x) for d in self.subs]


def discriminator_loss(real, fake) -> torch.Tensor:
    """Least-squares GAN: real outputs pushed to 1, generated to 0."""
    return sum(torch.mean((1 - r) ** 2) + torch.mean(f ** 2) for (r, _), (f, _) in zip(real, fake))


def generator_losses(real, fake) -> tuple[torch.Tensor, torch.Tensor]:
    """(adversarial, feature matching): generated outputs pushed to 1; L1 between the discriminators' inner maps."""
    adv = sum(torch.mean((1 - f) ** 2) for f, _ in fake)
    fm = sum(F.l1_loss(fm_, rm.detach()) for (_, rms), (_, fms) in zip(real, fake) for rm, fm_ in zip(rms, fms))
    return adv, fm


def log_spectral_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean |log magnitude| difference of 256-, 512- and 1024-point STFTs (the distance vocode.py's notes use)."""
    out = []
    for n in (256, 512, 1024):
        def mags(v):
            frames = np.lib.stride_tricks.sliding_window_view(v, n)[::n // 4] * np.hanning(n)
            return np.abs(np.fft.rfft(frames, axis=1))
        ma, mb = mags(a), mags(b)
        m = min(len(ma), len(mb))
        out.append(float(np.mean(np.abs(np.log(ma[:m] + 1e-5) - np.log(mb[:m] + 1e-5)))))
    return float(np.mean(out))


def normalised(path: str) -> np.ndarray:
    x = data.load16(path).astype(np.float32)
    return x / (np.abs(x).max() + 1e-6) * 0.5


def save(out: Path, config: dict, **modules: nn.Module) -> None:
    """<name>.pt per module, written whole or not at all: a run cut off mid-write leaves the last checkpoint."""
    out.mkdir(parents=True, exist_ok=True)
    for name, module in modules.items():
        torch.save({k: v.cpu() for k, v in module.state_dict().items()}, out / f"{name}.pt.tmp")
        (out / f"{name}.pt.tmp").replace(out / f"{name}.pt")
    (out / "config.json").write_text(json.dumps(config, indent=1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=data.CACHE / "istft_vocoder")
    ap.add_argument("--minutes", type=float, default=20.0, help="training time (wall clock)")
    ap.add_argument("--clips", type=int, default=600)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--init", type=Path, help="start the vocoder from this model.pt (e.g. a reconstruction-only run); "
                    "with --adversarial, the discriminators too if discriminators.pt lies beside it")
    ap.add_argument("--adversarial", action="store_true",
                    help="train against period and resolution discriminators (HiFi-GAN's loss weights)")
    ap.add_argument("--segment", type=int, default=SR, help="samples per training segment")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--save-minutes", type=float, default=10.0, help="write a checkpoint this often")
    ap.add_argument("--device", default="cpu", help="torch device, e.g. cuda where a GPU is lent")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    rows = [r for r in data.all_rows() if r["source"] in ("corpus", "genuine") and r["label"] == "bonafide"
            and r["role"] == "train" and float(r["duration_s"] or 0) >= 2.0]
    rows = [rows[i] for i in rng.permutation(len(rows))]
    probe, rows = rows[:6], rows[6:6 + a.clips]
    print(f"{len(rows)} genuine train clips; {len(probe)} more to measure reconstruction", flush=True)
    wav = [normalised(r["path"]) for r in rows]
    probe_wav = [torch.from_numpy(normalised(r["path"])) for r in probe]
    dev = torch.device(a.device)
    basis, window = mel_basis().to(dev), torch.hann_window(N_FFT, device=dev)
    net = IstftVocoder()
    if a.init:
        net.load_state_dict(torch.load(a.init, map_location="cpu"))
    net.to(dev)
    if a.adversarial:
        disc = Discriminators()
        if a.init and (a.init.parent / "discriminators.pt").is_file():
            # continuing an adversarial run: fresh discriminators would first have to relearn what the old ones knew
            disc.load_state_dict(torch.load(a.init.parent / "discriminators.pt", map_location="cpu"))
        disc.to(dev)
        # HiFi-GAN's optimiser settings for both players
        opt = torch.optim.AdamW(net.parameters(), 2e-4, betas=(0.8, 0.99))
        opt_d = torch.optim.AdamW(disc.parameters(), 2e-4, betas=(0.8, 0.99))
    else:
        opt = torch.optim.AdamW(net.parameters(), 5e-4)
    seg, batch = a.segment, a.batch
    checkpoint = {"model": net, **({"discriminators": disc} if a.adversarial else {})}

    def config(steps: int, dist: float) -> dict:
        return {"sample_rate": SR, "n_fft": N_FFT, "hop": HOP, "n_mels": N_MELS, "steps": steps, "batch": batch,
                "segment": seg, "minutes": a.minutes, "seed": a.seed, "clips": len(rows),
                "init": str(a.init) if a.init else None, "adversarial": a.adversarial,
                # measured every 500 steps: the last such value, null if the run stopped before step 500
                "probe_distance": None if np.isnan(dist) else round(dist, 4)}

    t0, step, dist, saved = time.time(), 0, float("nan"), time.time()
    while time.time() - t0 < a.minutes * 60:
        chunks = []
        for _ in range(batch):
            w = wav[rng.integers(len(wav))]
            s = int(rng.integers(0, max(1, len(w) - seg)))
            chunk = w[s:s + seg]
            chunks.append(np.pad(chunk, (0, seg - len(chunk))))
        x = torch.from_numpy(np.stack(chunks)).to(dev)
        with torch.no_grad():
            m = logmel(x, basis, window)
        y = net(m)[:, :seg]
        if a.adversarial:
            d_loss = discriminator_loss(disc(x), disc(y.detach()))
            opt_d.zero_grad()
            d_loss.backward()
            opt_d.step()
            with torch.no_grad():
                real = disc(x)  # the feature-matching targets; no gradient flows into them
            adv, fm = generator_losses(real, disc(y))
            mel = F.l1_loss(logmel(y, basis, window), m)
            loss = adv + 2.0 * fm + 45.0 * mel
        else:
            # each branch builds its mel term last: moving it (to share it between the branches) changes the order
            # in which autograd sums gradients, and with it the weights in their last bits
            loss = stft_loss(y, x) + F.l1_loss(logmel(y, basis, window), m)
        opt.zero_grad()
        loss.backward()
        # the reconstruction run clips at 1 (its first steps overflow otherwise); HiFi-GAN clips nothing, so the
        # adversarial run only guards against a blow-up
        nn.utils.clip_grad_norm_(net.parameters(), 1.0 if not a.adversarial else 100.0)
        opt.step()
        step += 1
        if step % 500 == 0:
            with torch.no_grad():
                dist = float(np.mean([log_spectral_distance(
                    p.numpy(), net(logmel(p[None].to(dev), basis, window))[0, :len(p)].cpu().numpy()) for p in probe_wav]))
            extra = (f" (discriminator {d_loss.item():.3f}, adversarial {adv.item():.3f}, feature {fm.item():.3f}, "
                     f"mel {mel.item():.3f})" if a.adversarial else "")
            print(f"step {step} ({time.time() - t0:.0f} s) loss {loss.item():.3f}{extra} probe distance {dist:.3f}", flush=True)
        if time.time() - saved > a.save_minutes * 60:
            save(a.out, config(step, dist), **checkpoint)
            saved = time.time()
    save(a.out, config(step, dist), **checkpoint)
    print(f"wrote {a.out / 'model.pt'} after {step} steps", flush=True)


if __name__ == "__main__":
    main()
