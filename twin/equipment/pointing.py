"""Pointing error: where the telescope actually points, relative to where it was told to.

After a pointing model is fitted (TPOINT-style, every ``pointing_model_update_days``) the
error is the fit's residual (``pointing_model_residual_arcsec`` rms per axis). It then
wanders as a 2-D random walk (``pointing_drift_arcsec_per_sqrt_day``): flexure, seasonal
thermal changes and settling of the mount that the model does not know about. On top sits
a small constant per-telescope offset (``pointing_offset_arcsec`` rms per axis), the part
no model update removes (e.g. instrument-to-mount alignment).

Errors are ``(dRA * cos(dec), dDec)`` in arcsec, so both axes are true angles on the sky.
The walk is drawn on a half-hour grid and interpolated linearly (the Brownian-bridge mean);
pointing does not change faster than that in any way an exposure would notice. The first
update happened a uniform-random time before ``start_mjd`` and the walk starts there, so
the error at ``start_mjd`` already carries that much drift.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from twin.equipment._span import H_PER_DAY, check_span, checked_mjd
from twin.equipment.config import EquipmentConfig

GRID_STEP_H = 0.5


class PointingModel:
    """Pointing error (arcsec on the sky, per axis) over a span."""

    def __init__(
        self, config: EquipmentConfig, rng: np.random.Generator, start_mjd: float, days: float
    ) -> None:
        self.start_mjd, self.end_mjd = check_span(start_mjd, days)
        interval = config.pointing_model_update_days
        first_mjd = self.start_mjd - rng.uniform(0.0, interval)
        self.update_mjd = np.arange(first_mjd, self.end_mjd + 1e-9, interval)
        step_d = GRID_STEP_H / H_PER_DAY
        n_steps = int(np.ceil((self.end_mjd - first_mjd) / step_d)) + 1
        self._grid_mjd = first_mjd + np.arange(n_steps) * step_d
        sigma = config.pointing_drift_arcsec_per_sqrt_day * np.sqrt(step_d)
        steps = rng.normal(0.0, sigma, size=(2, n_steps - 1))
        self._walk_arcsec = np.concatenate([np.zeros((2, 1)), np.cumsum(steps, axis=1)], axis=1)
        self._walk_at_update = self._walk(self.update_mjd)
        residual = config.pointing_model_residual_arcsec
        self._residual_arcsec = rng.normal(0.0, residual, size=(2, self.update_mjd.size))
        self.offset_arcsec = rng.normal(0.0, config.pointing_offset_arcsec, size=2)

    def _walk(self, times: np.ndarray) -> np.ndarray:
        return np.stack([np.interp(times, self._grid_mjd, axis) for axis in self._walk_arcsec])

    def at(self, mjd: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(d_ra_cosdec_arcsec, d_dec_arcsec)`` at each time."""
        times = checked_mjd(mjd, self.start_mjd, self.end_mjd, "PointingModel")
        last = np.searchsorted(self.update_mjd, times, side="right") - 1
        error = (
            self._walk(times.ravel()).reshape((2, *times.shape))
            - self._walk_at_update[:, last]
            + self._residual_arcsec[:, last]
            + self.offset_arcsec.reshape((2,) + (1,) * times.ndim)
        )
        return error[0], error[1]
