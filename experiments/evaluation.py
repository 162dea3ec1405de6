"""Evaluation of T-Maze policies, at the training length or any longer one: the one optimality test and
what it is run on.

- The test (docs/specification.md §6): the greedy policy earns :data:`TMAZE_OPTIMAL_RETURN` (4) in exactly
  ``L + 1`` steps in both layouts (:func:`is_optimal_episode`); :func:`is_tmaze_optimal` runs it through a
  Gymnasium env (the check of training, ``experiments.tmaze.TMazeOptimalCallback``), :func:`optimal_at`
  on batched rollouts at any ``L'``. :func:`authors_horizon` is the horizon ``3L - 1`` of the authors' code,
  the T-Maze runner's (the env's own is the paper's ``3L``).
- Greedy rollouts: :func:`greedy_rollouts` plays a DRQN Q-network's greedy policy in both layouts at once,
  stepping the network on a batch and the numpy :class:`tmaze_gym.vector.TMazeVectorEnv`, with the inputs
  encoded as in training (``RecurrentQNetwork.features``: ``a_{t-1}``, ``o_t`` and, with the runner's
  default, ``r_{t-1}``; zero state, ``NO_ACTION`` and reward 0 at the start).
- Exploration rollouts: :func:`exploration_histories`, episodes of the exploration policy ℰ as the
  Q-network's inputs (what the DRQN's buffer holds after its fill), on which :func:`tmaze_vaa` measures the
  VAA of the trained network.
- :func:`corridor_attractors`, a diagnostic of the limit ``L' → ∞`` (do the two layouts end in distinct
  attractors of the corridor input, read as Up and Down at the junction?), and :func:`horizon_diagnosis`,
  its prediction from the training length alone (does the corridor step's drift, linearised after a short
  settling and iterated in closed form by :func:`linear_drift`, keep both layouts' readout right?).

The rollouts are defined here; the optimality test and the network's inputs in :mod:`experiments.optimality`,
the limit ``L' → ∞`` in :mod:`experiments.attractors`, whose names are importable from here (the import
path of the other modules and of user code).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from gymnasium import spaces

from experiments.attractors import (
    DRIFT_CHECKS_PER_DECADE,
    corridor_attractors,
    horizon_diagnosis,
    linear_drift,
    optimal_path_inputs,
)
from experiments.optimality import (
    ACTION_NAMES,
    MARGIN_FLOOR,
    REWARD_VALUES,
    TMAZE_OPTIMAL_RETURN,
    authors_horizon,
    default_gamma,
    input_table,
    is_optimal_episode,
    is_tmaze_optimal,
    maze_layouts,
    optimal_margins,
    optimal_path_errors,
    optimal_path_margins,
    optimal_path_q_values,
    optimal_steps,
    start_q_values,
)
from recurrent_q.callbacks import exploration_episodes, right_padded
from recurrent_q.checks import check_integer
from recurrent_q.multistability import estimate_vaa
from recurrent_q.policies import NO_ACTION, RecurrentQNetwork
from tmaze_gym.tmaze import LAYOUTS, TMazeEnv, check_length, sample_exploration_action
from tmaze_gym.vector import TMazeVectorEnv

RL_HORIZONS = (50, 100, 1_000, 10_000, 100_000)
"""Corridor lengths ``L'`` at which a trained T-Maze policy is evaluated."""


# --------------------------------------------------------------------------------------------
# Batched greedy rollouts
# --------------------------------------------------------------------------------------------


class GreedyRollouts(NamedTuple):
    """Outcome of :func:`greedy_rollouts`, one row per maze: per layout, or per (network, layout),
    network-major, when several networks are played.

    :param returns: undiscounted returns ``[B]``.
    :param steps: steps played ``[B]``.
    :param actions: the actions of each maze ``[B, max(steps)]`` (-1 past its end), or None.
    :param decided: ``[B]`` true where the rollout was cut because the maze could no longer be optimal.
    """

    returns: np.ndarray
    steps: np.ndarray
    actions: np.ndarray | None
    decided: np.ndarray


