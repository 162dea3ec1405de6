"""The XOR T-Maze: the T-Maze of :mod:`tmaze_gym.tmaze` with a second cue in the corridor, the rewarded arm
being the XOR of the two cues. Registered as ``XORTMaze-v0`` on ``import tmaze_gym``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tmaze_gym.tmaze import DEFAULT_LENGTH, OBS_DOWN, OBS_UP, TMazeEnv, check_length, observe

XOR_LAYOUTS = ("up-up", "up-down", "down-up", "down-down")
"""The four layouts of the XOR T-Maze, named ``"<first cue>-<second cue>"``."""

_CUE_Y = {"up": 1, "down": -1}


def check_cue_position(cue_position: Any, length: int) -> int:
    """``cue_position`` as an int, ``length // 2`` (the middle of the corridor) if None; a ``ValueError``
    if it is not an integer in ``1 .. length - 1`` (a corridor cell)."""
    if cue_position is None:
        return length // 2
    if (
        isinstance(cue_position, bool)
        or not isinstance(cue_position, int | np.integer)
        or not 1 <= cue_position <= length - 1
    ):
        raise ValueError(
            f"cue_position must be None or an integer in 1 .. {length - 1} (a corridor cell of a maze of "
            f"length {length}); got {cue_position!r}"
        )
    return int(cue_position)


def check_xor_layout(layout: Any) -> str:
    """Return ``layout`` if it is one of ``XOR_LAYOUTS``, else raise a ``ValueError``."""
    if not isinstance(layout, str) or layout not in XOR_LAYOUTS:
        raise ValueError(
            "options['layout'] must be one of 'up-up', 'up-down', 'down-up', 'down-down' "
            f"('<first cue>-<second cue>'); got {layout!r}"
        )
    return layout


def xor_goal(layout: str) -> str:
    """The rewarded arm of an XOR layout: ``"up"`` when the two cues agree, ``"down"`` when they differ."""
    first, second = check_xor_layout(layout).split("-")
    return "up" if first == second else "down"


def observe_xor(length: int, cue_position: int, x: int, first_y: int, second_y: int) -> int:
    """What the agent sees in column ``x`` of the XOR T-Maze: the second cue (``OBS_UP`` if ``second_y``
    is +1, else ``OBS_DOWN``) at ``x = cue_position``, elsewhere what the T-Maze of layout ``first_y``
    shows (:func:`tmaze_gym.tmaze.observe`: the first cue at the start, corridor, junction)."""
    if x == cue_position:
        return OBS_UP if second_y == 1 else OBS_DOWN
    return observe(length, x, first_y)


class XORTMazeEnv(TMazeEnv):
    """
    ## Description
    The T-Maze of :class:`tmaze_gym.TMazeEnv` (``TMaze-v0``) with a second cue: a task that needs
    transient dynamics as well as memory. The corridor ``(0, 0) … (L, 0)``, the junction ``(L, 0)``,
    the goal cells ``(L, 1)`` and ``(L, -1)``, the actions, the rewards and the horizon are
    ``TMaze-v0``'s. Two cues, each Up or Down, are drawn at reset:

    - the **first cue** is shown at the start cell ``(0, 0)``, as ``TMaze-v0``'s layout;
    - the **second cue** is shown at the corridor cell ``(c, 0)``, ``c = cue_position``
      (``1 <= c <= L - 1``, the middle ``L // 2`` by default).

    The rewarded arm is their XOR: **Up when the two cues agree** (Up-Up or Down-Down), **Down
    when they differ** (Up-Down or Down-Up). Neither cue alone says anything about the goal, so the
    agent must remember the first cue for ``c`` steps, combine it with the second one when it
    comes, and remember the result for ``L - c`` more steps.

    ```
          G     <- (L, 1): the rewarding goal (layout "down-down": the cues agree)
    D...D..     <- what the corridor shows (L = 6): first cue at (0, 0), second cue at (c, 0) = (4, 0)
          X     <- (L, -1): the wrong goal
    ```

    ## Action Space
    ``Discrete(4)``, as ``TMaze-v0``: 0 Right (+1, 0), 1 Up (0, +1), 2 Left (−1, 0),
    3 Down (0, −1). A move that would leave the maze keeps the agent in place (a *bump*).

    ## Observation Space
    ``TMaze-v0``'s ``Discrete(4)`` (or its one-hot ``Box(0, 1, (4,), float32)`` with
    ``observation_type="onehot"``); the second cue reuses the cue values:

    | Num | Observation | Where                                                                |
    |-----|-------------|----------------------------------------------------------------------|
    | 0   | Up          | at (0, 0) if the first cue is up; at (c, 0) if the second is up     |
    | 1   | Down        | at (0, 0) if the first cue is down; at (c, 0) if the second is down |
    | 2   | Corridor    | at (x, 0), x = 1 … L − 1, x ≠ c                                      |
    | 3   | Junction    | at (L, 0) and at both goal cells                                     |

    A cell shows its cue again whenever the agent comes back to it. Since the spaces are
    ``TMaze-v0``'s, the ``DRQN`` of ``recurrent_q`` (``DRQN("RecurrentQPolicy", "XORTMaze-v0")``),
    ``recurrent_q.callbacks.play_greedy``, the episode test ``experiments.evaluation.is_optimal_episode``
    and the optimality check ``experiments.evaluation.is_tmaze_optimal`` (which plays the four
    ``XOR_LAYOUTS``) work on this env unchanged, and so does the T-Maze runner
    (``mm-train-tmaze --env-id XORTMaze-v0``). The T-Maze-only parts of ``experiments.evaluation`` do
    not: ``start_q_values`` forces the layouts ``"up"`` and ``"down"`` (a ``ValueError`` here), and the
    rest (``greedy_rollouts``, ``optimal_at``, ``optimal_path_margins``, ``exploration_histories``,
    ``tmaze_vaa``, ``corridor_attractors``) simulate or encode ``TMaze-v0`` itself.

    ## Starting State
    The agent starts at (0, 0). The layout ``"<first cue>-<second cue>"``, one of ``"up-up"``,
    ``"up-down"``, ``"down-up"``, ``"down-down"`` (``XOR_LAYOUTS``), is drawn uniformly (two
    independent fair cues) from ``self.np_random`` and fixed for the episode;
    ``reset(options={"layout": "up-down"})`` forces it. ``"layout": "up"`` or ``"down"``
    (``TMaze-v0``'s) is refused with a ``ValueError``, as is any other option.

    ## Reward
    As ``TMaze-v0``, with the rewarded arm of the XOR: 0 for a move; −0.1 for a bump; +4 for
    entering the rewarded goal cell (``(L, 1)`` if the cues agree, ``(L, -1)`` if they differ); −0.1
    for entering the other one. The optimal undiscounted return is 4, in L + 1 steps;
    ``metadata["gamma"]`` is 0.98.

    ## Episode End
    As ``TMaze-v0``: termination when the agent enters either goal cell; truncation after
    ``max_episode_steps`` actions, by default the horizon ``H = 3L`` of the exploration policy ℰ
    (eq. D.9), which ``env.spec.max_episode_steps`` reports. ℰ is ``TMaze-v0``'s,
    ``env.unwrapped.exploration_probs = [1/2, 1/6, 1/6, 1/6]`` (Right, Up, Left, Down): the
    corridor is the same, so is its crossing time.

    ## Information
    ``reset`` returns ``{"layout": "up-up" | "up-down" | "down-up" | "down-down", "goal": "up" |
    "down"}`` (``goal``: the rewarded arm); every ``step`` returns the same with ``"is_success"``,
    ``True`` only at the step that enters the rewarded goal.

    Hidden state, for tests: ``env.unwrapped.position`` is ``(x, y)``, ``env.unwrapped.layout``
    one of ``XOR_LAYOUTS`` and ``env.unwrapped.goal`` ``"up"`` or ``"down"`` (both ``None`` before
    the first reset), ``env.unwrapped.cue_position`` the second cue's column.

    ## Arguments
    ```python
    import gymnasium as gym
    import tmaze_gym

    env = gym.make(
        "XORTMaze-v0",
        length=20,
        cue_position=10,
        max_episode_steps=None,
        observation_type="discrete",
        render_mode="ansi",
    )
    ```
    - ``length``: corridor length ``L >= 2`` (the second cue needs a corridor cell); 20 by default
      (``DEFAULT_LENGTH``), as ``TMaze-v0``.
    - ``cue_position``: the column ``c`` of the second cue, an integer in ``1 .. L - 1``; ``None``
      (default) for the middle of the corridor, ``L // 2``.
    - ``max_episode_steps``: truncation step, ``None`` for ``horizon(length) = 3L``.
    - ``observation_type``: ``"discrete"`` (``Discrete(4)``) or ``"onehot"`` (``Box``).
    - ``render_mode``: ``None``, ``"ansi"`` or ``"rgb_array"``, drawn as ``TMaze-v0``'s (``G`` marks
      the rewarded arm, the XOR; the cues are not drawn).

    ``gym.make_vec("XORTMaze-v0", num_envs=n, ...)`` gives Gymnasium's ``SyncVectorEnv`` of this env
    (there is no numpy vector env as ``TMaze-v0``'s).

    ## References
    The T-Maze of Lambrechts, De Geeter, Vecoven, Ernst, Drion, *Warming up recurrent neural networks
    to maximise reachable multistability greatly improves learning*, Neural Networks 166 (2023),
    Appendix D; the second cue and the XOR rule are ours (issue 20).

    ## Version History
    - v0: initial version.
    """

    def __init__(
        self,
        length: int = DEFAULT_LENGTH,
        cue_position: int | None = None,
        max_episode_steps: int | None = None,
        observation_type: str = "discrete",
        render_mode: str | None = None,
    ) -> None:
        length = check_length(length, minimum=2)
        self.cue_position = check_cue_position(cue_position, length)
        super().__init__(length, max_episode_steps, observation_type, render_mode)
        self._first_y = 0  # +1 up, -1 down, 0 before the first reset
        self._second_y = 0

    @property
    def layout(self) -> str | None:
        """``"<first cue>-<second cue>"``, one of ``XOR_LAYOUTS`` (``None`` before the first reset)."""
        if self._first_y == 0:
            return None
        return XOR_LAYOUTS[(self._first_y == -1) * 2 + (self._second_y == -1)]

    @property
    def goal(self) -> str | None:
        """The rewarded arm, ``"up"`` or ``"down"`` (``None`` before the first reset)."""
        return {1: "up", -1: "down"}.get(self._goal_y)

    def _observe(self) -> int:
        return observe_xor(self.length, self.cue_position, self._x, self._first_y, self._second_y)

    def _start_episode(self, options: dict[str, Any]) -> None:
        if "layout" in options:
            layout = check_xor_layout(options["layout"])
        else:
            layout = XOR_LAYOUTS[int(self.np_random.integers(4))]
        first, second = layout.split("-")
        self._first_y, self._second_y = _CUE_Y[first], _CUE_Y[second]
        self._goal_y = self._first_y * self._second_y  # XOR: +1 (up) when the cues agree, -1 when they differ

    def _info(self) -> dict[str, Any]:
        return {"layout": self.layout, "goal": self.goal}
