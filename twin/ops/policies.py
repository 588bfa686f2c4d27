"""Find a scheduling policy by name, without the twin importing ``agents``.

The twin must not depend on the packages built around it (DESIGN.md: ``agents -> twin``,
never back), yet ``skytwin run --policy greedy`` must work. Policies therefore register
under the ``skytwin.policies`` entry-point group (see pyproject.toml); a name is looked
up there and the class instantiated. A path to a saved policy file is loaded by the
loader registered as ``file`` in the same group.
"""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

from twin.errors import ConfigError
from twin.ops.conditions import Policy

GROUP = "skytwin.policies"


def available_policies() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP) if ep.name != "file")


def resolve_policy(name: str, source: str = "--policy", **kwargs) -> Policy:
    """A fresh policy instance for ``name`` (a registered name or a saved policy's path)."""
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name in eps and name != "file":
        return eps[name].load()(**kwargs)
    if Path(name).exists() and "file" in eps:
        return eps["file"].load()(name, **kwargs)
    allowed = ", ".join(available_policies()) + ", or the path of a saved policy"
    raise ConfigError(source, "policy", f"unknown policy {name!r}; allowed: {allowed}")
