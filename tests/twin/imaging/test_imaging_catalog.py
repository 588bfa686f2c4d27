"""The sky in a field: counts with latitude and magnitude, depth, persistence, trails."""

import math

import numpy as np
import pytest
from astropy.coordinates import SkyCoord

from twin.imaging.catalog import (
    GALAXY_SLOPE_FAINT,
    TrailModel,
    faint_limit_mag,
    field_sources,
    galaxy_counts_per_deg2,
    sky_catalog,
    star_counts_per_deg2,
)
from twin.imaging.spec import FrameSpec, Transient
from twin.world.telescope import TELESCOPE_PRESETS


def galactic_to_icrs(l_deg: float, b_deg: float) -> tuple[float, float]:
    c = SkyCoord(l=l_deg, b=b_deg, unit="deg", frame="galactic").icrs
    return float(c.ra.deg), float(c.dec.deg)


def make_spec(size: int = 512, ra_deg: float = 150.0, dec_deg: float = 2.0, **fields) -> FrameSpec:
    base = dict(
        obs_id=3, site="test", site_height_m=2663.0, telescope=TELESCOPE_PRESETS["1m"],
        band="r", exptime_s=60.0, mjd_start=61000.0, ra_deg=ra_deg, dec_deg=dec_deg,
        pointing_error_ra_arcsec=4.0, pointing_error_dec_arcsec=-3.0, airmass=1.2,
        alt_deg=56.0, az_deg=180.0, sky_mag_arcsec2=21.0, seeing_fwhm_arcsec=1.0,
        defocus_fwhm_arcsec=0.0, tracking_error_arcsec=0.0, tracking_pa_deg=0.0,
        transparency=1.0, throughput=1.0, n_hot_pixels=0,
        n_bad_columns=0, moon_illum=0.0, moon_sep_deg=90.0, seed=11, nx=size, ny=size,
    )  # fmt: skip
    base.update(fields)
    return FrameSpec(**base)


def test_star_counts_rise_toward_the_plane_and_match_the_anchor():
    counts = star_counts_per_deg2(20.0, np.array([90.0, 60.0, 30.0, 10.0, 3.0]))
    assert np.all(np.diff(counts) > 0), counts
    assert counts[0] == pytest.approx(1000.0)  # the anchor: 1e3 deg^-2 to r = 20 at the pole
    assert 1000.0 <= counts[3] <= 10000.0  # 1e3 - 1e4 deg^-2 between pole and |b| = 10
    # Counts rise with magnitude, more slowly at the pole than in the plane.
    pole = np.log10(star_counts_per_deg2([20.0, 22.0], 90.0))
    plane = np.log10(star_counts_per_deg2([20.0, 22.0], 10.0))
    assert 0.1 < (pole[1] - pole[0]) / 2 < (plane[1] - plane[0]) / 2 < 0.35


def test_drawn_stars_are_more_numerous_at_low_latitude():
    n = {}
    for b in (10.0, 70.0):
        ra, dec = galactic_to_icrs(60.0, b)
        stars, _ = field_sources(ra, dec, 0.2, "r", 22.0, max_stars=10**6)
        n[b] = len(stars)
    area = math.pi * 0.2**2
    for b, count in n.items():  # Poisson-consistent with the model (cells' own b vary)
        expected = star_counts_per_deg2(22.0, b) * area
        assert abs(count - expected) < 0.25 * expected, (b, count, expected)
    assert n[10.0] > 3 * n[70.0]


def test_galaxy_counts_follow_the_lsst_slope():
    assert galaxy_counts_per_deg2(25.3) / 3600.0 == pytest.approx(55.0, rel=0.05)  # arcmin^-2
    ra, dec = galactic_to_icrs(200.0, 60.0)
    _, galaxies = field_sources(ra, dec, 0.15, "i", 24.5, max_galaxies=10**6)
    i_mag = np.sort(galaxies["mag_i"].to_numpy())
    n21, n24 = np.searchsorted(i_mag, 21.0), np.searchsorted(i_mag, 24.0)
    assert (math.log10(n24) - math.log10(n21)) / 3.0 == pytest.approx(GALAXY_SLOPE_FAINT, abs=0.04)
    area = math.pi * 0.15**2
    assert n24 == pytest.approx(galaxy_counts_per_deg2(24.0) * area, rel=0.1)


def test_catalogue_reaches_below_m5_and_holds_the_transient():
    transient = Transient("AT2027abc", 150.001, 2.0, 19.5)
    spec = make_spec(transient=transient)
    catalog = sky_catalog(spec)
    assert catalog.faint_mag == pytest.approx(faint_limit_mag(spec))
    m5 = catalog.faint_mag - 1.5
    mags = np.concatenate([catalog.stars["mag"], catalog.galaxies["mag"]])
    assert mags.max() <= catalog.faint_mag
    assert ((mags > m5 - 0.5) & (mags < m5 + 0.5)).sum() > 20  # sources around the depth
    assert catalog.transients["alert_id"].tolist() == ["AT2027abc"]
    assert catalog.transients["mag"].iloc[0] == 19.5


def test_same_sky_in_overlapping_exposures_with_stable_ids():
    a = sky_catalog(make_spec())
    # Other pointing error, band, depth and exposure seed: the same stars where they overlap.
    b = sky_catalog(make_spec(pointing_error_ra_arcsec=40.0, band="i", exptime_s=300.0, seed=99))
    common = np.intersect1d(a.stars["source_id"], b.stars["source_id"])
    assert len(common) > 0.5 * len(a.stars)
    sa, sb = (c.stars.set_index("source_id").loc[common] for c in (a, b))
    np.testing.assert_array_equal(sa[["ra_deg", "dec_deg", "mag_r", "mag_i"]],
                                  sb[["ra_deg", "dec_deg", "mag_r", "mag_i"]])  # fmt: skip
    # The deeper exposure adds faint sources without moving the bright ones.
    central = np.hypot(a.galaxies["ra_deg"] - 150.0, a.galaxies["dec_deg"] - 2.0) < 0.02
    bright = a.galaxies[central & (a.galaxies["mag_i"] < b.faint_mag - 2.0)]
    assert len(bright) > 10
    assert set(bright["source_id"]) <= set(b.galaxies["source_id"])


def test_count_caps_brighten_the_limit():
    capped = sky_catalog(make_spec(), max_stars=50, max_galaxies=60)
    assert len(capped.stars) == 50 and len(capped.galaxies) == 60
    full = sky_catalog(make_spec())
    assert set(capped.stars["source_id"]) <= set(full.stars["source_id"])


def test_trails_follow_the_rate_and_the_exposure_seed():
    spec = make_spec(exptime_s=300.0)
    assert sky_catalog(spec, trails=TrailModel(rate_per_hour_deg2=0.0)).trails.empty
    busy = TrailModel(rate_per_hour_deg2=2000.0)
    one = sky_catalog(spec, trails=busy).trails
    assert len(one) > 0
    assert one.equals(sky_catalog(spec, trails=busy).trails)
    assert set(one["trail_kind"]) <= {"satellite", "aircraft"}
    assert (one["width_arcsec"] > 0).all()
