"""The fixed evaluation protocol: its dates, its seeds, its verdicts, a tiny run."""

import json
import math

import numpy as np
import pytest
from astropy.time import Time

from agents import protocol as P
from agents.es_train import DEFAULT_VALIDATION_SEEDS, TRAIN_SEED_RANGE
from twin.astro.ephemeris import BodyEphemeris
from twin.cli import main


@pytest.mark.parametrize(("key", "date"), sorted(P.DATES.items()))
def test_dates_are_new_and_full_moons_of_2028(key, date):
    """Each cell's first night is within a day of its phase (the twin's own ephemeris),
    in 2028: no shipped policy trained on that year."""
    mjd = Time(date).mjd
    days = mjd + np.arange(-1.0, 2.0, 0.25)
    illum = BodyEphemeris(mjd - 3, mjd + 3).moon_illumination(days)
    assert date.startswith("2028-")
    if key[1] == "new":
        assert illum.min() < 0.01
    else:
        assert illum.max() > 0.99


def test_seasons_are_months_apart():
    months = {s: {int(d[5:7]) for (season, _), d in P.DATES.items() if season == s}
              for s in ("winter", "spring", "summer", "autumn")}  # fmt: skip
    assert [sorted(m) for m in months.values()] == [[1], [4], [7], [10]]


def test_seeds_are_disjoint_from_training_validation_and_each_other():
    seen: set[int] = set()
    for cell in P.cells():
        seeds = P.cell_seeds(cell, 25)
        assert len(set(seeds)) == 25 and not seen & set(seeds)
        seen |= set(seeds)
    assert min(seen) >= 2**31 - 1  # PPO's worlds are seeded in [0, 2^31 - 1)
    assert max(seen) < 2**32  # the scenario's seed limit
    assert min(seen) >= TRAIN_SEED_RANGE[1] and not seen & set(DEFAULT_VALIDATION_SEEDS)
    assert P.cell_seeds(P.cells()[5], 3) == P.cell_seeds(P.cells()[5], 4)[:3]  # fixed blocks
    with pytest.raises(ValueError, match="seeds per cell"):
        P.cell_seeds(P.cells()[0], 0)
    with pytest.raises(ValueError, match="allowed"):
        P.cells(("moon-base",))


def _row(seed, value, ref, followed=0.5, ref_followed=0.5, response=100.0, ref_response=100.0):
    cell = {"network": "n", "season": "winter", "moon": "new", "seed": seed}
    return cell | {
        "p": {"science_value": value, "fraction_followed": followed,
              "latency_median_min": response, "constraint_violations": 0},
        "greedy": {"science_value": ref, "fraction_followed": ref_followed,
                   "latency_median_min": ref_response, "constraint_violations": 0},
        "bound": 200.0,
    }  # fmt: skip


def test_a_cell_is_won_only_with_the_gain_outside_the_interval_and_alerts_kept():
    rows = [_row(i, 110.0 + i % 3, 100.0) for i in range(6)]
    (cell,) = P.summarise(rows, "p")
    assert cell["won"] and cell["gain"]["low"] > 0
    assert cell["gain_pct"] == pytest.approx(11.0)
    assert cell["policy_fraction_of_bound"] == pytest.approx(111.0 / 200.0)
    assert cell["reference_fraction_of_bound"] == pytest.approx(0.5)
    noisy = [_row(i, 100.0 + (5 if i % 2 else -4), 100.0) for i in range(6)]
    assert not P.summarise(noisy, "p")[0]["won"]
    fewer = [_row(i, 110.0, 100.0, followed=0.3 + 0.01 * i) for i in range(6)]
    assert not P.summarise(fewer, "p")[0]["won"]
    slower = [_row(i, 110.0, 100.0, response=150.0 + i) for i in range(6)]
    assert not P.summarise(slower, "p")[0]["won"]
    late = {
        d: [_row(i, 111.0 + i, 100.0, response=100.0 + d) for i in range(4)] for d in (0.5, 1.5)
    }
    assert P.summarise(late[0.5], "p")[0]["won"] and not P.summarise(late[1.5], "p")[0]["won"]
    # One world where the policy answered no alert and greedy did: no pair, still a loss.
    silent = [_row(i, 111.0 + i, 100.0) for i in range(4)]
    silent[2]["p"]["latency_median_min"] = None
    (cell,) = P.summarise(silent, "p")
    assert cell["unanswered_worlds"] == 1 and not cell["won"]


def test_one_seed_never_wins_and_a_zero_night_does_not_poison_the_mean():
    assert not P.summarise([_row(0, 150.0, 100.0)], "p")[0]["won"]
    rows = [_row(i, 110.0 + i, 100.0) for i in range(3)]
    dark = [_row(i, 0.0, 0.0) | {"season": "summer"} for i in range(3)]
    record = {"policy": "p", "seeds_per_cell": 3, "cells": P.summarise(rows + dark, "p")}
    assert math.isnan(record["cells"][1]["gain_pct"]) and not record["cells"][1]["won"]
    text = P.format_protocol(record)
    assert "mean gain +11.00 %" in text and "1 cells where greedy scored 0" in text


def test_a_world_runs_each_policy_on_its_cells_date_and_gets_the_bound():
    """The bound path: the LP of the slew-aware oracle, above what greedy earned."""
    cell = P.cells(("india-chile",))[0]
    seed = P.cell_seeds(cell, 1)[0]
    row = P._one((cell, seed, ("greedy",), True, 300.0))
    assert row["start"] == cell.start == "2028-01-26" and row["seed"] == seed
    assert row["bound"] is not None
    assert row["bound"] >= row["greedy"]["science_value"] > 0.0


def test_tiny_protocol_run_through_the_cli(tmp_path, capsys):
    """Random against greedy on one network, one seed a cell: random loses on average,
    and every cell is reported with the same worlds for both policies."""
    out = tmp_path / "protocol.json"
    code = main(["evaluate", "--protocol", "--policy", "random", "--networks", "india-chile",
                 "--seeds-per-cell", "2", "--no-oracle", "--json", str(out)])  # fmt: skip
    assert code in (0, None)
    record = json.loads(out.read_text())
    assert len(record["cells"]) == len(P.DATES) and len(record["rows"]) == 2 * len(P.DATES)
    assert [r["seed"] for r in record["rows"]] == [
        s for c in P.cells(("india-chile",)) for s in P.cell_seeds(c, 2)
    ]
    assert [r["start"] for r in record["rows"]][::2] == list(P.DATES.values())
    gains = [c["gain_pct"] for c in record["cells"] if math.isfinite(c["gain_pct"])]
    assert np.mean(gains) < 0 and not any(c["won"] for c in record["cells"])
    assert "0/8 cells won" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (["--protocol", "--networks", "mars"], "--networks"),
        (["--protocol", "--networks", "india-chile, india-chile"], "--networks"),
        (["--protocol", "--seeds-per-cell", "1"], "--seeds-per-cell"),
        (["--protocol", "--workers", "0"], "--workers"),
        (["--protocol", "--seeds", "1..3"], "--seeds"),
        (["--protocol", "--against", "random"], "--against"),
        (["--networks", "india-chile"], "--networks"),
    ],
)
def test_bad_protocol_options_are_refused_before_any_run(capsys, args, option):
    code = main(["evaluate", "--policy", "greedy", *args])
    assert code == 2
    assert option in capsys.readouterr().err
