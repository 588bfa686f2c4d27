"""``NetworkMultiAgentEnv``: one agent per telescope, as an RLlib MultiAgentEnv."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

try:
    from ray.rllib.env.multi_agent_env import MultiAgentEnv
except ImportError as err:  # pragma: no cover - ray is a declared dependency
    raise ImportError(
        "envs.rllib_env needs RLlib: pip install 'ray[rllib]' (see pyproject.toml)"
    ) from err

from envs.multi_env import NetworkParallelEnv


class NetworkMultiAgentEnv(MultiAgentEnv):
    """Schedule a telescope network with one agent per telescope, for RLlib.

    ## Description
    The twin and the agents of :class:`envs.multi_env.NetworkParallelEnv` (agent id: the
    telescope's name), with RLlib's convention for agents that do not act every step:
    an agent is in the observations only when its telescope is waiting for a decision,
    and RLlib expects actions only from those agents. Rewards are returned for every
    agent at every step; RLlib adds the rewards a busy agent earns (its exposures
    finishing) to its last action.

    ## Observation space
    Per agent a ``Dict`` shaped for action-masking RLModules
    (``ray.rllib.examples.rl_modules.classes.action_masking_rlm``):

    | key          | shape               | content                                                 |
    |--------------|---------------------|---------------------------------------------------------|
    | action_mask  | (n_candidates + 1,) | float32 1.0 where the action is valid (the last: wait)   |
    | observations | (n_features,)       | the parallel env's other keys, flattened by ``gymnasium.spaces.flatten`` |

    ## Action space
    Per agent ``Discrete(n_candidates + 1)``, as in the parallel env.

    ## Rewards
    Per agent, as in the parallel env (its own science, alert, idle and slew terms).

    ## Episode end
    When the nights have been simulated (``terminateds["__all__"]``) or after
    ``max_cycles`` steps (``truncateds["__all__"]``); the last step carries an
    observation for every agent (RLlib needs one to bootstrap a truncated agent).

    ## Arguments
    ``config`` (RLlib's ``env_config``): the keyword arguments of
    :class:`~envs.multi_env.NetworkParallelEnv`.

    ## Version history
    * v0: first version.
    """

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.par_env = NetworkParallelEnv(**dict(config or {}))
        self.possible_agents = list(self.par_env.possible_agents)
        self.agents = []
        inner = self.par_env.observation_space(self.possible_agents[0])
        n_actions = self.par_env.k + 1
        self._features, agent_space = agent_spaces(inner, n_actions)
        self.observation_spaces = {a: agent_space for a in self.possible_agents}
        self.action_spaces = {a: spaces.Discrete(n_actions) for a in self.possible_agents}

    def reset(self, *, seed: int | None = None, options: dict | None = None
              ) -> tuple[dict[str, dict], dict[str, dict]]:  # fmt: skip
        obs, infos = self.par_env.reset(seed=seed, options=options)
        self.agents = list(self.par_env.agents)
        deciding = [a for a in obs if infos[a]["deciding"]]
        return ({a: self._convert(obs[a]) for a in deciding},
                {a: infos[a] for a in deciding})  # fmt: skip

    def step(self, action_dict: dict[str, Any]) -> tuple[dict, dict, dict, dict, dict]:
        obs, rewards, terms, truncs, infos = self.par_env.step(action_dict)
        terminated, truncated = any(terms.values()), any(truncs.values())
        ended = terminated or truncated
        show = list(obs) if ended else [a for a in obs if infos[a]["deciding"]]
        terminateds = {"__all__": terminated, **dict.fromkeys(terms, terminated)}
        truncateds = {"__all__": truncated, **dict.fromkeys(truncs, truncated)}
        self.agents = list(self.par_env.agents)
        return ({a: self._convert(obs[a]) for a in show}, dict(rewards), terminateds, truncateds,
                {a: infos[a] for a in show})  # fmt: skip

    def render(self) -> str | None:
        return self.par_env.render()

    def close(self) -> None:
        self.par_env.close()

    def _convert(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return agent_observation(self._features, obs)


def agent_spaces(inner: spaces.Dict, n_actions: int) -> tuple[spaces.Dict, spaces.Dict]:
    """(the features' ``Dict``, an agent's observation space) from the parallel env's
    per-agent space: what RLlib trains on and what a loaded module is rebuilt for."""
    features = spaces.Dict({k: s for k, s in inner.spaces.items() if k != "action_mask"})
    agent = spaces.Dict({
        "action_mask": spaces.Box(0.0, 1.0, shape=(n_actions,), dtype=np.float32),
        "observations": spaces.flatten_space(features),
    })  # fmt: skip
    return features, agent


def agent_observation(features: spaces.Dict, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """An agent's observation from a parallel-env observation: the mask as float32 and
    the other keys flattened in ``features``' order (the one conversion used in training
    and in the twin)."""
    rest = {k: v for k, v in obs.items() if k != "action_mask"}
    return {
        "action_mask": np.asarray(obs["action_mask"]).astype(np.float32),
        "observations": spaces.flatten(features, rest).astype(np.float32),
    }
