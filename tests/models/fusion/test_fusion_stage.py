"""The ``fusion`` stage in the loop: frames cross the links, the centre fuses each group.

A tiny two-site world (Siding Spring and Cerro Pachon watch the Galactic Centre, whose
128² frames hold enough stars to register) gives one group: one product in ``fused/``,
one ``fusion.parquet`` row whose ``fused_mjd`` is the last input's arrival over its
site's uplink, the same product ``skytwin fuse`` makes after the run. An outage on one
link delays the product; the fusion stage does not change the rest of the run; a bad
method is refused before anything is written.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from twin.errors import ConfigError
from twin.ops import run as run_module
from twin.ops.links import DataUplink, Link
from twin.ops.run import run_scenario
from twin.ops.world import World
from twin.pipeline.registry import resolve_stages
from twin.pipeline.stage import Frame, StageResult
from twin.programme.requests import MAX_EXPTIME_S
from twin.scenario import load_scenario

S_PER_DAY = 86400.0
TWO_SITES = """
name: tiny-fusion
start: 2027-06-01
nights: 1
seed: 3
sites:
  - site: siding-spring
    telescopes: [{name: siding-spring-1m, preset: 1m}]
  - site: cerro-pachon
    telescopes: [{name: pachon-1m, preset: 1m}]
weather: {model: ideal}
programmes:
  - name: monitor
    share: 1.0
    cadence_days: 0.25
    visits: 0
    plan: [{band: r, exptime_s: 30}]
    constraints: {max_airmass: 1.5}
    targets:
      - {name: Galactic Centre, ra_deg: 266.417, dec_deg: -29.008}
links:
  default: {latency_ms: 150, bandwidth_mbit_s: 50, mtbf_h: 100000, mttr_h: 1}
pipeline: {frame_size_pix: 128, processing_s: 5, fusion: {method: proper}}
operations: {policy: greedy}
"""


class Seeing:
    """A site stage that measures a fixed seeing (ranks frames for ``max_frames``)."""

    name, version = "seeing", "test-1"

    def process(self, frame: Frame) -> StageResult:
        return StageResult(self.name, self.version, score=90.0, seeing_arcsec=1.0)


def _scenario(tmp_path: Path, text: str = TWO_SITES):
    path = tmp_path / "tiny-fusion.yaml"
    path.write_text(text)
    return load_scenario(path)


def _run(tmp_path: Path, stages: list, name: str = "run", monkeypatch=None, outage=None):
    """A run of the tiny world; ``outage`` = (site, start_mjd, end_mjd) on its link."""
    scenario = _scenario(tmp_path)
    if outage is not None:
        site, start, end = outage

        def world_with_outage(sc):
            world = World(sc)
            for sw in world.sites:
                if sw.site.name == site:
                    sw.link = Link.from_outages(site, sw.link.spec, [(start, end)],
                                                sw.link.start_mjd, sw.link.end_mjd)  # fmt: skip
                    sw.uplink = DataUplink(sw.link)
            return world

        monkeypatch.setattr(run_module, "World", world_with_outage)
    out = tmp_path / name
    run_scenario(scenario, out, "greedy", progress=False, plots=False, stages=stages)
    return out


def _frame_arrivals(scenario, obs: pd.DataFrame) -> dict[int, float]:
    """Each frame's arrival at the centre, replayed on a fresh uplink per site: the full
    detector frame queued when its readout ended, in order, at the link's bandwidth."""
    world = World(scenario)
    out = {}
    for sw in world.sites:
        uplink = DataUplink(sw.link)
        tel = next(t for t in world.telescopes if t.site is sw)
        mine = obs[obs["site"] == sw.site.name].sort_values("mjd_end")
        for row in mine.itertuples():
            sent = row.mjd_end + tel.telescope.readout_s / S_PER_DAY
            out[int(row.obs_id)] = uplink.send(sent, tel.frame_bytes)
    return out


