"""The hot path: altitude, azimuth, airmass, hour angle, moon and sun separation.

For many targets at many times at one site, in plain numpy on cached per-day Earth
orientation (:mod:`twin.astro.orientation`) and the site's :class:`~twin.astro.almanac.Almanac`.
Agrees with astropy's AltAz (refraction off) to about an arcsecond and is two orders of
magnitude faster (``benchmarks/visibility.py``).

Inputs broadcast like numpy: ``ra_deg[:, None]`` against ``mjd[None, :]`` gives a
(targets x times) grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.astro.almanac import SHARED_ORIENTATION, Almanac, enu_vectors
from twin.astro.orientation import EarthOrientation, unit_vectors
from twin.physics.extinction import airmass_from_alt
from twin.world.sites import Site


@dataclass(frozen=True)
class Geometry:
    """Where targets stand at given times, and whether the site could observe them."""

    alt_deg: np.ndarray
    az_deg: np.ndarray
    airmass: np.ndarray
    hour_angle_h: np.ndarray
    moon_sep_deg: np.ndarray
    sun_sep_deg: np.ndarray
    moon_alt_deg: np.ndarray
    sun_alt_deg: np.ndarray
    moon_illum: np.ndarray
    above_horizon: np.ndarray  # above the site's horizon mask


class SiteVisibility:
    """Vectorised visibility for one site over the span of its almanac."""

    def __init__(self, site: Site, start_mjd: float, days: int, step_min: float = 5.0,
                 orientation: EarthOrientation | None = None) -> None:  # fmt: skip
        self.site = site
        self.almanac = Almanac(site, start_mjd, days, step_min, orientation or SHARED_ORIENTATION)
        self.frame = self.almanac.frame

    def altaz(
        self, ra_deg: np.ndarray, dec_deg: np.ndarray, mjd: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(alt_deg, az_deg, hour_angle_h) of ICRS directions; needs no almanac span."""
        ra_deg, dec_deg, mjd = np.broadcast_arrays(
            np.asarray(ra_deg, float), np.asarray(dec_deg, float), np.asarray(mjd, float)
        )
        return self.frame.altaz(unit_vectors(ra_deg, dec_deg), mjd)

    def prepare(self, ra_deg: np.ndarray, dec_deg: np.ndarray, mjd_ref: float) -> tuple:
        """Prepare a fixed set of targets for many calls within a night (see altaz_prepared)."""
        return self.frame.prepare(
            unit_vectors(np.asarray(ra_deg, float), np.asarray(dec_deg, float)), mjd_ref
        )

    def altaz_prepared(self, prepared: tuple, mjd: np.ndarray | float) -> tuple:
        """(alt_deg, az_deg, hour_angle_h) of prepared targets: the scheduler's hot path."""
        return self.frame.altaz_prepared(prepared, mjd)

    def observe(self, ra_deg: np.ndarray, dec_deg: np.ndarray, mjd: np.ndarray) -> Geometry:
        """Full geometry of targets at times (within the almanac's span)."""
        alt, az, ha_h = self.altaz(ra_deg, dec_deg, mjd)
        # Sun and moon depend on time only: interpolate on the times as given (one value
        # per decision for K candidates), then broadcast against the targets.
        mjd = np.asarray(mjd, float)
        moon = np.broadcast_to(self.almanac.moon_enu(mjd), (*alt.shape, 3))
        sun = np.broadcast_to(self.almanac.sun_enu(mjd), (*alt.shape, 3))
        target = enu_vectors(alt, az)
        return Geometry(
            alt_deg=alt,
            az_deg=az,
            airmass=airmass_from_alt(alt),
            hour_angle_h=ha_h,
            moon_sep_deg=_angle_deg(target, moon),
            sun_sep_deg=_angle_deg(target, sun),
            moon_alt_deg=np.degrees(np.arcsin(np.clip(moon[..., 2], -1, 1))),
            sun_alt_deg=np.degrees(np.arcsin(np.clip(sun[..., 2], -1, 1))),
            moon_illum=np.broadcast_to(self.almanac.moon_illum(mjd), alt.shape),
            above_horizon=alt >= self.site.horizon_min_alt_deg(az),
        )


def _angle_deg(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Angle between unit vectors, robust near 0 and 180 deg (atan2 of cross and dot)."""
    cross = np.linalg.norm(np.cross(a, b), axis=-1)
    return np.degrees(np.arctan2(cross, np.sum(a * b, axis=-1)))
