"""Programmes as a scenario declares them, and the requests they expand into.

A scenario lists programmes of three kinds, as operating networks run them:

- ``survey``: a sky region tiled for a field of view, each tile revisited at a cadence;
- ``monitoring``: named targets revisited at a cadence;
- ``requests``: time-critical requests written out in full, with windows.

Each programme has a ``share`` of the network's science time; the schedulers use it to
keep programmes near their share (as a time-allocation committee would ask).

Bounds: every number finite; cadences from 0.001 d (~90 s, shorter than any visit) to
3660 d (the longest run); at most 10^6 visits per target (an int64 in the run's tables
and more than a 10-year run at a 5-minute cadence needs).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from twin.errors import FieldProblem
from twin.programme.requests import Constraints, ExposurePlan, Request, Window
from twin.programme.survey import monitoring_requests, survey_requests

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

MIN_CADENCE_DAYS = 1e-3
MAX_CADENCE_DAYS = 3660.0
MAX_VISITS = 1_000_000
MAX_WEIGHT = 1e6
"""Largest share or priority: they are relative weights, and 10^6 : 1 is already 'only'."""
MAX_RELATIVE_DAYS = 3670.0
"""Windows relative to the start lie within the longest run (3660 nights) and its margin."""


class SurveyRegion(BaseModel):
    """An RA/Dec box; ``ra_min_deg > ra_max_deg`` wraps through RA 0."""

    model_config = _STRICT

    ra_min_deg: float = Field(default=0.0, ge=0.0, lt=360.0)
    ra_max_deg: float = Field(default=360.0, ge=0.0, le=360.0)
    dec_min_deg: float = Field(ge=-90.0, le=90.0)
    dec_max_deg: float = Field(ge=-90.0, le=90.0)
    # The tile count is capped where the network's field is known (twin.scenario).
    fov_deg: float | None = Field(
        default=None,
        gt=0.0,
        le=60.0,
        description="Tile size; default: the network's smallest field.",
    )
    overlap: float = Field(default=0.1, ge=0.0, le=0.9, description="Shared with each neighbour.")

    @model_validator(mode="after")
    def _dec_order(self) -> SurveyRegion:
        if not self.dec_min_deg < self.dec_max_deg:
            raise FieldProblem(
                "dec_max_deg",
                f"dec_min_deg ({self.dec_min_deg}) must be below dec_max_deg ({self.dec_max_deg})",
            )
        if self.ra_min_deg == self.ra_max_deg:
            raise FieldProblem(
                "ra_max_deg",
                f"empty RA range (ra_min_deg = ra_max_deg = {self.ra_min_deg}); allowed: "
                "different values (ra_min_deg > ra_max_deg wraps through 0; 0..360: all RA)",
            )
        return self


class MonitoringTarget(BaseModel):
    model_config = _STRICT

    name: str = Field(min_length=1, max_length=128)
    ra_deg: float = Field(ge=0.0, lt=360.0)
    dec_deg: float = Field(ge=-90.0, le=90.0)


RelativeDay = Annotated[float, Field(ge=-MAX_RELATIVE_DAYS, le=MAX_RELATIVE_DAYS)]


class RequestSpec(BaseModel):
    """A time-critical request written in full (the programme name is filled in)."""

    model_config = _STRICT

    request_id: str = Field(min_length=1, max_length=128)
    target_id: str | None = Field(default=None, min_length=1, max_length=128)
    ra_deg: float = Field(ge=0.0, lt=360.0)
    dec_deg: float = Field(ge=-90.0, le=90.0)
    priority: float | None = Field(default=None, gt=0.0, le=MAX_WEIGHT)
    plan: tuple[ExposurePlan, ...] | None = Field(default=None, min_length=1, max_length=100)
    constraints: Constraints | None = None
    windows: tuple[Window, ...] = Field(default=(), max_length=1000)
    windows_after_start_days: tuple[tuple[RelativeDay, RelativeDay], ...] = Field(
        default=(),
        max_length=1000,
        description="Windows as [start, end] days after the scenario's start date (00:00 UTC),"
        " for scenarios that start 'tonight'.",
    )
    cadence_days: float | None = Field(default=None, ge=MIN_CADENCE_DAYS, le=MAX_CADENCE_DAYS)
    visits: int = Field(default=1, ge=0, le=MAX_VISITS)
    sites: tuple[str, ...] = Field(default=(), max_length=64)

    @model_validator(mode="after")
    def _relative_windows(self) -> RequestSpec:
        for i, (start, end) in enumerate(self.windows_after_start_days):
            if not end > start:
                raise FieldProblem(
                    f"windows_after_start_days.{i}",
                    f"window [{start}, {end}] must end after it starts",
                )
        if self.visits == 0 and self.cadence_days is None:
            raise FieldProblem("cadence_days", "visits: 0 (repeat all run) needs cadence_days")
        return self

    def all_windows(self, start_mjd: float) -> tuple[Window, ...]:
        relative = tuple(Window(start_mjd=start_mjd + a, end_mjd=start_mjd + b)
                         for a, b in self.windows_after_start_days)  # fmt: skip
        return self.windows + relative


class ProgrammeSpec(BaseModel):
    """One programme: exactly one of ``survey``, ``targets`` or ``requests``."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=64)
    share: float = Field(
        default=1.0, gt=0.0, le=MAX_WEIGHT, description="Relative share of science time."
    )
    priority: float = Field(default=1.0, gt=0.0, le=MAX_WEIGHT)
    plan: tuple[ExposurePlan, ...] = Field(
        default=(ExposurePlan(band="r", exptime_s=60.0),), min_length=1, max_length=100
    )
    constraints: Constraints = Field(default_factory=Constraints)
    cadence_days: float | None = Field(
        default=None, ge=MIN_CADENCE_DAYS, le=MAX_CADENCE_DAYS, description="Revisit interval."
    )
    visits: int = Field(
        default=1, ge=0, le=MAX_VISITS, description="Visits per target; 0 = all run long."
    )
    min_frame_quality: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="With a pipeline: a frame scored below 100 x this does not count and "
        "its visit is repeated (default: the pipeline's min_quality).",
    )
    survey: SurveyRegion | None = None
    targets: tuple[MonitoringTarget, ...] = Field(default=(), max_length=100_000)
    requests: tuple[RequestSpec, ...] = Field(default=(), max_length=100_000)

    @model_validator(mode="after")
    def _one_kind(self) -> ProgrammeSpec:
        kinds = [k for k, v in (("survey", self.survey), ("targets", self.targets),
                                ("requests", self.requests)) if v]  # fmt: skip
        if len(kinds) != 1:
            raise FieldProblem(
                kinds[-1] if kinds else "survey",
                "give exactly one of 'survey' (a region), 'targets' (monitoring) or "
                f"'requests' (time-critical); got {kinds or 'none'}",
            )
        if self.visits == 0 and self.cadence_days is None and self.survey is None:
            raise FieldProblem("cadence_days", "visits: 0 (repeat all run) needs cadence_days")
        return self

    def expand(self, default_fov_deg: float, start_mjd: float) -> list[Request]:
        """The programme's requests."""
        common = {"program": self.name, "priority": self.priority, "plan": self.plan,
                  "constraints": self.constraints}  # fmt: skip
        if self.survey is not None:
            region = self.survey
            tiles = survey_requests(
                region.ra_min_deg, region.ra_max_deg, region.dec_min_deg, region.dec_max_deg,
                region.fov_deg or default_fov_deg, self.plan, overlap=region.overlap,
                cadence_days=self.cadence_days, visits=self.visits,
                **{k: common[k] for k in ("program", "priority", "constraints")},
            )  # fmt: skip
            return tiles
        if self.targets:
            triples = [(t.name, t.ra_deg, t.dec_deg) for t in self.targets]
            cadence = self.cadence_days or 1.0
            return monitoring_requests(
                triples, cadence, self.plan, program=self.name, priority=self.priority,
                constraints=self.constraints, visits=self.visits,
            )  # fmt: skip
        return [
            Request(
                request_id=spec.request_id,
                target_id=spec.target_id or spec.request_id,
                ra_deg=spec.ra_deg,
                dec_deg=spec.dec_deg,
                program=self.name,
                priority=spec.priority or self.priority,
                plan=spec.plan or self.plan,
                constraints=spec.constraints or self.constraints,
                windows=spec.all_windows(start_mjd),
                cadence_days=spec.cadence_days,
                visits=spec.visits,
                sites=spec.sites,
            )
            for spec in self.requests
        ]
