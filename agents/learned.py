"""A trained MaskablePPO model as a twin :class:`~twin.ops.conditions.Policy`.

``skytwin run SCENARIO --policy runs/ppo/model.zip`` loads it through the ``file`` entry
point of ``skytwin.policies`` (:func:`load_policy`). At each decision the policy builds
the ``skytwin/Network-v0`` observation from the Conditions with the env's own code
(:func:`envs.features.observation`), so the network sees the numbers it was trained on,
and answers with the model's deterministic choice among the valid actions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from envs import features as F
from envs.network_env import WAIT_S
from twin.ops.conditions import Conditions, Observe, Wait
from twin.ops.world import World


class LearnedPolicy:
    """Replays a MaskablePPO model (``model.zip``, or a folder holding one) in the twin.

    Its name is ``ppo:<file stem>``. The model fixes the network it schedules: the
    number of telescopes and sites and of candidates offered; :meth:`bind` (called by the
    twin with the run's World) checks them against the scenario. The World gives each
    telescope's index and night windows, as the env uses them; an unbound policy refuses
    to decide rather than guess them.

    | name          | default | meaning                                         |
    |---------------|---------|-------------------------------------------------|
    | path          |         | model.zip, or a folder holding model.zip        |
    | device        | "cpu"   | torch device of the model                       |
    | deterministic | True    | take the most likely action (False: sample it)  |
    """

    def __init__(self, path: str | Path, device: str = "cpu", deterministic: bool = True) -> None:
        try:
            from sb3_contrib import MaskablePPO
        except ImportError as err:  # pragma: no cover - sb3-contrib is a dependency
            raise ImportError("a learned policy needs sb3-contrib: pip install sb3-contrib"
                              ) from err  # fmt: skip
        path = Path(path)
        if path.is_dir():
            path = path / "model.zip"
        if not path.is_file():
            raise FileNotFoundError(f"no model at {path}; train one with `skytwin train`")
        self.path = path
        self.name = f"ppo:{path.stem}"
        self.deterministic = deterministic
        self.model = MaskablePPO.load(path, device=device)
        space = self.model.observation_space
        self.k = int(space["candidates"].shape[0])
        self.n_telescopes = int(space["telescope"].shape[0]) - 2
        self.n_sites = int(space["network"].shape[0]) // len(F.NETWORK_FEATURES)
        self._index: dict[str, int] = {}
        self._nights: dict[str, list] = {}

    def bind(self, world: World) -> None:
        """Take the run's telescopes (order, night windows); check the model fits them."""
        n_tel, n_sites = len(world.telescopes), len(world.sites)
        if (n_tel, n_sites) != (self.n_telescopes, self.n_sites):
            raise ValueError(
                f"{self.path} was trained on a network of {self.n_telescopes} telescopes at "
                f"{self.n_sites} sites; scenario {world.scenario.name!r} has {n_tel} at "
                f"{n_sites}: train a model on it with `skytwin train --scenario ...`"
            )
        self._index = {tw.name: i for i, tw in enumerate(world.telescopes)}
        self._nights = {tw.name: tw.site.nights for tw in world.telescopes}

    def reset(self, seed: np.random.SeedSequence) -> None:
        if not self.deterministic:
            import torch

            torch.manual_seed(int(seed.generate_state(1)[0]))

    def decide(self, conditions: Conditions) -> Observe | Wait:
        chosen = F.rank_candidates(conditions, self.k)
        if chosen.size == 0:  # waiting is the only valid action: no need to ask the model
            return Wait(WAIT_S)
        obs = self.observation(conditions, chosen)
        action, _ = self.model.predict(obs, action_masks=obs["action_mask"].astype(bool),
                                       deterministic=self.deterministic)  # fmt: skip
        action = int(action)
        return Observe(int(chosen[action])) if action < chosen.size else Wait(WAIT_S)

    def observation(self, conditions: Conditions, chosen: np.ndarray | None = None
                    ) -> dict[str, np.ndarray]:  # fmt: skip
        """The env's observation of this decision (what the model is given)."""
        return F.observation(conditions, self._telescope_index(conditions), self.n_telescopes,
                             self.k, self._night_start(conditions), chosen)  # fmt: skip

    def _telescope_index(self, conditions: Conditions) -> int:
        if not self._index:
            raise RuntimeError(f"{self.path}: call bind(world) before deciding (the twin does)")
        return self._index[conditions.telescope.name]

    def _night_start(self, conditions: Conditions) -> float:
        return F.night_start_mjd(self._nights[conditions.telescope.name], conditions.mjd)


def load_policy(path: str | Path, **kwargs):
    """The ``file`` loader of the ``skytwin.policies`` entry points: a MaskablePPO model
    (``model.zip``) or a trained candidate scorer (``scorer.json``, :mod:`agents.scorer`)."""
    from agents.scorer import is_scorer_file, load_scorer

    if is_scorer_file(path):
        return load_scorer(path, **kwargs)
    return LearnedPolicy(path, **kwargs)
