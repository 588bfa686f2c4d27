"""Every shipped scenario runs a night cleanly, and the teaching ones show their pattern.

Each YAML under ``scenarios/`` (teaching ones included) must load, run one night with no
constraint violation and some exposures, and open with a comment block saying what it
demonstrates. The teaching scenarios are then held to the behaviour their header
promises, with numbers: ``relay`` hands M83 from site to site, ``failover`` moves the work
of a clouded-out site to a clear one, ``confirmation`` detects a transient at one site and
confirms it at another.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from twin.ops.run import run_scenario
from twin.scenario import Scenario, WeatherSpec, load_scenario

SCENARIOS = Path(__file__).resolve().parents[2] / "scenarios"
SWEEPS = sorted(p for p in (SCENARIOS / "sweeps").glob("*.yaml")
                if "base" in (yaml.safe_load(p.read_text()) or {}))  # fmt: skip
"""Sweep files (``skytwin sweep``), not scenarios: checked by their own test below."""
SHIPPED = sorted(set(SCENARIOS.rglob("*.yaml")) - set(SWEEPS))
TEACHING = SCENARIOS / "teaching"
FIXED_START = "2027-04-07"
"""Files that start 'tonight' run on this date here, so the test does not change daily."""


def _load(path: Path, **overrides) -> Scenario:
    raw = yaml.safe_load(path.read_text())
    if raw.get("start", "tonight") == "tonight":
        overrides.setdefault("start", FIXED_START)
    return load_scenario(path, nights=1, **overrides)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One run per scenario (keyed by file), made the first time a test asks for it."""
    done: dict[Path, tuple[Path, dict]] = {}

    def run(path: Path) -> tuple[Path, dict]:
        if path not in done:
            out = tmp_path_factory.mktemp(path.stem)
            result = run_scenario(_load(path), out, progress=False, plots=False)
            done[path] = (out, result.metrics)
        return done[path]

    return run


def _table(out: Path, name: str) -> pd.DataFrame:
    return pd.read_parquet(out / f"{name}.parquet")


def test_scenarios_found():
    names = {p.relative_to(SCENARIOS).as_posix() for p in SHIPPED}
    expected = {
        "global-3site.yaml",
        "dense-8site.yaml",
        "single-site.yaml",
        "india-chile.yaml",
        "teaching/relay.yaml",
        "teaching/failover.yaml",
        "teaching/confirmation.yaml",
    }
    assert expected <= names, f"missing: {sorted(expected - names)}"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_header_says_what_it_demonstrates(path):
    lines = path.read_text().splitlines()
    header = list(itertools.takewhile(lambda line: line.startswith("#"), lines))
    assert len(header) >= 3, f"{path.name}: start with a comment block saying what it shows"
    assert header[0].startswith(f"# {path.stem}"), f"{path.name}: name the scenario first"
    text = " ".join(header)
    needed = "Look at:" if path.parent == TEACHING else "Demonstrates:"
    assert needed in text, f"{path.name}: the header should say {needed!r}"
    assert load_scenario(path).name == path.stem, "name: should match the file name"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_one_night_runs_clean(path, runs):
    _, metrics = runs(path)
    violations = metrics["constraint_violations"]
    assert violations["count"] == 0, violations["examples"]
    assert metrics["run"]["exposures"] > 0
    assert metrics["run"]["invalid_actions"] == 0


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.relative_to(SCENARIOS).as_posix())
def test_shipped_sweeps_say_what_they_ask_and_expand(path):
    from twin.sweeps.points import expand
    from twin.sweeps.spec import load_sweep

    header = list(itertools.takewhile(lambda line: line.startswith("#"),
                                      path.read_text().splitlines()))  # fmt: skip
    assert len(header) >= 3 and header[0].startswith(f"# {path.stem}")
    assert "skytwin sweep" in " ".join(header), "the header should give the command"
    spec, base = load_sweep(path)
    assert spec.name == path.stem
    points = expand(spec, base, str(path))  # every point's scenario validated
    assert len(points) >= 20 and len({p.layout for p in points}) >= 2


# -- relay -------------------------------------------------------------------------------
RELAY_ORDER = ["siding-spring", "sutherland", "cerro-pachon"]  # east to west


