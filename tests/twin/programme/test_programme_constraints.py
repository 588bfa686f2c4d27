"""One declaration per rule: a toy rule added in one place reaches the constraint engine,
the violation audit and the oracle's bound."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import twin.ops.run as run_module
from agents.oracle import oracle_bound
from twin.ops.engines import DEFAULT_ENGINE, ENGINES
from twin.ops.intervals import Intervals
from twin.ops.world import World
from twin.programme import constraints
from twin.programme.constraints import Rule, extra_rules
from twin.programme.requests import Constraints, ExposurePlan, Request, Window
from twin.reports.rule_checks import constraint_violations, rules
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
TOY = Rule("toy_alt", "min_alt_toy_deg", "alt_deg", "min", ("start", "end"))
LIMIT_DEG = 55.0


class ToyConstraints(Constraints):
    """The scenario side of the toy rule: one more field (what a new rule would add to
    :class:`Constraints` itself)."""

    min_alt_toy_deg: float | None = None


def with_toy_limit(request: Request, limit: float | None) -> Request:
    toy = ToyConstraints(**request.constraints.model_dump(), min_alt_toy_deg=limit)
    return request.model_copy(update={"constraints": toy})


def run_single_site(tmp_path: Path, monkeypatch, limit: float | None,
                    engine: str = DEFAULT_ENGINE) -> Path:  # fmt: skip
    def world_with_toy_limits(scenario):
        world = World(scenario)
        world.requests = [with_toy_limit(r, limit) for r in world.requests]
        return world

    monkeypatch.setattr(run_module, "World", world_with_toy_limits)
    scenario = load_scenario(ROOT / "scenarios" / "single-site.yaml", nights=1,
                             start="2027-06-01", seed=3)  # fmt: skip
    out = tmp_path / f"run-{limit}-{engine}"
    run_module.run_scenario(scenario, out, "greedy", progress=False, plots=False, engine=engine)
    return out


def low_end_alt(obs: pd.DataFrame) -> np.ndarray:
    return np.minimum(obs["alt_deg"].to_numpy(), obs["alt_end_deg"].to_numpy())


def test_declared_rules_are_the_audit_and_table_columns():
    assert rules()[: len(constraints.RULES)] == tuple(r.name for r in constraints.RULES)
    with extra_rules(TOY):
        assert "toy_alt" in rules() and "min_alt_toy_deg" in constraints.limit_fields()
    assert "toy_alt" not in rules()


def test_a_rule_at_an_end_its_quantity_is_not_logged_at_is_refused():
    late = Rule("late_seeing", "max_seeing_arcsec", "seeing_fwhm_arcsec", "max", ("start", "end"))
    with pytest.raises(ValueError, match=r"late_seeing.*start only.*allowed: \('start',\)"):
        with extra_rules(late):
            pass
    assert "late_seeing" not in rules()


@pytest.mark.parametrize("engine", sorted(ENGINES))
def test_engine_and_audit_honour_a_toy_rule(tmp_path, monkeypatch, engine):
    free = pd.read_parquet(
        run_single_site(tmp_path, monkeypatch, None, engine) / "observations.parquet"
    )
    assert (low_end_alt(free) < LIMIT_DEG).any()  # without the rule, it would bite
    with extra_rules(TOY):
        out = run_single_site(tmp_path, monkeypatch, LIMIT_DEG, engine)
        obs = pd.read_parquet(out / "observations.parquet")
        requests = pd.read_parquet(out / "requests.parquet")
        events = pd.read_parquet(out / "events.parquet")
        nights = pd.read_parquet(out / "nights.parquet")
        limited = requests.loc[requests["alert_id"] == "", "request_id"]
        assert (requests.set_index("request_id").loc[limited, "min_alt_toy_deg"] == LIMIT_DEG).all()
        # Alert follow-ups are made during the run without the field: no limit.
        assert (requests.loc[requests["alert_id"] != "", "min_alt_toy_deg"] == -np.inf).all()
        bound = obs["request_id"].isin(limited).to_numpy()
        assert bound.sum() > 0
        # The engine kept every exposure above the toy limit at both ends.
        assert (low_end_alt(obs)[bound] >= LIMIT_DEG).all()
        assert constraint_violations(obs, requests, events, nights).empty
        # The audit judges the log against the requests' limits: stricter ones are broken.
        strict_deg = float(np.median(low_end_alt(obs)[bound]))
        stricter = requests.assign(
            min_alt_toy_deg=np.where(requests["alert_id"] == "", strict_deg, -np.inf)
        )
        found = constraint_violations(obs, stricter, events, nights)
        assert set(found["rule"]) == {"toy_alt"}
        expected = obs.loc[bound & (low_end_alt(obs) < strict_deg), "obs_id"]
        assert len(expected) > 0
        assert sorted(found["obs_id"]) == sorted(expected)
        assert np.allclose(found["limit"], strict_deg)


def zenith_request(world: World, request_id: str, limit: float | None) -> Request:
    """A request at the zenith half an hour into the night (ideal weather)."""
    site = world.sites[0]
    start = site.nights[0].start_mjd + 30.0 / 1440.0
    lst_h = float(site.visibility.almanac.lst_hours(start + 10.0 / 1440.0))
    return Request(
        request_id=request_id,
        program="toy",
        target_id=request_id,
        ra_deg=15.0 * lst_h % 360.0,
        dec_deg=site.site.lat_deg,
        plan=(ExposurePlan(band="i", exptime_s=120.0, count=3),),
        constraints=ToyConstraints(max_airmass=3.0, min_moon_sep_deg=0.0, min_alt_toy_deg=limit),
        windows=(Window(start_mjd=start, end_mjd=start + 20.0 / 1440.0),),
    )


@pytest.mark.parametrize(("limit", "bound_is_zero"), [(80.0, False), (95.0, True)])
def test_oracle_honours_a_toy_rule(tmp_path, limit, bound_is_zero):
    path = tmp_path / "hand.yaml"
    path.write_text(
        'name: toy\nstart: "2027-03-10"\nnights: 1\n'
        "sites:\n  - site: cerro-pachon\n    telescopes: [{name: pachon-1m, preset: 1m}]\n"
        "weather: {model: ideal}\n"
    )
    world = World(load_scenario(path))
    world.sites[0].dome_closed = Intervals([])
    world.telescopes[0].down = Intervals([])
    world.requests = [zenith_request(world, "z", limit)]
    with extra_rules(TOY):
        result = oracle_bound(world, time_limit_s=20.0)
    assert (result.upper_bound == 0.0) == bound_is_zero
    # Without the rule in force the same requests (same field) are unbounded by it.
    assert oracle_bound(world, time_limit_s=20.0).upper_bound > 0.0
