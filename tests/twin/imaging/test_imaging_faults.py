"""Rare faults: each changes the frame as its model says, zero rates change nothing, and the
draws are deterministic and independent of the frame's noise."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from twin.imaging import faults as F
from twin.imaging.detector import apply_detector
from twin.imaging.fits import frame_header, truth_table
from twin.imaging.frames import RunFrames
from twin.imaging.spec import FrameSpec
from twin.ops.run import run_scenario
from twin.scenario import ImagingSpec, load_scenario
from twin.world.telescope import Detector, Telescope

SKY_E = 1000.0


def make_spec(npix: int = 128, **fields) -> FrameSpec:
    det = Detector(nx_pix=npix, ny_pix=npix, pixel_size_um=15.0, gain_e_per_adu=2.0,
                   read_noise_e=6.0, dark_current_e_per_s=0.0, full_well_e=1e8,
                   bias_adu=500.0)  # fmt: skip
    telescope = Telescope(name="faultcam", aperture_m=1.0, pixel_scale_arcsec=0.4, detector=det)
    base = dict(
        obs_id=1, site="test", site_height_m=2663.0, telescope=telescope, band="r",
        exptime_s=60.0, mjd_start=60000.0, ra_deg=150.0, dec_deg=-30.0,
        pointing_error_ra_arcsec=0.0, pointing_error_dec_arcsec=0.0, airmass=1.2,
        alt_deg=56.0, az_deg=180.0, sky_mag_arcsec2=21.0, seeing_fwhm_arcsec=1.2,
        defocus_fwhm_arcsec=0.0, tracking_error_arcsec=0.0, tracking_pa_deg=0.0,
        transparency=1.0, throughput=1.0, n_hot_pixels=0, n_bad_columns=0, moon_illum=0.0,
        moon_sep_deg=90.0, seed=7, nx=npix, ny=npix,
    )  # fmt: skip
    base.update(fields)
    return FrameSpec(**base)


def star_image(spec: FrameSpec, flux_e: float = 1e6, sigma: float = 1.3) -> np.ndarray:
    yy, xx = np.mgrid[0 : spec.ny, 0 : spec.nx]
    c = (spec.nx - 1) / 2.0
    star = np.exp(-0.5 * ((xx - c) ** 2 + (yy - c) ** 2) / sigma**2)
    return SKY_E + flux_e * star / star.sum()


def with_faults(spec, *kinds):
    return replace(spec, faults=tuple(kinds))


# --- the draw ------------------------------------------------------------------------------


def test_no_rates_no_faults():
    assert F.draw_faults(None, 1) == ()
    assert F.draw_faults({}, 1) == ()
    assert all(F.draw_faults(dict.fromkeys(("dew_rate", "glint_rate"), 0.0), s) == ()
               for s in range(200))  # fmt: skip


def test_draw_is_deterministic_and_follows_the_rates():
    rates = {"dew_rate": 0.3, "banding_rate": 0.1, "vignetting_rate": 0.0, "glint_rate": 1.0}
    draws = [F.draw_faults(rates, s) for s in range(3000)]
    assert draws == [F.draw_faults(rates, s) for s in range(3000)]
    frac = {k: np.mean([k in d for d in draws]) for k in F.FAULT_KINDS}
    assert frac["dew"] == pytest.approx(0.3, abs=0.03)
    assert frac["banding"] == pytest.approx(0.1, abs=0.02)
    assert frac["vignetting"] == 0.0 and frac["glint"] == 1.0


def test_one_rate_does_not_change_another_fault():
    a = [("dew" in F.draw_faults({"dew_rate": 0.5}, s)) for s in range(500)]
    b = [("dew" in F.draw_faults({"dew_rate": 0.5, "glint_rate": 0.9}, s)) for s in range(500)]
    assert a == b


# --- each fault -------------------------------------------------------------------------------


def test_glint_adds_its_charge_as_a_short_bright_streak():
    spec = with_faults(make_spec(256), "glint")
    image = np.full((256, 256), SKY_E)
    F.apply_light_faults(image, spec, SKY_E)
    p = F.glint_params(spec)
    added = image - SKY_E
    assert added.max() > 100 * np.sqrt(SKY_E)  # very bright
    inside = added.sum() / p["flux_e"]
    assert 0.3 < inside <= 1.0 + 1e-9  # all of it, less what falls off the frame
    # Elongated along its angle: the second moments' axis ratio follows length / PSF width.
    yy, xx = np.mgrid[0:256, 0:256]
    w = added / added.sum()
    cov = np.cov(np.stack([xx.ravel(), yy.ravel()]), aweights=w.ravel())
    evals = np.linalg.eigvalsh(cov)
    if p["length_pix"] > 20 and inside > 0.9:
        assert evals[1] / evals[0] > 4.0


def test_dew_moves_light_into_a_halo_and_adds_a_glow():
    spec = with_faults(make_spec(256), "dew")
    image = star_image(spec)
    before = image.copy()
    F.apply_light_faults(image, spec, SKY_E)
    p = F.dew_params(spec)
    c = 127
    assert image[c, c] - SKY_E < (1 - 0.9 * p["scatter_fraction"]) * (before[c, c] - SKY_E)
    ring = int(p["halo_sigma_pix"])
    assert image[c, c + ring] > before[c, c + ring]  # the halo
    assert (image - before).sum() > 0  # the glow adds light
    clean_halo = make_spec(256)
    assert np.array_equal(star_image(clean_halo), before)


def test_vignetting_shift_falls_off_away_from_a_displaced_axis():
    spec = with_faults(make_spec(256), "vignetting")
    response = F.vignetting_shift(spec)
    p = F.vignetting_params(spec)
    assert response.max() <= 1.0
    assert response.min() == pytest.approx(1.0 - p["depth"], abs=1e-9)
    assert np.hypot(p["x_pix"] - 127.5, p["y_pix"] - 127.5) >= 0.3 * 256 - 1
    image = np.full((256, 256), SKY_E)
    F.apply_light_faults(image, spec, SKY_E)
    np.testing.assert_allclose(image, SKY_E * response)


def test_banding_is_correlated_along_rows_or_columns():
    spec = with_faults(make_spec(128), "banding")
    pattern = F.banding_adu(spec)
    p = F.banding_params(spec)
    along = 1 if p["along_rows"] else 0  # constant along each row (axis 1) or column
    assert np.ptp(pattern, axis=along).max() == 0.0
    rms = pattern.std()
    assert 0.5 * p["rms_adu"] < rms < 2.5 * p["rms_adu"]


def test_banding_frame_is_the_clean_frame_plus_the_pattern():
    spec = make_spec(128)
    expected = np.full((128, 128), SKY_E)
    clean = apply_detector(expected, spec, np.random.default_rng(spec.seed), flat=1.0)
    faulted = apply_detector(expected, with_faults(spec, "banding"),
                             np.random.default_rng(spec.seed), flat=1.0)  # fmt: skip
    diff = faulted.raw_adu.astype(float) - clean.raw_adu.astype(float)
    np.testing.assert_allclose(diff, F.banding_adu(with_faults(spec, "banding")), atol=1.0)


def test_no_faults_leave_the_frame_bit_identical():
    spec = make_spec(128)
    expected = star_image(spec)
    a = apply_detector(expected, spec, np.random.default_rng(3)).raw_adu
    b = apply_detector(expected, replace(spec, faults=()), np.random.default_rng(3)).raw_adu
    assert np.array_equal(a, b)
    header = frame_header(spec)
    assert "FAULTS" not in header
    assert "fault" not in set(truth_table(None, None, spec)["type"])


def test_truth_names_the_faults():
    spec = with_faults(make_spec(128), "dew", "glint")
    assert frame_header(spec)["FAULTS"] == "dew,glint"
    table = truth_table(None, None, spec)
    rows = table[table["type"] == "fault"]
    assert list(rows["fault_kind"]) == ["dew", "glint"]
    assert rows["fault_params"].str.contains("scatter_fraction").iloc[0]


# --- from a scenario ----------------------------------------------------------------------------


def test_scenario_rates_are_validated():
    assert ImagingSpec().faults is None
    assert ImagingSpec(faults={"dew_rate": 0.2}).faults == {"dew_rate": 0.2}
    with pytest.raises(ValueError):
        ImagingSpec(faults={"dew_rate": 1.5})
    with pytest.raises(ValueError):
        ImagingSpec(faults={"smoke_rate": 0.1})


@pytest.fixture(scope="module")
def run_frames(tmp_path_factory):
    scenario = load_scenario("scenarios/single-site.yaml", start="2027-03-10", nights=1, seed=3)
    out = tmp_path_factory.mktemp("faultrun")
    run_scenario(scenario, out, "greedy", progress=False, plots=False)
    return RunFrames(out, size=96)


def _with_rates(frames: RunFrames, rates) -> RunFrames:
    imaging = frames.scenario.imaging.model_copy(update={"faults": rates})
    frames.scenario = frames.scenario.model_copy(update={"imaging": imaging})
    return frames


def test_run_frames_draw_faults_from_the_scenario_rates(run_frames):
    obs_ids = run_frames.observations["obs_id"].head(40)
    clean = [run_frames.spec(o) for o in obs_ids]
    zero = [s.faults for s in (_with_rates(run_frames, dict.fromkeys(
        ("dew_rate", "banding_rate", "vignetting_rate", "glint_rate"), 0.0)).spec(o)
        for o in obs_ids)]  # fmt: skip
    assert all(s.faults == () for s in clean) and all(f == () for f in zero)
    some = [_with_rates(run_frames, {"glint_rate": 0.5}).spec(o).faults for o in obs_ids]
    assert 5 < sum(f == ("glint",) for f in some) < 35
    again = [run_frames.spec(o).faults for o in obs_ids]
    assert some == again  # deterministic from the frame seed
    _with_rates(run_frames, None)
