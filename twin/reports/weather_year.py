"""`skytwin weather`: long weather traces per site, checked against the site's climate.

A planner's first question about a site is "how many usable nights, how good the
seeing"; this writes the traces (Parquet or CSV), a plot, and a table comparing what
the simulation produced at night with what the site's climate says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from twin.astro.almanac import Almanac
from twin.errors import ConfigError
from twin.scenario import load_scenario
from twin.weather import (
    StochasticWeather,
    climate_summary,
    make_weather,
    plot_weather,
    write_traces,
)
from twin.weather.dome import DomeRules
from twin.world.sites import Site, get_site


def resolve_sites(target: str) -> tuple[list[Site], dict]:
    """Sites (and scenario settings) from a scenario file or comma-separated site names."""
    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        scenario = load_scenario(target)
        settings = {"seed": scenario.seed, "start_mjd": scenario.start_mjd,
                    "weather": scenario.weather}  # fmt: skip
        return scenario.network, settings
    names = [n.strip() for n in target.split(",") if n.strip()]
    if not names:
        raise ConfigError("command line", "target", "give a scenario file or site names")
    return [get_site(n, "command line") for n in names], {}


def weather_year(target: str, days: int, out_dir: Path, seed: int | None = None,
                 start_mjd: float | None = None, fmt: str = "parquet") -> pd.DataFrame:  # fmt: skip
    """Simulate ``days`` of weather for the target's sites; write traces, plot and summary."""
    if days < 1:
        raise ConfigError("command line", "--days", f"{days}; allowed: >= 1")
    sites, settings = resolve_sites(target)
    seed = seed if seed is not None else settings.get("seed", 0)
    start = start_mjd if start_mjd is not None else settings.get("start_mjd", 61041.0)
    spec = settings.get("weather")
    rules = spec.dome if spec else DomeRules()
    if spec is None or spec.model == "stochastic":
        length = spec.correlation_length_km if spec else 500.0
        weather = StochasticWeather(sites, start, days, seed, correlation_length_km=length,
                                    dome_rules=rules)  # fmt: skip
        times = None
    else:
        weather = make_weather(spec.model, sites, start, days, seed, log_path=spec.log)
        times = start + np.arange(days * 144) / 144.0
    almanacs = {s.name: Almanac(s, start - 1.0, days + 2, step_min=10.0)
                for s in tqdm(sites, desc="almanac", unit="site")}  # fmt: skip

    def night_mask(site: Site, mjd: np.ndarray) -> np.ndarray:
        return almanacs[site.name].is_night(mjd, "nautical")

    summary = climate_summary(weather, sites, night_mask=night_mask, mjd=times, dome_rules=rules)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame = weather.to_frame() if hasattr(weather, "to_frame") else _frame(weather, sites, times)
    write_traces(frame, out_dir, fmt=fmt)
    plot_weather(frame, out_dir / "weather.png", sites)
    summary.to_csv(out_dir / "climate_summary.csv", index=False)
    return summary


def _frame(weather, sites: list[Site], times: np.ndarray) -> pd.DataFrame:
    parts = []
    for site in sites:
        part = pd.DataFrame(weather.sample(site.name, times))
        part.insert(0, "site", site.name)
        part.insert(0, "mjd", times)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)
