"""Tracking faults: spells during which the mount fails to follow the sky and stars trail.

Faults (a slipping drive, wind shake, a cable snag, a bad guide star) start as a Poisson
process. The rate is given per night (``tracking_fault_rate_per_night``) and spread over
the clock at ``rate / night_length_h`` per hour, so an observing night of
``night_length_h`` hours sees that many on average whatever the almanac says. Each lasts
an exponential time (mean ``tracking_fault_mean_duration_min``); a fault that starts before
the previous one ends supersedes it, so spells never overlap. During a fault the image is
elongated by a log-normal amount (median ``tracking_fault_elongation_median_arcsec``) along
a uniform-random position angle (degrees east of north, 0-180). Outside faults only the
constant jitter remains (``tracking_jitter_arcsec``), taken along RA (PA 90 deg), where a
drive's periodic error acts. During a fault the jitter adds in quadrature.

The long-run fraction of time in a fault is about ``rate_per_hour * mean_duration_h``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from twin.equipment._span import H_PER_DAY, MIN_PER_DAY, check_span, checked_mjd
from twin.equipment.config import EquipmentConfig

JITTER_PA_DEG = 90.0


class TrackingModel:
    """Tracking error (elongation, arcsec, and its position angle, deg) over a span."""

    def __init__(
        self, config: EquipmentConfig, rng: np.random.Generator, start_mjd: float, days: float
    ) -> None:
        self.start_mjd, self.end_mjd = check_span(start_mjd, days)
        self._jitter_arcsec = config.tracking_jitter_arcsec
        rate_per_day = config.tracking_fault_rate_per_night * H_PER_DAY / config.night_length_h
        n_faults = rng.poisson(rate_per_day * days)
        self.start_fault_mjd = np.sort(self.start_mjd + rng.uniform(0.0, days, n_faults))
        duration_d = rng.exponential(config.tracking_fault_mean_duration_min, n_faults)
        ends = self.start_fault_mjd + duration_d / MIN_PER_DAY
        self.end_fault_mjd = np.minimum(ends, np.append(self.start_fault_mjd[1:], np.inf))
        median = config.tracking_fault_elongation_median_arcsec
        sigma_ln = config.tracking_fault_elongation_sigma_ln
        self.elongation_arcsec = median * rng.lognormal(0.0, sigma_ln, n_faults)
        self.pa_deg = rng.uniform(0.0, 180.0, n_faults)

    def intervals(self) -> list[tuple[float, float]]:
        """``(start_mjd, end_mjd)`` of every fault, time-sorted and non-overlapping."""
        pairs = zip(self.start_fault_mjd, self.end_fault_mjd, strict=True)
        return [(float(a), float(b)) for a, b in pairs]

    def in_fault(self, mjd: ArrayLike) -> np.ndarray:
        """True where a tracking fault is in progress."""
        return self._active(mjd)[1]

    def _active(self, mjd: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """Index of the latest fault started (-1: none) and whether it is still running."""
        times = checked_mjd(mjd, self.start_mjd, self.end_mjd, "TrackingModel")
        # A sentinel "fault" that started and ended at -inf keeps the indexing total.
        starts = np.append(-np.inf, self.start_fault_mjd)
        ends = np.append(-np.inf, self.end_fault_mjd)
        last = np.searchsorted(starts, times, side="right") - 1
        return last - 1, times < ends[last]

    def service_at(self, mjd: float) -> bool:
        """A mount service (guider re-acquired, drive reset) completed at ``mjd``: the
        fault in progress then ends there; later faults are untouched. True if one ended.

        Ordered by the operations when the pipeline flags trailed frames, so a fault is
        caught from pixels; without a service a fault lasts its drawn duration.
        """
        t = float(checked_mjd(mjd, self.start_mjd, self.end_mjd, "TrackingModel"))
        index, active = self._active(np.array([t]))
        if not active[0]:
            return False
        self.end_fault_mjd[int(index[0])] = t
        return True

    def at(self, mjd: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(tracking_error_arcsec, tracking_pa_deg)`` at each time."""
        index, active = self._active(mjd)
        elongation = np.append(self.elongation_arcsec, 0.0)[index]
        pa = np.append(self.pa_deg, JITTER_PA_DEG)[index]
        error = np.where(active, np.hypot(elongation, self._jitter_arcsec), self._jitter_arcsec)
        return error, np.where(active, pa, JITTER_PA_DEG)
