"""The noise-free frame: fast against plain GalSim, photometry, astrometry, repeatability."""

import dataclasses

import numpy as np
import pandas as pd
import pytest

from twin.imaging.catalog import SkyCatalog, TrailModel, sky_catalog
from twin.imaging.galaxies import FourierGalaxyStamps, GalSimGalaxyStamps
from twin.imaging.psf import isolated_stars, psf_for, star_fwhm_arcsec
from twin.imaging.render import render_expected, sky_level_e
from twin.imaging.scene import frame_wcs
from twin.imaging.spec import FrameSpec, Transient
from twin.physics.etc import sky_electrons_per_pixel, source_electrons
from twin.world.telescope import TELESCOPE_PRESETS

ONE_M = TELESCOPE_PRESETS["1m"]


def make_spec(size: int = 256, **fields) -> FrameSpec:
    base = dict(
        obs_id=5, site="test", site_height_m=2200.0, telescope=ONE_M, band="r",
        exptime_s=60.0, mjd_start=61000.0, ra_deg=150.0, dec_deg=2.0,
        pointing_error_ra_arcsec=3.0, pointing_error_dec_arcsec=-2.0, airmass=1.3,
        alt_deg=50.0, az_deg=180.0, sky_mag_arcsec2=20.8, seeing_fwhm_arcsec=1.1,
        defocus_fwhm_arcsec=0.3, tracking_error_arcsec=0.2, tracking_pa_deg=90.0,
        transparency=0.8, throughput=0.95, n_hot_pixels=0,
        n_bad_columns=0, moon_illum=0.0, moon_sep_deg=90.0, seed=21, nx=size, ny=size,
    )  # fmt: skip
    base.update(fields)
    return FrameSpec(**base)


def one_star(spec: FrameSpec, mag: float, x: float, y: float) -> SkyCatalog:
    ra, dec = frame_wcs(spec).all_pix2world([x], [y], 0)
    stars = pd.DataFrame({"source_id": [1], "ra_deg": ra, "dec_deg": dec, "mag": [mag]})
    return SkyCatalog(spec.band, 25.0, stars, pd.DataFrame())


@pytest.fixture(scope="module")
def fast_and_plain():
    # A field at galactic (l, b) = (60, 15) deg: stars and galaxies both plentiful.
    spec = make_spec(size=256, ra_deg=280.867, dec_deg=30.611,
                     transient=Transient("AT1", 280.8682, 30.6105, 18.0))  # fmt: skip
    catalog = sky_catalog(spec, trails=TrailModel(rate_per_hour_deg2=0.0))
    fast = render_expected(spec, catalog=catalog)
    plain = render_expected(spec, catalog=catalog, method="plain")
    return spec, fast, plain


def test_fast_matches_plain_galsim_in_flux_and_fwhm(fast_and_plain):
    spec, fast, plain = fast_and_plain
    kinds = fast.truth["type"].value_counts()
    assert kinds["star"] >= 5 and kinds["galaxy"] >= 20 and kinds["transient"] == 1
    flux_fast = (fast.image_e - fast.sky_e_per_pix).sum()
    flux_plain = (plain.image_e - plain.sky_e_per_pix).sum()
    assert flux_fast == pytest.approx(flux_plain, rel=0.01)
    stars = isolated_stars(fast.truth, spec.nx, spec.ny, 16, min_flux_e=5e3)
    assert len(stars) >= 3
    for x, y in stars[["x_pix", "y_pix"]].to_numpy():
        f = star_fwhm_arcsec(fast.image_e, x, y, 0.389, fast.sky_e_per_pix)
        p = star_fwhm_arcsec(plain.image_e, x, y, 0.389, plain.sky_e_per_pix)
        assert f == pytest.approx(p, rel=0.02)
    # Pixel by pixel too: no source is misplaced.
    assert (
        np.abs(fast.image_e - plain.image_e).max()
        < 0.02 * (fast.image_e - fast.sky_e_per_pix).max()
    )


def test_sky_is_the_etc_sky(fast_and_plain):
    spec, fast, _ = fast_and_plain
    expected = sky_electrons_per_pixel(ONE_M, "r", sky_mag_arcsec2=20.8, exptime_s=60.0,
                                       transparency=0.8 * 0.95)  # fmt: skip
    assert fast.sky_e_per_pix == pytest.approx(float(expected)) == sky_level_e(spec)
    assert np.median(fast.image_e) >= fast.sky_e_per_pix


def test_aperture_photometry_of_a_bright_star_is_the_etc_flux():
    spec = make_spec(size=161)
    result = render_expected(spec, catalog=one_star(spec, 15.0, 80.3, 79.8))
    flux = source_electrons(ONE_M, "r", source_mag=15.0, exptime_s=60.0, airmass=1.3,
                            transparency=0.8 * 0.95, height_m=2200.0)  # fmt: skip
    assert result.truth["flux_e"].iloc[0] == pytest.approx(float(flux))
    yy, xx = np.mgrid[0:161, 0:161]
    aperture = np.hypot(xx - 80.3, yy - 79.8) < 60.0  # 23": the Airy wings hold < 0.5 %
    measured = (result.image_e - result.sky_e_per_pix)[aperture].sum()
    assert measured == pytest.approx(float(flux), rel=0.01)


