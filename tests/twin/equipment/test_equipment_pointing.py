"""Pointing: a 2-D random walk reset at model updates, plus a constant offset."""

import numpy as np
import pytest

from twin.equipment import EquipmentConfig, PointingModel

START_MJD = 60_000.0


def _model(days, seed=5, **overrides):
    config = EquipmentConfig(**overrides)
    return PointingModel(config, np.random.default_rng(seed), START_MJD, days), config


def test_drift_grows_as_sqrt_time_since_update():
    model, config = _model(
        7300.0,
        pointing_model_update_days=10.0,
        pointing_model_residual_arcsec=0.0,
        pointing_offset_arcsec=0.0,
    )
    updates = model.update_mjd[(model.update_mjd > START_MJD + 10.0)]
    ra, dec = model.at(updates - 1e-9)
    expected = config.pointing_drift_arcsec_per_sqrt_day * np.sqrt(10.0)
    assert np.sqrt(np.mean(ra**2)) == pytest.approx(expected, rel=0.1)
    assert np.sqrt(np.mean(dec**2)) == pytest.approx(expected, rel=0.1)
    assert model.at(updates[:50]) == pytest.approx(np.zeros((2, 50)), abs=1e-9)


def test_without_drift_each_update_leaves_its_residual_plus_the_offset():
    model, _ = _model(
        3650.0,
        pointing_drift_arcsec_per_sqrt_day=0.0,
        pointing_model_update_days=10.0,
        pointing_model_residual_arcsec=2.0,
        pointing_offset_arcsec=1.0,
    )
    mid_segment = model.update_mjd[1:-1] + 5.0
    assert mid_segment.size > 350
    ra, dec = model.at(mid_segment)
    assert np.std(ra) == pytest.approx(2.0, rel=0.15)
    assert np.mean(ra) == pytest.approx(model.offset_arcsec[0], abs=0.4)
    assert model.at(mid_segment + 4.0)[1] == pytest.approx(dec)


def test_constant_offset_alone():
    model, _ = _model(
        100.0, pointing_drift_arcsec_per_sqrt_day=0.0, pointing_model_residual_arcsec=0.0
    )
    ra, dec = model.at(np.linspace(START_MJD, START_MJD + 100.0, 7))
    assert ra == pytest.approx(np.full(7, model.offset_arcsec[0]))
    assert dec == pytest.approx(np.full(7, model.offset_arcsec[1]))
