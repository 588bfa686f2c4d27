"""The population in frames: the same pixels as before when it is off, a supernova's
flux at its light-curve magnitude, the reference at the mean, asteroids that move."""

from __future__ import annotations

import dataclasses
import hashlib
import math
from types import SimpleNamespace

import numpy as np
import pytest

from twin.alerts.lightcurves import apparent_mag
from twin.alerts.population import PopulationSpec, population_in_frame, population_members
from twin.alerts.population.asteroids import ecliptic_from_equatorial, equatorial_from_ecliptic
from twin.imaging.frames import RenderOptions, render_arrays, spec_for_row
from twin.imaging.spec import FrameSpec, Transient
from twin.world.telescope import TELESCOPE_PRESETS

ONE_M = TELESCOPE_PRESETS["1m"]
OFF = dict(sn_ia_per_deg2_yr=0.0, sn_cc_per_deg2_yr=0.0, fast_per_deg2_yr=0.0,
           variable_fraction=0.0, agn_fraction=0.0, asteroid_per_deg2=0.0)  # fmt: skip
# Raw ADU of make_spec() with sky_seed 3, rendered by the code before the population existed.
DIGEST_BEFORE_POPULATION = "03f7910ab707d836"


def make_spec(size: int = 96, **fields) -> FrameSpec:
    base = dict(
        obs_id=5, site="test", site_height_m=2200.0, telescope=ONE_M, band="r",
        exptime_s=60.0, mjd_start=61000.0, ra_deg=280.867, dec_deg=30.611,
        pointing_error_ra_arcsec=3.0, pointing_error_dec_arcsec=-2.0, airmass=1.3,
        alt_deg=50.0, az_deg=180.0, sky_mag_arcsec2=20.8, seeing_fwhm_arcsec=1.1,
        defocus_fwhm_arcsec=0.3, tracking_error_arcsec=0.2, tracking_pa_deg=90.0,
        transparency=0.8, throughput=0.95, n_hot_pixels=3, n_bad_columns=1, moon_illum=0.0,
        moon_sep_deg=90.0, seed=21, nx=size, ny=size,
        transient=Transient("AT1", 280.8682, 30.6105, 18.0),
    )  # fmt: skip
    base.update(fields)
    return FrameSpec(**base)


def digest(spec: FrameSpec) -> str:
    detector, _ = render_arrays(spec, RenderOptions(sky_seed=3))
    return hashlib.sha256(np.ascontiguousarray(detector.raw_adu).tobytes()).hexdigest()[:16]


def test_population_off_or_empty_leaves_the_frame_unchanged():
    assert digest(make_spec()) == DIGEST_BEFORE_POPULATION
    assert digest(make_spec(population=PopulationSpec(**OFF))) == DIGEST_BEFORE_POPULATION


def test_spec_for_row_carries_the_scenario_population():
    row = dict(obs_id=3, site="s", site_height_m=2000.0, band="r", exptime_s=60.0,
               mjd_start=61000.0, ra_deg=10.0, dec_deg=-30.0, pointing_error_ra_arcsec=0.0,
               pointing_error_dec_arcsec=0.0, airmass=1.1, alt_deg=65.0, az_deg=0.0,
               sky_mag_arcsec2=21.0, seeing_fwhm_arcsec=1.0, defocus_fwhm_arcsec=0.0,
               tracking_error_arcsec=0.0, tracking_pa_deg=0.0, transparency=1.0,
               throughput=1.0, n_hot_pixels=0, n_bad_columns=0, moon_illum=0.0,
               moon_sep_deg=90.0)  # fmt: skip
    tw = SimpleNamespace(
        telescope=ONE_M,
        equipment=SimpleNamespace(defects=SimpleNamespace(hot_pixels_at=lambda m: np.empty((0, 2)),
                                                          bad_columns_at=lambda m: [])),
        quality=SimpleNamespace(m5_ref=lambda band, t: 21.0),
    )  # fmt: skip
    pop = PopulationSpec()
    on = spec_for_row(row, tw, {}, 7, SimpleNamespace(faults=None, population=pop), size=64)
    off = spec_for_row(row, tw, {}, 7, SimpleNamespace(faults=None, population=None), size=64)
    assert on.population == pop and off.population is None and not on.population_reference


