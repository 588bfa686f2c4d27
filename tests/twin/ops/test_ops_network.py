"""The operations engine against independent references: astropy for the logged geometry,
the scenario's own limits for every exposure, and a second run for reproducibility."""

from __future__ import annotations

import math

import astropy.units as u
import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import AltAz, SkyCoord, get_body
from astropy.time import Time

from twin.astro.almanac import site_location
from twin.errors import ConfigError
from twin.ops.conditions import Observe, Wait
from twin.ops.network import NetworkTwin
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.ops.stepping import NullRecorder
from twin.ops.world import World
from twin.scenario import load_scenario
from twin.world.sites import SITES

SCENARIO = "scenarios/global-3site.yaml"
DATE = "2027-03-10"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    scenario = load_scenario(SCENARIO, start=DATE, nights=2, seed=3)
    out = tmp_path_factory.mktemp("run")
    result = run_scenario(scenario, out, "greedy", progress=False, plots=True)
    obs = pd.read_parquet(out / "observations.parquet")
    events = pd.read_parquet(out / "events.parquet")
    timeline = pd.read_parquet(out / "timeline.parquet")
    nights = pd.read_parquet(out / "nights.parquet")
    return result, obs, events, timeline, nights


def test_run_writes_every_table_and_plot(run):
    result, obs, *_ = run
    for name in ("scenario.yaml", "observations.parquet", "events.parquet", "timeline.parquet",
                 "alerts.parquet", "requests.parquet", "nights.parquet", "weather.parquet",
                 "metrics.json", "plots/timeline.png", "plots/sky_map.png",
                 "plots/site_weather.png"):  # fmt: skip
        assert (result.out_dir / name).exists(), name
    for name in ("observations", "events", "timeline"):  # one Parquet part per day
        assert (result.out_dir / f"{name}.parquet" / "part-00000.parquet").is_file(), name
    assert len(obs) > 300
    assert obs["obs_id"].is_unique
    assert set(obs["site"]) == {"cerro-pachon", "sutherland", "siding-spring"}


def test_logged_geometry_matches_astropy(run):
    _, obs, *_ = run
    sample = obs.sample(40, random_state=1)
    for site_name, rows in sample.groupby("site"):
        loc = site_location(SITES[site_name])
        t = Time(rows["mjd_start"].to_numpy(), format="mjd", scale="utc")
        frame = AltAz(obstime=t, location=loc)  # no pressure: refraction off, as logged
        altaz = SkyCoord(rows["ra_deg"].to_numpy() * u.deg,
                         rows["dec_deg"].to_numpy() * u.deg).transform_to(frame)  # fmt: skip
        alt = altaz.alt.deg
        np.testing.assert_allclose(rows["alt_deg"], alt, atol=10 / 3600)
        # Airmass: plane-parallel sec(z) differs from the logged (curved-atmosphere)
        # airmass by < 0.5 % below X = 2.
        np.testing.assert_allclose(rows["airmass"], 1 / np.sin(np.radians(alt)), rtol=5e-3)
        sun = get_body("sun", t, loc).transform_to(frame)
        np.testing.assert_allclose(rows["sun_alt_deg"], sun.alt.deg, atol=0.05)
        moon = get_body("moon", t, loc)
        sep = moon.transform_to(frame).separation(altaz).deg
        np.testing.assert_allclose(rows["moon_sep_deg"], sep, atol=0.1)


def test_no_exposure_breaks_a_constraint(run):
    result, obs, events, _, _ = run
    assert result.metrics["constraint_violations"]["count"] == 0
    assert obs["sun_alt_deg"].max() <= -12.0
    assert obs["sun_alt_end_deg"].max() <= -12.0
    assert (obs[["airmass", "airmass_end"]].max(axis=1) <= 2.0).all()
    # Nothing while the dome is closed: check against the dome events directly.
    for site, rows in obs.groupby("site"):
        ev = events[(events["site"] == site) & events["kind"].isin(["dome_close", "dome_open"])]
        closes = ev[ev["kind"] == "dome_close"]["mjd"].to_numpy()
        opens = ev[ev["kind"] == "dome_open"]["mjd"].to_numpy()
        for start in closes:
            end = opens[opens > start].min() if (opens > start).any() else math.inf
            inside = (rows["mjd_end"] > start) & (rows["mjd_start"] < end)
            assert not inside.any(), f"{site}: exposure during closure at {start}"


def test_timeline_partitions_each_night(run):
    _, _, _, timeline, nights = run
    hours = (timeline["mjd_end"] - timeline["mjd_start"]) * 24
    per = timeline.assign(h=hours).groupby(["site", "telescope", "night"])["h"].sum()
    for (site, _tel, night), total in per.items():
        expected = nights[(nights["site"] == site) & (nights["night"] == night)]["hours"].iloc[0]
        assert total == pytest.approx(expected, abs=1e-6)
    assert (timeline["mjd_end"] >= timeline["mjd_start"]).all()


def test_metrics_account_for_the_night(run):
    result, obs, *_ = run
    net = result.metrics["network"]
    assert net["exposures"] == len(obs)
    assert net["science_value"] == pytest.approx(obs["value"].sum())
    assert sum(net["fraction"].values()) == pytest.approx(1.0, abs=1e-9)
    assert 0.0 < net["open_shutter_fraction"] < 0.8


def test_alert_requests_reach_sites_after_the_link(run):
    result, _, events, *_ = run
    latency_days = result.twin.world.scenario.links.default.latency_ms / 1000 / 86400
    received = events[events["kind"] == "alert_received"].set_index("ref")["mjd"]
    released = events[events["kind"] == "request_released"]
    checked = 0
    for _, row in released.iterrows():
        alert_id = row["detail"]
        if alert_id in received.index and row["ref"].endswith("-fu"):
            assert row["mjd"] >= received[alert_id] + latency_days - 1e-9
            checked += 1
    assert checked >= 3  # the run has alerts: the check did not pass on an empty loop


