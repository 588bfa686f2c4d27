"""Each image's PSF measured from its own stars: a stacked, normalised star stamp.

Why empirical and not a fitted Gaussian: the twin's PSF is Kolmogorov seeing ⊗ Airy ⊗
defocus ⊗ tracking (:func:`twin.imaging.psf.psf_for`), whose wings a Gaussian misses by
several percent of the flux; ZOGY's S is a matched filter, and a PSF with the wrong
wings leaves a residual at every bright star and biases the flux of a transient.
(``properimage``'s default, ``SingleImageGaussPSF``, fits a Gaussian; the comparison in
the tests and the benchmark shows what that costs.)

How (:func:`measure_psf`): stars that are clean (no SEP flag, no masked pixel near),
isolated, point-like (half-light radius within 15 % of the stellar locus: galaxies are
wider) and bright (SNR ≥ 30) are cut out, shifted by their sub-pixel centroid onto the
stamp's central pixel (cubic spline), each normalised to unit flux, and combined by a
per-pixel median (a neighbour or a cosmic ray in one stamp does not enter). Outside
``radius_px`` the stamp is zero, negative noise in the wings is clipped, and the result
sums to 1. The radius is four FWHM (≥ 98 % of a Kolmogorov profile's light), 6..24 px.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import ndimage

MIN_STARS = 3
RADIUS_PER_FWHM = 4.0
RADIUS_RANGE_PX = (6, 24)


@dataclass(frozen=True)
class Psf:
    """A PSF stamp, odd-sized, centred on its central pixel, summing to 1."""

    stamp: np.ndarray
    fwhm_pix: float
    n_stars: int

    @property
    def radius_px(self) -> int:
        return self.stamp.shape[0] // 2


def gaussian_psf(fwhm_pix: float, radius_px: int | None = None) -> Psf:
    """A circular Gaussian PSF (integrated over pixels): for noise-only tests and fallbacks."""
    from scipy.special import erf

    radius_px = radius_px or _radius_for(fwhm_pix)
    sigma = fwhm_pix / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    edges = np.arange(-radius_px - 0.5, radius_px + 1.0)
    one_d = np.diff(erf(edges / (math.sqrt(2.0) * sigma)))
    stamp = np.outer(one_d, one_d)
    return Psf(stamp / stamp.sum(), float(fwhm_pix), 0)


def psf_stars(
    sources: pd.DataFrame, shape: tuple[int, int], radius_px: int, max_stars: int = 60
) -> pd.DataFrame:
    """The sources fit to build a PSF from (module docstring), brightest first."""
    ny, nx = shape
    border = radius_px + 3
    cand = sources[
        sources["clean"].astype(bool)
        & (sources["snr"] >= 30.0)
        & (sources["nearest_pix"] > radius_px + 2)
        & sources["x_pix"].between(border, nx - 1 - border)
        & sources["y_pix"].between(border, ny - 1 - border)
    ]
    if cand.empty:
        return cand
    locus = float(np.median(cand["flux_radius_pix"].head(20)))
    point = (cand["flux_radius_pix"] - locus).abs() <= 0.15 * locus
    return cand[point].head(max_stars)


def measure_psf(
    data_e: np.ndarray,
    sources: pd.DataFrame,
    *,
    mask: np.ndarray | None = None,
    radius_px: int | None = None,
    max_stars: int = 60,
) -> Psf:
    """The PSF of the background-subtracted ``data_e`` from its ``sources`` (see module)."""
    if radius_px is None:
        clean = sources[sources["clean"].astype(bool)].head(20)
        fwhm_guess = 2.0 * float(np.median(clean["flux_radius_pix"])) if len(clean) else 3.0
        radius_px = _radius_for(fwhm_guess)
    stars = psf_stars(sources, data_e.shape, radius_px, max_stars)
    if len(stars) < MIN_STARS:
        raise ValueError(
            f"{len(stars)} stars fit for a PSF (need {MIN_STARS}): the frame is "
            "too shallow, too crowded or too small; pass a gaussian_psf"
        )
    big = radius_px + 2
    stamps = []
    for x, y in zip(stars["x_pix"].to_numpy(), stars["y_pix"].to_numpy(), strict=True):
        ix, iy = round(x), round(y)
        cut = data_e[iy - big : iy + big + 1, ix - big : ix + big + 1]
        if mask is not None and mask[iy - big : iy + big + 1, ix - big : ix + big + 1].any():
            continue
        centred = ndimage.shift(cut, (iy - y, ix - x), order=3, mode="nearest")[2:-2, 2:-2]
        total = centred.sum()
        if total > 0:
            stamps.append(centred / total)
    if len(stamps) < MIN_STARS:
        raise ValueError(f"{len(stamps)} unmasked PSF stars (need {MIN_STARS})")
    stamp = np.median(np.stack(stamps), axis=0)
    yy, xx = np.mgrid[-radius_px : radius_px + 1, -radius_px : radius_px + 1]
    stamp = np.where(np.hypot(xx, yy) <= radius_px, np.clip(stamp, 0.0, None), 0.0)
    stamp /= stamp.sum()
    return Psf(stamp, _fwhm_pix(stamp), len(stamps))


def _radius_for(fwhm_pix: float) -> int:
    lo, hi = RADIUS_RANGE_PX
    return int(min(max(math.ceil(RADIUS_PER_FWHM * fwhm_pix), lo), hi))


def _fwhm_pix(stamp: np.ndarray) -> float:
    """FWHM from the half-maximum area of the stamp upsampled 8× (cubic)."""
    fine = ndimage.zoom(stamp, 8, order=3)
    above = np.count_nonzero(fine > 0.5 * fine.max())
    return 2.0 * math.sqrt(above / math.pi) / 8.0


HALO_SIGMA = 0.2
"""Per-pixel wing, in units of the sky noise, inside which a star's halo is flagged: the
matched filter sums ~25 pixels (4π σ² of a 3-pixel FWHM), so 0.2σ per pixel is ~1σ in S,
and a PSF mismatch of tens of percent in the wings makes a 5σ residual there."""
KOLMOGOROV_WING_SLOPE = 11.0 / 3.0
"""Far wings of Kolmogorov seeing fall as r^(-11/3), the slope of the phase power spectrum
(Roddier 1981, Progress in Optics 19, 281)."""


def halo_mask(
    sources: pd.DataFrame,
    psf: Psf,
    sigma_e: float,
    shape: tuple[int, int],
    threshold_sigma: float = HALO_SIGMA,
) -> np.ndarray:
    """Pixels where a star's PSF wing (``sources``: ``x_pix``, ``y_pix``, ``flux_e``; the
    chain passes the catalogue stars), extrapolated beyond the stamp as
    r^(-11/3), exceeds ``threshold_sigma`` × the sky noise: bright-star halos, where the
    PSF stamps (cut at :attr:`Psf.radius_px`) cannot model a difference of wings.

    For candidates' flags, not for masking: a transient in a halo is still a transient.
    """
    r_stamp = psf.radius_px
    yy, xx = np.mgrid[-r_stamp : r_stamp + 1, -r_stamp : r_stamp + 1]
    ring = (np.hypot(xx, yy) > r_stamp - 1.5) & (np.hypot(xx, yy) <= r_stamp)
    edge = max(float(psf.stamp[ring].mean()), 1e-12)
    flux = np.clip(sources["flux_e"].to_numpy(float), 0.0, None)
    radius = r_stamp * (flux * edge / (threshold_sigma * sigma_e)) ** (1.0 / KOLMOGOROV_WING_SLOPE)
    halo = np.zeros(shape, dtype=bool)
    for x, y, r in zip(
        sources["x_pix"].to_numpy(), sources["y_pix"].to_numpy(), radius, strict=True
    ):
        if r <= r_stamp:
            continue
        r = min(r, 256.0)
        y0, y1 = max(int(y - r), 0), min(int(y + r) + 1, shape[0])
        x0, x1 = max(int(x - r), 0), min(int(x + r) + 1, shape[1])
        if y1 <= y0 or x1 <= x0:  # a catalogue star off the frame with its halo
            continue
        gy, gx = np.ogrid[y0:y1, x0:x1]
        halo[y0:y1, x0:x1] |= (gx - x) ** 2 + (gy - y) ** 2 <= r * r
    return halo
