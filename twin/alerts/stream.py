"""A stream of alerts for targets of opportunity, and the requests that follow them up.

Alerts arrive as a Poisson process (a transient survey or a gamma-ray/gravitational-wave
trigger issuing them at random). Each alert carries a transient kind with its light curve
(:mod:`twin.alerts.lightcurves`), a position drawn isotropically on the sky within a
declination band, and an apparent r peak drawn from the Euclidean counts of a population
uniform in space, ``N(<m) ∝ 10^(0.6 m)``: most alerts are near the faint limit.

An alert is issued some time after ``t0``, the explosion, merger or burst: how long
depends on the kind (a survey catches a supernova days after explosion, a satellite
localises a GRB within minutes). The follow-up request runs from the issue time until the
transient fades below the follow-up limit; a detection at one site can ask another site to
confirm it (a second, independent detection rules out artefacts and asteroids).

Besides the random stream, a spec may list ``scheduled`` alerts: a given kind, position,
brightness and issue time. Teaching scenarios and tests use them to put one transient
exactly where a coordination pattern shows (found at one site, confirmed at another).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from twin.alerts.lightcurves import KINDS, apparent_mag, fade_days
from twin.errors import FieldProblem, excerpt
from twin.programme.requests import Constraints, ExposurePlan, Request, Window

_STRICT = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

MAX_RATE_PER_DAY = 1000.0
"""Most alerts per day: a broker filters a survey's millions down to what a follow-up
network can chase; 1000 a day already swamps any network, and a larger rate only fills
memory (1e308 overflows the Poisson draw)."""

Magnitude = Annotated[float, Field(ge=0.0, le=30.0)]
"""An apparent AB magnitude: 0 (the brightest stars) to 30 (beyond the deepest images);
10^(0.6 m) of the Euclidean counts overflows near m = 500."""

Days = Annotated[float, Field(ge=0.0, le=3660.0)]
"""A delay or window in days, at most the longest run."""

PROGRAM = "alerts"
"""Programme name of every alert request."""
CONFIRM_SUFFIX = "-confirm"
"""A confirmation request's id is ``{alert_id}-confirm`` (:func:`is_confirmation`)."""

DEFAULT_KIND_FRACTIONS: Mapping[str, float] = {
    "sn_ia": 0.5,
    "sn_cc": 0.3,
    "kilonova": 0.05,
    "grb_afterglow": 0.15,
}

# Days from t0 to the alert, drawn uniformly in [low, high]. SNe Ia: 2-10 d before their
# 18-d peak (ZTF/LSST-like surveys with a 2-3 d cadence); SNe II: within ~5 d of explosion
# (young SNe caught on the rise); kilonovae: ~0.5 d after the GW trigger (AT2017gfo was
# found 0.47 d after GW170817, Coulter et al. 2017); GRBs: Swift/BAT positions reach the
# ground in minutes, optical counterparts within ~0.05 d.
DEFAULT_DISCOVERY_DELAY_DAYS: Mapping[str, tuple[float, float]] = {
    "sn_ia": (8.0, 16.0),
    "sn_cc": (1.0, 6.0),
    "kilonova": (0.3, 0.7),
    "grb_afterglow": (0.005, 0.05),
}

# Afterglows at onset (~0.01 d) are ~3 mag brighter than at 0.1 d, where they are r ≈ 16-20
# (Kann et al. 2010); the supernova range would leave most of them below the limit by the
# time the alert is out.
DEFAULT_PEAK_MAG_RANGE_R_BY_KIND: Mapping[str, tuple[float, float]] = {
    "grb_afterglow": (13.0, 16.5),
}


def _check_kinds(keys: Iterable[str], field: str) -> None:
    unknown = sorted(set(keys) - set(KINDS))
    if unknown:
        raise ValueError(
            f"{field}: unknown transient kind(s) {excerpt(unknown)}; allowed kinds: "
            f"{', '.join(KINDS)}"
        )


