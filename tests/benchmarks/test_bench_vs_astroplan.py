"""benchmarks/vs_astroplan.py in quick mode: it runs, writes its rows, and our policies
schedule at least 0.9x astroplan's total priority without breaking a constraint."""

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SCHEDULERS = ("astroplan PriorityScheduler", "skytwin priority", "skytwin greedy")


@pytest.fixture
def bench(monkeypatch, tmp_path):
    """The benchmark module, writing its JSON under ``tmp_path`` instead of results/."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(importlib.import_module("_common"), "RESULTS_DIR", tmp_path)
    return importlib.import_module("vs_astroplan")


def test_quick_mode_schedules_as_much_priority_as_astroplan(bench, tmp_path):
    path = bench.main(["--quick"])

    assert path == tmp_path / "vs_astroplan_quick.json"
    record = json.loads(path.read_text())
    rows = {row["scheduler"]: row for row in record["rows"]}
    assert tuple(rows) == SCHEDULERS
    for name, row in rows.items():
        assert row["wall_s"] > 0.0 and row["speedup"] > 0.0, name
        assert row["violations"] == 0, f"{name} scheduled a block that breaks a constraint: {row}"
    reference = rows["astroplan PriorityScheduler"]["priority"]
    assert reference > 0.0, "astroplan scheduled nothing: the quick problem has no visible target"
    for name in SCHEDULERS[1:]:
        assert rows[name]["priority"] >= 0.9 * reference, (
            f"{name} scheduled priority {rows[name]['priority']} < 0.9 x astroplan's {reference}"
        )
