"""A small convolutional autoencoder: 128² preprocessed frame → 8² × ``latent`` → 128².

Why so narrow a bottleneck (8 × 8 × 8 = 512 numbers for 16 384 pixels): an autoencoder
with room to spare learns the identity and reconstructs faults as well as normal frames;
squeezed, it keeps what normal frames share (flat sky at 0, the telescope's dust
shadows, point-like stars, bleed trails) and fails on what they never show (halos,
stripes, gradients, streaks). The reconstruction error map is the heat map.
"""

from __future__ import annotations

import torch
from torch import nn


def _down(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride=2, padding=1),
        nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.GELU(),
    )


def _up(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1),
        nn.GELU(),
        nn.Conv2d(c_out, c_out, 3, padding=1),
        nn.GELU(),
    )


class ConvAutoencoder(nn.Module):
    """Four stride-2 stages each way. ``width``: channels of the first stage (doubling to
    ``8 × width`` at 8²); ``latent``: channels of the 8² code. Input ``(n, 1, 128, 128)``."""

    def __init__(self, width: int = 8, latent: int = 8) -> None:
        super().__init__()
        w = (width, 2 * width, 4 * width, 4 * width)
        self.config = {"width": width, "latent": latent}
        self.encoder = nn.Sequential(
            _down(1, w[0]),
            _down(w[0], w[1]),
            _down(w[1], w[2]),
            _down(w[2], w[3]),
            nn.Conv2d(w[3], latent, 1),
        )
        self.decoder = nn.Sequential(
            nn.Conv2d(latent, w[3], 1),
            nn.GELU(),
            _up(w[3], w[2]),
            _up(w[2], w[1]),
            _up(w[1], w[0]),
            _up(w[0], w[0]),
            nn.Conv2d(w[0], 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


FEATURES = ("mean", "local", "lowfreq")
"""Per-frame summaries of the error: the whole frame's mean (stripes, halos), the
brightest 5×5 patch (a streak, a halo), the energy of the 16×16-smoothed residual (a
gradient or glow the code could not carry)."""


def features(x: torch.Tensor, recon: torch.Tensor) -> torch.Tensor:
    """``(n, 3)`` log-features of :data:`FEATURES` and the heat map ``(n, 128, 128)``."""
    residual = recon - x
    err = residual**2
    local = nn.functional.avg_pool2d(err, 5, stride=1, padding=2)
    low = nn.functional.avg_pool2d(residual, 16) ** 2
    f = torch.stack(
        [err.mean(dim=(1, 2, 3)), local.amax(dim=(1, 2, 3)), low.mean(dim=(1, 2, 3))], 1
    )
    return torch.log(f + 1e-8), local[:, 0]


def anomaly_score(feats: torch.Tensor, mu: torch.Tensor, sd: torch.Tensor) -> torch.Tensor:
    """The largest |z-score| of the features against normal frames (``mu``, ``sd`` from
    the validation split of normal frames only): how many σ the frame's most unusual
    summary lies from normal, either side. Two-sided because a fault can make the error
    *smaller*: row banding raises the frame's noise estimate, so in units of it the
    pixel noise (most of the error) shrinks."""
    return ((feats - mu) / sd).abs().amax(dim=1)
