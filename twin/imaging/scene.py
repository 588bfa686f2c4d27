"""One exposure's scene: where each source lands on the detector, its electrons, its shape.

Geometry. :func:`frame_wcs` is a gnomonic (TAN) WCS, north up and east left, with the
pixel scale of the telescope and the reference point at the centre of the frame. The
scene uses the *true* pointing (``spec.true_ra_deg``, ``spec.true_dec_deg``): that is
where the sky actually lands; the header of the written frame carries the believed one.
Pixel positions are 0-based numpy positions, ``image[y, x]``, with integer values at
pixel centres (FITS and DS9 count from 1: add 1).

Electrons. Point sources and galaxies get :func:`twin.physics.etc.source_electrons` with
the exposure's airmass, transparency × throughput and site height, so aperture photometry
of the frame recovers the exposure-time calculator's numbers; trails the same per arcsec
of track.

Truth table (:func:`build_scene`): ``source_id``, ``type`` (star | galaxy | transient |
trail), ``ra_deg``, ``dec_deg``, ``x_pix``, ``y_pix``, ``mag`` (AB, in the exposure's band;
for a trail the electrons one pass leaves per arcsec of track, as the magnitude of a star
giving that many in one second), ``flux_e`` (expected electrons; for a trail those that
fall in the frame), ``in_frame``, the galaxy shape parameters (NaN for other types) and,
for trails, ``pa_deg``, ``width_arcsec``, ``length_arcsec`` (the chord across the frame);
``alert_id`` of an announced transient; ``pop_kind`` (sn_ia | sn_cc | fast | variable |
agn | asteroid, :data:`twin.alerts.population.POP_KINDS`) and ``pop_id`` of a member of the
sky's own population, '' otherwise. Population members are drawn as points: variable stars
keep ``type`` star, every other member has ``type`` transient (a point source that is not
in the static catalogue), whatever its ``pop_kind``.

What each galaxy looks like is :mod:`twin.imaging.galaxies`' business.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from astropy.wcs import WCS

from twin.imaging.catalog import SkyCatalog
from twin.imaging.psf import image_angle_deg
from twin.imaging.spec import FrameSpec
from twin.physics.etc import sky_electrons_per_pixel, source_electrons

GALAXY_SHAPE_COLUMNS = ("bulge_frac", "hlr_disk_arcsec", "hlr_bulge_arcsec", "q_disk",
                        "q_bulge", "pa_deg", "n_knots", "knot_frac",
                        "knot_seed")  # fmt: skip
TRUTH_COLUMNS = ("source_id", "type", "ra_deg", "dec_deg", "x_pix", "y_pix", "mag", "flux_e",
                 "in_frame", *GALAXY_SHAPE_COLUMNS, "width_arcsec", "length_arcsec",
                 "alert_id", "trail_kind", "pop_kind", "pop_id")  # fmt: skip


def frame_wcs(spec: FrameSpec, *, true_pointing: bool = True) -> WCS:
    """TAN WCS of the frame, north up, east left, centred on the true (or believed) pointing."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    if true_pointing:
        wcs.wcs.crval = [spec.true_ra_deg, spec.true_dec_deg]
    else:
        wcs.wcs.crval = [spec.ra_deg, spec.dec_deg]
    wcs.wcs.crpix = [0.5 * (spec.nx + 1), 0.5 * (spec.ny + 1)]  # FITS 1-based centre
    scale_deg = spec.pixel_scale_arcsec / 3600.0
    wcs.wcs.cd = [[-scale_deg, 0.0], [0.0, scale_deg]]
    wcs.wcs.cunit = ["deg", "deg"]
    return wcs


def electrons(spec: FrameSpec, mag, exptime_s: float | None = None) -> np.ndarray:
    """Expected electrons of a point source of AB magnitude ``mag`` in this exposure (or in
    ``exptime_s`` seconds of it)."""
    exptime_s = spec.exptime_s if exptime_s is None else exptime_s
    return source_electrons(spec.telescope, spec.band, source_mag=mag, exptime_s=exptime_s,
                            airmass=spec.airmass, transparency=spec.transparency * spec.throughput,
                            height_m=spec.site_height_m)  # fmt: skip


