"""Failures: renewal statistics match MTBF/MTTR; the SimPy replay hits the schedule exactly."""

import numpy as np
import pytest
import simpy

from twin.equipment import COMPONENTS, EquipmentConfig, FailureModel, failure_process

START_MJD = 60_000.0
TEN_YEARS_D = 3652.5
# Short MTBFs give hundreds of cycles in ten years, so 15 % is a >4 sigma tolerance
# (200 seeds: rms error of the mean up time 2-4 %, of the availability 0.002-0.006).
RELIABILITY = {
    "mount": {"mtbf_days": 2.0, "mttr_h": 6.0},
    "dome": {"mtbf_days": 1.0, "mttr_h": 2.0},
    "camera": {"mtbf_days": 4.0, "mttr_h": 12.0},
}


def _model(days=TEN_YEARS_D, seed=7, **overrides):
    config = EquipmentConfig(**{**RELIABILITY, **overrides})
    return FailureModel(config, np.random.default_rng(seed), START_MJD, days)


@pytest.mark.parametrize("component", COMPONENTS)
def test_ten_years_match_mtbf_mttr_and_availability(component):
    model = _model()
    fails, repairs = np.array(model.intervals(component)).T
    up_days = fails - np.concatenate([[START_MJD], repairs[:-1]])
    repair_h = (repairs - fails) * 24.0
    expected = RELIABILITY[component]
    assert up_days.size > 600
    assert up_days.mean() == pytest.approx(expected["mtbf_days"], rel=0.15)
    assert np.median(repair_h) == pytest.approx(expected["mttr_h"], rel=0.15)
    end_mjd = START_MJD + TEN_YEARS_D
    down_days = np.sum(np.minimum(repairs, end_mjd) - fails)
    availability = 1.0 - down_days / TEN_YEARS_D
    assert availability == pytest.approx(model.expected_availability(component), abs=0.025)
    sampled = np.linspace(START_MJD, end_mjd, 200_001)
    assert 1.0 - model.is_down(component, sampled).mean() == pytest.approx(availability, abs=0.005)


def test_default_components_are_mostly_up():
    model = FailureModel(EquipmentConfig(), np.random.default_rng(1), START_MJD, TEN_YEARS_D)
    for component in COMPONENTS:
        assert 0.95 < model.expected_availability(component) < 0.999


def test_events_are_time_sorted_and_match_intervals():
    model = _model(days=200.0)
    events = model.events()
    times = [mjd for mjd, _, _ in events]
    assert times == sorted(times)
    for component in COMPONENTS:
        mine = [(mjd, kind) for mjd, name, kind in events if name == component]
        expected = [
            e for f, r in model.intervals(component) for e in ((f, "failure"), (r, "repair"))
        ]
        assert mine == expected
    fail_mjd, _ = model.intervals("dome")[0]
    assert model.is_down("dome", fail_mjd + 1e-6)
    assert not model.is_down("dome", fail_mjd - 1e-6)
    assert "dome" in model.down_components(fail_mjd + 1e-6)


def test_unknown_component_is_rejected():
    with pytest.raises(ValueError, match="unknown component 'roof'"):
        _model(days=10.0).intervals("roof")


def _run_process(model, component, mjd0, until_s):
    env = simpy.Environment()
    log = []
    env.process(
        failure_process(
            env,
            model,
            component,
            on_fail=lambda name: log.append((f"{name} failed", env.now)),
            on_repair=lambda name: log.append((f"{name} repaired", env.now)),
            mjd0=mjd0,
        )
    )
    env.run(until=until_s)
    return log


def test_simpy_process_replays_the_schedule_exactly():
    model = _model(days=60.0)
    until_s = 60.0 * 86_400.0
    log = _run_process(model, "mount", START_MJD, until_s)
    expected = [
        (label, (mjd - START_MJD) * 86_400.0)
        for fail, repair in model.intervals("mount")
        for label, mjd in (("mount failed", fail), ("mount repaired", repair))
        if (mjd - START_MJD) * 86_400.0 <= until_s
    ]
    assert len(expected) >= 6
    assert [name for name, _ in log] == [name for name, _ in expected]
    assert [t for _, t in log] == pytest.approx([t for _, t in expected], abs=1e-6)


def test_simpy_process_reports_a_failure_in_progress_at_once():
    model = _model(days=30.0)
    (fail1, repair1), (fail2, repair2) = model.intervals("camera")[:2]
    mjd0 = 0.5 * (fail1 + repair1)
    log = _run_process(model, "camera", mjd0, (repair2 - mjd0) * 86_400.0 + 1.0)
    assert [name for name, _ in log] == ["camera failed", "camera repaired"] * 2
    expected_s = [0.0, *((t - mjd0) * 86_400.0 for t in (repair1, fail2, repair2))]
    assert [t for _, t in log] == pytest.approx(expected_s, abs=1e-6)


def test_failures_switched_off_give_an_empty_schedule():
    model = _model(failures_enabled=False)
    assert model.events() == []
    for component in COMPONENTS:
        assert model.intervals(component) == []
        assert not model.is_down(component, np.linspace(START_MJD, START_MJD + 100, 50)).any()
        assert model.expected_availability(component) == 1.0
    assert model.down_components(START_MJD + 1.0) == ()
    assert _run_process(model, "mount", START_MJD, 86_400.0 * 100) == []


def test_the_switch_defaults_on_and_leaves_the_schedule_alone():
    assert EquipmentConfig().failures_enabled
    assert _model(days=200.0).events() == _model(days=200.0, failures_enabled=True).events()
