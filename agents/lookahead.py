"""What a candidate could get later: a better airmass tonight here, or at another site of
the network in its next night, where the forecast says the sky will be clear.

Greedy ranks what a telescope can do *now*. A target rising toward transit, or one that
another site will see high in a clear sky a few hours from now, is worth less now than
its quality says, because taking it now uses it up (its cadence keeps it away) at a
worse airmass. These two numbers per candidate are what the scorer's look-ahead weights
multiply (:mod:`agents.scorer`); they use the site geometry of the run's World (latitude,
longitude, night windows: known in advance) and the forecast in the Conditions (issued
now, never the truth).

Geometry: the target's declination comes from its altitude, azimuth and this site's
latitude; its hour angle at another site at time t is this hour angle plus the longitude
difference plus the sidereal time elapsed, so no catalogue lookup is needed. Airmass is
the plane-parallel sec(z) (a feature, not photometry), counted only at or below
``max_airmass``.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from twin.ops.conditions import Conditions
from twin.ops.world import World

SIDEREAL_PER_SOLAR = 1.002737909
"""Sidereal hours per solar hour."""
LOOKAHEAD_FEATURES = ("later_here", "later_elsewhere")
"""Airmass now minus the best airmass later tonight here / at another site in its next
night, clipped to [0, 2] (0: nothing better)."""


class Lookahead:
    """Computes :data:`LOOKAHEAD_FEATURES` for the feasible candidates of a decision.

    | name             | default | meaning                                              |
    |------------------|---------|------------------------------------------------------|
    | world            |         | the run's World: sites' coordinates and night windows |
    | step_min         | 30      | time grid of the look-ahead                           |
    | horizon_h        | 24      | how far ahead other sites' nights are considered      |
    | min_transparency | 0.6     | forecast transparency for a later time to count       |
    | max_airmass      | 2.0     | worse airmass never counts as an opportunity          |
    """

    def __init__(self, world: World, step_min: float = 30.0, horizon_h: float = 24.0,
                 min_transparency: float = 0.6, max_airmass: float = 2.0) -> None:  # fmt: skip
        self.step_d = step_min / 1440.0
        self.horizon_d = horizon_h / 24.0
        self.min_transparency = min_transparency
        self.max_airmass = max_airmass
        self.sites = [sw.site.name for sw in world.sites]
        self.lat = np.radians([sw.site.lat_deg for sw in world.sites])
        self.lon_h = np.array([sw.site.lon_deg / 15.0 for sw in world.sites])
        # Each site's night starts and ends, in order (noon-to-noon windows): bisected.
        self.starts = [[n.start_mjd for n in sw.nights] for sw in world.sites]
        self.ends = [[n.end_mjd for n in sw.nights] for sw in world.sites]
        self.site_of = {tw.name: self.sites.index(tw.site.site.name) for tw in world.telescopes}

    def features(self, conditions: Conditions, feasible: np.ndarray) -> np.ndarray:
        """(len(feasible), 2): later_here, later_elsewhere of the ``feasible`` rows."""
        c = conditions.candidates
        here = self.site_of[conditions.telescope.name]
        sin_dec = self.sin_dec(here, c.alt_deg[feasible], c.az_deg[feasible])
        hour_angle_h = c.hour_angle_h[feasible]
        airmass_now = c.airmass[feasible]
        now = conditions.mjd
        out = np.zeros((feasible.size, 2))
        end = conditions.site.night_end_mjd
        if math.isfinite(end) and end > now + self.step_d:
            best = self._best_airmass(conditions, here, here, now, now, end, sin_dec, hour_angle_h)
            out[:, 0] = _gain(airmass_now, best)
        best_elsewhere = np.full(feasible.size, np.inf)
        for site in range(len(self.sites)):
            if site == here:
                continue
            for window in self._nights_ahead(site, now):
                best = self._best_airmass(conditions, here, site, now, *window, sin_dec,
                                          hour_angle_h)  # fmt: skip
                best_elsewhere = np.minimum(best_elsewhere, best)
        out[:, 1] = _gain(airmass_now, best_elsewhere)
        return out

    def _nights_ahead(self, site: int, now: float) -> list[tuple[float, float]]:
        """The parts of the site's nights between the next grid step and the horizon (its
        current night's rest and the next one can both fall inside 24 h)."""
        first, last = now + self.step_d, now + self.horizon_d
        starts, ends = self.starts[site], self.ends[site]
        out = []
        for k in range(bisect.bisect_right(ends, first), len(ends)):  # nights ending later
            if starts[k] >= last:
                break
            out.append((max(starts[k], first), min(ends[k], last)))
        return out

    def _best_airmass(self, conditions: Conditions, here: int, site: int, now: float,
                      start: float, end: float, sin_dec: np.ndarray,
                      hour_angle_h: np.ndarray) -> np.ndarray:  # fmt: skip
        """Per row, the least airmass at ``site`` on the grid from ``start`` to ``end``
        where the forecast transparency is at least ``min_transparency`` (inf: none)."""
        times = np.arange(max(start, now + self.step_d), end, self.step_d)
        if times.size == 0:
            return np.full(sin_dec.size, np.inf)
        clear = conditions.forecast(self.sites[site], times, fields=("transparency",))[
            "transparency"
        ]
        times = times[clear >= self.min_transparency]
        if times.size == 0:
            return np.full(sin_dec.size, np.inf)
        sin_alt = self.sin_alt(here, site, now, times, sin_dec, hour_angle_h)
        airmass = np.where(sin_alt > 1.0 / self.max_airmass, 1.0 / np.maximum(sin_alt, 1e-9),
                           np.inf)  # fmt: skip
        return airmass.min(axis=1)

    def sin_alt(self, here: int, site: int, now: float, times: np.ndarray,
                sin_dec: np.ndarray, hour_angle_h: np.ndarray) -> np.ndarray:  # fmt: skip
        """(rows, times) sine of the altitude at ``site`` of targets with declination
        ``arcsin(sin_dec)`` at hour angle ``hour_angle_h`` at site ``here`` at ``now``."""
        shift_h = self.lon_h[site] - self.lon_h[here]
        ha = hour_angle_h[:, None] + shift_h + (times[None, :] - now) * 24.0 * SIDEREAL_PER_SOLAR
        lat = self.lat[site]
        cos_dec = np.sqrt(1.0 - sin_dec**2)
        return np.sin(lat) * sin_dec[:, None] + np.cos(lat) * cos_dec[:, None] * np.cos(
            np.radians(ha * 15.0)
        )

    def sin_dec(self, here: int, alt_deg: np.ndarray, az_deg: np.ndarray) -> np.ndarray:
        """Sine of the declination of targets at ``alt_deg``, ``az_deg`` (from north
        through east) seen from site ``here``."""
        alt, az, lat = np.radians(alt_deg), np.radians(az_deg), self.lat[here]
        return np.clip(np.sin(lat) * np.sin(alt) + np.cos(lat) * np.cos(alt) * np.cos(az),
                       -1.0, 1.0)  # fmt: skip


def _gain(airmass_now: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Airmass now minus ``best`` where finite, clipped to [0, 2]."""
    return np.where(np.isfinite(best), np.clip(airmass_now - best, 0.0, 2.0), 0.0)
