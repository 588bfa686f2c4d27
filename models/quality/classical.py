"""Classical measurements on a frame, fed to the quality network beside the pixels.

A hybrid, as a real site pipeline would run it: SEP measures what a small CNN on a
256² crop resolves poorly — star sizes and shapes of a ~3-pixel PSF, and the photometric
zero point against the reference catalogue (the site's stand-in for Gaia,
:func:`twin.imaging.catalog.field_sources`) — and the network combines them with what it
sees. Everything here is computed from the pixels and the non-truth header cards
(exposure, detector, pointing and WCS, airmass, filter, the clear-sky zero point of
:func:`~models.quality.features.zp_clear_mag`); no truth card is read.

Features (:data:`CLASSICAL_NAMES`, centred and scaled so a typical frame sits near 0):

| name             | measurement                                                        |
|------------------|--------------------------------------------------------------------|
| fwhm_r50         | median r_half / 0.5685 of compact unsaturated stars, ″ (log)      |
| r25_r75          | median r25 / r75 of those (a donut has a flat core)                |
| fwhm_moments     | median 2.355 √(ab) of those, ″ (log)                               |
| sharpness        | median peak / flux of those (log10)                                |
| elongation       | median a / b of bright detections                                  |
| e_coherent       | modulus of the mean (e cos 2θ, e sin 2θ) of bright detections:     |
|                  | tracking stretches every source the same way, noise does not       |
| e_along          | the same mean at twice the number of sources (bright + faint)      |
| streak           | log(1 + longest a of sources with a / b > 4), pixels               |
| spikes           | log(1 + lone-pixel spikes > 8σ)                                    |
| columns          | deviant columns (> 5σ), capped at 5                                |
| n_detected       | log(1 + sources detected inside the frame)                         |
| n_good           | log(1 + compact stars used for the FWHM)                           |
| count_ratio      | log10 (detected + 1) / (catalogue sources to the 5σ depth + 1)     |
| zp_offset        | −2.5 log10 median(measured / catalogue flux) of matched stars, mag |
| n_phot           | log(1 + stars in that median)                                      |
| has_fwhm         | 1 when a compact star was measured (else the FWHM features are 0)  |
| has_phot         | 1 when a star was matched (else zp_offset is 0)                    |
| flux_ratio       | −2.5 log10 (light above the background in the frame / catalogue    |
|                  | light of its sources to the 5σ depth), mag: needs no match         |
| fwhm_all         | median 2.355 √(ab) of every round detection, ″ (log; galaxies too) |
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import numpy as np

from models.quality.features import KOLMOGOROV_HLR_PER_FWHM, robust_sky, zp_clear_mag

CLASSICAL_NAMES = (
    "fwhm_r50", "r25_r75", "fwhm_moments", "sharpness", "elongation", "e_coherent",
    "e_along", "streak", "spikes", "columns", "n_detected", "n_good", "count_ratio",
    "zp_offset", "n_phot", "has_fwhm", "has_phot", "flux_ratio", "fwhm_all",
)  # fmt: skip
N_CLASSICAL = len(CLASSICAL_NAMES)
_CENTRE = np.array([0.2, 0.45, 0.2, -1.2, 1.1, 0.05, 0.05, 0.5, 0.5, 0.0, 3.0, 1.5, -0.3,
                    0.3, 1.0, 0.5, 0.5, 0.3, 0.3])  # fmt: skip
_SCALE = np.array([0.4, 0.05, 0.4, 0.3, 0.2, 0.1, 0.1, 1.0, 1.0, 1.0, 1.0, 1.0, 0.3,
                   0.5, 1.0, 0.5, 0.5, 0.7, 0.4])  # fmt: skip


@lru_cache(maxsize=8192)
def catalogue(ra: float, dec: float, band: str, mag: float, half_w: float, half_h: float
              ) -> tuple[np.ndarray, int, np.ndarray]:  # fmt: skip
    """Reference stars ``(ra, dec, mag)`` rows, the number of all sources to ``mag`` and
    the magnitudes of all of them (stars and galaxies).

    Cached per (rounded) pointing: a site re-observes its survey tiles, and a real
    pipeline fetches a tile's catalogue once.
    """
    from twin.imaging.catalog import field_sources

    stars, galaxies = field_sources(ra, dec, math.hypot(half_w, half_h), band, mag,
                                    box_deg=(half_w, half_h))  # fmt: skip
    rows = stars[["ra_deg", "dec_deg", "mag"]].to_numpy(dtype=float)
    mags = np.concatenate([stars["mag"].to_numpy(float), galaxies["mag"].to_numpy(float)])
    return rows, len(stars) + len(galaxies), mags


def sky_to_pixel(ra: np.ndarray, dec: np.ndarray, header: Mapping[str, Any]
                 ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """0-based (x, y) of sky positions through the header's TAN WCS (CRVAL, CRPIX, CD)."""
    ra0, dec0 = math.radians(float(header["CRVAL1"])), math.radians(float(header["CRVAL2"]))
    ra, dec = np.radians(ra), np.radians(dec)
    cos_c = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
    xi = np.degrees(np.cos(dec) * np.sin(ra - ra0) / cos_c)
    eta = np.degrees((np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0))
                     / cos_c)  # fmt: skip
    cd = np.array([[float(header["CD1_1"]), float(header.get("CD1_2", 0.0))],
                   [float(header.get("CD2_1", 0.0)), float(header["CD2_2"])]])  # fmt: skip
    u, v = np.linalg.solve(cd, np.vstack([xi, eta]))
    return u + float(header["CRPIX1"]) - 1.0, v + float(header["CRPIX2"]) - 1.0


