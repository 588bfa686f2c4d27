"""The almanac of one site over a span of nights.

Sun and Moon positions come from astropy (:mod:`twin.astro.ephemeris`, hourly and
shared by all sites) and are turned into this site's altitude and azimuth on a regular
grid (5 minutes by default) with the fast Earth-orientation path, the Moon with its
topocentric parallax. Twilight boundaries are the grid's crossings of the sun-altitude
thresholds, refined by linear interpolation (the sun moves < 1.3 deg in 5 minutes, so a
crossing is good to a few seconds); tests compare them with astroplan.

Nights are labelled by the local date of their evening: night ``2027-03-14`` at a site
runs from local mean noon on the 14th to local mean noon on the 15th.
"""

from __future__ import annotations

from dataclasses import dataclass

import astropy.units as u
import numpy as np
from astropy.coordinates import EarthLocation
from astropy.time import Time

from twin.astro.ephemeris import ephemeris_for
from twin.astro.orientation import EarthOrientation, SiteFrame
from twin.world.sites import Site

# Sun altitude thresholds (deg) for each boundary; -0.833 deg: refraction + solar radius.
TWILIGHT_DEG = {"sun": -0.833, "civil": -6.0, "nautical": -12.0, "astronomical": -18.0}

SHARED_ORIENTATION = EarthOrientation()


def site_location(site: Site) -> EarthLocation:
    return EarthLocation.from_geodetic(
        site.lon_deg * u.deg, site.lat_deg * u.deg, site.height_m * u.m
    )


def local_noon_mjd(site: Site, date_mjd: float) -> float:
    """UTC MJD of local mean solar noon on the civil date starting at ``date_mjd``.

    Correct only for longitudes in (-180, 180]: at 350 deg the same meridian as -10 deg
    would give the noon of the day before. :class:`~twin.world.sites.Site` wraps the
    longitude when it is validated, so every site arrives here in range.
    """
    return float(np.floor(date_mjd)) + 0.5 - site.lon_deg / 360.0


@dataclass(frozen=True)
class NightSummary:
    """What a night at a site offers: its boundaries (UTC MJD) and its moon."""

    site: str
    night_date: str
    sunset_mjd: float
    sunrise_mjd: float
    evening_twilight_mjd: dict[str, float]
    morning_twilight_mjd: dict[str, float]
    moon_illum_midnight: float
    moon_up_fraction: float

    @property
    def astronomical_night_h(self) -> float:
        start = self.evening_twilight_mjd["astronomical"]
        end = self.morning_twilight_mjd["astronomical"]
        return max(0.0, (end - start) * 24.0) if np.isfinite(start + end) else 0.0


