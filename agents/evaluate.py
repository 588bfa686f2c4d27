"""Compare schedulers like for like: one policy, one scenario, many weather seeds.

Each seed is a full twin run (:func:`twin.ops.run.run_scenario`, no plots) of the same
scenario, date and nights; the metrics of each run are collected and summarised by
their mean and a 95% confidence interval (Student's t: a handful of seeds). With the
oracle, each seed's world also gets the offline upper bound on its science value
(:func:`agents.oracle.oracle_bound`, summed over the nights), and the policy's value is
reported as a fraction of it.

    skytwin evaluate --policy runs/ppo --scenario scenarios/global-3site.yaml \
        --seeds 1..10
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from scipy import stats

from envs.network_env import DEFAULT_SCENARIO
from twin.errors import ConfigError
from twin.ops.policies import resolve_policy
from twin.ops.run import run_scenario
from twin.ops.world import World
from twin.scenario import load_scenario

METRICS = ("science_value", "exposures", "latency_median_min", "fraction_followed",
           "constraint_violations", "oracle_bound", "fraction_of_oracle")  # fmt: skip
"""Per-seed metrics, in the order they are reported."""
ORACLE_TIME_LIMIT_S = 10.0
"""Budget of each night's plan for the oracle policy (a plan stopped at its limit is
still a valid bound: see agents/oracle/). Other policies get the LP relaxation's bound,
with at least :data:`BOUND_TIME_LIMIT_S`."""
BOUND_TIME_LIMIT_S = 300.0
"""Budget of the LP bound of a night (~8 s on ``global-3site``, ~35 s on ``dense-8site``
here); a night whose LP does not finish gets no bound rather than the trivial one."""


@dataclass
class Evaluation:
    """Per-seed metrics (``rows``) and their summary (``summary[metric]``: mean, low and
    high ends of the interval, number of seeds with a value)."""

    policy: str
    scenario: str
    start: str
    nights: int
    confidence: float = 0.95
    rows: list[dict] = field(default_factory=list)
    summary: dict[str, dict[str, float]] = field(default_factory=dict)


def parse_seeds(text: str) -> list[int]:
    """``"1..5"`` (inclusive), ``"1,4,9"`` or ``"7"`` to a list of seeds."""
    seeds: list[int] = []
    for part in text.split(","):
        a, sep, b = part.strip().partition("..")
        try:
            seeds += list(range(int(a), int(b) + 1)) if sep else [int(a)]
        except ValueError:
            raise ConfigError("--seeds", "seeds", f"{text!r}: use A..B, A,B,C or A") from None
    if not seeds:
        raise ConfigError("--seeds", "seeds", f"{text!r} is empty: use A..B with A <= B")
    return seeds


def interval(values, confidence: float = 0.95) -> dict[str, float]:
    """Mean and the ``confidence`` interval of the mean (Student's t) of the finite values;
    with one value the interval is that value, with none everything is NaN."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], dtype=float)
    n = x.size
    if n == 0:
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": 0}
    mean = float(x.mean())
    if n == 1:
        return {"mean": mean, "low": mean, "high": mean, "n": 1}
    half = float(stats.t.ppf(0.5 + confidence / 2.0, n - 1) * x.std(ddof=1) / math.sqrt(n))
    return {"mean": mean, "low": mean - half, "high": mean + half, "n": n}


def evaluate(
    policy: str,
    scenario: str | Path = DEFAULT_SCENARIO,
    seeds: list[int] | range = range(1, 6),
    nights: int = 1,
    start: str | None = None,
    oracle: bool = True,
    oracle_time_limit_s: float = ORACLE_TIME_LIMIT_S,
    confidence: float = 0.95,
) -> Evaluation:
    """Run ``policy`` (a registered name or a saved policy's path) on ``scenario`` for each
    seed and summarise the metrics (see :data:`METRICS`).

    ``start`` defaults to the scenario's date, or :data:`agents.sb3_train.DEFAULT_START`
    when the scenario says 'tonight' (as in training). ``oracle`` adds each seed's upper
    bound; it is always computed for ``policy="oracle"`` (from the plans it replayed).
    """
    from agents.sb3_train import fixed_start

    start = fixed_start(scenario, start)
    ev = Evaluation(policy, str(scenario), start, nights, confidence)
    for seed in seeds:
        sc = load_scenario(scenario, nights=nights, seed=seed, start=start)
        pol = _policy(policy, oracle_time_limit_s)
        with tempfile.TemporaryDirectory(prefix="skytwin-eval-") as out:
            result = run_scenario(sc, out, pol, progress=False, plots=False)
        m = result.metrics
        row = {
            "seed": seed,
            "science_value": m["network"]["science_value"],
            "exposures": m["network"]["exposures"],
            "latency_median_min": m["alerts"]["latency_median_min"],
            "fraction_followed": m["alerts"]["fraction_followed"],
            "constraint_violations": m["constraint_violations"]["count"],
        }
        if oracle or policy == "oracle":
            bound = _oracle_bound(sc, nights, pol, max(BOUND_TIME_LIMIT_S, oracle_time_limit_s))
            row["oracle_bound"] = bound
            row["fraction_of_oracle"] = row["science_value"] / bound if bound else None
        ev.rows.append(row)
    ev.summary = {k: interval([r.get(k) for r in ev.rows], confidence)
                  for k in METRICS if any(k in r for r in ev.rows)}  # fmt: skip
    return ev


def _policy(name: str, oracle_time_limit_s: float):
    if name == "oracle":
        from agents.oracle import OraclePolicy

        return OraclePolicy(time_limit_s=oracle_time_limit_s)
    return resolve_policy(name)


def _oracle_bound(scenario, nights: int, policy, time_limit_s: float) -> float | None:
    """The oracle's bound summed over the nights: the oracle policy's own plans when it
    ran (it solved the same MILP on the same world), else the LP relaxation alone (seconds;
    after 60 s the MILP's dual bound was 0.3-0.4 % below it on global-3site seed 101, a
    hand measurement). None when a night's LP
    did not finish within ``time_limit_s`` (rather than the trivial bound)."""
    from agents.oracle import OraclePolicy, oracle_bound

    solved = policy.results if isinstance(policy, OraclePolicy) else {}
    world = None
    total = 0.0
    for night in range(nights):
        if night not in solved:
            world = world or World(scenario)
            solved[night] = oracle_bound(world, night, time_limit_s=time_limit_s, mip=False)
        if not math.isfinite(solved[night].lp_bound):
            return None
        total += solved[night].upper_bound
    return total


PAIRED_METRICS = ("science_value", "exposures", "fraction_followed")
"""Metrics compared seed by seed with ``--against``."""


def paired_difference(
    ev: Evaluation, reference: Evaluation, metrics: tuple[str, ...] = PAIRED_METRICS
) -> dict[str, dict[str, float]]:
    """Per metric, the mean and interval of ``ev - reference`` seed by seed.

    Both ran the same seeds on the same scenario, so each seed's weather cancels out of
    the difference: a gain far smaller than the spread between seeds can be significant.
    A gain is outside the interval when ``low > 0``.
    """
    if [r["seed"] for r in ev.rows] != [r["seed"] for r in reference.rows]:
        raise ValueError("paired comparison needs the same seeds in the same order")
    out = {}
    for metric in metrics:
        pairs = [(a.get(metric), b.get(metric)) for a, b in zip(ev.rows, reference.rows,
                                                                strict=True)]  # fmt: skip
        out[metric] = paired_interval(pairs, ev.confidence)
    return out


def paired_interval(pairs, confidence: float = 0.95) -> dict[str, float]:
    """:func:`interval` of ``a - b`` over the pairs where both are known (neither None nor
    NaN)."""
    known = [(a, b) for a, b in pairs if a is not None and b is not None]
    return interval([a - b for a, b in known if math.isfinite(a) and math.isfinite(b)],
                    confidence)  # fmt: skip


def format_paired(ev: Evaluation, reference: Evaluation) -> str:
    """``paired_difference`` as a table."""
    from twin.reports.table import format_table

    label = f"{100 * ev.confidence:.0f}% interval"
    rows = []
    for metric, d in paired_difference(ev, reference).items():
        span = f"[{_num(d['low'])}, {_num(d['high'])}]"
        verdict = "better" if d["low"] > 0 else "worse" if d["high"] < 0 else "tie"
        rows.append({"metric": metric, "difference": _num(d["mean"]), label: span,
                     "seeds": d["n"], "verdict": verdict})  # fmt: skip
    head = f"{ev.policy} minus {reference.policy}, seed by seed"
    return head + "\n" + format_table(rows)


def format_evaluation(ev: Evaluation) -> str:
    """The summary as a table: metric, mean, interval, seeds."""
    from twin.reports.table import format_table

    label = f"{100 * ev.confidence:.0f}% interval"
    rows = []
    for metric, s in ev.summary.items():
        span = f"[{_num(s['low'])}, {_num(s['high'])}]"
        rows.append({"metric": metric, "mean": _num(s["mean"]), label: span, "seeds": s["n"]})
    head = (f"{ev.policy} on {Path(ev.scenario).name}: {len(ev.rows)} seed(s), "
            f"{ev.nights} night(s) from {ev.start}")  # fmt: skip
    return head + "\n" + format_table(rows)


def _num(value: float) -> str:
    return "-" if not math.isfinite(value) else f"{value:.4g}"
