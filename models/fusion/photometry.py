"""Point-source flux, its noise and the 5σ depth, the same way on frames and coadds.

The flux estimator is the PSF fit at a known position, ``f̂ = Σ P I / Σ P²`` (the
matched filter, optimal on white sky noise: King 1983; the issue measures SNR at truth
positions). Its noise on a coadd is computed *exactly* from the coadd's kernels rather
than from the per-pixel variance, because the PSF-matched and the proper coadds correlate
neighbouring pixels: with ``a = P / ΣP²`` and ``image = Σ_j k_j ⊗ D_j``,
``var f̂ = Σ_j σ_j² ‖a ⋆ k_j‖²`` for white sky noise σ_j in each input (the
background-limited case, the one that sets the depth). On a single frame this is
``σ_j / (F_j √ΣP_j²)``; for the proper coadd its inverse square is Σ_j of those:
Zackay & Ofek's SNR² additivity, which the tests check.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from scipy import signal

from models.fusion.frame import AlignedFrame
from models.fusion.result import Coadd
from models.fusion.stamps import shifted


def psf_flux(
    image: np.ndarray,
    psf: np.ndarray,
    x_pix: float,
    y_pix: float,
    valid: np.ndarray | None = None,
) -> float:
    """PSF-fit flux of a point source at ``(x, y)`` (0-based, ``image[y, x]``).

    The PSF is moved to the source's sub-pixel position (Fourier shift) and fitted over
    the pixels inside the image and ``valid`` (e.g. ``~coadd.mask``); the sky is taken as
    already subtracted.
    """
    ix, iy = round(x_pix), round(y_pix)
    p = shifted(psf, x_pix - ix, y_pix - iy)
    h = p.shape[0] // 2
    ny, nx = image.shape
    y0, y1, x0, x1 = max(iy - h, 0), min(iy + h + 1, ny), max(ix - h, 0), min(ix + h + 1, nx)
    p = p[y0 - (iy - h) : y1 - (iy - h), x0 - (ix - h) : x1 - (ix - h)]
    if valid is not None:
        p = np.where(valid[y0:y1, x0:x1], p, 0.0)
    return float(np.sum(p * image[y0:y1, x0:x1]) / np.sum(p**2))


def frame_flux_sigma(frame: AlignedFrame) -> float:
    """Background-limited noise of a PSF-fit flux on one frame, in the coadd's flux unit."""
    p = np.asarray(frame.psf, float) / float(np.sum(frame.psf))
    return frame.sigma_e / (frame.flux_scale_e * math.sqrt(float(np.sum(p**2))))


def coadd_flux_sigma(coadd: Coadd, frames: Sequence[AlignedFrame]) -> float:
    """Exact background-limited noise of :func:`psf_flux` on ``coadd`` (all frames in)."""
    p = coadd.psf / coadd.psf.sum()
    a = (p / np.sum(p**2))[::-1, ::-1]
    total = 0.0
    for frame, kernel in zip(frames, coadd.kernels, strict=True):
        total += frame.sigma_e**2 * float(np.sum(signal.fftconvolve(kernel, a, mode="full") ** 2))
    return math.sqrt(total)


def matched_filter_sigma(noise: np.ndarray, psf: np.ndarray, valid: np.ndarray) -> float:
    """Measured noise of a PSF-fit flux: the std of ``noise`` filtered by the PSF fit.

    ``noise`` is a noise-only image (a coadd of noise realisations, or coadd minus its
    noiseless truth); pixels within a PSF of an invalid one are left out.
    """
    p = psf / psf.sum()
    a = (p / np.sum(p**2))[::-1, ::-1]
    response = signal.oaconvolve(np.where(valid, noise, 0.0), a, mode="same")
    h = psf.shape[0] // 2
    inner = np.zeros_like(valid)
    inner[h:-h, h:-h] = True
    clean = signal.oaconvolve((~valid).astype(float), np.ones_like(a), mode="same") < 0.5
    return float(np.std(response[inner & clean]))


def limiting_mag(flux_sigma: float, magzero_out: float = 25.0, nsigma: float = 5.0) -> float:
    """AB magnitude of a point source detected at ``nsigma`` (flux in the coadd's unit)."""
    return magzero_out - 2.5 * math.log10(nsigma * flux_sigma)
