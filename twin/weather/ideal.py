"""Perfect weather: always clear, median seeing. The baseline against which weather costs.

A planner asks "what would this network do if the sky never closed?"; a test wants
conditions that cannot be the reason it failed. Both use this source: cloud cover 0,
transparency 1, each site's median seeing, median humidity and wind and mean temperature,
at any time (there is no span to fall out of).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from twin.errors import ConfigError
from twin.weather.state import WEATHER_FIELDS, WeatherState, state_at
from twin.world.sites import Site


class IdealWeather:
    """Clear, calm, median-seeing weather at every site and time."""

    def __init__(self, sites: Sequence[Site]) -> None:
        self._values = {site.name: _ideal_values(site) for site in sites}

    def sample(self, site_name: str, mjd: np.ndarray) -> dict[str, np.ndarray]:
        values = self._site_values(site_name)
        shape = np.shape(mjd)
        return {name: np.full(shape, values[name]) for name in WEATHER_FIELDS}

    def at(self, site_name: str, mjd: float) -> WeatherState:
        return state_at(self.sample(site_name, np.array([mjd], dtype=float)))

    def _site_values(self, site_name: str) -> dict[str, float]:
        try:
            return self._values[site_name]
        except KeyError:
            allowed = ", ".join(self._values)
            raise ConfigError(
                "IdealWeather", "site", f"unknown site {site_name!r}; this run has: {allowed}"
            ) from None


def _ideal_values(site: Site) -> dict[str, float]:
    climate = site.climate
    return {
        "cloud_cover": 0.0,
        "transparency": 1.0,
        "seeing_fwhm_arcsec": climate.seeing_median_arcsec,
        "humidity_pct": climate.humidity_median_pct,
        "wind_m_s": climate.wind_median_m_s,
        "temperature_c": climate.temperature_mean_c,
    }
