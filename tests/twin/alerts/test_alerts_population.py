"""The sky's own population: deterministic by position and seed, counts at the configured
rates, supernovae in hosts at their size, asteroids near the ecliptic, the listing."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from twin.alerts.lightcurves import apparent_mag
from twin.alerts.population import PopulationSpec, member_mags, population_members
from twin.alerts.population.asteroids import (
    asteroids_at,
    density_per_deg2,
    ecliptic_from_equatorial,
    equatorial_from_ecliptic,
)
from twin.alerts.population.explosive import (
    YEAR_DAYS,
    cell_explosions,
    curve_lookback_days,
    lookback_days,
)
from twin.alerts.population.keys import hash_uniforms
from twin.alerts.population.persistent import drw_delta_mag, variable_stars
from twin.imaging.catalog import sky_cell
from twin.scenario import Scenario

OFF = dict(sn_ia_per_deg2_yr=0.0, sn_cc_per_deg2_yr=0.0, fast_per_deg2_yr=0.0,
           variable_fraction=0.0, agn_fraction=0.0, asteroid_per_deg2=0.0)  # fmt: skip


def only(**fields) -> PopulationSpec:
    return PopulationSpec(**{**OFF, **fields})


def test_same_cell_and_seed_same_population_other_seed_other():
    pop = only(sn_ia_per_deg2_yr=500.0)
    cell = sky_cell(450, 700)
    a = cell_explosions(cell, 167, "sn_ia", pop, sky_seed=3)
    b = cell_explosions(cell, 167, "sn_ia", pop, sky_seed=3)
    c = cell_explosions(cell, 167, "sn_ia", pop, sky_seed=4)
    assert len(a) > 5
    pd.testing.assert_frame_equal(a, b)
    assert not np.isin(a["ra_deg"], c["ra_deg"]).any()
    # Another kind's rate does not move the Ia.
    d = cell_explosions(cell, 167, "sn_ia", pop.model_copy(update={"sn_cc_per_deg2_yr": 9.0}), 3)
    pd.testing.assert_frame_equal(a, d)


def test_listing_depends_on_position_not_on_the_region_asked():
    pop = only(sn_ia_per_deg2_yr=300.0, sn_cc_per_deg2_yr=100.0, variable_fraction=0.2)
    big = population_members(150.0, 2.0, 0.3, 61000.0, 61010.0, pop, sky_seed=1)
    small = population_members(150.1, 2.05, 0.1, 61000.0, 61010.0, pop, sky_seed=1)
    assert len(small) > 5
    inside = big[big["pop_id"].isin(small["pop_id"])].reset_index(drop=True)
    pd.testing.assert_frame_equal(inside, small)


def test_explosion_counts_match_the_rate_within_poisson():
    # Afterglows are hostless: fast to draw over many cells.
    pop = only(fast_per_deg2_yr=200.0, kilonova_fraction=0.0, fast_peak_mag_r=(16.0, 22.0))
    cells = [sky_cell(i, j) for i in range(440, 450) for j in range(0, 1800, 90)]
    area = sum(c.area_deg2 for c in cells)
    tables = [cell_explosions(c, 167, "fast", pop) for c in cells]
    table = pd.concat(tables)
    expected = 200.0 * area
    assert abs(len(table) - expected) < 4.0 * math.sqrt(expected)
    # t0 uniform over the year block; peaks Euclidean: N(<21) / N(<22) = 10^-0.6.
    t = table["t0_mjd"].to_numpy() / YEAR_DAYS - 167
    assert t.min() >= 0.0 and t.max() < 1.0 and abs(t.mean() - 0.5) < 4 * 0.29 / math.sqrt(len(t))
    frac, p = (table["peak_mag_r"] < 21.0).mean(), 10**-0.6
    assert abs(frac - p) < 4 * math.sqrt(p * (1 - p) / len(table))


def test_supernova_offsets_follow_the_host_disk():
    """Half the SNe inside the host's half-light radius, deprojected (they trace light)."""
    pop = only(sn_ia_per_deg2_yr=3000.0, sn_cc_per_deg2_yr=3000.0)
    table = pd.concat([cell_explosions(sky_cell(460, j), 167, kind, pop, sky_seed=2)
                       for j in (100, 101, 102) for kind in ("sn_ia", "sn_cc")])  # fmt: skip
    hosted = table[table["host_id"] >= 0]
    assert len(hosted) > 500 and len(hosted) == len(table)
    pa = np.radians(hosted["host_pa_deg"].to_numpy())
    east, north = hosted["offset_east_arcsec"].to_numpy(), hosted["offset_north_arcsec"].to_numpy()
    major = east * np.sin(pa) + north * np.cos(pa)
    minor = (east * np.cos(pa) - north * np.sin(pa)) / hosted["host_q"].to_numpy()
    ratio = np.hypot(major, minor) / hosted["host_hlr_arcsec"].to_numpy()
    n = len(ratio)
    assert abs(np.mean(ratio < 1.0) - 0.5) < 4 * 0.5 / math.sqrt(n)
    # The host is the galaxy at the SN's distance: host i - (peak r - M_peak) ≈ M_host = -21.
    # (Bright SNe run out of bright enough galaxies in a 0.04 deg² cell: look at faint ones.)
    from twin.imaging.catalog import cell_galaxies

    gal = pd.concat([cell_galaxies(460, j, 24.0, 2) for j in (100, 101, 102)]).set_index(
        "source_id")  # fmt: skip
    m_peak = np.where(hosted["curve"] == "sn_ia", -19.3, -16.5)
    host_abs = gal.loc[hosted["host_id"], "i_mag"].to_numpy() - (hosted["peak_mag_r"] - m_peak)
    faint = (hosted["peak_mag_r"] > 21.0).to_numpy() & (hosted["curve"] == "sn_ia").to_numpy()
    assert np.median(host_abs[faint]) == pytest.approx(-21.0, abs=0.3)