def _spikes(z: np.ndarray) -> np.ndarray:
    """Mask of lone-pixel spikes: above 8σ while all 8 neighbours stay below 3σ."""
    core = z[1:-1, 1:-1]
    neigh = np.max([z[1 + dy : z.shape[0] - 1 + dy, 1 + dx : z.shape[1] - 1 + dx]
                    for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx], axis=0)  # fmt: skip
    mask = np.zeros(z.shape, bool)
    mask[1:-1, 1:-1] = (core > 8.0) & (neigh < 3.0)
    return mask


def _mean_e(objects) -> float:
    if len(objects) < 1:
        return 0.0
    a, b = objects["a"], np.maximum(objects["b"], 1e-3)
    e = (a**2 - b**2) / (a**2 + b**2)
    e1, e2 = np.mean(e * np.cos(2 * objects["theta"])), np.mean(e * np.sin(2 * objects["theta"]))
    return float(math.hypot(e1, e2))


def measure_raw(data_adu: np.ndarray, header: Mapping[str, Any], use_catalogue: bool = True
                ) -> dict[str, float]:  # fmt: skip
    """The measurements of the module table, unscaled (NaN where nothing was measured)."""
    import sep

    data = np.ascontiguousarray(data_adu, dtype=np.float32)
    med, sigma = robust_sky(data)
    scale = float(header["PIXSCALE"])
    exptime = max(float(header["EXPTIME"]), 1e-3)
    z = (data - med) / sigma
    spikes = _spikes(z)
    columns = np.abs(np.median(data, axis=0) - med) > 5.0 * sigma
    mask = spikes | columns[None, :]
    bkg = sep.Background(data, mask=mask, bw=64, bh=64)
    sub = data - bkg.back()
    rms = float(bkg.globalrms)
    objects = sep.extract(sub, 5.0, err=rms, mask=mask, minarea=5, deblend_cont=0.005)
    ny, nx = data.shape
    a, b = objects["a"], np.maximum(objects["b"], 1e-3)
    elong = a / b
    inside = (
        (objects["x"] > 8) & (objects["x"] < nx - 9) & (objects["y"] > 8) & (objects["y"] < ny - 9)
    )
    saturate = float(header.get("SATURATE", 65535)) - float(header.get("BIASLEV", 0.0))
    good = inside & (objects["peak"] < 0.5 * saturate) & (objects["flag"] == 0) & (elong < 4.0)
    good &= (objects["peak"] > 10.0 * rms) & (objects["npix"] >= 9)
    out = dict.fromkeys(CLASSICAL_NAMES, math.nan)
    fwhm = math.nan
    if good.any():
        g = objects[good]
        r, _ = sep.flux_radius(sub, g["x"], g["y"], 6.0 * g["a"], [0.25, 0.5, 0.75], subpix=5)
        ok = np.isfinite(r).all(axis=1) & (r[:, 2] > 0)
        if ok.any():
            fwhm = float(np.median(r[ok, 1])) / KOLMOGOROV_HLR_PER_FWHM * scale
            out["fwhm_r50"] = fwhm
            out["r25_r75"] = float(np.median(r[ok, 0] / r[ok, 2]))
        out["fwhm_moments"] = float(np.median(2.355 * np.sqrt(g["a"] * g["b"]))) * scale
        out["sharpness"] = float(np.median(g["peak"] / np.maximum(g["flux"], 1e-3)))
    round_ = inside & (elong < 4.0) & (objects["npix"] >= 5)
    if round_.any():
        o = objects[round_]
        out["fwhm_all"] = float(np.median(2.355 * np.sqrt(o["a"] * o["b"]))) * scale
    bright = inside & (objects["peak"] > 8.0 * rms) & (objects["npix"] >= 9) & (a < 12.0)
    out["elongation"] = float(np.median(elong[bright])) if bright.any() else 1.0
    out["e_coherent"] = _mean_e(objects[bright])
    out["e_along"] = _mean_e(objects[inside & (a < 12.0)])
    streaks = a[elong > 4.0]
    out["streak"] = float(streaks.max()) if len(streaks) else 0.0
    out["spikes"] = float(np.count_nonzero(spikes))
    out["columns"] = float(np.count_nonzero(columns))
    out["n_detected"] = float(np.count_nonzero(inside))
    out["n_good"] = float(np.count_nonzero(good))
    out["n_phot"] = 0.0
    if use_catalogue:
        zp = zp_clear_mag(header)
        fwhm_pix = (fwhm if math.isfinite(fwhm) else 1.2) / scale
        n_eff = 2.266 * fwhm_pix**2 + math.pi / 3
        m_lim = zp + 2.5 * math.log10(exptime / (5.0 * rms * math.sqrt(n_eff)))
        half_w, half_h = nx * scale / 7200.0, ny * scale / 7200.0
        ra, dec = round(float(header["CRVAL1"]), 3), round(float(header["CRVAL2"]), 3)
        stars, expected, mags = catalogue(ra, dec, str(header.get("FILTER", "r")), round(m_lim, 1),
                                    round(half_w, 5), round(half_h, 5))  # fmt: skip
        out["count_ratio"] = math.log10((out["n_detected"] + 1.0) / (expected + 1.0))
        out.update(_photometry(sub, rms, objects, stars, header, zp, exptime, fwhm_pix))
        # All the light above the background (spikes, bad columns and saturated pixels
        # left out) against the catalogue's light of the same field.
        light = float(np.sum(sub[~mask & (data < saturate + float(header.get("BIASLEV", 0.0)))]))
        cat_light = float(np.sum(exptime * 10.0 ** (-0.4 * (mags - zp)))) if len(mags) else 0.0
        if cat_light > 0:
            out["flux_ratio"] = -2.5 * math.log10(max(light, 1e-3 * cat_light) / cat_light)
    return out


