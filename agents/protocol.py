"""The fixed evaluation protocol: a scheduler against greedy on worlds nobody trained on.

Why: a learning result is only as good as the seeds it was never tuned on. Choosing the
held-out seeds and dates after seeing results, or reporting the one season a policy wins
in, makes any policy look good. This protocol fixes everything before any result:

- **Networks**: ``global-3site``, ``india-chile``, ``dense-8site`` (one, two and three
  continents; 3, 2 and 8 telescopes).
- **Dates**: 2028, a year no shipped policy trained on (the CMA-ES scorer trains across
  2027, PPO on 2027-04-07), in four seasons, each at the new moon and at the full moon
  nearest mid-season (:data:`DATES`; a test checks the illumination with the twin's own
  almanac).
- **Seeds**: from ``[2^31, 2^32)``, disjoint from every training draw (PPO's worlds are
  seeded below ``2^31 - 1``, the scorer's in ``[1000, 10^6)``, its validation 500-515),
  a block of its own for each cell (:func:`cell_seeds`), so no two cells share weather.
- **Measures**, each paired with greedy seed by seed on the same world: science value
  (its 95 % t interval, and the gain in %), alerts followed, median alert response, and
  both policies' fraction of the slew-aware oracle's bound (:mod:`agents.oracle`).

A cell is *won* when the paired science-value interval (two seeds or more) lies above 0,
alerts followed are not fewer on average over its seeds, the median response is not later
on average (by more than a minute), and in no world did the policy answer no alert where
greedy answered some. Issue 18's bar: every cell
won, the gain >= 5 % on average.

    skytwin evaluate --protocol --policy agents/trained/es-global-3site --json out.json
"""

from __future__ import annotations

import math
import tempfile
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from agents.evaluate import BOUND_TIME_LIMIT_S, paired_interval
from twin.errors import ConfigError
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
NETWORKS = ("global-3site", "india-chile", "dense-8site")
DATES = {
    ("winter", "new"): "2028-01-26",
    ("winter", "full"): "2028-01-12",
    ("spring", "new"): "2028-04-24",
    ("spring", "full"): "2028-04-09",
    ("summer", "new"): "2028-07-22",
    ("summer", "full"): "2028-07-06",
    ("autumn", "new"): "2028-10-18",
    ("autumn", "full"): "2028-10-03",
}
"""First night of each season x moon cell (northern seasons; new and full moons of 2028)."""
SEED_BASE = 2**31
SEEDS_PER_CELL_BLOCK = 10_000
DEFAULT_SEEDS = 10
REFERENCE = "greedy"
RESPONSE_TOLERANCE_MIN = 1.0
"""A won cell's median alert response may be later than greedy's by this much on
average (minutes); alerts followed may not be fewer at all."""


@dataclass(frozen=True)
class Cell:
    network: str
    season: str
    moon: str

    @property
    def start(self) -> str:
        return DATES[(self.season, self.moon)]

    @property
    def scenario(self) -> Path:
        return SCENARIOS / f"{self.network}.yaml"

    @property
    def label(self) -> str:
        return f"{self.network} {self.season} {self.moon}"


def check_options(networks: tuple[str, ...], seeds_per_cell: int, workers: int) -> None:
    """ConfigError naming the ``skytwin evaluate`` option and its allowed values: networks
    of the protocol, each once; two seeds or more a cell (a paired interval needs two);
    one worker or more."""
    unknown = sorted(set(networks) - set(NETWORKS))
    if unknown or len(set(networks)) < len(networks):
        what = f"{unknown} unknown" if unknown else f"{list(networks)} repeats a network"
        raise ConfigError("--networks", "networks", f"{what}; allowed: {list(NETWORKS)}")
    if not 2 <= seeds_per_cell <= SEEDS_PER_CELL_BLOCK:
        allowed = f"2..{SEEDS_PER_CELL_BLOCK} (a paired interval needs two seeds)"
        raise ConfigError("--seeds-per-cell", "seeds", f"{seeds_per_cell}; allowed: {allowed}")
    if workers < 1:
        raise ConfigError("--workers", "workers", f"{workers}; allowed: 1 or more")


