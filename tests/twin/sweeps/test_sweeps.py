"""Sweeps: points equal the equivalent runs, a stopped (even killed) sweep resumes, bad files
name the field, Ray runs the points, the report's intervals are Student-t.

The sweep's base is ``tiny-weather-alerts.yaml`` (beside this file): stochastic weather and
Poisson alerts, so a wrong seed, policy or alert stream changes the numbers (a base with
ideal weather and no alerts gives the same row whatever the seed, and NaN alert metrics).
"""

from __future__ import annotations

import json
import math
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from twin.errors import ConfigError
from twin.ops.run import run_scenario
from twin.scenario import load_scenario
from twin.sweeps import runner
from twin.sweeps.metrics import COVERAGE_COLUMNS, covered_by_hour, point_metrics
from twin.sweeps.points import expand
from twin.sweeps.report import paired, summary, t_interval, write_report
from twin.sweeps.spec import load_sweep

ROOT = Path(__file__).resolve().parents[3]
RELAY = ROOT / "scenarios" / "teaching" / "relay.yaml"
BASE = Path(__file__).with_name("tiny-weather-alerts.yaml")
SWEEP = f"""
name: tiny
base: {BASE}
seeds: {{first: 1, count: 3}}
starts: [2027-04-07]
layouts:
  - name: two
  - {{name: one, remove: [siding-spring]}}
policies: [greedy, priority]
"""
ONE_SITE = [{"site": "cerro-pachon", "telescopes": [{"name": "pachon-1m", "preset": "1m"}]}]


def _write(tmp_path: Path, text: str = SWEEP, name: str = "sweep.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sweep")
    spec, base = load_sweep(_write(tmp))
    points = expand(spec, base, "sweep.yaml")
    table = runner.run_points(points, tmp / "out", processes=1, progress=False)
    return tmp, spec, points, table


def test_the_sweep_has_every_point_of_the_product(swept):
    _, _, points, table = swept
    assert len(points) == len(table) == 2 * 2 * 3
    assert set(table["layout"]) == {"two", "one"} and set(table["policy"]) == {
        "greedy",
        "priority",
    }
    assert set(table["seed"]) == {1, 2, 3} and (table["start"] == "2027-04-07").all()
    assert dict(zip(table["layout"], table["n_sites"], strict=True)) == {"two": 2, "one": 1}


def test_the_axes_change_the_numbers(swept):
    """The base is one where every axis matters, or the equivalence test below proves
    nothing: each policy's row differs from the other's on the same layout and seed, the
    seeds' weather gives different duty cycles, and every point has alerts to follow."""
    table = swept[3].set_index(["layout", "seed", "policy"])
    for layout in ("one", "two"):
        for seed in (1, 2, 3):
            greedy = table.loc[(layout, seed, "greedy")]
            priority = table.loc[(layout, seed, "priority")]
            assert greedy["science_value"] != pytest.approx(priority["science_value"],
                                                            rel=1e-3), (layout, seed)  # fmt: skip
        duty = table.loc[(layout, slice(None), "greedy"), "duty_cycle"]
        assert duty.nunique() == 3 and duty.max() - duty.min() > 0.01, duty
    assert (table["alerts"] >= 5).all() and (table["alerts_followed"] >= 1).all()
    assert np.isfinite(table["alert_latency_median_min"]).all()
    # Two sites far apart in longitude cover more of the day than one.
    duty = table["duty_cycle"].unstack("layout")
    assert (duty["two"] > 1.3 * duty["one"]).all(), duty


def test_each_point_equals_the_equivalent_run(swept, tmp_path):
    _, _, _, table = swept
    for _, row in table.iterrows():
        sites = ONE_SITE if row["layout"] == "one" else None
        scenario = load_scenario(BASE, seed=int(row["seed"]), start="2027-04-07", sites=sites)
        out = tmp_path / row["point_id"]
        run_scenario(scenario, out, row["policy"], progress=False, plots=False)
        direct = point_metrics(out)
        assert direct["alerts"] > 0 and math.isfinite(direct["alert_latency_median_min"])
        for key, value in direct.items():
            assert row[key] == pytest.approx(value, rel=1e-12), (row["point_id"], key)


