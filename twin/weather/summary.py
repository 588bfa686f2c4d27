"""Check a weather run against its climate, plot it, and save its traces.

The stochastic model is only useful if it reproduces what each site is known for, so a
run's first product is a table of configured versus measured figures: clear fraction
(over night samples when a night mask is given: the Climate clear fraction is a night
statistic), median seeing, mean humidity, wind and temperature, and the fraction of time
the dome is closed. The configured clear fraction is averaged over the calendar months
of the samples used, so a run of a few winter weeks is compared with winter.

The plot is meant to be read at a glance for 1 to 10 sites and 1 to 365 days: one row per
site, beyond two weeks nightly means (local solar night 20 h to 4 h, from the site
longitude) instead of every sample. It uses matplotlib's object API with the Agg canvas,
so it never touches the caller's pyplot state or backend.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from twin.errors import ConfigError
from twin.weather.dome import DomeRules, dome_closure
from twin.weather.state import CLEAR_CLOUD_COVER_MAX, WeatherSource
from twin.weather.timebase import calendar_month, local_solar_hour
from twin.world.sites import SITES, Site

NightMask = Callable[[Site, np.ndarray], np.ndarray]
NIGHTLY_MEANS_AFTER_DAYS = 14.0
TRACE_FORMATS = ("parquet", "csv")


def climate_summary(
    weather: WeatherSource,
    sites: Sequence[Site],
    night_mask: NightMask | None = None,
    mjd: np.ndarray | None = None,
    dome_rules: DomeRules | None = None,
) -> pd.DataFrame:
    """One row per site: configured vs measured climate over ``mjd`` (default: the
    source's own times). With ``night_mask(site, mjd) -> bool``, every statistic uses
    the night samples only; the dome state is still run over all samples."""
    rows = []
    for site in sites:
        times = _times(weather, site.name, mjd)
        samples = weather.sample(site.name, times)
        closed = dome_closure(times, samples, dome_rules)[0]
        keep = _selection(night_mask, site, times)
        kept = {name: values[keep] for name, values in samples.items()}
        rows.append(_summary_row(site, times[keep], kept, closed[keep]))
    return pd.DataFrame(rows)


def _selection(night_mask: NightMask | None, site: Site, mjd: np.ndarray) -> np.ndarray:
    if night_mask is None:
        return np.ones(mjd.size, dtype=bool)
    return np.asarray(night_mask(site, mjd), dtype=bool)


def _times(weather: WeatherSource, site_name: str, mjd: np.ndarray | None) -> np.ndarray:
    if mjd is not None:
        return np.asarray(mjd, dtype=float)
    times_mjd = getattr(weather, "times_mjd", None)
    if times_mjd is None:
        raise ConfigError(
            "climate_summary", "mjd", "this weather source has no times of its own; pass mjd="
        )
    return np.asarray(times_mjd(site_name), dtype=float)


def _summary_row(
    site: Site, mjd: np.ndarray, samples: dict[str, np.ndarray], closed: np.ndarray
) -> dict[str, object]:
    climate = site.climate
    monthly = np.asarray(climate.clear_fraction_by_month)
    configured = float(monthly[calendar_month(mjd) - 1].mean()) if mjd.size else np.nan
    return {
        "site": site.name,
        "n_samples": int(mjd.size),
        "clear_fraction_configured": configured,
        "clear_fraction_measured": float(np.mean(samples["cloud_cover"] < CLEAR_CLOUD_COVER_MAX)),
        "seeing_median_configured_arcsec": climate.seeing_median_arcsec,
        "seeing_median_measured_arcsec": float(np.median(samples["seeing_fwhm_arcsec"])),
        "humidity_mean_pct": float(np.mean(samples["humidity_pct"])),
        "wind_mean_m_s": float(np.mean(samples["wind_m_s"])),
        "temperature_mean_c": float(np.mean(samples["temperature_c"])),
        "dome_closed_fraction": float(np.mean(closed)),
    }


def write_traces(frame: pd.DataFrame, out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Save a weather frame as ``weather.parquet`` or ``weather.csv`` in ``out_dir``."""
    if fmt not in TRACE_FORMATS:
        raise ConfigError(
            "write_traces", "fmt", f"{fmt!r} is not allowed; allowed: {', '.join(TRACE_FORMATS)}"
        )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"weather.{fmt}"
    if fmt == "parquet":
        frame.to_parquet(path, index=False)
    else:
        frame.to_csv(path, index=False)
    return path


def plot_weather(
    frame: pd.DataFrame, path: str | Path, sites: Sequence[Site] | None = None
) -> Path:
    """PNG of cloud cover, seeing and humidity/wind per site over the frame's span.

    ``sites`` supplies longitudes for the nightly means (default: the built-in table;
    an unknown site uses longitude 0)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names = list(dict.fromkeys(frame["site"]))
    start_mjd = float(frame["mjd"].min())
    nightly = float(frame["mjd"].max()) - start_mjd > NIGHTLY_MEANS_AFTER_DAYS
    fig = Figure(figsize=(13.0, 1.0 + 1.8 * len(names)), layout="constrained")
    FigureCanvasAgg(fig)
    axes = np.atleast_2d(fig.subplots(len(names), 3, sharex=True, squeeze=False))
    lon_by_name = {s.name: s.lon_deg for s in (sites if sites is not None else SITES.values())}
    for row, name in zip(axes, names, strict=True):
        rows = frame[frame["site"] == name].sort_values("mjd")
        if nightly:
            rows = _nightly_means(rows, lon_by_name.get(name, 0.0))
        _plot_site(row, rows, name, start_mjd)
    for ax in axes[-1]:
        ax.set_xlabel(f"days since MJD {start_mjd:.2f} ({_iso_date(start_mjd)})")
    kind = "nightly means (local 20 h-4 h)" if nightly else "all samples"
    fig.suptitle(f"Weather, {len(names)} site(s), {kind}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    return path


def _nightly_means(rows: pd.DataFrame, lon_deg: float) -> pd.DataFrame:
    mjd = rows["mjd"].to_numpy()
    hour = local_solar_hour(mjd, lon_deg)
    at_night = (hour >= 20.0) | (hour < 4.0)
    night_id = np.floor(mjd + lon_deg / 360.0 - 0.5)
    columns = ["cloud_cover", "seeing_fwhm_arcsec", "humidity_pct", "wind_m_s"]
    means = rows.loc[at_night, columns].groupby(night_id[at_night]).mean()
    means["mjd"] = means.index.to_numpy() + 1.0 - lon_deg / 360.0  # local midnight, UTC
    return means.reset_index(drop=True)


def _plot_site(axes: np.ndarray, rows: pd.DataFrame, name: str, start_mjd: float) -> None:
    days = rows["mjd"].to_numpy() - start_mjd
    cloud_ax, seeing_ax, humidity_ax = axes
    cloud_ax.plot(days, rows["cloud_cover"], lw=0.8, color="tab:gray")
    cloud_ax.axhline(CLEAR_CLOUD_COVER_MAX, ls=":", lw=0.8, color="tab:blue")
    cloud_ax.set_ylim(-0.02, 1.02)
    cloud_ax.set_ylabel(f"{name}\ncloud cover")
    seeing_ax.plot(days, rows["seeing_fwhm_arcsec"], lw=0.8, color="tab:purple")
    seeing_ax.set_ylabel("seeing [arcsec]")
    humidity_ax.plot(days, rows["humidity_pct"], lw=0.8, color="tab:cyan")
    humidity_ax.set_ylim(0, 100)
    humidity_ax.set_ylabel("humidity [%]")
    wind_ax = humidity_ax.twinx()
    wind_ax.plot(days, rows["wind_m_s"], lw=0.8, color="tab:orange")
    wind_ax.set_ylabel("wind [m/s]", color="tab:orange")


def _iso_date(mjd: float) -> str:
    epoch = np.datetime64("1858-11-17T00:00", "m")
    return str(epoch + np.timedelta64(round(mjd * 1440.0), "m"))
