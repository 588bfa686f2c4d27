"""Night windows: when each site's sun is below the observing limit.

Night ``i`` of a run is the one that starts on the evening of the scenario's start date
plus ``i`` days, local time; its window runs from the evening crossing of the limit
(nautical twilight, -12 deg, by default) to the morning one. Found on the almanac's
5-minute sun-altitude grid with linear interpolation (well under a minute of error).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.astro.almanac import Almanac


@dataclass(frozen=True)
class NightWindow:
    site: str
    night: int
    start_mjd: float
    end_mjd: float

    @property
    def hours(self) -> float:
        return (self.end_mjd - self.start_mjd) * 24.0


def night_windows(almanac: Almanac, nights: int, max_sun_alt_deg: float, first: int = 0
                  ) -> list[NightWindow]:  # fmt: skip
    """Windows of nights ``first .. first + nights - 1`` of the almanac (noon to noon);
    a night whose sun never goes below the limit (polar summer) has no window."""
    out = []
    per = almanac.per_night
    for i in range(first, first + nights):
        sl = slice(i * per, (i + 1) * per + 1)
        mjd, alt = almanac.mjd[sl], almanac.sun_alt_deg_grid[sl]
        below = alt < max_sun_alt_deg
        if not below.any():
            continue
        k0 = int(np.argmax(below))
        k1 = len(below) - 1 - int(np.argmax(below[::-1]))
        start = _cross(mjd, alt, k0 - 1, max_sun_alt_deg) if k0 > 0 else mjd[0]
        end = _cross(mjd, alt, k1, max_sun_alt_deg) if k1 < len(below) - 1 else mjd[-1]
        out.append(NightWindow(almanac.site.name, i - first, float(start), float(end)))
    return out


def _cross(mjd: np.ndarray, alt: np.ndarray, k: int, level: float) -> float:
    """Time between grid points k and k+1 where the altitude passes ``level``."""
    a0, a1 = alt[k], alt[k + 1]
    frac = (level - a0) / (a1 - a0) if a1 != a0 else 0.0
    return float(mjd[k] + frac * (mjd[k + 1] - mjd[k]))