def test_relay_hands_the_target_from_site_to_site(runs):
    out, _ = runs(TEACHING / "relay.yaml")
    obs = _table(out, "observations")
    m83 = obs[obs["target_id"] == "M83"].sort_values("mjd_start")
    order = m83["site"].to_numpy()
    blocks = [site for i, site in enumerate(order) if i == 0 or site != order[i - 1]]
    assert blocks == RELAY_ORDER  # each site once, one contiguous block, east to west
    spans = m83.groupby("site").agg(
        first=("mjd_start", "min"), last=("mjd_end", "max"), visits=("visit_id", "nunique")
    )
    assert (spans["visits"] >= 4).all(), spans
    for before, after in itertools.pairwise(RELAY_ORDER):
        # The next site starts after the previous one stops, within a few hours.
        gap_h = (spans.at[after, "first"] - spans.at[before, "last"]) * 24.0
        assert 0.0 < gap_h < 5.0, (before, after, gap_h)
    # The hand-over follows the Earth's rotation: each site has M83 around its meridian,
    # inside the hour angle where the airmass stays below 1.3 (|HA| < 3.2 h at Dec = lat).
    ha = m83.groupby("site")["hour_angle_h"]
    assert (ha.apply(lambda h: np.abs(h).max()) < 3.2).all()
    assert (ha.mean().abs() < 1.0).all()
    # Within a site the 0.05-d cadence holds.
    for _, part in m83.groupby("site"):
        starts = part.groupby("visit_id")["mjd_start"].min().sort_values().to_numpy()
        assert np.all(np.diff(starts) >= 0.05 - 1e-6)


# -- failover ----------------------------------------------------------------------------
CLOUDED, CLEAR = "sutherland", "cerro-pachon"


def _night(out: Path, site: str) -> tuple[float, float]:
    nights = _table(out, "nights")
    row = nights[nights["site"] == site].iloc[0]
    return float(row["mjd_start"]), float(row["mjd_end"])


def test_failover_clear_site_takes_the_clouded_sites_work(runs):
    out, _ = runs(TEACHING / "failover.yaml")
    obs, events = _table(out, "observations"), _table(out, "events")
    start, end = _night(out, CLOUDED)
    assert (obs["site"] == CLOUDED).sum() == 0
    mine = events[events["site"] == CLOUDED]
    closes = mine.loc[mine["kind"] == "dome_close", "mjd"]
    opens = mine.loc[mine["kind"] == "dome_open", "mjd"]
    assert len(closes) == 1 and closes.iloc[0] < start  # shut before the night begins
    assert not ((opens > start) & (opens < end)).any()  # and stays shut through it
    tc = obs[obs["request_id"] == "tc-cena"]
    assert len(tc) == 3 and set(tc["site"]) == {CLEAR}
    assert (obs["site"] == CLEAR).sum() >= 10
    assert tc["mjd_start"].min() >= _night(out, CLEAR)[0]


def test_failover_on_a_clear_night_the_first_site_does_it(tmp_path, runs):
    """The control: with ideal weather both sites observe and Sutherland, dark first,
    takes the request hours earlier than Cerro Pachon does in the clouded run."""
    scenario = _load(TEACHING / "failover.yaml")
    ideal = scenario.model_copy(update={"weather": WeatherSpec(model="ideal")})
    run_scenario(ideal, tmp_path, progress=False, plots=False)
    obs = _table(tmp_path, "observations")
    assert (obs["site"] == CLOUDED).sum() > 0 and (obs["site"] == CLEAR).sum() > 0
    tc = obs[obs["request_id"] == "tc-cena"]
    assert set(tc["site"]) == {CLOUDED}
    out, _ = runs(TEACHING / "failover.yaml")
    clouded_tc = _table(out, "observations").query("request_id == 'tc-cena'")
    delay_h = (clouded_tc["mjd_start"].min() - tc["mjd_start"].min()) * 24.0
    assert delay_h > 2.0


# -- confirmation ------------------------------------------------------------------------
def test_confirmation_detected_at_one_site_confirmed_at_another(runs):
    out, _ = runs(TEACHING / "confirmation.yaml")
    events, alerts = _table(out, "events"), _table(out, "alerts")
    assert list(alerts["alert_id"]) == ["alert-sched-00"]  # rate 0: only the scheduled one
    alert = alerts.iloc[0]
    mine = events[events["ref"] == "alert-sched-00"].sort_values("mjd")
    kinds = list(mine["kind"])
    assert "alert_detected" in kinds and "alert_confirmed" in kinds
    assert kinds.index("alert_detected") < kinds.index("alert_confirmed")
    detected = mine[mine["kind"] == "alert_detected"].iloc[0]
    confirmed = mine[mine["kind"] == "alert_confirmed"].iloc[0]
    assert detected["site"] == alert["first_followup_site"] == "siding-spring"
    assert confirmed["site"] == alert["confirmed_site"] == "cerro-pachon"
    assert alert["confirmed_site"] != alert["first_followup_site"]
    # Found within minutes of the alert (dark there), confirmed when Chile's night begins.
    assert (alert["detected_mjd"] - alert["issued_mjd"]) * 24.0 < 0.5
    pachon_start, _ = _night(out, "cerro-pachon")
    assert pachon_start <= alert["confirmed_mjd"] < alert["detected_mjd"] + 1.0
    assert (alert["confirmed_mjd"] - alert["detected_mjd"]) * 24.0 > 6.0
