"""Find pipeline stages by name through the ``skytwin.stages`` entry points.

As with policies (:mod:`twin.ops.policies`): the twin never imports ``models``; a stage
package registers its class under a name and ``--pipeline quality,anomaly`` or the
scenario's ``pipeline.stages`` picks it. A stage's own heavy imports (torch) happen when
it is instantiated, so a run without a pipeline never pays for them.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import entry_points

from twin.errors import ConfigError
from twin.pipeline.stage import PipelineStage

GROUP = "skytwin.stages"


def available_stages() -> list[str]:
    return sorted(ep.name for ep in entry_points(group=GROUP))


def resolve_stage(name: str, source: str = "--pipeline") -> PipelineStage:
    eps = {ep.name: ep for ep in entry_points(group=GROUP)}
    if name not in eps:
        raise ConfigError(source, "pipeline", f"unknown stage {name!r}; allowed: "
                          f"{', '.join(available_stages()) or '(none installed)'}")  # fmt: skip
    try:
        cls = eps[name].load()
    except ImportError as err:
        raise ConfigError(source, "pipeline", f"stage {name!r} cannot be loaded ({err.name} "
                          "is not installed: pip install skytwin[models])") from None  # fmt: skip
    try:
        stage = cls()
    except ImportError as err:
        raise ConfigError(source, "pipeline", f"stage {name!r} cannot start ({err.name} is not "
                          "installed: pip install skytwin[models])") from None  # fmt: skip
    except FileNotFoundError as err:  # a model stage without its weights
        raise ConfigError(source, "pipeline", f"stage {name!r} cannot start: {err}") from None
    if not isinstance(stage, PipelineStage):
        raise ConfigError(source, "pipeline", f"{eps[name].value} is not a PipelineStage")
    return stage


def resolve_stages(names: Sequence[str], source: str = "--pipeline") -> list[PipelineStage]:
    if len(set(names)) != len(names):
        raise ConfigError(source, "pipeline", f"a stage is named twice in {list(names)}")
    return [resolve_stage(n, source) for n in names]
