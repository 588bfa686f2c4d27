"""Run plots: each is written, non-trivial, long runs are cut down to something readable,
and a run directory is read in batches, only the columns drawn, with no figure left over."""

import gc

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

import twin.reports.run_plots as run_plots
from twin.ops.records import NIGHT_SCHEMA, OBSERVATION_SCHEMA, TIMELINE_SCHEMA
from twin.reports.plot_data import (
    alert_followups,
    first_nights,
    nightly_weather,
    sky_counts,
)
from twin.reports.run_metrics import records_frame
from twin.reports.run_plots import (
    _figure,
    _mollweide_x,
    make_run_plots,
    open_fraction_per_night,
    plot_site_weather,
    plot_sky_map,
    plot_timeline,
    sky_map_title,
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


def _batches(frame, n_rows, reverse=False):
    """``frame`` as batches of ``n_rows`` (index from 0, as ``iter_frames`` gives them)."""
    parts = [
        frame.iloc[i : i + n_rows].reset_index(drop=True) for i in range(0, len(frame), n_rows)
    ]
    return parts[::-1] if reverse else parts


def _write_run(run_dir, n_nights, day_parts=False):
    """A run directory of ``_tables``; streamed tables as day-part directories if asked."""
    timeline, obs, nights, weather = _tables(n_nights)
    for name, frame, schema in [
        ("timeline", timeline, TIMELINE_SCHEMA),
        ("observations", obs, OBSERVATION_SCHEMA),
        ("nights", nights, NIGHT_SCHEMA),
    ]:
        table = pa.Table.from_pandas(frame, schema=schema, preserve_index=False)
        if day_parts and name != "nights":
            (run_dir / f"{name}.parquet").mkdir()
            for night in range(n_nights):
                part = table.filter(pc.equal(table["night"], night))
                pq.write_table(part, run_dir / f"{name}.parquet" / f"part-{night:05d}.parquet")
        else:
            pq.write_table(table, run_dir / f"{name}.parquet")
    weather.to_parquet(run_dir / "weather.parquet")


def test_make_run_plots_writes_into_plots_dir(tmp_path):
    _write_run(tmp_path, 2)
    paths = make_run_plots(tmp_path)
    assert [p.name for p in paths] == ["timeline.png", "site_weather.png", "sky_map.png"]
    assert all(p.parent == tmp_path / "plots" and p.stat().st_size > 10_000 for p in paths)


def test_make_run_plots_streams_only_the_columns_drawn(tmp_path, monkeypatch):
    """Day parts, read in batches: only the small nights table is read whole, and no
    plot asks for the observation columns it does not draw."""
    _write_run(tmp_path, 20, day_parts=True)
    whole, streamed = [], []

    def read_table(run_dir, name, columns=None):
        whole.append(name)
        return run_plots_read_table(run_dir, name, columns)

    def iter_frames(run_dir, name, columns, batch_rows=None):
        streamed.append((name, tuple(columns)))
        return run_plots_iter_frames(run_dir, name, columns, batch_rows=7)

    run_plots_read_table, run_plots_iter_frames = run_plots.read_table, run_plots.iter_frames
    monkeypatch.setattr(run_plots, "read_table", read_table)
    monkeypatch.setattr(run_plots, "iter_frames", iter_frames)
    paths = make_run_plots(tmp_path)
    assert len(paths) == 3 and all(p.stat().st_size > 10_000 for p in paths)
    assert whole == ["nights"]
    obs_columns = {c for name, cols in streamed if name == "observations" for c in cols}
    assert obs_columns == {
        "telescope",
        "night",
        "alert_id",
        "mjd_start",
        "site",
        "ra_deg",
        "dec_deg",
    }


def test_batched_aggregates_equal_the_whole_table():
    timeline, _, nights, weather = _tables(20)
    whole = open_fraction_per_night(timeline)
    streamed = open_fraction_per_night(_batches(timeline, 7, reverse=True))
    pd.testing.assert_frame_equal(streamed, whole)

    head, n_all = first_nights(_batches(timeline, 5, reverse=True), 3)
    assert n_all == 20 and sorted(head["night"].unique()) == [0, 1, 2]
    assert len(head) == (timeline["night"] < 3).sum()

    per = nightly_weather(weather, nights)
    pd.testing.assert_frame_equal(nightly_weather(_batches(weather, 333), nights), per)
    assert len(per) == len(nights) and per["closed"].between(0, 1).all()
    # by hand, one night: the samples inside it, their means
    night = nights.iloc[3]
    inside = weather[
        (weather["site"] == night["site"])
        & (weather["mjd"] >= night["mjd_start"])
        & (weather["mjd"] < night["mjd_end"])
    ]
    row = per[(per["site"] == night["site"]) & (per["night"] == night["night"])].iloc[0]
    assert row["cloud"] == pytest.approx(inside["cloud_cover"].mean())
    assert row["seeing"] == pytest.approx(inside["seeing_fwhm_arcsec"].mean())
    assert row["closed"] == pytest.approx(inside["dome_closed"].mean())


def test_sky_counts_and_followups_in_batches():
    _, obs, _, _ = _tables(4)
    counts, alerts, n = sky_counts(_batches(obs, 5))
    assert n == len(obs) and counts["n"].sum() == len(obs)
    # each site looked at 6 targets, every night
    assert len(counts) == 2 * 6 and (counts["n"] == 4).all()
    assert len(alerts) == 1  # one alert target (k == 2), seen from both sites
    follow, any_alert = alert_followups(_batches(obs, 5), nights=[0, 1])
    assert any_alert and len(follow) == 2 * 2  # one follow-up per site and night


def test_sky_map_counts_cells_beyond_max_pairs_and_says_so(tmp_path):
    _, obs, _, _ = _tables(2)
    marked = plot_sky_map(obs, tmp_path / "marked.png")
    cells = plot_sky_map(obs, tmp_path / "cells.png", max_pairs=5)
    assert cells.stat().st_size > 20_000 and cells.read_bytes() != marked.read_bytes()
    assert "per 5°×5° cell" in sky_map_title(24, 12, max_pairs=5)
    assert sky_map_title(24, 12, max_pairs=12) == "24 exposures of 12 site-target pairs"


def test_figures_are_taken_apart_once_saved(tmp_path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    with _figure(4, 3) as fig:
        fig.add_subplot().plot([0, 1])
    assert not fig.axes and not isinstance(fig.canvas, FigureCanvasAgg)

    def live_figures():
        gc.collect()
        return sum(isinstance(o, Figure) for o in gc.get_objects())

    before = live_figures()
    _write_run(tmp_path, 2)
    make_run_plots(tmp_path)
    assert live_figures() == before  # nothing (no pyplot registry) keeps a figure alive
