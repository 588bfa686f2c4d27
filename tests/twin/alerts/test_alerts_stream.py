"""The alert stream has the statistics it promises, and its requests the right windows."""

import numpy as np
import pytest
from pydantic import ValidationError
from scipy import stats

from twin.alerts.lightcurves import KINDS, days_brighter_than, fade_days, light_curve
from twin.alerts.stream import (
    ALERT_COLUMNS,
    Alert,
    AlertSpec,
    FollowupSpec,
    alerts_frame,
    confirmation_request,
    followup_request,
    generate_alerts,
)
from twin.programme.requests import Request

START_MJD = 60000.0
SITES = ("lsc", "cpt", "coj", "ogg")


@pytest.fixture(scope="module")
def many_alerts():
    """~20 000 alerts: enough for percent-level checks of the distributions."""
    return generate_alerts(AlertSpec(rate_per_day=20.0), START_MJD, START_MJD + 1000.0, seed=5)


def _sn_ia(**changes):
    fields = dict(
        alert_id="alert-0001",
        kind="sn_ia",
        ra_deg=150.0,
        dec_deg=-20.0,
        t0_mjd=START_MJD,
        issued_mjd=START_MJD + 10.0,
        peak_mag_r=18.0,
    )
    return Alert(**{**fields, **changes})


def test_poisson_count_within_four_sigma():
    alerts = generate_alerts(AlertSpec(rate_per_day=1.0), START_MJD, START_MJD + 1000.0, seed=1)
    assert abs(len(alerts) - 1000.0) < 4.0 * np.sqrt(1000.0)


def test_sorted_inside_the_period_and_after_t0(many_alerts):
    issued = np.array([alert.issued_mjd for alert in many_alerts])
    t0 = np.array([alert.t0_mjd for alert in many_alerts])
    assert np.all(np.diff(issued) >= 0.0)
    assert issued.min() >= START_MJD and issued.max() < START_MJD + 1000.0
    assert np.all(t0 < issued)
    ids = [alert.alert_id for alert in many_alerts]
    assert ids[:2] == ["alert-0000", "alert-0001"] and len(set(ids)) == len(ids)


def test_kind_fractions(many_alerts):
    fractions = AlertSpec().kinds
    kinds = np.array([alert.kind for alert in many_alerts])
    n = len(kinds)
    for kind, expected in fractions.items():
        sigma = np.sqrt(expected * (1.0 - expected) / n)
        assert np.mean(kinds == kind) == pytest.approx(expected, abs=5.0 * sigma)


def test_kind_fractions_are_normalised():
    assert AlertSpec(kinds={"sn_ia": 3.0, "kilonova": 1.0}).kinds == {
        "sn_ia": 0.75,
        "kilonova": 0.25,
    }


def test_positions_isotropic(many_alerts):
    ra = np.array([alert.ra_deg for alert in many_alerts])
    sin_dec = np.sin(np.radians([alert.dec_deg for alert in many_alerts]))
    # sin(dec) uniform on [-1, 1]: mean 0, standard error sqrt(1/3 / n).
    assert abs(sin_dec.mean()) < 5.0 * np.sqrt(1.0 / 3.0 / len(sin_dec))
    assert stats.kstest(sin_dec, stats.uniform(-1.0, 2.0).cdf).pvalue > 1e-3
    assert stats.kstest(ra, stats.uniform(0.0, 360.0).cdf).pvalue > 1e-3


def test_dec_band_is_respected():
    spec = AlertSpec(rate_per_day=20.0, dec_range_deg=(-30.0, 10.0))
    alerts = generate_alerts(spec, START_MJD, START_MJD + 200.0, seed=2)
    dec = np.array([alert.dec_deg for alert in alerts])
    assert dec.min() >= -30.0 and dec.max() <= 10.0
    expected = 0.5 * (np.sin(np.radians(-30.0)) + np.sin(np.radians(10.0)))
    assert np.sin(np.radians(dec)).mean() == pytest.approx(expected, abs=0.02)


def test_peak_mags_follow_euclidean_counts(many_alerts):
    spec = AlertSpec()
    for kind in ("sn_ia", "grb_afterglow"):  # the shared range and a per-kind override
        low, high = spec.peak_range_r(kind)
        peaks = np.array([a.peak_mag_r for a in many_alerts if a.kind == kind])
        assert peaks.min() >= low and peaks.max() <= high
        mid = 0.5 * (low + high)
        # N(<m) ∝ 10^(0.6 m): the brighter half of the range holds few of them.
        counts = 10.0 ** (0.6 * np.array([low, mid, high]))
        expected = (counts[1] - counts[0]) / (counts[2] - counts[0])
        sigma = np.sqrt(expected * (1.0 - expected) / len(peaks))
        assert np.mean(peaks < mid) == pytest.approx(expected, abs=5.0 * sigma)


def test_discovery_delays_by_kind(many_alerts):
    delays = AlertSpec().discovery_delay_days
    for alert in many_alerts[:2000]:
        low, high = delays[alert.kind]
        assert low <= alert.issued_mjd - alert.t0_mjd <= high + 1e-9
    # Supernovae are issued before their peak.
    for alert in many_alerts[:2000]:
        if alert.kind.startswith("sn_"):
            assert alert.issued_mjd - alert.t0_mjd < light_curve(alert.kind).rise_days + 1e-9


