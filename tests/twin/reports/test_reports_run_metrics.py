"""Run metrics on hand-made tables whose answers are known: time accounting, alerts, rules."""

import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twin.errors import ConfigError
from twin.ops.policies import resolve_policy
from twin.ops.records import (
    ALERT_SCHEMA,
    EVENT_SCHEMA,
    NIGHT_SCHEMA,
    OBSERVATION_SCHEMA,
    REQUEST_SCHEMA,
    TIMELINE_SCHEMA,
)
from twin.reports.run_metrics import (
    compute_metrics,
    constraint_violations,
    format_summary,
    records_frame,
    summary_rows,
    write_metrics,
)

T0 = 60000.0
S60 = 60.0 / 86400.0  # a 60-s exposure, in days


def _obs(obs_id, start, **kw):
    """A clean exposure: every geometric and atmospheric value well inside the limits."""
    row = dict(
        obs_id=obs_id,
        visit_id=1,
        site="A",
        telescope="t1",
        request_id="r1",
        program="survey",
        exptime_s=60.0,
        mjd_start=start,
        mjd_end=start + S60,
        alt_deg=55.0,
        alt_end_deg=53.0,
        az_deg=100.0,
        az_end_deg=101.0,
        airmass=1.2,
        airmass_end=1.25,
        sun_alt_deg=-20.0,
        sun_alt_end_deg=-20.5,
        moon_alt_deg=-10.0,
        moon_sep_deg=90.0,
        moon_illum=0.5,
        seeing_fwhm_arcsec=1.0,
        transparency=0.9,
        m5=20.0,
        value=1.0,
        ra_deg=10.0,
        dec_deg=-30.0,
    )
    return {**row, **kw}


def _run(**obs_overrides):
    """Two sites, one telescope each; exposure 1 takes ``obs_overrides``.

    Site A night [T0, T0+0.5), dome closed [T0+0.15, T0+0.4); site B night
    [T0+0.25, T0+0.75), telescope t2 failed [T0+0.45, T0+0.55).
    """
    obs = [
        _obs(1, T0 + 0.05, **obs_overrides),
        _obs(2, T0 + 0.06),
        _obs(
            3,
            T0 + 0.30,
            visit_id=2,
            site="B",
            telescope="t2",
            request_id="r2",
            program="too",
            alert_id="al1",
            value=2.0,
            m5=21.0,
            seeing_fwhm_arcsec=1.4,
        ),
    ]
    limits = dict(
        max_airmass=2.0,
        min_moon_sep_deg=30.0,
        max_moon_illum=0.8,
        max_seeing_arcsec=2.0,
        min_transparency=0.5,
        max_sun_alt_deg=-12.0,
    )
    requests = [
        dict(
            request_id="r1",
            window_start_mjd=[T0, T0 + 0.14],
            window_end_mjd=[T0 + 0.12, T0 + 1.0],
            **limits,
        ),
        dict(request_id="r2", sites=["B"], **limits),
    ]
    timeline = [
        ("t1", "A", "science", 0.0, 0.1),
        ("t1", "A", "slew", 0.1, 0.15),
        ("t1", "A", "weather", 0.15, 0.4),
        ("t1", "A", "idle", 0.4, 0.5),
        ("t2", "B", "science", 0.25, 0.45),
        ("t2", "B", "failure", 0.45, 0.55),
        ("t2", "B", "readout", 0.55, 0.6),
        ("t2", "B", "idle", 0.6, 0.75),
    ]
    events = [
        dict(mjd=T0 + 0.15, kind="dome_close", site="A"),
        dict(mjd=T0 + 0.4, kind="dome_open", site="A"),
        dict(mjd=T0 + 0.45, kind="failure", site="B", telescope="t2", ref="mount"),
        dict(mjd=T0 + 0.55, kind="repair", site="B", telescope="t2", ref="mount"),
    ]
    nights = [
        dict(site="A", night=0, mjd_start=T0, mjd_end=T0 + 0.5, hours=12.0),
        dict(site="B", night=0, mjd_start=T0 + 0.25, mjd_end=T0 + 0.75, hours=12.0),
    ]
    return dict(
        observations=records_frame(OBSERVATION_SCHEMA, obs),
        events=records_frame(EVENT_SCHEMA, events),
        timeline=records_frame(
            TIMELINE_SCHEMA,
            [
                dict(telescope=t, site=s, state=st, mjd_start=T0 + a, mjd_end=T0 + b)
                for t, s, st, a, b in timeline
            ],
        ),
        nights=records_frame(NIGHT_SCHEMA, nights),
        alerts=records_frame(ALERT_SCHEMA, []),
        requests=records_frame(REQUEST_SCHEMA, requests),
    )


