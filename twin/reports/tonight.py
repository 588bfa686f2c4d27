"""Tonight at every site of a network: the night, the moon, the forecast, what is up.

The report a night-shift planner opens first. Weather shown here is the *forecast*
issued at local noon (what a scheduler would know), never the simulated truth; the
truth traces are written beside it for later comparison.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
from astropy.time import Time

from twin.astro.almanac import local_noon_mjd
from twin.astro.visibility import SiteVisibility
from twin.physics import delivered_seeing_arcsec, m5, sky_mag_arcsec2
from twin.scenario import Scenario, TargetSpec, dump_scenario
from twin.weather import DomeRules, Forecast, dome_closure, make_weather, write_traces
from twin.world.sites import Site
from twin.world.telescope import Telescope


@dataclass(frozen=True)
class SiteTonight:
    """One site's night as a planner sees it."""

    site: str
    night_date: str
    dusk_astro_local: str
    dawn_astro_local: str
    dark_hours: float
    moon_illum: float
    moon_up_fraction: float
    forecast_clear_fraction: float
    forecast_seeing_arcsec: float
    forecast_dome_closed_fraction: float
    sky_r_zenith_midnight: float
    m5_r_60s_zenith_midnight: float
    targets_up_hours: dict[str, float]


def _local(mjd: float, tz: str) -> str:
    if not np.isfinite(mjd):
        return "--"
    return Time(mjd, format="mjd").to_datetime(timezone=ZoneInfo(tz)).strftime("%H:%M")


def zenith_depth(
    site: Site,
    telescope: Telescope,
    vis: SiteVisibility,
    mjd: float,
    seeing_arcsec: float,
    transparency: float,
) -> tuple[float, float]:
    """Sky brightness (r, mag/arcsec^2) and the 60-s r-band 5-sigma depth at the zenith."""
    alm = vis.almanac
    moon_alt = float(alm.moon_alt_deg(mjd))
    sky = sky_mag_arcsec2(
        "r", 90.0, moon_alt, 90.0 - moon_alt, float(alm.moon_illum(mjd)),
        float(alm.sun_alt_deg(mjd)), site.sky_brightening_mag, site.height_m,
    )  # fmt: skip
    fwhm = delivered_seeing_arcsec(seeing_arcsec, 1.0, telescope.filter("r").center_nm)
    depth = m5(telescope, "r", exptime_s=60.0, airmass=1.0, seeing_fwhm_arcsec=fwhm,
               sky_mag_arcsec2=sky, transparency=transparency, height_m=site.height_m)  # fmt: skip
    return round(float(sky), 2), round(float(depth), 2)


def site_tonight(
    site: Site,
    telescope: Telescope,
    vis: SiteVisibility,
    forecast: Forecast,
    targets: list[TargetSpec],
    rules: DomeRules,
) -> tuple[SiteTonight, dict]:
    """The summary row and the curves to plot for one site."""
    night = vis.almanac.night(0)
    grid = vis.almanac.mjd
    issued = local_noon_mjd(site, grid[0])
    predicted = forecast.predict(site.name, grid, issued_mjd=issued)
    closed = dome_closure(grid, predicted, rules)[0]
    dark = vis.almanac.is_night(grid, "astronomical")
    clear = predicted["cloud_cover"] < 0.25
    up_hours = {}
    alts = {}
    for t in targets:
        geo = vis.observe(t.ra_deg, t.dec_deg, grid)
        alts[t.name] = geo.alt_deg
        usable = geo.above_horizon & dark
        up_hours[t.name] = round(float(usable.sum()) * vis.almanac.step_d * 24.0, 2)
    midnight = 0.5 * (
        night.evening_twilight_mjd["astronomical"] + night.morning_twilight_mjd["astronomical"]
    )
    if not np.isfinite(midnight):
        midnight = 0.5 * (grid[0] + grid[-1])
    i_mid = int(np.argmin(np.abs(grid - midnight)))
    seeing, transparency = (
        float(predicted[k][i_mid]) for k in ("seeing_fwhm_arcsec", "transparency")
    )
    sky_r, depth_r = zenith_depth(site, telescope, vis, midnight, seeing, transparency)
    row = SiteTonight(
        site=site.name,
        night_date=night.night_date,
        dusk_astro_local=_local(night.evening_twilight_mjd["astronomical"], site.timezone),
        dawn_astro_local=_local(night.morning_twilight_mjd["astronomical"], site.timezone),
        dark_hours=round(night.astronomical_night_h, 2),
        moon_illum=round(night.moon_illum_midnight, 3),
        moon_up_fraction=round(night.moon_up_fraction, 3),
        forecast_clear_fraction=round(float(clear[dark].mean()) if dark.any() else 0.0, 3),
        forecast_seeing_arcsec=round(
            float(np.median(predicted["seeing_fwhm_arcsec"][dark])) if dark.any() else float("nan"),
            2,
        ),
        forecast_dome_closed_fraction=round(float(closed[dark].mean()) if dark.any() else 0.0, 3),
        sky_r_zenith_midnight=sky_r,
        m5_r_60s_zenith_midnight=depth_r,
        targets_up_hours=up_hours,
    )
    curves = {
        "mjd": grid,
        "sun_alt": vis.almanac.sun_alt_deg_grid,
        "moon_alt": vis.almanac.moon_alt_deg_grid,
        "targets": alts,
        "cloud": predicted["cloud_cover"],
        "seeing": predicted["seeing_fwhm_arcsec"],
        "closed": closed,
        "horizon": float(np.min(site.horizon_alt_deg)),
    }
    return row, curves


def tonight(scenario: Scenario, out_dir: Path) -> list[SiteTonight]:
    """Compute tonight for every site of the scenario; write JSON, traces and a plot."""
    out_dir.mkdir(parents=True, exist_ok=True)
    sites = scenario.network
    seeds = np.random.SeedSequence(scenario.seed).spawn(2)
    start = scenario.start_mjd
    truth = make_weather(scenario.weather.model, sites, start - 1.0, 4.0, seeds[0],
                         log_path=scenario.weather.log)  # fmt: skip
    forecast = Forecast(truth, seeds[1])
    rows, curves = [], {}
    for site, spec in zip(sites, scenario.sites, strict=True):
        vis = SiteVisibility(site, start, days=1)
        row, curves[site.name] = site_tonight(
            site, spec.telescopes[0].build(), vis, forecast, scenario.targets, scenario.weather.dome
        )
        rows.append(row)
    dump_scenario(scenario, out_dir / "scenario.yaml")
    (out_dir / "tonight.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))
    if hasattr(truth, "to_frame"):
        write_traces(truth.to_frame(), out_dir, fmt="parquet")
    from twin.reports.tonight_plot import plot_tonight

    plot_tonight(rows, curves, out_dir / "tonight.png")
    return rows
