"""Many T-Mazes stepped at once with numpy: the ``vector_entry_point`` of ``TMaze-v0``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import error, spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from tmaze_gym.tmaze import (
    DEFAULT_LENGTH,
    GAMMA,
    MOVES,
    action_error,
    check_layout,
    check_length,
    check_max_episode_steps,
    check_observation_type,
    check_reset_options,
    exploration_policy,
    observation_space,
    observe,
    render_ansi,
    render_rgb,
    transition,
)

_ONEHOT = np.eye(4, dtype=np.float32)
_AUTORESET_MODES = (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)
_LAYOUT_NAMES = np.array(["up", "down"], dtype=object)


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
    episode ended (the single env puts both in every step's info; here the masks say where
    they apply). Hidden state: ``positions`` (``[num_envs, 2]``) and ``layouts``.

    :param num_envs: number of mazes.
    :param length: corridor length ``L >= 1`` (``DEFAULT_LENGTH`` = 20 by default, as the single env).
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
        length: int = DEFAULT_LENGTH,
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
        self._build_tables()
        n = self.num_envs
        self._cell = np.zeros(
            n, dtype=np.int64
        )  # index into the tables: x for (x, 0), L + 1 up goal, L + 2 down
        self._down = np.zeros(n, dtype=np.int64)  # layout: 0 up, 1 down
        self._steps = np.zeros(n, dtype=np.int64)
        self._needs_reset = np.zeros(n, dtype=bool)
        self._started = False

    def _build_tables(self) -> None:
        """Tabulate the rules (docs/specification.md §2) over the ``L + 3`` cells."""
        length = self.length
        cells = [(x, 0) for x in range(length + 1)] + [(length, 1), (length, -1)]
        index = {cell: i for i, cell in enumerate(cells)}
        self._cell_xy = np.array(cells, dtype=np.int64)
        self._next = np.zeros((len(cells), 4), dtype=np.int64)
        self._reward = np.zeros((2, len(cells), 4))
        for i, (x, y) in enumerate(cells):
            for action in range(len(MOVES)):
                for down, goal_y in enumerate((1, -1)):  # the rules of the single env, tabulated
                    nx, ny, reward, _ = transition(length, x, y, goal_y, action)
                    self._next[i, action] = index[(nx, ny)]
                    self._reward[down, i, action] = reward
        self._terminal = self._cell_xy[:, 1] != 0
        obs = np.array([[observe(length, x, goal_y) for x, _ in cells] for goal_y in (1, -1)], dtype=np.int64)
        self._obs = obs if self.observation_type == "discrete" else _ONEHOT[obs]

    @property
    def positions(self) -> np.ndarray:
        """``[num_envs, 2]`` array of the agents' cells ``(x, y)``."""
        return self._cell_xy[self._cell]

    @property
    def layouts(self) -> list[str | None]:
        """The layout of each maze, ``"up"`` or ``"down"`` (``None`` before the first reset)."""
        if not self._started:
            return [None] * self.num_envs
        return _LAYOUT_NAMES[self._down].tolist()

    def _observe(self) -> np.ndarray:
        return self._obs[self._down, self._cell]

    def _reset_mazes(self, mask: np.ndarray, layout: str | Sequence[str] | None = None) -> None:
        if layout is None:
            down = self.np_random.random(int(mask.sum())) >= 0.5
        elif isinstance(layout, str):
            down = check_layout(layout) == "down"
        else:
            if len(layout) != self.num_envs:
                raise ValueError(
                    f"options['layout'] must be 'up', 'down' or a sequence of {self.num_envs} of them; "
                    f"got {layout!r}"
                )
            down = np.array([check_layout(m) == "down" for m in layout])[mask]
        self._down[mask] = down
        self._cell[mask] = 0
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
        self._started = True
        return self._observe(), {"layout": _LAYOUT_NAMES[self._down], "_layout": everything}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        if not self._started:
            raise error.ResetNeeded("Cannot call TMazeVectorEnv.step before TMazeVectorEnv.reset")
        actions = np.asarray(actions)
        if actions.shape != (self.num_envs,) or actions.dtype.kind not in "iu":
            raise ValueError(f"actions must be an integer array of shape ({self.num_envs},); got {actions!r}")
        bad = (actions < 0) | (actions > 3)
        if np.count_nonzero(bad):
            raise action_error(actions[bad][0].item())

        rewards = self._reward[self._down, self._cell, actions]
        self._cell = self._next[self._cell, actions]
        self._steps += 1
        infos: dict[str, Any] = {}
        resetting = self._needs_reset
        if np.count_nonzero(resetting):  # NEXT_STEP: these mazes ignore their action and start a new episode
            self._reset_mazes(resetting)
            rewards[resetting] = 0.0
            infos["layout"] = _LAYOUT_NAMES[self._down]
            infos["_layout"] = resetting
        terminated = self._terminal[self._cell]
        truncated = self._steps >= self.max_episode_steps
        done = terminated | truncated
        if np.count_nonzero(done):
            ended = {
                "layout": _LAYOUT_NAMES[self._down],
                "_layout": done | resetting,
                "is_success": terminated & (self._cell == self.length + 1 + self._down),
                "_is_success": done,
            }
            if self.autoreset_mode == AutoresetMode.NEXT_STEP:
                infos.update(ended)
            else:
                final_obs = self._observe()
                infos["final_obs"] = np.full(self.num_envs, None, dtype=object)
                for i in np.flatnonzero(done):
                    infos["final_obs"][i] = final_obs[i]
                infos["_final_obs"] = done
                infos["final_info"] = {**ended, "_layout": done}
                infos["_final_info"] = done
                self._reset_mazes(done)
                infos["layout"] = _LAYOUT_NAMES[self._down]
                infos["_layout"] = done
        if self.autoreset_mode == AutoresetMode.NEXT_STEP:
            self._needs_reset = done.copy()
        return self._observe(), rewards, terminated, truncated, infos

    def render(self) -> tuple[Any, ...] | None:
        """One frame per maze (text or image, see :class:`tmaze_gym.TMazeEnv`)."""
        if self.render_mode is None:
            return None
        draw = render_ansi if self.render_mode == "ansi" else render_rgb
        goal_y = 1 - 2 * self._down
        return tuple(
            draw(self.length, int(x), int(y), int(g))
            for (x, y), g in zip(self.positions, goal_y, strict=True)
        )
