"""Detector defects: Poisson accumulation, permanence, and what the calibration knows."""

import itertools

import numpy as np
import pytest

from twin.equipment import CalibrationModel, DefectModel, EquipmentConfig

START_MJD = 60_000.0
SHAPE = (2048, 4096)


def _model(days, seed=2, **overrides):
    config = EquipmentConfig(**overrides)
    calibration = CalibrationModel(config, np.random.default_rng(seed + 1), START_MJD, days)
    defects = DefectModel(config, np.random.default_rng(seed), START_MJD, days, SHAPE, calibration)
    return defects, calibration, config


def test_hot_pixels_accumulate_at_the_configured_rate():
    days = 3652.5
    model, _, config = _model(days)
    times = START_MJD + np.array([365.25, 730.5, 1826.25, days])
    counts = model.counts_at(times)["n_hot_pixels"]
    expected = config.hot_pixel_rate_per_day * (times - START_MJD)
    assert counts == pytest.approx(expected, rel=0.05)
    assert counts[-1] == pytest.approx(expected[-1], rel=0.02)
    pixels = model.hot_pixels_at(times[-1])
    assert pixels.shape == (counts[-1], 2) and pixels.dtype.kind == "i"
    assert np.all((pixels >= 0) & (pixels < np.array(SHAPE)))
    assert np.unique(pixels[:, 0] * SHAPE[1] + pixels[:, 1]).size == counts[-1]


def test_bad_columns_are_rarer_and_never_disappear():
    days = 50 * 365.25
    model, _, _ = _model(days, bad_column_rate_per_year=2.0)
    times = np.linspace(START_MJD, START_MJD + days, 40)
    sets = [set(model.bad_columns_at(t).tolist()) for t in times]
    assert all(a <= b for a, b in itertools.pairwise(sets))
    assert len(sets[-1]) == pytest.approx(2.0 * 50, rel=0.3)
    assert all(0 <= column < SHAPE[1] for column in sets[-1])


def test_calibration_knows_defects_only_up_to_its_last_run():
    model, calibration, _ = _model(60.0, initial_hot_pixels=25, bad_column_rate_per_year=50.0)
    assert model.known_hot_pixels_at(START_MJD).sum() == 25
    mjd = START_MJD + 40.0
    last_mjd = calibration.last_calibration_mjd(mjd)
    known = model.known_hot_pixels_at(mjd)
    assert known.size == len(model.hot_pixels_at(mjd))
    assert known.sum() == len(model.hot_pixels_at(last_mjd))
    assert not known.all()
    calibration.add_calibration(mjd)
    assert model.known_hot_pixels_at(mjd).all()
    assert model.known_bad_columns_at(mjd).all()
    assert model.counts_at(mjd)["n_hot_pixels_known"] == model.counts_at(mjd)["n_hot_pixels"]