def test_truth_positions_map_back_through_the_true_wcs(fast_and_plain):
    _, fast, _ = fast_and_plain
    truth = fast.truth
    x, y = fast.wcs_true.all_world2pix(truth["ra_deg"], truth["dec_deg"], 0)
    assert np.hypot(x - truth["x_pix"], y - truth["y_pix"]).max() < 0.01
    ra, dec = fast.wcs_true.all_pix2world(truth["x_pix"], truth["y_pix"], 0)
    scale_deg = 0.389 / 3600.0
    d_ra = (ra - truth["ra_deg"]) * np.cos(np.radians(truth["dec_deg"]))
    assert np.hypot(d_ra, dec - truth["dec_deg"]).max() < 0.01 * scale_deg


def test_wcs_is_centred_on_the_true_pointing_north_up_east_left():
    spec = make_spec(size=100)
    wcs = frame_wcs(spec)
    ra, dec = wcs.all_pix2world([49.5, 49.5, 60.0], [49.5, 60.0, 49.5], 0)
    assert ra[0] == pytest.approx(spec.true_ra_deg) and dec[0] == pytest.approx(spec.true_dec_deg)
    assert dec[1] > dec[0]  # +y is north
    assert ra[2] < ra[0]  # +x is west: east is left


def test_the_star_lands_where_the_truth_says():
    spec = make_spec(size=64)
    image = render_expected(spec, catalog=one_star(spec, 14.0, 31.7, 30.2)).image_e
    cut = image[20:44, 20:44] - sky_level_e(spec)
    yy, xx = np.mgrid[20:44, 20:44]
    assert (cut * xx).sum() / cut.sum() == pytest.approx(31.7, abs=0.02)
    assert (cut * yy).sum() / cut.sum() == pytest.approx(30.2, abs=0.02)


def test_same_seed_same_image():
    spec = make_spec(size=128)
    trails = TrailModel(rate_per_hour_deg2=3000.0)
    a = render_expected(spec, trails=trails)
    b = render_expected(spec, trails=trails)
    np.testing.assert_array_equal(a.image_e, b.image_e)
    pd.testing.assert_frame_equal(a.truth, b.truth)
    other = render_expected(dataclasses.replace(spec, seed=22), trails=trails)
    stars = a.truth[a.truth["type"] != "trail"]
    assert set(stars["source_id"]) <= set(other.truth["source_id"])  # same sky, other trails
    busy = TrailModel(rate_per_hour_deg2=3e5)  # enough to cross a 128-px frame
    t1 = render_expected(spec, trails=busy).truth
    t2 = render_expected(dataclasses.replace(spec, seed=22), trails=busy).truth
    trail1, trail2 = t1[t1["type"] == "trail"], t2[t2["type"] == "trail"]
    assert len(trail1) > 0 and len(trail2) > 0
    assert not np.array_equal(
        trail1["ra_deg"].to_numpy(), trail2["ra_deg"].to_numpy()[: len(trail1)]
    )


def test_trail_light_is_its_truth_flux_and_independent_of_exposure_time():
    spec = make_spec(size=128, tracking_error_arcsec=0.0)
    trail = pd.DataFrame({"source_id": [9], "ra_deg": [spec.true_ra_deg],
                          "dec_deg": [spec.true_dec_deg], "mag": [15.0], "pa_deg": [30.0],
                          "width_arcsec": [0.5], "trail_kind": ["satellite"]})  # fmt: skip
    fluxes = []
    for exptime in (30.0, 120.0):
        s = dataclasses.replace(spec, exptime_s=exptime)
        catalog = SkyCatalog("r", 25.0, pd.DataFrame(), pd.DataFrame(), trails=trail)
        result = render_expected(s, catalog=catalog)
        row = result.truth.iloc[0]
        assert row["type"] == "trail" and row["length_arcsec"] > 128 * 0.389
        excess = (result.image_e - result.sky_e_per_pix).sum()
        assert row["flux_e"] == pytest.approx(excess, rel=1e-6)
        fluxes.append(row["flux_e"])
    assert fluxes[0] == pytest.approx(fluxes[1], rel=1e-6)
    per_arcsec = source_electrons(ONE_M, "r", source_mag=15.0, exptime_s=1.0, airmass=1.3,
                                  transparency=0.8 * 0.95, height_m=2200.0)  # fmt: skip
    # The ends of the chord lose the wings that fall off the frame (a few %).
    assert fluxes[0] == pytest.approx(float(per_arcsec) * row["length_arcsec"], rel=0.05)


def test_fourier_galaxy_stamps_match_galsim_drawing():
    spec = make_spec()
    psf = psf_for(spec)
    galaxy = {"flux_e": 1e4, "bulge_frac": 0.3, "hlr_disk_arcsec": 1.2, "hlr_bulge_arcsec": 0.4,
              "q_disk": 0.4, "q_bulge": 0.8, "pa_deg": 30.0, "n_knots": 4, "knot_frac": 0.15,
              "knot_seed": 3}  # fmt: skip
    fourier = FourierGalaxyStamps(1.2).stamp(galaxy, psf, 0.389, None, (0.3, -0.2))
    galsim_k = GalSimGalaxyStamps(1.2).stamp(galaxy, psf, 0.389, None, (0.3, -0.2))
    assert fourier.shape == galsim_k.shape and fourier.shape[0] % 2 == 1
    np.testing.assert_allclose(fourier, galsim_k, atol=1e-5 * fourier.max())
    assert fourier.sum() == pytest.approx(1e4, rel=0.005)