def _violations(horizon_fn=None, **obs_overrides):
    t = _run(**obs_overrides)
    return constraint_violations(
        t["observations"], t["requests"], t["events"], t["nights"], horizon_fn=horizon_fn
    )


def test_time_accounting_of_two_telescopes_is_exact():
    m = compute_metrics(**_run())
    net = m["network"]
    assert net["night_hours"] == pytest.approx(24.0) == m["hours_night_total"]
    assert net["hours"]["science"] == pytest.approx(2.4 + 4.8)
    assert net["open_shutter_fraction"] == pytest.approx(7.2 / 24.0)
    assert net["fraction"]["weather"] == pytest.approx(6.0 / 24.0)
    assert net["fraction"]["calibration"] == 0.0
    assert sum(net["fraction"].values()) == pytest.approx(1.0)
    assert (net["exposures"], net["visits"], net["science_value"]) == (3, 2, 4.0)
    assert net["mean_m5"] == pytest.approx(61.0 / 3) and net["median_seeing_arcsec"] == 1.0
    a, b = m["per_site"]["A"], m["per_site"]["B"]
    assert a["open_shutter_fraction"] == pytest.approx(0.2)
    assert b["open_shutter_fraction"] == pytest.approx(0.4)
    assert b["hours"]["failure"] == pytest.approx(2.4)
    assert b["hours"]["readout"] == pytest.approx(1.2)
    assert (a["exposures"], a["science_value"], b["exposures"]) == (2, 2.0, 1)
    assert m["per_telescope"]["t2"]["site"] == "B"
    assert m["per_telescope"]["t1"]["hours"] == a["hours"]
    survey, too = m["per_program"]["survey"], m["per_program"]["too"]
    assert survey["science_share"] == pytest.approx(2 / 3) and too["exposures"] == 1
    assert survey["science_hours"] == pytest.approx(120 / 3600)
    assert m["constraint_violations"]["count"] == 0
    json.dumps(m, allow_nan=False)  # plain numbers only


def test_alert_latency_and_confirmation_match_numpy():
    latency_min = np.array([5.0, 10.0, 30.0, 60.0, 120.0, 7.5])
    issued = T0 + np.arange(7) * 0.1
    rows = [
        dict(alert_id=f"a{i}", issued_mjd=t, first_followup_mjd=t + lat / 1440.0)
        for i, (t, lat) in enumerate(zip(issued, latency_min, strict=False))
    ]
    rows.append(dict(alert_id="never", issued_mjd=issued[-1]))  # first_followup NaN
    rows[0].update(detected_mjd=T0 + 0.01, confirmed_mjd=T0 + 0.01 + 40 / 1440)
    rows[1].update(detected_mjd=T0 + 0.2, confirmed_mjd=T0 + 0.2 + 80 / 1440)
    rows[2].update(detected_mjd=T0 + 0.3)
    t = _run()
    t["alerts"] = records_frame(ALERT_SCHEMA, rows)
    alerts = compute_metrics(**t)["alerts"]
    assert (alerts["n_alerts"], alerts["n_followed"]) == (7, 6)
    assert alerts["fraction_followed"] == pytest.approx(6 / 7)
    assert alerts["latency_median_min"] == pytest.approx(np.median(latency_min), abs=1e-6)
    assert alerts["latency_p90_min"] == pytest.approx(np.percentile(latency_min, 90), abs=1e-6)
    assert (alerts["n_detected"], alerts["n_confirmed"]) == (3, 2)
    assert alerts["confirmation_delay_median_min"] == pytest.approx(60.0, abs=1e-6)


def test_no_alerts_gives_none_not_nan():
    alerts = compute_metrics(**_run())["alerts"]
    assert alerts["n_alerts"] == 0
    assert alerts["fraction_followed"] is None and alerts["latency_p90_min"] is None


