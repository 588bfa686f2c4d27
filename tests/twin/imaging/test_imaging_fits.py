"""FITS frames: header values, the WCS (north up, east left), the zero point, the truth file."""

import math
import warnings
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.time import Time
from astropy.wcs import WCS

from twin.imaging.detector import apply_detector
from twin.imaging.fits import magzero, read_frame, truth_path, write_frame
from twin.imaging.spec import FrameSpec
from twin.physics.etc import sky_electrons_per_pixel, source_electrons
from twin.world.telescope import TELESCOPE_PRESETS

TELESCOPE = TELESCOPE_PRESETS["1m"]  # 0.389"/pixel, gain 1.5 e-/ADU, 15 um pixels
THROUGHPUT = 0.93


def make_spec(dec_deg: float = -30.0, nx: int = 200, ny: int = 120) -> FrameSpec:
    return FrameSpec(
        obs_id=4242, site="Cerro Test", site_height_m=2200.0, telescope=TELESCOPE, band="r",
        exptime_s=90.0, mjd_start=60500.123456, ra_deg=150.25, dec_deg=dec_deg,
        pointing_error_ra_arcsec=2.0, pointing_error_dec_arcsec=-1.0, airmass=1.35,
        alt_deg=47.8, az_deg=120.0, sky_mag_arcsec2=20.7, seeing_fwhm_arcsec=1.1,
        defocus_fwhm_arcsec=0.4, tracking_error_arcsec=0.2, tracking_pa_deg=30.0,
        transparency=0.8, throughput=THROUGHPUT, n_hot_pixels=50,
        n_bad_columns=1, moon_illum=0.4, moon_sep_deg=60.0, seed=7, nx=nx, ny=ny,
        target_id="SN-like", request_id="req-1",
    )  # fmt: skip


def make_truth() -> pd.DataFrame:
    return pd.DataFrame({
        "source_id": ["s1", "s2", "t1"], "type": ["star", "galaxy", "transient"],
        "ra_deg": [150.25, 150.26, 150.24], "dec_deg": [-30.0, -30.01, -29.99],
        "x_pix": [99.5, 10.25, 150.0], "y_pix": [59.5, 20.0, 100.75],
        "mag": [15.0, 19.5, 18.2], "flux_e": [1.0e6, 2.0e4, 5.0e4],
    })  # fmt: skip


@pytest.fixture
def frame(tmp_path):
    spec = make_spec()
    raw = np.random.default_rng(0).integers(900, 1100, (spec.ny, spec.nx)).astype(np.uint16)
    path = write_frame(tmp_path / "f.fits", raw, spec, make_truth(),
                       header_extra={"RUNID": ("run-9", "the run")})  # fmt: skip
    return spec, raw, path


def test_header_round_trips(frame):
    _, raw, path = frame
    data, header, _ = read_frame(path)
    assert data.dtype == np.uint16
    np.testing.assert_array_equal(data, raw)
    expected = {
        "EXPTIME": 90.0, "FILTER": "r", "AIRMASS": 1.35, "OBSERVAT": "Cerro Test",
        "TELESCOP": "1m", "RA": 150.25, "DEC": -30.0, "GAIN": 1.5, "RDNOISE": 8.0,
        "SATURATE": 65535.0, "SEEING": 1.1, "OBS_ID": 4242, "MJD-OBS": 60500.123456,
        "IMAGETYP": "object", "RUNID": "run-9", "SKYMAG": 20.7, "SEED": 7,
    }  # fmt: skip
    for key, value in expected.items():
        assert header[key] == value, key
    assert header["IMGFWHM"] == pytest.approx(math.hypot(1.1, 0.4))
    assert header["INSTRUME"]
    assert Time(header["DATE-OBS"], scale="utc").mjd == pytest.approx(60500.123456, abs=1e-8)


