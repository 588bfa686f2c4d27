"""Scenarios: YAML files validated into typed configuration before anything runs.

A scenario names the network (sites and their telescopes), when it runs, the weather
model and the seed. Sites are built-in names (:data:`twin.world.sites.SITES`) or a full
inline definition, so a planner can try a site that does not exist yet. Every error —
an unknown site, a latitude out of range, a typo in a field name — is reported as a
:class:`~twin.errors.ConfigError` naming the file, the field and what is allowed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from astropy.time import Time
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.alerts.stream import AlertSpec
from twin.errors import ConfigError, from_pydantic
from twin.ops.links import LinkSpec
from twin.programme.spec import ProgrammeSpec
from twin.weather.dome import DomeRules
from twin.world.sites import SITES, Site
from twin.world.telescope import TELESCOPE_PRESETS, Telescope

_STRICT = ConfigDict(extra="forbid", frozen=True)


class TelescopeSpec(BaseModel):
    """A telescope at a site: a preset, optionally with fields overridden."""

    model_config = _STRICT

    name: str = Field(min_length=1)
    preset: str = "1m"
    overrides: dict = Field(default_factory=dict)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in TELESCOPE_PRESETS:
            raise ValueError(
                f"unknown preset {value!r}; allowed: {', '.join(sorted(TELESCOPE_PRESETS))}"
            )
        return value

    def build(self) -> Telescope:
        base = TELESCOPE_PRESETS[self.preset].model_dump()
        base.update(self.overrides, name=self.name)
        return Telescope.model_validate(base)


class SiteSpec(BaseModel):
    """A site of the network: a built-in name or an inline definition, with telescopes."""

    model_config = _STRICT

    site: str | None = None
    custom: Site | None = None
    telescopes: list[TelescopeSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_of(self) -> SiteSpec:
        if (self.site is None) == (self.custom is None):
            raise ValueError(
                "give exactly one of 'site' (a built-in name) or 'custom' (a definition)"
            )
        if self.site is not None and self.site not in SITES:
            raise ValueError(f"unknown site {self.site!r}; allowed: {', '.join(sorted(SITES))}")
        return self

    @property
    def resolved(self) -> Site:
        return self.custom if self.custom is not None else SITES[self.site]


class TargetSpec(BaseModel):
    """A named sky position, used for visibility plots and teaching."""

    model_config = _STRICT

    name: str
    ra_deg: float = Field(ge=0.0, lt=360.0)
    dec_deg: float = Field(ge=-90.0, le=90.0)


class WeatherSpec(BaseModel):
    model_config = _STRICT

    model: Literal["stochastic", "ideal", "replay"] = "stochastic"
    log: str | None = Field(default=None, description="CSV weather log, for model: replay.")
    correlation_length_km: float = Field(default=500.0, gt=0.0)
    dome: DomeRules = Field(default_factory=DomeRules)

    @model_validator(mode="after")
    def _replay_needs_log(self) -> WeatherSpec:
        if self.model == "replay" and not self.log:
            raise ValueError("model 'replay' needs 'log': the path of a recorded weather CSV")
        return self


class LinksSpec(BaseModel):
    """Site-to-centre links: one default, overridable per site name."""

    model_config = _STRICT

    default: LinkSpec = Field(default_factory=LinkSpec)
    sites: dict[str, LinkSpec] = Field(default_factory=dict)

    def for_site(self, name: str) -> LinkSpec:
        return self.sites.get(name, self.default)


class OperationsSpec(BaseModel):
    """How the telescopes operate through a night."""

    model_config = _STRICT

    policy: str = Field(default="greedy", description="Scheduler name, e.g. greedy.")
    max_sun_alt_deg: float = Field(
        default=-12.0, ge=-18.0, le=-6.0, description="Night window: sun below this."
    )
    idle_wait_s: float = Field(default=300.0, gt=0.0, description="Longest idle step.")
    bias_frames: int = Field(default=11, ge=0)
    dark_frames: int = Field(default=5, ge=0)
    flat_frames_per_band: int = Field(default=3, ge=0)
    flat_bands: tuple[str, ...] = ("g", "r", "i")
    alert_broker_latency_s: float = Field(
        default=30.0, ge=0.0, description="Broker to centre, before the site links."
    )
    detection_processing_s: float = Field(
        default=60.0, ge=0.0, description="Reduction at the site before a detection is sent."
    )


class ImagingSpec(BaseModel):
    """How frames are rendered (``skytwin night --frames``, ``skytwin frame``)."""

    model_config = _STRICT

    trail_rate_per_hour_deg2: float = Field(
        default=0.5, ge=0.0, description="Satellite and aircraft trails per hour per deg²."
    )
    defocus_model: Literal["gaussian", "annulus"] = "gaussian"
    sky_seed: int = Field(default=0, ge=0, description="Which synthetic sky (stars, galaxies).")


class Scenario(BaseModel):
    """A validated scenario. ``start`` is the local date of the first night's evening."""

    model_config = _STRICT

    name: str
    description: str = ""
    start: str = Field(default="tonight", description="YYYY-MM-DD, or 'tonight' (today, UTC).")
    nights: int = Field(default=1, ge=1, le=3660)
    seed: int = Field(default=0, ge=0)
    sites: list[SiteSpec] = Field(min_length=1)
    weather: WeatherSpec = Field(default_factory=WeatherSpec)
    targets: list[TargetSpec] = Field(default_factory=list)
    programmes: list[ProgrammeSpec] = Field(default_factory=list)
    alerts: AlertSpec | None = None
    links: LinksSpec = Field(default_factory=LinksSpec)
    operations: OperationsSpec = Field(default_factory=OperationsSpec)
    imaging: ImagingSpec = Field(default_factory=ImagingSpec)

    @field_validator("start", mode="before")
    @classmethod
    def _date(cls, value: object) -> str:
        if isinstance(value, dt.date):  # YAML reads an unquoted date as a date
            return value.isoformat()
        if not isinstance(value, str):
            raise ValueError(f"{value!r} is not a date; allowed: YYYY-MM-DD or 'tonight'")
        if value == "tonight":
            return dt.datetime.now(dt.UTC).date().isoformat()
        try:
            return dt.date.fromisoformat(value).isoformat()
        except ValueError:
            raise ValueError(f"{value!r} is not a date; allowed: YYYY-MM-DD or 'tonight'") from None

    @model_validator(mode="after")
    def _unique_names(self) -> Scenario:
        names = [t.name for s in self.sites for t in s.telescopes]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"telescope names must be unique; repeated: {dupes}")
        programmes = [p.name for p in self.programmes]
        dupes = sorted({n for n in programmes if programmes.count(n) > 1})
        if dupes:
            raise ValueError(f"programme names must be unique; repeated: {dupes}")
        return self

    @property
    def end_mjd(self) -> float:
        return self.start_mjd + self.nights + 1.0

    @property
    def start_mjd(self) -> float:
        return float(Time(self.start).mjd)

    @property
    def network(self) -> list[Site]:
        return [s.resolved for s in self.sites]

    def telescopes(self) -> list[tuple[Site, Telescope]]:
        return [(s.resolved, t.build()) for s in self.sites for t in s.telescopes]