def test_a_point_equals_the_skytwin_run_command(swept, tmp_path):
    """One point through the real command line: ``skytwin run`` with the point's policy,
    seed and start (not the base's) gives the point's row."""
    table = swept[3]
    row = table[table["point_id"] == "two__priority__base__2027-04-07__3"].iloc[0]
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "twin", "run", str(BASE), "--policy", "priority", "--seed",
           "3", "--start", "2027-04-07", "--out", str(out), "--no-plots", "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    direct = point_metrics(out)
    assert direct["exposures"] == row["exposures"] > 0
    for key, value in direct.items():
        assert row[key] == pytest.approx(value, rel=1e-12), key


def test_the_duty_cycle_is_the_union_of_shutter_time(tmp_path):
    scenario = load_scenario(RELAY, start="2027-04-07")
    run_scenario(scenario, tmp_path / "relay", "greedy", progress=False, plots=False)
    row = point_metrics(tmp_path / "relay")
    assert row["exposures"] == 30
    # relay: 30 exposures of 60 s, never two at once (one target, relayed), over 1 day.
    assert row["duty_cycle"] == pytest.approx(row["exposures"] * 60.0 / 86400.0, rel=1e-6)
    hours = np.array([row[c] for c in COVERAGE_COLUMNS])
    assert hours.mean() == pytest.approx(row["duty_cycle"], rel=0.05)
    assert row["duty_cycle"] < row["observing_cycle"] <= row["dark_coverage"] <= 1.0


def test_coverage_by_hour_counts_each_hour_once():
    # An interval covering 00:30-01:30 UTC of one day: half of hour 0 and half of hour 1.
    t0 = 61000.0
    cov = covered_by_hour(np.array([[t0 + 0.5 / 24, t0 + 1.5 / 24]]), t0, 1.0)
    assert cov[0] == pytest.approx(0.5) and cov[1] == pytest.approx(0.5)
    assert cov[2:].sum() == pytest.approx(0.0)


def test_a_stopped_sweep_resumes_without_redoing_finished_points(swept, tmp_path, monkeypatch):
    _, _, points, table = swept
    calls = []
    real = runner.run_point

    def stop_after_five(point, out_dir, keep_run):
        if len(calls) == 5:
            raise KeyboardInterrupt
        calls.append(point.point_id)
        return real(point, out_dir, keep_run)

    monkeypatch.setattr(runner, "run_point", stop_after_five)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        runner.run_points(points, out, processes=1, progress=False)
    assert len(pd.read_parquet(out / "sweep.parquet")) == 5  # the finished ones are kept
    first = list(calls)
    calls.clear()
    monkeypatch.setattr(runner, "run_point", lambda p, o, k: (calls.append(p.point_id),
                                                               real(p, o, k))[1])  # fmt: skip
    resumed = runner.run_points(points, out, processes=1, progress=False)
    assert not set(first) & set(calls) and len(calls) == len(points) - 5
    pd.testing.assert_frame_equal(resumed.drop(columns="wall_s"), table.drop(columns="wall_s"))


def _point_files(out: Path) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in (out / "points").glob("*.json")}


