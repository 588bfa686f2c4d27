"""Supernovae and fast transients: where and when they explode, how bright they peak.

Placement. Explosions of one kind in one static-sky cell (:func:`twin.imaging.catalog.
sky_cell`) and one year block (``floor(mjd / 365.25)``) come from one generator seeded by
``(sky_seed, kind, cell, year)``: a Poisson number at ``rate × cell area × 1 yr``, ``t0``
uniform in the year, peak r from Euclidean counts in the kind's range. So the members
alive at any mjd are a function of the sky position and ``sky_seed`` only: every frame of
a field, at any site, in any run with the same ``sky_seed``, sees the same supernovae.

Hosts. A supernova (and a kilonova) goes into a galaxy of its cell
(:func:`twin.imaging.catalog.cell_galaxies`, to i = :data:`HOST_FAINT_I`) whose i
magnitude fits its distance: the galaxy nearest in i to ``peak_r - M_peak + M_host``, with
``M_host ~ N(-21, 1)`` (SN hosts are roughly L* galaxies: SDSS-II SN Ia hosts have median
M_r ≈ -21, Lampeitl et al. 2010, ApJ 722, 566). A cell (0.04 deg²) holds few galaxies
brighter than i ≈ 17, so the brightest SNe share its brightest galaxies.

Offsets follow the host's disk light: radius ``Gamma(2) × h`` in the disk plane (the
exponential profile's radial distribution; ``h = hlr / 1.678``, so half of the SNe lie
within the half-light radius, as SNe trace light: Fruchter et al. 2006, Nature
441, 463), a random azimuth, projected with the disk's axis ratio and position angle. GRB
afterglows at z ~ 2 have hosts far fainter than the catalogue: hostless, uniform in the
cell. A cell without galaxies gets hostless SNe too.

Lifetime. A member is listed from ``t0`` until :func:`lookback_days` after it, when it is
:data:`FADED_MAG` below its peak in every band (a peak-16 SN is then fainter than 23).
"""

from __future__ import annotations

import functools
import math

import numpy as np
import pandas as pd

from twin.alerts.lightcurves import BANDS, LIGHT_CURVES, apparent_mag
from twin.alerts.population.keys import euclidean_mags, generator, member_source_id
from twin.alerts.population.spec import PopulationSpec
from twin.imaging.catalog import _Cell, cell_galaxies

YEAR_DAYS = 365.25
FADED_MAG = 7.0
HOST_FAINT_I = 24.0
"""Faintest host drawn. A host's i is the SN's peak − the SN's M + the host's M: an
M = −21 host of a peak-22 SN Ia (M −19.3) is i ≈ 20.3, of a peak-22 core collapse
(M −16.5) i ≈ 17.5, of a peak-22 kilonova (M −15.7) i ≈ 16.7; with the hosts' 1-mag
spread, 24 keeps all but the faintest few per cent."""
HOST_ABS_MAG_I = (-21.0, 1.0)  # mean, sigma
EXP_HLR_PER_SCALE = 1.678
"""Half-light radius of an exponential disk in scale lengths."""
HOSTLESS_CURVES = ("grb_afterglow",)

COLUMNS = ("pop_id", "pop_kind", "curve", "source_id", "ra_deg", "dec_deg", "t0_mjd",
           "peak_mag_r", "host_id", "host_hlr_arcsec", "host_q", "host_pa_deg",
           "offset_east_arcsec", "offset_north_arcsec")  # fmt: skip


def rate_and_range(population: PopulationSpec, kind: str) -> tuple[float, tuple[float, float]]:
    """Rate per deg² per year and the peak-r range of an explosive ``kind``."""
    return {
        "sn_ia": (population.sn_ia_per_deg2_yr, population.sn_ia_peak_mag_r),
        "sn_cc": (population.sn_cc_per_deg2_yr, population.sn_cc_peak_mag_r),
        "fast": (population.fast_per_deg2_yr, population.fast_peak_mag_r),
    }[kind]