def _check_range(low_high: tuple[float, float], what: str, field: str = "") -> None:
    low, high = low_high
    if not low < high:
        raise FieldProblem(field, f"{what} must be (low, high) with low < high (got {low_high})")


class FollowupSpec(BaseModel):
    """How an alert is followed up: exposures, priority, visits and their spacing."""

    model_config = _STRICT

    plan: tuple[ExposurePlan, ...] = Field(
        default=(ExposurePlan(band="g", exptime_s=120.0), ExposurePlan(band="r", exptime_s=120.0)),
        min_length=1,
        description="Exposures of one visit.",
    )
    priority: float = Field(default=10.0, gt=0.0, le=1e6, description="Larger is more important.")
    constraints: Constraints = Field(
        default_factory=lambda: Constraints(max_airmass=2.0, min_moon_sep_deg=20.0)
    )
    visits: int = Field(default=3, ge=1, le=1000, description="Follow-up visits per alert.")
    cadence_days: float = Field(
        default=0.5, ge=1e-3, le=365.0, description="Least spacing of visits."
    )
    window_days: float | None = Field(
        default=None, gt=0.0, le=3660.0, description="Window after issue; None = until it fades."
    )
    limit_mag: Magnitude = Field(default=21.5, description="Faintest r worth following, AB mag.")
    min_window_days: float = Field(default=0.5, gt=0.0, le=3660.0, description="Shortest window.")
    confirm: bool = Field(default=True, description="Ask another site to confirm a detection.")
    confirm_priority_factor: float = Field(default=1.5, ge=1.0, le=100.0)
    confirm_window_days: float = Field(default=1.0, gt=0.0, le=365.0)


class ScheduledAlert(BaseModel):
    """One alert at a fixed time and place, added to the random stream."""

    model_config = _STRICT

    kind: str = Field(description="A transient kind with a light curve.")
    ra_deg: float = Field(ge=0.0, lt=360.0)
    dec_deg: float = Field(ge=-90.0, le=90.0)
    issued_after_start_days: Days = Field(
        description="Issue time, days after the scenario's start date (00:00 UTC)."
    )
    peak_mag_r: Magnitude = Field(description="Apparent r at peak, AB mag.")
    discovery_delay_days: float | None = Field(
        default=None,
        gt=0.0,
        le=1000.0,
        description="Days from t0 to the alert; None: the middle of the kind's range in "
        "AlertSpec.discovery_delay_days.",
    )

    @field_validator("kind")
    @classmethod
    def _known_kind(cls, kind: str) -> str:
        _check_kinds([kind], "kind")
        return kind


