"""The points of a sweep: every combination of its axes, each a validated scenario.

Why build and validate every point's scenario before the first runs: a typo in the last
layout must not surface after hours of the first ones. Each point's scenario goes
through :func:`twin.scenario.load_scenario` with the axis values as overrides, so it gets
exactly the validation (and the relative paths) of the base scenario file; an error is
reported against the sweep file and the axis that caused it.

A point's id is a readable, stable name (``layout/policy/variant/start/seed``): the
resume key, the run directory and the row of ``sweep.parquet``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twin.errors import ConfigError
from twin.scenario import Scenario, load_scenario, read_yaml
from twin.sweeps.spec import Layout, SweepSpec, Variant


@dataclass(frozen=True)
class Point:
    layout: str
    policy: str
    variant: str
    start: str
    seed: int
    n_sites: int
    n_telescopes: int
    scenario: Scenario

    @property
    def point_id(self) -> str:
        return f"{self.layout}__{self.policy}__{self.variant}__{self.start}__{self.seed}"

    @property
    def axes(self) -> dict[str, Any]:
        return {"point_id": self.point_id, "layout": self.layout, "policy": self.policy,
                "variant": self.variant, "start": self.start, "seed": self.seed,
                "n_sites": self.n_sites, "n_telescopes": self.n_telescopes}  # fmt: skip


def layout_sites(layout: Layout, base_sites: list[dict], source: str, where: str) -> list[dict]:
    """The layout's ``sites`` list in the scenario's format."""
    if layout.sites is not None:
        sites = [dict(s) for s in layout.sites]
    else:
        names = [s.get("site") or (s.get("custom") or {}).get("name") for s in base_sites]
        for i, name in enumerate(layout.remove):
            if name not in names:
                raise ConfigError(source, f"{where}.remove.{i}", f"{name!r} is not a site of "
                                  f"the base; allowed: {', '.join(map(str, names))}")  # fmt: skip
        sites = [dict(s) for s, n in zip(base_sites, names, strict=True)
                 if n not in layout.remove] + [dict(s) for s in layout.add]  # fmt: skip
    if not sites:
        raise ConfigError(source, where, "the layout has no sites left")
    if layout.telescopes_per_site is not None:
        for s in sites:
            name = s.get("site") or (s.get("custom") or {}).get("name", "site")
            s["telescopes"] = [{"name": f"{name}-{k + 1}", "preset": layout.preset}
                               for k in range(layout.telescopes_per_site)]  # fmt: skip
    return sites


def _merged(base: dict, key: str, value: Any) -> Any:
    """``value`` for top-level ``key``, merged one level into the base's mapping."""
    old = base.get(key)
    if isinstance(old, dict) and isinstance(value, dict):
        return {**old, **value}
    return value


def expand(spec: SweepSpec, base_path: Path, source: str) -> list[Point]:
    """Every point of ``spec``, scenarios validated (a ConfigError names the axis)."""
    from twin.ops.policies import resolve_policy

    base = read_yaml(base_path) or {}
    policies = spec.policies or (str((base.get("operations") or {}).get("policy", "greedy")),)
    for i, name in enumerate(spec.policies):
        try:
            resolve_policy(name)
        except (ConfigError, ValueError) as err:
            problem = err.problem if isinstance(err, ConfigError) else str(err)
            raise ConfigError(source, f"policies.{i}", problem) from None
    starts = spec.starts or (None,)
    variants: list[tuple[Variant, dict]] = []
    for v in spec.variants:
        variants.append((v, {k: _merged(base, k, val) for k, val in v.set.items()}))
    points = []
    scenarios: dict[tuple, Scenario] = {}
    for li, layout in enumerate(spec.layouts):
        where = f"layouts.{li}"
        sites = layout_sites(layout, list(base.get("sites") or []), source, where)
        for (vi, (variant, overrides)), policy, start in itertools.product(
            enumerate(variants), policies, starts
        ):
            ops = _merged(base, "operations", {**overrides.get("operations", {}),
                                               "policy": policy})  # fmt: skip
            key = (li, vi, policy, start)
            if key not in scenarios:
                try:
                    scenarios[key] = load_scenario(
                        base_path, **{**overrides, "operations": ops}, sites=sites,
                        nights=spec.nights, start=start,
                        name=f"{spec.name}-{layout.name}",
                    )  # fmt: skip
                except ConfigError as err:
                    axis = where if err.field.startswith("sites") else f"variants.{vi}"
                    raise ConfigError(source, f"{axis} -> {err.field}", err.problem) from None
            scenario = scenarios[key]
            n_tel = sum(len(s.telescopes) for s in scenario.sites)
            for seed in spec.seed_list:
                points.append(Point(layout.name, policy, variant.name, scenario.start, seed,
                                    len(scenario.sites), n_tel,
                                    scenario.model_copy(update={"seed": seed})))  # fmt: skip
    return points