def test_clean_run_has_no_violations():
    assert _violations().empty
    # Exposure ending exactly as the dome closes; moon close but below the horizon.
    assert _violations(mjd_start=T0 + 0.15 - S60, mjd_end=T0 + 0.15).empty
    assert _violations(moon_alt_deg=-1.0, moon_sep_deg=5.0, moon_illum=1.0).empty


@pytest.mark.parametrize(
    ("overrides", "rule", "value", "limit"),
    [
        (dict(airmass_end=2.5), "airmass", 2.5, 2.0),
        (dict(sun_alt_end_deg=-11.0), "sun_alt", -11.0, -12.0),
        (dict(moon_alt_deg=10.0, moon_sep_deg=20.0), "moon_sep", 20.0, 30.0),
        (dict(moon_alt_deg=10.0, moon_illum=0.9), "moon_illum", 0.9, 0.8),
        (dict(seeing_fwhm_arcsec=2.5), "seeing", 2.5, 2.0),
        (dict(transparency=0.3), "transparency", 0.3, 0.5),
        (dict(mjd_start=T0 + 0.13, mjd_end=T0 + 0.13 + S60), "window", T0 + 0.13, T0 + 0.12),
        (
            dict(mjd_start=T0 + 0.12 - S60 / 2, mjd_end=T0 + 0.12 + S60 / 2),
            "window",
            T0 + 0.12 + S60 / 2,
            T0 + 0.12,
        ),
        (dict(request_id="r2"), "site", math.nan, math.nan),
        (dict(alt_end_deg=-1.0), "horizon", -1.0, 0.0),
        (dict(mjd_start=T0 + 0.2, mjd_end=T0 + 0.2 + S60), "dome_closed", 60.0, 0.0),
        (
            dict(mjd_start=T0 + 0.15 - S60 / 2, mjd_end=T0 + 0.15 + S60 / 2),
            "dome_closed",
            30.0,
            0.0,
        ),
        (
            dict(
                telescope="t2",
                site="B",
                request_id="r2",
                mjd_start=T0 + 0.5,
                mjd_end=T0 + 0.5 + S60,
            ),
            "failure",
            60.0,
            0.0,
        ),
        (
            dict(mjd_start=T0 + 0.5 - S60 / 2, mjd_end=T0 + 0.5 + S60 / 2),
            "night",
            T0 + 0.5 + S60 / 2,
            T0 + 0.5,
        ),
    ],
)
def test_each_rule_flags_its_crafted_exposure(overrides, rule, value, limit):
    v = _violations(**overrides)
    assert list(v["rule"]) == [rule] and list(v["obs_id"]) == [1]
    assert v["value"].iloc[0] == pytest.approx(value, abs=1e-4, nan_ok=True)
    assert v["limit"].iloc[0] == pytest.approx(limit, abs=1e-9, nan_ok=True)
    if rule == "site":
        assert "site A not allowed by r2 (allowed: B)" in v["detail"].iloc[0]


def test_horizon_mask_replaces_altitude_zero():
    def mask(site, az_deg):
        return np.full(np.shape(az_deg), 30.0 if site == "A" else 0.0)

    assert _violations(alt_deg=25.0).empty
    v = _violations(horizon_fn=mask, alt_deg=25.0)
    assert list(v["rule"]) == ["horizon"] and v["limit"].iloc[0] == 30.0


def test_dome_closed_at_run_start_without_reopening():
    t = _run(mjd_start=T0 + 0.45, mjd_end=T0 + 0.45 + S60)
    t["events"] = records_frame(EVENT_SCHEMA, [dict(mjd=T0, kind="dome_close", site="A")])
    v = constraint_violations(t["observations"], t["requests"], t["events"], t["nights"])
    assert sorted(v["obs_id"]) == [1, 2] and set(v["rule"]) == {"dome_closed"}


def test_overlapping_failures_keep_the_telescope_down_until_all_repaired():
    t = _run(telescope="t2", site="B", request_id="r2", mjd_start=T0 + 0.6, mjd_end=T0 + 0.6 + S60)
    t["events"] = records_frame(
        EVENT_SCHEMA,
        [
            dict(mjd=T0 + 0.4, kind="failure", telescope="t2", ref="mount"),
            dict(mjd=T0 + 0.5, kind="failure", telescope="t2", ref="camera"),
            dict(mjd=T0 + 0.55, kind="repair", telescope="t2", ref="mount"),
            dict(mjd=T0 + 0.65, kind="repair", telescope="t2", ref="camera"),
        ],
    )
    v = constraint_violations(t["observations"], t["requests"], t["events"], t["nights"])
    assert list(v["rule"]) == ["failure"] and list(v["obs_id"]) == [1]


