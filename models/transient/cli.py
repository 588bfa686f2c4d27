"""``skytwin models dataset|train|evaluate transient ...`` (dispatched by :mod:`models.cli`)."""

from __future__ import annotations

import argparse

ACTIONS = ("dataset", "train", "evaluate")


def run(action: str, argv: list[str]) -> None:
    if action not in ACTIONS:
        raise SystemExit(f"transient has no action {action!r}; allowed: {', '.join(ACTIONS)}")
    {"dataset": _dataset, "train": _train, "evaluate": _evaluate}[action](list(argv))


def _dataset(argv: list[str]) -> None:
    from models.transient.dataset import build_dataset

    p = argparse.ArgumentParser(prog="skytwin models dataset transient")
    p.add_argument("--out", required=True, help="folder for the shards and index.json")
    p.add_argument("--pairs", type=int, default=1800, help="frame pairs (default 1800)")
    p.add_argument("--size", type=int, default=512, help="frame side in pixels (default 512)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--shards",
        type=int,
        default=None,
        help="make only the first N shards of the plan (40 pairs each)",
    )
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    index = build_dataset(a.out, a.pairs, a.size, a.seed, not a.no_progress, argv=argv,
                          shards=a.shards)  # fmt: skip
    print(f"{index['n_pairs']} pairs ({index['failed_pairs']} failed), "
          f"{index['seconds_per_pair']:.2f} s each; candidates {index['candidates']}, "
          f"real {index['real']}")  # fmt: skip


def _train(argv: list[str]) -> None:
    from models.transient.classifier import WEIGHTS_DIR
    from models.transient.train import train

    p = argparse.ArgumentParser(prog="skytwin models train transient")
    p.add_argument("--data", required=True)
    p.add_argument("--out", default=str(WEIGHTS_DIR), help="default: the shipped weights/")
    p.add_argument("--arch", choices=("triplet", "vgg6", "both"), default="both")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument(
        "--bogus-per-epoch",
        type=int,
        default=5000,
        help="bogus candidates drawn per epoch (every real one is used)",
    )
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1)")
    p.add_argument("--resume", action="store_true", help="continue from OUT/checkpoint_*.pt")
    p.add_argument("--no-progress", action="store_true")
    a = p.parse_args(argv)
    archs = ("triplet", "vgg6") if a.arch == "both" else (a.arch,)
    for arch in archs:
        result = train(a.data, a.out, arch=arch, epochs=a.epochs, seed=a.seed, batch=a.batch,
                       lr=a.lr, bogus_per_epoch=a.bogus_per_epoch, threads=a.threads,
                       resume=a.resume,
                       progress=not a.no_progress, argv=argv)  # fmt: skip
        print(f"{arch}: {result['n_train']} candidates, threshold "
              f"{result['real_threshold']:.4f}, last epoch {result['history'][-1]}")  # fmt: skip


def _evaluate(argv: list[str]) -> None:
    from models.transient.evaluate import evaluate, format_table

    p = argparse.ArgumentParser(prog="skytwin models evaluate transient")
    p.add_argument("--data", required=True)
    p.add_argument("--weights", default=None, help="folder (default: the shipped weights/)")
    p.add_argument("--out", default=None, help="default: the weights folder")
    a = p.parse_args(argv)
    report = evaluate(a.data, a.weights, a.out)
    print(format_table(report))
    print(f"\nfigure: {report['figure_png']} and evaluation.json beside it")
