"""Mirror throughput: dust and ageing dim the aluminium; cleaning and recoating restore it.

Relative throughput (1.0 = freshly coated) decays by ``mirror_loss_per_month`` compounded
continuously, ``level(t) = level_e * (1 - loss) ** ((t - t_e) / month)`` after the last
event ``e``. Events:

- cleaning (CO2 snow, every ``cleaning_interval_days`` after a recoat) gives back
  ``cleaning_recovery_fraction`` of what was lost since the previous event; the rest is
  permanent (films, corrosion) until the next recoat;
- recoating (every ``recoat_interval_days``) restores 1.0.

The loss figure applies to the whole mirror train (it is what photometric zero points
measure). The telescope was last recoated a uniform-random time before ``start_mjd``, so
a network's telescopes are not all fresh on day one; that phase is the only randomness.
Figures and sources: :mod:`twin.equipment.config`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from twin.equipment._span import DAYS_PER_MONTH, check_span, checked_mjd
from twin.equipment.config import EquipmentConfig

RECOAT = "recoat"
CLEANING = "cleaning"


class ThroughputModel:
    """Relative mirror throughput over a span, from a precomputed cleaning/recoat schedule."""

    def __init__(
        self, config: EquipmentConfig, rng: np.random.Generator, start_mjd: float, days: float
    ) -> None:
        self.start_mjd, self.end_mjd = check_span(start_mjd, days)
        self._decay_per_month = 1.0 - config.mirror_loss_per_month
        first_recoat_mjd = self.start_mjd - rng.uniform(0.0, config.recoat_interval_days)
        self.event_mjd, self.event_kind = _schedule(config, first_recoat_mjd, self.end_mjd)
        self._level_after = self._levels(config.cleaning_recovery_fraction)

    def _decay(self, elapsed_days: np.ndarray | float) -> np.ndarray:
        return np.power(self._decay_per_month, np.asarray(elapsed_days) / DAYS_PER_MONTH)

    def _levels(self, recovery: float) -> np.ndarray:
        levels = np.ones(self.event_mjd.size)
        for i in range(1, self.event_mjd.size):
            if self.event_kind[i] == RECOAT:
                continue
            reference = levels[i - 1]
            before = reference * self._decay(self.event_mjd[i] - self.event_mjd[i - 1])
            levels[i] = before + recovery * (reference - before)
        return levels

    def at(self, mjd: ArrayLike) -> np.ndarray:
        """Relative throughput (1.0 = fresh coating) at each time."""
        times = checked_mjd(mjd, self.start_mjd, self.end_mjd, "ThroughputModel")
        last = np.searchsorted(self.event_mjd, times, side="right") - 1
        return self._level_after[last] * self._decay(times - self.event_mjd[last])

    def events(self) -> list[tuple[float, str]]:
        """``(mjd, "recoat" | "cleaning")`` from the last recoat before the span to its end."""
        return [(float(t), str(k)) for t, k in zip(self.event_mjd, self.event_kind, strict=True)]


def _schedule(
    config: EquipmentConfig, first_recoat_mjd: float, end_mjd: float
) -> tuple[np.ndarray, np.ndarray]:
    """Recoats every recoat interval; cleanings every cleaning interval after each recoat."""
    times: list[float] = []
    kinds: list[str] = []
    recoat_mjd = first_recoat_mjd
    while recoat_mjd <= end_mjd:
        next_recoat_mjd = recoat_mjd + config.recoat_interval_days
        cleanings = np.arange(
            recoat_mjd, min(next_recoat_mjd, end_mjd + 1e-9), config.cleaning_interval_days
        )[1:]
        times += [recoat_mjd, *cleanings.tolist()]
        kinds += [RECOAT] + [CLEANING] * cleanings.size
        recoat_mjd = next_recoat_mjd
    return np.asarray(times), np.asarray(kinds)
