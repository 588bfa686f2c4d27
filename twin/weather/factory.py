"""Pick a weather source by name, as a scenario file does (``weather: stochastic``)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from twin.errors import ConfigError
from twin.weather.ideal import IdealWeather
from twin.weather.replay import ReplayWeather
from twin.weather.state import WeatherSource
from twin.weather.stochastic import StochasticWeather
from twin.world.sites import SITES, Site

WEATHER_KINDS = ("stochastic", "ideal", "replay")


def make_weather(
    kind: str,
    sites: Sequence[Site],
    start_mjd: float,
    days: float,
    seed: int | np.random.SeedSequence,
    log_path: str | Path | None = None,
) -> WeatherSource:
    """A weather source of ``kind``; ``replay`` needs ``log_path`` (a CSV log)."""
    if kind == "stochastic":
        return StochasticWeather(sites, start_mjd, days, seed)
    if kind == "ideal":
        return IdealWeather(sites)
    if kind == "replay":
        if log_path is None:
            raise ConfigError("weather", "log_path", "kind 'replay' needs the path of a CSV log")
        # A log may hold rows of other built-in sites too (a shared archive), as the
        # scenario check at load time allows (twin.scenario.check_replay_log).
        known = {**SITES, **{site.name: site for site in sites}}
        return ReplayWeather.from_csv(log_path, list(known.values()))
    raise ConfigError(
        "weather", "kind", f"{kind!r} is not allowed; allowed: {', '.join(WEATHER_KINDS)}"
    )
