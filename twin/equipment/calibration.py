"""Calibration that goes stale: the photometric zero point drifts away from its last fit.

A calibration (flats, darks, standard stars) fixes the zero point and the detector's
defect maps. Between calibrations the true zero point drifts away from the calibrated
one, so the error grows with the calibration's age::

    zeropoint_error_mag(t) = zeropoint_drift_mag_per_day * age_days(t) + e_c

``e_c`` is the fit residual of calibration ``c`` (``zeropoint_calibration_rms_mag``). The
drift is taken as one-signed (positive = the true zero point is fainter than calibrated):
the things that move it between calibrations -- dust, condensation, ageing flats -- mostly
lose light. Calibrations run every ``calibration_interval_days`` (the last one a
uniform-random time before ``start_mjd``); the operations layer may register extra ones
with :meth:`CalibrationModel.add_calibration`. Figures: :mod:`twin.equipment.config`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from twin.equipment._span import check_span, checked_mjd
from twin.equipment.config import EquipmentConfig


class CalibrationModel:
    """Calibration epochs, calibration age and the zero-point error it implies."""

    def __init__(
        self, config: EquipmentConfig, rng: np.random.Generator, start_mjd: float, days: float
    ) -> None:
        self.start_mjd, self.end_mjd = check_span(start_mjd, days)
        self._config = config
        self._rng = rng
        interval = config.calibration_interval_days
        first_mjd = self.start_mjd - rng.uniform(0.0, interval)
        self._mjd = np.arange(first_mjd, self.end_mjd + 1e-9, interval)
        self._residual_mag = rng.normal(0.0, config.zeropoint_calibration_rms_mag, self._mjd.size)

    @property
    def calibration_mjd(self) -> np.ndarray:
        """Times of all calibrations, sorted (a copy)."""
        return self._mjd.copy()

    def add_calibration(self, mjd: float) -> None:
        """Register an extra calibration at ``mjd`` (e.g. after a repair)."""
        time = float(checked_mjd(mjd, self.start_mjd, self.end_mjd, "CalibrationModel"))
        where = int(np.searchsorted(self._mjd, time, side="right"))
        residual = self._rng.normal(0.0, self._config.zeropoint_calibration_rms_mag)
        self._mjd = np.insert(self._mjd, where, time)
        self._residual_mag = np.insert(self._residual_mag, where, residual)

    def _last_index(self, mjd: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        times = checked_mjd(mjd, self.start_mjd, self.end_mjd, "CalibrationModel")
        return times, np.searchsorted(self._mjd, times, side="right") - 1

    def last_calibration_mjd(self, mjd: ArrayLike) -> np.ndarray:
        """Time of the latest calibration at or before each time."""
        _, last = self._last_index(mjd)
        return self._mjd[last]

    def at(self, mjd: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(calibration_age_days, zeropoint_error_mag)`` at each time."""
        times, last = self._last_index(mjd)
        age_days = times - self._mjd[last]
        drift = self._config.zeropoint_drift_mag_per_day * age_days
        return age_days, drift + self._residual_mag[last]
