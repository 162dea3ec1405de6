"""The T-Maze of Lambrechts et al. (2023), registered as ``TMaze-v0`` on import.

``gym.make("TMaze-v0", length=L)`` builds :class:`TMazeEnv` (``L = DEFAULT_LENGTH = 20`` if not
given; it truncates itself at ``horizon(L) = 3L``, so the registration has no fixed
``max_episode_steps``);
``gym.make_vec("TMaze-v0", num_envs=n, length=L)`` builds the numpy :class:`TMazeVectorEnv`.
"""

from gymnasium.envs.registration import register, registry

from tmaze_gym.tmaze import (
    DEFAULT_LENGTH,
    DOWN,
    GAMMA,
    LEFT,
    OBS_CORRIDOR,
    OBS_DOWN,
    OBS_JUNCTION,
    OBS_UP,
    RIGHT,
    UP,
    TMazeEnv,
    exploration_policy,
    horizon,
    sample_exploration_action,
    sample_exploration_actions,
)
from tmaze_gym.vector import TMazeVectorEnv

ENV_ID = "TMaze-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="tmaze_gym.tmaze:TMazeEnv",
        vector_entry_point="tmaze_gym.vector:TMazeVectorEnv",
    )

__all__ = [
    "DEFAULT_LENGTH",
    "DOWN",
    "ENV_ID",
    "GAMMA",
    "LEFT",
    "OBS_CORRIDOR",
    "OBS_DOWN",
    "OBS_JUNCTION",
    "OBS_UP",
    "RIGHT",
    "UP",
    "TMazeEnv",
    "TMazeVectorEnv",
    "exploration_policy",
    "horizon",
    "sample_exploration_action",
    "sample_exploration_actions",
]
