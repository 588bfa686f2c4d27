"""Survey tiling covers its region with about the expected number of tiles."""

import numpy as np
import pytest

from twin.programme import ExposurePlan, monitoring_requests, survey_requests, tile_region


def _random_points(rng, ra_min, ra_max, dec_min, dec_max, count):
    """Uniform on the sphere inside the box (RA may wrap through 0)."""
    span = (ra_max - ra_min) % 360.0 or 360.0
    ra = np.mod(ra_min + rng.uniform(0, span, count), 360.0)
    sin_dec = rng.uniform(np.sin(np.radians(dec_min)), np.sin(np.radians(dec_max)), count)
    return ra, np.degrees(np.arcsin(sin_dec))


def _separation_deg(ra1, dec1, ra2, dec2):
    ra1, dec1, ra2, dec2 = map(np.radians, (ra1, dec1, ra2, dec2))
    cos_sep = np.sin(dec1) * np.sin(dec2) + np.cos(dec1) * np.cos(dec2) * np.cos(ra1 - ra2)
    return np.degrees(np.arccos(np.clip(cos_sep, -1.0, 1.0)))


def _inside_square_field(ra_p, dec_p, ra_c, dec_c, fov_deg):
    """Gnomonic projection about each tile centre: |xi|, |eta| <= tan(fov/2)."""
    a, d, a0, d0 = map(np.radians, (ra_p, dec_p, ra_c, dec_c))
    cos_c = np.sin(d0) * np.sin(d) + np.cos(d0) * np.cos(d) * np.cos(a - a0)
    xi = np.cos(d) * np.sin(a - a0) / cos_c
    eta = (np.cos(d0) * np.sin(d) - np.sin(d0) * np.cos(d) * np.cos(a - a0)) / cos_c
    half = np.tan(np.radians(fov_deg / 2))
    return (cos_c > 0) & (np.abs(xi) <= half) & (np.abs(eta) <= half)


def _area_deg2(ra_min, ra_max, dec_min, dec_max):
    span = (ra_max - ra_min) % 360.0 or 360.0
    return span * np.degrees(np.sin(np.radians(dec_max)) - np.sin(np.radians(dec_min)))


REGIONS = [
    (0.0, 60.0, -30.0, 30.0, 3.0),
    (330.0, 30.0, 40.0, 70.0, 3.0),  # wraps through RA 0
    (100.0, 160.0, -75.0, -45.0, 2.0),
    (0.0, 360.0, 70.0, 90.0, 4.0),  # polar cap, full circle
    (200.0, 230.0, -10.0, 10.0, 7.0),  # few large tiles
]


@pytest.mark.parametrize("region", REGIONS)
def test_tiles_cover_the_region(region):
    ra_min, ra_max, dec_min, dec_max, fov = region
    ra_t, dec_t = tile_region(ra_min, ra_max, dec_min, dec_max, fov)
    rng = np.random.default_rng(1)
    ra_p, dec_p = _random_points(rng, ra_min, ra_max, dec_min, dec_max, 4000)
    inside = _inside_square_field(ra_p[:, None], dec_p[:, None], ra_t[None], dec_t[None], fov)
    assert inside.any(axis=1).all()
    # A square field reaches fov/sqrt(2) from its centre (its corners), never further.
    nearest = _separation_deg(ra_p[:, None], dec_p[:, None], ra_t[None], dec_t[None]).min(1)
    assert nearest.max() <= fov / np.sqrt(2)


# Regions with enough tiles for an area estimate (a 7-deg field gives too few).
@pytest.mark.parametrize("region", [r for r in REGIONS if r[4] <= 5])
def test_tile_count_matches_area(region):
    ra_min, ra_max, dec_min, dec_max, fov = region
    ra_t, _ = tile_region(ra_min, ra_max, dec_min, dec_max, fov)
    expected = _area_deg2(ra_min, ra_max, dec_min, dec_max) / (fov * 0.9) ** 2
    # Rows next to the pole are wasteful in any RA/Dec grid: 125 tiles for 96 here.
    tolerance = 0.35 if dec_max == 90.0 else 0.2
    assert len(ra_t) == pytest.approx(expected, rel=tolerance)


def test_ra_wrap():
    ra, dec = tile_region(330.0, 30.0, -5.0, 5.0, 2.0)
    assert ((ra >= 330.0) | (ra <= 30.0)).all() and ((ra >= 0) & (ra < 360)).all()
    assert (ra > 355).any() and (ra < 5).any()
    straight, _ = tile_region(0.0, 60.0, -5.0, 5.0, 2.0)
    assert len(ra) == len(straight)  # same width, same tile count
    assert (dec >= -5.0).all() and (dec <= 5.0).all()


def test_overlap_adds_tiles_and_bad_arguments_are_explained():
    few = len(tile_region(0, 30, 0, 30, 3.0, overlap=0.0)[0])
    many = len(tile_region(0, 30, 0, 30, 3.0, overlap=0.3)[0])
    assert many > few
    with pytest.raises(ValueError, match="overlap"):
        tile_region(0, 30, 0, 30, 3.0, overlap=1.0)
    with pytest.raises(ValueError, match="dec_min_deg"):
        tile_region(0, 30, 30, 0, 3.0)
    with pytest.raises(ValueError, match="fov_deg"):
        tile_region(0, 30, 0, 30, 0.0)


def test_survey_and_monitoring_requests():
    plan = [ExposurePlan(band="r", exptime_s=30.0, count=2)]
    survey = survey_requests(330.0, 30.0, -5.0, 5.0, 2.0, plan, priority=2.0, cadence_days=3.0)
    ra, dec = tile_region(330.0, 30.0, -5.0, 5.0, 2.0)
    assert len(survey) == len(ra)
    assert len({r.request_id for r in survey}) == len(survey)
    assert [r.ra_deg for r in survey] == pytest.approx(ra.tolist())
    assert [r.dec_deg for r in survey] == pytest.approx(dec.tolist())
    assert all(r.priority == 2.0 and r.cadence_days == 3.0 for r in survey)
    assert survey[0].request_id == "survey-00000" and survey[0].plan == tuple(plan)

    targets = [("SN2024abc", 150.1, 2.2), ("AGN1", -10.0, -45.0)]
    monitor = monitoring_requests(targets, 2.5, plan, program="agn")
    assert [r.request_id for r in monitor] == ["agn-SN2024abc", "agn-AGN1"]
    assert monitor[1].ra_deg == pytest.approx(350.0)
    assert all(r.cadence_days == 2.5 for r in monitor)
