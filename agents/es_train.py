"""Train the candidate scorer's weights by CMA-ES on whole simulated nights.

``skytwin train --algo cma-es`` searches the weights of :class:`agents.scorer.ScorerPolicy`
with pycma's CMA-ES (Hansen's reference implementation). Each generation draws a fresh
batch of training weather seeds; every candidate weight vector runs the same nights
(common random numbers: candidates are compared on the same weather), and so does greedy
(weights = 0), so each generation reports the paired gain over greedy. The objective is
what `skytwin evaluate` reports, not a shaped reward: the run's delivered science value
plus ``alert_weight`` per alert followed (without that term the search learns to skip
alerts, whose exposures earn little science value but are the network's reason to
exist for transients). No gradient goes through the twin.

Seeds: training nights use seeds drawn from [1000, 10**6) by the run's ``seed``;
the final check uses ``validation_seeds`` (default 500..515); keep the seeds you report
on (the README uses 101..110) out of both.

Output folder: ``scorer.json`` (the weights of the search's mean after the last
generation, with the manifest and the command that reproduces it, rewritten after every
generation, so a stopped run keeps its latest mean), ``history.jsonl`` (one line per
generation), ``training.png`` (the learning curve), ``validation.json``.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shlex
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.sb3_train import _shown, fixed_start
from agents.scorer import BASE_FEATURES, SCORER_FEATURES, ScorerPolicy, save_scorer
from envs.network_env import DEFAULT_SCENARIO
from twin.ops.network import NetworkTwin
from twin.ops.stepping import NullRecorder
from twin.ops.world import World
from twin.scenario import load_scenario

TRAIN_SEED_RANGE = (1000, 10**6)
DEFAULT_VALIDATION_SEEDS = tuple(range(500, 516))
DEFAULT_SIGMA0 = 0.3
"""Initial CMA-ES step: the features are of order one, so weights start within ~0.3."""
DEFAULT_ALERT_WEIGHT = 10.0
"""Objective per alert followed, in science-value units: about twenty survey exposures
(~0.5 each), so that following an alert is worth a visit's detour but not a night's."""


@dataclass
class ESResult:
    scorer_path: Path
    weights: np.ndarray
    validation: dict[str, float]
    wall_s: float


class _ObservationValue:
    """Sums the ``value`` column of the observations written (the objective)."""

    def __init__(self) -> None:
        self.science_value = 0.0

    def write_columns(self, columns: dict) -> None:
        self.science_value += float(np.sum(columns["value"]))

    def append(self, row: tuple) -> None:
        pass

    def flush(self) -> None:
        pass


class _ValueTally(NullRecorder):
    """Discards every table but the observations' science value."""

    def __init__(self) -> None:
        self.observations = _ObservationValue()

    def __getitem__(self, name: str):
        return self.observations if name == "observations" else super().__getitem__(name)


def night_outcome(scenario: str, start: str, nights: int, seed: int, weights,
                  alert_guard: bool = False) -> tuple[float, int]:  # fmt: skip
    """(delivered science value, alerts followed) of one run of the scorer with
    ``weights`` (zeros: greedy)."""
    sc = load_scenario(scenario, nights=nights, seed=seed, start=start)
    tally = _ValueTally()
    policy = ScorerPolicy(np.asarray(weights, dtype=float), alert_guard=alert_guard)
    twin = NetworkTwin(World(sc), policy, tally)
    twin.run()
    followed = sum(not math.isnan(a.first_followup_mjd) for a in twin.alerts.values())
    return tally.observations.science_value, followed


def _outcomes(pool, scenario, starts, nights, seeds, weight_sets, guard) -> np.ndarray:
    """(len(weight_sets), len(seeds), 2) science values and alerts followed; seed ``i``
    starts on ``starts[i]``."""
    jobs = [(scenario, d, nights, int(s), np.asarray(w).tolist(), guard)
            for w in weight_sets for s, d in zip(seeds, starts, strict=True)]  # fmt: skip
    if pool is None:
        out = [night_outcome(*j) for j in jobs]
    else:
        out = list(pool.map(night_outcome, *zip(*jobs, strict=True), chunksize=1))
    return np.asarray(out, dtype=float).reshape(len(weight_sets), len(seeds), 2)