@torch.no_grad()
def greedy_rollouts(
    q_net: RecurrentQNetwork | Sequence[RecurrentQNetwork],
    length: int,
    layouts: Sequence[str] = LAYOUTS,
    max_steps: int | None = None,
    record_actions: bool = False,
    stop_when_not_optimal: bool = False,
) -> GreedyRollouts:
    """One greedy episode per layout on the T-Maze of corridor ``length``, all mazes stepped at once.

    Given several Q-networks (the seeds of a run, say), one episode per (network, layout), all in one
    vector env: each time step moves every maze with one numpy step and calls each network once on
    its mazes, so that the time per network goes to the network's own step (networks whose mazes
    have all ended are not called). A loop over networks is kept because batching the networks
    themselves (``torch.func.vmap`` over their stacked parameters) was slower on the CPU
    (``benchmarks/bench_horizon_eval.py``).

    The same episode as ``recurrent_q.callbacks.play_greedy`` with a DRQN of this Q-network: the
    state starts at zero, the first input has ``a_{-1} = NO_ACTION`` and ``r_{-1} = 0``, each later
    one the previous action and reward (:func:`input_table`); the action is ``argmax Q``. Each maze
    stops when its episode ends (a goal, or the env's horizon ``3 L``) or after ``max_steps`` steps.

    :param q_net: the Q-network that acts (``DRQN.policy.acting_net``: ``DRQN.q_net`` unless
        ``average_tau`` is set), or a sequence of them; each runs on its device.
    :param length: corridor length ``L'``.
    :param layouts: one maze per entry, ``"up"`` or ``"down"``.
    :param max_steps: stop each maze after this many steps (None: play the episode out).
    :param record_actions: also return the actions.
    :param stop_when_not_optimal: stop a maze as soon as it can no longer earn 4 in ``length + 1``
        steps (a non-zero reward before the last step, or behind the optimal path's position: any
        non-Right action in the corridor): the optimality check does not need the rest.
    """
    length = check_length(length)
    check_integer("max_steps", max_steps, optional=True)
    q_nets = [q_net] if isinstance(q_net, RecurrentQNetwork) else list(q_net)
    if not q_nets:
        raise ValueError("q_net must be a Q-network or a non-empty sequence of them")
    per_net = len(layouts)
    if per_net == 0:
        raise ValueError("layouts must name at least one layout ('up' or 'down')")
    n = per_net * len(q_nets)
    rows = [slice(k * per_net, (k + 1) * per_net) for k in range(len(q_nets))]
    tables = [input_table(net).flatten(0, 2) for net in q_nets]  # each [4 * 5 * R, F]
    env = TMazeVectorEnv(n, length)
    obs, _ = env.reset(options={"layout": list(layouts) * len(q_nets)})
    limit = env.max_episode_steps if max_steps is None else min(max_steps, env.max_episode_steps)
    states = [net.rnn.initial_state(per_net, table.device) for net, table in zip(q_nets, tables, strict=True)]
    previous = np.full(n, NO_ACTION + 1) * len(REWARD_VALUES) + np.searchsorted(REWARD_VALUES, 0.0)
    returns, steps = np.zeros(n), np.zeros(n, dtype=np.int64)
    running, decided = np.ones(n, dtype=bool), np.zeros(n, dtype=bool)
    actions = np.full((n, limit), -1, dtype=np.int8) if record_actions else None
    stride = 5 * len(REWARD_VALUES)
    action = np.zeros(n, dtype=np.int64)  # the mazes of a network no longer called keep this (they ended)
    for t in range(limit):
        index = torch.from_numpy(obs * stride + previous)
        for k, (net, table) in enumerate(zip(q_nets, tables, strict=True)):
            if running[rows[k]].any():
                q_values, states[k] = net.step(table[index[rows[k]].to(table.device)], states[k])
                action[rows[k]] = q_values.argmax(-1).cpu().numpy()
        obs, reward, terminated, truncated, _ = env.step(action)
        returns += np.where(running, reward, 0.0)
        steps += running
        if actions is not None:
            actions[running, t] = action[running]
        ended = terminated | truncated
        if stop_when_not_optimal and t + 1 <= length:  # optimal: x = t + 1 and reward 0 for t < L'
            lost = running & ~ended & ((reward != 0.0) | (env.positions[:, 0] < t + 1))
            decided |= lost
            ended |= lost
        running &= ~ended
        if not running.any():
            break
        reward_index = np.searchsorted(REWARD_VALUES, reward)
        if not np.array_equal(REWARD_VALUES[reward_index], reward):
            raise RuntimeError(f"the T-Maze gave a reward outside {REWARD_VALUES.tolist()}: {reward}")
        previous = (action + 1) * len(REWARD_VALUES) + reward_index
    if actions is not None:
        actions = actions[:, : int(steps.max())]
    return GreedyRollouts(returns, steps, actions, decided)


