"""The discovery figures from a run's tables: completeness against the sightings, false
network alerts by their truth, latencies from the recorded times."""

import math

import pandas as pd
import pytest

from models.transient.discovery_eval import eligible_twice, summarise

DAY_S = 86400.0


def _sightings() -> pd.DataFrame:
    rows = [  # pop_id, peak, mag, m5, field, mjd
        ("sn-a", 18.5, 18.7, 21.0, "f1", 100.00),
        ("sn-a", 18.5, 18.7, 21.0, "f1", 100.01),  # twice within the hold
        ("sn-b", 20.5, 20.8, 21.0, "f2", 100.00),  # once only
        ("sn-c", 21.5, 21.9, 21.0, "f2", 100.00),  # fainter than m5: not eligible
        ("sn-d", 20.2, 20.4, 21.0, "f3", 100.00),
        ("sn-d", 20.2, 20.4, 21.0, "f3", 100.50),  # second sighting 12 h later
    ]
    seen = pd.DataFrame(rows, columns=["pop_id", "peak_mag_r", "mag", "m5", "field", "mjd_mid"])
    seen["pop_kind"] = "sn_ia"
    seen["obs_id"] = range(len(seen))
    seen["bright"] = seen["mag"] <= seen["m5"]
    return seen


def _tables():
    t0 = 100.0
    cands = pd.DataFrame({
        "alert_id": ["net-0001", "net-0001", "net-0002", "net-0002", "", ""],
        "truth_kind": ["sn_ia", "sn_ia", "asteroid", "asteroid", "", "variable"],
        "truth_id": ["sn-a", "sn-a", "ast-1", "ast-1", "", "var-1"],
        "centre_class": ["transient", "transient", "transient", "transient", "bogus",
                         "variable"],
        "is_real": [True, True, True, True, False, True],
        "mjd_shutter_close": [t0] * 6,
        "mjd_received": [t0 + 30 / DAY_S] * 5 + [t0 + 50 / DAY_S],
        "obs_id": [0, 1, 0, 1, 4, 4],  # the sightings' frames (sn-a on frames 0 and 1)
    })  # fmt: skip
    alerts = pd.DataFrame({
        "alert_id": ["net-0001", "net-0002", "AT-1"],
        "source": ["network", "network", "broker"],
        "detected_shutter_mjd": [t0, t0, math.nan],
        "detected_mjd": [t0 + 200 / DAY_S, t0 + 400 / DAY_S, math.nan],
        "confirmed_mjd": [t0 + 0.5, math.nan, math.nan],
    })  # fmt: skip
    return cands, alerts


def test_eligible_twice_needs_two_bright_frames_of_one_field_within_the_hold():
    assert eligible_twice(_sightings(), hold_max_s=3600.0) == {"sn-a"}
    assert eligible_twice(_sightings(), hold_max_s=86400.0) == {"sn-a", "sn-d"}


def test_completeness_false_alerts_and_latencies_from_the_tables():
    cands, alerts = _tables()
    out = summarise(cands, alerts, _sightings(), nights=2, hold_max_s=3600.0)
    assert out["eligible_members"] == 3  # a, b, d (c is fainter than m5)
    assert out["discovered_members"] == 1 and out["completeness"] == pytest.approx(1 / 3)
    assert out["completeness_twice"] == 1.0  # a: the only one seen twice in time
    by_bin = {r["peak_mag_r"]: r for r in out["by_peak_mag"]}
    assert by_bin["18-19"]["discovered"] == 1 and by_bin["20-21"]["eligible"] == 2
    assert out["network_alerts"] == 2 and out["true_network_alerts"] == 1
    assert out["false_network_alerts"] == 1 and out["false_network_alerts_per_night"] == 0.5
    assert out["false_alert_truth"] == {"asteroid": 1}
    assert out["median_s_shutter_to_centre"] == pytest.approx(30.0, abs=1e-3)
    assert out["median_s_shutter_to_network_alert"] == pytest.approx(300.0, abs=1e-3)
    assert out["median_s_shutter_to_confirmation"] == pytest.approx(0.5 * DAY_S, abs=1e-3)
    assert out["confirmed_network_alerts"] == 1 and out["classes"]["variable"] == 1


def test_each_bright_sighting_is_traced_to_a_candidate_or_its_absence():
    cands, alerts = _tables()
    out = summarise(cands, alerts, _sightings(), nights=2, hold_max_s=3600.0)
    assert out["bright_sightings"] == 5  # sn-a twice, sn-b, sn-d twice (sn-c too faint)
    assert out["bright_sightings_outcome"] == {
        "candidate: transient": 2,  # sn-a on frames 0 and 1
        "no candidate on the frame": 2,  # sn-b on frame 2, sn-d on frame 5: no candidates
        "no candidate of it (the frame had others)": 1,  # sn-d on frame 4 (a bogus, a variable)
    }
