"""Observation requests: what to observe, how, and under which conditions (pydantic).

Modelled on the request languages of operating networks (e.g. the LCO observation
portal: a request holds a target, one or more exposure configurations, observing
constraints and time windows). Every field carries its unit and physical bounds, and
every number must be finite (``allow_inf_nan=False``): an infinite cadence or a 1e308-s
exposure would be written to the run's tables as inf. A bad value is rejected naming the
field and what is allowed. Convert a ``ValidationError`` for the user with
:func:`twin.errors.from_pydantic`.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

MIN_EXPTIME_S = 0.1
"""Shortest exposure: an MJD float resolves ~1 microsecond, so far shorter exposures end
when they start; 0.1 s is also about the shortest a mechanical shutter gives evenly."""

MAX_EXPTIME_S = 3600.0
"""Longest single exposure: beyond an hour cosmic rays and trailing ruin a CCD frame."""

MAX_MJD = 1e6
"""Latest MJD accepted in a window (year ~4600): a bound, not a promise of accuracy."""


class Constraints(BaseModel):
    """When a request may be observed. Moon limits do not apply while the moon is down."""

    model_config = _STRICT

    # Airmass at the horizon is ~38 (Kasten & Young 1989); no limit above it means anything.
    max_airmass: float = Field(default=2.0, ge=1.0, le=40.0, description="Highest airmass allowed.")
    min_moon_sep_deg: float = Field(default=30.0, ge=0.0, le=180.0)
    max_moon_illum: float = Field(default=1.0, ge=0.0, le=1.0, description="Moon phase 0..1.")
    max_seeing_arcsec: float | None = Field(
        default=None, gt=0.0, le=100.0, description="Worst seeing FWHM allowed; None = any seeing."
    )
    min_transparency: float = Field(default=0.0, ge=0.0, le=1.0, description="Cloud transmission.")
    # -12 deg: nautical twilight, the usual limit for broad-band imaging; -18 = astronomical.
    max_sun_alt_deg: float = Field(default=-12.0, ge=-18.0, le=0.0)


class ExposurePlan(BaseModel):
    """``count`` exposures of ``exptime_s`` seconds each in one band."""

    model_config = _STRICT

    band: str = Field(min_length=1, max_length=64, description="Filter name, e.g. 'r'.")
    exptime_s: float = Field(
        ge=MIN_EXPTIME_S, le=MAX_EXPTIME_S, description="Exposure time of one exposure, seconds."
    )
    count: int = Field(default=1, ge=1, le=1000, description="Number of exposures.")


class Window(BaseModel):
    """A time interval [start_mjd, end_mjd) (MJD, UTC) in which the request may run."""

    model_config = _STRICT

    start_mjd: float = Field(ge=0.0, le=MAX_MJD)
    end_mjd: float = Field(ge=0.0, le=MAX_MJD)

    @field_validator("end_mjd")
    @classmethod
    def _after_start(cls, end_mjd: float, info: ValidationInfo) -> float:
        start_mjd = info.data.get("start_mjd")
        if start_mjd is not None and not end_mjd > start_mjd:
            raise ValueError(
                f"end_mjd must be later than start_mjd (got start {start_mjd}, end {end_mjd})"
            )
        return end_mjd


class Request(BaseModel):
    """One target to observe with its exposures, constraints and windows.

    ``windows`` empty means "any time"; ``cadence_days`` set means the request repeats
    (monitoring) with that interval between visits.
    """

    model_config = _STRICT

    request_id: str = Field(min_length=1)
    program: str = Field(min_length=1)
    target_id: str = Field(min_length=1)
    ra_deg: float = Field(ge=0.0, lt=360.0, description="ICRS right ascension, degrees.")
    dec_deg: float = Field(ge=-90.0, le=90.0, description="ICRS declination, degrees.")
    priority: float = Field(default=1.0, gt=0.0, description="Larger is more important.")
    # Tuples keep a frozen request immutable; lists are accepted as input.
    plan: tuple[ExposurePlan, ...] = Field(min_length=1)
    constraints: Constraints = Field(default_factory=Constraints)
    windows: tuple[Window, ...] = ()
    cadence_days: float | None = Field(default=None, gt=0.0, description="Revisit interval.")
    visits: int = Field(
        default=1,
        ge=0,
        le=1_000_000,
        description="Visits wanted; 0 = repeat at the cadence all run long.",
    )
    sites: tuple[str, ...] = Field(default=(), description="Sites allowed; empty = any site.")
    alert_id: str = Field(default="", description="The alert this request follows, if any.")

    @property
    def total_exptime_s(self) -> float:
        """Open-shutter time of one visit, seconds."""
        return sum(item.exptime_s * item.count for item in self.plan)
