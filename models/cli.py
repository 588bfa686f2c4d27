"""``skytwin models dataset|train|evaluate|sample NAME ...``: one command for every model.

Each model package (``models/<name>/``, DESIGN.md) has a ``cli.py`` with
``run(action, argv)``; this module only finds it, so adding a model adds no code here.
The packages import torch themselves, when the command runs.
"""

from __future__ import annotations

import argparse
import importlib

from twin.errors import ConfigError

MODELS = ("quality", "anomaly", "generative", "transient", "fusion")
ACTIONS = ("dataset", "train", "evaluate", "sample")


def register_models(sub) -> None:
    p = sub.add_parser("models", help="generate data for, train and evaluate the pipeline's "
                       "models (quality, anomaly, generative, transient, fusion)")  # fmt: skip
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("name", choices=MODELS)
    p.add_argument("args", nargs=argparse.REMAINDER, help="the model's own options (--help)")
    p.set_defaults(func=_cmd_models)


def _cmd_models(args: argparse.Namespace) -> None:
    module = importlib.import_module(f"models.{args.name}.cli")
    actions = getattr(module, "ACTIONS", ())
    if args.action not in actions:
        raise ConfigError("skytwin models", "action", f"{args.name} has no {args.action!r}; "
                          f"allowed: {', '.join(actions)}")  # fmt: skip
    module.run(args.action, list(args.args))