def supernova_frame():
    """A 96² frame of 300 s centred on a Ia at its peak, with no other member within 14 px
    brighter than 1 % of it (its host may have had other, faded SNe)."""
    pop = PopulationSpec(**{**OFF, "sn_ia_per_deg2_yr": 3000.0, "sn_ia_peak_mag_r": (19.0, 20.0)})
    base = make_spec(exptime_s=300.0, transient=None, population=pop, n_hot_pixels=0,
                     n_bad_columns=0, pointing_error_ra_arcsec=0.0, sky_mag_arcsec2=21.5,
                     pointing_error_dec_arcsec=0.0)  # fmt: skip
    near = population_members(base.ra_deg, base.dec_deg, 0.1, 61000.0, 61300.0, pop, 3,
                              kinds=["sn_ia"])  # fmt: skip
    for _, member in near[near["t0_mjd"] > 61000.0].head(20).iterrows():
        spec = dataclasses.replace(base, mjd_start=float(member["t0_mjd"]) + 18.0,
                                   ra_deg=member["ra_deg"], dec_deg=member["dec_deg"])  # fmt: skip
        members = population_in_frame(spec, sky_seed=3)
        sn = members[members["pop_id"] == member["pop_id"]].iloc[0]
        d = np.hypot(members["x_pix"] - sn["x_pix"], members["y_pix"] - sn["y_pix"])
        if ((d < 14) & (members["mag"] < sn["mag"] + 5.0)).sum() == 1:
            return spec, sn
    raise AssertionError("no isolated supernova found")


def test_supernova_flux_matches_its_light_curve_magnitude():
    from sep import sum_circle

    from models.transient.reference import render_frame_calibrated

    spec, sn = supernova_frame()
    # Its magnitude is the light curve's at mid-exposure in the frame's band.
    listed = population_members(spec.true_ra_deg, spec.true_dec_deg, 0.05, spec.mjd_start,
                                spec.mjd_start, spec.population, 3, kinds=["sn_ia"])  # fmt: skip
    row = listed.set_index("pop_id").loc[sn["pop_id"]]
    mid = spec.mjd_start + 0.5 * spec.exptime_s / 86400.0
    assert sn["mag"] == pytest.approx(float(apparent_mag("sn_ia", "r", mid - row["t0_mjd"],
                                                         row["peak_mag_r"])), abs=1e-9)  # fmt: skip
    # Aperture photometry of (frame with SN) - (same frame without the population).
    with_sn, _, _ = render_frame_calibrated(spec, RenderOptions(sky_seed=3))
    without, _, _ = render_frame_calibrated(dataclasses.replace(spec, population=None),
                                            RenderOptions(sky_seed=3))  # fmt: skip
    diff = np.ascontiguousarray(with_sn.data_e - without.data_e)
    var = np.ascontiguousarray(with_sn.variance_e2 + without.variance_e2)
    radius_px = 4.0 * spec.image_fwhm_arcsec / spec.pixel_scale_arcsec
    flux, err, _ = sum_circle(diff, [sn["x_pix"]], [sn["y_pix"]], radius_px, var=var)
    assert flux[0] == pytest.approx(sn["flux_e"], abs=4.0 * err[0] + 0.02 * sn["flux_e"])
    assert err[0] < 0.05 * sn["flux_e"]  # the check has teeth


