"""Crash-safe runs: day parts, SIGKILL at several moments, clean SIGINT/SIGTERM, --resume.

The reference is the same scenario run once without interruption; "bit-identical" is
checked on the bytes of every day part and on the content of the end-of-run tables.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from agents.baselines import GreedyPolicy
from twin.errors import ConfigError
from twin.ops.recorder import part_days, part_name
from twin.ops.run import STREAMED, RunInterrupted, run_scenario
from twin.scenario import load_scenario, same_scenario_yaml

ROOT = Path(__file__).resolve().parents[3]
SCENARIO = ROOT / "scenarios" / "global-3site.yaml"
NIGHTS = 4
END_TABLES = ("alerts", "requests", "nights", "weather")


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "run"
    run_scenario(load_scenario(SCENARIO, nights=NIGHTS), out, "greedy", progress=False,
                 plots=False)  # fmt: skip
    return out


def _progress(out: Path) -> dict:
    return json.loads((out / "progress.json").read_text())


def _assert_prefix_of(out: Path, reference: Path, days: int) -> None:
    """``out`` holds exactly days 0..days-1, byte for byte those of the reference."""
    for name in STREAMED:
        assert part_days(out / f"{name}.parquet") == list(range(days)), name
        pd.read_parquet(out / f"{name}.parquet")  # readable as one table
        for day in range(days):
            got = (out / f"{name}.parquet" / part_name(day)).read_bytes()
            assert got == (reference / f"{name}.parquet" / part_name(day)).read_bytes()


def _assert_same_run(out: Path, reference: Path) -> None:
    _assert_prefix_of(out, reference, NIGHTS + 1)
    for name in END_TABLES:
        pd.testing.assert_frame_equal(pd.read_parquet(out / f"{name}.parquet"),
                                      pd.read_parquet(reference / f"{name}.parquet"))  # fmt: skip
    got, want = (json.loads((d / "metrics.json").read_text()) for d in (out, reference))
    for m in (got, want):
        m["run"] = {k: v for k, v in m["run"].items()
                    if k not in ("sim_wall_s", "resumed_after_days")}  # fmt: skip
    assert got == want
    assert _progress(out)["complete"] is True


def test_every_day_is_a_part_and_progress_says_complete(reference):
    state = _progress(reference)
    assert state == {"days_finished": NIGHTS + 1, "days_total": NIGHTS + 1, "policy": "greedy",
                     "policy_name": "greedy", "complete": True}  # fmt: skip
    obs = pd.read_parquet(reference / "observations.parquet")
    per_part = sum(len(pd.read_parquet(reference / "observations.parquet" / part_name(d)))
                   for d in range(NIGHTS + 1))  # fmt: skip
    assert len(obs) == per_part > 100
    assert not list((reference / "observations.parquet").glob(".*"))  # no temporaries left
    # A day's part holds what was recorded during that simulated day.
    events = pd.read_parquet(reference / "events.parquet" / part_name(1))
    start = load_scenario(SCENARIO).start_mjd
    assert ((events["mjd"] >= start + 1 - 1e-9) & (events["mjd"] <= start + 2 + 1e-9)).all()


class _StopAt(GreedyPolicy):
    """Greedy that sends its own process a signal at the n-th decision."""

    def __init__(self, n: int, signum: int) -> None:
        super().__init__()
        self.n, self.signum, self.calls = n, signum, 0

    def decide(self, conditions):
        self.calls += 1
        if self.calls == self.n:
            os.kill(os.getpid(), self.signum)
        return super().decide(conditions)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_signal_stops_at_once_keeps_finished_days_and_resumes_identically(
    tmp_path, reference, signum
):
    out = tmp_path / "run"
    scenario = load_scenario(SCENARIO, nights=NIGHTS)
    stopper = _StopAt(n=900, signum=signum)
    stopper.name = "greedy"  # the resumed run names its policy "greedy"
    before = signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)
    with pytest.raises(RunInterrupted) as stopped:
        run_scenario(scenario, out, stopper, progress=False, plots=False)
    kept = stopped.value.days_finished
    assert 0 < kept < NIGHTS + 1
    assert stopped.value.exit_code == 128 + signum
    assert "--resume" in stopped.value.message() and str(out) in stopped.value.message()
    _assert_prefix_of(out, reference, kept)
    assert not (out / "metrics.json").exists()  # only finished runs have metrics
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    with pytest.raises(ConfigError, match="--resume"):
        run_scenario(scenario, out, "greedy", progress=False, plots=False)  # refuses to overwrite
    run_scenario(scenario, out, "greedy", progress=False, plots=False, resume=True)
    _assert_same_run(out, reference)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "twin", *args]


def _start(out: Path) -> subprocess.Popen:
    return subprocess.Popen(
        _cli("run", str(SCENARIO), "--nights", str(NIGHTS), "--out", str(out), "--no-plots",
             "--quiet"),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _wait_for_days(out: Path, proc: subprocess.Popen, days: int, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            if _progress(out)["days_finished"] >= days:
                return
        except (OSError, ValueError, KeyError):
            pass
        time.sleep(0.005)
    pytest.fail(f"the run did not reach day {days} (rc {proc.poll()})")


@pytest.mark.parametrize("moment", ["after day 1", "random"])
def test_sigkill_keeps_exactly_the_finished_days_and_resume_is_bit_identical(
    tmp_path, reference, moment
):
    out = tmp_path / "run"
    proc = _start(out)
    if moment == "random":  # somewhere in the simulation of days 1..3
        _wait_for_days(out, proc, 1)
        time.sleep(float(np.random.default_rng(7).uniform(0.0, 0.5)))
    else:
        _wait_for_days(out, proc, 2)
    proc.kill()
    proc.wait()
    kept = _progress(out)["days_finished"]
    assert 0 < kept <= NIGHTS + 1
    _assert_prefix_of(out, reference, kept)
    done = subprocess.run(_cli("run", "--resume", str(out), "--no-plots", "--quiet"), cwd=ROOT,
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    _assert_same_run(out, reference)


def test_sigterm_from_outside_is_one_line_not_a_traceback(tmp_path):
    out = tmp_path / "run"
    proc = _start(out)
    _wait_for_days(out, proc, 1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM
    assert "Traceback" not in err
    assert f"skytwin run --resume {out}" in err.strip().splitlines()[-1]


def test_resume_refuses_a_complete_or_foreign_run(tmp_path, reference):
    with pytest.raises(ConfigError, match="already complete"):
        run_scenario(load_scenario(SCENARIO, nights=NIGHTS), reference, "greedy",
                     progress=False, plots=False, resume=True)  # fmt: skip
    with pytest.raises(ConfigError, match=r"progress\.json"):
        run_scenario(load_scenario(SCENARIO, nights=NIGHTS), tmp_path, "greedy",
                     progress=False, plots=False, resume=True)  # fmt: skip


def test_resume_refuses_a_different_scenario_or_tampered_parts(tmp_path, reference):
    out = tmp_path / "run"
    scenario = load_scenario(SCENARIO, nights=NIGHTS)
    stopper = _StopAt(n=900, signum=signal.SIGINT)
    stopper.name = "greedy"
    with pytest.raises(RunInterrupted):
        run_scenario(scenario, out, stopper, progress=False, plots=False)
    other = load_scenario(SCENARIO, nights=NIGHTS, seed=scenario.seed + 1)
    stored = out / "scenario.yaml"
    # Another emitter's text of the same scenario (wrapped at 30 columns) is the same
    # scenario: a run stored with or without libyaml resumes.
    text = stored.read_text()
    rewrapped = yaml.safe_dump(yaml.safe_load(text), sort_keys=False, width=30)
    assert rewrapped != text
    stored.write_text(rewrapped)
    assert same_scenario_yaml(rewrapped, scenario)
    assert not same_scenario_yaml(rewrapped, other)
    assert not same_scenario_yaml("{unclosed", scenario)
    with pytest.raises(ConfigError, match="scenario differs"):
        run_scenario(other, out, "greedy", progress=False, plots=False, resume=True)
    with pytest.raises(ConfigError, match="policy"):
        run_scenario(scenario, out, "priority", progress=False, plots=False, resume=True)
    part = out / "events.parquet" / part_name(0)
    pd.read_parquet(part).head(3).to_parquet(part, index=False)
    with pytest.raises(ConfigError, match="replay of day 0"):
        run_scenario(scenario, out, "greedy", progress=False, plots=False, resume=True)


@pytest.mark.parametrize("case", ["file", "under a file", "too long"])
def test_bad_out_directory_is_a_config_error(tmp_path, case):
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    out = {"file": blocker, "under a file": blocker / "run",
           "too long": tmp_path / ("x" * 300)}[case]  # fmt: skip
    with pytest.raises(ConfigError, match="--out"):
        run_scenario(load_scenario(SCENARIO, nights=1), out, "greedy", progress=False,
                     plots=False)  # fmt: skip
    assert blocker.read_text() == "x"
