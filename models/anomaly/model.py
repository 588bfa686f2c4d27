"""A small convolutional autoencoder: 128² preprocessed frame → ``(128/2^depth)``² ×
``latent`` → 128², and the residual statistics that make its error an anomaly score.

Why a 32² × 8 code (``depth`` 2; 8 192 numbers for 16 384 pixels) and not the 8² × 8 of
v1: squeezed to 8², trained on ~500 whole-frame steps, the v1 network never got past
predicting the flat sky (its loss was the input's mean square, its residual the frame
itself), so its "reconstruction error" was no model at all. At 32² and trained on
random 64² crops (many more steps for the same time) it reproduces the stars, their
bleed trails and part of the noise texture: what is left is what normal frames never
show at small scales, a short bright streak of a glint above all. A code that size also
reproduces large-scale shapes it never saw (a gradient, a glow); the large-scale
features are therefore measured against the reconstruction's small scales only
(:func:`highpass`), the sky's shape being the frame's own. The heat map is the 5×5-mean
squared residual in units of the frame's residual noise.
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
    """``depth`` stride-2 stages each way. ``width``: channels of the first stage (doubling
    to ``4 × width``); ``latent``: channels of the code, ``128 / 2**depth`` pixels square.
    Input ``(n, 1, H, W)``, ``H`` and ``W`` multiples of ``2**depth``."""

    def __init__(self, width: int = 8, latent: int = 8, depth: int = 2) -> None:
        super().__init__()
        w = [min(width * 2**i, 4 * width) for i in range(depth)]
        self.config = {"width": width, "latent": latent, "depth": depth}
        chans = [1, *w]
        self.encoder = nn.Sequential(
            *(_down(chans[i], chans[i + 1]) for i in range(depth)),
            nn.Conv2d(w[-1], latent, 1),
        )
        ups = [_up(w[i], w[i - 1]) for i in range(depth - 1, 0, -1)]
        self.decoder = nn.Sequential(
            nn.Conv2d(latent, w[-1], 1),
            nn.GELU(),
            *ups,
            _up(w[0], w[0]),
            nn.Conv2d(w[0], 1, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(x))


FEATURES = ("mean", "local", "stripes", "lowfreq")
"""Per-frame summaries of the residual ``x - recon``, each in units of the frame's own
residual noise (1.4826 × its median absolute deviation, so that a frame's noise level,
which varies with sky and exposure, does not pass for an anomaly):

- ``mean``: mean squared error (in input units, not normalised): the textbook score,
  kept for comparison. A fault spread thinly over the frame barely moves it (a global
  mean dilutes a halo or a low-amplitude pattern in the noise of 16 384 pixels).
- ``local``: the largest 5×5 mean of the squared normalised residual (a streak, a knot).
- ``stripes``: the larger of the mean square of the row medians and of the column
  medians, × the pixels per median (≈ 1 for white noise): anything coherent along the
  readout's rows or columns (pattern noise) and any large-scale gradient, which leaves
  its rows (columns) offset against each other. Medians so that stars do not count.
- ``lowfreq``: the mean square of the 16×16-block medians × 256: a broad glow or dip.
"""

SCORE_FEATURES = ("local", "stripes")
"""The features the anomaly score takes its maximum over, chosen on the validation
split's faulted frames, never the test split's: with ``lowfreq`` as well no class's
validation AUC moved by more than 0.01, and ``mean`` points the wrong way (a faulted
frame's preprocessed noise is *smaller*: its gradient or pattern inflates the robust
noise the frame is divided by, so its mean squared error drops)."""


def robust_sigma(r: torch.Tensor) -> torch.Tensor:
    """``(n,)``: 1.4826 × the median absolute deviation of each ``(n, ...)`` map."""
    flat = r.flatten(1)
    med = flat.median(dim=1, keepdim=True).values
    return 1.4826 * (flat - med).abs().median(dim=1).values


HIGHPASS = 9
"""Box (pixels of the 128² input) whose mean is taken off the reconstruction before the
large-scale features (``stripes``, ``lowfreq``) are measured."""


def highpass(recon: torch.Tensor, k: int = HIGHPASS) -> torch.Tensor:
    """``recon`` less its ``k``×``k`` running mean (edges replicated): its point sources."""
    pad = k // 2
    padded = nn.functional.pad(recon, (pad, pad, pad, pad), mode="replicate")
    return recon - nn.functional.avg_pool2d(padded, k, stride=1)


def _normalised(residual: torch.Tensor) -> torch.Tensor:
    sigma = robust_sigma(residual).clamp_min(1e-4)
    med = residual.flatten(1).median(dim=1).values
    return (residual - med[:, None, None]) / sigma[:, None, None]


def features(x: torch.Tensor, recon: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(n, len(FEATURES))`` log-features and the heat map ``(n, H, W)``: the 5×5 mean of
    the squared residual in units of the frame's residual noise.

    ``mean`` and ``local`` (and the heat map) are measured on ``x - recon``; ``stripes``
    and ``lowfreq`` on ``x - highpass(recon)``: the autoencoder is trusted with the small
    scales (stars, their bleed, noise texture), not with the sky's large-scale shape,
    which in a normal frame is flat and which a decoder with a 32² code reproduces
    whatever it is (a dew glow or a vignetting gradient reconstructed is a fault missed).
    """
    residual = (x - recon)[:, 0]
    n, h, w = residual.shape
    u = _normalised(residual)
    heat = nn.functional.avg_pool2d((u**2)[:, None], 5, stride=1, padding=2)[:, 0]
    v = _normalised((x - highpass(recon))[:, 0])
    rows = (v.median(dim=2).values ** 2).mean(dim=1) * w
    cols = (v.median(dim=1).values ** 2).mean(dim=1) * h
    b = 16
    blocks = (
        v.reshape(n, h // b, b, w // b, b).permute(0, 1, 3, 2, 4).reshape(n, h // b, w // b, -1)
    )
    low = (blocks.median(dim=-1).values ** 2).mean(dim=(1, 2)) * b * b
    f = torch.stack(
        [(residual**2).mean(dim=(1, 2)), heat.amax(dim=(1, 2)), torch.maximum(rows, cols), low],
        1,
    )
    return torch.log(f + 1e-8), heat


def anomaly_score(
    feats: torch.Tensor,
    mu: torch.Tensor,
    sd: torch.Tensor,
    use: tuple[str, ...] = SCORE_FEATURES,
) -> torch.Tensor:
    """The largest z-score of the ``use`` features against normal frames (``mu``, ``sd``
    from the validation split's normal frames only): how many σ above normal the frame's
    most unusual summary lies. One-sided: every fault adds structure to the residual, and
    in units of the frame's own residual noise no fault makes it look quieter (the old
    two-sided score was needed only because an unnormalised error *drops* when banding
    inflates the noise estimate)."""
    idx = [FEATURES.index(k) for k in use]
    return ((feats[:, idx] - mu[idx]) / sd[idx]).amax(dim=1)
