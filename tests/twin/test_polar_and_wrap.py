"""Valid but unusual input, end to end: a site given at lon 350, a polar site, no failures.

Each runs a real (short) scenario through :func:`twin.scenario.load_scenario` and
:func:`twin.ops.run.run_scenario`, so it checks what a user would see, not one function.
"""

from pathlib import Path

import pandas as pd

from twin.ops.run import run_scenario
from twin.ops.world import World
from twin.scenario import Scenario, load_scenario

CLIMATE = (
    "{clear_fraction_by_month: [0.7,0.7,0.7,0.7,0.7,0.7,0.7,0.7,0.7,0.7,0.7,0.7],"
    " seeing_median_arcsec: 1.0, humidity_median_pct: 40, wind_median_m_s: 5,"
    " temperature_mean_c: 10}"
)
# Dome C, Antarctic plateau (Concordia station). Climate: median seeing 1.3" from the
# ground (Aristidi et al. 2009, A&A 499, 955), annual mean -51 C, seasonal swing ~+-17 C,
# median wind ~3 m/s (Aristidi et al. 2005, A&A 430, 739); clear ~0.7-0.9 of the time.
DOME_C = (
    "{name: dome-c, lat_deg: -75.1, lon_deg: 123.35, height_m: 3233, timezone: UTC,"
    " climate: {clear_fraction_by_month: [0.8,0.8,0.8,0.8,0.85,0.85,0.85,0.85,0.8,0.8,0.8,0.8],"
    " seeing_median_arcsec: 1.3, seeing_sigma_ln: 0.5, humidity_median_pct: 70,"
    " wind_median_m_s: 2.9, temperature_mean_c: -51, temperature_seasonal_amplitude_c: 17,"
    " temperature_diurnal_amplitude_c: 3}}"
)
TABLES = ("observations", "events", "timeline", "nights")
SINGLE_SITE = Path(__file__).parents[2] / "scenarios" / "single-site.yaml"
FAILING_SEED = 19  # single-site from 2027-03-01: a mount fails on the first night


def _scenario(tmp_path: Path, site: str, start: str, name: str, seed: int = 3) -> Scenario:
    text = f"""
name: {name}
start: {start}
nights: 1
seed: {seed}
sites:
  - custom: {site}
    telescopes: [{{name: a, preset: 1m}}]
programmes:
  - name: survey
    share: 1.0
    survey: {{ra_min_deg: 0, ra_max_deg: 360, dec_min_deg: -60, dec_max_deg: 20, fov_deg: 1.0}}
    plan: [{{band: r, exptime_s: 60}}]
    cadence_days: 1
    visits: 0
"""
    path = tmp_path / f"{name}.yaml"
    path.write_text(text)
    return load_scenario(path)


def _custom(lon_deg: float) -> str:
    return (
        f"{{name: x, lat_deg: 28.0, lon_deg: {lon_deg}, height_m: 2000, timezone: UTC,"
        f" climate: {CLIMATE}}}"
    )


def _tables(run_dir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_parquet(run_dir / f"{name}.parquet") for name in TABLES}


def _run(scenario: Scenario, out_dir: Path) -> dict[str, pd.DataFrame]:
    return _tables(run_scenario(scenario, out_dir, progress=False, plots=False).out_dir)


def test_a_site_at_lon_350_is_the_site_at_minus_10(tmp_path):
    east = _scenario(tmp_path, _custom(350), "2027-03-10", name="east")
    west = _scenario(tmp_path, _custom(-10), "2027-03-10", name="west")
    assert east.network[0].lon_deg == -10.0
    nights_east, nights_west = World(east).sites[0].nights, World(west).sites[0].nights
    assert nights_east == nights_west
    assert nights_east[0].start_mjd > east.start_mjd + 0.5  # the evening of the 10th
    # What the wrap protects: unwrapped, local noon would fall 350/360 of a day early.
    from twin.astro.almanac import local_noon_mjd

    noon = local_noon_mjd(east.network[0], east.start_mjd)
    assert noon == local_noon_mjd(west.network[0], west.start_mjd)
    assert abs(noon - (east.start_mjd + 0.5 - 350.0 / 360.0)) > 0.5
    a, b = _run(east, tmp_path / "east"), _run(west, tmp_path / "west")
    assert len(a["observations"]) > 0
    for name in TABLES:
        pd.testing.assert_frame_equal(a[name], b[name], check_exact=True, obj=name)


def test_dome_c_validates_and_observes_in_the_polar_night(tmp_path):
    scenario = _scenario(tmp_path, DOME_C, "2027-06-21", name="domec")
    site = scenario.network[0]
    assert site.climate.temperature_mean_c == -51.0
    tables = _run(scenario, tmp_path / "run")
    (night,) = tables["nights"].itertuples()
    assert night.hours > 17.0  # midwinter at 75 S: dark but for a noon twilight
    assert len(tables["observations"]) > 0
    weather = pd.read_parquet(tmp_path / "run" / "weather.parquet")
    assert -85.0 < weather["temperature_c"].median() < -50.0  # winter at Dome C: ~-65 C


def _no_failures(tmp_path: Path, nights: int) -> Scenario:
    """The scenario with failures switched off by its ``equipment:`` block."""
    path = tmp_path / "no-failures.yaml"
    path.write_text(SINGLE_SITE.read_text() + "\nequipment: {failures_enabled: false}\n")
    return load_scenario(path, start="2027-03-01", nights=nights, seed=FAILING_SEED)


def test_failures_switched_off_leave_no_failure_or_repair(tmp_path):
    scenario = load_scenario(SINGLE_SITE, start="2027-03-01", nights=3, seed=FAILING_SEED)
    default = _run(scenario, tmp_path / "on")
    assert {"failure", "repair"} <= set(default["events"]["kind"])  # else pick another seed
    assert "failure" in set(default["timeline"]["state"])
    off_scenario = _no_failures(tmp_path, nights=3)
    world = World(off_scenario)
    assert all(t.equipment.failures.events() == [] for t in world.telescopes)
    off = _run(off_scenario, tmp_path / "off")
    assert not {"failure", "repair"} & set(off["events"]["kind"])
    assert "failure" not in set(off["timeline"]["state"])
    assert len(off["observations"]) > len(default["observations"])
    # The rest of the world is the same: nights, weather, alerts, links.
    pd.testing.assert_frame_equal(default["nights"], off["nights"])
    same = ("dome_close", "dome_open", "alert_issued", "link_down", "link_up")

    def kept(events: pd.DataFrame) -> pd.DataFrame:
        return events[events["kind"].isin(same)].reset_index(drop=True)

    pd.testing.assert_frame_equal(kept(default["events"]), kept(off["events"]))
