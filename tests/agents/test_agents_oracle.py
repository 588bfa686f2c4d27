"""The offline oracle: its bound against every baseline, closed domes, a hand-solved night.

The small scenario (two sites, ~150 survey tiles, two monitoring targets, alerts) keeps
each MILP to a few seconds; the bound stays valid when HiGHS stops at its time limit
(it is the dual bound), so short limits only make it looser.
"""

import itertools
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from agents.baselines import GreedyPolicy
from agents.oracle import (
    OraclePolicy,
    build_model,
    oracle_bound,
    oracle_value_for_scenario,
    visit_variables,
)
from twin.ops.intervals import Intervals
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.ops.slew import slew_time_s
from twin.ops.world import World
from twin.programme.requests import Constraints, ExposurePlan, Request, Window
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[2]
S_PER_DAY = 86400.0
BASELINES = ("greedy", "priority", "random")
SOLVE_S = 3.0

SMALL = """
name: oracle-small
start: "2027-03-10"
nights: 1
seed: 1
sites:
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
  - site: siding-spring
    telescopes: [{name: siding-spring-1m, preset: 1m}]
weather: {model: stochastic}
programmes:
  - name: survey
    share: 0.6
    survey: {ra_min_deg: 150, ra_max_deg: 180, dec_min_deg: -32, dec_max_deg: -28, fov_deg: 1.0}
    plan: [{band: g, exptime_s: 60}, {band: r, exptime_s: 60}]
    constraints: {max_airmass: 1.8, min_moon_sep_deg: 30}
    cadence_days: 2
    visits: 0
  - name: monitoring
    share: 0.4
    priority: 2.0
    cadence_days: 0.3
    visits: 0
    plan: [{band: r, exptime_s: 60, count: 2}]
    targets:
      - {name: Omega Cen, ra_deg: 201.697, dec_deg: -47.480}
      - {name: LMC, ra_deg: 80.894, dec_deg: -69.756}
alerts:
  rate_per_day: 3.0
"""

HAND = """
name: oracle-hand
start: "2027-03-10"
nights: 1
sites:
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
weather: {model: ideal}
"""


@pytest.fixture(scope="module")
def small_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("oracle") / "small.yaml"
    path.write_text(SMALL)
    return path


def science_value(out_dir: Path) -> float:
    return float(pd.read_parquet(out_dir / "observations.parquet")["value"].sum())


def close_all_night(world: World, site_index: int) -> None:
    world.sites[site_index].dome_closed = Intervals([(world.start_mjd - 1.0, world.end_mjd + 1.0)])


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bound_is_above_every_baseline(small_path, tmp_path, seed):
    scenario = load_scenario(small_path, seed=seed)
    result = oracle_value_for_scenario(scenario, time_limit_s=SOLVE_S)
    assert math.isfinite(result.upper_bound) and result.upper_bound > 0.0
    assert result.milp_objective <= result.upper_bound + 1e-9 <= result.lp_bound + 1e-6
    assert result.n_variables == sum(result.variables_by_telescope.values()) > 0
    for name in BASELINES:
        run_scenario(scenario, tmp_path / name, name, progress=False, plots=False)
        value = science_value(tmp_path / name)
        assert 0.0 < value <= result.upper_bound, f"{name} earned {value} > {result.upper_bound}"


def test_plan_respects_each_telescope_night(small_path):
    world = World(load_scenario(small_path))
    result = oracle_bound(world, time_limit_s=SOLVE_S)
    for tw in world.telescopes:
        win = tw.site.nights[0]
        starts = [t for t, _ in result.plan[tw.name]]
        assert starts == sorted(starts)
        assert all(win.start_mjd <= t < win.end_mjd for t in starts)
        # Even a visit cut after its first exposure holds the telescope 60 s + readout.
        assert len(starts) * (60.0 + tw.telescope.readout_s) <= win.hours * 3600.0
    planned = sum(result.value_by_telescope.values())
    assert planned == pytest.approx(result.milp_objective)


