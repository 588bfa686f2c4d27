"""Stochastic weather per site, generated once for a whole span from the site's Climate.

Why generate everything up front: the twin queries weather at every decision of every
telescope; a precomputed grid makes each query an interpolation, makes the run
reproducible bit for bit from its seed whatever the query order, and lets numpy/scipy
build years of traces in well under a second (one ``lfilter`` per component and
timescale, no Python loop over steps).

Model (details and citations in :mod:`twin.weather.fields` and :mod:`twin.weather.noise`):

- Cloud: latent z = sqrt(w) D + sqrt(1 - w) I, with D an AR(1) of e-folding
  ``cloud_persistence_days`` (weather systems: night-to-night memory) and I an AR(1) of
  e-folding ``cloud_timescale_h`` (changes within a night). z stays exactly N(0, 1), so
  thresholding it at Phi^-1(monthly clear fraction) reproduces the clear fraction in
  expectation. w = :data:`SYNOPTIC_CLOUD_WEIGHT` = 0.7: most cloud variance comes from
  passing systems (days) rather than from convection within a night.
- Cross-site: the innovations of D and of I are correlated between sites with
  corr = exp(-distance / ``correlation_length_km``) (Wilks 1998, J. Hydrology 210, 178,
  correlates a multisite weather generator's latent Gaussians the same way). La Palma and
  Teide (143 km) share their weather; other continents are independent.
- Seeing: log-normal AR(1) (e-folding ``seeing_timescale_min``), independent per site.
- Temperature, humidity, wind: climate medians with diurnal (local solar time) and
  seasonal cycles and AR(1) noise of the timescales below.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from twin.errors import ConfigError
from twin.weather import fields
from twin.weather.dome import DomeRules, dome_closure
from twin.weather.noise import (
    ar1,
    ar1_phi,
    as_seed_sequence,
    correlation_matrix,
    site_normals,
    unit_cholesky,
)
from twin.weather.state import WEATHER_FIELDS, WeatherState, check_span, state_at
from twin.weather.timebase import calendar_month, local_solar_hour, year_phase
from twin.world.sites import Site

SOURCE = "StochasticWeather"
SYNOPTIC_CLOUD_WEIGHT = 0.7
"""Share w of the latent cloud variance carried by the night-to-night component."""

HUMIDITY_TIMESCALE_MIN = 6 * 60.0
WIND_TIMESCALE_MIN = 4 * 60.0
TEMPERATURE_TIMESCALE_MIN = 48 * 60.0
"""Synoptic temperature anomalies last a few days; humidity and wind change faster."""

# Component indices: each has its own SeedSequence child (never renumber: seeds depend on it).
_CLOUD_SYNOPTIC, _CLOUD_INTRA, _SEEING, _HUMIDITY, _WIND, _TEMPERATURE = range(6)


class StochasticWeather:
    """Per-site stochastic weather on a regular grid, reproducible from its seed.

    Arguments:

    | name                  | unit | default | meaning                                     |
    |-----------------------|------|---------|---------------------------------------------|
    | sites                 |      |         | sites to simulate (unique names)            |
    | start_mjd             | day  |         | first grid time, MJD (UTC)                  |
    | days                  | day  |         | span; the grid covers at least this         |
    | seed                  |      |         | int or SeedSequence of the run              |
    | step_min              | min  | 10      | grid step; queries interpolate linearly     |
    | correlation_length_km | km   | 500     | e-folding distance of cross-site correlation|
    | dome_rules            |      | default | rules for the ``dome_closed`` column        |

    Appending a site to ``sites`` or lengthening ``days`` leaves the existing traces
    unchanged (see :mod:`twin.weather.noise`).
    """

    def __init__(
        self,
        sites: Sequence[Site],
        start_mjd: float,
        days: float,
        seed: int | np.random.SeedSequence,
        step_min: float = 10.0,
        correlation_length_km: float = 500.0,
        dome_rules: DomeRules | None = None,
    ) -> None:
        _validate(sites, days, step_min, correlation_length_km)
        self._sites = {site.name: site for site in sites}
        self.step_min = float(step_min)
        self.correlation_length_km = float(correlation_length_km)
        self.dome_rules = dome_rules or DomeRules()
        n_steps = math.ceil(days * 1440.0 / step_min - 1e-9) + 1
        self._mjd = float(start_mjd) + np.arange(n_steps) * (self.step_min / 1440.0)
        self._mjd.setflags(write=False)
        self._traces = self._generate(as_seed_sequence(seed))

    @property
    def sites(self) -> tuple[Site, ...]:
        return tuple(self._sites.values())

    @property
    def mjd_grid(self) -> np.ndarray:
        """The generation grid (read-only)."""
        return self._mjd

    @property
    def start_mjd(self) -> float:
        return float(self._mjd[0])

    @property
    def end_mjd(self) -> float:
        return float(self._mjd[-1])

    def times_mjd(self, site_name: str) -> np.ndarray:
        """The grid on which the site's weather was generated (same for every site)."""
        self._trace(site_name)
        return self._mjd

    def sample(self, site_name: str, mjd: np.ndarray) -> dict[str, np.ndarray]:
        trace = self._trace(site_name)
        mjd = np.asarray(mjd, dtype=float)
        check_span(site_name, mjd, self.start_mjd, self.end_mjd)
        flat = mjd.ravel()
        return {
            name: np.interp(flat, self._mjd, trace[name]).reshape(mjd.shape)
            for name in WEATHER_FIELDS
        }

    def at(self, site_name: str, mjd: float) -> WeatherState:
        return state_at(self.sample(site_name, np.array([mjd], dtype=float)))

    def dome_schedule(self, site_name: str) -> tuple[np.ndarray, list[tuple[float, float]]]:
        """Dome closed flags on the grid and the closures, under ``self.dome_rules``."""
        return dome_closure(self._mjd, self._trace(site_name), self.dome_rules)

    def to_frame(self) -> pd.DataFrame:
        """Long format: one row per (site, grid time), weather fields and ``dome_closed``."""
        parts = []
        for name in self._sites:
            part = {"mjd": self._mjd, "site": name, **self._trace(name)}
            part["dome_closed"] = self.dome_schedule(name)[0]
            parts.append(pd.DataFrame(part))
        return pd.concat(parts, ignore_index=True)

    def _trace(self, site_name: str) -> dict[str, np.ndarray]:
        try:
            return self._traces[site_name]
        except KeyError:
            allowed = ", ".join(self._sites)
            raise ConfigError(
                SOURCE, "site", f"unknown site {site_name!r}; this run has: {allowed}"
            ) from None

    def _generate(self, root: np.random.SeedSequence) -> dict[str, dict[str, np.ndarray]]:
        sites = self.sites
        names = [site.name for site in sites]
        n = self._mjd.size
        climates = [site.climate for site in sites]
        chol_t = unit_cholesky(correlation_matrix(sites, self.correlation_length_km)).T

        def noise(
            component: int, efold_min: Sequence[float], correlated: bool = False
        ) -> np.ndarray:
            z = site_normals(root, component, names, n)
            return ar1(z @ chol_t if correlated else z, ar1_phi(self.step_min, efold_min))

        w = SYNOPTIC_CLOUD_WEIGHT
        synoptic = noise(_CLOUD_SYNOPTIC, [c.cloud_persistence_days * 1440 for c in climates], True)
        intra = noise(_CLOUD_INTRA, [c.cloud_timescale_h * 60 for c in climates], True)
        latent = np.sqrt(w) * synoptic + np.sqrt(1.0 - w) * intra
        seeing = noise(_SEEING, [c.seeing_timescale_min for c in climates])
        humidity = noise(_HUMIDITY, [HUMIDITY_TIMESCALE_MIN] * len(sites))
        wind = noise(_WIND, [WIND_TIMESCALE_MIN] * len(sites))
        temperature = noise(_TEMPERATURE, [TEMPERATURE_TIMESCALE_MIN] * len(sites))
        calendar = (calendar_month(self._mjd), year_phase(self._mjd))
        traces = {}
        for i, site in enumerate(sites):
            noises = (latent[:, i], seeing[:, i], humidity[:, i], wind[:, i], temperature[:, i])
            traces[site.name] = _site_trace(site, self._mjd, calendar, noises)
        return traces


