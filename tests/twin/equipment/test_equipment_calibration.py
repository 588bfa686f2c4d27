"""Calibration: age grows between calibrations and drives the zero-point error."""

import numpy as np
import pytest

from twin.equipment import CalibrationModel, EquipmentConfig

START_MJD = 60_000.0


def _model(days=60.0, seed=4, **overrides):
    config = EquipmentConfig(**overrides)
    return CalibrationModel(config, np.random.default_rng(seed), START_MJD, days), config


def test_age_and_zeropoint_error_grow_linearly_and_reset():
    model, config = _model(zeropoint_calibration_rms_mag=0.0)
    times = np.linspace(START_MJD, START_MJD + 60.0, 6001)
    age, error = model.at(times)
    assert np.all((age >= 0.0) & (age < config.calibration_interval_days + 1e-9))
    assert error == pytest.approx(config.zeropoint_drift_mag_per_day * age)
    assert np.diff(model.calibration_mjd) == pytest.approx(config.calibration_interval_days)
    assert age.max() == pytest.approx(config.calibration_interval_days, abs=0.02)


def test_extra_calibration_resets_the_age():
    model, config = _model()
    mjd = START_MJD + 20.0 + 0.37
    age_before, _ = model.at(mjd)
    model.add_calibration(mjd)
    age, error = model.at(np.array([mjd, mjd + 1.0]))
    assert age == pytest.approx([0.0, 1.0])
    assert error[1] - error[0] == pytest.approx(config.zeropoint_drift_mag_per_day)
    assert model.last_calibration_mjd(mjd + 0.5) == pytest.approx(mjd)
    assert age_before > 0.0