def test_lookback_ends_when_the_curve_has_faded_in_every_band():
    for curve in ("sn_ia", "sn_cc", "kilonova", "grb_afterglow"):
        days = curve_lookback_days(curve)
        later = np.linspace(days, 3 * days, 50)
        for band in "ugrizy":
            assert np.all(apparent_mag(curve, band, later, 0.0) >= 7.0 - 0.05), (curve, band)
    assert lookback_days("fast") == max(curve_lookback_days("kilonova"),
                                        curve_lookback_days("grb_afterglow"))  # fmt: skip
    assert 200 < lookback_days("sn_ia") < 400 and 400 < lookback_days("sn_cc") < 800


def test_listed_magnitudes_are_the_light_curves():
    pop = only(sn_ia_per_deg2_yr=400.0)
    members = population_members(40.0, -30.0, 0.2, 61000.0, 61030.0, pop, band="g",
                                 at_mjd=61020.0)  # fmt: skip
    assert len(members) > 10 and set(members["pop_kind"]) == {"sn_ia"}
    expected = apparent_mag("sn_ia", "g", 61020.0 - members["t0_mjd"], members["peak_mag_r"])
    np.testing.assert_allclose(members["mag"], expected)
    np.testing.assert_allclose(member_mags(members, 61020.0, pop), expected)
    alive = (members["t0_mjd"] <= 61030.0) & (members["t0_mjd"] + lookback_days("sn_ia") >= 61000)
    assert alive.all()


