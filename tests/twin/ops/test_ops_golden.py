"""Runs without a pipeline are the same, table for table, as before the pipeline seam.

The digests were computed with the code of commit c89a600 (before crash-safe tables, the
Exposure record, the centre module and the in-loop pipeline) on the same scenarios and
seeds: a refactor of the engine must not change what a run does. A change that is meant
to change runs updates them, and says so in the CHANGELOG. The Earth-orientation data
(``astropy-iers-data``) is pinned in ``pyproject.toml`` for the same reason: its weekly
releases move the 2027 predictions, and with them these digests.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import pytest

from twin.ops.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
GOLDEN = {
    "global-3site": {"observations": "5a8dec482349c9f3", "events": "c77a585e18614a08",
                     "timeline": "9c05f1c91177aec7", "alerts": "d7f72c045f1c5345",
                     "requests": "5abec383e57bfd61"},
    "single-site": {"observations": "79870834420bc796", "events": "2248c969d8dacbc8",
                    "timeline": "7628f3247bd64b59", "alerts": "daf119dd70b537db",
                    "requests": "84f3eecf2d5f0f6a"},
}  # fmt: skip
STARTS = {"global-3site": "2027-03-10", "single-site": "2027-06-01"}


def digest(frame: pd.DataFrame) -> str:
    """Column names and every value's repr (floats to the last bit), hashed."""
    h = hashlib.sha256()
    for column in frame.columns:
        h.update(column.encode())
        h.update(repr(frame[column].tolist()).encode())
    return h.hexdigest()[:16]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_run_without_pipeline_is_unchanged(tmp_path, name):
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml", nights=2, start=STARTS[name],
                             seed=7)  # fmt: skip
    run_scenario(scenario, tmp_path, "greedy", progress=False, plots=False)
    got = {t: digest(pd.read_parquet(tmp_path / f"{t}.parquet")) for t in GOLDEN[name]}
    assert got == GOLDEN[name]
