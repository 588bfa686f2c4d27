"""``skytwin models dataset|train|evaluate quality ...`` (dispatched by :mod:`models.cli`)."""

from __future__ import annotations

import argparse

ACTIONS = ("dataset", "train", "evaluate")


def run(action: str, argv: list[str]) -> None:
    if action not in ACTIONS:
        raise SystemExit(f"quality has no action {action!r}; allowed: {', '.join(ACTIONS)}")
    {"dataset": _dataset, "train": _train, "evaluate": _evaluate}[action](list(argv))


def _dataset(argv: list[str]) -> None:
    from models.quality.dataset import build_dataset

    p = argparse.ArgumentParser(prog="skytwin models dataset quality")
    p.add_argument("--out", required=True, help="folder for the shards and index.json")
    p.add_argument("--n", type=int, default=3000, help="frames (default 3000)")
    p.add_argument("--size", type=int, default=256, help="frame side in pixels (default 256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--processes", type=int, default=2)
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    index = build_dataset(a.out, a.n, a.size, a.seed, a.processes, not a.no_progress)
    print(f"{index['n']} frames in {index['seconds']['total']} s: {index['splits']}")
    for split, pos in index["flag_positives"].items():
        print(f"  {split:8s} positives: {pos}")


def _train(argv: list[str]) -> None:
    from models.quality.stage import WEIGHTS_DIR
    from models.quality.train import train

    p = argparse.ArgumentParser(prog="skytwin models train quality")
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="default: the shipped weights/")
    p.add_argument("--epochs", type=int, default=12)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--ema", type=float, default=0.99, help="EMA decay; 0 turns it off")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument(
        "--max-frames",
        type=int,
        default=None,
        help="use only the first N frames of the train split",
    )
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    result = train(a.data, a.out, epochs=a.epochs, seed=a.seed, batch=a.batch, lr=a.lr,
                   ema=a.ema, resume=a.resume, threads=a.threads, max_frames=a.max_frames,
                   progress=not a.no_progress, argv=argv)  # fmt: skip
    last = result["history"][-1] if result["history"] else {}
    print(f"trained on {result['n_train']} frames; last epoch: {last}")


def _evaluate(argv: list[str]) -> None:
    from models.quality.evaluate import evaluate, format_table

    p = argparse.ArgumentParser(prog="skytwin models evaluate quality")
    p.add_argument("--data", required=True)
    p.add_argument("--weights", default=None, help="default: the shipped weights/")
    p.add_argument("--out", default=None, help="default: the weights folder")
    p.add_argument("--processes", type=int, default=2)
    a = p.parse_args(argv)
    report = evaluate(a.data, a.weights, a.out, a.processes)
    print(format_table(report))
    print(f"\nfigures: {report['reliability_png']} and evaluation.json beside it")
