"""Shared fixtures: one tiny dataset and one short run, made once per test session."""

import pytest


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory):
    from models.quality.dataset import build_dataset

    out = tmp_path_factory.mktemp("quality_data")
    index = build_dataset(out, n=8, size=48, seed=3, processes=1, progress=False,
                          runs_per_split={"train": 1, "heldout": 1, "unseen": 1},
                          scenarios=("india-chile",))  # fmt: skip
    return out, index


@pytest.fixture(scope="session")
def run_frames(tmp_path_factory):
    """A one-night run of global-3site with its frame specs (256 × 256 windows)."""
    from pathlib import Path

    from twin.imaging.frames import RunFrames
    from twin.ops.run import run_scenario
    from twin.scenario import load_scenario

    repo = Path(__file__).resolve().parents[3]
    out = tmp_path_factory.mktemp("quality_run")
    scenario = load_scenario(repo / "scenarios" / "global-3site.yaml", nights=1, seed=5,
                             start="2027-02-10")  # fmt: skip
    run_scenario(scenario, out, "greedy", progress=False, plots=False)
    return RunFrames(out, size=256)
