"""``skytwin models dataset|train|evaluate|sample generative``: the galaxy generator's commands."""

from __future__ import annotations

from collections.abc import Sequence

ACTIONS = ("dataset", "train", "evaluate", "sample")


def run(action: str, argv: Sequence[str]) -> None:
    """Run ``action`` with its own options (``--help`` lists them)."""
    if action not in ACTIONS:
        raise ValueError(f"generative has no {action!r}; allowed: {', '.join(ACTIONS)}")
    if action == "dataset":
        from models.generative.dataset import main
    elif action == "train":
        from models.generative.train import main
    elif action == "evaluate":
        from models.generative.evaluate import main
    else:
        from models.generative.sample import main
    main(list(argv))
