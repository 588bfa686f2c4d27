"""``skytwin fuse RUN [--field F] [--band B] [--method ivw|psf-matched|proper|learned]`` (a
``skytwin.commands`` entry point), and ``skytwin models dataset|train|evaluate fusion``
(:func:`run`, dispatched by :mod:`models.cli`)."""

from __future__ import annotations

import argparse


def register(sub) -> None:
    p = sub.add_parser("fuse", help="coadd every field and band of a run seen by two or more "
                       "sites (fused/ and fusion.parquet)")  # fmt: skip
    p.add_argument("run", help="run directory")
    p.add_argument("--field", help="only this target id")
    p.add_argument("--band", help="only this band")
    p.add_argument("--method", default="proper",
                   help="ivw, psf-matched, proper (default) or learned (needs torch)")  # fmt: skip
    p.add_argument("--size", type=int, default=512, help="central N x N pixels (default 512)")
    p.add_argument("--min-sites", type=int, default=2, help="sites a group needs (default 2)")
    p.add_argument("--window-h", type=float, default=24.0, help="group window (default 24 h)")
    p.add_argument("--max-frames", type=int, default=12, help="frames per product (default 12)")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=_cmd_fuse)


def _cmd_fuse(args: argparse.Namespace) -> None:
    from models.fusion.run import AFTER_DIR, FUSED_DIR, TABLE, fuse_run
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
    name = table.attrs.get("table", TABLE)
    folder = FUSED_DIR if name == TABLE else AFTER_DIR
    print(f"\nFused products in {args.run}/{folder}/, listed in {args.run}/{name}")


ACTIONS = ("dataset", "train", "evaluate")


def run(action: str, argv: list[str]) -> None:
    """``skytwin models ACTION fusion ARGV`` (the learned fusion, issue 13 item 3)."""
    if action not in ACTIONS:
        raise SystemExit(f"fusion has no action {action!r}; allowed: {', '.join(ACTIONS)}")
    {"dataset": _dataset, "train": _train, "evaluate": _evaluate}[action](list(argv))


def _dataset(argv: list[str]) -> None:
    from models.fusion.dataset import build_dataset

    p = argparse.ArgumentParser(prog="skytwin models dataset fusion")
    p.add_argument("--out", required=True, help="folder for the shards and index.json")
    p.add_argument("--train", type=int, default=800, help="training stacks (default 800)")
    p.add_argument("--heldout", type=int, default=200, help="held-out stacks (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=1)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    command = "skytwin models dataset fusion " + " ".join(argv)
    index = build_dataset(
        a.out, a.train, a.heldout, a.seed, a.processes, not a.no_progress, command
    )
    print(f"{index['splits']} stacks in {index['seconds']} s -> {a.out}")


def _train(argv: list[str]) -> None:
    from models.fusion.learned import WEIGHTS_DIR
    from models.fusion.train import train

    p = argparse.ArgumentParser(prog="skytwin models train fusion")
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="default: the shipped weights/")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--crop", type=int, default=64, help="training window (multiple of 4)")
    p.add_argument("--width", type=int, default=16, help="channels at full resolution")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--max-stacks", type=int, default=None, help="first N train stacks only")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    if a.crop % 4:
        raise SystemExit(f"--crop {a.crop}: pass a multiple of 4 (the network pools twice)")
    result = train(
        a.data,
        a.out,
        epochs=a.epochs,
        seed=a.seed,
        batch=a.batch,
        lr=a.lr,
        crop=a.crop,
        width=a.width,
        threads=a.threads,
        max_stacks=a.max_stacks,
        resume=a.resume,
        progress=not a.no_progress,
        argv=argv,
    )
    last = result["history"][-1] if result["history"] else {}
    print(f"trained on {result['n_train']} stacks; last epoch: {last}")


def _evaluate(argv: list[str]) -> None:
    from models.fusion.evaluate import evaluate, format_table

    p = argparse.ArgumentParser(prog="skytwin models evaluate fusion")
    p.add_argument("--data", required=True)
    p.add_argument("--weights", default=None, help="default: the shipped weights/")
    p.add_argument("--out", default=None, help="default: the weights folder")
    p.add_argument("--no-figure", action="store_true")
    p.add_argument(
        "--calibrate",
        action="store_true",
        help="first choose the inference settings on the train split's validation "
        "stacks and write them to the weights' manifest",
    )
    a = p.parse_args(argv)
    if a.calibrate:
        from models.fusion.evaluate import calibrate

        settings = calibrate(a.data, a.weights)
        print(
            f"inference settings from validation: gate_by_flag={settings['gate_by_flag']}, "
            f"variance_scale={settings['variance_scale']:.4f}"
        )
    report = evaluate(a.data, a.weights, a.out, figure=not a.no_figure)
    print(format_table(report))