def cells(networks: tuple[str, ...] = NETWORKS) -> list[Cell]:
    """Every network x season x moon cell, in a fixed order."""
    unknown = sorted(set(networks) - set(NETWORKS))
    if unknown:
        raise ValueError(f"networks {unknown} are not in the protocol; allowed: {list(NETWORKS)}")
    return [Cell(n, s, m) for n in networks for (s, m) in DATES]


def cell_seeds(cell: Cell, n: int = DEFAULT_SEEDS) -> list[int]:
    """The cell's weather seeds: the first ``n`` of a block of its own in ``[2^31, 2^32)``."""
    if not 1 <= n <= SEEDS_PER_CELL_BLOCK:
        raise ValueError(f"seeds per cell = {n}; allowed: 1..{SEEDS_PER_CELL_BLOCK}")
    index = list(NETWORKS).index(cell.network) * len(DATES) + list(DATES).index(
        (cell.season, cell.moon)
    )
    first = SEED_BASE + index * SEEDS_PER_CELL_BLOCK
    return list(range(first, first + n))


def _one(task: tuple) -> dict:
    """One world: every policy's night and the bound (run in a worker process)."""
    cell, seed, policies, oracle, limit_s = task
    scenario = load_scenario(cell.scenario, nights=1, seed=seed, start=cell.start)
    row = {"network": cell.network, "season": cell.season, "moon": cell.moon,
           "start": cell.start, "seed": seed}  # fmt: skip
    for name in policies:
        with tempfile.TemporaryDirectory(prefix="skytwin-protocol-") as out:
            m = run_scenario(scenario, out, resolve_policy(name), progress=False,
                             plots=False).metrics  # fmt: skip
        row[name] = {
            "science_value": m["network"]["science_value"],
            "fraction_followed": m["alerts"]["fraction_followed"],
            "latency_median_min": m["alerts"]["latency_median_min"],
            "constraint_violations": m["constraint_violations"]["count"],
        }
    if oracle:
        from agents.oracle import oracle_value_for_scenario

        bound = oracle_value_for_scenario(scenario, time_limit_s=limit_s, mip=False)
        row["bound"] = bound.upper_bound if math.isfinite(bound.lp_bound) else None
    return row


