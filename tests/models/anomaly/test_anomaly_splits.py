"""The anomaly data splits share no night: train and test never hold the same site's
exposure of the same pointing on the same night (the shipped split table, the plan's own
guard, and, slow, the plan rebuilt from the runs)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.anomaly import dataset
from models.anomaly.dataset import KEY, SPLIT_RUNS, night_mjd, plan

SPLITS_TABLE = Path(dataset.__file__).parent / "weights" / "splits.parquet"


def test_split_runs_have_their_own_seeds_and_start_dates():
    seeds = {split: {s for s, _ in runs} for split, runs in SPLIT_RUNS.items()}
    starts = {split: {date.fromisoformat(d) for _, d in runs} for split, runs in SPLIT_RUNS.items()}
    names = list(SPLIT_RUNS)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not seeds[a] & seeds[b], (a, b)
            assert not starts[a] & starts[b], (a, b)  # one-night runs: a date is a night


def test_night_is_the_local_noon_to_noon_date():
    # 23:00 and 05:00 local time in Chile (UT-4.7 h) are one night; the next evening is not
    lon = -70.7
    evening, morning, next_evening = 61050.0 + np.array([27.7, 33.7, 51.7]) / 24.0
    nights = night_mjd([evening, morning, next_evening], [lon] * 3)
    assert nights[0] == nights[1] and nights[2] == nights[0] + 1


def _fake_run(root: Path, seed: int, mjd0: float, targets: list[str]) -> Path:
    d = root / f"run-{seed}"
    d.mkdir(parents=True)
    n = len(targets)
    pd.DataFrame(
        {
            "obs_id": np.arange(1, n + 1),
            "site": ["cerro-pachon"] * n,
            "target_id": targets,
            "ra_deg": np.arange(n, dtype=float),
            "dec_deg": np.full(n, -30.0),
            "mjd_start": mjd0 + 0.1 + 0.3 * np.arange(n) / n,
            "site_lon_deg": np.full(n, -70.7),
        }
    ).to_parquet(d / "observations.parquet")
    return d


def split_keys(table: pd.DataFrame) -> dict[str, set[tuple]]:
    """Per split, its (site, night, pointing) tuples."""
    return {
        split: set(g[list(KEY)].itertuples(index=False, name=None))
        for split, g in table.groupby("split")
    }


COUNTS = {"train": 4, "val": 1, "val_fault": 1, "test_normal": 2, "test_fault": 1}


def test_plan_refuses_splits_that_share_a_night(tmp_path):
    targets = [f"survey-tile-{i:05d}" for i in range(8)]
    train = _fake_run(tmp_path, 101, 61050.5, targets)
    val = _fake_run(tmp_path, 201, 61060.5, targets)
    same_night = _fake_run(tmp_path, 301, 61050.5, targets)  # another seed, same night
    with pytest.raises(ValueError, match="share"):
        plan({"train": [train], "val": [val], "test": [same_night]}, COUNTS, 0)
    other_night = _fake_run(tmp_path, 302, 61070.5, targets)
    full = plan({"train": [train], "val": [val], "test": [other_night]}, COUNTS, 0)
    keys = split_keys(full)
    assert keys["train"] and keys["test"] and not keys["train"] & keys["test"]
    assert not keys["val"] & (keys["train"] | keys["test"])
    # the same field on another night is allowed (and counted in the dataset's info)
    assert {k[2] for k in keys["train"]} & {k[2] for k in keys["test"]}


@pytest.mark.skipif(not SPLITS_TABLE.is_file(), reason="no shipped split table")
def test_shipped_splits_share_no_site_night_pointing():
    table = pd.read_parquet(SPLITS_TABLE)
    assert set(table["split"]) == {"train", "val", "test"}
    keys = split_keys(table)
    assert len(keys["train"]) > 500 and len(keys["test"]) > 500  # not vacuous
    assert not keys["train"] & keys["test"]
    assert not keys["val"] & (keys["train"] | keys["test"])
    nights = {s: set(zip(g["site"], g["night"], strict=True)) for s, g in table.groupby("split")}
    assert not nights["train"] & nights["test"]
    assert set(table.loc[table["split"] == "train", "cls"]) == {"normal"}
    assert not table.duplicated(["run_seed", "obs_id"]).any()  # a frame once, one class


@pytest.mark.slow
def test_rebuilt_plan_matches_the_shipped_splits(tmp_path):
    runs = {
        split: [dataset.make_run(seed, start, tmp_path / "runs") for seed, start in split_runs]
        for split, split_runs in SPLIT_RUNS.items()
    }
    full = plan(runs, dataset.DEFAULT_COUNTS, 0)
    shipped = pd.read_parquet(SPLITS_TABLE)
    cols = ["split", "cls", "run_seed", "obs_id", *KEY]
    key = ["split", "run_seed", "obs_id"]
    a = full[cols].sort_values(key).reset_index(drop=True)
    b = shipped[cols].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b, check_dtype=False)