class Almanac:
    """Sun, moon and sidereal time at one site on a regular grid covering ``days`` nights."""

    def __init__(self, site: Site, start_mjd: float, days: int, step_min: float = 5.0,
                 orientation: EarthOrientation | None = None) -> None:  # fmt: skip
        if days < 1:
            raise ValueError(f"days must be >= 1, got {days}")
        self.site = site
        self.frame = SiteFrame(site.lat_deg, site.lon_deg, site.height_m,
                               orientation or SHARED_ORIENTATION)  # fmt: skip
        self.start_mjd = local_noon_mjd(site, start_mjd)
        self.days = int(days)
        self.step_d = step_min / 1440.0
        self.per_night = round(1.0 / self.step_d)
        self.mjd = self.start_mjd + np.arange(self.days * self.per_night + 1) * self.step_d
        self.ephemeris = ephemeris_for(self.mjd[0], self.mjd[-1])
        sun_alt, sun_az, _ = self.frame.altaz(
            self.ephemeris.sun(self.mjd), self.mjd, aberrate=False
        )
        moon_alt, moon_az, _ = self.frame.altaz(
            self.ephemeris.moon(self.mjd), self.mjd, aberrate=False, topocentric=True
        )
        self.sun_alt_deg_grid, self.moon_alt_deg_grid = sun_alt, moon_alt
        self._sun_enu, self._moon_enu = enu_vectors(sun_alt, sun_az), enu_vectors(moon_alt, moon_az)
        self.moon_illum_grid = self.ephemeris.moon_illumination(self.mjd)

    # -- interpolation -------------------------------------------------------------
    def check_span(self, mjd: np.ndarray | float) -> np.ndarray:
        mjd = np.asarray(mjd, dtype=float)
        if np.any(mjd < self.mjd[0] - 1e-9) or np.any(mjd > self.mjd[-1] + 1e-9):
            raise ValueError(
                f"time outside the almanac of {self.site.name}: MJD {self.mjd[0]:.4f}.."
                f"{self.mjd[-1]:.4f}, asked {np.min(mjd):.4f}..{np.max(mjd):.4f}"
            )
        return mjd

    def _interp(self, mjd: np.ndarray | float, grid: np.ndarray) -> np.ndarray:
        return np.interp(self.check_span(mjd), self.mjd, grid)

    def _unit_vectors(self, mjd: np.ndarray | float, vec: np.ndarray) -> np.ndarray:
        """Interpolated east-north-up unit vectors: on the arc after renormalising."""
        out = np.stack([self._interp(mjd, vec[:, k]) for k in range(3)], axis=-1)
        return out / np.linalg.norm(out, axis=-1, keepdims=True)

    def sun_alt_deg(self, mjd: np.ndarray | float) -> np.ndarray:
        return self._interp(mjd, self.sun_alt_deg_grid)

    def moon_alt_deg(self, mjd: np.ndarray | float) -> np.ndarray:
        return self._interp(mjd, self.moon_alt_deg_grid)

    def moon_illum(self, mjd: np.ndarray | float) -> np.ndarray:
        return self._interp(mjd, self.moon_illum_grid)

    def sun_enu(self, mjd: np.ndarray | float) -> np.ndarray:
        return self._unit_vectors(mjd, self._sun_enu)

    def moon_enu(self, mjd: np.ndarray | float) -> np.ndarray:
        return self._unit_vectors(mjd, self._moon_enu)

    def lst_hours(self, mjd: np.ndarray | float) -> np.ndarray:
        """Local apparent sidereal time, hours in [0, 24)."""
        mjd = self.check_span(mjd)
        return np.mod(self.ephemeris.gast_hours(mjd) + self.site.lon_deg / 15.0, 24.0)

    def is_night(self, mjd: np.ndarray | float, twilight: str = "nautical") -> np.ndarray:
        """True where the sun is below the named twilight's altitude."""
        return self.sun_alt_deg(mjd) < TWILIGHT_DEG[twilight]

    # -- nights --------------------------------------------------------------------
    def night(self, index: int) -> NightSummary:
        """Boundaries and moon of the ``index``-th night of the span (0 = first)."""
        if not 0 <= index < self.days:
            raise IndexError(f"night {index} outside 0..{self.days - 1}")
        sl = slice(index * self.per_night, (index + 1) * self.per_night + 1)
        mjd, alt = self.mjd[sl], self.sun_alt_deg_grid[sl]
        evening = {k: _crossing(mjd, alt, v, falling=True) for k, v in TWILIGHT_DEG.items()}
        morning = {k: _crossing(mjd, alt, v, falling=False) for k, v in TWILIGHT_DEG.items()}
        dark = alt < TWILIGHT_DEG["sun"]
        moon_up = self.moon_alt_deg_grid[sl][dark] > 0
        midnight = 0.5 * (mjd[0] + mjd[-1])
        date = Time(np.floor(mjd[0] + self.site.lon_deg / 360.0), format="mjd").to_value(
            "iso", "date"
        )
        return NightSummary(
            site=self.site.name,
            night_date=date,
            sunset_mjd=evening["sun"],
            sunrise_mjd=morning["sun"],
            evening_twilight_mjd={k: v for k, v in evening.items() if k != "sun"},
            morning_twilight_mjd={k: v for k, v in morning.items() if k != "sun"},
            moon_illum_midnight=float(self.moon_illum(midnight)),
            moon_up_fraction=float(moon_up.mean()) if dark.any() else 0.0,
        )

    def nights(self) -> list[NightSummary]:
        return [self.night(i) for i in range(self.days)]


def enu_vectors(alt_deg: np.ndarray, az_deg: np.ndarray) -> np.ndarray:
    """East-north-up unit vectors for altitude/azimuth (azimuth from north through east)."""
    alt, az = np.radians(alt_deg), np.radians(az_deg)
    ca = np.cos(alt)
    return np.stack([ca * np.sin(az), ca * np.cos(az), np.sin(alt)], axis=-1)


def _crossing(mjd: np.ndarray, alt: np.ndarray, level: float, falling: bool) -> float:
    """First time the sun crosses ``level`` downwards (or upwards); NaN if it never does."""
    below = alt < level
    if falling:
        edges = np.flatnonzero(~below[:-1] & below[1:])
    else:
        edges = np.flatnonzero(below[:-1] & ~below[1:])
    if edges.size == 0:
        return float("nan")
    i = edges[0]
    frac = (level - alt[i]) / (alt[i + 1] - alt[i])
    return float(mjd[i] + frac * (mjd[i + 1] - mjd[i]))