@pytest.fixture(scope="module")
def fused(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fusion")
    stages = [Seeing(), *resolve_stages(["fusion"])]  # the stage through its entry point
    out = _run(tmp, stages)
    return tmp, out


def test_one_group_seen_by_two_sites_gives_one_product_after_its_frames_arrived(fused):
    tmp, out = fused
    table = pd.read_parquet(out / "fusion.parquet")
    assert len(table) == 1
    row = table.iloc[0]
    assert row["status"] == "fused" and row["method"] == "proper"
    assert row["target_id"] == "Galactic Centre" and row["band"] == "r"
    assert row["sites"] == "cerro-pachon,siding-spring"
    assert sorted(p.name for p in (out / "fused").iterdir()) == ["Galactic-Centre_r_0.fits"]
    obs = pd.read_parquet(out / "observations.parquet")
    arrivals = _frame_arrivals(_scenario(tmp), obs)
    inputs = list(row["obs_ids"])
    assert set(obs.set_index("obs_id").loc[inputs, "site"]) == {"cerro-pachon", "siding-spring"}
    # The centre could fuse when the last input's bytes had crossed its link, not before.
    assert row["fused_mjd"] == max(arrivals[i] for i in inputs)
    assert all(row["fused_mjd"] >= arrivals[i] for i in inputs)
    assert row["delay_s"] == pytest.approx((row["fused_mjd"] - row["last_shutter_close_mjd"])
                                           * S_PER_DAY)  # fmt: skip
    # The window closed 24 h after its first frame began, plus the longest exposure, or
    # with the run.
    end_mjd = World(_scenario(tmp)).end_mjd
    close = row["window_start_mjd"] + 1.0 + MAX_EXPTIME_S / S_PER_DAY
    assert row["closed_mjd"] == pytest.approx(min(close, end_mjd), abs=1e-5)
    assert row["depth_gain_mag"] > 0.0 and row["m5"] > row["m5_best_input"]
    with fits.open(out / row["product"]) as hdul:
        assert [h.name for h in hdul] == ["PRIMARY", "VARIANCE", "MASK", "COVERAGE", "PSF",
                                          "INPUTS"]  # fmt: skip
        assert WCS(hdul[0].header).has_celestial and hdul[0].header["METHOD"] == "proper"
        assert hdul[0].data.shape == (128, 128)
    summary = json.loads((out / "metrics.json").read_text())
    fusion = summary["run"]["pipeline"]["fusion"]
    assert fusion["products"] == 1 and fusion["fields"] == 1
    assert fusion["delay_median_s"] == pytest.approx(row["delay_s"])
    events = pd.read_parquet(out / "events.parquet")
    assert (events["kind"] == "fused_product").sum() == 1


def test_skytwin_fuse_after_the_run_makes_the_same_group_and_product(fused):
    """The same group and pixels, written beside the loop's record, which stays as it was."""
    from models.fusion.run import fuse_run

    tmp, out = fused
    loop = pd.read_parquet(out / "fusion.parquet")
    copy = tmp / "after"
    shutil.copytree(out, copy)
    after = fuse_run(copy, size=128, progress=False)
    assert len(after) == len(loop) == 1
    assert list(after["obs_ids"][0]) == list(loop["obs_ids"][0])
    assert after["product"][0] == loop["product"][0].replace("fused/", "fused-after/")
    pd.testing.assert_frame_equal(pd.read_parquet(copy / "fusion.parquet"), loop)
    assert len(pd.read_parquet(copy / "fusion-after.parquet")) == 1
    assert after["depth_gain_mag"][0] == loop["depth_gain_mag"][0]
    with fits.open(out / loop["product"][0]) as a, fits.open(copy / after["product"][0]) as b:
        assert (a[0].data == b[0].data).all()


def test_a_link_outage_delays_the_product(fused, tmp_path, monkeypatch):
    _, out = fused
    row = pd.read_parquet(out / "fusion.parquet").iloc[0]
    obs = pd.read_parquet(out / "observations.parquet").set_index("obs_id")
    last = obs.loc[list(row["obs_ids"])].sort_values("mjd_end").iloc[-1]
    start, end = last["mjd_end"] - 60.0 / S_PER_DAY, last["mjd_end"] + 2.0 / 24.0
    late = _run(tmp_path, [Seeing(), *resolve_stages(["fusion"])], "late", monkeypatch,
                (last["site"], start, end))  # fmt: skip
    delayed = pd.read_parquet(late / "fusion.parquet").iloc[0]
    assert delayed["status"] == "fused"
    assert delayed["fused_mjd"] >= end > row["fused_mjd"]
    assert delayed["delay_s"] > row["delay_s"] + 1.9 * 3600.0


def test_without_the_fusion_stage_the_run_is_unchanged(fused, tmp_path):
    _, out = fused
    plain = _run(tmp_path, [Seeing()], "plain")
    assert not (plain / "fusion.parquet").exists() and not (plain / "fused").exists()
    for name in ("observations", "timeline"):
        pd.testing.assert_frame_equal(pd.read_parquet(plain / f"{name}.parquet"),
                                      pd.read_parquet(out / f"{name}.parquet"))  # fmt: skip
    events = pd.read_parquet(out / "events.parquet")
    events = events[events["kind"] != "fused_product"].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_parquet(plain / "events.parquet"), events)
    seeing = pd.read_parquet(out / "pipeline.parquet")
    seeing = seeing[seeing["stage"] == "seeing"].reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.read_parquet(plain / "pipeline.parquet"), seeing)


def test_a_bad_fusion_method_is_a_clear_error_naming_the_field(tmp_path):
    text = TWO_SITES.replace("fusion: {method: proper}", "fusion: {method: median}")
    with pytest.raises(ConfigError) as err:
        _scenario(tmp_path, text)
    message = str(err.value)
    assert "pipeline.fusion.method" in message and "median" in message
    for allowed in ("ivw", "psf-matched", "proper", "learned"):
        assert allowed in message


def test_learned_without_its_weights_is_refused_before_the_run(tmp_path, monkeypatch):
    pytest.importorskip("torch")
    from models.fusion import learned

    monkeypatch.setattr(learned, "WEIGHTS_DIR", tmp_path / "no-weights")
    scenario = _scenario(tmp_path, TWO_SITES.replace("method: proper", "method: learned"))
    with pytest.raises(ConfigError, match=r"pipeline\.fusion.*method.*weights"):
        run_scenario(scenario, tmp_path / "run", "greedy", progress=False, plots=False,
                     stages=resolve_stages(["fusion"]))  # fmt: skip
    assert not (tmp_path / "run").exists()  # refused before the run directory was made


def test_a_frame_without_stars_is_left_out_not_a_crash():
    """No detection: the empty source table still has its columns after the clean cut,
    so registration says "needs 3 stars" (a frame left out of a group), not KeyError."""
    from models.transient.stars import _empty

    sources = _empty()
    assert "flux_e" in sources[sources["clean"]].columns
