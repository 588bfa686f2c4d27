"""Find a scheduling policy by name, without the twin importing ``agents``.

The twin must not depend on the packages built around it (DESIGN.md: ``agents -> twin``,
never back), yet ``skytwin run --policy greedy`` must work. Policies therefore register
under the ``skytwin.policies`` entry-point group (see pyproject.toml); a name is looked
up there and the class instantiated. A path to a saved policy is loaded by the loader
registered as ``file`` in the same group, which reads data formats only (JSON, tensors)
and refuses anything that could run code when loaded (pickles, SB3's model.zip) with a
:class:`~twin.errors.ConfigError`; so does this module for a path it cannot read.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from twin.errors import ConfigError
from twin.ops.conditions import Policy

GROUP = "skytwin.policies"
SAVED = "the path of a saved policy (a policy folder, its manifest.json, or a scorer.json)"
"""What a ``file`` policy may be, for messages (the loader checks the formats)."""


def available_policies() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP) if ep.name != "file")


def resolve_policy(name: str, source: str = "--policy", **kwargs) -> Policy:
    """A fresh policy instance for ``name`` (a registered name or a saved policy's path).

    A bad name raises ConfigError(``source``, "policy", ...); a path that is not a saved
    policy raises ConfigError(path, "policy", ...). Both list what is allowed."""
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name in eps and name != "file":
        return eps[name].load()(**kwargs)
    allowed = f"allowed: {', '.join(available_policies())}, or {SAVED}"
    path = Path(name)
    if _exists(path):
        if "file" not in eps:
            raise ConfigError(name, "policy", "loading a saved policy needs the agents "
                              f"package (pip install -e .); {allowed}")  # fmt: skip
        try:
            return eps["file"].load()(name, **kwargs)
        except OSError as err:  # the loader reports its own problems as ConfigError
            why = err.strerror or type(err).__name__
            raise ConfigError(name, "policy", f"cannot read it ({why}); {allowed}") from None
    shown = _shown(name)
    if path.suffix or "/" in name or "\\" in name:
        raise ConfigError(source, "policy", f"no file or folder {shown}; {allowed}")
    raise ConfigError(source, "policy", f"unknown policy {shown}; {allowed}")


def _shown(name: str, limit: int = 80) -> str:
    """``repr(name)``, cut to ``limit`` characters (a scenario field may be anything)."""
    text = repr(name)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except (OSError, ValueError):  # a name too long for a path, or with a NUL in it
        return False
