"""A small conditional UNet: noisy stamp, time and galaxy conditioning → predicted velocity.

Why this shape: the renderer samples whole banks of stamps on a CPU core, so every
FLOP counts. Three resolutions (``size``, ``size/2``, ``size/4``) with one residual block
each way and one in the middle see a 32² stamp whole at the bottom (8², each pixel
a quarter of a half-light radius or more) without attention, which at this size costs
more than it brings. Time (the diffusion step) and the conditioning vector
(:data:`models.generative.dataset.COND_NAMES`) go through one MLP into a scale and shift
of every block's normalised activations (FiLM, as in Dhariwal & Nichol 2021's "adaptive
group norm"), so a bright, round, small galaxy and a faint, flat, large one are the same
network asked differently.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def time_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of diffusion times ``t`` in [0, 1] (Vaswani et al. 2017)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10_000.0) * torch.arange(half, device=t.device) / half)
    args = 1000.0 * t[:, None].float() * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResBlock(nn.Module):
    """GroupNorm → SiLU → conv, twice, with the embedding's scale and shift in between."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int = 8) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(min(groups, c_in), c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(min(groups, c_out), c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        nn.init.zeros_(self.conv2.weight)  # each block starts as the identity
        nn.init.zeros_(self.conv2.bias)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(nn.functional.silu(self.norm1(x)))
        scale, shift = self.emb(emb)[:, :, None, None].chunk(2, dim=1)
        h = self.norm2(h) * (1.0 + scale) + shift
        h = self.conv2(nn.functional.silu(h))
        return h + self.skip(x)


class GalaxyUNet(nn.Module):
    """``forward(x, t, cond)``: ``x`` (n, 1, s, s) with ``s`` a multiple of 4, ``t`` (n,) in
    [0, 1], ``cond`` (n, ``n_cond``) → (n, 1, s, s).

    ``widths``: channels at full, half and quarter resolution; ``emb_dim``: the size of the
    time + conditioning embedding.
    """

    def __init__(self, n_cond: int = 5, widths: tuple[int, int, int] = (24, 48, 64),
                 emb_dim: int = 96) -> None:  # fmt: skip
        super().__init__()
        w0, w1, w2 = widths
        self.config = {"n_cond": n_cond, "widths": list(widths), "emb_dim": emb_dim}
        self.emb_dim = emb_dim
        self.embed = nn.Sequential(
            nn.Linear(emb_dim + n_cond, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        self.cond_in = nn.Linear(n_cond, emb_dim)
        self.inp = nn.Conv2d(1, w0, 3, padding=1)
        self.down0 = ResBlock(w0, w0, emb_dim)
        self.pool0 = nn.Conv2d(w0, w1, 3, stride=2, padding=1)
        self.down1 = ResBlock(w1, w1, emb_dim)
        self.pool1 = nn.Conv2d(w1, w2, 3, stride=2, padding=1)
        self.mid = ResBlock(w2, w2, emb_dim)
        self.unpool1 = nn.ConvTranspose2d(w2, w1, 4, stride=2, padding=1)
        self.up1 = ResBlock(2 * w1, w1, emb_dim)
        self.unpool0 = nn.ConvTranspose2d(w1, w0, 4, stride=2, padding=1)
        self.up0 = ResBlock(2 * w0, w0, emb_dim)
        self.out_norm = nn.GroupNorm(8, w0)
        self.out = nn.Conv2d(w0, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        emb = self.embed(torch.cat([time_embedding(t, self.emb_dim), cond], dim=1))
        emb = nn.functional.silu(emb + self.cond_in(cond))
        h0 = self.down0(self.inp(x), emb)
        h1 = self.down1(self.pool0(h0), emb)
        h = self.mid(self.pool1(h1), emb)
        h = self.up1(torch.cat([self.unpool1(h), h1], dim=1), emb)
        h = self.up0(torch.cat([self.unpool0(h), h0], dim=1), emb)
        return self.out(nn.functional.silu(self.out_norm(h)))


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