def test_dome_closed_all_night_leaves_that_telescope_nothing(small_path):
    world = World(load_scenario(small_path))
    close_all_night(world, 1)
    closed, open_ = world.telescopes[1].name, world.telescopes[0].name
    result = oracle_bound(world, time_limit_s=SOLVE_S)
    assert result.variables_by_telescope[closed] == 0
    assert result.plan[closed] == [] and result.value_by_telescope[closed] == 0.0
    assert result.variables_by_telescope[open_] > 0 and result.upper_bound > 0.0


def test_bound_is_zero_when_no_telescope_can_observe(small_path):
    world = World(load_scenario(small_path))
    close_all_night(world, 0)
    world.telescopes[1].down = Intervals([(world.start_mjd - 1.0, world.end_mjd + 1.0)])
    result = oracle_bound(world, time_limit_s=SOLVE_S)
    assert result.upper_bound == 0.0 and result.milp_objective == 0.0
    assert result.status == "empty" and result.n_variables == 0


def zenith_request(world: World, request_id: str, slot: int, priority: float) -> Request:
    """A request at the zenith whose 9-minute window opens 1.5 minutes into ``slot`` (5-min
    slots): its 7.4-minute visit can only start inside that slot, so two of them cannot
    share the window."""
    site = world.sites[0]
    start = site.nights[0].start_mjd + (5.0 * slot + 1.5) / 1440.0
    lst_h = float(site.visibility.almanac.lst_hours(start + 4.0 / 1440.0))
    return Request(
        request_id=request_id,
        program="hand",
        target_id=request_id,
        priority=priority,
        ra_deg=15.0 * lst_h % 360.0,
        dec_deg=site.site.lat_deg,
        plan=(ExposurePlan(band="i", exptime_s=120.0, count=3),),
        constraints=Constraints(max_airmass=3.0, min_moon_sep_deg=0.0),
        windows=(Window(start_mjd=start, end_mjd=start + 9.0 / 1440.0),),
    )


def hand_world(tmp_path) -> World:
    """The HAND scenario's world, the dome open and the telescope up all night, quality 1
    everywhere: values are the priorities of the visits that fit."""
    path = tmp_path / "hand.yaml"
    path.write_text(HAND)
    world = World(load_scenario(path))
    world.sites[0].dome_closed = Intervals([])
    tw = world.telescopes[0]
    tw.down = Intervals([])
    tw.quality.quality = lambda band, exptime_s, m5: np.ones(np.shape(m5))
    return world


def test_hand_solved_night(tmp_path):
    """One telescope, quality 1 everywhere: two requests (priority 2 and 3) that cannot
    both fit their shared window, and one (priority 1) alone later. Optimum: 3 + 1."""
    world = hand_world(tmp_path)
    tw = world.telescopes[0]
    world.requests = [
        zenith_request(world, "a", 40, 2.0),
        zenith_request(world, "b", 40, 3.0),
        zenith_request(world, "c", 80, 1.0),
    ]
    result = oracle_bound(world, time_limit_s=20.0)
    assert result.status == "optimal"
    assert result.upper_bound == pytest.approx(4.0, abs=1e-6)
    assert result.milp_objective == pytest.approx(4.0, abs=1e-9)
    assert [result.requests[row].request_id for _, row in result.plan[tw.name]] == ["b", "c"]


def visits_end_s(world: World, order: tuple[Request, ...]) -> list[float]:
    """End (s) of each visit of ``order`` done back to back at one telescope, each as
    early as its window and the twin's slew from the previous one allow."""
    tel, site = world.telescopes[0].telescope, world.sites[0]
    t_s, pointing, ends = -math.inf, None, []
    for r in order:
        t_s = max(t_s, r.windows[0].start_mjd * S_PER_DAY)
        alt, az, _ = site.visibility.altaz(r.ra_deg, r.dec_deg, t_s / S_PER_DAY)
        if pointing is not None:
            alt0, az0, band0 = pointing
            t_s += float(slew_time_s(tel, alt0, az0, alt, az, band0, r.plan[0].band))
        pointing = (float(alt), float(az), r.plan[-1].band)
        t_s += sum(p.exptime_s + tel.readout_s for p in r.plan for _ in range(p.count))
        ends.append(t_s)
    return ends


