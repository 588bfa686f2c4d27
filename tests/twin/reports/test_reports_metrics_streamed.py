"""Streamed metrics equal the whole-table version, for every layout of a run's tables.

The reference is ``legacy_run_metrics``, a frozen copy of the module before it streamed.
Floats may differ only by summation order (relative 1e-12); everything else, including
the order of keys in ``metrics.json``, is identical.
"""

from __future__ import annotations

import json
import math
import shutil
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from tests.twin.reports import legacy_run_metrics as legacy
from twin.ops.run import run_scenario
from twin.reports import run_metrics
from twin.reports.run_metrics import (
    NO_NIGHT_NOTE,
    compute_metrics,
    format_summary,
    stream_metrics,
    summary_rows,
    write_metrics,
)
from twin.scenario import load_scenario

SCENARIOS = Path(__file__).resolve().parents[3] / "scenarios"
STREAMED = ("observations", "events", "timeline")
REL_TOL = 1e-12


def assert_same(new: object, old: object, where: str = "metrics") -> None:
    """Equal values and key order; floats to ``REL_TOL`` relative."""
    if isinstance(old, dict):
        assert isinstance(new, dict), where
        assert list(new) == list(old), where
        for key in old:
            assert_same(new[key], old[key], f"{where}.{key}")
    elif isinstance(old, list):
        assert isinstance(new, list) and len(new) == len(old), where
        for i, (a, b) in enumerate(zip(new, old, strict=True)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(old, float) and isinstance(new, float):
        assert math.isclose(new, old, rel_tol=REL_TOL, abs_tol=0.0), (where, new, old)
    else:
        assert new == old and type(new) is type(old), (where, new, old)


def legacy_metrics(run_dir: Path) -> dict:
    tables = {name: legacy.read_table(run_dir, name) for name in legacy.TABLES}
    return legacy.compute_metrics(**tables, horizon_fn=legacy.horizon_from_scenario(run_dir))


def without_run(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k != "run"}


@pytest.fixture(scope="module", params=["dense-8site", "global-3site"])
def run_dir(request, tmp_path_factory) -> Path:
    """A short run (two nights, alerts included) written by ``skytwin run``'s engine."""
    scenario = load_scenario(SCENARIOS / f"{request.param}.yaml", nights=2, start="2027-03-10")
    out = tmp_path_factory.mktemp(request.param)
    run_scenario(scenario, out, progress=False, plots=False)
    return out


def test_metrics_json_of_a_run_equals_the_whole_table_version(run_dir):
    written = json.loads((run_dir / "metrics.json").read_text())
    assert written["network"]["exposures"] > 100  # a run that did something
    assert_same(without_run(written), legacy_metrics(run_dir))


def test_violations_equal_the_whole_table_version(run_dir, tmp_path):
    """Tightened limits make hundreds of violations: counts, rule order, examples."""
    run = _copy(run_dir, tmp_path / "run")
    requests = pd.read_parquet(run / "requests.parquet")
    requests["max_airmass"] = 1.3
    requests["max_moon_illum"] = 0.1
    table = pa.Table.from_pandas(requests, schema=legacy.REQUEST_SCHEMA, preserve_index=False)
    pq.write_table(table, run / "requests.parquet")
    old = legacy_metrics(run)
    assert old["constraint_violations"]["count"] > 100
    assert len(old["constraint_violations"]["by_rule"]) >= 2
    new = stream_metrics(run, legacy.horizon_from_scenario(run), batch_rows=97)
    assert_same(new, old)


@pytest.mark.parametrize("layout", ["one file", "parts by row", "parts by night"])
def test_metrics_do_not_depend_on_how_tables_are_stored(run_dir, tmp_path, layout, monkeypatch):
    """Single files (runs of before day parts) and other part splits, read in small
    batches with partial sums folded often, give the metrics of the run as written."""
    run = _copy(run_dir, tmp_path / "run")
    for name in STREAMED:
        table = pq.read_table(run / f"{name}.parquet")
        shutil.rmtree(run / f"{name}.parquet")
        _store(table, run / f"{name}.parquet", layout)
    monkeypatch.setattr(run_metrics, "MAX_PARTS", 3)
    expected = json.loads((run_dir / "metrics.json").read_text())
    assert_same(stream_metrics(run, batch_rows=333), without_run(expected))
    assert_same(write_metrics(run), expected)


def test_whole_frames_give_the_streamed_metrics(run_dir):
    tables = {name: pd.read_parquet(run_dir / f"{name}.parquet") for name in legacy.TABLES}
    horizon = legacy.horizon_from_scenario(run_dir)
    expected = without_run(json.loads((run_dir / "metrics.json").read_text()))
    assert_same(compute_metrics(**tables, horizon_fn=horizon), expected)


def test_metrics_read_the_run_on_the_system_allocator_then_restore_the_pool(
    run_dir, tmp_path, monkeypatch
):
    before = pa.default_memory_pool().backend_name
    seen = []

    def spy(*args, **kwargs):
        seen.append(pa.default_memory_pool().backend_name)
        return stream_metrics(*args, **kwargs)

    monkeypatch.setattr(run_metrics, "stream_metrics", spy)
    write_metrics(_copy(run_dir, tmp_path / "run"))
    assert seen == ["system"]
    assert pa.default_memory_pool().backend_name == before
    with pytest.raises(RuntimeError), run_metrics.system_arrow_memory():
        raise RuntimeError("a failing read")
    assert pa.default_memory_pool().backend_name == before


def _copy(run_dir: Path, to: Path) -> Path:
    shutil.copytree(run_dir, to)
    return to


def _store(table: pa.Table, path: Path, layout: str) -> None:
    """Write ``table`` as one file, or as parts (with temporary files readers must skip)."""
    if layout == "one file":
        pq.write_table(table, path, row_group_size=1000)
        return
    path.mkdir()
    if layout == "parts by row":
        bounds = np.linspace(0, table.num_rows, 6).astype(int)
        parts = [table.slice(a, b - a) for a, b in pairwise(bounds)]
    else:
        night = table.column("night").to_numpy() if "night" in table.column_names else None
        if night is None:  # events have no night: split by day of the run
            mjd = table.column("mjd").to_numpy()
            night = np.floor(mjd - mjd.min()).astype(int)
        parts = [table.filter(pa.array(night == n)) for n in np.unique(night)]
    for i, part in enumerate(parts):
        pq.write_table(part, path / f"part-{i:05d}.parquet")
    pq.write_table(parts[0], path / f".part-{len(parts):05d}.parquet.tmp")  # a writer's
    pq.write_table(parts[0], path / "_partial.parquet")


# --------------------------------------------------------------------------- polar summer

POLAR = """
name: polar-summer
start: 2026-12-28
nights: 2
seed: 5
sites:
  - site: sutherland
    telescopes: [{name: sutherland-1m, preset: 1m}]
  - custom: {name: south-pole, lat_deg: -89.0, lon_deg: 0.0, height_m: 2800, timezone: UTC,
             climate: {clear_fraction_by_month: [0.8,0.8,0.8,0.8,0.8,0.8,0.8,0.8,0.8,0.8,0.8,0.8],
                       seeing_median_arcsec: 1.0, humidity_median_pct: 30, wind_median_m_s: 5,
                       temperature_mean_c: -30}}
    telescopes: [{name: pole-1m, preset: 1m}]
programmes:
  - name: monitoring
    share: 1.0
    cadence_days: 0.5
    visits: 0
    plan: [{band: r, exptime_s: 120, count: 2}]
    constraints: {max_airmass: 2.0}
    targets:
      - {name: LMC, ra_deg: 80.894, dec_deg: -69.756}
      - {name: NGC 253, ra_deg: 11.888, dec_deg: -25.288}
"""


def test_a_site_whose_night_never_comes_is_reported_not_dropped(tmp_path):
    (tmp_path / "polar.yaml").write_text(POLAR)
    out = tmp_path / "run"
    result = run_scenario(load_scenario(tmp_path / "polar.yaml"), out, progress=False,
                          plots=False)  # fmt: skip
    assert "south-pole" not in pd.read_parquet(out / "nights.parquet")["site"].tolist()
    assert "south-pole" not in legacy_metrics(out)["per_site"]  # what used to happen
    pole = result.metrics["per_site"]["south-pole"]
    assert (pole["night_hours"], pole["exposures"], pole["note"]) == (0.0, 0, NO_NIGHT_NOTE)
    assert pole["open_shutter_fraction"] is None and pole["mean_m5"] is None
    telescope = result.metrics["per_telescope"]["pole-1m"]
    assert (telescope["site"], telescope["night_hours"], telescope["note"]) == (
        "south-pole", 0.0, NO_NIGHT_NOTE
    )  # fmt: skip
    sutherland = result.metrics["per_site"]["sutherland"]
    assert sutherland["night_hours"] > 5 and sutherland["exposures"] > 0
    assert "note" not in sutherland
    assert result.metrics["network"]["night_hours"] == sutherland["night_hours"]
    rows = {row["site"]: row for row in summary_rows(result.metrics)}
    assert list(rows) == ["south-pole", "sutherland", "network"]
    assert rows["south-pole"]["night h"] == 0.0 and rows["south-pole"]["note"] == NO_NIGHT_NOTE
    assert rows["sutherland"]["note"] == "" and rows["network"]["note"] == ""
    assert NO_NIGHT_NOTE in format_summary(result.metrics)
    legacy_sites = legacy_metrics(out)["per_site"]
    assert_same(result.metrics["per_site"]["sutherland"], legacy_sites["sutherland"])


def test_layout_sites_without_records_get_the_note_that_fits():
    """C never had a night; D had one (in ``nights``) but recorded nothing."""
    from tests.twin.reports.test_reports_run_metrics import _run

    tables = _run()
    nights = tables["nights"]
    tables["nights"] = pd.concat([nights, nights.iloc[:1].assign(site="D")], ignore_index=True)
    layout = {"A": ["t1"], "B": ["t2"], "C": ["t3"], "D": ["t4"]}
    m = compute_metrics(**tables, layout=layout)
    assert list(m["per_site"]) == ["A", "B", "C", "D"]
    assert m["per_site"]["C"]["note"] == NO_NIGHT_NOTE
    assert m["per_site"]["D"]["note"] == run_metrics.NOTHING_RECORDED_NOTE
    assert m["per_telescope"]["t3"]["site"] == "C" and m["per_telescope"]["t4"]["exposures"] == 0
    assert_same(m["network"], compute_metrics(**_run())["network"])
    notes = [r["note"] for r in summary_rows(m)]
    assert notes == ["", "", NO_NIGHT_NOTE, run_metrics.NOTHING_RECORDED_NOTE, ""]
