"""Synthetic images with exactly known PSFs and noise, for the ZOGY and resampling tests."""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erf


def gaussian_sources(shape, x, y, flux_e, fwhm_pix: float, radius_px: int = 15) -> np.ndarray:
    """Pixel-integrated circular Gaussians of ``flux_e`` at 0-based ``(x, y)``."""
    sigma = fwhm_pix / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    image = np.zeros(shape)
    for xi, yi, fi in zip(np.atleast_1d(x), np.atleast_1d(y), np.atleast_1d(flux_e), strict=True):
        ix, iy = round(xi), round(yi)
        ex = np.arange(ix - radius_px - 0.5, ix + radius_px + 1.0)
        ey = np.arange(iy - radius_px - 0.5, iy + radius_px + 1.0)
        px = 0.5 * np.diff(erf((ex - xi) / (math.sqrt(2.0) * sigma)))
        py = 0.5 * np.diff(erf((ey - yi) / (math.sqrt(2.0) * sigma)))
        image[iy - radius_px : iy + radius_px + 1, ix - radius_px : ix + radius_px + 1] += (
            fi * np.outer(py, px)
        )
    return image


def star_field(rng: np.random.Generator, shape, n: int, margin: int = 24):
    """``n`` stars' positions and fluxes (e), log-uniform 10³..10⁵."""
    ny, nx = shape
    x = rng.uniform(margin, nx - margin, n)
    y = rng.uniform(margin, ny - margin, n)
    return x, y, 10.0 ** rng.uniform(3.0, 5.0, n)


def observe(rng: np.random.Generator, expected_e: np.ndarray, sky_e: float, read_e: float = 5.0):
    """Poisson on sky + sources, Gaussian read noise: ``(sky-subtracted data, variance)``."""
    counts = rng.poisson(expected_e + sky_e).astype(float) + rng.normal(
        0.0, read_e, expected_e.shape
    )
    return counts - sky_e, np.clip(counts, 0.0, None) + read_e**2
