"""Light-curve shapes match the published facts they were built from."""

import numpy as np
import pytest

from twin.alerts.lightcurves import (
    BANDS,
    KINDS,
    apparent_mag,
    days_brighter_than,
    fade_days,
    light_curve,
)


@pytest.mark.parametrize("kind", KINDS)
def test_r_at_peak_equals_peak_mag(kind):
    peak_days = light_curve(kind).rise_days
    assert float(apparent_mag(kind, "r", peak_days, 18.3)) == pytest.approx(18.3, abs=0.01)
    # ... and it is the brightest r on the curve.
    t = np.geomspace(1e-3, 300.0, 4000)
    assert apparent_mag(kind, "r", t, 18.3).min() >= 18.3 - 1e-9


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("band", BANDS)
def test_infinite_at_and_before_t0(kind, band):
    mags = apparent_mag(kind, band, [-5.0, -1e-6, 0.0], 17.0)
    assert np.all(np.isposinf(mags))


def test_broadcasts_days_against_peaks():
    days = np.array([1.0, 10.0, 20.0, 40.0])[:, None]
    peaks = np.array([16.0, 18.0, 20.0])[None, :]
    mags = apparent_mag("sn_ia", "g", days, peaks)
    assert mags.shape == (4, 3)
    # The shape does not depend on the peak: columns differ by the peak difference.
    np.testing.assert_allclose(mags[:, 2] - mags[:, 0], 4.0, atol=1e-12)


def test_sn_ia_rise_and_decline():
    peak_days = light_curve("sn_ia").rise_days
    assert 16.0 <= peak_days <= 20.0
    g_peak, g_15 = apparent_mag("sn_ia", "g", [peak_days, peak_days + 15.0], 18.0)
    assert 0.8 <= g_15 - g_peak <= 1.4  # Δm15 ≈ 1.1 (Phillips 1993)
    # Tail: 0.01-0.03 mag/day in r between 80 and 150 d.
    r_80, r_150 = apparent_mag("sn_ia", "r", [80.0, 150.0], 18.0)
    assert 0.01 <= (r_150 - r_80) / 70.0 <= 0.03


def test_sn_cc_plateau_then_drop():
    r = apparent_mag("sn_cc", "r", [20.0, 90.0, 140.0], 18.0)
    assert r[1] - r[0] < 0.6  # plateau: slow for ~70 days
    assert r[2] - r[1] > 1.5  # then the drop to the radioactive tail


def test_grb_fades_three_mag_per_decade():
    r_01, r_1 = apparent_mag("grb_afterglow", "r", [0.05, 0.5], 15.0)
    assert r_1 - r_01 == pytest.approx(2.5 * 1.2, abs=0.1)


def test_grb_colour_is_a_power_law_spectrum():
    # F_nu ∝ nu^-0.7: redder bands are brighter, g - r ≈ 0.19.
    mags = [float(apparent_mag("grb_afterglow", band, 0.1, 15.0)) for band in BANDS]
    assert np.all(np.diff(mags) < 0)
    assert mags[1] - mags[2] == pytest.approx(0.19, abs=0.02)


def test_kilonova_fades_fast_in_g_slower_in_i():
    peak_days = light_curve("kilonova").rise_days
    g0, g3 = apparent_mag("kilonova", "g", [peak_days, peak_days + 3.0], 18.0)
    i0, i3 = apparent_mag("kilonova", "i", [peak_days, peak_days + 3.0], 18.0)
    assert g3 - g0 > 2.0
    assert i3 - i0 < g3 - g0


def test_days_brighter_than_brackets_the_crossings():
    peak, limit = 18.0, 21.5
    duration = days_brighter_than("sn_ia", peak, limit)
    end = fade_days("sn_ia", peak, limit)
    start = end - duration
    # The curve crosses the limit at both ends of the interval.
    np.testing.assert_allclose(apparent_mag("sn_ia", "r", [start, end], peak), limit, atol=1e-6)
    assert 0.0 < start < light_curve("sn_ia").rise_days < end
    # 3.5 mag below an r peak: ~2.3 mag by +60 d then 0.02 mag/d -> ~138 d after t0.
    assert end == pytest.approx(18.0 + 60.0 + 1.2 / 0.02, abs=1.0)


def test_never_brighter_means_zero_days():
    assert days_brighter_than("kilonova", 22.0, 21.5) == 0.0
    assert fade_days("kilonova", 22.0, 21.5) == 0.0


def test_unknown_kind_and_band_name_the_choices():
    with pytest.raises(ValueError, match="sn_ia"):
        apparent_mag("sn_iax", "r", 1.0, 18.0)
    with pytest.raises(ValueError, match="u, g"):
        apparent_mag("sn_ia", "B", 1.0, 18.0)
