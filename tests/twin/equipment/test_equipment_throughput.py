"""Mirror throughput: compound monthly loss, partial recovery at cleaning, 1.0 at recoat."""

import numpy as np
import pytest

from twin.equipment import EquipmentConfig, ThroughputModel

START_MJD = 60_000.0
MONTH_D = 365.25 / 12


def _model(days=1500.0, seed=11, **overrides):
    config = EquipmentConfig(**overrides)
    return ThroughputModel(config, np.random.default_rng(seed), START_MJD, days), config


def _recoat_in_span(model):
    return next(t for t, kind in model.events() if kind == "recoat" and t >= model.start_mjd)


@pytest.mark.parametrize("months", [1, 6, 12, 23])
def test_loss_compounds_monthly_without_cleaning(months):
    model, config = _model(cleaning_interval_days=10_000.0)
    recoat_mjd = _recoat_in_span(model)
    value = model.at(recoat_mjd + months * MONTH_D)
    assert value == pytest.approx((1.0 - config.mirror_loss_per_month) ** months, rel=1e-12)


def test_recoat_restores_full_throughput():
    model, _ = _model()
    recoat_mjd = _recoat_in_span(model)
    assert model.at(recoat_mjd) == pytest.approx(1.0)
    assert model.at(recoat_mjd - 1e-6) < 0.95
    assert np.all(model.at(np.linspace(START_MJD, START_MJD + 1500.0, 10_000)) <= 1.0)


def test_cleaning_gives_back_the_configured_fraction():
    model, config = _model(cleaning_recovery_fraction=0.5)
    cleanings = [t for t, kind in model.events() if kind == "cleaning" and t > START_MJD + 1]
    previous, cleaning = cleanings[0], cleanings[1]
    reference = model.at(previous)
    before, after = model.at(cleaning - 1e-9), model.at(cleaning)
    assert after - before == pytest.approx(0.5 * (reference - before), rel=1e-6)
    loss = 1.0 - (1.0 - config.mirror_loss_per_month) ** (config.cleaning_interval_days / MONTH_D)
    assert after / reference == pytest.approx(1.0 - 0.5 * loss, rel=1e-9)


def test_throughput_decreases_between_events():
    model, _ = _model(days=200.0)
    times = np.linspace(START_MJD, START_MJD + 200.0, 20_001)
    steps = np.diff(model.at(times))
    event_steps = np.searchsorted(times, [t for t, _ in model.events() if t > START_MJD])
    assert np.all(np.delete(steps, event_steps - 1) <= 0.0)