@functools.cache
def curve_lookback_days(curve: str) -> float:
    """Days after t0 beyond which ``curve`` stays :data:`FADED_MAG` below peak in every band."""
    days = np.geomspace(1e-3, 3e3, 4000)
    brightest = np.min([apparent_mag(curve, band, days, 0.0) for band in BANDS], axis=0)
    bright = np.flatnonzero(brightest < FADED_MAG)
    return float(days[min(bright[-1] + 1, len(days) - 1)])


def lookback_days(kind: str) -> float:
    """Longest life of an explosive ``kind`` (its slowest light curve)."""
    curves = ("kilonova", "grb_afterglow") if kind == "fast" else (kind,)
    return max(curve_lookback_days(c) for c in curves)


def _empty() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object if c in ("pop_id", "pop_kind", "curve")
                                      else float) for c in COLUMNS})  # fmt: skip


def cell_explosions(cell: _Cell, year: int, kind: str, population: PopulationSpec,
                    sky_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Every explosion of ``kind`` in ``cell`` with t0 in year block ``year`` (COLUMNS)."""
    rate, peak_range = rate_and_range(population, kind)
    rng = generator(sky_seed, kind, cell.i_dec, cell.i_ra, year)
    n = int(rng.poisson(rate * cell.area_deg2))  # one year of explosions
    if n == 0:
        return _empty()
    # Fixed order and count of draws per member: a spec change elsewhere moves nothing.
    t0 = (year + rng.uniform(size=n)) * YEAR_DAYS
    peak = euclidean_mags(rng.uniform(size=n), peak_range)
    u_curve = rng.uniform(size=n)
    host_abs = rng.normal(HOST_ABS_MAG_I[0], HOST_ABS_MAG_I[1], n)
    radius_scale, azimuth = rng.gamma(2.0, size=n), rng.uniform(0.0, 2 * math.pi, n)
    sin_dec = rng.uniform(math.sin(math.radians(cell.dec_lo)),
                          math.sin(math.radians(cell.dec_hi)), n)  # fmt: skip
    ra_free = rng.uniform(cell.ra_lo, cell.ra_hi, n)
    if kind == "fast":
        curve = np.where(u_curve < population.kilonova_fraction, "kilonova", "grb_afterglow")
    else:
        curve = np.full(n, kind)
    cols = {
        "ra_deg": ra_free, "dec_deg": np.degrees(np.arcsin(sin_dec)),
        "host_id": np.full(n, -1, dtype=np.int64), "host_hlr_arcsec": np.full(n, np.nan),
        "host_q": np.full(n, np.nan), "host_pa_deg": np.full(n, np.nan),
        "offset_east_arcsec": np.full(n, np.nan), "offset_north_arcsec": np.full(n, np.nan),
    }  # fmt: skip
    hosted = np.flatnonzero(~np.isin(curve, HOSTLESS_CURVES))
    if len(hosted):
        m_peak = np.array([LIGHT_CURVES[c].peak_abs_mag_r for c in curve[hosted]])
        host_i = peak[hosted] - m_peak + host_abs[hosted]  # the host's i at the SN's distance
        placed = _in_hosts(cell, sky_seed, host_i, radius_scale[hosted], azimuth[hosted])
        for column, values in placed.items():
            cols[column][hosted] = values
    return pd.DataFrame({
        "pop_id": [f"{kind}/{cell.i_dec}/{cell.i_ra}/{year}/{k}" for k in range(n)],
        "pop_kind": kind, "curve": curve,
        "source_id": member_source_id(kind, (cell.i_dec << 16) | cell.i_ra,
                                      (year << 16) | np.arange(n)),
        "t0_mjd": t0, "peak_mag_r": peak, **cols,
    })[list(COLUMNS)]  # fmt: skip


@functools.lru_cache(maxsize=256)
def _hosts(i_dec: int, i_ra: int, sky_seed: int) -> pd.DataFrame:
    """The cell's candidate hosts, by i magnitude (cached: each kind and year asks again)."""
    galaxies = cell_galaxies(i_dec, i_ra, HOST_FAINT_I, sky_seed)
    if galaxies.empty:
        return galaxies
    return galaxies.sort_values("i_mag", kind="stable").reset_index(drop=True)


def _in_hosts(cell, sky_seed, host_i, radius_scale, azimuth) -> dict[str, np.ndarray]:
    """Host, position and offset of SNe whose hosts should have i magnitude ``host_i``: the
    cell's galaxy nearest in i (module docstring). Empty where the cell has no galaxy."""
    galaxies = _hosts(cell.i_dec, cell.i_ra, int(sky_seed))
    if galaxies.empty:
        return {}
    gal_i = galaxies["i_mag"].to_numpy()
    last = len(gal_i) - 1
    right = np.clip(np.searchsorted(gal_i, host_i), 0, last)
    left = np.maximum(right - 1, 0)
    pick = np.where(np.abs(gal_i[left] - host_i) <= np.abs(gal_i[right] - host_i), left, right)
    host = galaxies.iloc[pick]
    hlr = host["hlr_disk_arcsec"].to_numpy()
    q, pa_deg = host["q_disk"].to_numpy(), host["pa_deg"].to_numpy()
    pa = np.radians(pa_deg)
    r = radius_scale * hlr / EXP_HLR_PER_SCALE
    major, minor = r * np.cos(azimuth), q * r * np.sin(azimuth)
    east = major * np.sin(pa) + minor * np.cos(pa)  # major axis at PA (east of north)
    north = major * np.cos(pa) - minor * np.sin(pa)
    dec = host["dec_deg"].to_numpy() + north / 3600.0
    cos_dec = np.maximum(np.cos(np.radians(dec)), 1e-6)
    return {
        "ra_deg": (host["ra_deg"].to_numpy() + east / 3600.0 / cos_dec) % 360.0,
        "dec_deg": dec, "host_id": host["source_id"].to_numpy(), "host_hlr_arcsec": hlr,
        "host_q": q, "host_pa_deg": pa_deg, "offset_east_arcsec": east,
        "offset_north_arcsec": north,
    }  # fmt: skip


def explosions(cells, mjd0: float, mjd1: float, kinds, population: PopulationSpec,
               sky_seed: int = 0) -> pd.DataFrame:  # fmt: skip
    """Explosions in ``cells`` alive at some time in [mjd0, mjd1] (t0 <= mjd1, not faded)."""
    parts = []
    for kind in kinds:
        if rate_and_range(population, kind)[0] <= 0.0:
            continue
        life = lookback_days(kind)
        first, last = math.floor((mjd0 - life) / YEAR_DAYS), math.floor(mjd1 / YEAR_DAYS)
        for cell in cells:
            for year in range(max(first, 0), last + 1):
                part = cell_explosions(cell, year, kind, population, sky_seed)
                if len(part):
                    alive = (part["t0_mjd"] <= mjd1) & (part["t0_mjd"] + life >= mjd0)
                    parts.append(part[alive])
    parts = [p for p in parts if len(p)]
    if not parts:
        return _empty()
    table = pd.concat(parts, ignore_index=True)
    return table.astype({"host_id": np.int64, "source_id": np.int64})


def explosion_mags(table: pd.DataFrame, band: str, mjd: float) -> np.ndarray:
    """Apparent magnitude in ``band`` at ``mjd`` of each row (``+inf`` before t0)."""
    out = np.full(len(table), np.inf)
    curve = table["curve"].to_numpy()
    for name in np.unique(curve):
        rows = curve == name
        out[rows] = apparent_mag(name, band, mjd - table["t0_mjd"].to_numpy()[rows],
                                 table["peak_mag_r"].to_numpy()[rows])  # fmt: skip
    return out