def train_cmaes(
    scenario: str | Path = DEFAULT_SCENARIO,
    generations: int = 30,
    seed: int = 0,
    out_dir: str | Path = "runs/cma-es",
    *,
    population: int | None = None,
    seeds_per_generation: int = 8,
    sigma0: float = DEFAULT_SIGMA0,
    alert_weight: float = DEFAULT_ALERT_WEIGHT,
    alert_guard: bool = False,
    start: str | None = None,
    start_spread_days: int = 0,
    nights: int = 1,
    workers: int | None = None,
    validation_seeds: tuple[int, ...] = DEFAULT_VALIDATION_SEEDS,
    progress: bool = True,
    lookahead: bool = False,
    init_from: str | Path | None = None,
) -> ESResult:
    """Search the scorer's weights; save the search's mean in ``out_dir/scorer.json``.

    | name                 | default          | meaning                                   |
    |----------------------|------------------|-------------------------------------------|
    | scenario             | global-3site     | scenario file                             |
    | generations          | 30               | CMA-ES generations                        |
    | seed                 | 0                | seeds CMA-ES and the training weather     |
    | population           | pycma's default  | weight vectors per generation (~11)       |
    | seeds_per_generation | 8                | weather seeds every vector runs, each gen |
    | sigma0               | 0.3              | initial step size (features are O(1))     |
    | alert_weight         | 10               | objective per alert followed              |
    | alert_guard          | False            | ScorerPolicy's guard, trained with it on  |
    | start                | scenario's       | fixed date, see agents.sb3_train          |
    | start_spread_days    | 0                | each night starts start + U[0, spread) d  |
    | nights               | 1                | nights per run                            |
    | workers              | CPU count        | processes running nights in parallel      |
    | validation_seeds     | 500..515         | final paired check against greedy         |
    | lookahead            | False            | search the look-ahead weights too (else 0) |
    | init_from            | None             | a scorer.json whose weights start the search |
    """
    import cma

    if generations < 1 or seeds_per_generation < 1:
        raise ValueError("generations and seeds_per_generation must be >= 1 "
                         f"(got {generations}, {seeds_per_generation})")  # fmt: skip
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    start = fixed_start(scenario, start)
    scenario = str(scenario)
    load_scenario(scenario, nights=nights, seed=0, start=start)  # bad input fails here
    workers = workers or os.cpu_count() or 1
    rng = np.random.default_rng(seed)
    opts = {"seed": seed + 1, "verbose": -9}
    if population:
        opts["popsize"] = population
    searched = len(SCORER_FEATURES) if lookahead else len(BASE_FEATURES)
    x0 = np.zeros(searched)
    if init_from is not None:
        from agents.scorer import load_scorer

        initial = load_scorer(init_from)
        if not lookahead and initial.looks_ahead:
            raise ValueError(f"{init_from} has look-ahead weights; search with lookahead=True "
                             "(--lookahead), or they would be dropped to 0")  # fmt: skip
        x0 = initial.weights[:searched]
    es = cma.CMAEvolutionStrategy(x0, sigma0, opts)

    def full(x) -> np.ndarray:  # the look-ahead weights stay 0 unless searched
        return np.concatenate([np.asarray(x, float), np.zeros(len(SCORER_FEATURES) - searched)])

    command = _command(scenario, generations, seed, out, population, seeds_per_generation,
                       sigma0, alert_weight, alert_guard, start, start_spread_days,
                       nights, lookahead, init_from)  # fmt: skip
    manifest = {"algo": "CMA-ES (pycma)", "scenario": _shown(scenario), "start": start,
                "start_spread_days": start_spread_days,
                "nights": nights, "generations": generations, "seed": seed,
                "population": es.popsize, "seeds_per_generation": seeds_per_generation,
                "sigma0": sigma0, "alert_weight": alert_weight, "alert_guard": alert_guard,
                "lookahead": lookahead, "versions": _versions(), "command": command,
                **({"init_from": _shown(init_from)} if init_from else {})}  # fmt: skip
    history = (out / "history.jsonl").open("w")
    bar = _bar(generations, progress)
    t0 = time.perf_counter()
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        for gen in range(generations):
            seeds = rng.integers(*TRAIN_SEED_RANGE, size=seeds_per_generation)
            starts = _starts(start, start_spread_days, rng, seeds_per_generation)
            xs = es.ask()
            res = _outcomes(pool, scenario, starts, nights, seeds,
                            [full(np.zeros(searched)), *map(full, xs)], alert_guard)  # fmt: skip
            score = res[..., 0] + alert_weight * res[..., 1]
            es.tell(xs, (-score[1:].mean(axis=1)).tolist())
            gain = score[1:] - score[0]
            line = {"generation": gen, "greedy_science": float(res[0, :, 0].mean()),
                    "greedy_followed": float(res[0, :, 1].mean()),
                    "science_gain_mean": float((res[1:, :, 0] - res[0, :, 0]).mean()),
                    "followed_gain_mean": float((res[1:, :, 1] - res[0, :, 1]).mean()),
                    "gain_mean": float(gain.mean()), "gain_best": float(gain.mean(axis=1).max()),
                    "sigma": float(es.sigma), "mean_weights": full(es.mean).tolist(),
                    "wall_s": round(time.perf_counter() - t0, 1)}  # fmt: skip
            history.write(json.dumps(line) + "\n")
            history.flush()
            save_scorer(out / "scorer.json", full(es.mean), **manifest, generation=gen)
            if bar is not None:
                bar.set_postfix(gain=f"{line['gain_mean']:+.2f}", best=f"{line['gain_best']:+.2f}")
                bar.update(1)
        weights = full(es.mean)
        val_rng = np.random.default_rng(list(validation_seeds))
        val_starts = _starts(start, start_spread_days, val_rng, len(validation_seeds))
        val = _outcomes(pool, scenario, val_starts, nights, validation_seeds,
                        [np.zeros_like(weights), weights], alert_guard)  # fmt: skip
    finally:
        history.close()
        if bar is not None:
            bar.close()
        if pool is not None:
            pool.shutdown()
    validation = {"science_value": paired_summary(val[1, :, 0], val[0, :, 0]),
                  "alerts_followed": paired_summary(val[1, :, 1], val[0, :, 1])}  # fmt: skip
    validation["seeds"] = f"{validation_seeds[0]}..{validation_seeds[-1]}"
    (out / "validation.json").write_text(json.dumps(validation, indent=2))
    plot_history(out / "history.jsonl", out / "training.png")
    wall_s = time.perf_counter() - t0
    path = save_scorer(out / "scorer.json", weights, **manifest, wall_s=round(wall_s, 1),
                       validation_vs_greedy=validation)  # fmt: skip
    return ESResult(path, weights, validation, wall_s)