def test_variable_and_agn_fractions_and_laws():
    ids = np.arange(40_000, dtype=np.int64) + (7 << 48)
    pop = only(variable_fraction=0.1, variable_period_days=(0.5, 50.0))
    var = variable_stars(ids, pop, sky_seed=5)
    assert abs(len(var) / len(ids) - 0.1) < 4 * math.sqrt(0.09 / len(ids))
    assert var["amplitude_mag"].between(0.1, 1.0).all()
    # Log-uniform periods: half below the geometric mean.
    assert abs((var["period_days"] < 5.0).mean() - 0.5) < 4 * 0.5 / math.sqrt(len(var))
    pd.testing.assert_frame_equal(var, variable_stars(ids, pop, sky_seed=5))
    # DRW flicker: zero mean, rms SF∞ / √2 over time and AGN.
    agn = only(agn_fraction=1.0, agn_sf_inf_mag=0.3)
    flicker = np.array([drw_delta_mag(ids[:300], t, agn) for t in np.arange(0.0, 4000.0, 40.0)])
    assert flicker.std() == pytest.approx(0.3 / math.sqrt(2), rel=0.1)
    assert abs(flicker.mean()) < 0.03
    # Hashes are uniform and independent of the kind.
    u = hash_uniforms(ids, 0, "variable", 2)
    assert abs(u.mean() - 0.5) < 0.01 and abs(np.corrcoef(u.T)[0, 1]) < 0.02


def test_ecliptic_round_trip_and_asteroid_density():
    lon, lat = equatorial_from_ecliptic(np.array([0.0, 90.0, 200.0]), np.array([0.0, 0.0, 5.0]))
    assert lat[1] == pytest.approx(23.4393, abs=1e-3)  # λ = 90° on the ecliptic: Dec = ε
    back = ecliptic_from_equatorial(lon, lat)
    np.testing.assert_allclose(back[0], [0.0, 90.0, 200.0], atol=1e-9)
    pop = only(asteroid_per_deg2=400.0)
    ra, dec = equatorial_from_ecliptic(120.0, 0.0)
    rocks = asteroids_at(float(ra), float(dec), 1.5, 61000.3, pop, sky_seed=1)
    rng = np.random.default_rng(0)  # expected count: the density integrated over the cap
    r = 1.5 * np.sqrt(rng.uniform(size=200_000))
    lat_pts = r * np.sin(rng.uniform(0, 2 * np.pi, r.size))
    expected = float(np.mean(density_per_deg2(lat_pts, pop))) * math.pi * 1.5**2
    assert abs(len(rocks) - expected) < 4 * math.sqrt(expected)
    far_ra, far_dec = equatorial_from_ecliptic(120.0, 40.0)
    assert asteroids_at(float(far_ra), float(far_dec), 1.0, 61000.3, pop).empty


def test_bad_population_is_named():
    with pytest.raises(ValidationError, match="sn_ia_peak_mag_r"):
        PopulationSpec(sn_ia_peak_mag_r=(22.0, 16.0))
    with pytest.raises(ValidationError, match="sn_ia_per_deg2_yr"):
        PopulationSpec(sn_ia_per_deg2_yr=-1.0)
    with pytest.raises(ValidationError, match="supernova_rate"):
        PopulationSpec(supernova_rate=3.0)
    with pytest.raises(ValueError, match="allowed: sn_ia, sn_cc, fast, variable, agn, asteroid"):
        population_members(0.0, 0.0, 0.1, 61000.0, 61001.0, PopulationSpec(), kinds=["snia"])


def test_scenario_without_population_dumps_as_before():
    from twin.scenario import scenario_yaml

    base = {"name": "t", "sites": [{"site": "cerro-pachon", "telescopes": [{"name": "a"}]}]}
    assert "population" not in scenario_yaml(Scenario.model_validate(base))
    on = Scenario.model_validate({**base, "imaging": {"population": {}}})
    assert on.imaging.population == PopulationSpec()
    assert "sn_ia_per_deg2_yr: 7.0" in scenario_yaml(on)


def test_any_mjd_is_allowed_even_before_the_epoch():
    """A reference spec may carry mjd 0: the population there is defined, not an error."""
    pop = only(asteroid_per_deg2=300.0, sn_ia_per_deg2_yr=300.0)
    ra, dec = equatorial_from_ecliptic(10.0, 0.0)
    assert len(asteroids_at(float(ra), float(dec), 1.0, 0.0, pop)) > 0
    population_members(float(ra), float(dec), 0.1, -5.0, 0.0, pop)