def _photometry(sub, rms, objects, stars, header, zp, exptime, fwhm_pix) -> dict[str, float]:
    """Zero-point offset (mag) of catalogue stars matched to detections, and their count."""
    import sep

    ny, nx = sub.shape
    if not len(stars) or not len(objects):
        return {"zp_offset": math.nan, "n_phot": 0.0}
    x, y = sky_to_pixel(stars[:, 0], stars[:, 1], header)
    flux_cat = exptime * 10.0 ** (-0.4 * (stars[:, 2] - zp))
    # Match each star to the nearest detection within 8″ (pointing errors are a few ″),
    # then take the median shift and keep matches within 2 px of it.
    scale = float(header["PIXSCALE"])
    dx = objects["x"][None, :] - x[:, None]
    dy = objects["y"][None, :] - y[:, None]
    d2 = dx**2 + dy**2
    j = np.argmin(d2, axis=1)
    near = d2[np.arange(len(x)), j] < (8.0 / scale) ** 2
    if not near.any():
        return {"zp_offset": math.nan, "n_phot": 0.0}
    shift_x = float(np.median(dx[near, j[near]]))
    shift_y = float(np.median(dy[near, j[near]]))
    keep = near & ((dx[np.arange(len(x)), j] - shift_x) ** 2
                   + (dy[np.arange(len(x)), j] - shift_y) ** 2 < 4.0)  # fmt: skip
    radius = float(np.clip(3.0 * fwhm_pix, 6.0, 20.0))
    xs, ys = x + shift_x, y + shift_y
    keep &= (xs > radius) & (xs < nx - 1 - radius) & (ys > radius) & (ys < ny - 1 - radius)
    keep &= flux_cat > 10.0 * rms * radius  # S/N above ~10 in the aperture
    if not keep.any():
        return {"zp_offset": math.nan, "n_phot": 0.0}
    flux, _, _ = sep.sum_circle(sub, xs[keep], ys[keep], radius, subpix=5)
    ratio = np.maximum(flux, 1e-3) / flux_cat[keep]
    return {"zp_offset": float(-2.5 * np.log10(np.median(ratio))), "n_phot": float(keep.sum())}


def classical_features(data_adu: np.ndarray, header: Mapping[str, Any]) -> np.ndarray:
    """The network's classical input vector (float32, :data:`N_CLASSICAL`), scaled."""
    raw = measure_raw(data_adu, header)
    return scale_features(raw)


def scale_features(raw: Mapping[str, float]) -> np.ndarray:
    has_fwhm = math.isfinite(raw["fwhm_r50"])
    has_phot = math.isfinite(raw["zp_offset"])
    v = dict(raw)
    for key in ("fwhm_r50", "fwhm_moments", "fwhm_all"):
        v[key] = math.log(max(v[key], 0.05)) if math.isfinite(v[key]) else 0.2
    v["sharpness"] = (
        math.log10(max(v["sharpness"], 1e-4)) if math.isfinite(v["sharpness"]) else -1.2
    )
    if not math.isfinite(v["r25_r75"]):
        v["r25_r75"] = 0.45
    for key in ("streak", "spikes", "n_detected", "n_good", "n_phot"):
        v[key] = math.log1p(max(v[key], 0.0))
    v["columns"] = min(v["columns"], 5.0)
    v["count_ratio"] = v["count_ratio"] if math.isfinite(v["count_ratio"]) else -0.3
    v["zp_offset"] = float(np.clip(v["zp_offset"], -1.0, 5.0)) if has_phot else 0.3
    v["has_fwhm"], v["has_phot"] = float(has_fwhm), float(has_phot)
    v["flux_ratio"] = (
        float(np.clip(v["flux_ratio"], -2.0, 7.5)) if math.isfinite(v["flux_ratio"]) else 0.3
    )
    values = np.array([v[name] for name in CLASSICAL_NAMES], dtype=float)
    return ((values - _CENTRE) / _SCALE).astype(np.float32)