def _site_trace(
    site: Site,
    mjd: np.ndarray,
    calendar: tuple[np.ndarray, np.ndarray],
    noises: tuple[np.ndarray, ...],
) -> dict[str, np.ndarray]:
    """Turn one site's unit-normal noises into its weather fields."""
    climate = site.climate
    month, phase = calendar
    latent, seeing_z, humidity_z, wind_z, temperature_z = noises
    thresholds = fields.clear_thresholds(climate)
    threshold = thresholds[month - 1]
    cloud = fields.cloud_cover_from_latent(latent, threshold)
    diurnal_c = fields.diurnal_anomaly_c(climate, local_solar_hour(mjd, site.lon_deg), cloud)
    seasonal_c = fields.seasonal_anomaly_c(climate, site.lat_deg, phase)
    cloudiness = latent - (threshold - thresholds.mean())
    trace = {
        "cloud_cover": cloud,
        "transparency": fields.transparency_from_cloud(cloud),
        "seeing_fwhm_arcsec": fields.seeing_fwhm_arcsec(climate, seeing_z),
        "humidity_pct": fields.humidity_pct(climate, cloudiness, diurnal_c, humidity_z),
        "wind_m_s": fields.wind_m_s(climate, latent, wind_z),
        "temperature_c": fields.temperature_c(climate, seasonal_c, diurnal_c, temperature_z),
    }
    for values in trace.values():
        values.setflags(write=False)
    return trace


def _validate(
    sites: Sequence[Site], days: float, step_min: float, correlation_length_km: float
) -> None:
    if not sites:
        raise ConfigError(SOURCE, "sites", "at least one site is required")
    names = [site.name for site in sites]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigError(SOURCE, "sites", f"site names must be unique; repeated: {duplicates}")
    for field, value in (
        ("days", days),
        ("step_min", step_min),
        ("correlation_length_km", correlation_length_km),
    ):
        if not (math.isfinite(value) and value > 0):
            raise ConfigError(SOURCE, field, f"must be a finite number > 0 (got {value!r})")
