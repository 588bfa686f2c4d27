"""The bundled model: determinism, snapshot vs timeline, plotting."""

import numpy as np
import pandas as pd
import pytest

from twin.equipment import EquipmentConfig, EquipmentModel, EquipmentState, plot_timeline

START_MJD = 60_000.0
DAYS = 120.0
TIMES = np.linspace(START_MJD, START_MJD + DAYS, 4001)


def _warming(mjd):
    return 8.0 + 4.0 * np.sin(2 * np.pi * (np.asarray(mjd) - START_MJD))


def _model(seed, config=None, days=DAYS):
    config = config or EquipmentConfig()
    return EquipmentModel(config, seed, START_MJD, days, (1024, 1024), temperature_c=_warming)


def test_same_seed_gives_identical_timelines_and_different_seeds_differ():
    first = _model(42).timeline(TIMES)
    pd.testing.assert_frame_equal(first, _model(42).timeline(TIMES))
    pd.testing.assert_frame_equal(first, _model(np.random.SeedSequence(42)).timeline(TIMES))
    other = _model(43).timeline(TIMES)
    for column in ("focus_offset_um", "throughput", "pointing_error_ra_arcsec", "n_hot_pixels"):
        assert not np.array_equal(first[column], other[column]), column


def test_changing_one_component_leaves_the_others_draws_alone():
    base = _model(42).timeline(TIMES)
    changed = _model(42, EquipmentConfig(tracking_fault_rate_per_night=2.0)).timeline(TIMES)
    pd.testing.assert_series_equal(base["focus_offset_um"], changed["focus_offset_um"])
    pd.testing.assert_series_equal(base["n_hot_pixels"], changed["n_hot_pixels"])
    assert not base["tracking_error_arcsec"].equals(changed["tracking_error_arcsec"])


def test_state_matches_the_timeline_row():
    model = _model(7, EquipmentConfig(mount={"mtbf_days": 5.0, "mttr_h": 48.0}))
    fail_mjd, repair_mjd = model.failures.intervals("mount")[0]
    mjd = 0.5 * (fail_mjd + repair_mjd)
    state = model.state_at(mjd)
    row = model.timeline([mjd]).iloc[0]
    assert isinstance(state, EquipmentState)
    assert "mount" in state.down_components and bool(row["mount_down"])
    for field in ("focus_offset_um", "throughput", "zeropoint_error_mag", "tracking_error_arcsec"):
        assert getattr(state, field) == pytest.approx(row[field])
    assert state.n_hot_pixels == row["n_hot_pixels"] and isinstance(state.n_hot_pixels, int)
    assert state.defocus_fwhm_arcsec == pytest.approx(
        model.config.defocus_blur_arcsec_per_um * abs(state.focus_offset_um)
    )
    with pytest.raises(AttributeError):
        state.throughput = 1.0


def test_queries_outside_the_span_say_how_to_fix_them():
    with pytest.raises(ValueError, match="outside the simulated span"):
        _model(1).state_at(START_MJD + DAYS + 1.0)


def test_plot_timeline_writes_a_png(tmp_path):
    model = _model(3, EquipmentConfig(dome={"mtbf_days": 10.0, "mttr_h": 24.0}))
    path = plot_timeline(model.timeline(TIMES), tmp_path / "equipment.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 20_000


def test_failures_off_change_only_the_down_columns():
    busy = {"mount": {"mtbf_days": 5.0, "mttr_h": 48.0}, "dome": {"mtbf_days": 3.0, "mttr_h": 6.0}}
    on = _model(42, EquipmentConfig(**busy)).timeline(TIMES)
    off = _model(42, EquipmentConfig(**busy, failures_enabled=False)).timeline(TIMES)
    down = [f"{name}_down" for name in ("mount", "dome", "camera")]
    assert on[down].to_numpy().any() and not off[down].to_numpy().any()
    pd.testing.assert_frame_equal(on.drop(columns=down), off.drop(columns=down))
