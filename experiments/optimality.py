"""The optimality test of a T-Maze policy (docs/specification.md §6) and the network's inputs along the maze:
the return 4 in exactly ``L + 1`` steps in every layout (:func:`is_optimal_episode`,
:func:`is_tmaze_optimal`), the runner's horizon (:func:`authors_horizon`), the Q-values at the start and the
action margins along the optimal episode (:func:`start_q_values`, :func:`optimal_path_margins`,
:func:`optimal_margins`; where a policy leaves that episode, :func:`optimal_path_errors`), the runner's
discount (:func:`default_gamma`), and the table of the network's
inputs for every observation, previous action and reward (:func:`input_table`). Every public name here is
importable from :mod:`experiments.evaluation`."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from recurrent_q.callbacks import play_greedy
from recurrent_q.policies import NO_ACTION, RecurrentQNetwork
from tmaze_gym.tmaze import (
    BUMP_REWARD,
    DOWN,
    GAMMA,
    GOAL_REWARD,
    LAYOUTS,
    OBS_CORRIDOR,
    OBS_DOWN,
    OBS_JUNCTION,
    OBS_UP,
    RIGHT,
    UP,
    WRONG_GOAL_REWARD,
    check_length,
)
from tmaze_gym.xor_tmaze import XOR_LAYOUTS, XORTMazeEnv

TMAZE_OPTIMAL_RETURN = GOAL_REWARD
"""The return of the optimal policy: the rewarding goal's +4 (``tmaze_gym``'s ``GOAL_REWARD``), reached in
:func:`optimal_steps` (``L + 1``) steps."""


# --------------------------------------------------------------------------------------------
# The optimality test
# --------------------------------------------------------------------------------------------


def authors_horizon(length: int) -> int:
    """The horizon ``3L - 1`` of the authors' code (in actions), the T-Maze runner's default (the env's
    own, ``tmaze_gym.horizon(L)``, is the paper's ``3L``, eq. (D.9))."""
    return 3 * length - 1


def optimal_steps(length: int) -> int:
    """The steps of the optimal episode at corridor ``length``: ``L`` along the corridor, one turn."""
    return length + 1


def is_optimal_episode(returns: Any, steps: Any, length: int) -> np.ndarray:
    """Whether each episode (``returns`` and ``steps``: numbers or arrays) is the optimal one at corridor
    ``length``: the return 4 in exactly ``length + 1`` steps."""
    return (np.asarray(returns) == TMAZE_OPTIMAL_RETURN) & (np.asarray(steps) == optimal_steps(length))


def maze_layouts(env: gym.Env) -> tuple[str, ...]:
    """The layouts of ``env``: ``("up", "down")`` for ``TMaze-v0``, the four ``XOR_LAYOUTS`` for
    ``XORTMaze-v0``."""
    return XOR_LAYOUTS if isinstance(env.unwrapped, XORTMazeEnv) else LAYOUTS


def is_tmaze_optimal(model: Any, env: gym.Env) -> bool:
    """docs/specification.md §6: the greedy policy earns 4 in exactly ``L + 1`` steps in every layout (the
    two of ``TMaze-v0``, the four of ``XORTMaze-v0``: :func:`maze_layouts`).

    Each rollout stops after ``L + 1`` steps: a policy that has not arrived by then is not optimal.
    """
    length = env.unwrapped.length
    for layout in maze_layouts(env):
        total, steps = play_greedy(model, env, layout, max_steps=optimal_steps(length))
        if not is_optimal_episode(total, steps, length):
            return False
    return True


def start_q_values(q_net: RecurrentQNetwork, env: gym.Env) -> np.ndarray:
    """Q-values ``[2, |A|]`` of the first step of an episode (rows: the Up and the Down layout).

    Under the optimal policy the start is worth ``4 γ^L`` (the goal L + 1 steps away), and Right
    (action 0) is the best first move in both layouts: how far these values are from there shows how
    far the goal's value has travelled back along the corridor.
    """
    device = next(q_net.parameters()).device
    observations = [env.reset(options={"layout": layout})[0] for layout in ("up", "down")]
    obs = torch.as_tensor(np.asarray(observations), device=device)
    x = q_net.features(obs, torch.full((2,), NO_ACTION, device=device), torch.zeros(2, device=device))
    with torch.no_grad():
        return q_net.step(x)[0].cpu().numpy()


ACTION_NAMES = ("Right", "Up", "Left", "Down")
"""The T-Maze's actions by index (``tmaze_gym``'s ``RIGHT, UP, LEFT, DOWN``)."""


def optimal_path_q_values(q_net: RecurrentQNetwork, length: int) -> np.ndarray:
    """Q-values ``[2, L + 1, 4]`` of the Q-network along the optimal episode (rows: Up, Down layout; column
    ``t``: the history of Right ``t`` times after the cue, the junction at ``t = L``)."""
    length = check_length(length)
    table = input_table(q_net)  # [4, 5, R, F]
    zero = int(np.searchsorted(REWARD_VALUES, 0.0))
    corridor = [OBS_CORRIDOR] * (length - 1) + [OBS_JUNCTION]
    previous = [NO_ACTION + 1] + [RIGHT + 1] * length
    with torch.no_grad():
        x = torch.stack([table[[signal, *corridor], previous, zero] for signal in (OBS_UP, OBS_DOWN)])
        return q_net(x)[0].cpu().numpy().astype(np.float64)


def _optimal_path_actions(length: int) -> np.ndarray:
    """``a*_t`` of the optimal episode, ``[2, L + 1]``: Right ``L`` times, then the goal's turn."""
    best = np.zeros((2, length + 1), dtype=np.int64)
    best[:, length] = (UP, DOWN)
    return best


def optimal_path_margins(q_net: RecurrentQNetwork, length: int) -> np.ndarray:
    """Action margins ``[2, L + 1]`` of the Q-network along the optimal episode (rows: Up, Down layout).

    Column ``t`` is ``Q(η_t, a*_t) − max_{a ≠ a*_t} Q(η_t, a)``, with ``η_t`` the history of the optimal
    episode up to step ``t`` (Right ``L`` times, then the goal's turn) and ``a*_t`` its action. The greedy
    policy is optimal exactly when every margin is positive, so the smallest margin says how far a policy
    is from optimal (or how near to losing it), and where. Compare with the optimal Q-function's
    (:func:`optimal_margins`); :func:`optimal_path_errors` names the cells where a margin is negative.
    """
    return _margins(optimal_path_q_values(q_net, length))[0]


def _margins(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``Q(η_t, a*_t) − max_{a ≠ a*_t} Q(η_t, a)`` of the optimal path's Q-values ``q`` ``[2, L + 1, 4]``, and
    the action of that max (the best of the others), both ``[2, L + 1]``."""
    best = _optimal_path_actions(q.shape[1] - 1)
    chosen = np.take_along_axis(q, best[..., None], -1)[..., 0]
    others = q.copy()
    np.put_along_axis(others, best[..., None], -np.inf, -1)
    return chosen - others.max(-1), others.argmax(-1)


def optimal_path_errors(q_net: RecurrentQNetwork, length: int, gamma: float) -> list[dict]:
    """Where and by how much the greedy policy leaves the optimal episode, one dict per layout (Up, Down).

    Each has ``layout``; ``smallest_margin`` and ``at``, the smallest of :func:`optimal_path_margins` and its
    step (0: the cue's cell, ``L``: the junction), with ``optimal_margin``, ``Q*``'s margin there
    (:func:`optimal_margins`); and ``wrong``, one dict per step whose margin is negative: ``step``, the
    ``optimal`` action (:data:`ACTION_NAMES`) with its Q-value ``q_optimal`` and its value under ``Q*``,
    ``q_star``, and the ``greedy`` action that beats it with ``q_greedy``. A Q-function that is right to
    within its action gaps has no wrong step; a wrong step whose ``q_optimal`` is far under ``q_star``
    says the optimal action's value is underestimated there, not that the greedy action is overrated.
    """
    star = optimal_margins(length, gamma)
    q = optimal_path_q_values(q_net, length)
    margins, rivals = _margins(q)
    q_star = _optimal_path_values(length, gamma)
    best = _optimal_path_actions(length)
    rows = []
    for row, layout in enumerate(LAYOUTS):
        at = int(margins[row].argmin())
        wrong = []
        for t in np.flatnonzero(margins[row] < 0):
            greedy = int(rivals[row, t])
            wrong.append(
                {
                    "step": int(t),
                    "optimal": ACTION_NAMES[best[row, t]],
                    "q_optimal": float(q[row, t, best[row, t]]),
                    "q_star": float(q_star[t]),
                    "greedy": ACTION_NAMES[greedy],
                    "q_greedy": float(q[row, t, greedy]),
                }
            )
        rows.append(
            {
                "layout": layout,
                "smallest_margin": float(margins[row, at]),
                "at": at,
                "optimal_margin": float(star[at]),
                "wrong": wrong,
            }
        )
    return rows


def optimal_margins(length: int, gamma: float) -> np.ndarray:
    """The margins of :func:`optimal_path_margins` under the optimal Q-function ``Q*``, ``[L + 1]``.

    In the corridor (position ``x < L``), Right is worth ``4 γ^{L−x}``; Left ``4 γ^{L−x+2}`` (a step back;
    at the start, a bump: ``−0.1 + 4 γ^{L+1}``); Up and Down, a bump, ``−0.1 + 4 γ^{L−x+1}``. At the junction
    the goal's turn earns 4, Right bumps (``−0.1 + 4 γ``), Left steps back (``4 γ²``). With ``γ = 0.98`` the
    corridor margin is about 4 % of the value of Right (``1 − γ²``): 0.06 one step into the corridor of
    L = 50, 0.02 at L = 100 (0.13 and 0.11 at the start, where Left is a bump), 0.16 at the junction. A
    learned Q-function must order the actions to within these margins at all ``L + 1`` steps for its
    greedy policy to be optimal.
    """
    length = check_length(length)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"gamma must be in (0, 1]; got {gamma!r}")
    x = np.arange(length + 1)
    right = _optimal_path_values(length, gamma)[:-1]
    left = np.where(x[:-1] == 0, BUMP_REWARD + gamma * right, gamma**2 * right)
    bump = BUMP_REWARD + gamma * right
    junction = GOAL_REWARD - max(BUMP_REWARD + gamma * GOAL_REWARD, gamma**2 * GOAL_REWARD, WRONG_GOAL_REWARD)
    return np.append(right - np.maximum(left, bump), junction)


def _optimal_path_values(length: int, gamma: float) -> np.ndarray:
    """``Q*`` of the optimal episode's actions, ``[L + 1]``: Right ``4 γ^{L−x}`` at corridor step ``x``, the
    goal's turn 4 at the junction."""
    return np.append(GOAL_REWARD * gamma ** (length - np.arange(length)), GOAL_REWARD)


MARGIN_FLOOR = 0.01
"""The smallest corridor margin of ``Q*`` for which :func:`default_gamma` keeps the paper's γ: about the error
of the learned Q-values near the start of the corridor (docs/drqn-parity.md, rounds 14 and 17)."""


def default_gamma(length: int) -> float:
    """The T-Maze runner's discount for a corridor of ``length`` (``TMazeConfig.gamma``'s default).

    The paper's ``γ = 0.98`` while the optimal Q-function's smallest corridor margin (:func:`optimal_margins`;
    ``4 γ^{L−1} (1 − γ²)``, one step into the corridor) is at least :data:`MARGIN_FLOOR`, which holds up to
    ``L = 137``; beyond, the γ that maximises that margin, ``√((L − 1) / (L + 1))`` (about ``1 − 1/L``):
    0.9950 at ``L = 200``, whose margin is 0.0147 against 0.0028 at 0.98. Every γ < 1 has the same optimal
    policy; the margin is what a learned Q-function must get right (docs/drqn-parity.md, round 17).
    """
    length = check_length(length)
    if optimal_margins(length, GAMMA)[:-1].min() >= MARGIN_FLOOR:
        return GAMMA
    return float(np.sqrt((length - 1) / (length + 1)))


# --------------------------------------------------------------------------------------------
# The network's inputs
# --------------------------------------------------------------------------------------------


REWARD_VALUES = np.unique([0.0, BUMP_REWARD, GOAL_REWARD, WRONG_GOAL_REWARD])
"""Every reward of the T-Maze, sorted: the values ``r_{t-1}`` can take."""


def _check_tmaze_network(q_net: RecurrentQNetwork) -> None:
    space = q_net.observation_space
    if q_net.n_actions != 4 or q_net.obs_size != 4 or not isinstance(space, (spaces.Discrete, spaces.Box)):
        raise ValueError(
            "q_net must be a T-Maze Q-network (4 actions; Discrete(4) or one-hot Box(4) observations); "
            f"got {q_net.n_actions} actions and observation space {space}"
        )


@torch.no_grad()
def input_table(q_net: RecurrentQNetwork) -> torch.Tensor:
    """The network's input ``x`` for every ``(o_t, a_{t-1}, r_{t-1})`` of the T-Maze, ``[4, 5, R, F]``.

    Row ``[o, a + 1, i]`` is ``q_net.features(o, a, REWARD_VALUES[i])`` (``a = NO_ACTION`` at index 0):
    the encoding of training and ``predict``, computed once instead of at every step.
    """
    _check_tmaze_network(q_net)
    device = next(q_net.parameters()).device
    n_rewards = len(REWARD_VALUES)
    o = torch.arange(4).view(4, 1, 1).expand(4, 5, n_rewards)
    a = torch.arange(NO_ACTION, 4).view(1, 5, 1).expand(4, 5, n_rewards)
    r = torch.as_tensor(REWARD_VALUES, dtype=torch.float32).view(1, 1, n_rewards).expand(4, 5, n_rewards)
    if isinstance(q_net.observation_space, spaces.Discrete):
        observations = o + int(q_net.observation_space.start)
    else:
        observations = F.one_hot(o, 4).float()
    return q_net.features(observations.to(device), a.to(device), r.to(device))
