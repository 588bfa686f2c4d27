"""Calendar quantities of MJD (UTC) times, vectorised, without astropy in the hot path.

The weather needs three clocks: the calendar month (the climate's clear fraction is
tabulated per month), the phase of the year (seasonal temperature) and the local solar
hour (diurnal cycles follow the Sun, not the time zone). All three are exact enough from
plain arithmetic on MJD; an almanac would only add the equation of time (< 17 min).
"""

from __future__ import annotations

import numpy as np

MJD_UNIX_EPOCH = 40587.0
"""MJD of 1970-01-01T00:00 UTC, the numpy datetime64 epoch."""

MJD_J2000 = 51544.5
"""MJD of 2000-01-01T12:00, a reference for the phase of the year."""

TROPICAL_YEAR_DAYS = 365.2422


def calendar_month(mjd: np.ndarray) -> np.ndarray:
    """Calendar month 1..12 (UTC) of each MJD."""
    seconds = np.floor((np.asarray(mjd, dtype=float) - MJD_UNIX_EPOCH) * 86400.0)
    months = seconds.astype("int64").astype("datetime64[s]").astype("datetime64[M]")
    return months.astype("int64") % 12 + 1


def year_phase(mjd: np.ndarray) -> np.ndarray:
    """Fraction of the tropical year elapsed since 1 January (0..1)."""
    return np.mod((np.asarray(mjd, dtype=float) - MJD_J2000 + 0.5) / TROPICAL_YEAR_DAYS, 1.0)


def local_solar_hour(mjd: np.ndarray, lon_deg: float) -> np.ndarray:
    """Local mean solar hour 0..24: UTC hour + east longitude / 15."""
    utc_hour = np.mod(np.asarray(mjd, dtype=float), 1.0) * 24.0
    return np.mod(utc_hour + lon_deg / 15.0, 24.0)
