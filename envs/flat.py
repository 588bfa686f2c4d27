"""``skytwin/NetworkFlat-v0``: the network env with a flat Box observation."""

from __future__ import annotations

from functools import partial

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation

from envs.network_env import NetworkEnv


class MaskedFlatten(FlattenObservation):
    """FlattenObservation that keeps ``action_masks()`` reachable (MaskablePPO) and can be
    pickled (Gymnasium's wrapper keeps its flattening function as a lambda)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.func = partial(spaces.utils.flatten, env.observation_space)

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()


def make_flat_env(**kwargs) -> gym.Env:
    return MaskedFlatten(NetworkEnv(**kwargs))
