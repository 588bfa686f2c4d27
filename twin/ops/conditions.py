"""What a scheduler sees at a decision, what it may answer, and the Policy seam.

Every scheduler — random, greedy, priority dispatch, a trained network, the offline
oracle replaying its plan — is a :class:`Policy` that receives one :class:`Conditions`
and returns an :class:`Observe` or a :class:`Wait`. Conditions carry measurements and
forecasts, never the weather's future truth, so comparisons are like for like.

The candidates are columns (numpy arrays of length K, one entry per request that could
be started now at this telescope): a policy scores K requests with a few array
operations, and the RL envs turn the same columns into observation features.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class Observe:
    """Start the visit of candidate ``candidate`` (an index into ``Conditions.candidates``)."""

    candidate: int


@dataclass(frozen=True)
class Wait:
    """Do nothing for ``seconds`` (the twin may wake the telescope earlier)."""

    seconds: float = 300.0


Action = Observe | Wait


@dataclass(frozen=True)
class Candidates:
    """K requests that this telescope could start now, as columns.

    ``feasible`` is the constraint engine's verdict for starting after the slew and
    finishing the whole visit (geometry at both ends, sun, moon, measured seeing and
    transparency, windows, the night's end). Infeasible rows are kept so that a learning
    agent can see them masked; baselines choose among ``feasible`` rows only.
    """

    request_index: np.ndarray  # int, row in the run's request queue
    priority: np.ndarray
    program_index: np.ndarray  # int, into Conditions.program_names
    is_alert: np.ndarray  # bool, follows an alert
    alt_deg: np.ndarray  # at the start of the visit (after the slew)
    az_deg: np.ndarray
    airmass: np.ndarray
    airmass_end: np.ndarray
    hour_angle_h: np.ndarray
    moon_sep_deg: np.ndarray
    slew_s: np.ndarray
    visit_s: np.ndarray  # exposures + readouts + filter changes of the visit
    quality: np.ndarray  # expected effective-time ratio 0..1 from measured conditions
    value: np.ndarray  # priority x quality: what completing the visit is expected to earn
    setting_h: np.ndarray  # hours until the target leaves its airmass limit (inf: never)
    visits_left: np.ndarray  # int, visits still wanted (-1: unlimited)
    visits_done: np.ndarray  # int, visits already made (0: an alert not yet followed)
    feasible: np.ndarray  # bool

    def __len__(self) -> int:
        return len(self.request_index)

    @classmethod
    def empty(cls) -> Candidates:
        f, i, b = np.empty(0), np.empty(0, dtype=np.int64), np.empty(0, dtype=bool)
        return cls(i, f, i, b, f, f, f, f, f, f, f, f, f, f, f, i, i, b)


@dataclass(frozen=True)
class TelescopeStatus:
    """A telescope as the network sees it at the decision."""

    name: str
    site: str
    state: str  # observing | idle | closed | down | day
    alt_deg: float
    az_deg: float
    band: str | None
    busy_until_mjd: float


@dataclass(frozen=True)
class SiteStatus:
    """Measured conditions at a site now (its seeing monitor and all-sky camera)."""

    name: str
    is_night: bool
    dome_open: bool
    seeing_zenith_arcsec: float
    transparency: float
    cloud_cover: float
    night_end_mjd: float  # end of the current (or next) night window
    sun_alt_deg: float
    moon_alt_deg: float
    moon_illum: float


@dataclass(frozen=True)
class MeasuredFrame:
    """What a site's pipeline measured on one frame, as the centre received it."""

    mjd: float  # when the centre received it
    obs_id: int
    score: float  # 0..100, NaN if no stage scores frames
    seeing_arcsec: float  # measured image FWHM, NaN if not measured
    active_flags: tuple[str, ...]  # e.g. ("focus",), see twin.pipeline.stage.FLAG_NAMES
    expected_quality: float = float("nan")
    """The quality 0..1 the scheduler expected of the frame's visit from the site's
    monitors when it chose it (not the truth): ``score / 100 / expected_quality`` says how
    much worse (or better) the telescope delivers than its monitors promise."""


@dataclass
class Conditions:
    """The one snapshot a policy receives at a decision.

    ``forecast(site, mjd, fields=None)`` gives forecast weather fields at future times, as
    issued at this moment (no truth); ``fields`` (names) limits what is computed.
    ``open_alerts`` are alert ids the centre knows and still wants followed.
    ``program_share_target`` / ``program_share_used`` are the fractions of science time
    each programme should have and has had so far. ``sites`` and ``telescopes`` (the rest
    of the network) are built only when a policy reads them: most decisions need only
    their own telescope's candidates.
    """

    mjd: float
    telescope: TelescopeStatus
    site: SiteStatus
    candidates: Candidates
    program_names: tuple[str, ...]
    program_share_target: np.ndarray
    program_share_used: np.ndarray
    open_alerts: tuple[str, ...]
    forecast: Callable[[str, np.ndarray], dict[str, np.ndarray]] = field(repr=False)
    network: Callable[[], tuple[tuple[SiteStatus, ...], tuple[TelescopeStatus, ...]]] = field(
        repr=False, default=lambda: ((), ())
    )
    measured: Mapping[str, MeasuredFrame] = field(default_factory=dict)
    """By telescope name, the latest frame measurement the centre has received from the
    site pipeline (empty without a pipeline): measured from pixels, never the truth."""
    program_min_quality: np.ndarray | None = None
    """Per programme (order of ``program_names``), the quality 0..1 below which the centre
    rejects a frame and repeats its visit (zeros or None: nothing is rejected)."""

    @cached_property
    def _network_now(self) -> tuple[tuple[SiteStatus, ...], tuple[TelescopeStatus, ...]]:
        return self.network()

    @property
    def sites(self) -> tuple[SiteStatus, ...]:
        """Every site's status now, in scenario order."""
        return self._network_now[0]

    @property
    def telescopes(self) -> tuple[TelescopeStatus, ...]:
        """Every telescope's status now, in scenario order."""
        return self._network_now[1]


@runtime_checkable
class Policy(Protocol):
    """A scheduler: ``decide`` maps Conditions to an Action.

    ``reset`` is called once before a run with the policy's own SeedSequence (spawned from
    the run's), so a stochastic policy is reproducible and independent of other streams.
    """

    name: str

    def reset(self, seed: np.random.SeedSequence) -> None: ...

    def decide(self, conditions: Conditions) -> Action: ...
