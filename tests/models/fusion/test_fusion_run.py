"""``skytwin fuse``: groups of a run's frames seen by two or more sites, fused to FITS."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from models.fusion.run import find_groups
from twin.ops.run import run_scenario
from twin.scenario import load_scenario

ROOT = Path(__file__).resolve().parents[3]


def _obs(rows):
    cols = ["obs_id", "target_id", "band", "site", "mjd_start", "mjd_end", "image_fwhm_arcsec"]
    return pd.DataFrame(rows, columns=cols)


def test_groups_need_two_sites_and_split_by_the_window():
    obs = _obs([
        (1, "A", "r", "s1", 0.00, 0.01, 1.2), (2, "A", "r", "s2", 0.30, 0.31, 0.9),
        (3, "A", "r", "s1", 2.00, 2.01, 1.0), (4, "A", "r", "s1", 2.10, 2.11, 1.1),
        (5, "A", "g", "s2", 0.20, 0.21, 1.0), (6, "B", "r", "s3", 0.50, 0.51, 1.0),
        (7, "B", "r", "s1", 0.60, 0.61, 1.5), (8, "B", "r", "s3", 0.70, 0.71, 0.8),
    ])  # fmt: skip
    arrival = obs.set_index("obs_id")["mjd_end"]
    groups = find_groups(obs, arrival, window_h=24.0)
    assert [(g.target_id, g.band, g.obs_ids) for g in groups] == [("A", "r", (1, 2)),
                                                                 ("B", "r", (6, 7, 8))]  # fmt: skip
    assert groups[1].sites == ("s1", "s3") and groups[1].available_mjd == pytest.approx(0.71)
    # At most max_frames, keeping one frame per site (the sharpest of each), then the best.
    small = find_groups(obs, arrival, max_frames=2, field="B")
    assert small[0].obs_ids == (7, 8)
    assert find_groups(obs, arrival, min_sites=3) == []


@pytest.fixture(scope="module")
def relay(tmp_path_factory):
    out = tmp_path_factory.mktemp("relay") / "run"
    run_scenario(load_scenario(ROOT / "scenarios" / "teaching" / "relay.yaml"), out, "greedy",
                 progress=False, plots=False)  # fmt: skip
    return out


def test_fuse_writes_products_with_wcs_variance_and_planes(relay):
    cmd = [sys.executable, "-m", "twin", "fuse", str(relay), "--size", "384",
           "--max-frames", "3", "--quiet"]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=900)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Fused products in" in done.stdout
    table = pd.read_parquet(relay / "fusion.parquet")
    assert len(table) == 1
    row = table.iloc[0]
    assert row["target_id"] == "M83" and row["band"] == "r" and row["n_inputs"] == 3
    assert len(row["sites"].split(",")) == 3  # the relay's three sites, one frame each
    obs = pd.read_parquet(relay / "observations.parquet").set_index("obs_id")
    assert row["available_mjd"] == pytest.approx(obs.loc[list(row["obs_ids"]), "mjd_end"].max())
    # Three frames: deeper than the best, not deeper than sqrt(3) equal frames allow.
    assert 0.05 < row["depth_gain_mag"] <= 2.5 * math.log10(math.sqrt(3)) + 0.05
    with fits.open(relay / row["product"]) as hdul:
        names = [h.name for h in hdul]
        assert names == ["PRIMARY", "VARIANCE", "MASK", "COVERAGE", "PSF", "INPUTS"]
        image, var = hdul[0].data, hdul["VARIANCE"].data
        assert image.shape == var.shape == (384, 384) and np.isfinite(image).all()
        assert WCS(hdul[0].header).has_celestial and hdul[0].header["METHOD"] == "proper"
        good = hdul["MASK"].data == 0
        # The PSF-matched edge band (~5 FWHM) and the frames' pointing offsets trim the
        # common area; what is left has every frame in it.
        assert good.mean() > 0.5 and (var[good] > 0).all()
        assert (hdul["COVERAGE"].data[good] == 0b111).mean() > 0.8
        assert hdul["PSF"].data.sum() == pytest.approx(1.0, abs=1e-3)
        inputs = hdul["INPUTS"].data
        assert (inputs["registration_rms_pix"] < 0.5).all()
