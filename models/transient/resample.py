"""A calibrated image onto another pixel grid, variance and mask with it.

Which way: the *reference* goes onto the new frame's grid. The reference is deep, so the
noise correlation resampling adds to it is a small part of the difference image's noise,
and the new frame's pixels — with their white noise, cosmic rays and hot pixels — stay as
the detector wrote them, which the candidate cut-outs need.

How: bicubic spline interpolation (it keeps a PSF's core; bilinear would widen it by a
quarter pixel in quadrature) of the pixels, the variance and the mask, at the input
pixel of every output pixel. Two ways to get that pixel-to-pixel map:

- ``method="grid"`` (the default): the exact map (astropy's ``pixel_to_pixel``, as
  ``reproject`` computes it) on the nodes of a grid every :data:`GRID_STEP_PX` pixels,
  then a bicubic spline between them. Why: two TAN projections of a field a few tenths
  of a degree across map onto each other almost affinely (the curvature is ~0.02 px over
  a 2048² frame), so 4 000 exact points describe the map to ~1e-7 px and the 4 million
  WCS evaluations — half the time of the chain's slowest step — are not needed.
- ``method="reproject"``: ``reproject_interp`` (the maintained astropy-affiliated
  library) evaluating the WCS at every pixel: the reference the grid is checked against
  (``tests/models/transient/test_transient_resample.py``) and timed beside
  (``benchmarks/transients.py``).

Both interpolate with ``scipy.ndimage.map_coordinates`` under reproject's edge rules: a
position in the outer half of a border pixel takes the border pixel's value, one beyond
it is outside (masked). The variance is interpolated rather than propagated with squared
weights on purpose: interpolation weights sum to 1, so the noise power at the low
spatial frequencies a PSF-matched filter integrates over is the input's (what ZOGY's σ
stands for); the per-pixel variance of the result is lower, by up to ~40 % at half-pixel
offsets, but that lost power lies at frequencies the filter suppresses. Masked input
pixels are filled with the image's median before interpolation (so a saturated core or a
bad column does not ring into its neighbours) and every output pixel any masked input
pixel contributes to, or outside the input, is masked.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel
from reproject import reproject_interp
from scipy.interpolate import RectBivariateSpline
from scipy.ndimage import map_coordinates

from models.transient.image import CalibratedImage

MASK_SPREAD = 1e-3
"""An output pixel is masked when masked inputs carry more than this share of its weight."""

GRID_STEP_PX = 32
"""Spacing of the exact map's nodes for ``method="grid"`` (module docstring)."""

_ORDERS = {"bilinear": 1, "biquadratic": 2, "bicubic": 3}


def resample(
    image: CalibratedImage,
    wcs_out: WCS,
    shape_out: tuple[int, int],
    *,
    order: str = "bicubic",
    method: Literal["grid", "reproject"] = "grid",
) -> CalibratedImage:
    """``image`` on the grid (``wcs_out``, ``shape_out``): see the module docstring."""
    if order not in _ORDERS:
        raise ValueError(f"order {order!r}; allowed: {', '.join(_ORDERS)}")
    good = ~image.mask
    fill = float(np.median(image.data_e[good])) if good.any() else 0.0
    fill_var = float(np.median(image.variance_e2[good])) if good.any() else 1.0
    planes = [np.where(good, image.data_e, fill), np.where(good, image.variance_e2, fill_var)]
    if not good.all():  # a stacked template often has no masked pixel: skip the plane
        planes.append(image.mask.astype(np.float64))
    if method == "reproject":
        # One call for the planes: the pixel-to-pixel map is made once.
        values, footprint = reproject_interp(
            (np.stack(planes), image.wcs), wcs_out, shape_out=shape_out, order=order,
            roundtrip_coords=False,
        )  # fmt: skip
        outside = ~(footprint[0] > 0) | ~np.isfinite(values).all(axis=0)
    elif method == "grid":
        y_in, x_in = pixel_map(image.wcs, wcs_out, shape_out)
        values = np.stack([_interpolate(p, y_in, x_in, _ORDERS[order]) for p in planes])
        outside = ~np.isfinite(values).all(axis=0)
    else:
        raise ValueError(f"method {method!r}; allowed: grid, reproject")
    mask = outside.copy()
    if len(planes) == 3:
        mask |= ~(np.abs(np.nan_to_num(values[2], nan=1.0)) <= MASK_SPREAD)
    data = np.where(outside, fill, values[0])
    variance = np.where(outside, fill_var, np.clip(values[1], 0.0, None))
    return CalibratedImage(data, variance, mask, wcs_out, image.magzero_e, image.exptime_s)


def pixel_map(
    wcs_in: WCS, wcs_out: WCS, shape_out: tuple[int, int], step_px: int = GRID_STEP_PX
) -> tuple[np.ndarray, np.ndarray]:
    """``(y_in, x_in)``: the input pixel (0-based) under every output pixel, each of
    ``shape_out``, from the exact map on nodes every ``step_px`` and a bicubic spline."""
    ny, nx = shape_out
    yg, xg = _nodes(ny, step_px), _nodes(nx, step_px)
    xx, yy = np.meshgrid(xg, yg)
    x_in, y_in = pixel_to_pixel(wcs_out, wcs_in, xx.ravel(), yy.ravel())
    ky, kx = min(3, len(yg) - 1), min(3, len(xg) - 1)
    out = []
    for values in (y_in, x_in):
        spline = RectBivariateSpline(yg, xg, values.reshape(xx.shape), kx=ky, ky=kx, s=0)
        out.append(spline(np.arange(ny, dtype=float), np.arange(nx, dtype=float)))
    return out[0], out[1]


def _nodes(n: int, step_px: int) -> np.ndarray:
    """Node positions 0, step, 2 step, ... and always the last pixel n - 1."""
    nodes = np.arange(0, n, step_px, dtype=float)
    return nodes if nodes[-1] == n - 1 else np.append(nodes, float(n - 1))


def _interpolate(plane: np.ndarray, y_in: np.ndarray, x_in: np.ndarray, order: int) -> np.ndarray:
    """``plane`` at (y_in, x_in) with reproject's edge rules (module docstring); NaN outside."""
    ny, nx = plane.shape
    outside = (y_in < -0.5) | (y_in > ny - 0.5) | (x_in < -0.5) | (x_in > nx - 0.5)
    coords = np.stack([np.clip(y_in, 0.0, ny - 1.0), np.clip(x_in, 0.0, nx - 1.0)])
    values = map_coordinates(plane, coords, order=order, mode="constant", cval=np.nan)
    values[outside] = np.nan
    return values
