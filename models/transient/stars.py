"""Sources of a calibrated image with SEP: background, detection, windowed centroids.

Why windowed centroids (``sep.winpos``, SExtractor's ``XWIN``): the isophotal barycentre
of a detection moves with the noise in its outer pixels; a Gaussian-weighted centroid
iterated on the star is ~2× more precise at the signal-to-noise of registration stars,
and registration to a fraction of a pixel is made of these centroids.

Columns of :func:`detect_sources`: ``x_pix``, ``y_pix`` (0-based, numpy convention, pixel
centres at integers), ``flux_e`` and ``flux_err_e`` (SEP's isophotal flux), ``snr``,
``flux_radius_pix`` (half-light radius), ``peak_e``, ``sep_flag``, ``a_pix``, ``b_pix``,
``nearest_pix`` (distance to the nearest other detection), ``clean`` (no SEP flag and
no masked pixel within 3 half-light radii).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import sep
from scipy import ndimage
from scipy.spatial import cKDTree

from models.transient.image import CalibratedImage

BACKGROUND_BOX_PX = 64
"""Mesh of SEP's background: large against stars (a few pixels), small against gradients."""
SEP_PIXSTACK = 3_000_000
"""SEP's active-pixel buffer: a crowded 4k frame needs more than its default 300 000."""


def background(image: CalibratedImage, box_px: int = BACKGROUND_BOX_PX) -> np.ndarray:
    """SEP's spatially varying sky (e) of ``image``, sources and masked pixels excluded."""
    data = np.ascontiguousarray(image.data_e, dtype=np.float64)
    back = sep.Background(data, mask=np.ascontiguousarray(image.mask), bw=box_px, bh=box_px)
    return np.asarray(back.back(), dtype=np.float64)


def detect_sources(
    image: CalibratedImage,
    *,
    threshold_sigma: float = 5.0,
    min_snr: float = 10.0,
    back_e: np.ndarray | None = None,
    minarea: int = 5,
) -> pd.DataFrame:
    """Sources of ``image`` above ``threshold_sigma`` per pixel, SNR ≥ ``min_snr``."""
    sep.set_extract_pixstack(SEP_PIXSTACK)
    back_e = background(image) if back_e is None else back_e
    data = np.ascontiguousarray(image.data_e - back_e, dtype=np.float64)
    err = np.ascontiguousarray(np.sqrt(np.clip(image.variance_e2, 1e-6, None)))
    mask = np.ascontiguousarray(image.mask)
    objects = sep.extract(data, threshold_sigma, err=err, mask=mask, minarea=minarea)
    table = pd.DataFrame(
        {name: objects[name] for name in ("x", "y", "flux", "peak", "a", "b", "flag", "npix")}
    )
    if table.empty:
        return _empty()
    table["flux_err"] = np.sqrt(
        np.clip(table["flux"], 0.0, None) + table["npix"] * np.median(err) ** 2
    )
    table = table[table["flux"] > min_snr * table["flux_err"]].reset_index(drop=True)
    if table.empty:
        return _empty()
    x, y = table["x"].to_numpy(float).copy(), table["y"].to_numpy(float).copy()
    radius, _ = sep.flux_radius(
        data,
        x,
        y,
        6.0 * table["a"].to_numpy(float),
        0.5,
        normflux=table["flux"].to_numpy(float).copy(),
        subpix=5,
    )
    radius = np.clip(np.nan_to_num(radius, nan=1.0), 0.5, 50.0)
    xw, yw, wflag = sep.winpos(data, x, y, 2.0 / 2.35 * radius, mask=mask)
    ok = (wflag == 0) & (np.hypot(xw - x, yw - y) < 2.0)
    out = pd.DataFrame(
        {
            "x_pix": np.where(ok, xw, x),
            "y_pix": np.where(ok, yw, y),
            "flux_e": table["flux"].to_numpy(),
            "flux_err_e": table["flux_err"].to_numpy(),
            "flux_radius_pix": radius,
            "peak_e": table["peak"].to_numpy(),
            "sep_flag": table["flag"].to_numpy(int),
            "a_pix": table["a"].to_numpy(),
            "b_pix": table["b"].to_numpy(),
        }
    )
    out["snr"] = out["flux_e"] / out["flux_err_e"]
    out["nearest_pix"] = _nearest(out["x_pix"].to_numpy(), out["y_pix"].to_numpy())
    out["clean"] = (out["sep_flag"] == 0) & ~_near_mask(mask, out, 3.0 * radius)
    return out.sort_values("flux_e", ascending=False, kind="stable").reset_index(drop=True)


def _nearest(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if len(x) < 2:
        return np.full(len(x), np.inf)
    dist, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)
    return dist[:, 1]


def _near_mask(mask: np.ndarray, table: pd.DataFrame, radius_pix: np.ndarray) -> np.ndarray:
    """True where a masked pixel lies within ``radius_pix`` of the source."""
    if not mask.any():
        return np.zeros(len(table), dtype=bool)
    distance = ndimage.distance_transform_edt(~mask)
    iy = np.clip(np.rint(table["y_pix"]).astype(int), 0, mask.shape[0] - 1)
    ix = np.clip(np.rint(table["x_pix"]).astype(int), 0, mask.shape[1] - 1)
    return distance[iy, ix] <= radius_pix


def _empty() -> pd.DataFrame:
    columns = (
        "x_pix",
        "y_pix",
        "flux_e",
        "flux_err_e",
        "flux_radius_pix",
        "peak_e",
        "sep_flag",
        "a_pix",
        "b_pix",
        "snr",
        "nearest_pix",
    )
    # "clean" must be bool: a float column used as a row mask (sources[sources["clean"]])
    # is read by pandas as a list of column labels and drops every column.
    return pd.DataFrame({**{c: pd.Series(dtype=float) for c in columns},
                         "clean": pd.Series(dtype=bool)})  # fmt: skip