def sky_level_e(spec: FrameSpec) -> float:
    """Sky electrons per pixel in the exposure (ETC ``sky_electrons_per_pixel``)."""
    return float(sky_electrons_per_pixel(
        spec.telescope, spec.band, sky_mag_arcsec2=spec.sky_mag_arcsec2,
        exptime_s=spec.exptime_s, transparency=spec.transparency * spec.throughput))  # fmt: skip


def _axis_interval(p: np.ndarray, u: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Range of t for which p + t u lies within the pixels 0 .. size - 1 along one axis."""
    with np.errstate(divide="ignore", invalid="ignore"):
        a, b = (-0.5 - p) / u, (size - 0.5 - p) / u
    flat = np.abs(u) < 1e-12
    inside = (p > -0.5) & (p < size - 0.5)
    t0 = np.where(flat, np.where(inside, -np.inf, np.inf), np.minimum(a, b))
    t1 = np.where(flat, np.where(inside, np.inf, -np.inf), np.maximum(a, b))
    return t0, t1


def trail_chords(x, y, pa_deg, nx: int, ny: int) -> np.ndarray:
    """Length (pixels) of the lines through (x, y) along ``pa_deg`` inside the frame."""
    theta = np.radians(image_angle_deg(pa_deg))
    x0, x1 = _axis_interval(np.asarray(x, dtype=float), np.cos(theta), nx)
    y0, y1 = _axis_interval(np.asarray(y, dtype=float), np.sin(theta), ny)
    return np.nan_to_num(np.clip(np.minimum(x1, y1) - np.maximum(x0, y0), 0.0, None))


@dataclass(frozen=True)
class Scene:
    """The truth of one frame before drawing: positions, electrons, shapes."""

    spec: FrameSpec
    wcs: WCS
    truth: pd.DataFrame
    sky_e_per_pix: float


def _typed(table: pd.DataFrame, kind: str) -> pd.DataFrame:
    if table.empty:
        return table
    out = table.copy()
    out.insert(1, "type", kind)
    return out


def build_scene(spec: FrameSpec, catalog: SkyCatalog, sky_e_per_pix: float,
                margin_px: float = 64.0) -> Scene:  # fmt: skip
    """Project ``catalog`` onto the frame; keep sources within ``margin_px`` of it."""
    wcs = frame_wcs(spec)
    parts = [_typed(catalog.stars, "star"), _typed(catalog.galaxies, "galaxy"),
             _typed(catalog.transients, "transient"), _typed(catalog.trails, "trail")]  # fmt: skip
    parts = [p for p in parts if not p.empty]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        {c: pd.Series(dtype=object if c == "type" else float) for c in TRUTH_COLUMNS})  # fmt: skip
    for column in TRUTH_COLUMNS:
        if column not in table:
            table[column] = np.nan
    for column in ("alert_id", "trail_kind", "pop_kind", "pop_id"):
        table[column] = table[column].astype(object).where(table[column].notna(), "").astype(str)
    x, y = wcs.all_world2pix(table["ra_deg"].to_numpy(float), table["dec_deg"].to_numpy(float), 0)
    table["x_pix"], table["y_pix"] = x, y
    is_trail = (table["type"] == "trail").to_numpy()
    table["flux_e"] = electrons(spec, table["mag"].to_numpy(float))
    chord = trail_chords(x, y, table["pa_deg"].to_numpy(float), spec.nx, spec.ny)
    table["length_arcsec"] = np.where(is_trail, chord * spec.pixel_scale_arcsec, np.nan)
    # A trail's mag is per arcsec of track for one pass, whatever the exposure time.
    per_arcsec = table["flux_e"] / spec.exptime_s
    table["flux_e"] = np.where(is_trail, per_arcsec * table["length_arcsec"], table["flux_e"])
    near = (x > -0.5 - margin_px) & (x < spec.nx - 0.5 + margin_px)
    near &= (y > -0.5 - margin_px) & (y < spec.ny - 0.5 + margin_px)
    keep = np.where(is_trail, chord > 0.0, near)
    table["in_frame"] = (x > -0.5) & (x < spec.nx - 0.5) & (y > -0.5) & (y < spec.ny - 0.5)
    table["in_frame"] |= is_trail
    table = table.loc[keep, list(TRUTH_COLUMNS)].reset_index(drop=True)
    return Scene(spec, wcs, table, float(sky_e_per_pix))
