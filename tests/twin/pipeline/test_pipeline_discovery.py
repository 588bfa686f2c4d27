"""Transients in the loop on a tiny two-site world, with a stage that reports what it is
told: a discovery at one site is confirmed at another, an asteroid is recognised and not
followed, a broker alert is detected from pixels, the m5 baseline stays as it was, and
``candidates.parquet`` holds every candidate with its class and truth."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from models.transient.image import header_wcs
from twin.errors import ConfigError
from twin.ops import records
from twin.ops.run import run_scenario
from twin.pipeline.loop import truth_match
from twin.pipeline.stage import Candidate, StageResult
from twin.reports.run_summary import discovery_lines
from twin.scenario import load_scenario

TINY = """
name: tiny-discovery
start: 2027-03-10
nights: 1
seed: 5
weather: {model: ideal}
sites:
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
  - site: cerro-tololo
    telescopes: [{name: tololo-1m, preset: 1m}]
programmes:
  - name: monitoring
    visits: 2
    cadence_days: 0.1
    plan: [{band: g, exptime_s: 30}, {band: r, exptime_s: 30}]
    targets:
      - {name: F1, ra_deg: 150.0, dec_deg: -30.0}
      - {name: F2, ra_deg: 165.0, dec_deg: -35.0}
alerts:
  rate_per_day: 0
  scheduled:
    - {kind: sn_ia, ra_deg: 158.0, dec_deg: -33.0, issued_after_start_days: 1.01, peak_mag_r: 16.5}
