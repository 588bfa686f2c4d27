"""Scenarios: YAML files validated into typed configuration before anything runs.

A scenario names the network (sites and their telescopes), when it runs, the weather
model and the seed. Sites are built-in names (:data:`twin.world.sites.SITES`) or a full
inline definition, so a planner can try a site that does not exist yet. Every error —
an unknown site, a latitude out of range, a typo in a field name, a file that is not
YAML, a run longer than its weather log — is reported as a
:class:`~twin.errors.ConfigError` naming the file, the field and what is allowed, when the
scenario is loaded: a bad input never gets as far as a traceback in the middle of a run.

Every number has physical bounds and must be finite; names that become file or directory
names (scenario, site, telescope, filter) match :data:`twin.errors.SAFE_NAME`. Reading is
bounded too (:func:`read_yaml`: file size, nesting depth, expanded nodes, no repeated
keys), so a hostile file fails fast instead of exhausting memory.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Literal

import yaml
from astropy.time import Time
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.alerts.population.spec import PopulationSpec
from twin.alerts.stream import AlertSpec
from twin.equipment.config import EquipmentConfig
from twin.errors import (
    ConfigError,
    FieldProblem,
    SafeName,
    excerpt,
    field_path,
    from_pydantic,
    shorten,
)
from twin.ops.links import LinkSpec
from twin.pipeline.spec import PipelineSpec
from twin.programme.spec import ProgrammeSpec
from twin.programme.survey import MAX_TILES
from twin.weather.dome import DomeRules
from twin.world.sites import SITES, Site
from twin.world.telescope import TELESCOPE_PRESETS, Telescope

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

MAX_SEED = 2**32 - 1
"""Largest seed: every numpy generator, and the int64 arithmetic of derived seeds, take it."""

MAX_REQUESTS = MAX_TILES
"""Most requests all programmes together may expand into (the queue holds them all)."""

WEATHER_MARGIN_DAYS = (1.0, 2.0)
"""Days of weather a run needs before its start date and after its last night: the world
draws weather from a day before the first evening to two days after the last night, so
that every site's local noon-to-noon nights are covered (:class:`twin.ops.world.World`)."""


