"""Candidates in a difference image: connected regions of ``|Scorr| ≥ threshold``.

Why connected regions and not every local maximum: Scorr is the difference image
filtered with its own PSF, so it is smooth on the PSF's scale and one source makes one
hill; a region above threshold is one candidate, at its extreme pixel (SExtractor-like,
as DOMAIN.md's "5σ and connected components"). Both signs are kept: a positive peak is
a source that brightened (or appeared), a negative one a source that faded.

Columns of :func:`find_candidates`: ``x_pix``, ``y_pix`` (0-based, sub-pixel: the vertex
of a parabola through the peak and its neighbours on each axis), ``scorr`` (signed peak
value), ``flux_e``, ``flux_err_e`` (ZOGY's point-source flux at the peak, in the new
image's electrons), ``n_pix`` (region size), ``sign`` (+1 brighter, −1 fainter) and, when
a WCS is given, ``ra_deg``, ``dec_deg``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.wcs import WCS
from scipy import ndimage

from models.transient.zogy import ZogyResult

THRESHOLD_SIGMA = 5.0


def find_candidates(
    result: ZogyResult,
    *,
    threshold_sigma: float = THRESHOLD_SIGMA,
    wcs: WCS | None = None,
    both_signs: bool = True,
) -> pd.DataFrame:
    """One row per connected region of ``|Scorr| ≥ threshold_sigma`` outside the mask."""
    scorr = np.where(result.mask, 0.0, result.scorr)
    rows = [_regions(scorr, result, threshold_sigma, +1)]
    if both_signs:
        rows.append(_regions(scorr, result, threshold_sigma, -1))
    table = pd.concat(rows, ignore_index=True)
    table = table.sort_values("scorr", key=np.abs, ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    if wcs is not None and len(table):
        ra, dec = wcs.all_pix2world(table["x_pix"].to_numpy(), table["y_pix"].to_numpy(), 0)
        table["ra_deg"], table["dec_deg"] = ra, dec
    return table


def count_peaks(
    scorr: np.ndarray, mask: np.ndarray, threshold_sigma: float = THRESHOLD_SIGMA
) -> int:
    """Regions of ``|Scorr| ≥ threshold_sigma`` outside ``mask`` (false alarms on noise)."""
    values = np.where(mask, 0.0, np.abs(scorr))
    return int(ndimage.label(values >= threshold_sigma)[1])


def _regions(scorr: np.ndarray, result: ZogyResult, threshold: float, sign: int) -> pd.DataFrame:
    signed = sign * scorr
    labels, n = ndimage.label(signed >= threshold)
    if n == 0:
        return pd.DataFrame(
            {
                c: pd.Series(dtype=float)
                for c in ("x_pix", "y_pix", "scorr", "flux_e", "flux_err_e", "n_pix", "sign")
            }
        )
    # Peak of each region from its pixels only (ndimage.maximum_position sorts the frame).
    flat = np.flatnonzero(labels)
    region = labels.ravel()[flat]
    order = np.lexsort((-signed.ravel()[flat], region))
    first = np.flatnonzero(np.r_[True, np.diff(region[order]) != 0])
    iy, ix = np.unravel_index(flat[order][first], signed.shape)
    n_pix = np.diff(np.r_[first, len(order)])
    dx = _vertex(signed, iy, ix, axis=1)
    dy = _vertex(signed, iy, ix, axis=0)
    return pd.DataFrame(
        {
            "x_pix": ix + dx,
            "y_pix": iy + dy,
            "scorr": scorr[iy, ix],
            "flux_e": result.flux_e[iy, ix],
            "flux_err_e": result.flux_err_e[iy, ix],
            "n_pix": n_pix.astype(int),
            "sign": sign,
        }
    )


def _vertex(values: np.ndarray, iy: np.ndarray, ix: np.ndarray, axis: int) -> np.ndarray:
    """Sub-pixel offset of a parabola's vertex through the peak and its two neighbours."""
    ny, nx = values.shape
    sy, sx = (0, 1) if axis == 1 else (1, 0)
    lo_y, lo_x = np.clip(iy - sy, 0, ny - 1), np.clip(ix - sx, 0, nx - 1)
    hi_y, hi_x = np.clip(iy + sy, 0, ny - 1), np.clip(ix + sx, 0, nx - 1)
    a, b, c = values[lo_y, lo_x], values[iy, ix], values[hi_y, hi_x]
    curvature = a - 2.0 * b + c
    with np.errstate(divide="ignore", invalid="ignore"):
        offset = np.where(curvature < 0, 0.5 * (a - c) / curvature, 0.0)
    return np.clip(offset, -0.5, 0.5)
