"""Gymnasium and PettingZoo/RLlib environments around the twin.

Registered ids (``import envs`` registers them):

- ``skytwin/Network-v0``: one agent schedules every telescope (Dict observation with an
  action mask; see :class:`envs.network_env.NetworkEnv`).
- ``skytwin/NetworkFlat-v0``: the same with the observation flattened to a Box, for
  algorithms without Dict support (the mask stays available through ``action_masks()``).

Multi-agent (one agent per telescope, acting only at its own decisions):
:class:`envs.multi_env.NetworkParallelEnv` (PettingZoo ``ParallelEnv``) and
:class:`envs.rllib_env.NetworkMultiAgentEnv` (RLlib ``MultiAgentEnv``).
"""

from gymnasium.envs.registration import register, registry

MAX_EPISODE_STEPS = 5000

if "skytwin/Network-v0" not in registry:
    register(id="skytwin/Network-v0", entry_point="envs.network_env:NetworkEnv",
             max_episode_steps=MAX_EPISODE_STEPS)  # fmt: skip
if "skytwin/NetworkFlat-v0" not in registry:
    register(id="skytwin/NetworkFlat-v0", entry_point="envs.flat:make_flat_env",
             max_episode_steps=MAX_EPISODE_STEPS)  # fmt: skip
