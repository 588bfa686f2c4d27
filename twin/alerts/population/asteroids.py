"""Asteroids: main-belt objects moving near the ecliptic, a class of their own.

They are real sources but not transients: a pipeline must find them and not follow them.

Placement. The ecliptic (IAU 2006 mean obliquity at J2000, :data:`OBLIQUITY_DEG`) is cut
into 1° × 1° cells of ecliptic latitude β and longitude λ within
``asteroid_max_ecliptic_lat_deg``. Asteroids are born in a cell on a day (``floor(mjd)``)
from the generator of ``(sky_seed, cell, day)`` and live :data:`LIFE_DAYS`; the birth rate
is set so that the sky density is ``asteroid_per_deg2 × exp(-β² / 2σ²)`` with ``σ =
asteroid_max_ecliptic_lat_deg / 2`` (cell centre). During its life an asteroid moves on a
straight line in (λ cos β, β) at a rate uniform in ``asteroid_rate_deg_per_day``, at an
angle to the ecliptic ~ N(0°, :data:`DIRECTION_SCATTER_DEG`), westward (retrograde, as
main-belt asteroids near opposition) with probability :data:`RETROGRADE_FRACTION`. So its
position is linear in time during a night and the same in every frame, at any site; it
appears and disappears at random times (of those seen at one visit, ``Δt / LIFE_DAYS``
are gone at a visit ``Δt`` later: 1.4 % an hour later). Its magnitude is constant; its colours
solar (:data:`twin.physics.sky.SUN_COLOUR_MINUS_V`; S-types are redder). Left out: the
density's dependence on solar elongation, rotation and phase-angle brightening, and the
trail during an exposure (0.5 °/day is 1.25" in a minute, about the seeing).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from twin.alerts.population.keys import euclidean_mags, generator, member_source_id
from twin.alerts.population.spec import PopulationSpec
from twin.physics.sky import SUN_COLOUR_MINUS_V

OBLIQUITY_DEG = 84381.406 / 3600.0
"""Mean obliquity of the ecliptic at J2000 (IAU 2006, Capitaine et al. 2003)."""
CELL_DEG = 1.0
LIFE_DAYS = 3.0
DIRECTION_SCATTER_DEG = 10.0
RETROGRADE_FRACTION = 0.8
COUNT_SLOPE = 0.3
"""d log10 N / dr of main-belt asteroids fainter than r ≈ 18 (Ivezić et al. 2001)."""

COLUMNS = ("pop_id", "pop_kind", "source_id", "ra_deg", "dec_deg", "t0_mjd", "mag_r",
           "rate_deg_per_day", "ra_rate_deg_per_day", "dec_rate_deg_per_day")  # fmt: skip


def _rotation(to_ecliptic: bool) -> np.ndarray:
    e = math.radians(OBLIQUITY_DEG) * (1.0 if to_ecliptic else -1.0)
    return np.array([[1, 0, 0], [0, math.cos(e), math.sin(e)], [0, -math.sin(e), math.cos(e)]])


def _rotate(lon_deg, lat_deg, to_ecliptic: bool) -> tuple[np.ndarray, np.ndarray]:
    lon, lat = np.radians(lon_deg), np.radians(lat_deg)
    xyz = np.stack([np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)])
    x, y, z = _rotation(to_ecliptic) @ xyz.reshape(3, -1)
    shape = np.shape(lon_deg)
    lon_out = np.degrees(np.arctan2(y, x)) % 360.0
    return lon_out.reshape(shape), np.degrees(np.arcsin(np.clip(z, -1, 1))).reshape(shape)


def ecliptic_from_equatorial(ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray]:
    """(λ, β) in degrees of the mean ecliptic of J2000 from ICRS (RA, Dec)."""
    return _rotate(ra_deg, dec_deg, True)


def equatorial_from_ecliptic(lon_deg, lat_deg) -> tuple[np.ndarray, np.ndarray]:
    return _rotate(lon_deg, lat_deg, False)


def density_per_deg2(lat_deg, population: PopulationSpec) -> np.ndarray:
    """Asteroids per deg² brighter than ``asteroid_mag_r[1]`` at ecliptic latitude ``lat``."""
    lat = np.abs(np.asarray(lat_deg, dtype=float))
    limit = population.asteroid_max_ecliptic_lat_deg
    sigma = 0.5 * limit
    return np.where(lat < limit, population.asteroid_per_deg2 * np.exp(-0.5 * (lat / sigma) ** 2),
                    0.0)  # fmt: skip


def cell_births(i_lat: int, i_lon: int, day: int, population: PopulationSpec,
                sky_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Asteroids born in ecliptic cell (``i_lat`` from β = -90°, ``i_lon``) on ``day``."""
    lat_lo = i_lat * CELL_DEG - 90.0
    lon_lo = i_lon * CELL_DEG
    area = (math.sin(math.radians(lat_lo + CELL_DEG)) - math.sin(math.radians(lat_lo))) * (
        math.radians(CELL_DEG) * (180.0 / math.pi) ** 2)  # fmt: skip
    births_per_day = float(density_per_deg2(lat_lo + 0.5 * CELL_DEG, population)) * area / LIFE_DAYS
    rng = generator(sky_seed, "asteroid", i_lat, i_lon, day)
    n = int(rng.poisson(births_per_day))
    t_birth = day + rng.uniform(size=n)
    lon = lon_lo + CELL_DEG * rng.uniform(size=n)
    sin_lat = (math.sin(math.radians(lat_lo)), math.sin(math.radians(lat_lo + CELL_DEG)))
    lat = np.degrees(np.arcsin(rng.uniform(*sin_lat, n)))
    mag_r = euclidean_mags(rng.uniform(size=n), population.asteroid_mag_r, COUNT_SLOPE)
    rate = rng.uniform(*population.asteroid_rate_deg_per_day, n)
    angle = np.radians(rng.normal(0.0, DIRECTION_SCATTER_DEG, n))
    sign = np.where(rng.uniform(size=n) < RETROGRADE_FRACTION, -1.0, 1.0)
    return pd.DataFrame({
        "pop_id": [f"asteroid/{i_lat}/{i_lon}/{day}/{k}" for k in range(n)],
        "source_id": member_source_id("asteroid", (i_lat << 16) | i_lon,
                                      ((day & 0xFFF) << 16) | np.arange(n)),
        "t_birth": t_birth, "lon0_deg": lon, "lat0_deg": lat, "mag_r": mag_r,
        "rate_lon_deg_per_day": sign * rate * np.cos(angle),  # along the ecliptic, × cos β
        "rate_lat_deg_per_day": sign * rate * np.sin(angle), "rate_deg_per_day": rate,
    })  # fmt: skip