def load_scenario(path: str | Path, **overrides) -> Scenario:
    """Read and validate a scenario file; ``overrides`` replace top-level fields."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(str(path), "(file)", "no such scenario file")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ConfigError(str(path), "(yaml)", f"not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(top level)", "a scenario is a mapping of fields")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        scenario = Scenario.model_validate(data)
        for k, spec in enumerate(scenario.sites):
            for i, tel in enumerate(spec.telescopes):
                _build_telescope(tel, str(path), f"sites.{k}.telescopes.{i}")
    except ValidationError as err:
        raise from_pydantic(str(path), err) from None
    check_programmes(scenario, str(path))
    if scenario.weather.log:
        log = Path(scenario.weather.log)
        if not log.is_absolute():
            log = (path.parent / log).resolve()
        if not log.is_file():
            raise ConfigError(str(path), "weather.log", f"no such file: {log}")
        scenario = scenario.model_copy(
            update={"weather": scenario.weather.model_copy(update={"log": str(log)})}
        )
        _check_replay_log(scenario, log)
    return scenario


def _check_replay_log(scenario: Scenario, log: Path) -> None:
    """Read the weather log now, so a bad column fails before the run, not during it."""
    from twin.weather.replay import ReplayWeather

    known = {**SITES, **{s.name: s for s in scenario.network}}  # a log may hold other sites too
    replay = ReplayWeather.from_csv(log, list(known.values()))
    missing = [s.name for s in scenario.network if s.name not in replay.site_names]
    if missing:
        raise ConfigError(str(log), "site", f"no rows for the scenario's sites {missing}")


def _build_telescope(spec: TelescopeSpec, source: str, where: str) -> None:
    try:
        spec.build()
    except ValidationError as err:
        inner = from_pydantic(source, err)
        raise ConfigError(source, f"{where}.overrides.{inner.field}", inner.problem) from None


def dump_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write the resolved scenario (dates fixed, defaults filled) so the run can be repeated."""
    path = Path(path)
    path.write_text(
        yaml.safe_dump(scenario.model_dump(mode="json", exclude_none=True), sort_keys=False)
    )
    return path


def check_programmes(scenario: Scenario, source: str) -> None:
    """Checks that need the whole scenario: windows not in the past, bands every telescope
    can take... or at least one, known site names, link overrides for real sites."""
    site_names = [s.resolved.name for s in scenario.sites]
    bands = sorted({b for _, tel in scenario.telescopes() for b in tel.bands})
    start = scenario.start_mjd
    for name in scenario.links.sites:
        if name not in site_names:
            raise ConfigError(
                source,
                f"links.sites.{name}",
                f"not a site of this scenario; allowed: {', '.join(site_names)}",
            )
    plans = []
    for p, prog in enumerate(scenario.programmes):
        where = f"programmes.{p}"
        plans.append((f"{where}.plan", prog.plan))
        for r, req in enumerate(prog.requests):
            rw = f"{where}.requests.{r}"
            if req.plan:
                plans.append((f"{rw}.plan", req.plan))
            for w, window in enumerate(req.windows):
                if window.end_mjd <= start:
                    raise ConfigError(
                        source, f"{rw}.windows.{w}.end_mjd",
                        f"window ends at MJD {window.end_mjd}, before the scenario starts "
                        f"(MJD {start:.1f}, {scenario.start}); allowed: a window ending later",
                    )  # fmt: skip
            for s, site in enumerate(req.sites):
                if site not in site_names:
                    raise ConfigError(
                        source,
                        f"{rw}.sites.{s}",
                        f"unknown site {site!r}; allowed: {', '.join(site_names)}",
                    )
    if scenario.alerts is not None:
        plans.append(("alerts.followup.plan", scenario.alerts.followup.plan))
    for where, plan in plans:
        for i, item in enumerate(plan):
            if item.band not in bands:
                raise ConfigError(
                    source,
                    f"{where}.{i}.band",
                    f"no telescope has band {item.band!r}; allowed: {bands}",
                )
