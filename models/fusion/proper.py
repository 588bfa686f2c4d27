"""Proper coaddition (Zackay & Ofek 2017, ApJ 836, 187): the optimal linear point-source coadd.

For frames ``M_j = F_j P_j ⊗ T + noise`` with white sky noise σ_j, their eqs. 7–10:

    R̂   = Σ_j (F_j / σ_j²) P̂_j* M̂_j / √(Σ_j F_j² |P̂_j|² / σ_j²)
    P̂_R = √(Σ_j F_j² |P̂_j|² / σ_j²) / F_R,      F_R = √(Σ_j F_j² / σ_j²)

R is a sufficient statistic for the true sky T: nothing any other linear coadd keeps is
lost, its sky noise is white with unit variance, and a point source's SNR² in it is the
sum of the inputs' ``f² F_j² Σ P_j² / σ_j²`` (their §3; the inverse-variance coadd falls
short of it when the seeing differs, the PSF-matched one further). The denominator
never divides by ~0: ``|P̂_j| / √(Σ_i |P̂_i|²) ≤ 1``, so no regularisation is needed.

Here the image is ``R / F_R`` (flux per pixel in the coadd's unit, PSF ``P_R`` of unit
sum), ``flux_norm`` is ``F_R``, and R's filter is built on a stamp grid (twice the PSF
stamps) and applied by convolution, which is the Fourier formula for kernels that fit
the stamp; near masked pixels the frames left get their own normalisation
(:mod:`models.fusion.combine`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from models.fusion.combine import MASK_SPREAD, check_frames, combine, trimmed, unit_psfs
from models.fusion.frame import AlignedFrame
from models.fusion.result import Coadd
from models.fusion.stamps import from_otf, otf


def proper_kernels(
    psfs: Sequence[np.ndarray], flux_scales_e: Sequence[float], sigmas_e: Sequence[float]
) -> tuple[list[np.ndarray], float]:
    """Each frame's filter (electrons → ``R / F_R``) and ``F_R``, for one set of frames."""
    size = 2 * max(p.shape[0] for p in psfs) - 1
    otfs = [otf(p, size) for p in psfs]
    denominator2 = sum(
        f**2 * np.abs(p) ** 2 / s**2 for p, f, s in zip(otfs, flux_scales_e, sigmas_e, strict=True)
    )
    denominator = np.sqrt(denominator2 + 1e-300)
    flux_norm = math.sqrt(sum(f**2 / s**2 for f, s in zip(flux_scales_e, sigmas_e, strict=True)))
    kernels = [
        trimmed(from_otf(f / s**2 * np.conj(p) / denominator) / flux_norm)
        for p, f, s in zip(otfs, flux_scales_e, sigmas_e, strict=True)
    ]
    return kernels, flux_norm


def proper_coadd(frames: Sequence[AlignedFrame], *, mask_spread: float = MASK_SPREAD) -> Coadd:
    """Zackay & Ofek's proper coadd of ``frames``, as ``R / F_R`` in the coadd's flux unit."""
    frames = check_frames(frames)
    psfs = unit_psfs(frames)
    scales = [f.flux_scale_e for f in frames]
    sigmas = [f.sigma_e for f in frames]

    def kernels_for(subset: tuple[int, ...]) -> list[np.ndarray]:
        members = list(subset)
        return proper_kernels(
            [psfs[j] for j in members], [scales[j] for j in members], [sigmas[j] for j in members]
        )[0]

    _, flux_norm = proper_kernels(psfs, scales, sigmas)
    return combine("proper", frames, kernels_for, mask_spread=mask_spread, flux_norm=flux_norm)
