"""A trained MaskablePPO policy as a twin :class:`~twin.ops.conditions.Policy`.

``skytwin run SCENARIO --policy runs/ppo`` loads it through the ``file`` entry point of
``skytwin.policies`` (:func:`load_policy`), from the safe folder format of
:mod:`agents.policy_format` (manifest.json + tensors-only policy.pt): no file handed to
the twin is unpickled, so none can run code (see :mod:`agents.safe_files`). At each
decision the policy builds the ``skytwin/Network-v0`` observation from the Conditions with
the env's own code (:func:`envs.features.observation`), so the network sees the numbers it
was trained on, and answers with its deterministic choice among the valid actions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from agents import policy_format as PF
from agents.safe_files import KIND_PROBLEMS, excerpt, file_kind, kind_problem, os_problem, read_json
from envs import features as F
from envs.episode import WAIT_S
from twin.errors import ConfigError
from twin.ops.conditions import Conditions, Observe, Wait
from twin.ops.world import World


class LearnedPolicy:
    """Replays a saved MaskablePPO policy (its folder, or its manifest.json) in the twin.

    Its name is ``ppo:<folder name>``, or ``rllib:<folder name>`` for an RLlib module exported
    by :func:`agents.rllib_policy.export_policy`. The policy fixes the network it schedules:
    the number of telescopes and sites and of candidates offered; :meth:`bind` (called by
    the twin with the run's World) checks them against the scenario. The World gives each
    telescope's index and night windows, as the env uses them; an unbound policy refuses to
    decide rather than guess them.

    | name          | default | meaning                                            |
    |---------------|---------|----------------------------------------------------|
    | path          |         | folder with manifest.json + policy.pt, or the json |
    | device        | "cpu"   | torch device of the network                        |
    | deterministic | True    | take the most likely action (False: sample it)     |
    """

    def __init__(self, path: str | Path, device: str = "cpu", deterministic: bool = True) -> None:
        self.manifest_path, section = PF.read_manifest(path)
        self.path = self.manifest_path.parent
        rllib = section["class"] == PF.RLLIB_CLASS  # an exported RLlib module
        self.name = f"{'rllib' if rllib else 'ppo'}:{self.path.resolve().name}"
        self.deterministic = deterministic
        self.policy = PF.build_policy(self.manifest_path, section, device)
        self.k = section["n_candidates"]
        self.n_telescopes = section["n_telescopes"]
        self.n_sites = section["n_sites"]
        self.measured = section.get("measured", False)  # trained with a pipeline's measurements
        self._names: list[str] = []
        self._index: dict[str, int] = {}
        self._nights: dict[str, list] = {}

    def bind(self, world: World) -> None:
        """Take the run's telescopes (order, night windows); check the policy fits them."""
        n_tel, n_sites = len(world.telescopes), len(world.sites)
        if (n_tel, n_sites) != (self.n_telescopes, self.n_sites):
            raise ConfigError(str(self.path), "policy", (
                f"trained on a network of {self.n_telescopes} telescopes at {self.n_sites} "
                f"sites; scenario {world.scenario.name!r} has {n_tel} at {n_sites}: train "
                "a policy on it with `skytwin train --scenario ...`"))  # fmt: skip
        self._names = [tw.name for tw in world.telescopes]
        self._index = {name: i for i, name in enumerate(self._names)}
        self._nights = {tw.name: tw.site.nights for tw in world.telescopes}

    def reset(self, seed: np.random.SeedSequence) -> None:
        if not self.deterministic:
            import torch

            torch.manual_seed(int(seed.generate_state(1)[0]))

    def decide(self, conditions: Conditions) -> Observe | Wait:
        chosen = F.rank_candidates(conditions, self.k)
        if chosen.size == 0:  # waiting is the only valid action: no need to ask the network
            return Wait(WAIT_S)
        action = self.predict(self.observation(conditions, chosen))
        return Observe(int(chosen[action])) if action < chosen.size else Wait(WAIT_S)

    def predict(self, obs: dict[str, np.ndarray]) -> int:
        """The network's action for one observation, among those its mask allows (what
        ``MaskablePPO.predict(obs, action_masks=..., deterministic=...)`` answers)."""
        action, _ = self.policy.predict(obs, action_masks=obs["action_mask"].astype(bool),
                                        deterministic=self.deterministic)  # fmt: skip
        return int(action)

    def observation(self, conditions: Conditions, chosen: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:  # fmt: skip
        """The env's observation of this decision (what the network is given)."""
        return F.observation(conditions, self._telescope_index(conditions), self.n_telescopes,
                             self.k, self._night_start(conditions), chosen,
                             self._names if self.measured else None)  # fmt: skip

    def _telescope_index(self, conditions: Conditions) -> int:
        if not self._index:
            raise RuntimeError(f"{self.path}: call bind(world) before deciding (the twin does)")
        return self._index[conditions.telescope.name]

    def _night_start(self, conditions: Conditions) -> float:
        return F.night_start_mjd(self._nights[conditions.telescope.name], conditions.mjd)


def load_policy(path: str | Path, **kwargs):
    """The ``file`` loader of the ``skytwin.policies`` entry points: a saved MaskablePPO
    policy (:mod:`agents.policy_format`) or a trained candidate scorer (``scorer.json``,
    :mod:`agents.scorer`). Anything else (a pickle, SB3's model.zip, a folder without a
    policy, an unreadable or binary file) raises ConfigError(path, "policy", ...)."""
    from agents.scorer import load_scorer

    kind, where = saved_policy_kind(Path(path))
    return LearnedPolicy(where, **kwargs) if kind == "network" else load_scorer(where, **kwargs)


def saved_policy_kind(path: Path) -> tuple[str, Path]:
    """("network" or "scorer", the file to load) for a saved policy's path, judged from
    JSON fields and first bytes only."""
    from agents.scorer import FORMAT as SCORER_FORMAT

    source = str(path)
    if path.is_dir():
        if (path / PF.MANIFEST).is_file():
            return "network", path / PF.MANIFEST  # read_manifest says what is wrong with it
        if (path / "scorer.json").is_file():
            return "scorer", path / "scorer.json"
        if (path / "model.zip").is_file():
            return "network", path  # read_manifest's refusal says how to convert it
        raise ConfigError(source, "policy", f"a folder without a saved policy; {allowed()}")
    try:
        kind = file_kind(path)
    except OSError as err:
        raise ConfigError(source, "policy", f"{os_problem(err)}; {allowed()}") from None
    if kind in KIND_PROBLEMS:
        raise ConfigError(source, "policy", f"{kind_problem(kind, path)}; {allowed()}")
    if kind == "text":
        with path.open("rb") as f:
            head = f.read(40)
        raise ConfigError(source, "policy", f"a text file starting {excerpt(head)}, not a "
                          f"saved policy; {allowed()}")  # fmt: skip
    try:
        fmt = read_json(path, "policy file").get("format")
    except ConfigError as err:
        raise ConfigError(source, err.field, f"{err.problem}; {allowed()}") from None
    if fmt == PF.FORMAT:
        return "network", path
    if fmt == SCORER_FORMAT:
        return "scorer", path
    if path.name in (PF.MANIFEST, "scorer.json"):  # its own loader names the bad field
        return ("network" if path.name == PF.MANIFEST else "scorer"), path
    got = excerpt(str(fmt)) if fmt is not None else "no 'format' field"
    raise ConfigError(source, "policy", f"a JSON file that is not a saved policy (format: "
                      f"{got}); {allowed()}")  # fmt: skip


def allowed() -> str:
    """What ``--policy`` / ``operations.policy`` accept, for error messages."""
    from agents.scorer import FORMAT as SCORER_FORMAT
    from twin.ops.policies import available_policies

    return (f"allowed: a built-in policy ({', '.join(available_policies())}), a policy "
            f"folder holding {PF.MANIFEST} + {PF.WEIGHTS} ({PF.FORMAT}) or its {PF.MANIFEST}, "
            f"or a scorer.json ({SCORER_FORMAT})")  # fmt: skip
