"""The T-Maze of Lambrechts et al. (2023), Appendix D, as a Gymnasium environment."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import Env, error, spaces
from gymnasium.envs.registration import EnvSpec

RIGHT, UP, LEFT, DOWN = 0, 1, 2, 3
OBS_UP, OBS_DOWN, OBS_CORRIDOR, OBS_JUNCTION = 0, 1, 2, 3

LAYOUTS = ("up", "down")
OBSERVATION_TYPES = ("discrete", "onehot")
GAMMA = 0.98
DEFAULT_LENGTH = 20  # the paper's shortest corridor (Fig. 13; docs/specification.md §8)

BUMP_REWARD = -0.1
GOAL_REWARD = 4.0
WRONG_GOAL_REWARD = -0.1

# (dx, dy) of each action, indexed by action.
MOVES = ((1, 0), (0, 1), (-1, 0), (0, -1))

_EXPLORATION_PROBS = np.array([1 / 2, 1 / 6, 1 / 6, 1 / 6])
_ONEHOT = np.eye(4, dtype=np.float32)


def exploration_policy() -> np.ndarray:
    """Action probabilities of the exploration policy ℰ: ``[1/2, 1/6, 1/6, 1/6]`` (Right, Up, Left, Down)."""
    return _EXPLORATION_PROBS.copy()


def sample_exploration_action(rng: np.random.Generator) -> int:
    """Draw one action from the exploration policy ℰ with ``rng``."""
    u = rng.random()
    if u < 0.5:
        return RIGHT
    return min(1 + int((u - 0.5) * 6.0), DOWN)


def sample_exploration_actions(rng: np.random.Generator, size: int) -> np.ndarray:
    """Draw ``size`` independent actions from ℰ (int64 array), as many mazes stepped at once need."""
    u = rng.random(size)
    return np.where(u < 0.5, RIGHT, np.minimum(1 + ((u - 0.5) * 6.0).astype(np.int64), DOWN))


def transition(length: int, x: int, y: int, goal_y: int, action: int) -> tuple[int, int, float, bool]:
    """The rules of the T-Maze (Appendix D), once for both environments: from cell ``(x, y)`` of a maze of
    corridor length ``length`` whose rewarding goal is at ``(length, goal_y)``, the move ``action``
    (0..3) gives the new cell, the reward and whether the episode terminates.

    A move that would leave the maze keeps the agent in place (a bump, −0.1); a move along the corridor
    pays 0; entering a goal cell terminates, +4 for the rewarding one and −0.1 for the other.
    """
    dx, dy = MOVES[action]
    nx, ny = x + dx, y + dy
    if ny == 0 and 0 <= nx <= length or nx == length and ny in (1, -1):
        if ny == 0:
            return nx, ny, 0.0, False
        return nx, ny, (GOAL_REWARD if ny == goal_y else WRONG_GOAL_REWARD), True
    return x, y, BUMP_REWARD, False


def observe(length: int, x: int, goal_y: int) -> int:
    """What the agent sees in column ``x`` (Appendix D): the layout at the start, then the corridor, then
    the junction (also in both goal cells)."""
    if x == 0:
        return OBS_UP if goal_y == 1 else OBS_DOWN
    return OBS_CORRIDOR if x < length else OBS_JUNCTION


def check_length(length: Any, minimum: int = 1) -> int:
    """Return ``length`` as an int, or raise a ``ValueError`` if it is not an integer >= ``minimum``."""
    if isinstance(length, bool) or not isinstance(length, int | np.integer) or length < minimum:
        raise ValueError(f"length must be an integer >= {minimum}, got {length!r}")
    return int(length)


def horizon(length: int, probs: Sequence[float] | np.ndarray | None = None) -> int:
    """Truncation horizon ``H = ceil(L / (P(Right) - P(Left)))`` (eq. D.9); ``3 * length`` for ℰ.

    :param length: corridor length ``L >= 1``.
    :param probs: action probabilities (Right, Up, Left, Down) of the exploration policy; ℰ if None.
    """
    length = check_length(length)
    p = exploration_policy() if probs is None else np.asarray(probs, dtype=np.float64)
    if p.shape != (4,) or np.any(p < 0) or not math.isclose(float(p.sum()), 1.0, abs_tol=1e-9):
        raise ValueError(f"probs must be 4 non-negative probabilities summing to 1, got {probs!r}")
    drift = float(p[RIGHT] - p[LEFT])
    if drift <= 0:
        raise ValueError(f"probs must have P(Right) > P(Left) for a finite horizon, got {probs!r}")
    steps = length / drift
    # Float round-off (1/6 is not exact) must not turn 3L into 3L + 1.
    nearest = round(steps)
    return int(nearest) if math.isclose(steps, nearest, rel_tol=1e-9) else math.ceil(steps)


def check_max_episode_steps(max_episode_steps: Any, length: int) -> int:
    """The truncation step: ``horizon(length)`` if None, else ``max_episode_steps`` (an integer >= 1)."""
    if max_episode_steps is None:
        return horizon(length)
    if (
        isinstance(max_episode_steps, bool)
        or not isinstance(max_episode_steps, int | np.integer)
        or max_episode_steps < 1
    ):
        raise ValueError(f"max_episode_steps must be None or an integer >= 1, got {max_episode_steps!r}")
    return int(max_episode_steps)


def check_observation_type(observation_type: Any) -> str:
    """Return ``observation_type`` if it is one of ``OBSERVATION_TYPES``, else raise a ``ValueError``."""
    if observation_type not in OBSERVATION_TYPES:
        raise ValueError(f"observation_type must be one of 'discrete', 'onehot'; got {observation_type!r}")
    return observation_type


def check_layout(layout: Any) -> str:
    """Return ``layout`` if it is ``"up"`` or ``"down"``, else raise a ``ValueError``."""
    if layout not in LAYOUTS:
        raise ValueError(f"options['layout'] must be one of 'up', 'down'; got {layout!r}")
    return layout


def check_reset_options(options: dict[str, Any] | None, allowed: tuple[str, ...] = ("layout",)) -> None:
    """Raise a ``ValueError`` naming the allowed keys if ``options`` holds an unknown one."""
    if options is None:
        return
    if not isinstance(options, dict):
        raise ValueError(f"options must be None or a dict with keys {allowed}; got {options!r}")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"unknown reset option(s) {unknown}; allowed options: {list(allowed)}")


def action_error(action: Any) -> ValueError:
    """The error for an action outside 0..3."""
    return ValueError(f"action must be one of 0 (Right), 1 (Up), 2 (Left), 3 (Down); got {action!r}")


def observation_space(observation_type: str) -> spaces.Space:
    """Single-maze observation space: ``Discrete(4)`` or a one-hot ``Box(0, 1, (4,), float32)``."""
    if observation_type == "onehot":
        return spaces.Box(0.0, 1.0, (4,), np.float32)
    return spaces.Discrete(4)


def render_ansi(length: int, x: int, y: int, goal_y: int) -> str:
    """The maze as text: ``A`` agent, ``.`` free cell, ``G`` rewarding goal, ``X`` wrong goal."""
    rows = []
    for row_y in (1, 0, -1):
        goal = "G" if row_y == goal_y else "X"
        cells = ["."] * (length + 1) if row_y == 0 else [" "] * length + [goal]
        if y == row_y:
            cells[x] = "A"
        rows.append("".join(cells))
    return "\n".join(rows) + "\n"


_CELL_PX = 8
_COLOURS = {
    "wall": (40, 40, 40),
    "free": (230, 230, 230),
    "agent": (220, 40, 40),
    "goal": (40, 180, 60),
    "wrong": (120, 120, 160),
}


def render_rgb(length: int, x: int, y: int, goal_y: int) -> np.ndarray:
    """The maze as a ``uint8`` image of shape ``(3 * 8, (length + 1) * 8, 3)``: one 8×8 px square per cell."""
    grid = np.empty((3, length + 1, 3), dtype=np.uint8)
    grid[:] = _COLOURS["wall"]
    grid[1, :] = _COLOURS["free"]
    grid[1 - goal_y, length] = _COLOURS["goal"]  # row 0 is y = +1, row 2 is y = -1
    grid[1 + goal_y, length] = _COLOURS["wrong"]
    grid[1 - y, x] = _COLOURS["agent"]
    return np.repeat(np.repeat(grid, _CELL_PX, axis=0), _CELL_PX, axis=1)


class TMazeEnv(Env):
    """
    ## Description
    The T-Maze of Lambrechts et al. (2023), Appendix D: a corridor of cells ``(0, 0) … (L, 0)``
    ending in a junction ``(L, 0)`` with two goal cells, ``(L, 1)`` above and ``(L, -1)`` below.
    At the start cell the agent sees which goal pays (the *layout*, up or down); along the
    corridor it sees nothing about it, so it must remember the first observation for ``L`` steps.

    ```
        X      <- (L, 1): the wrong goal here (layout "down")
    A.....     <- corridor, agent A at (0, 0), junction at (L, 0)
        G      <- (L, -1): the rewarding goal
    ```

    ## Action Space
    ``Discrete(4)``:

    | Num | Action | Move    |
    |-----|--------|---------|
    | 0   | Right  | (+1, 0) |
    | 1   | Up     | (0, +1) |
    | 2   | Left   | (-1, 0) |
    | 3   | Down   | (0, -1) |

    A move that would leave the maze keeps the agent in place (a *bump*).

    ## Observation Space
    ``Discrete(4)`` by default:

    | Num | Observation | Where                                       |
    |-----|-------------|---------------------------------------------|
    | 0   | Up          | at (0, 0) when the layout is up             |
    | 1   | Down        | at (0, 0) when the layout is down           |
    | 2   | Corridor    | at (x, 0), x = 1 … L − 1                    |
    | 3   | Junction    | at (L, 0) and at both goal cells            |

    With ``observation_type="onehot"`` the same observation is the row of the 4 × 4 identity,
    a ``Box(0, 1, (4,), float32)``, so the MLP/LSTM policies of Stable-Baselines3 and
    sb3-contrib work on it without a wrapper (they also one-hot ``Discrete`` themselves).

    ## Starting State
    The agent starts at (0, 0); the layout is drawn up or down with probability 1/2 from
    ``self.np_random`` and fixed for the episode. ``reset(options={"layout": "up"})`` (or
    ``"down"``) forces it.

    ## Reward
    - 0 for a move;
    - −0.1 for a bump (state unchanged);
    - +4 for entering the goal cell of the layout;
    - −0.1 for entering the other goal cell.

    The optimal undiscounted return is 4, in L + 1 steps. ``metadata["gamma"]`` records the
    paper's discount 0.98 (the agent owns γ).

    ## Episode End
    - Termination: the agent enters either goal cell.
    - Truncation: after ``max_episode_steps`` actions, by default the horizon
      ``H = ceil(L / (P(Right) − P(Left))) = 3L`` of the exploration policy (eq. D.9).
      The environment truncates itself: ``TMaze-v0`` is registered without a fixed
      ``max_episode_steps`` so the horizon follows ``length``, and ``env.spec.max_episode_steps``
      reports it. ``TMazeEnv(L, max_episode_steps=N)`` sets another horizon; through
      ``gym.make``, the keyword ``max_episode_steps=N`` is Gymnasium's own and adds a
      ``TimeLimit(N)`` on top of the env's horizon, so the episode ends at ``min(N, 3L)``.

    ## Information
    ``reset`` returns ``{"layout": "up" | "down"}``; every ``step`` returns
    ``{"layout": ..., "is_success": bool}``, ``is_success`` being ``True`` only at the step that
    enters the rewarding goal. It is there at every step so that an episode cut by any
    ``TimeLimit`` still reports a failure: Stable-Baselines3 logs it as ``rollout/success_rate``.

    Hidden state, for tests: ``env.unwrapped.position`` is ``(x, y)`` and ``env.unwrapped.layout``
    is ``"up"`` or ``"down"`` (``None`` before the first reset).

    ## Arguments
    ```python
    import gymnasium as gym
    import tmaze_gym

    env = gym.make(
        "TMaze-v0", length=20, max_episode_steps=None, observation_type="discrete", render_mode="ansi"
    )
    ```
    - ``length``: corridor length ``L >= 1``; 20 by default (``DEFAULT_LENGTH``, the paper's
      shortest corridor, Fig. 13), so ``gym.make("TMaze-v0")`` and
      ``DRQN("RecurrentQPolicy", "TMaze-v0")`` work as they are.
    - ``max_episode_steps``: truncation step, ``None`` for ``horizon(length) = 3L``.
    - ``observation_type``: ``"discrete"`` (``Discrete(4)``) or ``"onehot"`` (``Box``).
    - ``render_mode``: ``None``, ``"ansi"`` (text, ``A`` agent, ``G`` rewarding goal, ``X`` wrong
      goal) or ``"rgb_array"`` (``uint8`` image, 8 × 8 px per cell).

    ``gym.make_vec("TMaze-v0", num_envs=n, length=L)`` returns the numpy
    :class:`tmaze_gym.vector.TMazeVectorEnv`.

    ## References
    Lambrechts, De Geeter, Vecoven, Ernst, Drion, *Warming up recurrent neural networks to
    maximise reachable multistability greatly improves learning*, Neural Networks 166 (2023),
    Appendix D (T-Maze, eq. D.9 for the horizon).

    ## Version History
    - v0: initial version (the paper's horizon 3L, not the authors' code's 3L − 1). Later in v0,
      ``length`` got its default L = 20 (calls that pass it are unchanged).
    """

    metadata = {"render_modes": ["ansi", "rgb_array"], "render_fps": 4, "gamma": GAMMA}

    def __init__(
        self,
        length: int = DEFAULT_LENGTH,
        max_episode_steps: int | None = None,
        observation_type: str = "discrete",
        render_mode: str | None = None,
    ) -> None:
        self.length = check_length(length)
        self.max_episode_steps = check_max_episode_steps(max_episode_steps, self.length)
        self.observation_type = check_observation_type(observation_type)
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None, 'ansi' or 'rgb_array'; got {render_mode!r}")
        self.render_mode = render_mode
        self.action_space = spaces.Discrete(4)
        self.observation_space = observation_space(self.observation_type)
        self.exploration_probs = exploration_policy()
        self._x = 0
        self._y = 0
        self._goal_y = 0  # +1 layout up, -1 layout down, 0 before the first reset
        self._ended = False  # the episode terminated or was truncated: step needs a reset
        self._steps = 0
        self._episode_info: dict[str, Any] = {}  # what every info of the episode holds (set by reset)
        self._spec: EnvSpec | None = None

    @property
    def spec(self) -> EnvSpec | None:
        """The spec given by ``gym.make``, with ``max_episode_steps`` set to the env's own horizon."""
        return self._spec

    @spec.setter
    def spec(self, value: EnvSpec | None) -> None:
        if value is not None and value.max_episode_steps is None:
            value = dataclasses.replace(value, max_episode_steps=self.max_episode_steps)
        self._spec = value

    @property
    def position(self) -> tuple[int, int]:
        """The agent's cell ``(x, y)``."""
        return self._x, self._y

    @property
    def layout(self) -> str | None:
        """``"up"`` or ``"down"``: which goal pays (``None`` before the first reset)."""
        return {1: "up", -1: "down"}.get(self._goal_y)

    def _observe(self) -> int:
        return observe(self.length, self._x, self._goal_y)

    def _observation(self) -> int | np.ndarray:
        obs = self._observe()
        return _ONEHOT[obs].copy() if self.observation_type == "onehot" else obs

    def _start_episode(self, options: dict[str, Any]) -> None:
        """Set the episode's layout: ``options["layout"]`` (validated) if given, else a random one from
        ``self.np_random``. Subclasses with other layouts override this and ``_info``."""
        if "layout" in options:
            self._goal_y = 1 if check_layout(options["layout"]) == "up" else -1
        else:
            self._goal_y = 1 if self.np_random.random() < 0.5 else -1

    def _info(self) -> dict[str, Any]:
        """The part of ``info`` fixed for the episode: ``{"layout": ...}``."""
        return {"layout": self.layout}

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[int | np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        check_reset_options(options)
        self._start_episode(options or {})
        self._episode_info = self._info()
        self._x = self._y = self._steps = 0
        self._ended = False
        return self._observation(), dict(self._episode_info)

    def step(self, action: int) -> tuple[int | np.ndarray, float, bool, bool, dict[str, Any]]:
        if self._goal_y == 0:
            name = type(self).__name__
            raise error.ResetNeeded(f"Cannot call {name}.step before {name}.reset")
        if self._ended:
            raise error.ResetNeeded(
                f"{type(self).__name__}.step called after the episode ended (terminated or truncated); "
                "call reset() first"
            )
        try:
            MOVES[action]
        except (IndexError, TypeError):
            raise action_error(action) from None
        if action < 0:
            raise action_error(action)
        self._x, self._y, reward, terminated = transition(self.length, self._x, self._y, self._goal_y, action)
        self._steps += 1
        truncated = self._steps >= self.max_episode_steps
        self._ended = terminated or truncated
        info = {**self._episode_info, "is_success": terminated and self._y == self._goal_y}
        return self._observation(), reward, terminated, truncated, info

    def render(self) -> str | np.ndarray | None:
        if self.render_mode is None:
            return None
        goal_y = self._goal_y or 1
        if self.render_mode == "ansi":
            return render_ansi(self.length, self._x, self._y, goal_y)
        return render_rgb(self.length, self._x, self._y, goal_y)
