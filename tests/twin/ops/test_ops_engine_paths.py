"""The constraint engine's fast paths give the reference path's runs, bit for bit.

:class:`~twin.ops.candidates_fast.IncrementalCandidateBuilder` keeps per-request state
and inlines what :class:`~twin.ops.candidates.CandidateBuilder` (the reference) computes
afresh at each decision; :class:`~twin.ops.candidates_compiled.CompiledCandidateBuilder`
runs that in numba kernels. Both must agree with the reference on every candidate at
every decision (the shadow test), and runs of every shipped scenario must write
identical tables.
"""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numba.core.dispatcher import Dispatcher

import twin.ops.engines as engines
import twin.ops.world as world_module
from twin.ops import candidates_compiled
from twin.ops.candidates import CandidateBuilder
from twin.ops.candidates_compiled import CompiledCandidateBuilder
from twin.ops.candidates_fast import IncrementalCandidateBuilder
from twin.ops.quality import QualityModel
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]
SCENARIOS = sorted((ROOT / "scenarios").glob("*.yaml"))
TEACHING = sorted((ROOT / "scenarios" / "teaching").glob("*.yaml"))
TABLES = ("observations", "events", "timeline", "requests", "alerts")
FAST = ("incremental", "compiled")  # the paths compared with the reference
QUICK = {"dense-8site"}  # the big network: one night in the default suite, two with -m slow


def run_tables(path: Path, out: Path, engine: str, nights: int) -> dict[str, pd.DataFrame]:
    scenario = load_scenario(path, nights=nights, seed=5)
    run_scenario(scenario, out, "greedy", progress=False, plots=False, engine=engine)
    return {
        t: pd.read_parquet(out / f"{t}.parquet") for t in TABLES if (out / f"{t}.parquet").exists()
    }


def assert_same_runs(path: Path, tmp_path: Path, nights: int) -> None:
    ref = run_tables(path, tmp_path / "reference", "reference", nights)
    assert len(ref["observations"]) > 0
    for engine in FAST:
        got = run_tables(path, tmp_path / engine, engine, nights)
        assert sorted(got) == sorted(ref), engine
        for table, frame in ref.items():
            pd.testing.assert_frame_equal(got[table], frame, check_exact=True,
                                          obj=f"{engine}: {table}")  # fmt: skip


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_shipped_scenario_logs_identical(tmp_path, path):
    assert_same_runs(path, tmp_path, nights=1 if path.stem in QUICK else 2)


@pytest.mark.slow
@pytest.mark.parametrize("path", SCENARIOS + TEACHING, ids=lambda p: p.stem)
def test_shipped_scenario_logs_identical_longer(tmp_path, path):
    assert_same_runs(path, tmp_path, nights=3)


class Shadow(CompiledCandidateBuilder):
    """Builds each decision's candidates with all three paths and requires identical
    bytes."""

    decisions = 0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reference = CandidateBuilder(*args, **kwargs)
        self.incremental = IncrementalCandidateBuilder(*args, **kwargs)

    def build(self, *args):
        got, want = super().build(*args), self.reference.build(*args)
        incremental = self.incremental.build(*args)
        Shadow.decisions += 1
        for f in dataclasses.fields(got):
            y = getattr(want, f.name)
            for name, c in (("compiled", got), ("incremental", incremental)):
                x = getattr(c, f.name)
                assert x.dtype == y.dtype and x.shape == y.shape, (name, f.name)
                assert x.tobytes() == y.tobytes(), f"{name}: {f.name} at {Shadow.decisions}"
        return got


@pytest.mark.parametrize("name", ["global-3site", "dense-8site"])  # dense: horizon masks
def test_every_decision_has_identical_candidates(tmp_path, monkeypatch, name):
    monkeypatch.setitem(engines.ENGINES, "shadow", Shadow)
    Shadow.decisions = 0
    scenario = load_scenario(ROOT / "scenarios" / f"{name}.yaml", nights=1, seed=11)
    result = run_scenario(scenario, tmp_path, "random", progress=False, plots=False,
                          engine="shadow")  # fmt: skip
    assert Shadow.decisions >= result.metrics["run"]["decisions"] > 0


class HalfQuality(QualityModel):
    """A replaced quality model: the fast paths must fall back to the reference's way."""

    def quality(self, band, exptime_s, m5_mag):
        return 0.5 * super().quality(band, exptime_s, m5_mag)


def test_a_replaced_quality_model_gives_identical_candidates(tmp_path, monkeypatch):
    monkeypatch.setitem(engines.ENGINES, "shadow", Shadow)
    monkeypatch.setattr(world_module, "QualityModel", HalfQuality)
    Shadow.decisions = 0
    scenario = load_scenario(ROOT / "scenarios" / "single-site.yaml", nights=1, seed=2)
    result = run_scenario(scenario, tmp_path, "greedy", progress=False, plots=False,
                          engine="shadow")  # fmt: skip
    assert Shadow.decisions >= result.metrics["run"]["decisions"] > 0
    obs = pd.read_parquet(tmp_path / "observations.parquet")
    assert 0.0 < obs["quality"].max() <= 0.5  # the replaced model was used


def test_unknown_engine_is_refused(tmp_path):
    scenario = load_scenario(ROOT / "scenarios" / "single-site.yaml", nights=1)
    with pytest.raises(ValueError, match="compiled, incremental, reference"):
        run_scenario(scenario, tmp_path, "greedy", progress=False, plots=False, engine="numpy")


def test_engines_registry_names_the_reference_and_the_default():
    assert engines.ENGINES["reference"] is CandidateBuilder
    assert engines.ENGINES[engines.DEFAULT_ENGINE] is CompiledCandidateBuilder
    assert np.all([issubclass(c, CandidateBuilder) for c in engines.ENGINES.values()])


def test_kernels_read_no_constant_of_another_module():
    """numba caches a kernel with the globals it read frozen into it, and renews the cache
    only when ``candidates_compiled.py`` itself changes: a constant imported from another
    module would go stale there, so every one reaches the kernels as an argument."""
    module = ast.parse(Path(candidates_compiled.__file__).read_text())
    imported = {
        alias.asname or alias.name.split(".")[0]
        for node in module.body
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    kernels = {name: obj for name, obj in vars(candidates_compiled).items()
               if isinstance(obj, Dispatcher)}  # fmt: skip
    assert len(kernels) >= 8
    for name, kernel in kernels.items():
        foreign = set(kernel.py_func.__code__.co_names) & imported - {"np"}
        assert not foreign, f"{name} reads {sorted(foreign)} from another module"