def test_a_killed_sweep_resumes_without_redoing_finished_points(swept, tmp_path):
    """SIGKILL (no ``finally``, no cleanup) the command mid-sweep, run it again: the
    finished points' files are left as they were (not one rewritten) and the table is
    whole, its rows those of an uninterrupted sweep."""
    table = swept[3].set_index("point_id")
    text = SWEEP.replace("count: 3", "count: 8").replace(", priority", "")
    path = _write(tmp_path, text.replace("  - {name: one, remove: [siding-spring]}\n", ""))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "twin", "sweep", str(path), "--out", str(out),
           "--processes", "1", "--quiet"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 300
    try:
        while len(_point_files(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read()[-3000:]
    proc.stderr.close()
    finished = _point_files(out)
    assert 2 <= len(finished) < 8, sorted(finished)  # killed mid-sweep
    time.sleep(0.05)  # a rewrite, had there been one, gets a later mtime
    dead = out / runner.SCRATCH / "point-killed" / "run"  # as a point killed mid-run leaves it
    dead.mkdir(parents=True, exist_ok=True)
    (dead / "progress.json").write_text("{}")
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert not (out / runner.SCRATCH).exists()  # the dead point's run is cleared, none left
    after = _point_files(out)
    assert len(after) == 8
    assert {name: after[name] for name in finished} == finished  # not one redone
    resumed = pd.read_parquet(out / "sweep.parquet").set_index("point_id")
    assert sorted(resumed["seed"]) == list(range(1, 9))
    for name, (_, raw) in finished.items():
        assert json.loads(raw)["wall_s"] == resumed.loc[name.removesuffix(".json"), "wall_s"]
    # Seeds 1-3 are points of the module's uninterrupted sweep: the same rows.
    same = [f"two__greedy__base__2027-04-07__{seed}" for seed in (1, 2, 3)]
    pd.testing.assert_frame_equal(resumed.loc[same].drop(columns="wall_s"),
                                  table.loc[same].drop(columns="wall_s"))  # fmt: skip


def test_keep_runs_keeps_each_points_normal_run_directory(swept, tmp_path, monkeypatch):
    _, _, points, table = swept
    some = [p for p in points if p.point_id.startswith("one__priority")][:2]
    monkeypatch.chdir(tmp_path)  # a relative sweep directory: the points get it resolved
    out = runner.run_points(some, Path("kept"), keep_runs=True, processes=1, progress=False)
    direct = tmp_path / "direct"
    run_scenario(some[0].scenario, direct, some[0].policy, progress=False, plots=False)
    normal = sorted(p.relative_to(direct).as_posix() for p in direct.rglob("*"))
    assert "metrics.json" in normal and "observations.parquet" in normal
    for point in some:
        run_dir = tmp_path / "kept" / "runs" / point.point_id
        assert sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*")) == normal
        row = table.set_index("point_id").loc[point.point_id]
        for key, value in point_metrics(run_dir).items():
            assert row[key] == pytest.approx(value, rel=1e-12), (point.point_id, key)
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "kept" / "runs" / some[0].point_id / "observations.parquet"),
        pd.read_parquet(direct / "observations.parquet"),
    )
    assert len(out) == 2 and not (tmp_path / "kept" / runner.SCRATCH).exists()


def test_ray_runs_the_points_as_tasks(swept, tmp_path, monkeypatch):
    pytest.importorskip("ray")
    _, _, points, table = swept
    some = points[:2]
    monkeypatch.chdir(tmp_path)  # relative: Ray's workers run elsewhere, get it resolved
    out = runner.run_points(some, Path("ray"), keep_runs=True, progress=False)
    expected = table.set_index("point_id").loc[[p.point_id for p in some]].reset_index()
    pd.testing.assert_frame_equal(out.drop(columns="wall_s"), expected.drop(columns="wall_s"))
    for point in some:
        kept = point_metrics(tmp_path / "ray" / "runs" / point.point_id)
        assert kept["exposures"] == expected.set_index("point_id").loc[point.point_id,
                                                                       "exposures"]  # fmt: skip