def test_a_repair_before_any_failure_means_down_since_the_start():
    """A component that failed before the run logs only its repair: exposures before it
    are on a broken telescope. (This case once crashed the check with an empty interval
    list, on a night of dense-8site.)"""
    t = _run(telescope="t2", site="B", request_id="r2", mjd_start=T0 + 0.6, mjd_end=T0 + 0.6 + S60)
    t["events"] = records_frame(
        EVENT_SCHEMA, [dict(mjd=T0 + 0.62, kind="repair", telescope="t2", ref="mount")]
    )
    v = constraint_violations(t["observations"], t["requests"], t["events"], t["nights"])
    assert set(v["rule"]) == {"failure"} and sorted(v["obs_id"]) == [1, 3]  # both on t2
    t["events"] = records_frame(
        EVENT_SCHEMA, [dict(mjd=T0 + 0.2, kind="repair", telescope="t2", ref="mount")]
    )
    v = constraint_violations(t["observations"], t["requests"], t["events"], t["nights"])
    assert len(v) == 0


def test_two_components_down_before_the_start_keep_it_down_until_both_are_repaired():
    t = _run(telescope="t2", site="B", request_id="r2", mjd_start=T0 + 0.6, mjd_end=T0 + 0.6 + S60)
    t["events"] = records_frame(
        EVENT_SCHEMA,
        [
            dict(mjd=T0 + 0.5, kind="repair", telescope="t2", ref="mount"),
            dict(mjd=T0 + 0.62, kind="repair", telescope="t2", ref="camera"),
        ],
    )
    v = constraint_violations(t["observations"], t["requests"], t["events"], t["nights"])
    assert set(v["rule"]) == {"failure"} and sorted(v["obs_id"]) == [1, 3]


def test_failures_from_before_the_run_are_logged_at_its_start():
    """The equipment schedule starts before the run: a failure in progress at the start
    is logged at the start (like a closed dome), so its repair is never an orphan."""
    from twin.ops.network import NetworkTwin
    from twin.ops.stepping import NullRecorder
    from twin.ops.world import World
    from twin.scenario import load_scenario

    root = Path(__file__).resolve().parents[3]
    sc = load_scenario(root / "scenarios" / "dense-8site.yaml", nights=1, seed=108,
                       start="2027-04-07")  # fmt: skip
    world = World(sc)
    start = world.start_mjd
    spanning = [(tw.name, comp) for tw in world.telescopes for comp in ("mount", "dome", "camera")
                for a, b in tw.equipment.failures.intervals(comp) if a < start < b]  # fmt: skip
    assert spanning  # this world has one (sutherland-1m's mount)
    twin = NetworkTwin(world, resolve_policy("greedy"), NullRecorder())
    scheduled = []
    twin.at = lambda mjd, fn: scheduled.append(fn)
    logged = []
    twin.event = lambda mjd, kind, site="", telescope="", ref="", *rest: logged.append(
        (mjd, kind, telescope, ref)
    )
    twin._schedule_world_events()
    for fn in scheduled:
        fn()
    for name, comp in spanning:
        assert (start, "failure", name, comp) in logged
        assert any(k == "repair" and t == name and r == comp for _, k, t, r in logged)


def test_several_violations_are_all_reported_and_counted():
    t = _run(airmass=3.0, seeing_fwhm_arcsec=9.0, request_id="r2")
    m = compute_metrics(**t)["constraint_violations"]
    assert m["count"] == 3 and m["by_rule"] == {"airmass": 1, "site": 1, "seeing": 1}
    assert [e["rule"] for e in m["examples"]] == ["airmass", "seeing", "site"]


def _write_run(run_dir, tables, row_group_size=None):
    schemas = dict(
        observations=OBSERVATION_SCHEMA,
        events=EVENT_SCHEMA,
        nights=NIGHT_SCHEMA,
        timeline=TIMELINE_SCHEMA,
        alerts=ALERT_SCHEMA,
        requests=REQUEST_SCHEMA,
    )
    for name, frame in tables.items():
        table = pa.Table.from_pandas(frame, schema=schemas[name], preserve_index=False)
        pq.write_table(table, run_dir / f"{name}.parquet", row_group_size=row_group_size)


