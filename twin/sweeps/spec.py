"""A sweep file: one base scenario, the axes to vary, the seeds and seasons to cross them with.

``skytwin sweep SWEEP.yaml`` reads this; every point of the product is a normal run. The
file is validated in full — and every point's scenario built and checked — before any
point runs, with the scenarios' error quality (file, field, allowed values).

| field        | default              | meaning                                                  |
|--------------|----------------------|----------------------------------------------------------|
| name         | (required)           | the sweep's name (a safe file name)                      |
| description  | ""                   | what the study asks                                      |
| base         | (required)           | the base scenario file, relative to the sweep file       |
| nights       | 1                    | nights of every run                                      |
| seeds        | {first: 1, count: 5} | weather/equipment seeds: ``{first, count}`` or a list    |
| starts       | [base's start]       | first-night dates (seasons), YYYY-MM-DD                  |
| layouts      | [{name: base}]       | network layouts (below)                                  |
| policies     | [base's policy]      | policies, named as for ``skytwin run --policy``          |
| variants     | [{name: base}]       | other changes: ``set`` replaces top-level fields (below) |
| baseline     | first layout         | the layout paired differences are taken against          |
| metrics      | METRICS              | metrics the report shows                                 |

Seeds are whole numbers from 0 to 2**32 - 1 (as a scenario's ``seed``); a list holds at
least one, each once. A variant's ``set`` replaces top-level scenario fields; a mapping is
merged one level deep into the base's (``set: {alerts: {rate_per_day: 6}}`` keeps the
other alert fields).

A layout is ``{name, sites}`` (the network's sites, replacing the base's: the scenario's
own ``sites`` format), or ``{name, add, remove}`` (sites added to / removed by name from
the base's), each optionally with ``telescopes_per_site`` and ``preset`` (every site gets
that many telescopes of that preset, named ``SITE-N``).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from twin.errors import ConfigError, FieldProblem, SafeName, excerpt, from_pydantic
from twin.scenario import MAX_SEED

METRICS = (
    "science_value",  # sum over exposures of priority x quality
    "open_shutter_fraction",  # science exposure time / night hours, network
    "duty_cycle",  # fraction of the run's 24-h days with some telescope exposing
    "observing_cycle",  # ... with some telescope exposing, reading out or slewing
    "dark_coverage",  # ... with night at some site (the ceiling of the two above)
    "alert_latency_median_min",  # alert issued -> first follow-up exposure
    "alerts_followed",  # alerts with a follow-up exposure
    "exposures",
)
"""Metrics of every point (``sweep.parquet`` columns), computed by
:func:`twin.sweeps.metrics.point_metrics`."""
MAX_POINTS = 100_000
_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class SeedRange(BaseModel):
    model_config = _STRICT

    first: int = Field(default=1, ge=0, le=2**31 - 1)
    count: int = Field(default=5, ge=1, le=10_000)


class Layout(BaseModel):
    """A network layout: the base's sites replaced, or sites added and removed."""

    model_config = _STRICT

    name: SafeName
    sites: tuple[dict[str, Any], ...] | None = Field(default=None, min_length=1, max_length=64)
    add: tuple[dict[str, Any], ...] = Field(default=(), max_length=64)
    remove: tuple[str, ...] = Field(default=(), max_length=64)
    telescopes_per_site: int | None = Field(default=None, ge=1, le=32)
    preset: str = Field(default="1m", max_length=64)

    @model_validator(mode="after")
    def _replace_or_edit(self) -> Layout:
        if self.sites is not None and (self.add or self.remove):
            raise FieldProblem("sites", "give either 'sites' (the whole network) or "
                               "'add'/'remove' (changes to the base's), not both")  # fmt: skip
        return self


class Variant(BaseModel):
    """Other changes to the base: top-level scenario fields replaced (mappings merged one
    level deep, so ``set: {alerts: {rate_per_day: 6}}`` keeps the base's other alert
    fields)."""

    model_config = _STRICT

    name: SafeName
    set: dict[str, Any] = Field(default_factory=dict)

    @field_validator("set")
    @classmethod
    def _no_run_fields(cls, value: dict[str, Any]) -> dict[str, Any]:
        owned = {"seed", "start", "nights", "sites", "name"} & set(value)
        if owned:
            raise ValueError(f"{sorted(owned)} are the sweep's own axes (seeds, starts, "
                             "nights, layouts, name): set them there")  # fmt: skip
        return value


