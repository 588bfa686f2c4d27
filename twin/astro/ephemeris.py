"""Sun and Moon positions, geocentric, from astropy on an hourly grid shared by all sites.

astropy's ``get_body`` and AltAz transform cost ~0.7 ms per time step, so a year at
5-minute steps for 8 sites would take minutes. The geocentric positions do not depend
on the site, and they are smooth: linear interpolation of the Moon's geocentric
position over one hour errs by ~4 km of 384,000 km (2"). So we ask astropy once per
span for hourly GCRS positions and distances and interpolate; each site then turns
them into alt/az (with the Moon's parallax) on its own grid (:mod:`twin.astro.almanac`).
"""

from __future__ import annotations

import numpy as np
from astropy.coordinates import get_body
from astropy.time import Time

_STEP_D = 1.0 / 24.0


class BodyEphemeris:
    """Hourly geocentric (GCRS) positions of the Sun and Moon, in au, over a span."""

    def __init__(self, start_mjd: float, end_mjd: float) -> None:
        self.start_mjd = float(np.floor(start_mjd)) - _STEP_D
        n = int(np.ceil((end_mjd - self.start_mjd) / _STEP_D)) + 2
        self.mjd = self.start_mjd + np.arange(n) * _STEP_D
        times = Time(self.mjd, format="mjd", scale="utc")
        self.sun_au = get_body("sun", times).cartesian.xyz.to_value("au").T
        self.moon_au = get_body("moon", times).cartesian.xyz.to_value("au").T
        gast = times.sidereal_time("apparent", "greenwich").hour
        self._gast_unwrapped_h = np.unwrap(gast * (np.pi / 12.0)) * (12.0 / np.pi)

    def covers(self, start_mjd: float, end_mjd: float) -> bool:
        return self.mjd[0] <= start_mjd and end_mjd <= self.mjd[-1]

    def check_span(self, mjd: np.ndarray) -> np.ndarray:
        mjd = np.asarray(mjd, dtype=float)
        if mjd.size and (mjd.min() < self.mjd[0] or mjd.max() > self.mjd[-1]):
            raise ValueError(f"time outside the ephemeris span MJD {self.mjd[0]}..{self.mjd[-1]}")
        return mjd

    def _interp(self, mjd: np.ndarray, xyz: np.ndarray) -> np.ndarray:
        mjd = self.check_span(mjd)
        return np.stack([np.interp(mjd, self.mjd, xyz[:, k]) for k in range(3)], axis=-1)

    def sun(self, mjd: np.ndarray) -> np.ndarray:
        return self._interp(mjd, self.sun_au)

    def moon(self, mjd: np.ndarray) -> np.ndarray:
        return self._interp(mjd, self.moon_au)

    def gast_hours(self, mjd: np.ndarray) -> np.ndarray:
        """Greenwich apparent sidereal time, hours, unwrapped (add longitude, then mod 24)."""
        return np.interp(self.check_span(mjd), self.mjd, self._gast_unwrapped_h)

    def moon_illumination(self, mjd: np.ndarray) -> np.ndarray:
        """Illuminated fraction, from the Sun-Moon elongation (as astroplan computes it)."""
        sun, moon = self.sun(mjd), self.moon(mjd)
        r_sun, r_moon = np.linalg.norm(sun, axis=-1), np.linalg.norm(moon, axis=-1)
        cos_elong = np.sum(sun * moon, axis=-1) / (r_sun * r_moon)
        elong = np.arccos(np.clip(cos_elong, -1, 1))
        phase_angle = np.arctan2(r_sun * np.sin(elong), r_moon - r_sun * np.cos(elong))
        return (1.0 + np.cos(phase_angle)) / 2.0


_CACHE: list[BodyEphemeris] = []


def ephemeris_for(start_mjd: float, end_mjd: float) -> BodyEphemeris:
    """A cached ephemeris covering the span (sites of one run share a single one)."""
    for eph in _CACHE:
        if eph.covers(start_mjd, end_mjd):
            return eph
    eph = BodyEphemeris(start_mjd - 1.0, end_mjd + 1.0)
    _CACHE.append(eph)
    del _CACHE[:-4]
    return eph