def paired_summary(values: np.ndarray, reference: np.ndarray,
                   confidence: float = 0.95) -> dict[str, float]:  # fmt: skip
    """Mean of ``values`` and ``reference`` and the interval of their paired difference."""
    from agents.evaluate import interval

    d = interval(np.asarray(values) - np.asarray(reference), confidence)
    return {"mean": float(np.mean(values)), "reference_mean": float(np.mean(reference)),
            "gain_mean": d["mean"], "gain_low": d["low"], "gain_high": d["high"],
            "n": d["n"]}  # fmt: skip


def _starts(start: str, spread_days: int, rng: np.random.Generator, n: int) -> list[str]:
    """``n`` dates: ``start``, or uniform over ``spread_days`` days from it (seasons differ:
    which targets are up, night length, the moon), so the weights learn the network's
    year rather than one night's sky."""
    if spread_days <= 1:
        return [start] * n
    day0 = np.datetime64(start, "D")
    return [str(day0 + int(k)) for k in rng.integers(0, spread_days, size=n)]


def plot_history(history: str | Path, png: str | Path) -> Path:
    """Learning curve: the paired gain over greedy of each generation's candidates
    (mean and best), split into science value and alerts followed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lines = [json.loads(x) for x in Path(history).read_text().splitlines() if x.strip()]
    gen = [x["generation"] for x in lines]
    fig, (ax, ax2) = plt.subplots(2, 1, figsize=(7, 5), sharex=True, height_ratios=[2, 1])
    ax.axhline(0.0, color="0.6", lw=0.8)
    ax.plot(gen, [x["gain_mean"] for x in lines], "o-", label="population mean")
    ax.plot(gen, [x["gain_best"] for x in lines], "s--", ms=4, label="best candidate")
    ax.plot(gen, [x["science_gain_mean"] for x in lines], ":", label="science value only")
    ax.set_ylabel("objective gain over greedy\n(per night, same weather)")
    ax.legend(frameon=False, fontsize=8)
    ax2.plot(gen, [x["followed_gain_mean"] for x in lines], "o-", color="C3", ms=3)
    ax2.axhline(0.0, color="0.6", lw=0.8)
    ax2.set_ylabel("alerts followed\ngain")
    ax2.set_xlabel("CMA-ES generation")
    fig.suptitle("CMA-ES candidate scorer vs greedy (training seeds)", fontsize=10)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
    return Path(png)


def _bar(total: int, progress: bool):
    if not progress:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="gen", desc="CMA-ES")


def _command(scenario, generations, seed, out, population, seeds_per_generation, sigma0,
             alert_weight, alert_guard, start, start_spread_days, nights,
             lookahead=False, init_from=None) -> str:  # fmt: skip
    cmd = ["skytwin", "train", "--algo", "cma-es", "--scenario", _shown(scenario),
           "--generations", str(generations), "--seed", str(seed), "--out", _shown(out),
           "--start", start, "--seeds-per-generation", str(seeds_per_generation)]  # fmt: skip
    if population:
        cmd += ["--population", str(population)]
    if sigma0 != DEFAULT_SIGMA0:
        cmd += ["--sigma0", str(sigma0)]
    if alert_weight != DEFAULT_ALERT_WEIGHT:
        cmd += ["--alert-weight", str(alert_weight)]
    if alert_guard:
        cmd += ["--alert-guard"]
    if start_spread_days:
        cmd += ["--start-spread-days", str(start_spread_days)]
    if nights != 1:
        cmd += ["--nights", str(nights)]
    if lookahead:
        cmd += ["--lookahead"]
    if init_from:
        cmd += ["--init-from", _shown(init_from)]
    return shlex.join(cmd)


def _versions() -> dict[str, Any]:
    import cma

    return {"python": platform.python_version(), "cma": cma.__version__}