pipeline: {frame_size_pix: 64, processing_s: 10}
"""
SOURCE = (150.0005, -30.0003)  # nobody announced it: 2" from F1's centre
ALERT = (158.0, -33.0)  # the broker's supernova (rendered in its follow-up frames)


class Sky:
    """Reports a real candidate at each position the frame covers (where the frame's *true*
    WCS puts it: the test reads the header's truth cards, a stage never may), moving at
    ``rate_deg_per_day`` in Dec from the first frame on, and one bogus beside the first."""

    name, version, produces_candidates = "fake-transient", "test-1", True

    def __init__(self, positions, rate_deg_per_day: float = 0.0) -> None:
        self.positions = positions
        self.rate = rate_deg_per_day
        self.t0: float | None = None

    def process(self, frame) -> StageResult:
        e = frame.exposure
        mid = 0.5 * (e.mjd_start + e.mjd_end)
        self.t0 = mid if self.t0 is None else self.t0
        header = dict(frame.header)
        header["CRVAL1"], header["CRVAL2"] = header["TRUERA"], header["TRUEDEC"]
        wcs = header_wcs(header)
        n = frame.data_adu.shape[0]
        found = []
        for ra, dec in self.positions:
            dec = dec + self.rate * (mid - self.t0)
            x, y = wcs.all_world2pix([[ra, dec]], 0)[0]
            if 0 <= x < n and 0 <= y < n:
                found.append(Candidate(ra, dec, float(x), float(y), mag=19.0, scorr=12.0,
                                       real_prob=0.95, is_real=True))  # fmt: skip
        if found:
            c = found[0]
            found.append(Candidate(c.ra_deg, c.dec_deg + 0.001, c.x_pix, c.y_pix + 9.0,
                                   scorr=6.0, real_prob=0.1, is_real=False))  # fmt: skip
        return StageResult(self.name, self.version, candidates=tuple(found))


class Silent:
    """A stage with no candidates (as quality): the m5 rule stays."""

    name, version = "silent", "test-1"

    def process(self, frame) -> StageResult:
        return StageResult(self.name, self.version)


def _scenario(tmp: Path, **pipeline):
    path = tmp / "tiny.yaml"
    path.write_text(TINY)
    scenario = load_scenario(path)
    if pipeline:
        spec = scenario.pipeline.model_copy(update=pipeline)
        scenario = scenario.model_copy(update={"pipeline": spec})
    return scenario


def _run(tmp: Path, name: str, stages, **pipeline):
    out = tmp / name
    result = run_scenario(_scenario(tmp, **pipeline), out, "greedy", progress=False,
                          plots=False, stages=stages)  # fmt: skip
    return result, out


def _tables(out: Path) -> dict[str, pd.DataFrame]:
    names = ("candidates", "alerts", "events", "requests")
    return {n: pd.read_parquet(out / f"{n}.parquet") for n in names}


@pytest.fixture(scope="module")
def discovered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("discovery")
    result, out = _run(tmp, "run", [Sky([SOURCE, ALERT])])
    return result, _tables(out)


def test_a_discovery_at_one_site_asks_another_to_confirm_it(discovered):
    _, t = discovered
    alerts = t["alerts"].set_index("alert_id")
    net = alerts[alerts["source"] == "network"]
    assert len(net) == 1
    row = net.iloc[0]
    assert row["detection_method"] == "stage"
    assert (row["ra_deg"], row["dec_deg"]) == SOURCE
    ev = t["events"]
    asked = ev[(ev["kind"] == "confirmation_requested") & (ev["ref"] == net.index[0])]
    assert len(asked) == 1
    others = set(asked.iloc[0]["detail"].split(","))
    assert row["detected_site"] not in others and others == {"cerro-pachon", "cerro-tololo"} - {
        row["detected_site"]
    }
    assert row["confirmed_site"] in others
    assert row["confirmed_mjd"] > row["detected_mjd"] > row["detected_shutter_mjd"]
    requests = t["requests"]
    confirm = requests[requests["request_id"] == f"{net.index[0]}-confirm"].iloc[0]
    assert list(confirm["sites"]) == sorted(others) or set(confirm["sites"]) == others


def test_the_discovery_took_two_frames_and_its_follow_up_frames_are_known(discovered):
    _, t = discovered
    c = t["candidates"]
    net_id = t["alerts"].query("source == 'network'")["alert_id"].iloc[0]
    mine = c[c["alert_id"] == net_id]
    first_two = mine[mine["centre_class"] == "transient"]
    assert len(first_two) == 2 and first_two["obs_id"].nunique() == 2
    assert (first_two["mjd_classified"] == first_two["mjd_received"].max()).all()
    assert set(mine["centre_class"]) == {"transient", "known-alert"}
    assert (c.loc[~c["is_real"], "centre_class"] == "bogus").all()


def test_a_broker_alert_is_detected_from_pixels_and_matched_to_its_truth(discovered):
    _, t = discovered
    broker = t["alerts"].query("source == 'broker'").iloc[0]
    assert broker["detection_method"] == "stage" and math.isfinite(broker["confirmed_mjd"])
    c = t["candidates"]
    seen = c[(c["alert_id"] == broker["alert_id"]) & c["is_real"]]
    assert len(seen) >= 2 and (seen["centre_class"] == "known-alert").all()
    assert (seen["truth_kind"] == "transient").all()
    assert (seen["truth_id"] == broker["alert_id"]).all()
    assert (seen["truth_sep_pix"] < 0.5).all() and seen["truth_mag"].between(14, 22).all()
    # The network's own source is not in the sky's truth (this test's stage made it up).
    assert (c.loc[c["alert_id"].str.startswith("net-"), "truth_kind"] == "").all()


def test_candidates_parquet_has_every_column_and_one_row_per_candidate(discovered):
    result, t = discovered
    out = result.out_dir
    assert pq.read_table(out / "candidates.parquet").schema.names == records.CANDIDATE_SCHEMA.names
    assert len(list((out / "candidates.parquet").glob("part-*.parquet"))) == 2  # one per day
    c = t["candidates"]
    assert set(c["centre_class"]) <= set(records.CANDIDATE_CLASSES)
    assert not c.duplicated(["obs_id", "x_pix", "y_pix", "real_prob"]).any()
    assert (c["mjd_received"] > c["mjd_shutter_close"]).all()
    assert (c["mjd_classified"] >= c["mjd_received"]).all()
    d = result.metrics["run"]["pipeline"]["discovery"]
    assert d["candidates"] == len(c) and d["discoveries"] == 1 and d["confirmed"] == 1
    assert d["false_network_alerts"] == 1  # no truth behind the test's made-up source
    latency = (c["mjd_received"] - c["mjd_shutter_close"]).median() * 86400.0
    assert d["latency_to_centre_median_s"] == pytest.approx(latency)
    assert 10.0 < latency < 60.0  # readout + processing_s 10 s + the link
    lines = discovery_lines(result.metrics)
    assert len(lines) == 3 and "1 network alerts, 1 confirmed" in lines[1]


def test_a_run_with_discoveries_is_the_same_bit_for_bit(tmp_path, discovered):
    _, t = discovered
    _, out = _run(tmp_path, "again", [Sky([SOURCE, ALERT])])
    again = _tables(out)
    for name in ("candidates", "alerts", "events"):
        pd.testing.assert_frame_equal(again[name], t[name])


def test_an_asteroid_is_recognised_by_its_motion_and_not_followed(tmp_path):
    result, out = _run(tmp_path, "asteroid", [Sky([SOURCE], rate_deg_per_day=1.0)])
    t = _tables(out)
    c = t["candidates"]
    real = c[c["is_real"]]
    assert len(real) == 2 and (real["centre_class"] == "asteroid").all()
    ev = t["events"]
    seen = ev[ev["kind"] == "asteroid_recognised"]
    assert len(seen) == 1 and seen.iloc[0]["value"] == pytest.approx(1.0, rel=0.01)
    assert not (t["alerts"]["source"] == "network").any()
    assert not t["requests"]["alert_id"].str.startswith("net-").any()
    assert result.metrics["run"]["pipeline"]["discovery"]["asteroids_recognised"] == 1


def test_a_slow_main_belt_asteroid_moving_inside_the_match_radius_is_recognised(tmp_path):
    """0.4 °/day moves ~1.1″ between the two frames of a visit (~70 s): inside the 2″
    alert match radius, outside the 0.8″ stationary radius."""
    _, out = _run(tmp_path, "slow", [Sky([SOURCE], rate_deg_per_day=0.4)])
    t = _tables(out)
    real = t["candidates"][t["candidates"]["is_real"]]
    first = real.sort_values("mjd_shutter_close").iloc[:2]
    assert (first["centre_class"] == "asteroid").all()
    moved = (
        math.hypot(
            (first["ra_deg"].iloc[1] - first["ra_deg"].iloc[0]) * math.cos(math.radians(-30)),
            first["dec_deg"].iloc[1] - first["dec_deg"].iloc[0],
        )
        * 3600.0
    )
    assert 0.8 < moved < 2.0
    assert not (t["alerts"]["source"] == "network").any()


def test_a_real_candidate_below_the_alert_grade_is_weak_and_never_raised(tmp_path):
    class Weak(Sky):
        def process(self, frame):
            result = super().process(frame)
            weak = tuple(replace(c, alert_grade=False) for c in result.candidates)
            return StageResult(self.name, self.version, candidates=weak)

    _, out = _run(tmp_path, "weak", [Weak([SOURCE])])
    t = _tables(out)
    real = t["candidates"][t["candidates"]["is_real"]]
    assert len(real) >= 2 and (real["centre_class"] == "weak").all()
    assert not (t["alerts"]["source"] == "network").any()


def test_a_frame_that_could_not_be_searched_does_not_refute_a_held_candidate(tmp_path):
    """The second frame was not differenced (``searched`` False): the candidate stays held
    until its hold expires instead of being called single by that frame."""

    class Blind(Sky):
        calls = 0

        def process(self, frame):
            result = super().process(frame)
            Blind.calls += 1
            if Blind.calls == 1:
                return result
            self.positions = []
            return StageResult(self.name, self.version, searched=False)

    _, out = _run(tmp_path, "blind", [Blind([SOURCE])])
    c = _tables(out)["candidates"]
    real = c[c["is_real"]]
    assert list(real["centre_class"]) == ["single"]
    held_s = (real["mjd_classified"] - real["mjd_received"]).iloc[0] * 86400.0
    assert held_s == pytest.approx(3600.0, abs=1.0)  # decided by hold_max_s, not frame 2


def test_a_lone_candidate_without_a_second_frame_is_not_raised(tmp_path):
    """Only the first frame of the field reports it: held, then ``single``."""

    class Once(Sky):
        def process(self, frame):
            result = super().process(frame)
            self.positions = []  # nothing after the first frame
            return result

    _, out = _run(tmp_path, "single", [Once([SOURCE])])
    t = _tables(out)
    real = t["candidates"][t["candidates"]["is_real"]]
    assert list(real["centre_class"]) == ["single"]
    assert not (t["alerts"]["source"] == "network").any()


def test_a_candidate_on_a_catalogue_star_is_a_variable_and_not_raised(tmp_path):
    """The stage's ``star_dist_pix`` puts it on a star: recorded ``variable``, no alert;
    with the rule off (radius 0) the same candidates become a network alert."""

    class OnStar(Sky):
        def process(self, frame):
            result = super().process(frame)
            on_star = tuple(replace(c, features={"star_dist_pix": 0.4}) for c in result.candidates)
            return StageResult(self.name, self.version, candidates=on_star)

    _, out = _run(tmp_path, "variable", [OnStar([SOURCE])])
    t = _tables(out)
    real = t["candidates"][t["candidates"]["is_real"]]
    assert len(real) >= 2 and (real["centre_class"] == "variable").all()
    assert not (t["alerts"]["source"] == "network").any()
    spec = _scenario(tmp_path).pipeline.discovery.model_copy(update={"known_star_radius_pix": 0})
    _, out = _run(tmp_path, "variable-off", [OnStar([SOURCE])], discovery=spec)
    assert (_tables(out)["alerts"]["source"] == "network").sum() == 1


def test_the_m5_baseline_is_unchanged_without_a_candidate_stage(tmp_path):
    plain = run_scenario(_scenario(tmp_path), tmp_path / "plain", "greedy", progress=False,
                         plots=False)  # fmt: skip
    result, out = _run(tmp_path, "silent", [Silent()])
    assert result.metrics["run"]["pipeline"]["detection"] == "m5"
    assert not (out / "candidates.parquet").exists()
    before = pd.read_parquet(plain.out_dir / "alerts.parquet")
    after = pd.read_parquet(out / "alerts.parquet")
    pd.testing.assert_frame_equal(after[list(before.columns)], before)
    assert math.isfinite(before["detected_mjd"].iloc[0])  # the threshold did detect it
    assert (after["detection_method"] == "m5").all() and (after["source"] == "broker").all()


def test_the_m5_baseline_can_run_beside_a_candidate_stage(tmp_path):
    result, out = _run(tmp_path, "m5", [Sky([SOURCE, ALERT])], detection="m5")
    t = _tables(out)
    assert result.metrics["run"]["pipeline"]["detection"] == "m5"
    assert not (t["alerts"]["source"] == "network").any()  # candidates recorded, not acted on
    assert (t["alerts"]["detection_method"] == "m5").all()
    assert "transient" in set(t["candidates"]["centre_class"])


def test_stage_detection_needs_a_stage_that_finds_candidates(tmp_path):
    with pytest.raises(ConfigError, match="needs a stage that finds candidates"):
        _run(tmp_path, "bad", [Silent()], detection="stage")


def test_truth_match_takes_the_nearest_non_static_source_and_the_population_ids():
    truth = pd.DataFrame({
        "type": ["star", "transient", "transient", "galaxy"],
        "x_pix": [10.0, 10.5, 30.0, 10.2], "y_pix": [10.0, 10.0, 30.0, 10.1],
        "mag": [15.0, 19.5, 20.0, 18.0], "alert_id": ["", "", "", ""],
        "source_id": [1, 2, 3, 4],
        "pop_kind": [None, "sn_ia", "asteroid", None], "pop_id": [None, "pop-7", "pop-9", None],
    })  # fmt: skip
    kind, ident, mag, sep = truth_match(truth, 10.0, 10.0)
    assert (kind, ident, mag) == ("sn_ia", "pop-7", 19.5) and sep == pytest.approx(0.5)
    assert truth_match(truth, 20.0, 20.0)[0] == ""  # nothing within 2 px
    legacy = truth.drop(columns=["pop_kind", "pop_id"]).assign(alert_id=["", "AT-1", "", ""])
    assert truth_match(legacy, 10.0, 10.0)[:2] == ("transient", "AT-1")
    assert np.isnan(truth_match(legacy.iloc[:0], 1.0, 1.0)[2])
