"""The quality network: a normalised frame plus header and classical features → score,
seeing, 7 flag logits.

Input: ``image`` (B, 1, H, W), the frame normalised by
:func:`models.quality.features.normalise_image` (asinh of the robust z-score), any H, W
(global pooling at the end; trained at 256 × 256); ``side`` (B, N_INPUT_SIDE): the header
and sky features of :func:`models.quality.features.side_features` followed by the SEP
measurements of :mod:`models.quality.classical` (star FWHM and shape, coherent
ellipticity, streaks, spikes, catalogue zero point and counts).

Architecture (~0.08 M parameters, ~25 M multiply-adds at 256²): a stride-2 3 × 3
stem (8 channels; every pixel still enters a kernel, so a lone hot pixel shows) whose global max
is kept, then four stride-2 3 × 3 conv blocks (16, 32, 48, 64 channels) with batch norm
and ReLU, global mean and max pooling (a bad column or a trail is a line: mean pooling
sees it; a few hot pixels: max pooling), concatenated with a two-layer MLP (64 units) of
the side features, then a 128-unit layer and the heads:

- ``score``: 100 × sigmoid (0..100), the predicted effective-time ratio × 100;
- ``seeing``: softplus (arcsec), the image FWHM (drawn PSF, tracking left out);
- ``logits``: one per :data:`~twin.pipeline.stage.FLAG_NAMES` (sigmoid → probability).

A stride-1 stem (``stem_stride=1``) was measured at 7.5× the training cost and 4× the
inference cost on one core; the PSF detail it would resolve comes from the classical
measurements instead.
"""

from __future__ import annotations

import torch
from torch import nn

from models.quality.classical import N_CLASSICAL
from models.quality.features import N_SIDE

N_FLAGS = 7
N_INPUT_SIDE = N_SIDE + N_CLASSICAL
SIDE_WIDTH = 64
CHANNELS = (16, 32, 48, 64)
STEM = 8


def _block(c_in: int, c_out: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out),
                         nn.ReLU(inplace=True))  # fmt: skip


class QualityNet(nn.Module):
    def __init__(self, n_side: int = N_INPUT_SIDE, width: int = 128, stem_stride: int = 2) -> None:
        super().__init__()
        self.stem = _block(1, STEM, stem_stride)
        layers, c = [], STEM
        for c_out in CHANNELS:
            layers.append(_block(c, c_out, 2))
            c = c_out
        self.body = nn.Sequential(*layers)
        w = SIDE_WIDTH
        self.side = nn.Sequential(nn.Linear(n_side, w), nn.ReLU(inplace=True), nn.Linear(w, w),
                                  nn.ReLU(inplace=True))  # fmt: skip
        self.head = nn.Sequential(nn.Linear(2 * c + STEM + w, width), nn.ReLU(inplace=True),
                                  nn.Linear(width, 2 + N_FLAGS))  # fmt: skip

    def forward(self, image: torch.Tensor, side: torch.Tensor) -> dict[str, torch.Tensor]:
        stem = self.stem(image)
        x = self.body(stem)
        pooled = torch.cat([x.mean((2, 3)), x.amax((2, 3)), stem.amax((2, 3)),
                            self.side(side)], dim=1)  # fmt: skip
        out = self.head(pooled)
        return {
            "score": 100.0 * torch.sigmoid(out[:, 0]),
            "seeing": nn.functional.softplus(out[:, 1]) + 0.05,
            "logits": out[:, 2:],
        }


def loss_terms(pred: dict[str, torch.Tensor], score: torch.Tensor, seeing: torch.Tensor,
               flags: torch.Tensor) -> dict[str, torch.Tensor]:  # fmt: skip
    """Per-head losses: flag BCE (mean over the 7), Huber on score/10 and seeing/0.1″."""
    bce = nn.functional.binary_cross_entropy_with_logits(pred["logits"], flags.float())
    s = nn.functional.smooth_l1_loss(pred["score"] / 10.0, score / 10.0)
    f = nn.functional.smooth_l1_loss(pred["seeing"] / 0.1, seeing / 0.1)
    return {"flags": bce, "score": s, "seeing": f, "total": bce + 0.5 * s + 0.5 * f}
