"""What a coadd needs of each input: pixels on the common grid and what goes with them.

Why a type of our own and not the transient package's image: a coadd needs less (no WCS,
the frames are on one grid already) and more (each frame's PSF stamp and its background
noise, which proper coaddition weights by). Converting from a resampled
``CalibratedImage`` is a one-liner: ``AlignedFrame(img.data_e, img.variance_e2, img.mask,
psf.stamp, flux_scale_from_zero_point(img.magzero_e, img.exptime_s))``.

Units. ``data_e``: electrons per pixel, flat-fielded; the background is subtracted here
(``background_e``, a scalar or a map; estimating it is upstream's job). ``variance_e2``:
the expected variance of each pixel (sky, source and dark shot noise, read noise).
``flux_scale_e``: electrons this frame records from a source of one unit of the coadd's
flux (Zackay & Ofek's F_j): it carries exposure time, transparency, airmass and throughput,
so frames of different zero points enter in one unit. ``background_sigma_e``: the noise of
an empty-sky pixel; the weights use it, not the per-pixel variance, so a star does not
weight itself down by its own shot noise (that would make the PSF and the flux scale of the
coadd depend on the star's brightness). Default: the median of ``variance_e2``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class AlignedFrame:
    """One frame on the coadd's grid: pixels (e), variance (e²), mask (True = bad), PSF."""

    data_e: np.ndarray
    variance_e2: np.ndarray
    mask: np.ndarray
    psf: np.ndarray  # odd square stamp centred on its middle pixel, sums to 1
    flux_scale_e: float  # electrons of a source of unit coadd flux (Zackay & Ofek's F_j)
    background_e: float | np.ndarray = 0.0
    background_sigma_e: float | None = None

    def __post_init__(self) -> None:
        shape = np.shape(self.data_e)
        if np.shape(self.variance_e2) != shape or np.shape(self.mask) != shape:
            raise ValueError(
                f"data {shape}, variance {np.shape(self.variance_e2)} and mask "
                f"{np.shape(self.mask)} must have one shape: resample them together"
            )
        ny, nx = np.shape(self.psf)
        if ny != nx or ny % 2 == 0:
            raise ValueError(f"PSF stamp is {ny}x{nx}; pass an odd square stamp (pad it)")
        if not (self.flux_scale_e > 0 and math.isfinite(self.flux_scale_e)):
            raise ValueError(f"flux_scale_e = {self.flux_scale_e}; it must be finite and > 0")

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(np.shape(self.data_e))

    @cached_property
    def valid(self) -> np.ndarray:
        """Pixels that may enter: unmasked, with finite data and a finite variance ≥ 0."""
        with np.errstate(invalid="ignore"):
            ok = np.isfinite(self.data_e) & np.isfinite(self.variance_e2)
            ok &= np.asarray(self.variance_e2) >= 0
        return ok & ~np.asarray(self.mask, dtype=bool)

    @cached_property
    def sigma_e(self) -> float:
        """Background noise per pixel (e): given, or the median of the valid variance."""
        if self.background_sigma_e is not None:
            return float(self.background_sigma_e)
        good = self.valid
        if not good.any():
            return 1.0  # no valid pixel: the frame carries no weight anywhere anyway
        return math.sqrt(float(np.median(np.asarray(self.variance_e2)[good])))


def flux_scale_from_zero_point(
    magzero_e: float, exptime_s: float, magzero_out: float = 25.0
) -> float:
    """Electrons per unit coadd flux of a frame with zero point ``magzero_e`` (1 e-/s).

    The coadd's unit is the flux of a source of AB magnitude ``magzero_out``, so a source
    of magnitude m has ``10**(-0.4 (m - magzero_out))`` units in the coadd and its
    5σ depth is ``magzero_out - 2.5 log10(5 σ_flux)``.
    """
    return float(exptime_s * 10.0 ** (-0.4 * (magzero_out - magzero_e)))
