"""Tracking faults: Poisson spells whose time fraction is rate x mean duration."""

import numpy as np
import pytest

from twin.equipment import EquipmentConfig, TrackingModel

START_MJD = 60_000.0
DAYS = 3652.5


def _model(seed=9, **overrides):
    config = EquipmentConfig(**overrides)
    return TrackingModel(config, np.random.default_rng(seed), START_MJD, DAYS), config


def test_fraction_of_time_in_fault_is_rate_times_duration():
    model, config = _model()
    rate_per_h = config.tracking_fault_rate_per_night / config.night_length_h
    expected = rate_per_h * config.tracking_fault_mean_duration_min / 60.0
    spans = np.diff(np.array(model.intervals()), axis=1)
    assert spans.sum() / DAYS == pytest.approx(expected, rel=0.15)
    times = np.random.default_rng(0).uniform(START_MJD, START_MJD + DAYS, 400_000)
    assert model.in_fault(times).mean() == pytest.approx(expected, rel=0.15)


def test_elongation_during_faults_and_jitter_outside():
    model, config = _model()
    assert np.median(model.elongation_arcsec) == pytest.approx(
        config.tracking_fault_elongation_median_arcsec, rel=0.1
    )
    start, end = model.intervals()[10]
    error, pa = model.at(np.array([start - 1e-6, 0.5 * (start + end), end + 1e-9]))
    jitter = config.tracking_jitter_arcsec
    assert error[[0, 2]] == pytest.approx([jitter, jitter])
    assert error[1] == pytest.approx(np.hypot(model.elongation_arcsec[10], jitter))
    assert pa[1] == pytest.approx(model.pa_deg[10]) and 0.0 <= pa[1] < 180.0


def test_no_faults_at_zero_rate():
    model, config = _model(tracking_fault_rate_per_night=0.0)
    error, pa = model.at(np.linspace(START_MJD, START_MJD + DAYS, 100))
    assert model.intervals() == []
    assert error == pytest.approx(np.full(100, config.tracking_jitter_arcsec))
    assert pa == pytest.approx(np.full(100, 90.0))


def test_a_service_ends_the_fault_in_progress_and_no_other():
    model, config = _model()
    (s10, e10), (s11, e11) = model.intervals()[10:12]
    t = 0.5 * (s10 + e10)
    assert model.service_at(t) is True
    assert model.intervals()[10] == (s10, t) and model.intervals()[11] == (s11, e11)
    error, _ = model.at(np.array([t - 1e-6, t + 1e-9]))
    assert error[0] > config.tracking_jitter_arcsec
    assert error[1] == pytest.approx(config.tracking_jitter_arcsec)
    # Between faults there is nothing to clear.
    assert model.service_at(0.5 * (t + s11)) is False
    assert model.intervals()[11] == (s11, e11)
