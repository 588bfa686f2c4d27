"""The `skytwin` command line (also `python -m twin`).

Bad input stops with one line naming the file, the field and what is allowed (exit 2);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from twin.errors import ConfigError


def _cmd_sites(args: argparse.Namespace) -> None:
    from twin.reports.table import format_table
    from twin.world.sites import SITES

    rows = [{"site": s.name, "lat_deg": s.lat_deg, "lon_deg": s.lon_deg, "height_m": s.height_m,
             "clear_frac": round(s.climate.clear_fraction_annual, 2),
             "seeing_arcsec": s.climate.seeing_median_arcsec, "name": s.full_name}
            for s in SITES.values()]  # fmt: skip
    print(format_table(rows))


def _cmd_tonight(args: argparse.Namespace) -> None:
    from twin.reports.table import format_table
    from twin.reports.tonight import tonight
    from twin.scenario import load_scenario

    scenario = load_scenario(args.scenario, start=args.date, seed=args.seed)
    out = Path(args.out or f"outputs/tonight-{scenario.name}")
    rows = tonight(scenario, out)
    print(f"{scenario.name}: night of {scenario.start} (weather: forecast issued at local noon)")
    short = {"site": "site", "dusk_astro_local": "dusk", "dawn_astro_local": "dawn",
             "dark_hours": "dark_h", "moon_illum": "moon", "moon_up_fraction": "moon_up",
             "forecast_clear_fraction": "clear_fc", "forecast_seeing_arcsec": "seeing_fc",
             "forecast_dome_closed_fraction": "closed_fc", "sky_r_zenith_midnight": "sky_r",
             "m5_r_60s_zenith_midnight": "m5_r_60s"}  # fmt: skip
    print(format_table([{v: getattr(r, k) for k, v in short.items()} for r in rows]))
    print("dusk/dawn: astronomical twilight, local time; _fc: forecast for the dark hours; "
          "sky_r, m5_r_60s: zenith at midnight")  # fmt: skip
    print(f"\nOutputs in {out}/: tonight.png (visibility and forecast), tonight.json, "
          "weather.parquet (truth traces), scenario.yaml")  # fmt: skip


def _cmd_weather(args: argparse.Namespace) -> None:
    from twin.reports.table import format_table
    from twin.reports.weather_year import weather_year

    start = None
    if args.start:
        from astropy.time import Time

        start = float(Time(args.start).mjd)
    out = Path(args.out or "outputs/weather")
    summary = weather_year(
        args.target, args.days, out, seed=args.seed, start_mjd=start, fmt=args.format
    )
    cols = [
        "site",
        "clear_fraction_configured",
        "clear_fraction_measured",
        "seeing_median_configured_arcsec",
        "seeing_median_measured_arcsec",
        "dome_closed_fraction",
    ]
    print(format_table(summary.to_dict("records"), cols))
    print(f"\nOutputs in {out}/: weather.{args.format} (traces), weather.png, climate_summary.csv")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="skytwin", description="A digital twin of a telescope network."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("sites", help="list the built-in observatory sites")
    p.set_defaults(func=_cmd_sites)

    p = sub.add_parser(
        "tonight", help="tonight at each site of a scenario: night, moon, forecast, plot"
    )
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--date", help="night date YYYY-MM-DD (default: the scenario's start)")
    p.add_argument("--seed", type=int)
    p.add_argument("--out", help="output folder (default outputs/tonight-NAME)")
    p.set_defaults(func=_cmd_tonight)

    p = sub.add_parser("weather", help="simulate weather traces and compare with the climate")
    p.add_argument("target", help="scenario YAML file, or site names separated by commas")
    p.add_argument("--days", type=int, default=365)
    p.add_argument("--seed", type=int)
    p.add_argument("--start", help="first date YYYY-MM-DD (default: the scenario's start)")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet")
    p.add_argument("--out", help="output folder (default outputs/weather)")
    p.set_defaults(func=_cmd_weather)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
