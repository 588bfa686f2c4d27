"""Sweeps: points equal the equivalent runs, a stopped sweep resumes, bad files name the
field, Ray runs the points, the report's intervals are Student-t."""

from __future__ import annotations

import json
import math
import os
import secrets
import subprocess
import sys
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
SWEEP = f"""
name: tiny
base: {RELAY}
seeds: {{first: 1, count: 3}}
starts: [2027-04-07]
layouts:
  - name: three
  - {{name: two, remove: [sutherland]}}
policies: [greedy, priority]
"""
TWO_SITES = [
    {"site": "siding-spring", "telescopes": [{"name": "siding-spring-1m", "preset": "1m"}]},
    {"site": "cerro-pachon", "telescopes": [{"name": "pachon-1m", "preset": "1m"}]},
]


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
    assert set(table["layout"]) == {"three", "two"} and set(table["policy"]) == {
        "greedy",
        "priority",
    }
    assert set(table["seed"]) == {1, 2, 3} and (table["start"] == "2027-04-07").all()
    assert dict(zip(table["layout"], table["n_sites"], strict=True)) == {"three": 3, "two": 2}


def test_each_point_equals_the_equivalent_run(swept, tmp_path):
    _, _, _, table = swept
    for _, row in table.iterrows():
        sites = TWO_SITES if row["layout"] == "two" else None
        scenario = load_scenario(RELAY, seed=int(row["seed"]), start="2027-04-07", sites=sites)
        out = tmp_path / row["point_id"]
        run_scenario(scenario, out, row["policy"], progress=False, plots=False)
        direct = point_metrics(out)
        for key, value in direct.items():
            assert row[key] == pytest.approx(value, nan_ok=True), (row["point_id"], key)


def test_the_duty_cycle_is_the_union_of_shutter_time(swept):
    table = swept[3]
    row = table[table["layout"] == "three"].iloc[0]
    # relay: 30 exposures of 60 s, never two at once (one target, relayed), over 1 day.
    assert row["duty_cycle"] == pytest.approx(row["exposures"] * 60.0 / 86400.0, rel=1e-6)
    hours = row[list(COVERAGE_COLUMNS)].to_numpy(float)
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


def test_ray_runs_the_points_as_tasks(swept, tmp_path):
    pytest.importorskip("ray")
    _, _, points, table = swept
    some = points[:2]
    out = runner.run_points(some, tmp_path / "ray", progress=False)
    expected = table.set_index("point_id").loc[[p.point_id for p in some]].reset_index()
    pd.testing.assert_frame_equal(out.drop(columns="wall_s"), expected.drop(columns="wall_s"))


def test_the_report_has_t_intervals_and_paired_differences(swept):
    tmp, spec, _, table = swept
    summ = summary(table, spec.metrics)
    part = table[(table["layout"] == "two") & (table["policy"] == "greedy")]["science_value"]
    mean, low, high = t_interval(part.to_numpy())
    half = stats.t.ppf(0.975, 2) * part.std(ddof=1) / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((part.mean(), part.mean() - half,
                                               part.mean() + half))  # fmt: skip
    row = summ[(summ["layout"] == "two") & (summ["policy"] == "greedy")].iloc[0]
    assert row["science_value_low"] == pytest.approx(low)
    pairs = paired(table, spec.metrics, "three")
    assert len(pairs) == 2 and (pairs["pairs"] == 3).all()
    greedy = table[table["policy"] == "greedy"].set_index(["layout", "seed"])["exposures"]
    d = (greedy.loc["two"] - greedy.loc["three"]).mean()
    assert pairs[pairs["policy"] == "greedy"]["d_exposures"].iloc[0] == pytest.approx(d)
    text, files = write_report(tmp / "out", spec.metrics, "three")
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
    ("layouts", "field", "words"),
    [
        ("[{name: a}, {name: b, add: [{site: atlantis, telescopes: [{name: t, preset: 1m}]}]}]",
         "layouts.1 -> sites.3.site", "allowed"),
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
    assert not list((out / runner.SCRATCH).iterdir())  # scratch runs removed
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
