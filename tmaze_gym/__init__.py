"""The T-Maze of Lambrechts et al. (2023), registered as ``TMaze-v0`` on import, and its XOR variant
``XORTMaze-v0`` (:class:`XORTMazeEnv`: a second cue in the corridor, the rewarded arm their XOR).

``gym.make("TMaze-v0", length=L)`` builds :class:`TMazeEnv` (``L = DEFAULT_LENGTH = 20`` if not
given; it truncates itself at ``horizon(L) = 3L``, so the registration has no fixed
``max_episode_steps``);
``gym.make_vec("TMaze-v0", num_envs=n, length=L)`` builds the numpy :class:`TMazeVectorEnv`.
``gym.make("XORTMaze-v0", length=L, cue_position=c)`` builds :class:`XORTMazeEnv` (same defaults and
horizon; ``gym.make_vec`` gives Gymnasium's ``SyncVectorEnv`` of it).
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
from tmaze_gym.xor_tmaze import XOR_LAYOUTS, XORTMazeEnv, xor_goal

ENV_ID = "TMaze-v0"
XOR_ENV_ID = "XORTMaze-v0"

if ENV_ID not in registry:
    register(
        id=ENV_ID,
        entry_point="tmaze_gym.tmaze:TMazeEnv",
        vector_entry_point="tmaze_gym.vector:TMazeVectorEnv",
    )
if XOR_ENV_ID not in registry:
    register(id=XOR_ENV_ID, entry_point="tmaze_gym.xor_tmaze:XORTMazeEnv")

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
    "XOR_ENV_ID",
    "XOR_LAYOUTS",
    "TMazeEnv",
    "TMazeVectorEnv",
    "XORTMazeEnv",
    "exploration_policy",
    "horizon",
    "sample_exploration_action",
    "sample_exploration_actions",
    "xor_goal",
]
