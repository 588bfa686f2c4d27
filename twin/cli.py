"""The `skytwin` command line (also `python -m twin`).

Bad input stops with one line naming the file, the field and what is allowed (exit 2);
anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from importlib.metadata import entry_points
from pathlib import Path

from twin.errors import ConfigError

COMMANDS_GROUP = "skytwin.commands"
"""Entry points adding subcommands: each is a function ``register(subparsers)`` (the
packages around the twin, e.g. ``agents``' train and evaluate, plug in here)."""


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


def _cmd_run(args: argparse.Namespace) -> None:
    from twin.ops.run import run_scenario
    from twin.reports.run_summary import discovery_lines, fusion_lines, summary_rows
    from twin.reports.table import format_table
    from twin.scenario import load_scenario

    if args.resume:
        scenario, out, policy = _resumed(args)
    else:
        if not args.scenario:
            raise ConfigError("skytwin run", "scenario", "give a scenario YAML file "
                              "(or --resume RUN_DIR to continue a stopped run)")  # fmt: skip
        scenario = load_scenario(args.scenario, nights=args.nights, seed=args.seed,
                                 start=args.start)  # fmt: skip
        policy = args.policy or scenario.operations.policy
        out = Path(args.out or f"runs/{scenario.name}-{policy if '/' not in policy else 'file'}"
                               f"-s{scenario.seed}")  # fmt: skip
        scenario = _with_pipeline(scenario, args)
    if args.overwrite:
        from twin.ops.run import clear_run_dir

        clear_run_dir(out)
    result = run_scenario(scenario, out, policy, progress=not args.quiet, plots=not args.no_plots,
                          resume=bool(args.resume))  # fmt: skip
    m = result.metrics
    run = m["run"]
    print(f"\n{scenario.name}: {scenario.nights} night(s) from {scenario.start}, policy "
          f"{run['policy']}, seed {run['seed']}: {run['exposures']} exposures in "
          f"{run['visits']} visits ({run['sim_wall_s']:.1f} s)")  # fmt: skip
    print(format_table(summary_rows(m)))
    alerts = m.get("alerts", {})
    if alerts.get("n_alerts"):
        print(f"alerts: {alerts['n_followed']}/{alerts['n_alerts']} followed, response median "
              f"{_fmt(alerts.get('latency_median_min'))} min, p90 "
              f"{_fmt(alerts.get('latency_p90_min'))} min, {alerts.get('n_confirmed', 0)} "
              "confirmed by a second site")  # fmt: skip
    pipe = run.get("pipeline")
    if pipe:
        print(f"pipeline ({', '.join(pipe['stages'])}): {pipe['frames']} frames, "
              f"{pipe['rejected']} rejected, {pipe['visits_repeated']} visits repeated; "
              f"wall s per frame: render {pipe['render_s_per_frame']:.3f}, models "
              f"{pipe['models_s_per_frame']:.3f} (pipeline.parquet)")  # fmt: skip
        for line in (*discovery_lines(m), *fusion_lines(m)):
            print(line)
    violations = m.get("constraint_violations", {}).get("count", 0)
    print(f"constraint violations: {violations}")
    print(f"\nRun directory {out}/: observations.parquet, events.parquet, timeline.parquet "
          "(one Parquet part per day: read each with pandas.read_parquet), alerts.parquet, "
          "requests.parquet, nights.parquet, weather.parquet, metrics.json, scenario.yaml, "
          "progress.json, plots/")  # fmt: skip
    if args.replay:
        from twin.reports.replay import write_replay

        page = write_replay(out, scenario_file=None if args.resume else args.scenario)
        print(f"replay: {page} ({page.stat().st_size / 1e6:.2f} MB): open it in a browser")


def _with_pipeline(scenario, args: argparse.Namespace):
    """The scenario with ``--pipeline``, ``--frame-size`` and ``--keep-frames`` applied
    (validated like the scenario's own ``pipeline:`` section, and written with it to the
    run's scenario.yaml, so a resumed run keeps them)."""
    from pydantic import ValidationError

    from twin.errors import from_pydantic
    from twin.pipeline.spec import PipelineSpec

    update = {}
    if args.pipeline is not None:
        update["stages"] = tuple(s for s in args.pipeline.split(",") if s)
    if args.frame_size is not None:
        update["frame_size_pix"] = args.frame_size
    if args.keep_frames:
        update["keep_frames"] = True
    if not update:
        return scenario
    try:
        spec = PipelineSpec.model_validate({**scenario.pipeline.model_dump(), **update})
    except ValidationError as err:
        raise from_pydantic("--pipeline", err) from None
    return scenario.model_copy(update={"pipeline": spec})


def _resumed(args: argparse.Namespace):
    """The scenario, directory and policy of the stopped run named by ``--resume``."""
    from twin.ops.run import PROGRESS_FILE, read_progress
    from twin.scenario import load_scenario

    out = Path(args.resume)
    keys = (
        "nights",
        "seed",
        "start",
        "policy",
        "out",
        "overwrite",
        "pipeline",
        "frame_size",
        "keep_frames",
    )
    given = [f"--{k}" for k in keys if getattr(args, k)]
    if args.scenario or given:
        raise ConfigError(
            "--resume",
            (given or ["scenario"])[0],
            "a resumed run takes its "
            f"scenario, seed and policy from {out}/; give only --resume RUN_DIR",
        )
    state = read_progress(out)
    if not state:
        raise ConfigError(str(out), "--resume", f"no readable {PROGRESS_FILE}: not a run "
                          "directory of `skytwin run`")  # fmt: skip
    return load_scenario(out / "scenario.yaml"), out, state.get("policy")


def _fmt(value) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cmd_compare(args: argparse.Namespace) -> None:
    from twin.reports.compare import compare_runs, format_compare

    print(format_compare(compare_runs([Path(p) for p in args.runs])))


def _cmd_night(args: argparse.Namespace) -> None:
    from twin.imaging.frames import render_run
    from twin.ops.run import read_progress, run_scenario
    from twin.ops.stopping import RunStopped, stop_on_signals
    from twin.scenario import load_scenario

    scenario = load_scenario(args.scenario, nights=args.nights, seed=args.seed, start=args.start)
    out = Path(args.out or f"runs/{scenario.name}-night-s{scenario.seed}")
    policy = args.policy or scenario.operations.policy
    state = read_progress(out)
    if args.rerun:
        from twin.ops.run import clear_run_dir

        clear_run_dir(out)
        state = {}
    if not state.get("complete"):
        result = run_scenario(scenario, out, policy, progress=not args.quiet,
                              resume=bool(state))  # fmt: skip
        print(f"{scenario.name}: {result.metrics['run']['exposures']} exposures simulated")
    if not args.frames:
        print(f"Run directory {out}/ (add --frames to render the exposures)")
        return
    sites = args.sites.split(",") if args.sites else None
    try:
        with stop_on_signals():
            written = render_run(out, sites=sites, max_frames=args.max_frames, size=args.size,
                                 processes=args.processes, ray_address=args.ray,
                                 progress=not args.quiet, galaxies=args.galaxies)  # fmt: skip
    except RunStopped as stop:
        n = len(list((out / "frames").rglob("*.fits")))
        text = (
            f"stopped ({stop}): {n} complete frames kept in {out}/frames/; run the same "
            "command again to render the rest (frames already written are skipped)"
        )
        stop.message = lambda: text
        raise
    print(f"{len(written['frames'])} frames in {out}/frames/ (FITS + .truth.parquet), "
          f"{len(written['calibration'])} calibration frames in {out}/calibration/")  # fmt: skip


def _cmd_frame(args: argparse.Namespace) -> None:
    from twin.imaging.frames import RunFrames, render_frame
    from twin.imaging.preview import write_preview

    frames = RunFrames(args.run, size=args.size, galaxies=args.galaxies)
    spec = frames.spec(args.obs_id)
    out = Path(args.out or Path(args.run) / "frames" / "single")
    path = render_frame(spec, out / f"{spec.telescope.name}_{spec.obs_id:07d}.fits",
                        frames.options)  # fmt: skip
    print(f"frame: {path} (truth: {path.with_suffix('')}.truth.parquet)")
    if args.png:
        from twin.imaging.fits import read_frame

        data, header, truth = read_frame(path)
        png = path.with_suffix(".png")
        title = (f"{spec.telescope.name} obs {spec.obs_id} {spec.band} {spec.exptime_s:g}s "
                 f"X={spec.airmass:.2f} seeing {spec.seeing_fwhm_arcsec:.2f}\" "
                 f"moon {spec.moon_illum:.0%} T={spec.transparency:.2f}")  # fmt: skip
        write_preview(png, data, header, truth, mark_truth=args.mark_truth, title=title)
        print(f"preview: {png}")


_GALAXIES_HELP = ("parametric | diffusion: what galaxies look like (default: the scenario's "
                  "imaging.galaxies; diffusion needs torch and caches stamps in "
                  "RUN/galaxy_bank/)")  # fmt: skip


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

    p = sub.add_parser("run", help="simulate the network through the scenario's nights")
    p.add_argument("scenario", nargs="?", help="scenario YAML file")
    p.add_argument(
        "--resume",
        metavar="RUN_DIR",
        help="continue a stopped run (its own "
        "scenario, seed and policy); the result equals an uninterrupted run",
    )
    p.add_argument("--nights", type=int, help="number of nights (default: the scenario's)")
    p.add_argument("--policy", help="greedy, priority, random, oracle or a saved policy's path")
    p.add_argument("--seed", type=int, help="run seed (default: the scenario's)")
    p.add_argument("--start", help="first night's date YYYY-MM-DD (default: the scenario's)")
    p.add_argument("--out", help="run directory (default runs/NAME-POLICY-sSEED)")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    p.add_argument(
        "--pipeline",
        metavar="STAGE[,STAGE]",
        help="run these stages on every "
        "frame as exposures end (e.g. quality,anomaly; entry points skytwin.stages)",
    )
    p.add_argument(
        "--frame-size",
        type=int,
        help="pipeline frames: central N x N pixels "
        "(default the scenario's pipeline.frame_size_pix, 1024)",
    )
    p.add_argument(
        "--keep-frames",
        action="store_true",
        help="write the pipeline's frames as FITS under RUN/frames/",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the plots (faster)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--replay", action="store_true",
                   help="also write RUN/replay.html, a page that plays the run back")  # fmt: skip
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("night", help="simulate the scenario and render its exposures (FITS)")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("--frames", action="store_true", help="render every exposure's frame")
    p.add_argument("--sites", help="only these sites (comma-separated)")
    p.add_argument("--max-frames", type=int, help="render at most N frames")
    p.add_argument("--size", type=int, help="render N x N pixels instead of the full detector")
    p.add_argument("--processes", type=int, help="local processes (default: all cores)")
    p.add_argument("--ray", metavar="ADDRESS", help="render as Ray tasks: 'local', 'auto' or "
                   "an existing cluster's address")  # fmt: skip
    p.add_argument("--nights", type=int, help="number of nights (default: the scenario's)")
    p.add_argument("--policy", help="scheduler (default: the scenario's)")
    p.add_argument("--seed", type=int)
    p.add_argument("--start", help="first night's date YYYY-MM-DD")
    p.add_argument("--out", help="run directory (default runs/NAME-night-sSEED)")
    p.add_argument("--rerun", action="store_true", help="simulate again even if the run exists")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--galaxies", help=_GALAXIES_HELP)
    p.set_defaults(func=_cmd_night)

    p = sub.add_parser("frame", help="render one exposure of a run, optionally as a PNG")
    p.add_argument("run", help="run directory")
    p.add_argument("obs_id", type=int, help="the exposure's obs_id (observations.parquet)")
    p.add_argument("--png", action="store_true", help="write a preview PNG beside the FITS")
    p.add_argument("--mark-truth", action="store_true", help="circle the injected sources")
    p.add_argument("--size", type=int, help="render N x N pixels instead of the full detector")
    p.add_argument("--out", help="folder (default RUN/frames/single)")
    p.add_argument("--galaxies", help=_GALAXIES_HELP)
    p.set_defaults(func=_cmd_frame)

    p = sub.add_parser("compare", help="metrics of several runs side by side")
    p.add_argument("runs", nargs="+", help="run directories")
    p.set_defaults(func=_cmd_compare)
    _add_plugin_commands(sub)
    return parser


def _add_plugin_commands(sub) -> None:
    """Subcommands of the ``skytwin.commands`` entry points; one that fails to load is
    skipped with a warning, so the twin's own commands keep working."""
    for ep in sorted(entry_points(group=COMMANDS_GROUP), key=lambda ep: ep.name):
        try:
            ep.load()(sub)
        except Exception as err:  # a broken plug-in must not break the twin's commands
            warnings.warn(f"skytwin command {ep.name!r} ({ep.value}) not loaded: {err}",
                          stacklevel=2)  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    from twin.ops.stopping import RunStopped

    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except RunStopped as stop:
        message = getattr(stop, "message", None)
        print(f"\n{message() if message else f'stopped ({stop})'}", file=sys.stderr)
        return stop.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
