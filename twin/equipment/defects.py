"""Detector defects that accumulate: hot pixels and bad columns.

Hot pixels appear as a Poisson process (``hot_pixel_rate_per_day`` over the whole
detector) at uniform-random, distinct positions; bad columns (a charge trap or a damaged
amplifier path) appear far more rarely (``bad_column_rate_per_year``). Both are permanent
within the span: nothing here anneals them away. ``initial_hot_pixels`` and
``initial_bad_columns`` are present (and known) from the start.

What the *calibration* knows matters as much as the truth: a defect that appeared after the
last calibration is missing from the hot-pixel / bad-column maps, so the pipeline will not
mask it. :meth:`DefectModel.known_hot_pixels_at` answers that from the calibration schedule
(:class:`twin.equipment.calibration.CalibrationModel`), including calibrations registered
later. Figures: :mod:`twin.equipment.config`.

Positions follow numpy's frame convention: ``detector_shape = (ny, nx)``, hot pixels as
``(row, column)`` pairs (``frame[rows, cols]``), bad columns as column indices.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike

from twin.equipment._span import DAYS_PER_YEAR, check_span, checked_mjd
from twin.equipment.config import EquipmentConfig


class CalibrationClock(Protocol):
    def last_calibration_mjd(self, mjd: ArrayLike) -> np.ndarray: ...


class DefectModel:
    """Hot pixels and bad columns: when each appeared and whether the calibration knows it."""

    def __init__(
        self,
        config: EquipmentConfig,
        rng: np.random.Generator,
        start_mjd: float,
        days: float,
        detector_shape: tuple[int, int],
        calibration: CalibrationClock,
    ) -> None:
        self.start_mjd, self.end_mjd = check_span(start_mjd, days)
        ny, nx = (int(n) for n in detector_shape)
        if ny <= 0 or nx <= 0:
            raise ValueError(f"detector_shape must be (ny, nx) > 0; got {detector_shape}")
        self._calibration = calibration
        hot_rate = config.hot_pixel_rate_per_day
        col_rate = config.bad_column_rate_per_year / DAYS_PER_YEAR
        self.hot_mjd = _arrivals(rng, hot_rate, config.initial_hot_pixels, start_mjd, days)
        self.bad_column_mjd = _arrivals(rng, col_rate, config.initial_bad_columns, start_mjd, days)
        if self.hot_mjd.size > ny * nx or self.bad_column_mjd.size > nx:
            raise ValueError("more defects than the detector has pixels; lower the rates")
        flat = rng.choice(ny * nx, size=self.hot_mjd.size, replace=False)
        self.hot_pixels = np.stack([flat // nx, flat % nx], axis=1).astype(int)
        self.bad_columns = rng.choice(nx, size=self.bad_column_mjd.size, replace=False)

    def _count(self, appeared_mjd: np.ndarray, mjd: ArrayLike) -> np.ndarray:
        times = checked_mjd(mjd, self.start_mjd, self.end_mjd, "DefectModel")
        return np.searchsorted(appeared_mjd, times, side="right")

    def _count_known(self, appeared_mjd: np.ndarray, mjd: ArrayLike) -> np.ndarray:
        calibrated_mjd = self._calibration.last_calibration_mjd(mjd)
        return np.searchsorted(appeared_mjd, calibrated_mjd, side="right")

    def hot_pixels_at(self, mjd: float) -> np.ndarray:
        """``(N, 2)`` int array of ``(row, column)`` of the hot pixels present at ``mjd``."""
        return self.hot_pixels[: int(self._count(self.hot_mjd, mjd))]

    def bad_columns_at(self, mjd: float) -> np.ndarray:
        """Column indices of the bad columns present at ``mjd``."""
        return self.bad_columns[: int(self._count(self.bad_column_mjd, mjd))]

    def known_hot_pixels_at(self, mjd: float) -> np.ndarray:
        """Boolean mask over :meth:`hot_pixels_at`: True where the last calibration saw it."""
        present = int(self._count(self.hot_mjd, mjd))
        return np.arange(present) < int(self._count_known(self.hot_mjd, mjd))

    def known_bad_columns_at(self, mjd: float) -> np.ndarray:
        """Boolean mask over :meth:`bad_columns_at`: True where the last calibration saw it."""
        present = int(self._count(self.bad_column_mjd, mjd))
        return np.arange(present) < int(self._count_known(self.bad_column_mjd, mjd))

    def counts_at(self, mjd: ArrayLike) -> dict[str, np.ndarray]:
        """Vectorised counts: ``n_hot_pixels``, ``n_hot_pixels_known``, ``n_bad_columns``..."""
        return {
            "n_hot_pixels": self._count(self.hot_mjd, mjd),
            "n_hot_pixels_known": self._count_known(self.hot_mjd, mjd),
            "n_bad_columns": self._count(self.bad_column_mjd, mjd),
            "n_bad_columns_known": self._count_known(self.bad_column_mjd, mjd),
        }


def _arrivals(
    rng: np.random.Generator, rate_per_day: float, initial: int, start_mjd: float, days: float
) -> np.ndarray:
    """Sorted appearance times: ``initial`` at -inf, then a Poisson process over the span."""
    new_mjd = np.sort(start_mjd + rng.uniform(0.0, days, rng.poisson(rate_per_day * days)))
    return np.concatenate([np.full(initial, -np.inf), new_mjd])