def test_same_seed_same_run_and_other_seed_differs(tmp_path):
    def once(seed, name):
        scenario = load_scenario(SCENARIO, start=DATE, nights=1, seed=seed)
        out = tmp_path / name
        run_scenario(scenario, out, "random", progress=False, plots=False)
        return (pd.read_parquet(out / "observations.parquet"),
                pd.read_parquet(out / "events.parquet"))  # fmt: skip

    a_obs, a_ev = once(5, "a")
    b_obs, b_ev = once(5, "b")
    pd.testing.assert_frame_equal(a_obs, b_obs)
    pd.testing.assert_frame_equal(a_ev, b_ev)
    c_obs, _ = once(6, "c")
    assert not a_obs[["mjd_start"]].equals(c_obs[["mjd_start"]])


def test_baselines_rank_as_documented():
    from twin.ops.conditions import Candidates

    def candidates(priority, value, slew, feasible):
        n = len(priority)
        f = np.asarray
        return Candidates(
            request_index=np.arange(n), priority=f(priority, float), program_index=np.zeros(n, int),
            is_alert=np.zeros(n, bool), alt_deg=np.full(n, 60.0), az_deg=np.zeros(n),
            airmass=np.ones(n), airmass_end=np.ones(n), hour_angle_h=np.zeros(n),
            moon_sep_deg=np.full(n, 90.0), slew_s=f(slew, float), visit_s=np.full(n, 100.0),
            quality=np.ones(n), value=f(value, float), setting_h=np.full(n, 5.0),
            visits_left=np.ones(n, int), visits_done=np.zeros(n, int), feasible=f(feasible, bool),
        )  # fmt: skip

    class C:
        program_share_target = np.array([1.0])
        program_share_used = np.array([1.0])

    cond = C()
    cond.candidates = candidates([1, 5, 3], [1.0, 5.0, 3.0], [0, 400, 0], [True, True, False])
    greedy, priority = resolve_policy("greedy"), resolve_policy("priority")
    for p in (greedy, priority):
        p.reset(np.random.SeedSequence(0))
    # greedy: 1/100 vs 5/500 per second -> equal; priority takes the priority-5 one.
    assert priority.decide(cond) == Observe(1)
    cond.candidates = candidates([1, 5], [1.0, 5.0], [0, 900], [True, True])
    assert greedy.decide(cond) == Observe(0)  # 1/100 s beats 5/1000 s
    cond.candidates = candidates([1], [1.0], [0], [False])
    assert isinstance(greedy.decide(cond), Wait)


def test_unknown_policy_lists_the_allowed(tmp_path):
    with pytest.raises(ConfigError, match="greedy"):
        resolve_policy("grredy")


def test_a_run_stopped_part_way_keeps_what_it_did(tmp_path):
    class Crash:
        name = "crash"

        def __init__(self):
            self.inner = resolve_policy("greedy")
            self.calls = 0

        def reset(self, seed):
            self.inner.reset(seed)

        def decide(self, conditions):
            self.calls += 1
            if self.calls > 400:
                raise KeyboardInterrupt
            return self.inner.decide(conditions)

    scenario = load_scenario(SCENARIO, start=DATE, nights=3, seed=1)
    with pytest.raises(KeyboardInterrupt):
        run_scenario(scenario, tmp_path, Crash(), progress=False, plots=False)
    obs = pd.read_parquet(tmp_path / "observations.parquet")
    events = pd.read_parquet(tmp_path / "events.parquet")
    assert len(obs) > 100  # the finished day(s) are on disk
    assert len(events) > 0


def test_open_alerts_are_the_received_and_unconfirmed_ones():
    from agents.baselines import GreedyPolicy
    from twin.ops.stepping import SteppedTwin
    from twin.ops.world import World

    scenario = load_scenario(SCENARIO, start=DATE, nights=2, seed=3)
    stepped = SteppedTwin(World(scenario))
    greedy = GreedyPolicy()
    greedy.reset(np.random.SeedSequence(0))
    seen_open = 0
    while (decision := stepped.next_decision()) is not None:
        expected = {a.alert.alert_id for a in stepped.twin.alerts.values()
                    if not math.isnan(a.received_mjd) and math.isnan(a.confirmed_mjd)}  # fmt: skip
        assert set(decision.conditions.open_alerts) == expected
        seen_open = max(seen_open, len(expected))
        stepped.act(greedy.decide(decision.conditions))
    assert seen_open >= 2


def test_site_status_night_flags_equal_a_scan_of_the_nights():
    world = World(load_scenario(SCENARIO, nights=4, seed=1))
    twin = NetworkTwin(world, resolve_policy("greedy"), NullRecorder())
    rng = np.random.default_rng(0)
    for sw in world.sites:
        edges = [t for n in sw.nights for t in (n.start_mjd, n.end_mjd)]
        times = np.concatenate([rng.uniform(world.start_mjd - 0.5, world.end_mjd + 0.5, 300),
                                edges, np.nextafter(edges, -np.inf)])  # fmt: skip
        for mjd in times:
            status = twin._site_status(sw, float(mjd))
            assert status.is_night == any(n.start_mjd <= mjd < n.end_mjd for n in sw.nights)
            later = [n.end_mjd for n in sw.nights if n.end_mjd > mjd]
            if later:
                assert status.night_end_mjd == later[0]
            else:
                assert math.isnan(status.night_end_mjd)
