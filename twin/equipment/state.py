"""One telescope's equipment, and the snapshot of it that an exposure records.

:class:`EquipmentModel` owns one instance of each process (focus, throughput, pointing,
calibration, defects, tracking, failures), each with its own generator spawned from one
``numpy.random.SeedSequence``: the same seed gives the same history bit for bit, and
changing one component's configuration does not reshuffle the others' draws.
:meth:`EquipmentModel.state_at` gives the :class:`EquipmentState` at one time (what goes
into an ``Exposure`` record); :meth:`EquipmentModel.timeline` the same, vectorised, as a
table for plots and reports (:func:`twin.equipment.plot.plot_timeline`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from twin.equipment.calibration import CalibrationModel
from twin.equipment.config import EquipmentConfig
from twin.equipment.defects import DefectModel
from twin.equipment.failures import COMPONENTS, FailureModel
from twin.equipment.focus import FocusModel, TemperatureFn
from twin.equipment.plot import plot_timeline
from twin.equipment.pointing import PointingModel
from twin.equipment.throughput import ThroughputModel
from twin.equipment.tracking import TrackingModel

__all__ = ["EquipmentModel", "EquipmentState", "plot_timeline"]

# Fixed spawn order: appending a component later must not change the existing streams.
_STREAMS = ("focus", "throughput", "pointing", "calibration", "defects", "tracking", "failures")


@dataclass(frozen=True)
class EquipmentState:
    """Everything about the equipment that an exposure at one time would record."""

    focus_offset_um: float
    defocus_fwhm_arcsec: float  # add in quadrature to the seeing FWHM
    throughput: float  # relative to a fresh coating
    pointing_error_ra_arcsec: float  # dRA * cos(dec)
    pointing_error_dec_arcsec: float
    tracking_error_arcsec: float  # image elongation
    tracking_pa_deg: float  # east of north
    n_hot_pixels: int
    n_bad_columns: int
    calibration_age_days: float
    zeropoint_error_mag: float  # true minus calibrated zero point
    down_components: tuple[str, ...]
    n_hot_pixels_known: int = 0  # present in the last calibration's map
    n_bad_columns_known: int = 0


class EquipmentModel:
    """All equipment processes of one telescope over ``days`` from ``start_mjd``.

    ``seed`` is an int or a ``SeedSequence`` (e.g. this telescope's child of the run's
    sequence); a ``SeedSequence`` is spawned from, so its spawn counter advances.
    ``detector_shape`` is ``(ny, nx)``; ``temperature_c(mjd_array) -> array`` drives the
    focus (default: constant, no thermal drift). Queries outside the span raise ValueError.
    """

    def __init__(
        self,
        config: EquipmentConfig,
        seed: int | np.random.SeedSequence,
        start_mjd: float,
        days: float,
        detector_shape: tuple[int, int] = (4096, 4096),
        temperature_c: TemperatureFn | None = None,
    ) -> None:
        root = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
        rng = dict(
            zip(_STREAMS, map(np.random.default_rng, root.spawn(len(_STREAMS))), strict=True)
        )
        span = (start_mjd, days)
        self.config = config
        self.focus = FocusModel(config, rng["focus"], *span, temperature_c=temperature_c)
        self.throughput = ThroughputModel(config, rng["throughput"], *span)
        self.pointing = PointingModel(config, rng["pointing"], *span)
        self.calibration = CalibrationModel(config, rng["calibration"], *span)
        self.defects = DefectModel(
            config, rng["defects"], *span, detector_shape, calibration=self.calibration
        )
        self.tracking = TrackingModel(config, rng["tracking"], *span)
        self.failures = FailureModel(config, rng["failures"], *span)

    def _columns(self, mjd: ArrayLike) -> dict[str, np.ndarray]:
        times = np.asarray(mjd, dtype=float)
        columns: dict[str, np.ndarray] = {"mjd": times}
        columns["focus_offset_um"], columns["defocus_fwhm_arcsec"] = self.focus.at(times)
        columns["throughput"] = self.throughput.at(times)
        ra, dec = self.pointing.at(times)
        columns["pointing_error_ra_arcsec"], columns["pointing_error_dec_arcsec"] = ra, dec
        columns["tracking_error_arcsec"], columns["tracking_pa_deg"] = self.tracking.at(times)
        columns.update(self.defects.counts_at(times))
        age, zeropoint = self.calibration.at(times)
        columns["calibration_age_days"], columns["zeropoint_error_mag"] = age, zeropoint
        for name in COMPONENTS:
            columns[f"{name}_down"] = self.failures.is_down(name, times)
        return columns

    def columns(self, mjd: ArrayLike) -> dict[str, np.ndarray]:
        """Every state field as arrays over ``mjd`` (``<component>_down`` booleans too):
        the cheap vectorised form the operations loop records per exposure."""
        return self._columns(mjd)

    def state_at(self, mjd: float) -> EquipmentState:
        """The equipment snapshot at one time."""
        columns = self._columns(float(mjd))
        down = tuple(name for name in COMPONENTS if bool(columns.pop(f"{name}_down")))
        del columns["mjd"]
        values = {key: value.item() for key, value in columns.items()}
        return EquipmentState(down_components=down, **values)

    def timeline(self, mjd: ArrayLike) -> pd.DataFrame:
        """One row per time: every :class:`EquipmentState` field, with ``<component>_down``
        booleans in place of ``down_components``."""
        times = np.atleast_1d(np.asarray(mjd, dtype=float))
        return pd.DataFrame(self._columns(times))
