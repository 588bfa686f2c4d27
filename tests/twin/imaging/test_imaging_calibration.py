"""Calibration frames: a real reduction removes bias, dark and flat; files and headers."""

from dataclasses import replace

import numpy as np
import pytest

from twin.imaging.calibration import (
    bias_frames,
    calibration_spec,
    dark_frames,
    master_bias,
    master_dark,
    master_flat,
    reduce_frame,
    twilight_flats,
    write_calibrations,
)
from twin.imaging.detector import apply_detector, flat_field
from twin.imaging.fits import read_frame
from twin.world.telescope import Detector, Telescope

# A 256×256 camera read in full, so the vignetting to the corners is in the frame.
TELESCOPE = Telescope(
    name="calcam", aperture_m=1.0, pixel_scale_arcsec=0.4,
    detector=Detector(nx_pix=256, ny_pix=256, pixel_size_um=15.0, gain_e_per_adu=1.5,
                      read_noise_e=7.0, dark_current_e_per_s=0.02, full_well_e=150000.0,
                      bias_adu=800.0),
)  # fmt: skip
HOT = np.array([[10, 20], [100, 100], [200, 37], [255, 255]])


def block_medians(image: np.ndarray, block: int = 16) -> np.ndarray:
    n = image.shape[0] // block
    return np.median(image.reshape(n, block, n, block).swapaxes(1, 2).reshape(n, n, -1), axis=2)


def test_reduction_flattens_the_sky_and_recovers_the_flat():
    spec = calibration_spec(TELESCOPE, mjd=60000.0, site_height_m=2000.0, hot_pixels=HOT)
    rng = np.random.default_rng(11)
    bias = master_bias(bias_frames(spec, 7, rng))
    dark = master_dark(dark_frames(spec, 7, rng, exptime_s=300.0), bias, 300.0)
    flat = master_flat(twilight_flats(spec, "r", 20, rng), bias, dark, exptime_s=5.0)

    truth = flat_field(spec)
    ratio = flat / truth
    ratio /= np.median(ratio)
    assert np.sqrt(np.mean((ratio - 1.0) ** 2)) < 0.003
    assert np.abs(ratio - 1.0).max() < 0.01

    science_spec = replace(spec, band="r", exptime_s=120.0)
    sky_e = 3000.0
    raw = apply_detector(np.full((256, 256), sky_e), science_spec, rng).raw_adu
    reduced = reduce_frame(raw, bias, dark, flat, 120.0)
    blocks = block_medians(reduced)
    assert np.abs(blocks / np.median(blocks) - 1.0).max() < 0.01
    assert np.median(reduced) == pytest.approx(sky_e / 1.5, rel=0.01)
    # Without the flat the vignetting shows: the same test fails by several percent.
    unflat = block_medians(raw - bias - dark * 120.0)
    assert np.ptp(unflat / np.median(unflat)) > 0.03
    # The hot pixels are gone after dark subtraction.
    hot_values = reduced[HOT[:, 0], HOT[:, 1]]
    assert np.abs(hot_values / np.median(reduced) - 1.0).max() < 0.15


def test_master_bias_and_dark_measure_the_detector():
    spec = calibration_spec(TELESCOPE, hot_pixels=HOT)
    rng = np.random.default_rng(2)
    bias = master_bias(bias_frames(spec, 5, rng))
    assert np.mean(bias) == pytest.approx(800.0, abs=0.5)
    dark = master_dark(dark_frames(spec, 5, rng, exptime_s=600.0), bias, 600.0)
    assert np.median(dark) * 1.5 == pytest.approx(0.02, abs=0.005)  # e-/s
    assert (dark[HOT[:, 0], HOT[:, 1]] * 1.5 > 0.4).all()  # hot: >= 0.5 e-/s


def test_write_calibrations_files_and_headers(tmp_path):
    paths = write_calibrations(tmp_path, TELESCOPE, 3, ["g", "r"], seed=5, mjd=60123.9,
                               n_bias=2, n_dark=2, n_flat=2)  # fmt: skip
    assert len(paths) == 2 + 2 + 2 * 2
    assert paths[0].name == "calcam_night0003_bias_00.fits"
    kinds = []
    for path in paths:
        data, header, truth = read_frame(path)
        assert data.shape == (256, 256) and data.dtype == np.uint16
        assert truth is None
        kinds.append((header["IMAGETYP"], header.get("FILTER"), header["EXPTIME"]))
        assert header["TELESCOP"] == "calcam" and header["NIGHT"] == 3
        assert header["MJD-OBS"] >= 60123.9
    assert (
        kinds
        == [("bias", None, 0.0)] * 2
        + [("dark", None, 300.0)] * 2
        + [("flat", "g", 5.0)] * 2
        + [("flat", "r", 5.0)] * 2
    )
    flat = read_frame(paths[-1])[0].astype(float)
    assert 20000 / 1.5 < np.median(flat) - 800.0 < 30000 / 1.5
    again = write_calibrations(tmp_path / "again", TELESCOPE, 3, ["g", "r"], seed=5,
                               mjd=60123.9, n_bias=2, n_dark=2, n_flat=2)  # fmt: skip
    np.testing.assert_array_equal(read_frame(again[3])[0], read_frame(paths[3])[0])
