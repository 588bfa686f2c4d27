"""PSF-matched coadd: every frame blurred to one PSF first, then inverse-variance averaged.

Why it exists: one PSF across the coadd is what difference imaging and galaxy shape or
colour measurements want, and the classic pipelines (SWarp after PSF homogenisation,
``hotpants`` references) build it this way. Its price is the seeing: the sharp frames are
degraded to the broadest one (the target, by noise-equivalent area ``1/ΣP²`` unless
``target_psf`` is given), so it is the worst of the three for point-source depth.

Matching kernel (Alard & Lupton 1998 solve for it; with known PSFs it is a Fourier
ratio): ``K̂_j = P̂_t P̂_j* / (|P̂_j|² + ε²)``, ε = ``regularisation`` (a Wiener floor: a
measured PSF's noisy high frequencies are not divided by ~0). After matching, frame j's
sky noise per pixel is ``σ_j √ΣK_j²``, and the weights are the inverse of that in the
coadd's flux unit, ``F_j² / (σ_j² ΣK_j²)``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from models.fusion.combine import MASK_SPREAD, check_frames, combine, trimmed, unit_psfs
from models.fusion.frame import AlignedFrame
from models.fusion.result import Coadd
from models.fusion.stamps import from_otf, noise_equivalent_area_pix, otf

REGULARISATION = 1e-3
"""Wiener floor ε of the matching kernel, relative to the PSF's transfer at k = 0 (1)."""


def matching_kernel(
    psf: np.ndarray, target: np.ndarray, size: int, regularisation: float = REGULARISATION
) -> np.ndarray:
    """The kernel K with ``K ⊗ psf ≈ target`` (regularised Fourier ratio, ``size``² grid)."""
    p = otf(psf, size)
    kernel = from_otf(otf(target, size) * np.conj(p) / (np.abs(p) ** 2 + regularisation**2))
    return trimmed(kernel)


def psf_matched_coadd(
    frames: Sequence[AlignedFrame],
    *,
    target_psf: np.ndarray | None = None,
    regularisation: float = REGULARISATION,
    mask_spread: float = MASK_SPREAD,
) -> Coadd:
    """Frames matched to ``target_psf`` (default: the broadest input PSF), then averaged."""
    frames = check_frames(frames)
    psfs = unit_psfs(frames)
    widest = int(np.argmax([noise_equivalent_area_pix(p) for p in psfs]))
    if target_psf is None:
        target = psfs[widest]
    else:
        target = np.asarray(target_psf, float) / float(np.sum(target_psf))
    size = 2 * max(max(p.shape[0] for p in psfs), target.shape[0]) - 1
    matching = [
        np.ones((1, 1))  # the target's own frame is left as it is
        if target_psf is None and j == widest
        else matching_kernel(p, target, size, regularisation)
        for j, p in enumerate(psfs)
    ]
    weights = np.array(
        [
            f.flux_scale_e**2 / (f.sigma_e**2 * float(np.sum(k**2)))
            for f, k in zip(frames, matching, strict=True)
        ]
    )

    def kernels_for(subset: tuple[int, ...]) -> list[np.ndarray]:
        total = weights[list(subset)].sum()
        return [weights[j] / total / frames[j].flux_scale_e * matching[j] for j in subset]

    return combine("psf-matched", frames, kernels_for, mask_spread=mask_spread, weights=weights)
