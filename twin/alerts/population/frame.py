"""The population in one frame: what :func:`twin.imaging.catalog.sky_catalog` adds.

At the exposure's mid-time (``mjd_start + exptime / 2``), in the frame's band:

1. variable stars among the static stars get their magnitude at that time (the table's
   ``mag`` and every ``mag_<band>`` shift by the same amount) and ``pop_kind = variable``;
2. AGN nuclei of the static galaxies become point sources at their flickering magnitude;
3. supernovae and fast transients alive then, at their light-curve magnitude, and
   asteroids at their position then, join them as point sources.

A reference (``FrameSpec.population_reference``, set by the deep template) shows 1 and 2
at their mean and nothing of 3: what a reference survey without transients supplies.
Point sources fainter than the catalogue's faint limit are left out, as static ones are.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from twin.alerts.population.asteroids import asteroid_mag, asteroids_at
from twin.alerts.population.explosive import explosion_mags, explosions
from twin.alerts.population.keys import EXPLOSIVE_KINDS
from twin.alerts.population.persistent import (
    agn_nuclei,
    drw_delta_mag,
    qso_colour,
    variable_delta_mag,
    variable_stars,
)
from twin.imaging.spec import FrameSpec

POINT_COLUMNS = ("source_id", "ra_deg", "dec_deg", "mag", "pop_kind", "pop_id")
MAG_BANDS = ("u", "g", "r", "i", "z", "y")


def mid_exposure_mjd(spec: FrameSpec) -> float:
    return spec.mjd_start + 0.5 * spec.exptime_s / 86400.0


def vary_stars(stars: pd.DataFrame, spec: FrameSpec, sky_seed: int = 0) -> pd.DataFrame:
    """``stars`` with ``pop_kind`` / ``pop_id`` and the variables' magnitudes at mid-exposure."""
    stars = stars.copy()
    stars["pop_kind"], stars["pop_id"] = "", ""
    if stars.empty:
        return stars
    variables = variable_stars(stars["source_id"], spec.population, sky_seed)
    rows = np.flatnonzero(stars["source_id"].isin(variables["source_id"]).to_numpy())
    variables = variables.set_index("source_id").loc[stars["source_id"].to_numpy()[rows]]
    mid = mid_exposure_mjd(spec)
    delta = 0.0 if spec.population_reference else variable_delta_mag(variables, mid)
    for column in ["mag", *(f"mag_{b}" for b in MAG_BANDS)]:
        if column in stars:
            stars.iloc[rows, stars.columns.get_loc(column)] += delta
    stars.iloc[rows, stars.columns.get_loc("pop_kind")] = "variable"
    stars.iloc[rows, stars.columns.get_loc("pop_id")] = [f"variable/{i}" for i in variables.index]
    return stars


def population_points(spec: FrameSpec, galaxies: pd.DataFrame, *, sky_seed: int,
                      radius_deg: float, within) -> pd.DataFrame:  # fmt: skip
    """AGN, explosions and asteroids on the frame (POINT_COLUMNS); ``within(ra, dec)`` says
    which positions lie on the frame plus its margin."""
    pop, band, mid = spec.population, spec.band, mid_exposure_mjd(spec)
    parts = []
    nuclei = agn_nuclei(galaxies, pop, sky_seed)
    if len(nuclei):
        flicker = 0.0 if spec.population_reference else drw_delta_mag(nuclei["host_id"], mid, pop,
                                                                      sky_seed)  # fmt: skip
        nuclei["mag"] = nuclei["mean_mag_i"] + qso_colour(band) + flicker
        nuclei["pop_kind"] = "agn"
        parts.append(nuclei)
    if not spec.population_reference:
        from twin.imaging.catalog import _cells_in_circle

        cells = _cells_in_circle(spec.true_ra_deg, spec.true_dec_deg, radius_deg)
        bangs = explosions(cells, mid, mid, EXPLOSIVE_KINDS, pop, sky_seed)
        bangs["mag"] = explosion_mags(bangs, band, mid)
        parts.append(bangs[bangs["t0_mjd"] < mid])
        rocks = asteroids_at(spec.true_ra_deg, spec.true_dec_deg, radius_deg, mid, pop, sky_seed)
        rocks["mag"] = asteroid_mag(rocks["mag_r"], band)
        parts.append(rocks)
    parts = [p[list(POINT_COLUMNS)] for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: [] for c in POINT_COLUMNS})
    points = pd.concat(parts, ignore_index=True)
    keep = within(points["ra_deg"], points["dec_deg"]) & np.isfinite(points["mag"])
    return points[keep].reset_index(drop=True).astype({"source_id": np.int64})
