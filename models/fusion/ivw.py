"""Inverse-variance weighted coadd: the classic stack, and the DOMAIN notes' baseline.

Each frame is put in the coadd's flux unit (``data / F_j``, noise ``σ_j / F_j``) and
averaged with weights ``w_j = F_j² / σ_j²``, the inverse of its sky variance in that unit:
the minimum-variance estimate of each *pixel*. Its PSF is the weighted mean of the inputs'
PSFs, ``Σ w_j P_j / Σ w_j``, so a frame of bad seeing adds its sky noise at full weight
but its light spread thin: for point sources it does worse than the proper coadd
whenever the seeing differs (Zackay & Ofek 2017, §3.1). Weights are per frame, from the
background noise, not per pixel: per-pixel variances would let each star weight itself
down by its own shot noise and change the PSF and flux scale from star to star.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.fusion.combine import MASK_SPREAD, check_frames, combine
from models.fusion.frame import AlignedFrame
from models.fusion.result import Coadd


def inverse_variance_weights(frames: Sequence[AlignedFrame]) -> np.ndarray:
    """``F_j² / σ_j²`` per frame: the inverse sky variance in the coadd's flux unit."""
    return np.array([f.flux_scale_e**2 / f.sigma_e**2 for f in frames])


def inverse_variance_coadd(
    frames: Sequence[AlignedFrame], *, mask_spread: float = MASK_SPREAD
) -> Coadd:
    """The inverse-variance weighted mean of ``frames`` in the coadd's flux unit."""
    frames = check_frames(frames)
    weights = inverse_variance_weights(frames)

    def kernels_for(subset: tuple[int, ...]) -> list[np.ndarray]:
        total = weights[list(subset)].sum()
        return [np.array([[weights[j] / total / frames[j].flux_scale_e]]) for j in subset]

    return combine("ivw", frames, kernels_for, mask_spread=mask_spread, weights=weights)