def test_write_metrics_keeps_run_info_and_reads_row_groups(tmp_path):
    t = _run()
    del t["alerts"], t["requests"]  # optional tables
    _write_run(tmp_path, t, row_group_size=1)
    run = {"scenario": "x", "policy": "greedy", "seed": 3, "nights": 1, "wall_s": 1.5}
    (tmp_path / "metrics.json").write_text(json.dumps({"run": run}))
    out = write_metrics(tmp_path)
    on_disk = json.loads((tmp_path / "metrics.json").read_text())
    assert on_disk == out and on_disk["run"] == run
    assert on_disk["network"]["exposures"] == 3 and on_disk["alerts"]["n_alerts"] == 0
    assert on_disk["network"]["open_shutter_fraction"] == pytest.approx(0.3)


def test_write_metrics_names_a_missing_table(tmp_path):
    with pytest.raises(ConfigError, match=r"observations\.parquet"):
        write_metrics(tmp_path)


def test_summary_rows_per_site_and_network():
    rows = summary_rows(compute_metrics(**_run()))
    assert [r["site"] for r in rows] == ["A", "B", "network"]
    assert rows[0]["open %"] == pytest.approx(20.0) and rows[0]["weather h"] == pytest.approx(6)
    assert rows[2]["exposures"] == 3 and rows[1]["failure h"] == pytest.approx(2.4)
    text = format_summary(compute_metrics(**_run()))
    assert "network" in text and "open %" in text and "30.00" in text


def test_window_dome_and_night_rules_agree_with_a_plain_loop():
    rng = np.random.default_rng(7)
    n = 300
    starts = T0 + rng.uniform(-0.1, 1.1, n)
    ends = starts + rng.uniform(10, 3000, n) / 86400
    win_start = T0 + np.array([0.0, 0.3, 0.35, 0.8])  # [0.3, 0.5) and [0.35, 0.45) overlap
    win_end = T0 + np.array([0.2, 0.5, 0.45, 0.9])
    closed = [(T0 + 0.1, T0 + 0.15), (T0 + 0.6, T0 + 0.7)]
    night = (T0 - 0.05, T0 + 1.0)
    t = _run()
    t["observations"] = records_frame(
        OBSERVATION_SCHEMA,
        [_obs(i, s, mjd_end=e) for i, (s, e) in enumerate(zip(starts, ends, strict=True))],
    )
    t["requests"] = records_frame(
        REQUEST_SCHEMA,
        [dict(request_id="r1", window_start_mjd=list(win_start), window_end_mjd=list(win_end))],
    )
    t["events"] = records_frame(
        EVENT_SCHEMA,
        [
            dict(mjd=m, kind=k, site="A")
            for a, b in closed
            for m, k in ((a, "dome_close"), (b, "dome_open"))
        ],
    )
    t["nights"] = records_frame(
        NIGHT_SCHEMA, [dict(site="A", mjd_start=night[0], mjd_end=night[1])]
    )
    v = constraint_violations(t["observations"], t["requests"], t["events"], t["nights"])
    expected = {
        "window": {
            i
            for i in range(n)
            if not any(
                a <= starts[i] < b and ends[i] <= b for a, b in zip(win_start, win_end, strict=True)
            )
        },
        "dome_closed": {
            i for i in range(n) if any(starts[i] < b and ends[i] > a for a, b in closed)
        },
        "night": {i for i in range(n) if not (night[0] <= starts[i] and ends[i] <= night[1])},
    }
    for rule, ids in expected.items():
        assert set(v.loc[v["rule"] == rule, "obs_id"]) == ids, rule
    assert set(v["rule"]) <= set(expected)


def test_no_window_violations_when_no_observed_request_has_windows():
    """Regression: with no exposure of a windowed request, an empty selection once took
    every exposure's index and flagged them all as outside their windows."""
    t = _run()
    obs = t["observations"]
    obs = obs[obs["request_id"] == "r2"]  # r2 has no windows; r1 (windowed) unobserved
    found = constraint_violations(obs, t["requests"], t["events"], t["nights"])
    assert found.empty
