"""Do the look-ahead features earn their keep? An ablation on held-out seeds.

Runs one night of global-3site on seeds 101-110 from each of the README's four dates
with four policies on the same worlds: greedy, the first shipped scorer (13 features), a
scorer trained with the look-ahead features, and that scorer with its look-ahead weights
set to 0. Seeds 101-110 were not used in the look-ahead search's training or validation;
they are not untouched, though: the first scorer's alert guard was switched on after
results on them (README), so the protocol's worlds are the held-out test. Prints each
scorer's paired gain over greedy (95 % interval), the alerts followed against greedy's,
and the paired differences that answer the question: look-ahead scorer minus the first
scorer, and look-ahead scorer minus itself without the look-ahead. Then pairs the two
scorers' protocol results world by world (``PROTOCOLS``). Writes the JSON to OUT.

    .venv/bin/python docs/scorer_lookahead_ablation.py SCORER [OUT]   # ~6 min, 2 processes
"""

from __future__ import annotations

import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from agents.es_train import _outcomes
from agents.evaluate import interval
from agents.scorer import BASE_FEATURES, load_scorer

ROOT = Path(__file__).resolve().parents[1]
FIRST = ROOT / "agents" / "trained" / "es-global-3site"
SCENARIO = str(ROOT / "scenarios" / "global-3site.yaml")
DATES = ("2027-01-15", "2027-04-07", "2027-07-15", "2027-10-15")
SEEDS = tuple(range(101, 111))
PROTOCOLS = {
    "first": ROOT / "benchmarks" / "results" / "protocol_scorer.json",
    "lookahead": ROOT / "benchmarks" / "results" / "protocol_scorer_lookahead.json",
}


def main(scorer: str | Path, out: str | Path | None = None, workers: int = 2) -> dict:
    trained = load_scorer(scorer).weights
    zeroed = trained.copy()
    zeroed[len(BASE_FEATURES) :] = 0.0
    policies = {"greedy": np.zeros_like(trained), "first": load_scorer(FIRST).weights,
                "lookahead": trained, "lookahead_zeroed": zeroed}  # fmt: skip
    with ProcessPoolExecutor(workers) as pool:  # (policy, seed, value / alerts) per date
        per_day = {day: _outcomes(pool, SCENARIO, [day] * len(SEEDS), 1, SEEDS,
                                  list(policies.values()), True) for day in DATES}  # fmt: skip
    values = {name: {day: per_day[day][i] for day in DATES} for i, name in enumerate(policies)}
    summary: dict[str, dict] = {}
    for day in DATES:
        greedy = values["greedy"][day]
        row: dict[str, dict] = {}
        for name in ("first", "lookahead", "lookahead_zeroed"):
            mine = values[name][day]
            value, reference = float(mine[:, 0].mean()), float(greedy[:, 0].mean())
            alerts = float(np.mean(mine[:, 1] - greedy[:, 1]))
            row[name] = {"value": value, "greedy": reference,
                         "gain": interval(mine[:, 0] - greedy[:, 0]),
                         "gain_pct": 100.0 * (value / reference - 1.0),
                         "alerts_followed_diff": alerts}  # fmt: skip
        la = values["lookahead"][day][:, 0]
        row["lookahead_minus_first"] = interval(la - values["first"][day][:, 0])
        row["lookahead_minus_zeroed"] = interval(la - values["lookahead_zeroed"][day][:, 0])
        summary[day] = row
        print(_line(day, row))
    pairing = protocol_pairing()
    print(f"protocol, world by world, look-ahead minus first scorer: "
          f"{pairing['value']['mean']:+.2f} [{pairing['value']['low']:+.2f}, "
          f"{pairing['value']['high']:+.2f}] a night, {pairing['pct']['mean']:+.2f} % "
          f"[{pairing['pct']['low']:+.2f}, {pairing['pct']['high']:+.2f}] "
          f"over {pairing['worlds']} worlds")  # fmt: skip
    if out:
        Path(out).write_text(json.dumps({"scorer": str(scorer), "seeds": "101..110",
                                         "dates": summary, "protocol_pairing": pairing},
                                        indent=1))  # fmt: skip
    return summary


def protocol_pairing() -> dict:
    """The look-ahead scorer minus the first scorer on the protocol's worlds (the same
    network, date and seed in both files): science value a night, and as a percentage of
    the first scorer's."""
    rows = {}
    for name, path in PROTOCOLS.items():
        record = json.loads(path.read_text())
        for row in record["rows"]:
            key = (row["network"], row["start"], row["seed"])
            rows.setdefault(key, {})[name] = row[record["policy"]]["science_value"]
    pairs = np.array([(r["lookahead"], r["first"]) for r in rows.values() if len(r) == 2])
    diff = pairs[:, 0] - pairs[:, 1]
    return {
        "worlds": len(pairs),
        "value": interval(diff),
        "pct": interval(100.0 * diff / pairs[:, 1]),
    }


def _line(day: str, row: dict) -> str:
    def gain(d: dict) -> str:
        return f"{d['mean']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]"

    parts = [f"{name} {gain(row[name]['gain'])} ({row[name]['gain_pct']:+.2f} %, alerts "
             f"{row[name]['alerts_followed_diff']:+.2f})"
             for name in ("first", "lookahead", "lookahead_zeroed")]  # fmt: skip
    return (f"{day}: " + "; ".join(parts) + f"; lookahead - first "
            f"{gain(row['lookahead_minus_first'])}; lookahead - zeroed "
            f"{gain(row['lookahead_minus_zeroed'])}")  # fmt: skip


if __name__ == "__main__":
    main(*sys.argv[1:3])
