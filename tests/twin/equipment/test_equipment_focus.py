"""Focus: thermal drift at the configured coefficient, resets at refocus, random walk."""

import numpy as np
import pytest

from twin.equipment import EquipmentConfig, FocusModel, constant_temperature

START_MJD = 60_000.0
RAMP_C_PER_H = -0.35


def _ramp(mjd):
    return 10.0 + RAMP_C_PER_H * (np.asarray(mjd) - START_MJD) * 24.0


def _model(days, temperature_c, seed=3, **overrides):
    config = EquipmentConfig(**overrides)
    rng = np.random.default_rng(seed)
    return FocusModel(config, rng, START_MJD, days, temperature_c=temperature_c), config


def test_offset_follows_a_temperature_ramp_and_resets_at_refocus():
    model, config = _model(
        2.0,
        _ramp,
        focus_random_walk_um_per_sqrt_h=0.0,
        refocus_residual_um=0.0,
        refocus_interval_h=100.0,
        refocus_threshold_c=1.0,
    )
    # 0.35 °C/h checked every 5 min crosses 1.0 °C at the 35th check: 175 min.
    spacing_min = np.diff(model.refocus_mjd) * 1440.0
    assert spacing_min == pytest.approx(np.full(spacing_min.size, 175.0), abs=1e-6)
    first, second = model.refocus_mjd[3], model.refocus_mjd[4]
    times = np.linspace(first, second - 1e-6, 50)
    offsets, blur = model.at(times)
    slope_um_per_h = np.polyfit((times - first) * 24.0, offsets, 1)[0]
    coeff = config.focus_temp_coeff_um_per_c
    assert slope_um_per_h == pytest.approx(coeff * RAMP_C_PER_H, rel=1e-9)
    assert model.offset_um(model.refocus_mjd) == pytest.approx(0.0, abs=1e-9)
    assert blur == pytest.approx(config.defocus_blur_arcsec_per_um * np.abs(offsets))
    assert np.max(np.abs(model.offset_um(np.linspace(START_MJD, START_MJD + 2, 5000)))) < (
        coeff * (1.0 + 0.35 / 12)
    )


def test_constant_temperature_refocuses_on_the_clock():
    model, _ = _model(3.0, constant_temperature(5.0), refocus_interval_h=2.0)
    assert np.diff(model.refocus_mjd) * 24.0 == pytest.approx(2.0, abs=1e-9)


def test_random_walk_grows_as_sqrt_time_between_refocuses():
    model, config = _model(365.0, None, refocus_residual_um=0.0)
    before_refocus = model.refocus_mjd[1:] - 1e-9
    rms_um = np.sqrt(np.mean(model.offset_um(before_refocus) ** 2))
    expected_um = config.focus_random_walk_um_per_sqrt_h * np.sqrt(config.refocus_interval_h)
    assert rms_um == pytest.approx(expected_um, rel=0.1)


def test_bad_temperature_callable_and_out_of_span_queries_fail_clearly():
    with pytest.raises(ValueError, match="one per time"):
        _model(1.0, lambda mjd: 3.0)
    model, _ = _model(1.0, None)
    with pytest.raises(ValueError, match="longer `days`"):
        model.at(START_MJD + 1.5)
