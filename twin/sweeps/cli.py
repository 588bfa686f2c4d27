"""``skytwin sweep SWEEP.yaml`` and ``skytwin sweep-report SWEEP_DIR`` (a ``skytwin.commands``
entry point, so the twin's own CLI needs no change)."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from twin.errors import ConfigError

SWEEP_FILES = ("sweep.parquet", "report.txt", "summary.parquet", "paired.parquet", "plots/")


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a planner's sweep: layouts x policies x variants x "
                       "seeds x seasons, as Ray tasks")  # fmt: skip
    p.add_argument("sweep", help="the sweep file (see twin/sweeps/spec.py)")
    p.add_argument("--out", help="sweep directory (default outputs/sweeps/NAME)")
    p.add_argument("--address", help="an existing Ray cluster (e.g. 'auto' or HOST:6379); "
                   "default: a local Ray")  # fmt: skip
    p.add_argument("--processes", type=int, help="a local process pool of N instead of Ray")
    p.add_argument("--keep-runs", action="store_true",
                   help="keep every point's run directory under OUT/runs/POINT_ID/ (on a "
                   "multi-node Ray cluster OUT must be on a filesystem shared by every node: "
                   "each point writes its run where it runs)")  # fmt: skip
    p.add_argument("--overwrite", action="store_true", help="start again in a used directory")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_sweep)
    p = sub.add_parser("sweep-report", help="tables and plots of a sweep directory")
    p.add_argument("sweep_dir")
    p.set_defaults(func=_cmd_report)


def _cmd_sweep(args: argparse.Namespace) -> None:
    from twin.sweeps.points import expand
    from twin.sweeps.runner import SPEC_COPY, run_points
    from twin.sweeps.spec import load_sweep

    if args.processes is not None and args.processes < 1:
        raise ConfigError("--processes", "processes", f"must be >= 1, got {args.processes}")
    if args.processes is not None and args.address:
        raise ConfigError("--address", "address", "give --address (Ray) or --processes, not both")
    spec, base = load_sweep(args.sweep)
    points = expand(spec, base, args.sweep)  # every point validated before anything runs
    out = Path(args.out or Path("outputs") / "sweeps" / spec.name)
    text = Path(args.sweep).read_text()
    copy = out / SPEC_COPY
    if out.exists() and not out.is_dir():
        raise ConfigError(str(out), "--out", "is a file, not a directory")
    if copy.is_file() and copy.read_text() != text and not args.overwrite:
        raise ConfigError(str(out), "--out", "holds another sweep (its sweep.yaml differs); "
                          "give another --out or --overwrite")  # fmt: skip
    if args.overwrite and out.is_dir():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    copy.write_text(text)
    print(f"{spec.name}: {len(points)} points ({len(spec.layouts)} layouts x "
          f"{len({p.policy for p in points})} policies x {len(spec.variants)} variants x "
          f"{len({p.start for p in points})} starts x {len(spec.seed_list)} seeds)")  # fmt: skip
    run_points(points, out, keep_runs=args.keep_runs, address=args.address,
               processes=args.processes, progress=not args.quiet)  # fmt: skip
    _report(out, spec.metrics, spec.baseline_layout)


def _cmd_report(args: argparse.Namespace) -> None:
    from twin.sweeps.runner import SPEC_COPY, TABLE
    from twin.sweeps.spec import SweepSpec, _read

    out = Path(args.sweep_dir)
    if not (out / TABLE).is_file() or not (out / SPEC_COPY).is_file():
        raise ConfigError(str(out), "sweep_dir", f"not a sweep directory (no {TABLE} and "
                          f"{SPEC_COPY}): run `skytwin sweep` first")  # fmt: skip
    spec = SweepSpec.model_validate(_read(out / SPEC_COPY))
    _report(out, spec.metrics, spec.baseline_layout)


def _report(out: Path, metrics: tuple[str, ...], baseline: str) -> None:
    from twin.sweeps.report import write_report

    text, _ = write_report(out, metrics, baseline)
    print(text)
    print(f"\nSweep directory {out}/: {', '.join(SWEEP_FILES)} (points/ holds one JSON per "
          "finished point; a stopped sweep resumes from them)")  # fmt: skip
