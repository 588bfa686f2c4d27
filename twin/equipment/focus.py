"""Focus drift: the telescope tube changes length with temperature and the focus wanders.

Model, between two refocus events ``r`` (times ``t_r``)::

    offset_um(t) = k * (T(t) - T(t_r)) + W(t) - W(t_r) + e_r

``k`` is ``focus_temp_coeff_um_per_c`` (thermal expansion of the truss, see
:mod:`twin.equipment.config`), ``W`` a random walk (mechanical settling, unmodelled
gravity flexure) and ``e_r`` the error left by the refocus itself. The telescope refocuses
every ``refocus_interval_h`` or, sooner, at the first temperature check (every
``focus_check_interval_min``) where ``|T - T(t_r)|`` exceeds ``refocus_threshold_c`` -- the
rule robotic telescopes use. Refocusing runs around the clock here; whether the telescope
is observing is the operations layer's business.

The temperature comes from the caller (the weather model) as a vectorised callable
``temperature_c(mjd_array) -> array``; :func:`constant_temperature` is the "ideal" variant.

The extra blur is the geometric defocus disc, ``defocus_blur_arcsec_per_um * |offset|``
(FWHM, arcsec). The caller adds it **in quadrature** to the seeing FWHM: exact for two
Gaussians and within ~10 % for a disc smaller than the seeing, which is the regime a
refocusing telescope stays in.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import ArrayLike

from twin.equipment._span import H_PER_DAY, MIN_PER_DAY, check_span, checked_mjd
from twin.equipment.config import EquipmentConfig

TemperatureFn = Callable[[np.ndarray], np.ndarray]


def constant_temperature(value_c: float = 10.0) -> TemperatureFn:
    """A temperature that never changes: no thermal focus drift."""
    return lambda mjd: np.full(np.shape(mjd), float(value_c))


class FocusModel:
    """Focus offset (µm of M2 piston) and defocus blur (arcsec FWHM) over a span."""

    def __init__(
        self,
        config: EquipmentConfig,
        rng: np.random.Generator,
        start_mjd: float,
        days: float,
        temperature_c: TemperatureFn | None = None,
    ) -> None:
        self.start_mjd, self.end_mjd = check_span(start_mjd, days)
        self._config = config
        self._temperature_c = temperature_c or constant_temperature()
        step_d = config.focus_check_interval_min / MIN_PER_DAY
        n_steps = int(np.ceil(days / step_d)) + 1
        self._grid_mjd = self.start_mjd + np.arange(n_steps) * step_d
        temps_c = self._temperatures(self._grid_mjd)
        sigma_um = config.focus_random_walk_um_per_sqrt_h * np.sqrt(step_d * H_PER_DAY)
        self._walk_um = np.concatenate([[0.0], np.cumsum(rng.normal(0.0, sigma_um, n_steps - 1))])
        every = max(1, round(config.refocus_interval_h * 60.0 / config.focus_check_interval_min))
        index = _refocus_indices(temps_c, every, config.refocus_threshold_c)
        self.refocus_mjd = self._grid_mjd[index]
        self._focus_temp_c = temps_c[index]
        self._focus_walk_um = self._walk_um[index]
        self._residual_um = rng.normal(0.0, config.refocus_residual_um, index.size)

    def _temperatures(self, mjd: np.ndarray) -> np.ndarray:
        temps_c = np.asarray(self._temperature_c(mjd), dtype=float)
        if temps_c.shape != mjd.shape or not np.all(np.isfinite(temps_c)):
            raise ValueError(
                "temperature_c(mjd_array) must return finite values, one per time "
                f"(got shape {temps_c.shape} for {mjd.shape})"
            )
        return temps_c

    def offset_um(self, mjd: ArrayLike) -> np.ndarray:
        """Focus offset from best focus, µm of M2 piston (sign follows the temperature)."""
        times = checked_mjd(mjd, self.start_mjd, self.end_mjd, "FocusModel")
        last = np.searchsorted(self.refocus_mjd, times, side="right") - 1
        thermal = self._config.focus_temp_coeff_um_per_c * (
            self._temperatures(times) - self._focus_temp_c[last]
        )
        walk = np.interp(times, self._grid_mjd, self._walk_um) - self._focus_walk_um[last]
        return thermal + walk + self._residual_um[last]

    def refocus_at(self, mjd: float, residual_um: float = 0.0) -> None:
        """An extra refocus at ``mjd`` (ordered by the operations, e.g. when the pipeline
        flags defocused frames); the periodic and temperature-triggered ones stay."""
        t = float(checked_mjd(mjd, self.start_mjd, self.end_mjd, "FocusModel"))
        i = int(np.searchsorted(self.refocus_mjd, t, side="right"))
        self.refocus_mjd = np.insert(self.refocus_mjd, i, t)
        self._focus_temp_c = np.insert(self._focus_temp_c, i, self._temperatures(np.array([t]))[0])
        self._focus_walk_um = np.insert(self._focus_walk_um, i,
                                        np.interp(t, self._grid_mjd, self._walk_um))  # fmt: skip
        self._residual_um = np.insert(self._residual_um, i, float(residual_um))

    def at(self, mjd: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
        """``(offset_um, defocus_fwhm_arcsec)``; add the FWHM to the seeing in quadrature."""
        offset = self.offset_um(mjd)
        return offset, self._config.defocus_blur_arcsec_per_um * np.abs(offset)


def _refocus_indices(temps_c: np.ndarray, every: int, threshold_c: float) -> np.ndarray:
    """Grid indices of refocus events: periodic, or at the first check past the threshold."""
    indices = [0]
    current = 0
    while True:
        window = temps_c[current + 1 : current + 1 + every]
        if window.size == 0:
            break
        over = np.flatnonzero(np.abs(window - temps_c[current]) > threshold_c)
        current += int(over[0]) + 1 if over.size else every
        if current >= temps_c.size:
            break
        indices.append(current)
    return np.asarray(indices, dtype=int)
