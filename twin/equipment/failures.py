"""Failures and repairs of the mount, the dome and the camera.

Each component is an alternating renewal process, independent of the others: up times
are exponential with mean ``mtbf_days`` (constant hazard: random failures of a mature
system, not wear-out), repair times log-normal with **median** ``mttr_h`` and spread
``repair_sigma_ln`` (most repairs are quick resets, a few wait for parts or staff). The
mean repair time is therefore ``mttr_h * exp(sigma_ln**2 / 2)`` and the long-run
availability ``MTBF / (MTBF + mean repair)``. Every component starts up at ``start_mjd``.

The whole schedule is drawn up front, so the operations layer can replay it: either from
:meth:`FailureModel.events` or with the SimPy process :func:`failure_process`. Intervals
cover every failure up to the end of the span; the last repair may fall after it. With
``failures_enabled`` false the schedule is empty: nothing is drawn, and since this model
has its own generator the other equipment processes see the same draws either way.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import numpy as np
import simpy
from numpy.typing import ArrayLike

from twin.equipment._span import H_PER_DAY, S_PER_DAY, check_span, checked_mjd
from twin.equipment.config import EquipmentConfig, ReliabilityConfig

COMPONENTS = ("mount", "dome", "camera")


class FailureModel:
    """Failure/repair schedule of each component over a span."""

    def __init__(
        self, config: EquipmentConfig, rng: np.random.Generator, start_mjd: float, days: float
    ) -> None:
        self.start_mjd, self.end_mjd = check_span(start_mjd, days)
        self._reliability: dict[str, ReliabilityConfig] = {}
        self._fail_mjd: dict[str, np.ndarray] = {}
        self._repair_mjd: dict[str, np.ndarray] = {}
        self.enabled = config.failures_enabled
        for name, sub_rng in zip(COMPONENTS, rng.spawn(len(COMPONENTS)), strict=True):
            reliability = getattr(config, name)
            if self.enabled:
                fails, repairs = _renewal(sub_rng, reliability, self.start_mjd, self.end_mjd)
            else:
                fails, repairs = np.empty(0), np.empty(0)
            self._reliability[name] = reliability
            self._fail_mjd[name], self._repair_mjd[name] = fails, repairs

    def _check(self, component: str) -> str:
        if component not in COMPONENTS:
            raise ValueError(f"unknown component {component!r}; choose one of {COMPONENTS}")
        return component

    def intervals(self, component: str) -> list[tuple[float, float]]:
        """``(fail_mjd, repair_mjd)`` of every failure of ``component``, time-sorted."""
        name = self._check(component)
        pairs = zip(self._fail_mjd[name], self._repair_mjd[name], strict=True)
        return [(float(f), float(r)) for f, r in pairs]

    def is_down(self, component: str, mjd: ArrayLike) -> np.ndarray:
        """True where ``component`` is failed and not yet repaired."""
        name = self._check(component)
        times = checked_mjd(mjd, self.start_mjd, self.end_mjd, "FailureModel")
        fails = np.append(-np.inf, self._fail_mjd[name])
        repairs = np.append(-np.inf, self._repair_mjd[name])
        last = np.searchsorted(fails, times, side="right") - 1
        return times < repairs[last]

    def down_components(self, mjd: float) -> tuple[str, ...]:
        """Names of the components down at ``mjd``."""
        return tuple(name for name in COMPONENTS if bool(self.is_down(name, mjd)))

    def events(self) -> list[tuple[float, str, str]]:
        """Every ``(mjd, component, "failure" | "repair")``, sorted by time."""
        events = [
            event
            for name in COMPONENTS
            for fail, repair in self.intervals(name)
            for event in ((fail, name, "failure"), (repair, name, "repair"))
        ]
        return sorted(events)

    def expected_availability(self, component: str) -> float:
        """Long-run fraction of time up: MTBF / (MTBF + mean log-normal repair time);
        1 with failures switched off."""
        rel = self._reliability[self._check(component)]
        if not self.enabled:
            return 1.0
        mean_repair_days = rel.mttr_h / H_PER_DAY * np.exp(rel.repair_sigma_ln**2 / 2.0)
        return rel.mtbf_days / (rel.mtbf_days + mean_repair_days)


def _renewal(
    rng: np.random.Generator, rel: ReliabilityConfig, start_mjd: float, end_mjd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Failure and repair times of one alternating renewal process, starting up."""
    fails: list[float] = []
    repairs: list[float] = []
    now = start_mjd + rng.exponential(rel.mtbf_days)
    while now <= end_mjd:
        repair_days = rel.mttr_h / H_PER_DAY * rng.lognormal(0.0, rel.repair_sigma_ln)
        fails.append(now)
        repairs.append(now + repair_days)
        now += repair_days + rng.exponential(rel.mtbf_days)
    return np.asarray(fails), np.asarray(repairs)


def failure_process(
    env: simpy.Environment,
    model: FailureModel,
    component: str,
    on_fail: Callable[[str], Any],
    on_repair: Callable[[str], Any],
    mjd0: float,
) -> Generator[simpy.Event, Any, None]:
    """SimPy process replaying ``component``'s failures; ``env.now`` is seconds since ``mjd0``.

    Calls ``on_fail(component)`` / ``on_repair(component)`` at the scheduled times. A failure
    already in progress when the process starts is reported at once; repairs that happened
    before ``env.now`` are skipped. Use as ``env.process(failure_process(...))``.
    """
    for fail_mjd, repair_mjd in model.intervals(component):
        repair_s = (repair_mjd - mjd0) * S_PER_DAY
        if repair_s <= env.now:
            continue
        yield env.timeout(max(0.0, (fail_mjd - mjd0) * S_PER_DAY - env.now))
        on_fail(component)
        yield env.timeout(repair_s - env.now)
        on_repair(component)