def test_same_seed_same_list_different_seed_different():
    spec = AlertSpec(rate_per_day=3.0)
    first = generate_alerts(spec, START_MJD, START_MJD + 30.0, seed=11)
    assert first == generate_alerts(spec, START_MJD, START_MJD + 30.0, seed=11)
    assert first != generate_alerts(spec, START_MJD, START_MJD + 30.0, seed=12)
    sequence = np.random.SeedSequence(11)
    assert generate_alerts(spec, START_MJD, START_MJD + 30.0, seed=sequence) == first


def test_no_alerts_at_zero_rate():
    assert generate_alerts(AlertSpec(rate_per_day=0.0), START_MJD, START_MJD + 10.0, 1) == []
    frame = alerts_frame([])
    assert list(frame.columns) == list(ALERT_COLUMNS) and len(frame) == 0


def test_bad_kind_names_the_allowed_kinds():
    with pytest.raises(ValidationError) as error:
        AlertSpec(kinds={"sn_ia": 1.0, "tde": 0.2})
    message = str(error.value)
    assert "tde" in message
    assert all(kind in message for kind in KINDS)


@pytest.mark.parametrize(
    "kinds", [{"sn_ia": -0.1, "sn_cc": 1.0}, {"sn_ia": 0.0}], ids=["negative", "zero-sum"]
)
def test_bad_fractions_rejected(kinds):
    with pytest.raises(ValidationError, match="kinds"):
        AlertSpec(kinds=kinds)


def test_unknown_field_rejected():
    with pytest.raises(ValidationError, match="rate_per_night"):
        AlertSpec(rate_per_night=1.0)


def test_alert_mag_uses_its_light_curve():
    alert = _sn_ia()
    peak_mjd = alert.t0_mjd + light_curve("sn_ia").rise_days
    assert float(alert.mag("r", peak_mjd)) == pytest.approx(18.0, abs=1e-9)
    assert alert.mag("g", [alert.t0_mjd - 1.0, peak_mjd]).shape == (2,)
    assert np.isposinf(alert.mag("g", alert.t0_mjd - 1.0))


def test_followup_window_ends_when_it_fades():
    alert = _sn_ia()
    spec = AlertSpec()
    request = followup_request(alert, spec, alert.issued_mjd)
    assert isinstance(request, Request)
    assert request.request_id == "alert-0001-fu" and request.program == "alerts"
    assert request.target_id == "alert-0001"
    assert request.priority == pytest.approx(10.0)
    assert [p.band for p in request.plan] == ["g", "r"]
    assert request.cadence_days == pytest.approx(0.5)
    assert request.constraints.max_airmass == pytest.approx(2.0)
    assert request.constraints.min_moon_sep_deg == pytest.approx(20.0)
    (window,) = request.windows
    assert window.start_mjd == pytest.approx(alert.issued_mjd)
    limit = spec.followup.limit_mag
    end_days = fade_days("sn_ia", 18.0, limit)
    assert window.end_mjd == pytest.approx(alert.t0_mjd + end_days, abs=1e-6)
    assert float(alert.mag("r", window.end_mjd)) == pytest.approx(limit, abs=1e-6)
    # The bright spell days_brighter_than measures ends at the window end and began on the rise.
    began_days = end_days - days_brighter_than("sn_ia", 18.0, limit)
    assert 0.0 < began_days < light_curve("sn_ia").rise_days
    if "visits" in Request.model_fields:
        assert request.visits == 3


def test_followup_window_fixed_length_and_minimum():
    alert = _sn_ia()
    fixed = followup_request(alert, FollowupSpec(window_days=5.0), alert.issued_mjd + 2.0)
    assert fixed.windows[0].start_mjd == pytest.approx(alert.issued_mjd + 2.0)
    assert fixed.windows[0].end_mjd == pytest.approx(alert.issued_mjd + 7.0)
    # A transient already below the limit still gets the minimum window (0.5 d).
    faint = followup_request(_sn_ia(peak_mag_r=22.0), AlertSpec(), alert.issued_mjd)
    assert faint.windows[0].end_mjd - faint.windows[0].start_mjd == pytest.approx(0.5)


def test_followup_sites_passed_when_supported():
    request = followup_request(_sn_ia(), AlertSpec(), None, sites=["lsc", "cpt"])
    assert request.windows[0].start_mjd == pytest.approx(_sn_ia().issued_mjd)
    if "sites" in Request.model_fields:
        assert request.sites == ("lsc", "cpt")


def test_confirmation_request_excludes_the_detecting_site():
    alert = _sn_ia()
    spec = AlertSpec()
    request = confirmation_request(alert, spec, START_MJD + 12.0, "cpt", SITES)
    assert request.request_id == "alert-0001-confirm"
    assert request.priority == pytest.approx(1.5 * spec.followup.priority)
    assert request.cadence_days is None
    (window,) = request.windows
    assert (window.start_mjd, window.end_mjd) == pytest.approx((START_MJD + 12.0, START_MJD + 13.0))
    if "sites" in Request.model_fields:
        assert request.sites == ("lsc", "coj", "ogg")
    if "visits" in Request.model_fields:
        assert request.visits == 1


def test_confirmation_needs_another_site():
    with pytest.raises(ValueError, match="confirm=False"):
        confirmation_request(_sn_ia(), AlertSpec(), START_MJD + 12.0, "lsc", ("lsc",))


def test_alerts_frame_columns(many_alerts):
    frame = alerts_frame(many_alerts[:5])
    assert list(frame.columns) == list(ALERT_COLUMNS)
    assert frame["alert_id"].tolist() == [alert.alert_id for alert in many_alerts[:5]]
    assert frame["peak_mag_r"].to_numpy() == pytest.approx([a.peak_mag_r for a in many_alerts[:5]])