def brute_force_value(world: World, requests: list[Request]) -> float:
    """The best value of one telescope's night over every order and subset of
    ``requests`` (quality 1, each with one window)."""
    best = 0.0
    for n in range(1, len(requests) + 1):
        for order in itertools.permutations(requests, n):
            ends = visits_end_s(world, order)
            if all(e <= r.windows[0].end_mjd * S_PER_DAY for e, r in zip(ends, order, strict=True)):
                best = max(best, sum(r.priority for r in order))
    return best


@pytest.mark.parametrize(("window_s", "both_fit"), [(895.0, False), (None, True), (1000.0, True)])
def test_slew_aware_bound_equals_the_brute_force_optimum(tmp_path, window_s, both_fit):
    """Two 7.4-min visits 51 deg apart share one window. In 895 s they fit one after the
    other only if the slew is free: the first bound says both (5), the slew-aware bound
    says the better one (3), as the brute force over every order with the twin's slews.
    With 2 s to spare over what the twin needs for both (``None``), and in 1000 s, both
    fit, and every bound and the brute force say 5: a changeover above the twin's real
    slew would fail here."""
    world = hand_world(tmp_path)
    site = world.sites[0]
    start = site.nights[0].start_mjd + 200.0 / 1440.0
    lst_h = float(site.visibility.almanac.lst_hours(start + 7.5 / 1440.0))

    def requests(window_s: float) -> list[Request]:
        return [
            Request(
                request_id=name,
                program="hand",
                target_id=name,
                priority=priority,
                ra_deg=15.0 * (lst_h - hour_angle_h) % 360.0,
                dec_deg=site.site.lat_deg,
                plan=(ExposurePlan(band="i", exptime_s=120.0, count=3),),
                constraints=Constraints(max_airmass=3.0, min_moon_sep_deg=0.0),
                windows=(Window(start_mjd=start, end_mjd=start + window_s / S_PER_DAY),),
            )
            for name, hour_angle_h, priority in (("a", -2.0, 2.0), ("b", 2.0, 3.0))
        ]

    if window_s is None:
        both = requests(1e4)
        need_s = min(visits_end_s(world, order)[-1] for order in itertools.permutations(both))
        window_s = need_s - start * S_PER_DAY + 2.0
    world.requests = requests(window_s)
    optimum = brute_force_value(world, world.requests)
    assert optimum == (5.0 if both_fit else 3.0)
    aware = oracle_bound(world, time_limit_s=20.0)
    first = oracle_bound(world, time_limit_s=20.0, slews=False)
    assert aware.status == "optimal"
    assert aware.upper_bound == pytest.approx(optimum, abs=1e-6)
    assert first.upper_bound == pytest.approx(5.0, abs=1e-6)


@pytest.mark.parametrize(("policy", "seed"), [("greedy", 2), ("random", 3)])
def test_baseline_schedule_is_a_point_of_the_milp(small_path, tmp_path, policy, seed):
    """Why the bound holds: a baseline's night, written as the MILP's variables (one per
    visit: telescope, request, slot of its first exposure, exposures completed), meets
    every row, slews and settles charged (``changeover_s``), and each variable is worth at
    least what the twin credited the visit. Random takes many long slews."""
    scenario = load_scenario(small_path, seed=seed)
    model = build_model(World(scenario), 0, 5.0, 1.0, True)
    assert model.variables.get("changeover_s").min() > 0.0
    v = model.variables
    run_scenario(scenario, tmp_path, policy, progress=False, plots=False)
    visits = visit_variables(model, pd.read_parquet(tmp_path / "observations.parquet"))
    assert np.all(v.get("value")[visits["variable"]] >= visits["value"] - 1e-9)
    x = np.zeros(model.n_cols)
    np.add.at(x, visits["variable"].to_numpy(), 1.0)
    u0 = model.n_x
    tel, slot = v.get("tel"), v.get("slot")
    occupancy = v.get("occupancy_s") + v.get("changeover_s")
    for t in sorted(model.slots_of):
        k = model.slots_of[t].starts.size
        mine = tel == t
        x[u0 : u0 + k] = np.bincount(slot[mine], occupancy[mine] * x[: model.n_x][mine], k)
        u0 += k
    constraint = model.rows.constraint(model.n_cols)
    ax = constraint.A @ x
    assert np.all(ax <= constraint.ub + 1e-6) and np.all(ax >= constraint.lb - 1e-6)