def test_the_report_has_t_intervals_and_paired_differences(swept):
    tmp, spec, _, table = swept
    summ = summary(table, spec.metrics)
    part = table[(table["layout"] == "one") & (table["policy"] == "greedy")]["science_value"]
    mean, low, high = t_interval(part.to_numpy())
    half = stats.t.ppf(0.975, 2) * part.std(ddof=1) / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((part.mean(), part.mean() - half,
                                               part.mean() + half))  # fmt: skip
    row = summ[(summ["layout"] == "one") & (summ["policy"] == "greedy")].iloc[0]
    assert row["science_value_low"] == pytest.approx(low)
    pairs = paired(table, spec.metrics, "two")
    assert len(pairs) == 2 and (pairs["pairs"] == 3).all()
    greedy = table[table["policy"] == "greedy"].set_index(["layout", "seed"])["exposures"]
    d = (greedy.loc["one"] - greedy.loc["two"]).mean()
    assert d < -30  # one site takes far fewer exposures than two: a real difference
    assert pairs[pairs["policy"] == "greedy"]["d_exposures"].iloc[0] == pytest.approx(d)
    text, files = write_report(tmp / "out", spec.metrics, "two")
    assert "Paired difference" in text and all(f.exists() for f in files)
    assert {f.name for f in files} >= {"metrics_by_layout.png", "duty_cycle_vs_sites.png",
                                      "coverage_by_hour.png"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ("color: blue\n", "color"),
        ("starts: [2027-04-07, spring]\n", "starts.1"),
        ("metrics: [science_value, happiness]\n", "metrics.1"),
        ("baseline: four\n", "baseline"),
        ("variants: [{name: v, set: {seed: 3}}]\n", "variants.0.set"),
        ("seeds: {first: -1, count: 2}\n", "seeds"),
    ],
)
def test_bad_sweep_files_name_the_field(tmp_path, change, field):
    lines = [line for line in SWEEP.splitlines()
             if not line.startswith(change.split(":")[0] + ":")]  # fmt: skip
    with pytest.raises(ConfigError) as err:
        load_sweep(_write(tmp_path, "\n".join(lines) + "\n" + change))
    assert err.value.field.startswith(field), str(err.value)


@pytest.mark.parametrize(
    ("seeds", "field", "words"),
    [
        ("[]", "seeds", "at least one seed"),
        ("[1, 2, 1]", "seeds.2", "listed twice"),
        ("[3, -1]", "seeds.1", "0 to 4294967295"),
        ("[4294967296]", "seeds.0", "0 to 4294967295"),
        ("[2.5]", "seeds.0", "whole numbers"),
        ("[true]", "seeds.0", "whole numbers"),
        ("7", "seeds", "a list of seeds"),
        ("{first: -1, count: 2}", "seeds.first", "greater than or equal to 0"),
        ("{first: 1, count: 0}", "seeds.count", "greater than or equal to 1"),
    ],
)
def test_bad_seeds_name_the_field_and_the_allowed_values(tmp_path, seeds, field, words):
    path = _write(tmp_path, SWEEP.replace("seeds: {first: 1, count: 3}", f"seeds: {seeds}"))
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert err.value.source == str(path) and err.value.field == field, str(err.value)
    assert words in err.value.problem and "\n" not in str(err.value), str(err.value)


def test_every_valid_seed_reaches_its_point(tmp_path):
    path = _write(tmp_path, SWEEP.replace("seeds: {first: 1, count: 3}",
                                          "seeds: [4294967295, 0]"))  # fmt: skip
    spec, base = load_sweep(path)
    points = expand(spec, base, str(path))
    assert [p.scenario.seed for p in points if p.layout == "two" and p.policy == "greedy"] == [
        4294967295,
        0,
    ]


@pytest.mark.parametrize("empty", ["seeds", "layouts", "variants"])
def test_a_sweep_without_points_is_refused_in_one_line(tmp_path, empty):
    """Once ``seeds: []`` passed validation and crashed after the (empty) run with a
    FileNotFoundError traceback; an empty axis is now a one-line error naming it."""
    lines = [line for line in SWEEP.splitlines()
             if not line.startswith((f"{empty}:", "layouts:", "  - "))]  # fmt: skip
    if empty != "layouts":
        lines.append("layouts: [{name: two}]")
    path = _write(tmp_path, "\n".join(lines) + f"\n{empty}: []\n")
    with pytest.raises(ConfigError) as err:
        load_sweep(path)
    assert err.value.field == empty and err.value.source == str(path), str(err.value)
    if empty == "seeds":
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "twin", "sweep", str(path), "--out", str(out),
               "--processes", "1", "--quiet"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
        assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
        assert f"{path}: field 'seeds'" in done.stderr and not out.exists()


