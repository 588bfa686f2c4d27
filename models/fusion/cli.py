"""``skytwin fuse RUN [--field F] [--band B] [--method ivw|psf-matched|proper]`` (a
``skytwin.commands`` entry point)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("fuse", help="coadd every field and band of a run seen by two or more "
                       "sites (fused/ and fusion.parquet)")  # fmt: skip
    p.add_argument("run", help="run directory")
    p.add_argument("--field", help="only this target id")
    p.add_argument("--band", help="only this band")
    p.add_argument("--method", default="proper", help="ivw, psf-matched or proper (default)")
    p.add_argument("--size", type=int, default=512, help="central N x N pixels (default 512)")
    p.add_argument("--min-sites", type=int, default=2, help="sites a group needs (default 2)")
    p.add_argument("--window-h", type=float, default=24.0, help="group window (default 24 h)")
    p.add_argument("--max-frames", type=int, default=12, help="frames per product (default 12)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_fuse)


def _cmd_fuse(args: argparse.Namespace) -> None:
    from models.fusion.run import FUSED_DIR, TABLE, fuse_run
    from twin.errors import ConfigError

    for name in ("size", "min_sites", "max_frames"):
        if getattr(args, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')}", name, "must be >= 1")
    table = fuse_run(args.run, field=args.field, band=args.band, method=args.method,
                     size=args.size, min_sites=args.min_sites, window_h=args.window_h,
                     max_frames=args.max_frames, progress=not args.quiet)  # fmt: skip
    for line in table.attrs.get("skipped", []):
        print(f"skipped {line}")
    if table.empty:
        print(f"{args.run}: no field in one band seen by {args.min_sites}+ sites within "
              f"{args.window_h:g} h: nothing to fuse")  # fmt: skip
    else:
        from twin.reports.table import format_table

        cols = ["product", "n_inputs", "sites", "m5_best_input", "m5", "depth_gain_mag"]
        print(format_table(table[cols].to_dict("records")))
    print(f"\nFused products in {args.run}/{FUSED_DIR}/, listed in {args.run}/{TABLE}")
