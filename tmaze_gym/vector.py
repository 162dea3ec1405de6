"""Many T-Mazes stepped at once with numpy: the ``vector_entry_point`` of ``TMaze-v0``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import error, spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from tmaze_gym.tmaze import (
    BUMP_REWARD,
    GAMMA,
    GOAL_REWARD,
    MOVES,
    OBS_CORRIDOR,
    OBS_DOWN,
    OBS_JUNCTION,
    OBS_UP,
    WRONG_GOAL_REWARD,
    action_error,
    check_layout,
    check_length,
    check_max_episode_steps,
    check_observation_type,
    check_reset_options,
    exploration_policy,
    observation_space,
    render_ansi,
    render_rgb,
)

_DX = np.array([dx for dx, _ in MOVES], dtype=np.int64)
_DY = np.array([dy for _, dy in MOVES], dtype=np.int64)
_ONEHOT = np.eye(4, dtype=np.float32)
_AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)


class TMazeVectorEnv(VectorEnv):
    """``num_envs`` independent T-Mazes (same rules as :class:`tmaze_gym.TMazeEnv`) in numpy arrays.

    Returned by ``gym.make_vec("TMaze-v0", num_envs=n, length=L)``. Sub-environments reset
    themselves when their episode ends, with Gymnasium 1.x semantics:

    - ``AutoresetMode.NEXT_STEP`` (default): the step after an episode's end resets that maze
      (its action is ignored) and returns the first observation with reward 0 and
      ``terminated = truncated = False``;
    - ``AutoresetMode.SAME_STEP``: the maze resets in the step that ends its episode;
      ``info["final_obs"]`` and ``info["final_info"]`` hold the last observation and info.

    Infos follow Gymnasium's vector convention (``info[key]`` array and ``info["_" + key]`` mask):
    ``"layout"`` for mazes that (auto)reset, ``"is_success"`` with ``"layout"`` for mazes whose
    episode ended. Hidden state: ``positions`` (``[num_envs, 2]``) and ``layouts``.

    :param num_envs: number of mazes.
    :param length: corridor length ``L >= 1``.
    :param max_episode_steps: truncation step, ``None`` for ``horizon(length) = 3L``.
    :param observation_type: ``"discrete"`` (``Discrete(4)`` per maze) or ``"onehot"`` (``Box``).
    :param render_mode: ``None``, ``"ansi"`` or ``"rgb_array"``; ``render()`` returns one frame per maze.
    :param autoreset_mode: ``AutoresetMode.NEXT_STEP`` or ``AutoresetMode.SAME_STEP`` (or their values).
    """

    metadata = {
        "render_modes": ["ansi", "rgb_array"],
        "render_fps": 4,
        "gamma": GAMMA,
        "autoreset_mode": AutoresetMode.NEXT_STEP,
    }

    def __init__(
        self,
        num_envs: int,
        length: int,
        max_episode_steps: int | None = None,
        observation_type: str = "discrete",
        render_mode: str | None = None,
        autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP,
    ) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int | np.integer) or num_envs < 1:
            raise ValueError(f"num_envs must be an integer >= 1, got {num_envs!r}")
        try:
            mode = AutoresetMode(autoreset_mode)
        except ValueError:
            mode = None
        if mode not in _AUTORESET_MODES:
            raise ValueError(
                f"autoreset_mode must be one of {[m.value for m in _AUTORESET_MODES]}; got {autoreset_mode!r}"
            )
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None, 'ansi' or 'rgb_array'; got {render_mode!r}")
        self.num_envs = int(num_envs)
        self.length = check_length(length)
        self.max_episode_steps = check_max_episode_steps(max_episode_steps, self.length)
        self.observation_type = check_observation_type(observation_type)
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "autoreset_mode": mode}
        self.autoreset_mode = mode
        self.single_action_space = spaces.Discrete(4)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.single_observation_space = observation_space(self.observation_type)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.exploration_probs = exploration_policy()
        n = self.num_envs
        self._x = np.zeros(n, dtype=np.int64)
        self._y = np.zeros(n, dtype=np.int64)
        self._goal_y = np.zeros(n, dtype=np.int64)  # +1 up, -1 down, 0 before the first reset
        self._steps = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)

    @property
    def positions(self) -> np.ndarray:
        """``[num_envs, 2]`` array of the agents' cells ``(x, y)``."""
        return np.stack([self._x, self._y], axis=1)

    @property
    def layouts(self) -> list[str | None]:
        """The layout of each maze, ``"up"`` or ``"down"`` (``None`` before the first reset)."""
        return [{1: "up", -1: "down"}.get(int(g)) for g in self._goal_y]

    def _observe(self) -> np.ndarray:
        obs = np.where(self._x < self.length, OBS_CORRIDOR, OBS_JUNCTION)
        obs[self._x == 0] = np.where(self._goal_y[self._x == 0] == 1, OBS_UP, OBS_DOWN)
        return _ONEHOT[obs] if self.observation_type == "onehot" else obs

    def _reset_mazes(self, mask: np.ndarray, layout: str | Sequence[str] | None = None) -> None:
        count = int(mask.sum())
        if layout is None:
            goal_y = np.where(self.np_random.random(count) < 0.5, 1, -1)
        elif isinstance(layout, str):
            goal_y = 1 if check_layout(layout) == "up" else -1
        else:
            if len(layout) != self.num_envs:
                raise ValueError(
                    f"options['layout'] must be 'up', 'down' or a sequence of {self.num_envs} of them; "
                    f"got {layout!r}"
                )
            goal_y = np.array([1 if check_layout(m) == "up" else -1 for m in layout])[mask]
        self._goal_y[mask] = goal_y
        self._x[mask] = 0
        self._y[mask] = 0
        self._steps[mask] = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every maze; ``options={"layout": "up" | "down" | [one per maze]}`` forces the layouts."""
        super().reset(seed=seed)
        check_reset_options(options)
        everything = np.ones(self.num_envs, dtype=bool)
        self._reset_mazes(everything, None if options is None else options.get("layout"))
        self._needs_reset[:] = False
        layouts = np.array(self.layouts, dtype=object)
        return self._observe(), {"layout": layouts, "_layout": everything}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not np.any(self._goal_y):
            raise error.ResetNeeded("Cannot call TMazeVectorEnv.step before TMazeVectorEnv.reset")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(f"actions must be an integer array of shape ({self.num_envs},); got {actions!r}")
        bad = (actions < 0) | (actions > 3)
        if bad.any():
            raise action_error(actions[bad][0].item())

        resetting = self._needs_reset.copy()
        nx = self._x + _DX[actions]
        ny = self._y + _DY[actions]
        inside = ((ny == 0) & (nx >= 0) & (nx <= self.length)) | ((nx == self.length) & (np.abs(ny) == 1))
        moving = inside & ~resetting
        self._x = np.where(moving, nx, self._x)
        self._y = np.where(moving, ny, self._y)
        in_goal = moving & (ny != 0)
        rewards = np.where(inside, 0.0, BUMP_REWARD)
        rewards[in_goal] = np.where(ny[in_goal] == self._goal_y[in_goal], GOAL_REWARD, WRONG_GOAL_REWARD)
        rewards[resetting] = 0.0
        self._steps += ~resetting
        terminated = in_goal
        truncated = (self._steps >= self.max_episode_steps) & ~resetting
        done = terminated | truncated

        infos: dict[str, Any] = {}
        if resetting.any():
            self._reset_mazes(resetting)
            infos["layout"] = np.array(self.layouts, dtype=object)
            infos["_layout"] = resetting
        if done.any():
            success = terminated & (self._y == self._goal_y)
            ended = {
                "layout": np.array(self.layouts, dtype=object),
                "_layout": done.copy(),
                "is_success": success,
                "_is_success": done.copy(),
            }
            if self.autoreset_mode == AutoresetMode.NEXT_STEP:
                infos.update(ended)
                infos["_layout"] = done | resetting
            else:
                final_obs = self._observe()
                infos["final_obs"] = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    infos["final_obs"][i] = final_obs[i]
                infos["_final_obs"] = done.copy()
                infos["final_info"] = ended
                infos["_final_info"] = done.copy()
                self._reset_mazes(done)
                infos["layout"] = np.array(self.layouts, dtype=object)
                infos["_layout"] = done.copy()
        self._needs_reset = done if self.autoreset_mode == AutoresetMode.NEXT_STEP else np.zeros_like(done)
        return self._observe(), rewards, terminated, truncated, infos

    def render(self) -> tuple[Any, ...] | None:
        """One frame per maze (text or image, see :class:`tmaze_gym.TMazeEnv`)."""
        if self.render_mode is None:
            return None
        draw = render_ansi if self.render_mode == "ansi" else render_rgb
        return tuple(
            draw(self.length, int(x), int(y), int(g) or 1)
            for x, y, g in zip(self._x, self._y, self._goal_y, strict=True)
        )