@pytest.mark.parametrize(
    ("layouts", "field", "words"),
    [
        ("[{name: a}, {name: b, add: [{site: atlantis, telescopes: [{name: t, preset: 1m}]}]}]",
         "layouts.1 -> sites.2.site", "allowed"),
        ("[{name: a, remove: [hanle]}]", "layouts.0.remove.0", "not a site"),
        ("[{name: a}, {name: a}]", "layouts.1.name", "repeated"),
    ],
)  # fmt: skip
def test_bad_layouts_are_found_before_anything_runs(tmp_path, layouts, field, words):
    text = SWEEP.split("layouts:")[0] + f"layouts: {layouts}\npolicies: [greedy]\n"
    with pytest.raises(ConfigError) as err:
        spec, base = load_sweep(_write(tmp_path, text))
        expand(spec, base, "sweep.yaml")
    assert err.value.field == field and words in err.value.problem, str(err.value)


def test_an_unknown_policy_names_its_axis(tmp_path):
    spec, base = load_sweep(_write(tmp_path, SWEEP.replace("priority", "clairvoyant")))
    with pytest.raises(ConfigError) as err:
        expand(spec, base, "sweep.yaml")
    assert err.value.field == "policies.1" and "allowed" in err.value.problem


def test_the_command_runs_reports_and_refuses_another_sweeps_directory(tmp_path):
    path = _write(tmp_path, SWEEP.replace("count: 3", "count: 1").replace(", priority", ""))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "twin", "sweep", str(path), "--out", str(out),
           "--processes", "1", "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "Sweep directory" in done.stdout and (out / "plots" / "coverage_by_hour.png").exists()
    assert len(list((out / "points").glob("*.json"))) == 2
    assert not (out / runner.SCRATCH).exists()  # scratch runs removed, and their folder
    other = _write(tmp_path, path.read_text().replace("name: tiny", "name: other"), "b.yaml")
    refused = subprocess.run([*cmd[:4], str(other), *cmd[5:]], capture_output=True, text=True,
                             cwd=ROOT, timeout=600)  # fmt: skip
    assert refused.returncode != 0 and "holds another sweep" in refused.stderr
    report = subprocess.run([sys.executable, "-m", "twin", "sweep-report", str(out)],
                            capture_output=True, text=True, cwd=ROOT, timeout=600)  # fmt: skip
    assert report.returncode == 0 and "Mean [95 % interval]" in report.stdout
    json.loads(next((out / "points").glob("*.json")).read_text())


@pytest.mark.slow
def test_address_reaches_an_existing_ray_cluster(tmp_path):
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        pytest.skip("the ray command is not installed beside this Python")
    port = "6391"
    # Ray >= 2.59 starts a head with token authentication when a token exists; the client
    # must then present it (RAY_AUTH_MODE=token): the test uses a token of its own.
    token = tmp_path / "ray_token"
    token.write_text(secrets.token_hex(32))
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    start = [str(ray_bin), "start", "--head", f"--port={port}", "--num-cpus=2",
             "--include-dashboard=false", "--disable-usage-stats"]  # fmt: skip
    subprocess.run(start, check=True, capture_output=True, timeout=300, env=env)
    try:
        path = _write(tmp_path, SWEEP.replace("count: 3", "count: 1"))
        cmd = [sys.executable, "-m", "twin", "sweep", str(path), "--out", str(tmp_path / "o"),
               "--address", f"127.0.0.1:{port}", "--quiet"]  # fmt: skip
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900,
                              env=env)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        assert len(pd.read_parquet(tmp_path / "o" / "sweep.parquet")) == 4
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], capture_output=True, timeout=300,
                       env=env)  # fmt: skip
