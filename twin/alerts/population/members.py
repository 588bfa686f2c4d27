"""Listing the population over a region and a time span, and its magnitudes at any time.

For measurements against truth — the completeness of a discovery pipeline against the
peak magnitude of the transients nobody announced, its false alerts, an asteroid linker —
:func:`population_members` gives every member that could be seen in a circle of the sky
during [mjd0, mjd1]; :func:`member_mags` gives their magnitudes at any time. Both use the
same functions as the frames, so a member listed here at a magnitude above a frame's
depth is on that frame.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin.alerts.population.asteroids import asteroid_mag, asteroids_at
from twin.alerts.population.explosive import explosion_mags, explosions
from twin.alerts.population.keys import EXPLOSIVE_KINDS, POP_KINDS, check_kinds
from twin.alerts.population.persistent import (
    agn_nuclei,
    drw_delta_mag,
    qso_colour,
    variable_delta_mag,
    variable_stars,
)
from twin.alerts.population.spec import PopulationSpec

MEMBER_COLUMNS = (
    "pop_id", "pop_kind", "curve", "source_id", "ra_deg", "dec_deg", "t0_mjd", "peak_mag_r",
    "band", "mean_mag", "host_id", "host_hlr_arcsec", "offset_arcsec", "amplitude_mag",
    "period_days", "phase_rad", "rate_deg_per_day", "ra_rate_deg_per_day",
    "dec_rate_deg_per_day", "mag",
)  # fmt: skip
LISTING_MAX_SOURCES = 10_000_000


def population_members(
    ra_deg: float, dec_deg: float, radius_deg: float, mjd0: float, mjd1: float,
    population: PopulationSpec, sky_seed: int = 0, *, band: str = "r",
    at_mjd: float | None = None, kinds=POP_KINDS, static_faint_mag: float = 21.0,
) -> pd.DataFrame:  # fmt: skip
    """Members within ``radius_deg`` of (ra, dec) that may be seen during [mjd0, mjd1].

    One row per member, columns :data:`MEMBER_COLUMNS`:

    - supernovae and fast transients alive at some time in the span (``t0_mjd <= mjd1``,
      not yet :data:`~twin.alerts.population.explosive.FADED_MAG` below peak at mjd0),
      with ``curve`` (light curve), ``t0_mjd``, ``peak_mag_r``, ``host_id`` (the galaxy's
      ``source_id``, -1 hostless), ``host_hlr_arcsec`` and ``offset_arcsec``;
    - variable stars among static stars brighter than ``static_faint_mag`` in ``band``
      (``mean_mag``, ``amplitude_mag`` peak to peak, ``period_days``, ``phase_rad``);
    - AGN in galaxies brighter than ``population.agn_host_max_i_mag`` (``mean_mag``);
    - asteroids alive at ``at_mjd``, at their position then (``t0_mjd`` is the birth,
      ``mean_mag`` the constant magnitude, on-sky rates).

    ``mag`` is the magnitude in ``band`` at ``at_mjd`` (default ``mjd0``; ``inf`` before t0).
    Deterministic: a function of the arguments only.
    """
    if not mjd0 <= mjd1:
        raise ValueError(f"mjd0 = {mjd0} must not be after mjd1 = {mjd1}")
    kinds = check_kinds(kinds)
    at_mjd = mjd0 if at_mjd is None else float(at_mjd)
    parts = []
    explosive = [k for k in kinds if k in EXPLOSIVE_KINDS]
    if explosive:
        parts.append(_explosive(ra_deg, dec_deg, radius_deg, mjd0, mjd1, explosive, population,
                                sky_seed))  # fmt: skip
    if "variable" in kinds or "agn" in kinds:
        parts.append(_persistent(ra_deg, dec_deg, radius_deg, band, kinds, population, sky_seed,
                                 static_faint_mag))  # fmt: skip
    if "asteroid" in kinds:
        rocks = asteroids_at(ra_deg, dec_deg, radius_deg, at_mjd, population, sky_seed)
        rocks = rocks.assign(mean_mag=asteroid_mag(rocks["mag_r"], band))
        parts.append(rocks.drop(columns="mag_r"))
    table = pd.concat([p for p in parts if len(p)] or [pd.DataFrame(columns=["pop_id"])],
                      ignore_index=True)  # fmt: skip
    for column in MEMBER_COLUMNS:
        if column not in table:
            table[column] = np.nan
    table["band"] = band
    table["curve"] = table["curve"].astype(object).where(table["curve"].notna(), "")
    table["host_id"] = table["host_id"].fillna(-1).astype(np.int64)
    table = table[list(MEMBER_COLUMNS)]
    table["mag"] = member_mags(table, at_mjd, population, sky_seed)
    return table.sort_values(["pop_kind", "pop_id"], kind="stable").reset_index(drop=True)


def _explosive(ra, dec, radius, mjd0, mjd1, kinds, population, sky_seed) -> pd.DataFrame:
    from twin.imaging.catalog import _cells_in_circle, _within

    table = explosions(_cells_in_circle(ra, dec, radius), mjd0, mjd1, kinds, population, sky_seed)
    table = table[_within(table["ra_deg"], table["dec_deg"], ra, dec, radius)]
    offset = np.hypot(table["offset_east_arcsec"], table["offset_north_arcsec"])
    return table.assign(offset_arcsec=offset).drop(
        columns=["host_q", "host_pa_deg", "offset_east_arcsec", "offset_north_arcsec"])  # fmt: skip


def _persistent(ra, dec, radius, band, kinds, population, sky_seed, faint) -> pd.DataFrame:
    from twin.imaging.catalog import field_sources

    parts = []
    if "variable" in kinds:
        stars, _ = field_sources(ra, dec, radius, band, faint, sky_seed=sky_seed,
                                 max_stars=LISTING_MAX_SOURCES, max_galaxies=0)  # fmt: skip
        if len(stars):
            var = variable_stars(stars["source_id"], population, sky_seed)
            stars = stars.set_index("source_id").loc[var["source_id"]]
            parts.append(var.assign(
                pop_id=[f"variable/{i}" for i in var["source_id"]], pop_kind="variable",
                ra_deg=stars["ra_deg"].to_numpy(), dec_deg=stars["dec_deg"].to_numpy(),
                mean_mag=stars["mag"].to_numpy()))  # fmt: skip
    if "agn" in kinds:
        _, galaxies = field_sources(ra, dec, radius, "i", population.agn_host_max_i_mag,
                                    sky_seed=sky_seed, max_stars=0,
                                    max_galaxies=LISTING_MAX_SOURCES)  # fmt: skip
        nuclei = agn_nuclei(galaxies, population, sky_seed)
        parts.append(nuclei.assign(pop_kind="agn", mean_mag=nuclei["mean_mag_i"] + qso_colour(band))
                     .drop(columns="mean_mag_i"))  # fmt: skip
    parts = [p for p in parts if len(p)]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def member_mags(members: pd.DataFrame, mjd: float, population: PopulationSpec,
                sky_seed: int = 0) -> np.ndarray:  # fmt: skip
    """Magnitudes at ``mjd`` of rows of :func:`population_members` (in their ``band``):
    light curves for explosions (``inf`` before t0), the variable's sine, the AGN's
    flicker, an asteroid's constant magnitude (its position moves: list it again)."""
    out = np.full(len(members), np.nan)
    kind = members["pop_kind"].to_numpy()
    for band in members["band"].unique() if len(members) else []:
        in_band = members["band"].to_numpy() == band
        rows = in_band & np.isin(kind, EXPLOSIVE_KINDS)
        if rows.any():
            out[rows] = explosion_mags(members[rows], band, mjd)
    rows = kind == "variable"
    if rows.any():
        out[rows] = members["mean_mag"].to_numpy()[rows] + variable_delta_mag(members[rows], mjd)
    rows = kind == "agn"
    if rows.any():
        out[rows] = members["mean_mag"].to_numpy()[rows] + drw_delta_mag(
            members["host_id"].to_numpy()[rows], mjd, population, sky_seed)  # fmt: skip
    rows = kind == "asteroid"
    out[rows] = members["mean_mag"].to_numpy()[rows]
    return out


def expected_explosions(population: PopulationSpec, kind: str, area_deg2: float,
                        years: float) -> float:  # fmt: skip
    """Mean number of explosions of ``kind`` in ``area_deg2`` over ``years`` (for checks)."""
    from twin.alerts.population.explosive import rate_and_range

    return rate_and_range(population, kind)[0] * area_deg2 * years


def cap_area_deg2(radius_deg: float) -> float:
    """Area of a spherical cap of ``radius_deg``."""
    return 2 * math.pi * (1 - math.cos(math.radians(radius_deg))) * (180 / math.pi) ** 2
