"""The scorer's look-ahead: target altitudes at other sites and later times against
astropy, the forecast gate, the features' meaning, and the scorer using them."""

import dataclasses
from pathlib import Path

import astropy.units as u
import numpy as np
import pytest
from astropy.coordinates import AltAz, EarthLocation, SkyCoord
from astropy.time import Time

from agents.lookahead import LOOKAHEAD_FEATURES, Lookahead
from agents.scorer import BASE_FEATURES, SCORER_FEATURES, ScorerPolicy, load_scorer
from twin.ops.network import NetworkTwin
from twin.ops.stepping import NullRecorder
from twin.ops.world import World
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = ROOT / "scenarios" / "global-3site.yaml"
SHIPPED = ROOT / "agents" / "trained" / "es-global-3site" / "scorer.json"


class _Capture:
    """Greedy, keeping the first ``n`` decisions' Conditions and the twin."""

    def __init__(self, n: int) -> None:
        self.n, self.seen = n, []

    def decide(self, conditions):
        from twin.ops.policies import resolve_policy

        if len(self.seen) < self.n and conditions.candidates.feasible.any():
            self.seen.append(conditions)
        return resolve_policy("greedy").decide(conditions)

    def reset(self, seed):
        pass


@pytest.fixture(scope="module")
def decisions():
    world = World(load_scenario(SCENARIO, nights=1, seed=11, start="2027-04-07"))
    capture = _Capture(40)
    twin = NetworkTwin(world, capture, NullRecorder())
    twin.run()
    return world, twin, capture.seen


def _clear(conditions, transparency: float):
    """The same Conditions with a forecast of ``transparency`` everywhere."""
    return dataclasses.replace(
        conditions,
        forecast=lambda site, t, fields=None: {"transparency": np.full(np.shape(t), transparency)},
    )


def test_altitudes_elsewhere_and_later_agree_with_astropy(decisions):
    world, twin, seen = decisions
    look = Lookahead(world)
    conditions = seen[-1]
    here = look.site_of[conditions.telescope.name]
    c = conditions.candidates
    rows = np.flatnonzero(c.feasible)[:25]
    sin_dec = look.sin_dec(here, c.alt_deg[rows], c.az_deg[rows])
    queue = twin.queue
    true_dec = queue.dec_deg[c.request_index[rows]]
    assert np.degrees(np.arcsin(sin_dec)) == pytest.approx(true_dec, abs=0.3)
    times = conditions.mjd + np.array([0.05, 0.4, 0.95])
    coords = SkyCoord(queue.ra_deg[c.request_index[rows]] * u.deg, true_dec * u.deg)
    slew_d = c.slew_s[rows] / 86400.0  # a candidate's columns are at its visit's start
    for site, sw in enumerate(world.sites):
        ours = np.degrees(np.arcsin(look.sin_alt(here, site, conditions.mjd, times, sin_dec,
                                                 c.hour_angle_h[rows])))  # fmt: skip
        place = EarthLocation.from_geodetic(sw.site.lon_deg * u.deg, sw.site.lat_deg * u.deg,
                                            sw.site.height_m * u.m)  # fmt: skip
        for j, t in enumerate(times):
            when = Time(t + slew_d, format="mjd")
            frame = AltAz(obstime=when, location=place, pressure=0 * u.hPa)
            ref = coords.transform_to(frame).alt.deg
            assert ours[:, j] == pytest.approx(ref, abs=0.15), sw.site.name


