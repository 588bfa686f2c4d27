"""Shared fixtures: one rendered frame with a transient and its deep template (512²)."""

import pytest

SIZE = 512
TRANSIENT_MAG = 19.5


def make_spec(size: int = SIZE, **fields):
    """A 60 s r-band exposure of the 1 m at galactic latitude 15° (stars plentiful),
    pointing error (6, -4) arcsec: 15 and 10 pixels."""
    from twin.imaging.spec import FrameSpec
    from twin.world.telescope import TELESCOPE_PRESETS

    base = dict(
        obs_id=5,
        site="test",
        site_height_m=2200.0,
        telescope=TELESCOPE_PRESETS["1m"],
        band="r",
        exptime_s=60.0,
        mjd_start=61000.0,
        ra_deg=280.867,
        dec_deg=30.611,
        pointing_error_ra_arcsec=6.0,
        pointing_error_dec_arcsec=-4.0,
        airmass=1.3,
        alt_deg=50.0,
        az_deg=180.0,
        sky_mag_arcsec2=20.8,
        seeing_fwhm_arcsec=1.1,
        defocus_fwhm_arcsec=0.3,
        tracking_error_arcsec=0.2,
        tracking_pa_deg=90.0,
        transparency=0.8,
        throughput=0.95,
        n_hot_pixels=0,
        n_bad_columns=0,
        moon_illum=0.0,
        moon_sep_deg=90.0,
        seed=21,
        nx=size,
        ny=size,
    )
    base.update(fields)
    return FrameSpec(**base)


@pytest.fixture(scope="session")
def pair():
    """``(spec, new image, header, truth, template)``: a transient of r = 19.5 at a
    sub-pixel position, the template 8 × deeper with 0.9" seeing."""
    from models.transient.reference import render_frame_calibrated, render_template
    from twin.imaging.scene import frame_wcs
    from twin.imaging.spec import Transient

    ra, dec = frame_wcs(make_spec()).all_pix2world([[SIZE * 0.4 + 0.3, SIZE * 0.6 - 0.2]], 0)[0]
    spec = make_spec(transient=Transient("AT-test", float(ra), float(dec), TRANSIENT_MAG))
    new, header, truth = render_frame_calibrated(spec)
    template, _ = render_template(spec, seeing_fwhm_arcsec=0.9)
    return spec, new, header, truth, template


@pytest.fixture(scope="session")
def difference(pair):
    from models.transient.difference import subtract

    spec, new, _, _, template = pair
    return subtract(new, template, spec.band)