def test_magzero_gives_one_adu_per_second(frame):
    spec, _, path = frame
    header = read_frame(path)[1]
    assert header["MAGZERO"] == pytest.approx(magzero(spec))
    # The exposure-time calculator with the same airmass, cloud, height and throughput.
    electrons = source_electrons(TELESCOPE, "r", source_mag=header["MAGZERO"], exptime_s=1.0,
                                 airmass=1.35, transparency=0.8, height_m=2200.0)  # fmt: skip
    assert float(electrons) * THROUGHPUT / 1.5 == pytest.approx(1.0, rel=1e-9)
    sky = sky_electrons_per_pixel(TELESCOPE, "r", sky_mag_arcsec2=20.7, exptime_s=90.0,
                                  transparency=0.8)  # fmt: skip
    assert header["SKYLEVEL"] == pytest.approx(float(sky) * THROUGHPUT / 1.5, rel=1e-9)


@pytest.mark.parametrize("dec_deg", [-30.0, 0.0, 75.0])
def test_wcs_is_tan_north_up_east_left(tmp_path, dec_deg):
    spec = make_spec(dec_deg=dec_deg)
    path = write_frame(tmp_path / "w.fits", np.zeros((spec.ny, spec.nx)), spec, None)
    with fits.open(path) as hdul, warnings.catch_warnings():
        warnings.simplefilter("error")  # a clean header: no FITSFixedWarning
        wcs = WCS(hdul[0].header)
    crpix = wcs.wcs.crpix
    np.testing.assert_allclose(crpix, [(spec.nx + 1) / 2, (spec.ny + 1) / 2])
    ra, dec = wcs.all_pix2world([[crpix[0], crpix[1]]], 1)[0]
    assert ra == pytest.approx(150.25, abs=1e-9) and dec == pytest.approx(dec_deg, abs=1e-9)
    # The numpy centre pixel (0-based) is the same point.
    ra0, dec0 = wcs.all_pix2world([[(spec.nx - 1) / 2, (spec.ny - 1) / 2]], 0)[0]
    assert (ra0, dec0) == pytest.approx((ra, dec), abs=1e-9)
    centre = SkyCoord(ra, dec, unit="deg")
    scale_deg = 0.389 / 3600.0
    for dx, dy, east_deg, north_deg in [(10, 0, -10, 0), (0, 10, 0, 10), (-7, -3, 7, -3)]:
        ra1, dec1 = wcs.all_pix2world([[crpix[0] + dx, crpix[1] + dy]], 1)[0]
        d_east, d_north = centre.spherical_offsets_to(SkyCoord(ra1, dec1, unit="deg"))
        assert d_east.deg == pytest.approx(east_deg * scale_deg, abs=1e-6)
        assert d_north.deg == pytest.approx(north_deg * scale_deg, abs=1e-6)


def test_truth_parquet_round_trips_with_fits_pixels(frame):
    _, _, path = frame
    assert truth_path(path).name == "f.truth.parquet"
    truth = read_frame(path)[2]
    original = make_truth()
    pd.testing.assert_frame_equal(truth[original.columns], original, check_dtype=False)
    np.testing.assert_allclose(truth["x_fits"], original["x_pix"] + 1.0)
    np.testing.assert_allclose(truth["y_fits"], original["y_pix"] + 1.0)


def test_detector_artefacts_join_the_truth(tmp_path):
    spec = make_spec(nx=512, ny=512)
    spec = replace(spec, exptime_s=600.0, hot_pixels=np.array([[1800, 1800], [2000, 2100]]),
                   bad_columns=np.array([1900]))  # fmt: skip
    result = apply_detector(np.full((512, 512), 500.0), spec, np.random.default_rng(1))
    assert len(result.cosmic_rays) > 0
    path = write_frame(tmp_path / "d.fits", result.raw_adu, spec, make_truth(), detector=result)
    truth = read_frame(path)[2]
    counts = truth["type"].value_counts()
    assert counts["cosmic_ray"] == len(result.cosmic_rays)
    assert counts["hot_pixel"] == 2 and counts["bad_column"] == 1
    assert counts["star"] == 1
    hot = truth[truth["type"] == "hot_pixel"].sort_values("y_pix")
    assert list(hot["y_pix"]) == [1800 - 1792, 2000 - 1792]
    assert truth.loc[truth["type"] == "bad_column", "x_pix"].item() == 1900 - 1792
    cr = truth[truth["type"] == "cosmic_ray"]
    assert cr["flux_e"].sum() == pytest.approx(result.cosmic_rays["electrons"].sum())
