"""Cut-out triplets of a tiny rendered pair, and the shipped real/bogus weights on it: the
injected supernova is real, a cosmic ray and a hot pixel are bogus (issue 12's test)."""

from dataclasses import replace

import numpy as np
import pytest

from tests.models.transient.conftest import make_spec

SIZE = 256
SN_XY = (100.3, 150.6)


@pytest.fixture(scope="module")
def tiny():
    """A 256² r-band frame at galactic latitude 8° (enough stars for a PSF) with a supernova
    2 mag above m5, ~6 cosmic rays and its hot pixels left out of the defect mask; the
    template 8 × deeper with 0.9" seeing. ``(spec, truth, difference, labels)``."""
    from astropy.coordinates import SkyCoord

    from models.transient.dataset import frame_m5, label_candidates, render_new
    from models.transient.difference import subtract
    from models.transient.reference import render_template
    from twin.imaging.frames import RenderOptions
    from twin.imaging.scene import frame_wcs
    from twin.imaging.spec import Transient

    icrs = SkyCoord(l=60.0, b=8.0, unit="deg", frame="galactic").icrs
    spec = make_spec(SIZE, ra_deg=float(icrs.ra.deg), dec_deg=float(icrs.dec.deg),
                     n_hot_pixels=3000)  # fmt: skip
    m5 = frame_m5(spec)
    ra, dec = frame_wcs(spec).all_pix2world([SN_XY], 0)[0]
    spec = replace(spec, transient=Transient("SN-test", float(ra), float(dec), m5 - 2.0))
    template, _ = render_template(spec, seeing_fwhm_arcsec=0.9)
    new, truth = render_new(spec, RenderOptions(trail_rate_per_hour_deg2=0.0),
                            np.random.default_rng(3), cosmic_rays_expected=6.0,
                            hot_unmasked_fraction=1.0)  # fmt: skip
    diff = subtract(new, template, spec.band)
    labels = label_candidates(
        diff.candidates, truth, injected_xy=SN_XY, fwhm_pix=diff.psf_new.fwhm_pix,
        full_well_e=spec.telescope.detector.full_well_e, misregistered=False, m5=m5,
        pixel_scale_arcsec=spec.pixel_scale_arcsec,
    )  # fmt: skip
    return spec, truth, diff, labels


def test_triplets_have_one_row_per_candidate_in_order(tiny):
    from models.transient.cutouts import CUTOUT_PX, FEATURE_COLUMNS, candidate_triplets

    _, _, diff, _ = tiny
    triplets, features = candidate_triplets(diff)
    n = len(diff.candidates)
    assert n > 3
    assert triplets.shape == (n, 3, CUTOUT_PX, CUTOUT_PX) and triplets.dtype == np.float32
    assert list(features.columns) == list(FEATURE_COLUMNS) and len(features) == n
    assert np.isfinite(triplets).all() and np.isfinite(features.to_numpy(float)).all()
    np.testing.assert_allclose(features["scorr_abs"], np.abs(diff.candidates["scorr"]))


def test_channels_are_in_units_of_the_sky_noise_and_zero_beyond_the_edge(tiny):
    from models.transient.cutouts import candidate_triplets

    _, _, diff, _ = tiny
    # One cut-out at a position of mostly sky (robust statistics ignore the odd source),
    # one at the frame's corner pixel.
    fake = diff.candidates.iloc[:2].copy()
    fake[["x_pix", "y_pix"]] = [[200.0, 40.0], [0.0, 0.0]]
    triplets, _ = candidate_triplets(replace(diff, candidates=fake.reset_index(drop=True)))
    sky = triplets[0]
    # asinh of unit Gaussian noise has σ ≈ 0.83; robust σ of each channel near that
    for channel in (0, 2):
        values = sky[channel][sky[channel] != 0.0]
        mad = 1.4826 * np.median(np.abs(values - np.median(values)))
        assert 0.65 < mad < 1.1, (channel, mad)
        assert abs(np.median(values)) < 0.15
    corner = triplets[1]
    half = corner.shape[-1] // 2
    assert (corner[:, :half, :] == 0.0).all() and (corner[:, :, :half] == 0.0).all()
    assert (corner[0, half:, half:] != 0.0).mean() > 0.9


def test_shipped_weights_call_the_supernova_real_and_a_cosmic_ray_and_a_hot_pixel_bogus(tiny):
    from models.transient.classifier import load_classifier
    from models.transient.cutouts import candidate_triplets

    _, _, diff, labels = tiny
    rb = load_classifier()
    triplets, features = candidate_triplets(diff)
    proba = rb.predict_proba(triplets, features)
    assert proba.shape == (len(features),) and ((proba >= 0) & (proba <= 1)).all()
    np.testing.assert_array_equal(proba, rb.predict_proba(triplets, features))  # deterministic
    klass = labels["bogus_class"].to_numpy()
    assert (klass == "real").sum() == 1
    assert proba[klass == "real"][0] >= rb.real_threshold
    for name in ("cosmic_ray", "hot_pixel"):
        assert (klass == name).any(), f"the frame has no {name} candidate"
        # the most confidently detected one of each kind
        k = np.flatnonzero(klass == name)[0]
        assert proba[k] < rb.real_threshold, (name, proba[k], rb.real_threshold)
    assert rb.version.startswith("realbogus-")