def test_registered_oracle_is_given_the_world_by_the_twin(small_path, tmp_path):
    scenario = load_scenario(small_path)
    policy = resolve_policy("oracle", time_limit_s=SOLVE_S)
    assert isinstance(policy, OraclePolicy) and policy.world is None
    run = run_scenario(scenario, tmp_path, policy, progress=False, plots=False)
    assert policy.world is run.twin.world and set(policy.results) == {0}
    assert run.metrics["run"]["policy"] == "oracle" and run.metrics["run"]["invalid_actions"] == 0
    value = science_value(tmp_path)
    assert 0.0 < value <= policy.results[0].upper_bound


def test_unbound_oracle_decides_as_greedy(small_path, tmp_path):
    """Without a world (no twin hook, no scenario) the oracle is greedy, decision by decision."""
    scenario = load_scenario(small_path)
    decisions: list[tuple] = []

    class Recorder(GreedyPolicy):
        def decide(self, conditions):
            action = super().decide(conditions)
            oracle = OraclePolicy()
            oracle.reset(np.random.SeedSequence(0))
            decisions.append((action, oracle.decide(conditions)))
            return action

    run_scenario(scenario, tmp_path, Recorder(), progress=False, plots=False)
    assert decisions and all(a == b for a, b in decisions)


def test_bad_slot_length_is_refused(small_path):
    with pytest.raises(ValueError, match="slot_min"):
        oracle_bound(World(load_scenario(small_path)), slot_min=0.0)


@pytest.mark.slow
def test_global_network_bound_is_above_every_baseline(tmp_path):
    scenario = load_scenario(ROOT / "scenarios" / "global-3site.yaml", start="2027-03-10", nights=1)
    result = oracle_value_for_scenario(scenario, time_limit_s=60.0)
    assert result.build_s + result.solve_s < 90.0
    for name in BASELINES:
        run_scenario(scenario, tmp_path / name, name, progress=False, plots=False)
        assert science_value(tmp_path / name) <= result.upper_bound


@pytest.mark.parametrize(("policy", "seed"), [("greedy", 1), ("random", 2)])
def test_changeover_is_below_every_gap_between_visits(small_path, tmp_path, policy, seed):
    """The least time charged after a visit (slew, settle, filter change) is below the time
    the twin really spent from the end of the visit's last readout to the telescope's next
    first exposure, for every pair of visits in a night; and it is not vacuous: some gaps
    come within 1.2x of it."""
    scenario = load_scenario(small_path, seed=seed)
    world = World(scenario)
    model = build_model(world, 0, 5.0, 1.0, True)
    after = model.variables.get("changeover_s")
    readout = {tw.name: tw.telescope.readout_s for tw in world.telescopes}
    run_scenario(scenario, tmp_path, policy, progress=False, plots=False)
    log = pd.read_parquet(tmp_path / "observations.parquet")
    visits = visit_variables(model, log).sort_values("t0")
    ratios = []
    for name, mine in visits.groupby("telescope"):
        ends_s = mine["t1"].to_numpy()[:-1] * 86400.0 + readout[name]
        gaps_s = mine["t0"].to_numpy()[1:] * 86400.0 - ends_s
        need_s = after[mine["variable"].to_numpy()[:-1]]
        assert np.all(gaps_s >= need_s - 1e-3), (name, float((gaps_s - need_s).min()))
        ratios.extend(gaps_s / need_s)
    assert len(ratios) > 50 and min(ratios) < 1.2
