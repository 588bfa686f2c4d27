"""Memory of ``skytwin run``: a year of ``dense-8site``, resident set size by phase.

Reads the kernel's own figures for this process (``/proc/self/status``: ``VmRSS``, the
resident set now, and ``VmHWM``, its peak so far; no dependency) after the first
simulated week, at the end of the simulation, and after ``write_metrics``; a thread
sampling ``VmRSS`` every 20 ms gives the peak inside ``write_metrics`` alone. Between the
end of the simulation and ``write_metrics`` the engine writes the end-of-run tables
(alerts, requests, the weather truth): that step is its own row. Ratios are
against the RSS after the first week, measured in the same process: the aim is a run
whose memory stays flat, within 10 %, from then to the end, metrics included (a ten-year
run must fit where a year does). ``--plots`` also measures the plots (after the aim).

The run is the engine's own path, ``twin.ops.run.run_scenario`` (greedy policy, no
plots); the probes wrap its ``NetworkTwin``'s per-day callback and ``write_metrics``,
which it looks up at call time, so nothing in ``twin/`` changes for the benchmark.

    .venv/bin/python benchmarks/peak_rss.py              # the year (~5 minutes)
    .venv/bin/python benchmarks/peak_rss.py --nights 14  # a quick look
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import report

import twin.ops.run as engine
import twin.reports.run_metrics as run_metrics
from twin.scenario import load_scenario

SCENARIO = Path(__file__).resolve().parents[1] / "scenarios" / "dense-8site.yaml"
FIRST_WEEK_DAYS = 7
AIM_RATIO = 1.10
SAMPLE_S = 0.02


def memory_mb() -> dict[str, float]:
    """``VmRSS`` and ``VmHWM`` of this process, MB (the kernel reports kB)."""
    status = Path("/proc/self/status").read_text()
    return {
        key: int(re.search(rf"^{key}:\s+(\d+) kB", status, re.M).group(1)) / 1024.0
        for key in ("VmRSS", "VmHWM")
    }


class PeakSampler:
    """Highest ``VmRSS`` seen while the ``with`` block runs (a thread polls /proc)."""

    def __enter__(self) -> PeakSampler:
        self.peak_mb = memory_mb()["VmRSS"]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self.peak_mb = max(self.peak_mb, memory_mb()["VmRSS"])

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak_mb = max(self.peak_mb, memory_mb()["VmRSS"])


class Probes:
    """Patches the engine's per-day callback and ``write_metrics`` to record memory."""

    def __init__(self) -> None:
        self.rss_by_day: list[float] = []
        self.rows: dict[str, dict] = {}
        self.t0 = time.perf_counter()

    def mark(self, phase: str, day: int, **extra) -> None:
        mem = memory_mb()
        self.rows[phase] = {"phase": phase, "day": day, "rss_mb": round(mem["VmRSS"], 1),
                            "hwm_mb": round(mem["VmHWM"], 1),
                            "t_s": round(time.perf_counter() - self.t0, 1), **extra}  # fmt: skip

    def install(self) -> None:
        probes, base_twin, base_write = self, engine.NetworkTwin, run_metrics.write_metrics

        class ProbedTwin(base_twin):
            def __init__(self, *args, on_day=None, **kwargs):
                def day_done(day: int) -> None:
                    probes.rss_by_day.append(round(memory_mb()["VmRSS"], 1))
                    if day == FIRST_WEEK_DAYS:
                        probes.mark("first week", day)
                    if day > FIRST_WEEK_DAYS:
                        probes.mark("end of simulation", day)  # the last day's mark stays
                    if on_day is not None:
                        on_day(day)

                super().__init__(*args, on_day=day_done, **kwargs)

        def write_metrics(*args, **kwargs):
            probes.mark("before write_metrics", len(probes.rss_by_day))
            with PeakSampler() as sampler:
                out = base_write(*args, **kwargs)
            probes.mark("after write_metrics", len(probes.rss_by_day),
                        phase_peak_rss_mb=round(sampler.peak_mb, 1))  # fmt: skip
            return out

        engine.NetworkTwin = ProbedTwin
        run_metrics.write_metrics = write_metrics


def measure(nights: int, seed: int, plots: bool, keep: Path | None) -> tuple[list[dict], dict]:
    scenario = load_scenario(SCENARIO, nights=nights, seed=seed)
    probes = Probes()
    probes.install()
    with tempfile.TemporaryDirectory() as tmp:
        out = keep or tmp
        probes.mark("start", 0)
        result = engine.run_scenario(scenario, out, "greedy", progress=False, plots=False)
        if plots:
            from twin.reports.run_plots import make_run_plots

            with PeakSampler() as sampler:
                make_run_plots(out)
            probes.mark("after plots", len(probes.rss_by_day),
                        phase_peak_rss_mb=round(sampler.peak_mb, 1))  # fmt: skip
    missing = {"first week", "before write_metrics", "after write_metrics"} - set(probes.rows)
    if missing:
        raise RuntimeError(f"probes did not fire: {sorted(missing)}; did twin.ops.run change "
                           f"how it builds NetworkTwin or imports write_metrics?")  # fmt: skip
    week = probes.rows["first week"]["rss_mb"]
    rows = list(probes.rows.values())
    for row in rows:
        row.setdefault("phase_peak_rss_mb", None)
        row["rss_vs_week"] = round(row["rss_mb"] / week, 3)
        row["hwm_vs_week"] = round(row["hwm_mb"] / week, 3)
    end, before = probes.rows["end of simulation"], probes.rows["before write_metrics"]
    metrics = probes.rows["after write_metrics"]
    summary = {
        "exposures": result.metrics["run"]["exposures"],
        "rss_by_day_mb": probes.rss_by_day,
        "sim_growth_mb_per_night": round(
            (end["rss_mb"] - week) / max(1, end["day"] - FIRST_WEEK_DAYS), 3
        ),
        "end_of_run_tables_mb": round(before["rss_mb"] - end["rss_mb"], 1),
        "metrics_peak_above_before_mb": round(metrics["phase_peak_rss_mb"] - before["rss_mb"], 1),
        "peak_vs_week": metrics["hwm_vs_week"],
        "aim_peak_vs_week": AIM_RATIO,
        "aim_met": metrics["hwm_vs_week"] <= AIM_RATIO,
    }
    return rows, summary


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nights", type=int, default=365)
    parser.add_argument("--seed", type=int, default=8)
    parser.add_argument("--plots", action="store_true", help="also measure make_run_plots")
    parser.add_argument("--keep", type=Path, default=None, help="write the run here and keep it")
    args = parser.parse_args(argv)
    if args.nights <= FIRST_WEEK_DAYS:
        parser.error(f"--nights must exceed the first week ({FIRST_WEEK_DAYS})")
    rows, summary = measure(args.nights, args.seed, args.plots, args.keep)
    name = "peak_rss" if args.nights == 365 else f"peak_rss_{args.nights}n"
    report(name, rows, {"scenario": SCENARIO.name, "nights": args.nights, **summary})
    print(f"peak / RSS after the first week: {summary['peak_vs_week']:.3f} "
          f"(aim <= {AIM_RATIO}; {'met' if summary['aim_met'] else 'not met'})")  # fmt: skip
    return rows


if __name__ == "__main__":
    main()