def test_reference_shows_variables_at_their_mean_and_no_transients():
    from models.transient.reference import render_template, template_spec

    pop = PopulationSpec(**{**OFF, "sn_ia_per_deg2_yr": 1e5, "variable_fraction": 1.0,
                            "variable_amplitude_mag": (0.8, 1.0), "agn_fraction": 1.0,
                            "asteroid_per_deg2": 1e4,
                            "asteroid_rate_deg_per_day": (0.1, 0.15)})  # fmt: skip
    ra, dec = equatorial_from_ecliptic(150.0, 2.0)  # on the ecliptic: asteroids too
    spec = make_spec(size=96, ra_deg=float(ra), dec_deg=float(dec), transient=None,
                     population=pop)  # fmt: skip
    frame = population_in_frame(spec, sky_seed=3)
    assert {"sn_ia", "variable", "agn", "asteroid"} <= set(frame["pop_kind"])
    _, truth = render_template(spec, RenderOptions(sky_seed=3), n_exposures=2)
    assert template_spec(spec).population_reference
    kinds = set(truth["pop_kind"]) - {""}
    assert kinds == {"variable", "agn"}
    # The variables' magnitudes are the static catalogue's (their mean), not the frame's.
    static = population_in_frame(dataclasses.replace(spec, population=None), sky_seed=3)
    assert static.empty
    mid = spec.mjd_start + 0.5 * spec.exptime_s / 86400.0
    mean = population_members(spec.true_ra_deg, spec.true_dec_deg, 0.02, mid, mid, pop, 3,
                              band="r", kinds=["variable"], static_faint_mag=30.0)  # fmt: skip
    ref_var = truth[truth["pop_kind"] == "variable"].set_index("pop_id")
    in_frame = frame[frame["pop_kind"] == "variable"].set_index("pop_id")
    common = ref_var.index.intersection(mean["pop_id"]).intersection(in_frame.index)
    assert len(common) >= 3
    listed = mean.set_index("pop_id").loc[common]
    np.testing.assert_allclose(ref_var.loc[common, "mag"], listed["mean_mag"], atol=1e-9)
    np.testing.assert_allclose(in_frame.loc[common, "mag"], listed["mag"], atol=1e-9)
    assert np.abs(in_frame.loc[common, "mag"] - listed["mean_mag"]).max() > 0.1


def test_asteroid_moves_between_frames_at_its_rate():
    pop = PopulationSpec(**{**OFF, "asteroid_per_deg2": 1e4,
                            "asteroid_rate_deg_per_day": (0.3, 0.30001)})  # fmt: skip
    ra, dec = equatorial_from_ecliptic(200.0, 3.0)
    first = make_spec(size=128, ra_deg=float(ra), dec_deg=float(dec), transient=None,
                      population=pop, mjd_start=61000.40)  # fmt: skip
    dt_days = 10.0 / 1440.0  # ten minutes later, another site, another pointing error
    second = dataclasses.replace(first, mjd_start=first.mjd_start + dt_days, site="other",
                                 pointing_error_ra_arcsec=-4.0, seed=99)  # fmt: skip
    a = population_in_frame(first, sky_seed=1).set_index("pop_id")
    b = population_in_frame(second, sky_seed=1).set_index("pop_id")
    both = a.index.intersection(b.index)
    assert len(both) >= 3 and set(a.loc[both, "pop_kind"]) == {"asteroid"}
    ra0, dec0 = np.radians(a.loc[both, "ra_deg"]), np.radians(a.loc[both, "dec_deg"])
    ra1, dec1 = np.radians(b.loc[both, "ra_deg"]), np.radians(b.loc[both, "dec_deg"])
    cos_sep = np.sin(dec0) * np.sin(dec1) + np.cos(dec0) * np.cos(dec1) * np.cos(ra1 - ra0)
    rate = np.degrees(np.arccos(np.clip(cos_sep, -1, 1))) / dt_days
    np.testing.assert_allclose(rate, 0.3, rtol=0.01)
    # Mostly along the ecliptic, and linear in time: twice the step in twice the time.
    lon0, lat0 = ecliptic_from_equatorial(a.loc[both, "ra_deg"], a.loc[both, "dec_deg"])
    lon1, lat1 = ecliptic_from_equatorial(b.loc[both, "ra_deg"], b.loc[both, "dec_deg"])
    angle = np.degrees(np.arctan2(np.abs(lat1 - lat0), np.abs(lon1 - lon0) * math.cos(0.05)))
    assert np.median(angle) < 20.0
    third = dataclasses.replace(first, mjd_start=first.mjd_start + 2 * dt_days)
    c = population_in_frame(third, sky_seed=1).set_index("pop_id")
    all3 = both.intersection(c.index)
    assert len(all3) >= 2
    for column in ("ra_deg", "dec_deg"):
        step = b.loc[all3, column] - a.loc[all3, column]
        np.testing.assert_allclose(c.loc[all3, column] - a.loc[all3, column], 2 * step,
                                   atol=1e-7)  # fmt: skip