class AlertSpec(BaseModel):
    """The alert stream: rate, mix of kinds, brightness and sky distributions, follow-up."""

    model_config = _STRICT

    rate_per_day: float = Field(
        default=1.0, ge=0.0, le=MAX_RATE_PER_DAY, description="Mean alerts per day."
    )
    kinds: dict[str, Annotated[float, Field(ge=0.0, le=1e6)]] = Field(
        default_factory=lambda: dict(DEFAULT_KIND_FRACTIONS),
        description="Fraction of alerts of each kind; normalised to sum 1.",
    )
    peak_mag_range_r: tuple[Magnitude, Magnitude] = Field(
        default=(15.5, 20.0), description="Apparent r at peak, AB mag (Euclidean counts)."
    )
    peak_mag_range_r_by_kind: dict[str, tuple[Magnitude, Magnitude]] = Field(
        default_factory=lambda: dict(DEFAULT_PEAK_MAG_RANGE_R_BY_KIND),
        description="Per-kind overrides of peak_mag_range_r.",
    )
    discovery_delay_days: dict[str, tuple[Days, Days]] = Field(
        default_factory=lambda: dict(DEFAULT_DISCOVERY_DELAY_DAYS),
        description="Uniform range of days from t0 to the alert, per kind; merged with the "
        "defaults.",
    )
    dec_range_deg: tuple[float, float] = Field(default=(-90.0, 90.0))
    scheduled: tuple[ScheduledAlert, ...] = Field(
        default=(),
        max_length=10_000,
        description="Alerts at fixed times and places, issued as well as the random ones "
        "(rate_per_day may be 0); those issued outside the run are left out.",
    )
    followup: FollowupSpec = Field(default_factory=FollowupSpec)

    @field_validator("kinds")
    @classmethod
    def _normalise_kinds(cls, kinds: dict[str, float]) -> dict[str, float]:
        _check_kinds(kinds, "kinds")
        negative = {kind: value for kind, value in kinds.items() if not value >= 0.0}
        if negative:
            raise ValueError(f"kinds: fractions must be >= 0 (got {negative})")
        total = sum(kinds.values())
        if not total > 0.0:
            raise ValueError(f"kinds: fractions must have a positive sum (got {kinds})")
        return {kind: value / total for kind, value in kinds.items()}

    @field_validator("peak_mag_range_r_by_kind")
    @classmethod
    def _check_peak_ranges(
        cls, ranges: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        _check_kinds(ranges, "peak_mag_range_r_by_kind")
        for kind, low_high in ranges.items():
            _check_range(low_high, f"peak_mag_range_r_by_kind[{kind}]", kind)
        return ranges

    @field_validator("discovery_delay_days")
    @classmethod
    def _merge_delays(
        cls, delays: dict[str, tuple[float, float]]
    ) -> dict[str, tuple[float, float]]:
        _check_kinds(delays, "discovery_delay_days")
        for kind, (low, high) in delays.items():
            if not 0.0 <= low <= high:
                raise FieldProblem(
                    kind,
                    f"discovery_delay_days[{kind}] must be (low, high) with 0 <= low <= high "
                    f"(got {(low, high)})",
                )
        return {**DEFAULT_DISCOVERY_DELAY_DAYS, **delays}

    @model_validator(mode="after")
    def _check_ranges(self) -> AlertSpec:
        _check_range(self.peak_mag_range_r, "peak_mag_range_r", "peak_mag_range_r")
        low, high = self.dec_range_deg
        if not -90.0 <= low < high <= 90.0:
            raise FieldProblem(
                "dec_range_deg",
                f"dec_range_deg must satisfy -90 <= low < high <= 90 (got {self.dec_range_deg})",
            )
        return self

    def peak_range_r(self, kind: str) -> tuple[float, float]:
        """The apparent r peak range of ``kind``, AB mag."""
        return self.peak_mag_range_r_by_kind.get(kind, self.peak_mag_range_r)


@dataclass(frozen=True)
class Alert:
    """One transient: what it is, where, when it went off and when the alert came out."""

    alert_id: str
    kind: str
    ra_deg: float
    dec_deg: float
    t0_mjd: float
    issued_mjd: float
    peak_mag_r: float

    def mag(self, band: str, mjd: ArrayLike) -> np.ndarray:
        """Apparent AB magnitude in ``band`` at ``mjd``; ``+inf`` at or before t0."""
        days = np.asarray(mjd, dtype=float) - self.t0_mjd
        return apparent_mag(self.kind, band, days, self.peak_mag_r)


def euclidean_mags(rng: np.random.Generator, low: float, high: float, size: int) -> np.ndarray:
    """Draws from ``N(<m) ∝ 10^(0.6 m)`` truncated to [low, high] (inverse CDF)."""
    a, b = 10.0 ** (0.6 * low), 10.0 ** (0.6 * high)
    return np.log10(a + rng.uniform(size=size) * (b - a)) / 0.6


def generate_alerts(
    spec: AlertSpec,
    start_mjd: float,
    end_mjd: float,
    seed: int | np.random.SeedSequence,
    *,
    id_prefix: str = "alert",
    schedule_epoch_mjd: float | None = None,
) -> list[Alert]:
    """Alerts issued in [start_mjd, end_mjd), sorted by issue time; same seed, same list.

    Random alerts have ids ``f"{id_prefix}-{index:04d}"`` in issue order; the scheduled ones
    ``f"{id_prefix}-sched-{index:02d}"`` in the order of ``spec.scheduled``, issued
    ``issued_after_start_days`` after ``schedule_epoch_mjd`` (default ``start_mjd``, the
    scenario's start). Pass another ``id_prefix`` when streams for several periods are
    joined, and the first period's start as ``schedule_epoch_mjd`` so that each scheduled
    alert falls in one period only. Scheduled alerts draw nothing from the generator: adding
    them leaves the random alerts of a seed unchanged.
    """
    if not end_mjd >= start_mjd:
        raise ValueError(f"end_mjd must be >= start_mjd (got {start_mjd}, {end_mjd})")
    epoch_mjd = start_mjd if schedule_epoch_mjd is None else schedule_epoch_mjd
    scheduled = [
        scheduled_alert(item, spec, epoch_mjd, f"{id_prefix}-sched-{index:02d}")
        for index, item in enumerate(spec.scheduled)
    ]
    inside = [alert for alert in scheduled if start_mjd <= alert.issued_mjd < end_mjd]
    random = _random_alerts(spec, start_mjd, end_mjd, seed, id_prefix)
    return sorted(random + inside, key=lambda alert: alert.issued_mjd)


def scheduled_alert(
    item: ScheduledAlert, spec: AlertSpec, epoch_mjd: float, alert_id: str
) -> Alert:
    """The :class:`Alert` of one scheduled entry, issued ``issued_after_start_days`` after
    ``epoch_mjd``. Its t0 is ``discovery_delay_days`` before the issue, or, when that is not
    given, the middle of ``spec.discovery_delay_days[kind]``."""
    delay_days = item.discovery_delay_days
    if delay_days is None:
        delay_days = 0.5 * sum(spec.discovery_delay_days[item.kind])
    issued_mjd = epoch_mjd + item.issued_after_start_days
    return Alert(
        alert_id=alert_id,
        kind=item.kind,
        ra_deg=item.ra_deg,
        dec_deg=item.dec_deg,
        t0_mjd=issued_mjd - delay_days,
        issued_mjd=issued_mjd,
        peak_mag_r=item.peak_mag_r,
    )


def _random_alerts(
    spec: AlertSpec,
    start_mjd: float,
    end_mjd: float,
    seed: int | np.random.SeedSequence,
    id_prefix: str,
) -> list[Alert]:
    """The Poisson stream of ``spec.rate_per_day``, sorted by issue time."""
    rng = np.random.default_rng(seed)
    count = int(rng.poisson(spec.rate_per_day * (end_mjd - start_mjd)))
    issued = np.sort(rng.uniform(start_mjd, end_mjd, count))
    names = list(spec.kinds)
    kinds = rng.choice(len(names), size=count, p=[spec.kinds[name] for name in names])
    ra_deg = rng.uniform(0.0, 360.0, count)
    sin_low, sin_high = np.sin(np.radians(spec.dec_range_deg))
    dec_deg = np.degrees(np.arcsin(rng.uniform(sin_low, sin_high, count)))
    peak_mag_r = np.empty(count)
    delay_days = np.empty(count)
    for index, name in enumerate(names):  # one vector draw per kind, in a fixed order
        chosen = kinds == index
        peak_mag_r[chosen] = euclidean_mags(rng, *spec.peak_range_r(name), int(chosen.sum()))
        delay_days[chosen] = rng.uniform(*spec.discovery_delay_days[name], int(chosen.sum()))
    return [
        Alert(
            alert_id=f"{id_prefix}-{i:04d}",
            kind=names[kinds[i]],
            ra_deg=float(ra_deg[i]),
            dec_deg=float(dec_deg[i]),
            t0_mjd=float(issued[i] - delay_days[i]),
            issued_mjd=float(issued[i]),
            peak_mag_r=float(peak_mag_r[i]),
        )
        for i in range(count)
    ]


def _followup(spec: AlertSpec | FollowupSpec) -> FollowupSpec:
    return spec.followup if isinstance(spec, AlertSpec) else spec


def _request(fields: dict, **newer_fields) -> Request:
    """A Request with ``newer_fields`` (``sites``, ``visits``, ``alert_id``) passed only where
    :class:`Request` has them, so this module works with versions before and after them."""
    present = {name: value for name, value in newer_fields.items() if name in Request.model_fields}
    return Request(**fields, **present)


def followup_end_mjd(alert: Alert, spec: AlertSpec | FollowupSpec, issued_mjd: float) -> float:
    """End of the follow-up window: ``window_days`` after issue, or when the transient fades
    below ``limit_mag`` in r; never less than ``min_window_days`` after issue."""
    followup = _followup(spec)
    if followup.window_days is not None:
        end_mjd = issued_mjd + followup.window_days
    else:
        end_mjd = alert.t0_mjd + fade_days(alert.kind, alert.peak_mag_r, followup.limit_mag)
    return max(end_mjd, issued_mjd + followup.min_window_days)


def followup_request(
    alert: Alert,
    spec: AlertSpec | FollowupSpec,
    issued_mjd: float | None = None,
    sites: Sequence[str] = (),
) -> Request:
    """The request that follows ``alert`` up, from ``issued_mjd`` (default: the alert's issue
    time) to :func:`followup_end_mjd`, revisiting every ``cadence_days``.

    It asks for ``followup.visits`` visits (the ``visits`` field of the request; the caller
    counts them where Request has no such field). ``sites`` restricts where it may run
    (empty: anywhere).
    """
    followup = _followup(spec)
    start_mjd = alert.issued_mjd if issued_mjd is None else issued_mjd
    fields = dict(
        request_id=f"{alert.alert_id}-fu",
        program=PROGRAM,
        target_id=alert.alert_id,
        ra_deg=alert.ra_deg,
        dec_deg=alert.dec_deg,
        priority=followup.priority,
        plan=followup.plan,
        constraints=followup.constraints,
        windows=(Window(start_mjd=start_mjd, end_mjd=followup_end_mjd(alert, spec, start_mjd)),),
        cadence_days=followup.cadence_days,
    )
    return _request(fields, sites=tuple(sites), visits=followup.visits, alert_id=alert.alert_id)


def is_confirmation(request_id: str) -> bool:
    """Whether ``request_id`` names an alert's confirmation request."""
    return request_id.endswith(CONFIRM_SUFFIX)


def confirmation_request(
    alert: Alert,
    spec: AlertSpec | FollowupSpec,
    detected_mjd: float,
    detecting_site: str,
    all_sites: Sequence[str],
) -> Request:
    """One visit by any site but ``detecting_site`` within ``confirm_window_days`` of the
    detection, at ``confirm_priority_factor`` times the follow-up priority."""
    followup = _followup(spec)
    others = tuple(site for site in all_sites if site != detecting_site)
    if not others:
        raise ValueError(
            f"no site other than {detecting_site!r} to confirm {alert.alert_id} "
            f"(all_sites={tuple(all_sites)}); set followup.confirm=False for one-site networks"
        )
    fields = dict(
        request_id=f"{alert.alert_id}{CONFIRM_SUFFIX}",
        program=PROGRAM,
        target_id=alert.alert_id,
        ra_deg=alert.ra_deg,
        dec_deg=alert.dec_deg,
        priority=followup.priority * followup.confirm_priority_factor,
        plan=followup.plan,
        constraints=followup.constraints,
        windows=(
            Window(start_mjd=detected_mjd, end_mjd=detected_mjd + followup.confirm_window_days),
        ),
    )
    return _request(fields, sites=others, visits=1, alert_id=alert.alert_id)


ALERT_COLUMNS: tuple[str, ...] = (
    "alert_id",
    "kind",
    "ra_deg",
    "dec_deg",
    "t0_mjd",
    "issued_mjd",
    "peak_mag_r",
)


def alerts_frame(alerts: Iterable[Alert]) -> pd.DataFrame:
    """One row per alert, columns :data:`ALERT_COLUMNS` (also for no alerts)."""
    rows = [[getattr(alert, column) for column in ALERT_COLUMNS] for alert in alerts]
    return pd.DataFrame(rows, columns=list(ALERT_COLUMNS))
