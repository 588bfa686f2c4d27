"""Shared helpers for the benchmark scripts: timing, a printed table, a JSON record."""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

RESULTS_DIR = Path(__file__).parent / "results"


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    """Best wall time of ``repeats`` calls, seconds (the least-disturbed run)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def report(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    """Print ``rows`` as a table and write them with machine facts to results/NAME.json."""
    keys = list(rows[0])
    widths = {k: max(len(k), *(len(_fmt(r[k])) for r in rows)) for k in keys}
    print("  ".join(k.ljust(widths[k]) for k in keys))
    for r in rows:
        print("  ".join(_fmt(r[k]).ljust(widths[k]) for k in keys))
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    record = {
        "benchmark": name,
        "machine": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "rows": rows,
        **(extra or {}),
    }
    path.write_text(json.dumps(record, indent=2))
    print(f"results written to {path}")
    return path


def _fmt(value: object) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