class SweepSpec(BaseModel):
    model_config = _STRICT

    name: SafeName
    description: str = Field(default="", max_length=10_000)
    base: str = Field(min_length=1, max_length=4096)
    nights: int = Field(default=1, ge=1, le=3660)
    seeds: SeedRange | tuple[int, ...] = Field(default_factory=SeedRange)
    starts: tuple[str, ...] = Field(default=(), max_length=1000)
    layouts: tuple[Layout, ...] = Field(default=(Layout(name="base"),), min_length=1,
                                        max_length=1000)  # fmt: skip
    policies: tuple[str, ...] = Field(default=(), max_length=100)
    variants: tuple[Variant, ...] = Field(default=(Variant(name="base"),), min_length=1,
                                          max_length=1000)  # fmt: skip
    baseline: str | None = None
    metrics: tuple[str, ...] = METRICS

    @field_validator("seeds", mode="before")
    @classmethod
    def _seeds(cls, value: Any) -> SeedRange | tuple[int, ...]:
        """A ``{first, count}`` range or a list of distinct seeds in [0, MAX_SEED].

        Why here and not only in the scenario: a point's scenario gets its seed through
        ``model_copy(update=...)``, which skips validation, so a bad seed would reach a run.
        """
        if isinstance(value, SeedRange):
            return value
        if isinstance(value, dict):
            try:
                return SeedRange.model_validate(value)
            except ValidationError as err:
                inner = from_pydantic("", err)
                raise FieldProblem(inner.field, inner.problem) from None
        if not isinstance(value, list | tuple):
            raise FieldProblem("", f"{excerpt(value)} is not seeds; allowed: a list of "
                               f"seeds (0 to {MAX_SEED}) or {{first, count}}")  # fmt: skip
        if not value:
            raise FieldProblem("", "no seeds: a sweep has no points without one; allowed: "
                               f"a list of at least one seed (0 to {MAX_SEED}) or "
                               "{first, count}")  # fmt: skip
        seen: set[int] = set()
        for i, seed in enumerate(value):
            if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
                raise FieldProblem(str(i), f"{excerpt(seed)} is not a seed; allowed: whole "
                                   f"numbers 0 to {MAX_SEED}")  # fmt: skip
            if seed in seen:
                raise FieldProblem(str(i), f"seed {seed} is listed twice; each seed once")
            seen.add(seed)
        return tuple(value)

    @field_validator("starts", mode="before")
    @classmethod
    def _dates(cls, value: Any) -> tuple[str, ...]:
        if not isinstance(value, list | tuple):
            raise FieldProblem("", "a list of dates YYYY-MM-DD")
        out = []
        for i, text in enumerate(value):
            day = text if isinstance(text, dt.date) else None
            try:
                day = day or dt.date.fromisoformat(str(text))
            except ValueError:
                raise FieldProblem(str(i), f"{excerpt(text)} is not a date; allowed: "
                                   "YYYY-MM-DD") from None  # fmt: skip
            out.append(day.isoformat())
        return tuple(out)

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for i, name in enumerate(value):
            if name not in METRICS:
                raise FieldProblem(str(i), f"unknown metric {excerpt(name)}; allowed: "
                                   f"{', '.join(METRICS)}")  # fmt: skip
        return value

    @model_validator(mode="after")
    def _names(self) -> SweepSpec:
        for what, items in (("layouts", self.layouts), ("variants", self.variants)):
            seen: set[str] = set()
            for i, item in enumerate(items):
                if item.name in seen:
                    raise FieldProblem(f"{what}.{i}.name", f"repeated name {item.name!r}")
                seen.add(item.name)
        if self.baseline is not None and self.baseline not in {x.name for x in self.layouts}:
            raise FieldProblem("baseline", f"{excerpt(self.baseline)} is not a layout; allowed: "
                               f"{', '.join(x.name for x in self.layouts)}")  # fmt: skip
        if len(set(self.policies)) != len(self.policies):
            raise FieldProblem("policies", "a policy is named twice")
        n = len(self.seed_list) * max(len(self.starts), 1) * len(self.layouts)
        n *= max(len(self.policies), 1) * len(self.variants)
        if n > MAX_POINTS:
            raise FieldProblem("seeds", f"{n} points; at most {MAX_POINTS} per sweep")
        if n == 0:  # unreachable while every axis is checked non-empty: a guard for later edits
            raise FieldProblem("seeds", "the sweep has no points; allowed: at least one seed, "
                               "layout and variant")  # fmt: skip
        return self

    @property
    def seed_list(self) -> tuple[int, ...]:
        if isinstance(self.seeds, SeedRange):
            return tuple(range(self.seeds.first, self.seeds.first + self.seeds.count))
        return self.seeds

    @property
    def baseline_layout(self) -> str:
        return self.baseline or self.layouts[0].name


def _read(path: Path) -> dict:
    from twin.scenario import read_yaml

    data = read_yaml(path) or {}
    if not isinstance(data, dict):
        raise ConfigError(str(path), "(top level)", "a sweep is a mapping of fields")
    return data


def load_sweep(path: str | Path) -> tuple[SweepSpec, Path]:
    """The validated sweep and the resolved path of its base scenario."""
    path = Path(path)
    source = str(path)
    if not path.is_file():
        raise ConfigError(source, "(file)", "no such sweep file")
    data = _read(path)
    try:
        spec = SweepSpec.model_validate(data)
    except ValidationError as err:
        raise from_pydantic(source, err) from None
    base = (path.parent / spec.base).resolve()
    if not base.is_file():
        raise ConfigError(source, "base", f"no scenario file {excerpt(spec.base)} (looked at "
                          f"{excerpt(str(base), 200)})")  # fmt: skip
    return spec, base
