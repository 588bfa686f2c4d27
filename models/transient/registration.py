"""Astrometric refinement of a frame's WCS against the catalogue stars of its field.

Why: the header WCS is where the telescope *believed* it pointed; the sky lands offset by
the pointing error (several arcsec, i.e. tens of pixels), so a difference image built on
the header WCS subtracts each star from empty sky. The twin's catalogue stars play the
astrometric reference catalogue (Gaia's role): :func:`catalogue_stars` draws them around
the header's centre, never from the truth (``TRUERA``/``PNTERR*`` cards are not read).

Steps of :func:`refine_wcs`:

1. Project the catalogue with the header WCS; each (detection, catalogue star) pair within
   ``max_offset_arcsec`` votes for its offset in a 1-pixel 2-D histogram. The true offset
   collects a vote from every matched star, a wrong one from chance pairs only.
2. Match each detection to the nearest projected star within ``match_radius_pix`` of
   where the offset puts it.
3. Fit header-pixel = A · pixel + t by least squares (``model``: ``shift``, ``similarity``
   = rotation + scale + shift, or ``affine``), clip 3σ outliers, re-match, refit (3 rounds).
4. Write the fit into a TAN WCS: the same projection with CD ← CD·A and CRPIX moved, then
   re-centred on the frame's centre (the change of tangent point moves positions by
   ~offset × (field radius)², 10⁻⁵ arcsec here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from astropy.wcs import WCS
from scipy.spatial import cKDTree

from models.transient.image import CalibratedImage

MODELS = ("shift", "similarity", "affine")
MAX_VOTERS = 300
"""Brightest detections and catalogue stars that vote (N² pairs: 90 000 at most)."""


@dataclass(frozen=True)
class Registration:
    """A refined WCS and how well it fits: matched stars, residual rms, the offset found."""

    wcs: WCS
    n_matched: int
    rms_pix: float  # per-axis rms of the star residuals
    sigma_pix: float  # per-axis uncertainty of the solution at the frame centre
    offset_pix: tuple[float, float]  # (dx, dy): where the header put the stars minus where they are
    matches: pd.DataFrame  # x_pix, y_pix, x_cat_pix, y_cat_pix (header), source_id, mag
    catalogue: pd.DataFrame  # the catalogue stars it was solved against (all, not matched)


def catalogue_stars(
    wcs: WCS,
    shape: tuple[int, int],
    band: str,
    faint_mag: float,
    *,
    sky_seed: int = 0,
    margin_arcsec: float = 60.0,
    max_stars: int = 2000,
) -> pd.DataFrame:
    """Catalogue stars (``source_id``, ``ra_deg``, ``dec_deg``, ``mag``) around the frame
    as ``wcs`` places it, ``margin_arcsec`` wider (the pointing error), to ``faint_mag``."""
    from twin.imaging.catalog import field_sources

    ny, nx = shape
    ra0, dec0 = (float(v) for v in wcs.all_pix2world([[(nx - 1) / 2, (ny - 1) / 2]], 0)[0])
    scale_arcsec = 3600.0 * float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))))
    half = (0.5 * scale_arcsec * np.array([nx, ny]) + margin_arcsec) / 3600.0
    radius = 1.001 * math.hypot(*half)
    stars, _ = field_sources(
        ra0,
        dec0,
        radius,
        band,
        faint_mag,
        box_deg=(half[0], half[1]),
        sky_seed=sky_seed,
        max_stars=max_stars,
        max_galaxies=0,
    )
    return stars[["source_id", "ra_deg", "dec_deg", "mag"]].reset_index(drop=True)


def faint_mag_for(image: CalibratedImage, sources: pd.DataFrame, n: int = MAX_VOTERS) -> float:
    """Catalogue depth matching the ``n`` brightest detections (+0.5 mag for scatter)."""
    if sources.empty:
        return 18.0
    faintest_e = float(np.sort(sources["flux_e"].to_numpy())[::-1][:n][-1])
    return -2.5 * math.log10(max(faintest_e, 1.0) / image.exptime_s) + image.magzero_e + 0.5


def refine_wcs(
    wcs: WCS,
    sources: pd.DataFrame,
    catalogue: pd.DataFrame,
    *,
    model: str = "similarity",
    max_offset_arcsec: float = 30.0,
    match_radius_pix: float = 1.5,
    shape: tuple[int, int] | None = None,
) -> Registration:
    """The WCS that puts ``catalogue`` on ``sources`` (module docstring, steps 1-4).

    ``sources``: detections with ``x_pix``, ``y_pix`` (0-based), ``flux_e``, best clean
    and point-like; ``shape`` (ny, nx) sets the centre the result is re-centred on
    (default: the header's CRPIX).
    """
    if model not in MODELS:
        raise ValueError(f"registration model {model!r}; allowed: {MODELS}")
    det = sources.sort_values("flux_e", ascending=False).head(4 * MAX_VOTERS)
    xd, yd = det["x_pix"].to_numpy(float), det["y_pix"].to_numpy(float)
    cat = catalogue.sort_values("mag", kind="stable").head(4 * MAX_VOTERS)
    xc, yc = wcs.all_world2pix(cat["ra_deg"].to_numpy(float), cat["dec_deg"].to_numpy(float), 0)
    scale_arcsec = 3600.0 * float(np.sqrt(abs(np.linalg.det(wcs.pixel_scale_matrix))))
    if len(xd) < 3 or len(xc) < 3:
        raise ValueError(
            f"registration needs 3 stars or more; found {len(xd)} detections and "
            f"{len(xc)} catalogue stars: check the frame's depth and band"
        )
    offset = _vote(
        xd[:MAX_VOTERS],
        yd[:MAX_VOTERS],
        xc[:MAX_VOTERS],
        yc[:MAX_VOTERS],
        max_offset_arcsec / scale_arcsec,
    )
    transform = np.array([[1.0, 0.0, offset[0]], [0.0, 1.0, offset[1]]])  # det → header pix
    tree = cKDTree(np.column_stack([xc, yc]))
    radius = match_radius_pix
    for _ in range(3):
        pred = transform[:, :2] @ np.vstack([xd, yd]) + transform[:, 2:]
        dist, j = tree.query(pred.T, distance_upper_bound=radius)
        i = np.flatnonzero(np.isfinite(dist))
        i, j = _unique_pairs(i, j[i], dist[i])
        if len(i) < 3:
            raise ValueError(
                f"only {len(i)} stars matched within {radius:.1f} px after the "
                f"offset vote: is the pointing error above "
                f"max_offset_arcsec={max_offset_arcsec}?"
            )
        keep = np.ones(len(i), dtype=bool)
        for _clip in range(3):
            transform = _fit(xd[i[keep]], yd[i[keep]], xc[j[keep]], yc[j[keep]], model)
            resid = transform[:, :2] @ np.vstack([xd[i], yd[i]]) + transform[:, 2:]
            resid -= np.vstack([xc[j], yc[j]])
            rms = float(np.sqrt(np.mean(resid[:, keep] ** 2)))
            keep = np.hypot(*resid) < max(3.0 * rms * math.sqrt(2.0), 0.05)
        radius = max(min(radius, 6.0 * rms), 0.3)
    n = int(keep.sum())
    matches = pd.DataFrame(
        {
            "x_pix": xd[i[keep]],
            "y_pix": yd[i[keep]],
            "x_cat_pix": xc[j[keep]],
            "y_cat_pix": yc[j[keep]],
            "source_id": cat["source_id"].to_numpy()[j[keep]],
            "mag": cat["mag"].to_numpy()[j[keep]],
        }
    )
    n_params = {"shift": 2, "similarity": 4, "affine": 6}[model]
    sigma = rms * math.sqrt(n_params / 2.0 / max(n, 1))
    centre = None if shape is None else ((shape[1] + 1) / 2.0, (shape[0] + 1) / 2.0)
    return Registration(
        _refined_wcs(wcs, transform, centre),
        n,
        rms,
        sigma,
        (float(offset[0]), float(offset[1])),
        matches,
        catalogue,
    )


def _vote(xd, yd, xc, yc, max_offset_pix: float) -> np.ndarray:
    """(dx, dy) = header position - detected position most pairs agree on."""
    dx = (xc[None, :] - xd[:, None]).ravel()
    dy = (yc[None, :] - yd[:, None]).ravel()
    near = (np.abs(dx) <= max_offset_pix) & (np.abs(dy) <= max_offset_pix)
    dx, dy = dx[near], dy[near]
    edges = np.arange(-math.ceil(max_offset_pix) - 0.5, math.ceil(max_offset_pix) + 1.0, 1.0)
    counts, _, _ = np.histogram2d(dx, dy, bins=[edges, edges])
    # Sum 2×2 neighbours so an offset on a bin edge does not split its votes.
    pooled = counts[:-1, :-1] + counts[1:, :-1] + counts[:-1, 1:] + counts[1:, 1:]
    kx, ky = np.unravel_index(int(np.argmax(pooled)), pooled.shape)
    if pooled[kx, ky] < 3:
        raise ValueError(
            f"no offset within {max_offset_pix:.0f} px is shared by 3 stars: is the pointing "
            "error above max_offset_arcsec, or the catalogue of another field or band?"
        )
    guess = np.array([edges[kx + 1], edges[ky + 1]])
    close = np.hypot(dx - guess[0], dy - guess[1]) < 1.5
    return np.array([np.median(dx[close]), np.median(dy[close])])


def _unique_pairs(i: np.ndarray, j: np.ndarray, dist: np.ndarray):
    """One detection per catalogue star: the closest."""
    order = np.argsort(dist, kind="stable")
    _, first = np.unique(j[order], return_index=True)
    pick = order[first]
    return i[pick], j[pick]


def _fit(x, y, xc, yc, model: str) -> np.ndarray:
    """2×3 transform [A | t] with header pixel ≈ A (x, y) + t, least squares."""
    x0, y0 = float(np.mean(x)), float(np.mean(y))
    u, v = x - x0, y - y0
    if model == "shift":
        a = np.eye(2)
    elif model == "similarity":
        rows = np.concatenate([np.column_stack([u, -v]), np.column_stack([v, u])])
        target = np.concatenate([xc - np.mean(xc), yc - np.mean(yc)])
        (p, q), *_ = np.linalg.lstsq(rows, target, rcond=None)
        a = np.array([[p, -q], [q, p]])
    else:
        design = np.column_stack([u, v])
        a = np.linalg.lstsq(
            design, np.column_stack([xc - np.mean(xc), yc - np.mean(yc)]), rcond=None
        )[0].T
    t = np.array([np.mean(xc), np.mean(yc)]) - a @ np.array([x0, y0])
    return np.column_stack([a, t])


def _refined_wcs(wcs: WCS, transform: np.ndarray, centre: tuple[float, float] | None) -> WCS:
    """TAN WCS of the pixels given header-pixel = A · pixel + t (0-based both)."""
    a, t = transform[:, :2], transform[:, 2]
    out = WCS(naxis=2)
    out.wcs.ctype = list(wcs.wcs.ctype)
    out.wcs.cunit = ["deg", "deg"]
    out.wcs.radesys = "ICRS"
    crpix_h = np.asarray(wcs.wcs.crpix, dtype=float)
    c = t + 1.0 - a @ np.ones(2)  # the same map in FITS 1-based pixels: q1 = A p1 + c
    out.wcs.crpix = np.linalg.solve(a, crpix_h - c)
    out.wcs.crval = np.asarray(wcs.wcs.crval, dtype=float)
    out.wcs.cd = wcs.pixel_scale_matrix @ a
    out.wcs.set()
    if centre is None:
        centre = (float(crpix_h[0]), float(crpix_h[1]))
    world = out.all_pix2world([centre], 1)[0]
    out.wcs.crpix, out.wcs.crval = centre, world
    out.wcs.set()
    return out
