"""``skytwin models dataset|train|evaluate anomaly``: the anomaly model's commands."""

from __future__ import annotations

from collections.abc import Sequence

ACTIONS = ("dataset", "train", "evaluate")


def run(action: str, argv: Sequence[str]) -> None:
    """Run ``action`` with its own options (``--help`` lists them)."""
    if action not in ACTIONS:
        raise ValueError(f"anomaly has no {action!r}; allowed: {', '.join(ACTIONS)}")
    if action == "dataset":
        from models.anomaly.dataset import main
    elif action == "train":
        from models.anomaly.train import main
    else:
        from models.anomaly.evaluate import main
    main(list(argv))
