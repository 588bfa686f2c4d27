"""Rendered frames measured independently (SEP, GalSim's pipeline-free FWHM, astropy WCS)
against the truth they were made from: seeing, zero point, sky, depth and astrometry.

One 1024x1024 raw frame goes through the whole path (scene → detector → FITS) and is
reduced the way a pipeline would: bias subtracted, flat-fielded, background by SEP.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import sep
from astropy.coordinates import SkyCoord
from astropy.wcs import WCS
from scipy.ndimage import convolve
from scipy.spatial import cKDTree

from twin.imaging.detector import apply_detector, bias_image, flat_field
from twin.imaging.fits import read_frame, write_frame
from twin.imaging.psf import expected_fwhm_arcsec, star_fwhm_arcsec
from twin.imaging.render import render_expected
from twin.imaging.spec import FrameSpec
from twin.physics.etc import m5
from twin.world.telescope import get_telescope

THROUGHPUT = 0.95


def make_spec(seeing=1.3, defocus=0.3, seed=7) -> FrameSpec:
    tel = get_telescope("1m")
    return FrameSpec(
        obs_id=1, site="cerro-pachon", site_height_m=2700.0, telescope=tel, band="r",
        exptime_s=60.0, mjd_start=61500.2, ra_deg=150.0, dec_deg=-30.0,
        pointing_error_ra_arcsec=3.0, pointing_error_dec_arcsec=-2.0, airmass=1.2,
        alt_deg=56.0, az_deg=10.0, sky_mag_arcsec2=20.8, seeing_fwhm_arcsec=seeing,
        defocus_fwhm_arcsec=defocus, tracking_error_arcsec=0.0, tracking_pa_deg=0.0,
        transparency=0.9, throughput=THROUGHPUT,
        n_hot_pixels=20, n_bad_columns=1, moon_illum=0.3, moon_sep_deg=60.0, seed=seed,
        nx=1024, ny=1024,
    )  # fmt: skip


@pytest.fixture(scope="module")
def frame(tmp_path_factory):
    spec = make_spec()
    rendered = render_expected(spec)
    detector = apply_detector(rendered.image_e, spec, np.random.default_rng(spec.seed))
    path = write_frame(tmp_path_factory.mktemp("f") / "f.fits", detector.raw_adu, spec,
                       rendered.truth, detector=detector)  # fmt: skip
    raw, header, truth = read_frame(path)
    # A pipeline's reduction: bias, flat, then SEP's background.
    data = (raw.astype(float) - bias_image(spec)) / flat_field(spec)
    mask = detector.saturated | detector.hot_pixel_mask | detector.bad_column_mask
    background = sep.Background(data, mask=mask)
    sub = data - background.back()
    return spec, header, truth, data, sub, mask, background


def _isolated_bright_stars(truth, spec, sub_max_e=0.5):
    """Stars alone within 12 px, well above the noise and well below saturation."""
    full_well = spec.telescope.detector.full_well_e
    stars = truth[(truth["type"] == "star") & truth["in_frame"].astype(bool)]
    sources = truth[truth["type"].isin(["star", "galaxy", "transient"])]
    tree = cKDTree(sources[["x_pix", "y_pix"]].to_numpy())
    neighbours = tree.query_ball_point(stars[["x_pix", "y_pix"]].to_numpy(), 12.0)
    alone = np.array([len(n) == 1 for n in neighbours])
    edge = ((stars["x_pix"] > 20) & (stars["x_pix"] < spec.nx - 20)
            & (stars["y_pix"] > 20) & (stars["y_pix"] < spec.ny - 20))  # fmt: skip
    peak_e = stars["flux_e"] / (2 * np.pi * (1.5 / 0.389 / 2.355) ** 2)
    bright = (stars["flux_e"] > 2e4) & (peak_e < sub_max_e * full_well)
    return stars[alone & edge.to_numpy() & bright.to_numpy()]


def test_measured_fwhm_matches_the_delivered_seeing(frame):
    spec, _, truth, _, sub, _, _ = frame
    stars = _isolated_bright_stars(truth, spec)
    assert len(stars) >= 5
    measured = [star_fwhm_arcsec(sub, x, y, spec.pixel_scale_arcsec, method="halfmax")
                for x, y in zip(stars["x_pix"], stars["y_pix"], strict=True)]  # fmt: skip
    delivered = expected_fwhm_arcsec(spec, include_pixel=True)
    assert np.median(measured) == pytest.approx(delivered, rel=0.05)
    # and the log's seeing (atmosphere ⊕ defocus) within 10 % (the optics add the rest)
    assert np.median(measured) == pytest.approx(spec.image_fwhm_arcsec, rel=0.10)


def test_aperture_photometry_gives_the_header_zero_point(frame):
    spec, header, truth, _, sub, _, _ = frame
    stars = _isolated_bright_stars(truth, spec)
    radius_px = 4.0 * spec.image_fwhm_arcsec / spec.pixel_scale_arcsec
    flux_adu, _, _ = sep.sum_circle(sub, stars["x_pix"].to_numpy(), stars["y_pix"].to_numpy(),
                                    radius_px)  # fmt: skip
    zp = stars["mag"].to_numpy() + 2.5 * np.log10(flux_adu / header["EXPTIME"])
    assert np.median(zp) == pytest.approx(header["MAGZERO"], abs=0.05)


def test_background_matches_the_sky_model(frame):
    spec, header, _, _, _, _, background = frame
    gain = header["GAIN"]
    dark_adu = spec.telescope.detector.dark_current_e_per_s * spec.exptime_s / gain
    assert background.globalback == pytest.approx(header["SKYLEVEL"] + dark_adu, rel=0.02)


def test_half_completeness_is_near_the_etc_m5(frame):
    spec, _, truth, _, sub, mask, background = frame
    sigma_px = expected_fwhm_arcsec(spec, include_pixel=True) / spec.pixel_scale_arcsec / 2.3548
    grid = np.arange(-8, 9)
    kernel = np.exp(-0.5 * (grid[:, None] ** 2 + grid[None, :] ** 2) / sigma_px**2)
    kernel /= kernel.sum()
    # Matched filter: the filtered peak over its noise is the optimal (PSF-fit) SNR.
    snr = convolve(sub, kernel, mode="constant") / (background.globalrms
                                                    * np.sqrt((kernel**2).sum()))  # fmt: skip
    found = sep.extract(snr.astype(np.float32), 5.0, mask=mask, minarea=1)
    stars = truth[(truth["type"] == "star") & truth["in_frame"].astype(bool)]
    distance, _ = cKDTree(np.c_[found["x"], found["y"]]).query(stars[["x_pix", "y_pix"]])
    detected = distance < 2.0
    m5_etc = float(m5(spec.telescope, spec.band, exptime_s=spec.exptime_s, airmass=spec.airmass,
                      seeing_fwhm_arcsec=spec.image_fwhm_arcsec,
                      sky_mag_arcsec2=spec.sky_mag_arcsec2,
                      transparency=spec.transparency * spec.throughput,
                      height_m=spec.site_height_m))  # fmt: skip
    bins = np.arange(m5_etc - 2.0, m5_etc + 1.51, 0.25)
    centres, completeness = [], []
    for lo, hi in itertools.pairwise(bins):
        sel = (stars["mag"] >= lo) & (stars["mag"] < hi)
        if sel.sum() >= 5:
            centres.append(0.5 * (lo + hi))
            completeness.append(detected[sel.to_numpy()].mean())
    completeness = np.array(completeness)
    k = int(np.argmax(completeness < 0.5))  # first bin below one half
    assert k > 0, completeness
    m50 = np.interp(0.5, completeness[[k, k - 1]], np.array(centres)[[k, k - 1]])
    assert m50 == pytest.approx(m5_etc, abs=0.3)


def test_header_wcs_maps_detections_to_truth_within_the_pointing_error(frame):
    spec, header, truth, _, sub, mask, background = frame
    found = sep.extract(sub, 10.0, err=background.globalrms, mask=mask, minarea=5)
    stars = _isolated_bright_stars(truth, spec)
    distance, index = cKDTree(np.c_[found["x"], found["y"]]).query(stars[["x_pix", "y_pix"]])
    ok = distance < 1.5
    assert ok.sum() >= 5
    ra, dec = WCS(header).all_pix2world(found["x"][index[ok]], found["y"][index[ok]], 0)
    mapped = SkyCoord(ra, dec, unit="deg")
    true = SkyCoord(stars["ra_deg"].to_numpy()[ok], stars["dec_deg"].to_numpy()[ok], unit="deg")
    separation = mapped.separation(true).arcsec
    error = math.hypot(spec.pointing_error_ra_arcsec, spec.pointing_error_dec_arcsec)
    assert np.all(separation <= error + 0.3)
    assert np.median(separation) == pytest.approx(error, abs=0.2)  # the offset *is* the error
