"""Run plots: each is written, non-trivial, and long runs are cut down to something readable."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twin.ops.records import NIGHT_SCHEMA, OBSERVATION_SCHEMA, TIMELINE_SCHEMA
from twin.reports.run_metrics import records_frame
from twin.reports.run_plots import (
    _mollweide_x,
    make_run_plots,
    open_fraction_per_night,
    plot_site_weather,
    plot_sky_map,
    plot_timeline,
)

T0 = 60000.0
SITES = {"A": ("t1", 0.0), "B": ("t2", 0.3)}  # telescope, night start offset (days)
STATES = ["science", "readout", "slew", "science", "weather", "idle"]


def _tables(n_nights):
    timeline, nights, obs, weather = [], [], [], []
    for site, (tel, offset) in SITES.items():
        for night in range(n_nights):
            start = T0 + night + offset
            edges = start + np.linspace(0.0, 0.4, len(STATES) + 1)
            nights.append(
                dict(site=site, night=night, mjd_start=start, mjd_end=start + 0.4, hours=9.6)
            )
            timeline += [
                dict(telescope=tel, site=site, night=night, state=s, mjd_start=a, mjd_end=b)
                for s, a, b in zip(STATES, edges[:-1], edges[1:], strict=True)
            ]
            obs += [
                dict(
                    obs_id=len(obs) + k,
                    site=site,
                    telescope=tel,
                    night=night,
                    mjd_start=start + 0.01 * k,
                    mjd_end=start + 0.01 * k + 0.001,
                    ra_deg=40.0 * k,
                    dec_deg=-60.0 + 10 * k,
                    alert_id="al" if k == 2 else "",
                )
                for k in range(6)
            ]
        mjd = T0 + np.arange(n_nights * 144) / 144.0
        weather.append(
            pd.DataFrame(
                dict(
                    mjd=mjd,
                    site=site,
                    cloud_cover=0.5 + 0.5 * np.sin(mjd * 3),
                    transparency=0.8,
                    seeing_fwhm_arcsec=1.0 + 0.3 * np.cos(mjd * 5),
                    humidity_pct=40.0,
                    wind_m_s=5.0,
                    temperature_c=10.0,
                    dome_closed=np.sin(mjd * 3) > 0.6,
                )
            )
        )
    return (
        records_frame(TIMELINE_SCHEMA, timeline),
        records_frame(OBSERVATION_SCHEMA, obs),
        records_frame(NIGHT_SCHEMA, nights),
        pd.concat(weather, ignore_index=True),
    )


def test_timeline_plot_is_written(tmp_path):
    timeline, obs, _, _ = _tables(2)
    path = plot_timeline(timeline, obs, tmp_path / "timeline.png")
    assert path.stat().st_size > 10_000


@pytest.mark.parametrize("n_nights", [2, 30])
def test_site_weather_plot_raw_and_nightly(tmp_path, n_nights):
    timeline, _, nights, weather = _tables(n_nights)
    path = plot_site_weather(weather, timeline, nights, tmp_path / "weather.png")
    assert path.stat().st_size > 20_000


def test_long_run_timeline_shows_only_the_first_nights(tmp_path):
    timeline, obs, _, _ = _tables(30)
    long = plot_timeline(timeline, obs, tmp_path / "long.png", max_nights=3)
    short = plot_timeline(timeline[timeline["night"] < 3], obs, tmp_path / "short.png")
    assert abs(long.stat().st_size - short.stat().st_size) < 0.05 * short.stat().st_size


def test_sky_map_is_written_and_ra_grows_to_the_left(tmp_path):
    _, obs, _, _ = _tables(1)
    assert plot_sky_map(obs, tmp_path / "sky.png").stat().st_size > 20_000
    x = _mollweide_x(np.array([0.0, 90.0, 179.0, 181.0, 270.0]))
    assert x[0] == 0.0 and x[1] < 0 and x[2] < x[1] and x[3] > 0 and x[4] > 0


def test_open_fraction_per_night():
    timeline, _, _, _ = _tables(2)
    frac = open_fraction_per_night(timeline)
    assert len(frac) == 4 and np.allclose(frac["open_fraction"], 2 / 6)


def test_make_run_plots_writes_into_plots_dir(tmp_path):
    timeline, obs, nights, weather = _tables(2)
    for name, frame, schema in [
        ("timeline", timeline, TIMELINE_SCHEMA),
        ("observations", obs, OBSERVATION_SCHEMA),
        ("nights", nights, NIGHT_SCHEMA),
    ]:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        pq.write_table(table, tmp_path / f"{name}.parquet")
    weather.to_parquet(tmp_path / "weather.parquet")
    paths = make_run_plots(tmp_path)
    assert [p.name for p in paths] == ["timeline.png", "site_weather.png", "sky_map.png"]
    assert all(p.parent == tmp_path / "plots" and p.stat().st_size > 10_000 for p in paths)