def run_protocol(
    policy: str,
    networks: tuple[str, ...] = NETWORKS,
    seeds_per_cell: int = DEFAULT_SEEDS,
    oracle: bool = True,
    oracle_time_limit_s: float = BOUND_TIME_LIMIT_S,
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Run ``policy`` and greedy on every cell's seeds; per-seed rows and per-cell
    summaries (:func:`summarise`)."""
    check_options(networks, seeds_per_cell, workers)
    resolve_policy(policy)  # a bad name or file fails here, before any run
    policies = (policy,) if policy == REFERENCE else (policy, REFERENCE)
    tasks = [
        (cell, seed, policies, oracle, oracle_time_limit_s)
        for cell in cells(networks)
        for seed in cell_seeds(cell, seeds_per_cell)
    ]
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="protocol worlds", disable=not progress)
    rows = []
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            for row in pool.map(_one, tasks):
                rows.append(row)
                bar.update()
    else:
        for task in tasks:
            rows.append(_one(task))
            bar.update()
    bar.close()
    return {
        "policy": policy,
        "reference": REFERENCE,
        "networks": list(networks),
        "seeds_per_cell": seeds_per_cell,
        "oracle_time_limit_s": oracle_time_limit_s if oracle else None,
        "rows": rows,
        "cells": summarise(rows, policy),
    }


def _paired(rows: list[dict], policy: str, metric: str) -> dict[str, float]:
    return paired_interval([(r[policy][metric], r[REFERENCE][metric]) for r in rows])


def summarise(rows: list[dict], policy: str) -> list[dict]:
    """Per cell: both policies' mean science value, the paired gain (interval, %), the
    paired alert measures, the fractions of the bound, and whether the cell is won."""
    out = []
    for cell in dict.fromkeys((r["network"], r["season"], r["moon"]) for r in rows):
        mine = [r for r in rows if (r["network"], r["season"], r["moon"]) == cell]
        ref = [r[REFERENCE]["science_value"] for r in mine]
        pol = [r[policy]["science_value"] for r in mine]
        gain = _paired(mine, policy, "science_value")
        followed = _paired(mine, policy, "fraction_followed")
        response = _paired(mine, policy, "latency_median_min")
        ref_mean = sum(ref) / len(ref)
        # A world where greedy answered alerts and the policy answered none has no paired
        # response: it counts against the policy.
        unanswered = sum(
            r[policy]["latency_median_min"] is None
            and r[REFERENCE]["latency_median_min"] is not None
            for r in mine
        )
        entry = {
            "network": cell[0],
            "season": cell[1],
            "moon": cell[2],
            "seeds": len(mine),
            "reference_value": ref_mean,
            "policy_value": sum(pol) / len(pol),
            "gain": gain,
            "gain_pct": 100.0 * gain["mean"] / ref_mean if ref_mean > 0 else math.nan,
            "followed": followed,
            "response_min": response,
            "unanswered_worlds": unanswered,
            "violations": sum(r[policy]["constraint_violations"] for r in mine),
        }
        bounded = [r for r in mine if r.get("bound")]  # an LP that finished, a night > 0
        if bounded:
            for key, name in (("policy", policy), ("reference", REFERENCE)):
                fractions = [r[name]["science_value"] / r["bound"] for r in bounded]
                entry[f"{key}_fraction_of_bound"] = sum(fractions) / len(bounded)
            entry["bounded_seeds"] = len(bounded)
        if policy != REFERENCE:
            entry["won"] = bool(
                gain["n"] >= 2
                and gain["low"] > 0
                and not followed["mean"] < 0
                and not response["mean"] > RESPONSE_TOLERANCE_MIN
                and unanswered == 0
            )
        out.append(entry)
    return out


def format_protocol(record: dict) -> str:
    """The per-cell table and the verdict against issue 18's bar."""
    from twin.reports.table import format_table

    policy, table = record["policy"], []
    for c in record["cells"]:
        g = c["gain"]
        table.append({
            "cell": f"{c['network']} {c['season']} {c['moon']}",
            "greedy": f"{c['reference_value']:.1f}",
            policy if len(policy) < 20 else "policy": f"{c['policy_value']:.1f}",
            "gain [95%]": f"{g['mean']:+.1f} [{g['low']:+.1f}, {g['high']:+.1f}]",
            "gain %": f"{c['gain_pct']:+.1f}",
            "followed": f"{c['followed']['mean']:+.2f}",
            "response min": _signed(c["response_min"]["mean"]),
            "bound fraction (greedy)": _fraction(c),
            "won": "yes" if c.get("won") else "no",
        })  # fmt: skip
    cells_ = record["cells"]
    pcts = [c["gain_pct"] for c in cells_ if math.isfinite(c["gain_pct"])]
    mean_pct = sum(pcts) / len(pcts) if pcts else math.nan
    won = sum(bool(c.get("won")) for c in cells_)
    zero = len(cells_) - len(pcts)
    skipped = f", {zero} cells where greedy scored 0" if zero else ""
    tail = (
        f"{policy} vs greedy: {won}/{len(cells_)} cells won, mean gain {mean_pct:+.2f} % "
        f"({record['seeds_per_cell']} seeds a cell{skipped}); issue 18's bar: all cells, >= 5 %"
    )
    return format_table(table) + "\n" + tail


def _signed(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:+.0f}"


def _fraction(cell: dict) -> str:
    if "policy_fraction_of_bound" not in cell:
        return "-"
    return f"{cell['policy_fraction_of_bound']:.3f} ({cell['reference_fraction_of_bound']:.3f})"