class TelescopeSpec(BaseModel):
    """A telescope at a site: a preset, optionally with fields overridden."""

    model_config = _STRICT

    name: SafeName
    preset: str = "1m"
    overrides: dict = Field(default_factory=dict)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, value: str) -> str:
        if value not in TELESCOPE_PRESETS:
            raise ValueError(
                f"unknown preset {excerpt(value)}; allowed: {', '.join(sorted(TELESCOPE_PRESETS))}"
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
    telescopes: list[TelescopeSpec] = Field(min_length=1, max_length=32)

    @model_validator(mode="after")
    def _one_of(self) -> SiteSpec:
        if (self.site is None) == (self.custom is None):
            raise FieldProblem(
                "site", "give exactly one of 'site' (a built-in name) or 'custom' (a definition)"
            )
        if self.site is not None and self.site not in SITES:
            raise FieldProblem(
                "site", f"unknown site {excerpt(self.site)}; allowed: {', '.join(sorted(SITES))}"
            )
        # A custom Site checks its own name (SafeName) and numbers (finite) itself.
        return self

    @property
    def resolved(self) -> Site:
        return self.custom if self.custom is not None else SITES[self.site]


class TargetSpec(BaseModel):
    """A named sky position, used for visibility plots and teaching."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=128)
    ra_deg: float = Field(ge=0.0, lt=360.0)
    dec_deg: float = Field(ge=-90.0, le=90.0)


class WeatherSpec(BaseModel):
    model_config = _STRICT

    model: Literal["stochastic", "ideal", "replay"] = "stochastic"
    log: str | None = Field(
        default=None, max_length=4096, description="CSV weather log, for model: replay."
    )
    # Beyond ~40,000 km (the Earth's circumference) every pair of sites is fully correlated.
    correlation_length_km: float = Field(default=500.0, gt=0.0, le=1e5)
    dome: DomeRules = Field(default_factory=DomeRules)

    @model_validator(mode="after")
    def _replay_needs_log(self) -> WeatherSpec:
        if self.model == "replay" and not self.log:
            raise FieldProblem(
                "log", "model 'replay' needs 'log': the path of a recorded weather CSV"
            )
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

    policy: str = Field(
        default="greedy", min_length=1, max_length=4096, description="Scheduler name."
    )
    max_sun_alt_deg: float = Field(
        default=-12.0, ge=-18.0, le=-6.0, description="Night window: sun below this."
    )
    # The idle step is the scheduler's polling interval while nothing is feasible: below
    # 10 s the run only repeats the same check (1e-9 s never reaches the morning).
    idle_wait_s: float = Field(default=300.0, ge=10.0, le=3600.0, description="Longest idle step.")
    bias_frames: int = Field(default=11, ge=0, le=1000)
    dark_frames: int = Field(default=5, ge=0, le=1000)
    flat_frames_per_band: int = Field(default=3, ge=0, le=1000)
    flat_bands: tuple[SafeName, ...] = Field(default=("g", "r", "i"), max_length=32)
    alert_broker_latency_s: float = Field(
        default=30.0, ge=0.0, le=86400.0, description="Broker to centre, before the site links."
    )
    detection_processing_s: float = Field(
        default=60.0,
        ge=0.0,
        le=86400.0,
        description="Reduction at the site before a detection is sent.",
    )


class ImagingSpec(BaseModel):
    """How frames are rendered (``skytwin night --frames``, ``skytwin frame``)."""

    model_config = _STRICT

    trail_rate_per_hour_deg2: float = Field(
        default=0.5,
        ge=0.0,
        le=1000.0,
        description="Satellite and aircraft trails per hour per deg².",
    )
    defocus_model: Literal["gaussian", "annulus"] = "gaussian"
    sky_seed: int = Field(
        default=0, ge=0, le=MAX_SEED, description="Which synthetic sky (stars, galaxies)."
    )
    # None (not {}) by default: scenarios dump with exclude_none, so a run without faults
    # writes the same scenario.yaml as before the field existed.
    faults: (
        dict[Literal["dew_rate", "banding_rate", "vignetting_rate", "glint_rate"], float] | None
    ) = Field(
        default=None,
        description="Probability per frame of each rare fault (twin.imaging.faults); missing: 0.",
    )

    # None (= parametric) by default, for the same reason as faults.
    galaxies: Literal["parametric", "diffusion"] | None = Field(
        default=None,
        description="What galaxies look like: 'parametric' (bulge + disk + knots, the "
        "default) or 'diffusion' (the generator of models/generative; needs torch).",
    )

    # None (= off) by default, for the same reason as faults.
    population: PopulationSpec | None = Field(
        default=None,
        description="Transients nobody announced, variable stars, AGN and asteroids in the "
        "static sky (twin.alerts.population); rates per deg² per year. {} = realistic "
        "defaults.",
    )

    @field_validator("faults")
    @classmethod
    def _rates_are_probabilities(cls, rates):
        for key, rate in (rates or {}).items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{key} = {rate}: a rate per frame must lie in 0..1")
        return rates


class Scenario(BaseModel):
    """A validated scenario. ``start`` is the local date of the first night's evening."""

    model_config = _STRICT

    name: SafeName
    description: str = Field(default="", max_length=10_000)
    start: str = Field(
        default="tonight",
        validate_default=True,  # so that the default 'tonight' becomes a date too
        description="YYYY-MM-DD, or 'tonight' (today, UTC).",
    )
    nights: int = Field(default=1, ge=1, le=3660)
    seed: int = Field(default=0, ge=0, le=MAX_SEED)
    sites: list[SiteSpec] = Field(min_length=1, max_length=64)
    weather: WeatherSpec = Field(default_factory=WeatherSpec)
    targets: list[TargetSpec] = Field(default_factory=list, max_length=10_000)
    programmes: list[ProgrammeSpec] = Field(default_factory=list, max_length=1000)
    alerts: AlertSpec | None = None
    links: LinksSpec = Field(default_factory=LinksSpec)
    operations: OperationsSpec = Field(default_factory=OperationsSpec)
    imaging: ImagingSpec = Field(default_factory=ImagingSpec)
    pipeline: PipelineSpec = Field(
        default_factory=PipelineSpec,
        description="Models run at the sites on every frame (none by default).",
    )
    equipment: EquipmentConfig = Field(
        default_factory=EquipmentConfig,
        description="Drift and faults of every telescope; failures_enabled: false for teaching.",
    )

    @field_validator("start", mode="before")
    @classmethod
    def _date(cls, value: object) -> str:
        allowed = "allowed: YYYY-MM-DD (1900..2200) or 'tonight'"
        if isinstance(value, dt.datetime):
            value = value.date()
        if isinstance(value, dt.date):  # YAML reads an unquoted date as a date
            date = value
        elif value == "tonight":
            date = dt.datetime.now(dt.UTC).date()
        elif isinstance(value, str):
            try:
                date = dt.date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{excerpt(value)} is not a date; {allowed}") from None
        else:
            raise ValueError(f"{excerpt(value)} is not a date; {allowed}")
        if not 1900 <= date.year <= 2200:  # the almanac's ephemerides and leap seconds
            raise ValueError(f"{date.isoformat()} is out of range; {allowed}")
        return date.isoformat()

    @model_validator(mode="after")
    def _unique_names(self) -> Scenario:
        sites = [s.resolved.name for s in self.sites]
        site_field = ["site" if s.site else "custom.name" for s in self.sites]
        _refuse_repeats(sites, lambda i: f"sites.{i}.{site_field[i]}", "site names")
        where = [(k, i) for k, s in enumerate(self.sites) for i in range(len(s.telescopes))]
        names = [self.sites[k].telescopes[i].name for k, i in where]
        _refuse_repeats(names, lambda j: "sites.{}.telescopes.{}.name".format(*where[j]),
                        "telescope names")  # fmt: skip
        programmes = [p.name for p in self.programmes]
        _refuse_repeats(programmes, lambda j: f"programmes.{j}.name", "programme names")
        if self.alerts is not None and "alerts" in programmes:
            raise FieldProblem(
                f"programmes.{programmes.index('alerts')}.name",
                "'alerts' is the name of the alert follow-up programme; choose another name",
            )
        return self

    @property
    def end_mjd(self) -> float:
        return self.start_mjd + self.nights + 1.0

    @property
    def start_mjd(self) -> float:
        return float(Time(self.start).mjd)

    @property
    def weather_span_mjd(self) -> tuple[float, float]:
        """The span (MJD) a run draws weather over; a replayed log must cover it."""
        before, after = WEATHER_MARGIN_DAYS
        return self.start_mjd - before, self.start_mjd + self.nights + after

    @property
    def network(self) -> list[Site]:
        return [s.resolved for s in self.sites]

    def telescopes(self) -> list[tuple[Site, Telescope]]:
        return [(s.resolved, t.build()) for s in self.sites for t in s.telescopes]


def _refuse_repeats(names: list[str], where, what: str) -> None:
    """FieldProblem at the second occurrence of a repeated name."""
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise FieldProblem(where(i), f"{what} must be unique; repeated: {excerpt(name)}")
        seen.add(name)


def load_scenario(path: str | Path, **overrides) -> Scenario:
    """Read and validate a scenario file; ``overrides`` replace top-level fields.

    Overrides (``nights=``, ``seed=``, ``start=``... as the command line passes them; None
    leaves the file's value) go through exactly the same validation as the file.
    """
    path = Path(path)
    source = str(path)
    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(source, "(top level)", "a scenario is a mapping of fields")
    data.update({k: v for k, v in overrides.items() if v is not None})
    try:
        scenario = Scenario.model_validate(data)
        for k, spec in enumerate(scenario.sites):
            for i, tel in enumerate(spec.telescopes):
                _build_telescope(tel, source, f"sites.{k}.telescopes.{i}")
    except ValidationError as err:
        raise from_pydantic(source, err) from None
    except RecursionError:  # a structure read from Python, not YAML, with no depth limit
        raise ConfigError(source, "(top level)", "nested too deeply") from None
    check_programmes(scenario, source)
    if scenario.weather.log:
        log = Path(scenario.weather.log)
        if not log.is_absolute():
            log = (path.parent / log).resolve()
        if not log.is_file():
            raise ConfigError(source, "weather.log", f"no such file: {excerpt(str(log), 200)}")
        scenario = scenario.model_copy(
            update={"weather": scenario.weather.model_copy(update={"log": str(log)})}
        )
        check_replay_log(scenario, log, source)
    return scenario


def check_replay_log(scenario: Scenario, log: Path, source: str,
                     too_long: str = "'nights'") -> None:  # fmt: skip
    """Read the weather log now, so a bad column or a short log fails before the run.
    ``too_long``: what to shorten when the log ends too soon (the caller's option)."""
    from twin.weather.replay import ReplayWeather

    known = {**SITES, **{s.name: s for s in scenario.network}}  # a log may hold other sites too
    replay = ReplayWeather.from_csv(log, list(known.values()))
    missing = [s.name for s in scenario.network if s.name not in replay.site_names]
    if missing:
        raise ConfigError(str(log), "site", f"no rows for the scenario's sites {missing}")
    need_start, need_end = scenario.weather_span_mjd
    for site in scenario.network:
        times = replay.times_mjd(site.name)
        if times[0] > need_start + 1e-9 or times[-1] < need_end - 1e-9:
            first, last = (Time(t, format="mjd").isot[:16] for t in (times[0], times[-1]))
            need = [Time(t, format="mjd").isot[:16] for t in (need_start, need_end)]
            before, after = WEATHER_MARGIN_DAYS
            raise ConfigError(
                source,
                "weather.log",
                f"the log covers site {site.name!r} from {first} to {last} UTC (MJD "
                f"{times[0]:.3f}..{times[-1]:.3f}); a run of {scenario.nights} night(s) from "
                f"{scenario.start} needs {need[0]} to {need[1]} ({before:g} day before the "
                f"start to {after:g} days after the last night): shorten {too_long} or give a "
                "longer log",
            )


def _build_telescope(spec: TelescopeSpec, source: str, where: str) -> None:
    try:
        spec.build()
    except ValidationError as err:
        inner = from_pydantic(source, err)
        raise ConfigError(source, f"{where}.overrides.{inner.field}", inner.problem) from None


def scenario_yaml(scenario: Scenario) -> str:
    """The resolved scenario as YAML (dates fixed, defaults filled): what a run stores.

    Emitted by libyaml when PyYAML has it (5x faster than the pure-Python emitter, a
    fixed cost of every run); ``--resume`` compares the data, not the text
    (:func:`same_scenario_yaml`), so a run stored by either emitter resumes."""
    data = scenario.model_dump(mode="json", exclude_none=True)
    return yaml.dump(data, Dumper=_SAFE_DUMPER, sort_keys=False)


_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def same_scenario_yaml(text: str, scenario: Scenario) -> bool:
    """Whether ``text`` (a run's stored ``scenario.yaml``) holds ``scenario``: compared as
    YAML data, not text, since emitters wrap long strings differently (libyaml or not)."""
    try:
        stored = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return False
    return stored == yaml.safe_load(scenario_yaml(scenario))


def dump_scenario(scenario: Scenario, path: str | Path) -> Path:
    """Write the resolved scenario so the run can be repeated."""
    path = Path(path)
    path.write_text(scenario_yaml(scenario))
    return path


def check_programmes(scenario: Scenario, source: str) -> None:
    """Checks that need the whole scenario: windows not in the past, bands that every
    telescope which may take a request has, known site names, link overrides for real
    sites, and the requests the programmes expand into (unique ids, not too many)."""
    site_names = [s.resolved.name for s in scenario.sites]
    telescopes = scenario.telescopes()
    bands = sorted({b for _, tel in telescopes for b in tel.bands})
    start = scenario.start_mjd
    for name in scenario.links.sites:
        if name not in site_names:
            raise ConfigError(
                source,
                f"links.sites.{excerpt(name, 40)}",
                f"not a site of this scenario; allowed: {', '.join(site_names)}",
            )
    plans = []  # (field, plan, sites that may run it; empty: any)
    for p, prog in enumerate(scenario.programmes):
        where = f"programmes.{p}"
        if not prog.requests:
            plans.append((f"{where}.plan", prog.plan, ()))
        for r, req in enumerate(prog.requests):
            rw = f"{where}.requests.{r}"
            own = req.plan is not None
            plans.append((f"{rw}.plan" if own else f"{where}.plan", req.plan or prog.plan,
                          req.sites))  # fmt: skip
            for w, window in enumerate(req.all_windows(start)):
                if window.end_mjd <= start:
                    field = (f"{rw}.windows.{w}.end_mjd" if w < len(req.windows) else
                             f"{rw}.windows_after_start_days.{w - len(req.windows)}")  # fmt: skip
                    raise ConfigError(
                        source, field,
                        f"window ends at MJD {window.end_mjd}, before the scenario starts "
                        f"(MJD {start:.1f}, {scenario.start}); allowed: a window ending later",
                    )  # fmt: skip
            for s, site in enumerate(req.sites):
                if site not in site_names:
                    raise ConfigError(
                        source,
                        f"{rw}.sites.{s}",
                        f"unknown site {excerpt(site)}; allowed: {', '.join(site_names)}",
                    )
    if scenario.alerts is not None:
        plans.append(("alerts.followup.plan", scenario.alerts.followup.plan, ()))
    for where, plan, sites in plans:
        _check_bands(where, plan, sites, telescopes, bands, source)
    _check_requests(scenario, source)


def _check_bands(where: str, plan, sites, telescopes, bands: list[str], source: str) -> None:
    """Every telescope that may take the plan has each of its bands.

    Why every one, not just one: the scheduler ranks each request on each telescope by its
    bands' seeing and depth, and does not skip a telescope that lacks a filter.
    """
    for i, item in enumerate(plan):
        if item.band not in bands:
            raise ConfigError(
                source,
                f"{where}.{i}.band",
                f"no telescope has band {excerpt(item.band)}; allowed: {bands}",
            )
        for site, tel in telescopes:
            if (not sites or site.name in sites) and item.band not in tel.bands:
                raise ConfigError(
                    source,
                    f"{where}.{i}.band",
                    f"telescope {tel.name!r} (site {site.name!r}) has no band {item.band!r} "
                    f"(it has {tel.bands}); every telescope that may take a request needs "
                    "each band of its plan: give it the filter, or restrict the request's "
                    "'sites'",
                )


def _check_requests(scenario: Scenario, source: str) -> None:
    """Expand every programme now: a survey tiled too finely, or two requests with one id,
    is refused here rather than exhausting memory or mixing up two requests in the run."""
    from twin.programme.survey import count_tiles

    fov = min(min(tel.fov_deg) for _, tel in scenario.telescopes())
    total = 0
    for p, prog in enumerate(scenario.programmes):
        if prog.survey is not None:
            region = prog.survey
            tiles = count_tiles(
                region.ra_min_deg,
                region.ra_max_deg,
                region.dec_min_deg,
                region.dec_max_deg,
                region.fov_deg or fov,
                region.overlap,
            )
            if total + tiles > MAX_REQUESTS:
                raise ConfigError(
                    source,
                    f"programmes.{p}.survey",
                    f"tiles into {tiles if tiles <= MAX_TILES else f'more than {MAX_TILES}'} "
                    f"fields (fov_deg {region.fov_deg or fov:.3g}, overlap {region.overlap:g}); "
                    f"allowed: at most {MAX_REQUESTS} requests in all: give a larger fov_deg, "
                    "a smaller overlap or a smaller region",
                )
            total += tiles
        else:
            total += len(prog.targets) + len(prog.requests)
    if total > MAX_REQUESTS:
        raise ConfigError(source, "programmes", f"{total} requests; allowed: at most "
                          f"{MAX_REQUESTS}")  # fmt: skip
    seen: dict[str, str] = {}
    start = scenario.start_mjd
    reserved = "alert-" if scenario.alerts is not None else None
    for p, prog in enumerate(scenario.programmes):
        try:
            requests = prog.expand(fov, start)
        except ValidationError as err:
            inner = from_pydantic(source, err)
            raise ConfigError(source, f"programmes.{p}.{inner.field}", inner.problem) from None
        for i, request in enumerate(requests):
            where = _request_field(prog, p, i)
            rid = request.request_id
            if rid in seen:
                raise ConfigError(
                    source, where,
                    f"request id {excerpt(rid)} is also the id of {seen[rid]}; "
                    "allowed: ids unique across all programmes (a monitoring request's id is "
                    "'<programme>-<target name>', a survey tile's '<programme>-<index>')",
                )  # fmt: skip
            if reserved and rid.startswith(reserved):
                raise ConfigError(
                    source, where,
                    f"request id {excerpt(rid)} starts with {reserved!r}, the prefix of the "
                    "alert stream's follow-up requests; choose another id or programme name",
                )  # fmt: skip
            seen[rid] = where


def _request_field(prog: ProgrammeSpec, p: int, i: int) -> str:
    if prog.requests:
        return f"programmes.{p}.requests.{i}.request_id"
    if prog.targets:
        return f"programmes.{p}.targets.{i}.name"
    return f"programmes.{p}.name"


# --- Reading YAML with limits ------------------------------------------------------------

MAX_FILE_BYTES = 1_000_000
"""Largest scenario file: the biggest shipped one is ~4 kB; a 1 MB file holds thousands
of written-out requests, and anything larger is not a hand-written scenario."""

MAX_DEPTH = 32
"""Deepest nesting of mappings and lists, aliases followed: scenarios nest ~8 levels;
PyYAML composes recursively and meets Python's recursion limit at a few hundred."""

MAX_NODES = 200_000
"""Most YAML nodes after expanding aliases: a 1 MB file of plain YAML has fewer; a
400-byte "billion laughs" alias bomb expands to ~10^9 and is refused here."""


class _LimitedLoader(yaml.SafeLoader):
    """SafeLoader that refuses deep nesting, alias bombs and repeated keys.

    PyYAML shares one object for every use of an anchor, so a bomb is small in memory
    until something walks it (pydantic, an error message): the expanded size is counted
    on the node graph, memoised per node, before anything is constructed.
    """

    def __init__(self, text: str, name: str) -> None:
        super().__init__(text)
        self.name = name  # marks (and so messages) name the file, not "<unicode string>"
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise ConfigError(
                    self.name,
                    "(yaml)",
                    f"{_at(mark)}: nested deeper than "
                    f"{MAX_DEPTH} levels; allowed: at most {MAX_DEPTH}",
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_document(self, node):
        _expanded_size(node, 1, {}, set(), self.name)
        return super().construct_document(node)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    repeated = key in seen
                    seen.add(key)
                except TypeError:  # unhashable: the base class reports it
                    continue
                if repeated:
                    raise ConfigError(
                        self.name,
                        field_path([key]),
                        f"{_at(key_node.start_mark)}: key given twice; give each key once",
                    )
        return super().construct_mapping(node, deep=deep)


def _at(mark) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "?"


def _expanded_size(node, depth: int, memo: dict, path: set, source: str) -> tuple[int, int]:
    """(nodes, height) of ``node`` with aliases expanded; refuses cycles and the limits.

    Recursion is bounded by MAX_DEPTH: deeper paths are refused before they are walked.
    """
    key = id(node)
    if key in path:
        raise ConfigError(
            source,
            "(yaml)",
            f"{_at(node.start_mark)}: an alias refers to "
            "itself (a recursive structure); allowed: no recursive aliases",
        )
    if key in memo:
        size, height = memo[key]
    else:
        if isinstance(node, yaml.SequenceNode):
            children = node.value
        elif isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = []
        path.add(key)
        size, height = 1, 0
        for child in children:
            child_size, child_height = _expanded_size(child, depth + 1, memo, path, source)
            size += child_size
            height = max(height, child_height + 1)
            if size > MAX_NODES:
                break
        path.discard(key)
        memo[key] = (size, height)
    if depth + height > MAX_DEPTH:
        raise ConfigError(
            source,
            "(yaml)",
            f"{_at(node.start_mark)}: nested deeper than "
            f"{MAX_DEPTH} levels (aliases expanded); allowed: at most {MAX_DEPTH}",
        )
    if size > MAX_NODES:
        raise ConfigError(
            source,
            "(yaml)",
            f"more than {MAX_NODES} values once aliases are "
            f"expanded (an alias bomb?); allowed: at most {MAX_NODES}",
        )
    return size, height


def read_yaml(path: Path) -> object:
    """The YAML document of a scenario file, read within the limits above.

    Every failure is a ConfigError naming the file: not a regular file, too large, not
    UTF-8 text, a YAML syntax error (with line and column), a repeated key, too deep, too
    many nodes, or a value YAML cannot construct (``2027-13-45``, a 5000-digit integer).
    """
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, "(file)", "no such scenario file")
    try:
        with path.open("rb") as stream:
            raw = stream.read(MAX_FILE_BYTES + 1)
    except OSError as err:
        raise ConfigError(source, "(file)", f"cannot be read ({err.strerror})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(
            source,
            "(file)",
            f"larger than {MAX_FILE_BYTES} bytes; a scenario "
            f"is a YAML text file of at most {MAX_FILE_BYTES} bytes",
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(
            source,
            "(file)",
            f"not UTF-8 text (byte {raw[err.start]:#04x} at "
            f"offset {err.start}); a scenario is a YAML text file",
        ) from None
    loader = None
    try:
        loader = _LimitedLoader(text, source)
        return loader.get_single_data()
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = " ".join(p for p in (err.context, err.problem) if p)
        raise ConfigError(
            source, "(yaml)", f"not valid YAML: {_at(mark)}: {shorten(problem, 200)}"
        ) from None
    except yaml.reader.ReaderError as err:  # a character YAML does not allow, e.g. NUL
        raise ConfigError(
            source,
            "(yaml)",
            f"not valid YAML: character {err.character:#x} at offset {err.position}: {err.reason}",
        ) from None
    except yaml.YAMLError as err:
        raise ConfigError(source, "(yaml)", f"not valid YAML: {shorten(str(err), 200)}") from None
    except (ValueError, OverflowError) as err:  # e.g. a timestamp 2027-13-45, a huge integer
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(
            source, "(yaml)", f"a value YAML cannot read: {shorten(str(err))}"
        ) from None
    except RecursionError:
        raise ConfigError(source, "(yaml)", "nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