def test_features_measure_what_waiting_buys(decisions):
    world, _, seen = decisions
    look = Lookahead(world)
    n_rising = 0
    for conditions in seen[::4]:
        c = conditions.candidates
        rows = np.flatnonzero(c.feasible)
        clear = look.features(_clear(conditions, 1.0), rows)
        assert clear.shape == (rows.size, len(LOOKAHEAD_FEATURES))
        assert (clear >= 0).all() and (clear <= 2).all()
        # a target past transit only sinks here tonight: nothing to gain by waiting
        setting = c.hour_angle_h[rows] > 0.2
        assert (clear[setting, 0] == 0).all()
        # a rising target transiting before the night's end gains its airmass excess
        # over the transit airmass (within the 30-min grid)
        here = look.site_of[conditions.telescope.name]
        sin_dec = look.sin_dec(here, c.alt_deg[rows], c.az_deg[rows])
        transit_x = 1.0 / np.cos(look.lat[here] - np.arcsin(sin_dec))
        hours_left = (conditions.site.night_end_mjd - conditions.mjd) * 24.0
        rising = (c.hour_angle_h[rows] < -0.5) & (-c.hour_angle_h[rows] < hours_left - 0.5)
        expected = np.clip(c.airmass[rows] - transit_x, 0.0, 2.0)[rising]
        assert clear[rising, 0] == pytest.approx(expected, abs=0.03)
        n_rising += int(rising.sum())
        # a cloudy forecast everywhere leaves no later chance
        assert (look.features(_clear(conditions, 0.0), rows) == 0).all()
    assert n_rising >= 20


def test_scorer_without_lookahead_weights_never_computes_it(decisions):
    world, _, seen = decisions
    policy = load_scorer(SHIPPED)  # trained before the look-ahead: its weights are 0
    assert not policy.looks_ahead and (policy.weights[len(BASE_FEATURES) :] == 0).all()
    policy.bind(world)
    assert policy.lookahead is None
    assert policy.decide(seen[0]) is not None  # unchanged path, no forecast needed

    def no_forecast(site, times, fields=None):
        raise AssertionError("a scorer without look-ahead weights asked for a forecast")

    for conditions in seen[:10]:
        blind = dataclasses.replace(conditions, forecast=no_forecast)
        assert policy.decide(blind) == policy.decide(conditions)


def test_lookahead_weights_change_the_choice_and_need_bind(decisions):
    world, _, seen = decisions
    w = np.zeros(len(SCORER_FEATURES))
    w[SCORER_FEATURES.index("later_here")] = -5.0  # postpone rising targets strongly
    policy = ScorerPolicy(w)
    with pytest.raises(RuntimeError, match="bind"):
        policy.decide(seen[0])
    policy.bind(world)
    greedy = ScorerPolicy(np.zeros(len(SCORER_FEATURES)))
    changed = 0
    for conditions in seen:
        ours, ref = policy.decide(conditions), greedy.decide(conditions)
        if ours != ref:
            changed += 1
            mine = look_gain(world, conditions, ours.candidate)
            theirs = look_gain(world, conditions, ref.candidate)
            assert mine <= theirs  # it took the one that gains less by waiting
    assert changed >= 3


def look_gain(world, conditions, row: int) -> float:
    return float(Lookahead(world).features(conditions, np.array([row]))[0, 0])


def test_scorer_files_from_before_the_lookahead_still_load(tmp_path):
    import json

    record = json.loads(SHIPPED.read_text())
    as_list = {**record, "weights": [record["weights"][k] for k in BASE_FEATURES]}
    path = tmp_path / "scorer.json"
    path.write_text(json.dumps(as_list))
    listed = load_scorer(path)
    assert listed.weights.tolist() == load_scorer(SHIPPED).weights.tolist()
    assert listed.weights.size == len(SCORER_FEATURES) and not listed.looks_ahead


def test_other_sites_nights_within_the_horizon_all_count(decisions):
    world, _, _ = decisions
    look = Lookahead(world)
    now = 100.0
    look.starts[1] = [99.5, 100.6, 101.6]  # a night ending soon, the next, a later one
    look.ends[1] = [100.05, 100.95, 101.9]
    windows = look._nights_ahead(1, now)
    step = look.step_d
    assert windows == [(now + step, 100.05), (100.6, 100.95)]
