"""``skytwin/NetworkFlat-v0``: the network env with a flat Box observation."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import FlattenObservation

from envs.network_env import NetworkEnv


class MaskedFlatten(FlattenObservation):
    """FlattenObservation that keeps ``action_masks()`` reachable (MaskablePPO)."""

    def action_masks(self) -> np.ndarray:
        return self.env.unwrapped.action_masks()


def make_flat_env(**kwargs) -> gym.Env:
    return MaskedFlatten(NetworkEnv(**kwargs))
