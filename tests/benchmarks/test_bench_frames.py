"""benchmarks/frames.py in quick mode: it runs, writes its rows, the fast renderer beats plain
GalSim and agrees with it in flux (1 %) and star FWHM (2 %)."""

import importlib
import json
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def bench(monkeypatch, tmp_path):
    """The benchmark module, writing its JSON under ``tmp_path`` instead of results/."""
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    monkeypatch.setattr(importlib.import_module("_common"), "RESULTS_DIR", tmp_path)
    return importlib.import_module("frames")


def test_quick_mode_is_faster_than_galsim_and_agrees_with_it(bench, tmp_path):
    path = bench.main(["--quick"])

    assert path == tmp_path / "frames_quick.json"
    record = json.loads(path.read_text())
    rows = {row["case"]: row for row in record["rows"]}
    assert rows["fast (render_expected)"]["seconds"] > 0.0
    # Timings on a shared test machine are noisy: ask for a clear win, not the full ratio.
    assert record["speedup_plain_over_fast"] > 3.0
    assert record["stars_in_frame"] > 50 and record["galaxies_in_frame"] > 50
    assert record["flux_ratio_fast_over_plain"] == pytest.approx(1.0, abs=0.01)
    assert record["fwhm_ratio_fast_over_plain"] == pytest.approx(1.0, abs=0.02)
    assert record["fwhm_stars"] >= 3
