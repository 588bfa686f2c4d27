"""The constraint engine's per-night caches: the slot grid and the slot's sky.

Both only narrow what a decision looks at; neither may change a candidate. The slot grid
leaves out rows that can never be feasible again (their last window has closed); the
slot's sky is filled for the rows that may open in the slot, and a row it skipped gets
the same value, bit for bit, when a decision asks for it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agents.baselines import GreedyPolicy
from twin.ops.candidates import SKY_SLOT_MIN, SLOT_GRID_SPAN_D, SLOT_MIN, CandidateBuilder
from twin.ops.network import NetworkTwin
from twin.ops.stepping import NullRecorder
from twin.ops.world import World
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def twin() -> NetworkTwin:
    """dense-8site after two nights of greedy: surveyed fields wait out their cadence."""
    scenario = load_scenario(ROOT / "scenarios" / "dense-8site.yaml", nights=2, seed=3)
    network = NetworkTwin(World(scenario), GreedyPolicy(), NullRecorder())
    network.run()
    return network


def fresh_builder(twin: NetworkTwin, unit: int = 0) -> CandidateBuilder:
    t = twin.world.telescopes[unit]
    return CandidateBuilder(twin.queue, t.site.visibility, t.telescope, t.quality)


def night_mid(twin: NetworkTwin, unit: int = 0) -> float:
    night = twin.world.telescopes[unit].site.nights[-1]
    return 0.5 * (night.start_mjd + night.end_mjd)


def test_rows_whose_last_window_closed_leave_the_slot_grid(twin):
    mjd = night_mid(twin)
    queue = twin.queue
    before = fresh_builder(twin)._slot_rows(mjd)
    row = int(np.flatnonzero(before)[0])
    saved = queue.window_start[row].copy(), queue.window_end[row].copy()
    try:
        queue.window_start[row] = np.nan
        queue.window_end[row] = np.nan
        queue.window_start[row, 0], queue.window_end[row, 0] = mjd - 0.2, mjd - 1e-6
        queue._last_end = np.empty(0)  # a run never edits a window; this test does
        after = fresh_builder(twin)._slot_rows(mjd)
        assert not after[row]
        others = np.arange(len(queue)) != row
        np.testing.assert_array_equal(after[others], before[others])
        # A window still open keeps it: the end is compared with the grid's start.
        queue.window_end[row, 0] = mjd + 1e-6
        queue._last_end = np.empty(0)
        assert fresh_builder(twin)._slot_rows(mjd)[row]
    finally:
        queue.window_start[row], queue.window_end[row] = saved
        queue._last_end = np.empty(0)


def test_one_slot_grid_a_night_reaching_its_end(twin):
    builder = fresh_builder(twin)
    first, second = twin.world.telescopes[0].site.nights[-2:]
    builder._slot_rows(first.start_mjd, first.end_mjd)
    t0, columns = builder._slot_t0, builder._slot_ok.shape[1]
    assert t0 == first.start_mjd
    hours = (first.end_mjd - first.start_mjd) * 24.0
    assert columns == pytest.approx(hours * 60.0 / SLOT_MIN + 2.0, abs=1.0)
    for mjd in np.linspace(first.start_mjd, first.end_mjd - 1e-6, 50):
        builder._slot_rows(float(mjd), first.end_mjd)
        assert builder._slot_t0 == t0  # not rebuilt within the night (nor at 0h UTC)
    builder._slot_rows(second.start_mjd, second.end_mjd)
    assert builder._slot_t0 == second.start_mjd
    # Without a night's end (daytime), the grid reaches SLOT_GRID_SPAN_D ahead.
    builder._slot_rows(second.end_mjd + 0.1)
    assert builder._slot_ok.shape[1] == pytest.approx(
        SLOT_GRID_SPAN_D * 1440.0 / SLOT_MIN + 2, abs=1
    )


def test_openable_at_a_slots_end_holds_every_row_open_in_the_slot(twin):
    checked = 0
    for unit, t in enumerate(twin.world.telescopes):
        builder = fresh_builder(twin, unit)
        night = t.site.nights[-1]
        first = int(night.start_mjd * 1440.0 / SKY_SLOT_MIN)
        last = int(night.end_mjd * 1440.0 / SKY_SLOT_MIN)
        for slot in range(first, last + 1):
            slot_end = (slot + 1) * SKY_SLOT_MIN / 1440.0
            may = twin.queue.openable(builder.site_index, slot_end)
            assert may.sum() < len(twin.queue)  # cadence keeps surveyed fields out
            for when in np.linspace(slot * SKY_SLOT_MIN / 1440.0, slot_end, 7)[:-1]:
                open_rows = twin.queue.open_rows(builder.site_index, float(when))
                assert may[open_rows].all()
                checked += open_rows.size
    assert checked > 10_000


def test_slot_sky_of_rows_the_fill_skipped_is_exact(twin):
    mjd = night_mid(twin)
    lazy = fresh_builder(twin)
    lazy._slot_rows(mjd)
    rows = np.arange(len(twin.queue))
    slot = int(mjd * 1440.0 / SKY_SLOT_MIN)
    skipped = ~twin.queue.openable(lazy.site_index, (slot + 1) * SKY_SLOT_MIN / 1440.0)
    assert skipped.sum() > 100  # the filled-on-demand path is exercised
    got = lazy._slot_sky(rows, mjd)
    whole = fresh_builder(twin)
    whole._prepare(mjd)
    whole._sky = np.full(len(twin.queue), np.nan)
    whole._fill_sky(rows, (slot + 0.5) * SKY_SLOT_MIN / 1440.0)
    assert np.isfinite(got).all()
    np.testing.assert_array_equal(got, whole._sky)