def optimal_at(q_net: RecurrentQNetwork, length: int) -> bool:
    """:func:`is_tmaze_optimal` at corridor ``length``, on batched rollouts: :func:`is_optimal_episode` in
    both layouts."""
    return optimal_at_each([q_net], length)[0]


def optimal_at_each(q_nets: Sequence[RecurrentQNetwork], length: int) -> list[bool]:
    """:func:`optimal_at` of each of ``q_nets``, played together (:func:`greedy_rollouts`)."""
    rollouts = greedy_rollouts(q_nets, length, max_steps=optimal_steps(length), stop_when_not_optimal=True)
    won = is_optimal_episode(rollouts.returns, rollouts.steps, length)
    return [bool(w) for w in won.reshape(len(q_nets), -1).all(axis=1)]


def horizon_optimality(
    q_net: RecurrentQNetwork, lengths: Sequence[int] = RL_HORIZONS
) -> list[dict[str, Any]]:
    """:func:`optimal_at` at each of ``lengths``: ``[{"length", "optimal", "seconds"}]``."""
    rows = []
    for length in lengths:
        tic = time.perf_counter()
        optimal = optimal_at(q_net, length)
        rows.append({"length": int(length), "optimal": optimal, "seconds": time.perf_counter() - tic})
    return rows


# --------------------------------------------------------------------------------------------
# Exploration rollouts: the histories of the buffer fill, and the VAA on them
# --------------------------------------------------------------------------------------------


def exploration_histories(
    q_net: RecurrentQNetwork,
    length: int,
    n_steps: int = 8192,
    seed: int = 0,
    max_episode_steps: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Episodes of the exploration policy ℰ on the T-Maze until ``n_steps`` transitions, as the
    Q-network's inputs ``[N, T + 1, F]`` (``episode_features``, the terminal observation included,
    as DRQN stores its replay buffer) and their lengths in inputs ``[N]``.

    :param max_episode_steps: horizon (None: :func:`authors_horizon`, that of ``run_tmaze_experiment``).
    """
    horizon = authors_horizon(length) if max_episode_steps is None else max_episode_steps
    observation_type = "discrete" if isinstance(q_net.observation_space, spaces.Discrete) else "onehot"
    env = TMazeEnv(length, max_episode_steps=horizon, observation_type=observation_type)
    episodes = exploration_episodes(env, n_steps, np.random.default_rng(seed), draw=sample_exploration_action)
    observations, actions, rewards = (right_padded(list(part)) for part in zip(*episodes, strict=True))
    lengths = np.array([len(a) for _, a, _ in episodes])
    device = next(q_net.parameters()).device
    with torch.no_grad():
        x = q_net.episode_features(
            torch.as_tensor(observations, device=device),
            torch.as_tensor(actions, device=device),
            torch.as_tensor(rewards, device=device),
        )
    return x, torch.as_tensor(lengths + 1)


def tmaze_vaa(
    q_net: RecurrentQNetwork,
    length: int,
    steps: int = 10_000,
    iterations: int = 10,
    batch_size: int = 200,
    seed: int = 0,
    max_episode_steps: int | None = None,
) -> float:
    """VAA (Algorithms 1-2, ``M = steps``) of the Q-network's cell stack on histories of ℰ at ``length``
    (:func:`exploration_histories`, 8192 transitions: what the DRQN's buffer holds after its fill)."""
    x, lengths = exploration_histories(q_net, length, seed=seed, max_episode_steps=max_episode_steps)
    generator = torch.Generator().manual_seed(seed)
    return estimate_vaa(
        q_net.rnn,
        x,
        steps=steps,
        iterations=iterations,
        batch_size=min(batch_size, len(x)),
        lengths=lengths,
        generator=generator,
    )


__all__ = [
    "ACTION_NAMES",
    "DRIFT_CHECKS_PER_DECADE",
    "MARGIN_FLOOR",
    "RL_HORIZONS",
    "TMAZE_OPTIMAL_RETURN",
    "GreedyRollouts",
    "authors_horizon",
    "corridor_attractors",
    "default_gamma",
    "exploration_histories",
    "greedy_rollouts",
    "horizon_diagnosis",
    "horizon_optimality",
    "input_table",
    "is_optimal_episode",
    "is_tmaze_optimal",
    "linear_drift",
    "maze_layouts",
    "optimal_at",
    "optimal_at_each",
    "optimal_margins",
    "optimal_path_errors",
    "optimal_path_inputs",
    "optimal_path_margins",
    "optimal_path_q_values",
    "optimal_steps",
    "start_q_values",
    "tmaze_vaa",
]
