"""A run's exposures rendered to FITS: files astropy reads, calibrations per night, the
same pixels whatever the number of processes, and the two commands."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from twin.cli import main
from twin.imaging.fits import frame_header
from twin.imaging.frames import (
    RenderJob,
    RunFrames,
    render_frame,
    render_many,
    render_run,
)
from twin.ops.run import run_scenario
from twin.scenario import load_scenario


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    scenario = load_scenario("scenarios/global-3site.yaml", start="2027-03-10", nights=1, seed=2)
    out = tmp_path_factory.mktemp("run")
    run_scenario(scenario, out, "greedy", progress=False, plots=False)
    return out


def test_render_run_writes_frames_truth_and_calibrations(run_dir):
    written = render_run(run_dir, max_frames=3, size=192, processes=2, progress=False)
    assert len(written["frames"]) == 3
    obs = pd.read_parquet(run_dir / "observations.parquet").set_index("obs_id")
    for path in written["frames"]:
        with fits.open(path) as hdul:
            header, data = hdul[0].header, hdul[0].data
        assert data.shape == (192, 192) and data.dtype.kind in "ui"
        row = obs.loc[header["OBS_ID"]]
        assert header["EXPTIME"] == row["exptime_s"] and header["FILTER"] == row["band"]
        assert header["AIRMASS"] == pytest.approx(row["airmass"])
        for key in ("DATE-OBS", "MJD-OBS", "OBSERVAT", "TELESCOP", "INSTRUME", "RA", "DEC",
                    "GAIN", "RDNOISE", "SATURATE", "SEEING", "SKYLEVEL", "MAGZERO"):  # fmt: skip
            assert key in header, key
        assert header["GALAXIES"] == "parametric"  # which galaxy source drew the frame
        wcs = WCS(header)
        ra, dec = wcs.all_pix2world([[95.5, 95.5]], 0)[0]
        assert ra == pytest.approx(row["ra_deg"], abs=1e-6)
        assert dec == pytest.approx(row["dec_deg"], abs=1e-6)
        truth = pd.read_parquet(str(path).replace(".fits", ".truth.parquet"))
        assert {"star", "galaxy"} <= set(truth["type"])
    kinds = {fits.getheader(p)["IMAGETYP"] for p in written["calibration"]}
    assert kinds == {"bias", "dark", "flat"}


def test_same_frame_whatever_the_pool(run_dir, tmp_path):
    frames = RunFrames(run_dir, size=128)
    specs = frames.specs(max_frames=3)
    spec = specs[0]
    a = fits.getdata(render_frame(spec, tmp_path / "a.fits", frames.options))
    b = fits.getdata(render_frame(spec, tmp_path / "b.fits", frames.options))
    np.testing.assert_array_equal(a, b)
    serial = render_many([RenderJob(s, tmp_path / "s" / f"{s.obs_id}.fits", frames.options)
                          for s in specs], processes=1, progress=False)  # fmt: skip
    pooled = render_many([RenderJob(s, tmp_path / "p" / f"{s.obs_id}.fits", frames.options)
                          for s in specs[::-1]], processes=2, progress=False)[::-1]  # fmt: skip
    assert len(serial) == 3
    for x, y in zip(serial, pooled, strict=True):
        np.testing.assert_array_equal(fits.getdata(x), fits.getdata(y))
    np.testing.assert_array_equal(fits.getdata(serial[0]), a)
    again = RunFrames(run_dir, size=128).specs(max_frames=1)[0]
    assert again.seed == spec.seed and again.hot_pixels.shape == spec.hot_pixels.shape


def test_frame_command_writes_a_preview(run_dir, tmp_path, capsys):
    obs_id = int(pd.read_parquet(run_dir / "observations.parquet")["obs_id"].iloc[0])
    code = main(["frame", str(run_dir), str(obs_id), "--png", "--mark-truth", "--size", "160",
                 "--out", str(tmp_path)])  # fmt: skip
    assert code == 0
    png = next(tmp_path.glob("*.png"))
    assert png.stat().st_size > 10_000
    assert "preview" in capsys.readouterr().out


def test_frame_command_rejects_an_unknown_exposure(run_dir, capsys):
    assert main(["frame", str(run_dir), "99999999"]) == 2
    assert "obs_id" in capsys.readouterr().err


def test_a_stopped_render_resumes_skipping_finished_frames(tmp_path):
    """Frames already on disk are complete (renamed into place) and are not rendered
    again; a frame lost to the stop is rendered again, identical to the first time."""
    scenario = load_scenario("scenarios/global-3site.yaml", start="2027-03-10", nights=1, seed=2)
    out = tmp_path / "run"
    run_scenario(scenario, out, "greedy", progress=False, plots=False)
    first = render_run(out, max_frames=4, size=64, processes=1, calibrations=False,
                       progress=False)["frames"]  # fmt: skip
    lost = first[1]
    original = lost.read_bytes()
    lost.unlink()
    (lost.parent / f".{lost.name}.tmp").write_bytes(b"half a frame")  # what a kill leaves
    kept = {p: p.stat().st_mtime_ns for p in first if p != lost}
    again = render_run(out, max_frames=4, size=64, processes=1, calibrations=False,
                       progress=False)["frames"]  # fmt: skip
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in first if p != lost} == kept
    assert lost.read_bytes() == original
    assert not list(lost.parent.glob(".*.tmp"))  # a kill's leftovers are cleared


def test_clean_frames_are_the_frames_of_the_code_before_faults(run_dir, tmp_path):
    """Digests of the first three 96² frames of this run, rendered with the code of commit
    c89a600 (before rare faults, the in-loop pipeline, render_arrays and the sky's
    transient population existed): a frame with no fault and no population renders
    exactly what it did. (global-3site has the population on since; it adds its members.)"""
    import hashlib
    from dataclasses import replace

    frames = RunFrames(run_dir, size=96)
    got = []
    for spec in frames.specs(max_frames=3):
        assert spec.population is not None and not spec.faults
        spec = replace(spec, population=None)
        path = render_frame(spec, tmp_path / f"{spec.obs_id}.fits", frames.options)
        got.append(hashlib.sha256(fits.getdata(path).tobytes()).hexdigest()[:16])
    assert got == ["6aa6b245789080d8", "b23013876e364488", "759fd4017fb16ffa"]


def test_the_header_names_the_galaxy_source(run_dir, tmp_path, monkeypatch):
    """``render_frame`` writes the source the options name, not a fixed one (the model
    itself is not run: the render is the parametric one, the card is what is checked)."""
    from dataclasses import replace

    import twin.imaging.frames as frames_module

    frames = RunFrames(run_dir, size=64)
    spec = frames.specs(max_frames=1)[0]
    parametric = frames.options
    real_render = frames_module.render_arrays
    monkeypatch.setattr(frames_module, "render_arrays",
                        lambda s, options: real_render(s, parametric))  # fmt: skip
    for source in ("parametric", "diffusion"):
        path = render_frame(spec, tmp_path / f"{source}.fits", replace(parametric, galaxies=source))
        assert fits.getheader(path)["GALAXIES"] == source
    assert "GALAXIES" not in frame_header(spec)  # only a rendered frame knows its source