def asteroids_at(ra_deg: float, dec_deg: float, radius_deg: float, mjd: float,
                 population: PopulationSpec, sky_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Asteroids alive at ``mjd`` within ``radius_deg`` of (ra, dec), positioned at ``mjd``
    (COLUMNS; ``t0_mjd`` is the birth)."""
    from twin.imaging.catalog import _within

    limit = population.asteroid_max_ecliptic_lat_deg
    reach = radius_deg + population.asteroid_rate_deg_per_day[1] * LIFE_DAYS + CELL_DEG
    lon_f, lat_f = (float(v) for v in ecliptic_from_equatorial(ra_deg, dec_deg))
    lat_range = (max(lat_f - reach, -limit), min(lat_f + reach, limit))
    if population.asteroid_per_deg2 <= 0.0 or lat_range[0] >= lat_range[1]:
        return pd.DataFrame({c: [] for c in COLUMNS})
    i_lats = range(math.floor((lat_range[0] + 90.0) / CELL_DEG),
                   math.floor((lat_range[1] + 90.0) / CELL_DEG) + 1)  # fmt: skip
    half_lon = min(180.0, reach / max(math.cos(math.radians(abs(lat_f) + reach)), 0.05))
    n_lon = round(360.0 / CELL_DEG)
    first = math.floor((lon_f - half_lon) / CELL_DEG)
    i_lons = sorted(
        {k % n_lon for k in range(first, math.floor((lon_f + half_lon) / CELL_DEG) + 1)}
    )
    days = range(math.floor(mjd - LIFE_DAYS), math.floor(mjd) + 1)
    parts = [cell_births(i, j, d, population, sky_seed) for i in i_lats for j in i_lons
             for d in days]  # fmt: skip
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame({c: [] for c in COLUMNS})
    table = pd.concat(parts, ignore_index=True)
    age = mjd - table["t_birth"].to_numpy()
    table = table[(age >= 0.0) & (age < LIFE_DAYS)].reset_index(drop=True)
    return _positioned(table, mjd, ra_deg, dec_deg, radius_deg, _within)


def _positioned(table, mjd, ra0, dec0, radius_deg, within) -> pd.DataFrame:
    age = mjd - table["t_birth"].to_numpy()
    lat = table["lat0_deg"].to_numpy() + table["rate_lat_deg_per_day"].to_numpy() * age
    cos_lat = np.maximum(np.cos(np.radians(table["lat0_deg"].to_numpy())), 1e-6)
    lon = table["lon0_deg"].to_numpy() + table["rate_lon_deg_per_day"].to_numpy() * age / cos_lat
    ra, dec = equatorial_from_ecliptic(lon, lat)
    # On-sky rates from the position a minute later (for motion checks and linking).
    dt = 1.0 / 1440.0
    ra2, dec2 = equatorial_from_ecliptic(
        lon + table["rate_lon_deg_per_day"].to_numpy() * dt / cos_lat,
        lat + table["rate_lat_deg_per_day"].to_numpy() * dt)  # fmt: skip
    out = pd.DataFrame({
        "pop_id": table["pop_id"], "pop_kind": "asteroid", "source_id": table["source_id"],
        "ra_deg": ra, "dec_deg": dec, "t0_mjd": table["t_birth"], "mag_r": table["mag_r"],
        "rate_deg_per_day": table["rate_deg_per_day"],
        "ra_rate_deg_per_day": ((ra2 - ra + 180.0) % 360.0 - 180.0) / dt,
        "dec_rate_deg_per_day": (dec2 - dec) / dt,
    })  # fmt: skip
    return out[within(out["ra_deg"], out["dec_deg"], ra0, dec0, radius_deg)].reset_index(drop=True)


def asteroid_mag(mag_r, band: str) -> np.ndarray:
    """Magnitude in ``band`` of asteroids of r magnitude ``mag_r`` (solar colours)."""
    return np.asarray(mag_r, dtype=float) + SUN_COLOUR_MINUS_V[band] - SUN_COLOUR_MINUS_V["r"]
