"""Everything a run needs before the first SimPy step, built from a validated Scenario.

Why up front: weather, dome closures, failures, link outages and alerts are drawn once
from their own children of the run's ``SeedSequence``, so the same seed gives the same
world whatever the scheduler does, and two policies are compared on the very same
nights. Only the schedule of observations depends on the policy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twin.alerts.stream import Alert, generate_alerts
from twin.astro.visibility import SiteVisibility
from twin.equipment import EquipmentModel
from twin.equipment.failures import COMPONENTS
from twin.ops.intervals import Intervals
from twin.ops.links import DataUplink, Link, frame_size_bytes
from twin.ops.nights import NightWindow, night_windows
from twin.ops.quality import QualityModel
from twin.ops.weather_grid import WeatherGrid
from twin.programme.requests import Request
from twin.scenario import Scenario
from twin.weather.dome import dome_closure
from twin.weather.factory import make_weather
from twin.weather.forecast import Forecast
from twin.weather.state import WEATHER_FIELDS
from twin.world.sites import Site
from twin.world.telescope import Telescope

# Children of the run's SeedSequence, by position (never renumber: seeds depend on it).
_WEATHER, _FORECAST, _EQUIPMENT, _LINKS, _ALERTS, _POLICY = range(6)
WEATHER_STEP_MIN = 10.0
ALERT_SHARE = 0.1
"""Share of science time the alert follow-ups are expected to take (for fairness only:
alerts are served first by their priority, not held to this share)."""


@dataclass
class SiteWorld:
    site: Site
    index: int
    visibility: SiteVisibility
    nights: list[NightWindow]
    dome_closed: Intervals
    link: Link
    uplink: DataUplink
    weather: WeatherGrid


@dataclass
class TelescopeWorld:
    name: str
    telescope: Telescope
    site: SiteWorld
    equipment: EquipmentModel
    down: Intervals  # any component failed
    quality: QualityModel
    frame_bytes: int


class World:
    """The drawn world of one run: sites, telescopes, weather truth and forecast, alerts."""

    def __init__(self, scenario: Scenario, seed: int | None = None) -> None:
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else int(seed)
        root = np.random.SeedSequence(self.seed)
        children = root.spawn(6)
        self.policy_seed = children[_POLICY]
        self.start_mjd = scenario.start_mjd  # 00:00 UTC of the first evening's date
        self.end_mjd = scenario.end_mjd
        nights = scenario.nights
        sites = scenario.network
        # Weather covers a margin either side of every site's local noon-to-noon nights
        # (the span a replayed log is checked against when the scenario loads).
        w_start, w_end = scenario.weather_span_mjd
        w_days = w_end - w_start
        self.weather = make_weather(scenario.weather.model, sites, w_start, w_days,
                                    children[_WEATHER], scenario.weather.log)  # fmt: skip
        self.forecast = Forecast(self.weather, children[_FORECAST])
        ops = scenario.operations
        self.sites: list[SiteWorld] = []
        link_seeds = children[_LINKS].spawn(len(sites))
        for i, site in enumerate(sites):
            vis = SiteVisibility(site, self.start_mjd, nights + 1)
            windows = night_windows(vis.almanac, nights, ops.max_sun_alt_deg)
            grid = np.arange(w_start, w_start + w_days, WEATHER_STEP_MIN / 1440.0)
            samples = self.weather.sample(site.name, grid)
            _, closures = dome_closure(grid, samples, scenario.weather.dome)
            link = Link(site.name, scenario.links.for_site(site.name), link_seeds[i],
                        w_start, w_start + w_days)  # fmt: skip
            self.sites.append(SiteWorld(site, i, vis, windows, Intervals(closures), link,
                                        DataUplink(link), WeatherGrid(grid, samples)))  # fmt: skip
        self.telescopes: list[TelescopeWorld] = []
        pairs = [(s, t.build()) for s, spec in zip(self.sites, scenario.sites, strict=True)
                 for t in spec.telescopes]  # fmt: skip
        eq_seeds = children[_EQUIPMENT].spawn(len(pairs))
        for (site_world, tel), eq_seed in zip(pairs, eq_seeds, strict=True):
            shape = (tel.detector.ny_pix, tel.detector.nx_pix)
            equipment = EquipmentModel(
                scenario.equipment,
                eq_seed,
                w_start,
                w_days,
                shape,
                temperature_c=self._temperature(site_world.site.name),
            )
            down = Intervals(p for c in COMPONENTS for p in equipment.failures.intervals(c))
            self.telescopes.append(TelescopeWorld(
                tel.name, tel, site_world, equipment, down, QualityModel(site_world.site, tel),
                frame_size_bytes(tel.detector.nx_pix, tel.detector.ny_pix),
            ))  # fmt: skip
        self.alerts: list[Alert] = []
        if scenario.alerts is not None:
            self.alerts = generate_alerts(scenario.alerts, self.start_mjd, self.end_mjd,
                                          children[_ALERTS])  # fmt: skip
        fov = min(min(t.telescope.fov_deg) for t in self.telescopes)
        self.requests: list[Request] = [
            r for prog in scenario.programmes for r in prog.expand(fov, self.start_mjd)
        ]
        shares = {p.name: p.share for p in scenario.programmes}
        total = sum(shares.values()) or 1.0
        alert_share = ALERT_SHARE if scenario.alerts is not None else 0.0
        self.program_shares = {k: (1.0 - alert_share) * v / total for k, v in shares.items()}
        if scenario.alerts is not None:
            self.program_shares["alerts"] = alert_share

    def _temperature(self, site_name: str):
        def temperature_c(mjd: np.ndarray) -> np.ndarray:
            return self.weather.sample(site_name, np.asarray(mjd, float))["temperature_c"]

        return temperature_c

    def weather_frames(self):
        """Truth weather of each site on a 10-minute grid, with the dome state: one frame
        per site, so a long run's table is written without holding all sites at once."""
        import pandas as pd

        for sw in self.sites:
            grid = np.arange(self.start_mjd, self.end_mjd, WEATHER_STEP_MIN / 1440.0)
            samples = sw.weather.sample(grid)
            closed = np.array([sw.dome_closed.until(t) is not None for t in grid])
            yield pd.DataFrame({"mjd": grid, "site": sw.site.name,
                                **{k: samples[k] for k in WEATHER_FIELDS},
                                "dome_closed": closed})  # fmt: skip
