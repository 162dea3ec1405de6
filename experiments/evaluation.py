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
  its prediction from the training length alone (are both layouts already at those attractors?).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, NamedTuple

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from gymnasium import spaces

from recurrent_q.callbacks import play_greedy
from recurrent_q.multistability import estimate_vaa
from recurrent_q.policies import NO_ACTION, RecurrentQNetwork
from tmaze_gym.tmaze import (
    BUMP_REWARD,
    DOWN,
    GOAL_REWARD,
    LAYOUTS,
    OBS_CORRIDOR,
    OBS_DOWN,
    OBS_JUNCTION,
    OBS_UP,
    RIGHT,
    UP,
    WRONG_GOAL_REWARD,
    TMazeEnv,
    check_length,
    sample_exploration_action,
)
from tmaze_gym.vector import TMazeVectorEnv
from tmaze_gym.xor_tmaze import XOR_LAYOUTS, XORTMazeEnv

TMAZE_OPTIMAL_RETURN = 4.0
"""The return of the optimal policy: +4 for the rewarding goal, reached in ``L + 1`` steps."""
RL_HORIZONS = (50, 100, 1_000, 10_000, 100_000)
"""Corridor lengths ``L'`` at which a trained T-Maze policy is evaluated."""


# --------------------------------------------------------------------------------------------
# The optimality test
# --------------------------------------------------------------------------------------------


def authors_horizon(length: int) -> int:
    """The horizon ``3L - 1`` of the authors' code (in actions), the T-Maze runner's default (the env's
    own, ``tmaze_gym.horizon(L)``, is the paper's ``3L``, eq. (D.9))."""
    return 3 * length - 1


def is_optimal_episode(returns: Any, steps: Any, length: int) -> np.ndarray:
    """Whether each episode (``returns`` and ``steps``: numbers or arrays) is the optimal one at corridor
    ``length``: the return 4 in exactly ``length + 1`` steps."""
    return (np.asarray(returns) == TMAZE_OPTIMAL_RETURN) & (np.asarray(steps) == length + 1)


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
        total, steps = play_greedy(model, env, layout, max_steps=length + 1)
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


def optimal_path_margins(q_net: RecurrentQNetwork, length: int) -> np.ndarray:
    """Action margins ``[2, L + 1]`` of the Q-network along the optimal episode (rows: Up, Down layout).

    Column ``t`` is ``Q(η_t, a*_t) − max_{a ≠ a*_t} Q(η_t, a)``, with ``η_t`` the history of the optimal
    episode up to step ``t`` (Right ``L`` times, then the goal's turn) and ``a*_t`` its action. The greedy
    policy is optimal exactly when every margin is positive, so the smallest margin says how far a policy
    is from optimal (or how near to losing it), and where. Compare with the optimal Q-function's
    (:func:`optimal_margins`).
    """
    length = check_length(length)
    table = input_table(q_net)  # [4, 5, R, F]
    zero = int(np.searchsorted(REWARD_VALUES, 0.0))
    corridor = [OBS_CORRIDOR] * (length - 1) + [OBS_JUNCTION]
    previous = [NO_ACTION + 1] + [RIGHT + 1] * length
    with torch.no_grad():
        x = torch.stack([table[[signal, *corridor], previous, zero] for signal in (OBS_UP, OBS_DOWN)])
        q = q_net(x)[0].cpu().numpy().astype(np.float64)  # [2, L + 1, 4]
    best = np.zeros((2, length + 1), dtype=np.int64)  # Right in the corridor, then the goal's turn
    best[:, length] = (UP, DOWN)
    chosen = np.take_along_axis(q, best[..., None], -1)[..., 0]
    np.put_along_axis(q, best[..., None], -np.inf, -1)
    return chosen - q.max(-1)


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
    right = GOAL_REWARD * gamma ** (length - x[:-1])
    left = np.where(x[:-1] == 0, BUMP_REWARD + gamma * right, gamma**2 * right)
    bump = BUMP_REWARD + gamma * right
    junction = GOAL_REWARD - max(BUMP_REWARD + gamma * GOAL_REWARD, gamma**2 * GOAL_REWARD, WRONG_GOAL_REWARD)
    return np.append(right - np.maximum(left, bump), junction)


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
    if max_steps is not None and (not isinstance(max_steps, int) or max_steps < 1):
        raise ValueError(f"max_steps must be a positive integer or None; got {max_steps!r}")
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
    rollouts = greedy_rollouts(q_nets, length, max_steps=length + 1, stop_when_not_optimal=True)
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
    rng = np.random.default_rng(seed)
    episodes, total = [], 0
    while total < n_steps:
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        observations, actions, rewards, done = [np.asarray(obs)], [], [], False
        while not done:
            action = sample_exploration_action(rng)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(np.asarray(obs))
            actions.append(action)
            rewards.append(reward)
            done = terminated or truncated
        episodes.append((np.stack(observations), np.array(actions), np.array(rewards, dtype=np.float32)))
        total += len(actions)
    lengths = np.array([len(a) for _, a, _ in episodes])
    longest = int(lengths.max())
    obs_shape = episodes[0][0].shape[1:]
    observations = np.zeros((len(episodes), longest + 1, *obs_shape), dtype=episodes[0][0].dtype)
    actions = np.zeros((len(episodes), longest), dtype=np.int64)
    rewards = np.zeros((len(episodes), longest), dtype=np.float32)
    for i, (o, a, r) in enumerate(episodes):
        observations[i, : len(o)], actions[i, : len(a)], rewards[i, : len(r)] = o, a, r
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


# --------------------------------------------------------------------------------------------
# The limit L' -> infinity
# --------------------------------------------------------------------------------------------


def optimal_path_inputs(q_net: RecurrentQNetwork) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's inputs along the optimal path with reward 0: the first observation of each layout
    (up, down; ``a_{-1} = NO_ACTION``) ``[2, F]``, the corridor after a Right ``[F]`` and the junction after
    a Right ``[F]``."""
    table = input_table(q_net)
    zero = int(np.searchsorted(REWARD_VALUES, 0.0))
    return (
        table[[OBS_UP, OBS_DOWN], 0, zero],
        table[OBS_CORRIDOR, RIGHT + 1, zero],
        table[OBS_JUNCTION, RIGHT + 1, zero],
    )


@torch.no_grad()
def corridor_attractors(
    q_net: RecurrentQNetwork, steps: int = 1_000_000, chunk: int = 10_000
) -> dict[str, Any]:
    """Where the memory of the two layouts goes along an endless corridor (the limit ``L' → ∞``).

    From the state after the first observation (up, or down), the corridor input of the optimal path
    (``a = Right``, ``o = Corridor``, ``r = 0``) is held for ``steps`` steps (the stack's sequence
    forward, ``chunk`` steps at a time). A policy optimal at every horizon must go Right at every one of
    these steps and end the two layouts in two distinct states (attractors of that input: multistability)
    from which the junction input gives Up and Down. A diagnostic, with the sequence kernels: the
    evaluation itself is :func:`greedy_rollouts`.

    :return: ``distance`` (Euclidean, all layers) between the two final states; ``junction_actions``, the
        greedy actions at the junction from them (up, down), and ``junction_correct`` (``[UP, DOWN]``);
        ``first_not_right``, the first step (1 = the first observation's) whose greedy action on this path
        is not Right in either layout (None if all are).
    """
    if not isinstance(steps, int) or steps < 0:
        raise ValueError(f"steps must be a non-negative integer; got {steps!r}")
    start, corridor_input, junction_input = optimal_path_inputs(q_net)
    q_values, state = q_net.step(start)
    first_not_right = None if bool((q_values.argmax(-1) == RIGHT).all()) else 1
    corridor = corridor_input.expand(2, min(chunk, max(steps, 1)), -1)
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        q_values, state = q_net(corridor[:, :n], state)
        wrong = (q_values.argmax(-1) != RIGHT).any(0).nonzero()
        if first_not_right is None and len(wrong):
            first_not_right = done + int(wrong[0]) + 2
        done += n
    q_values, _ = q_net.step(junction_input.expand(2, -1), state)
    actions = q_values.argmax(-1).tolist()
    return {
        "steps": steps,
        "distance": float(torch.linalg.vector_norm(state[:, 0] - state[:, 1])),
        "junction_actions": actions,
        "junction_correct": actions == [UP, DOWN],
        "first_not_right": first_not_right,
    }


def horizon_diagnosis(q_net: RecurrentQNetwork, length: int, tol: float = 1e-2) -> dict[str, Any]:
    """Whether a network optimal at corridor ``length`` stays optimal at every longer one, predicted from
    the network alone, without playing a longer corridor.

    Each layout is played along the optimal path of the training length: the first observation, then the
    ``length - 1`` corridor inputs (``a = Right``, ``o = Corridor``, ``r = 0``), to the state ``s`` that
    meets the junction. Then, for the one-step map ``f(s) = step(corridor input, s)``: its residual
    ``‖f(s) − s‖``, the spectral radius ``ρ`` of its Jacobian at ``s`` (units frozen by a saturated gate,
    ``f_i(s) = s_i`` exactly, left out: they hold at every length) and, when ``ρ < 1``, the distance to
    the attractor of the corridor input, ``‖f(s) − s‖ / (1 − ρ)`` (exact for a linear map), with the
    attractor estimated by one Newton step ``s* = s + (I − J)⁻¹ (f(s) − s)``. The prediction holds when the
    greedy policy goes Right along the path and turns to the right arm at ``s`` (optimal at ``length``),
    both layouts are within ``tol`` of their attractors, the two attractors are further apart than the two
    distances, and the greedy readout at each attractor is Right in the corridor and the right arm at the
    junction: then a longer corridor only moves the state closer to where it reads right.

    :param q_net: a T-Maze DRQN Q-network (``DRQN.policy.acting_net``).
    :param length: the training length ``L``.
    :param tol: largest distance to the attractor counted as reached.
    :return: ``optimal_path`` (Right along the path and the right arm at ``s``), ``residual``,
        ``spectral_radius`` and ``distance_to_attractor`` (per layout, up and down), ``separation`` (between
        the two attractors), ``attractor_readout`` (Right and the right arm from each attractor) and
        ``predicts_generalisation``.
    """
    check_length(length)
    if not tol > 0:
        raise ValueError(f"tol must be > 0; got {tol!r}")
    start, corridor_input, junction_input = optimal_path_inputs(q_net)
    junction_input = junction_input.expand(2, -1)
    with torch.no_grad():
        q_values, state = q_net.step(start)
        right = bool((q_values.argmax(-1) == RIGHT).all())
        if length > 1:
            q_values, state = q_net(corridor_input.expand(2, length - 1, -1), state)
            right = right and bool((q_values.argmax(-1) == RIGHT).all())
        turns = q_net.step(junction_input, state)[0].argmax(-1).tolist()
    shape = state.shape  # [layers, 2, S]

    def one_step(flat: torch.Tensor) -> torch.Tensor:
        return q_net.step(corridor_input.unsqueeze(0), flat.view(shape[0], 1, shape[2]))[1].reshape(-1)

    residuals, radii, distances, attractors = [], [], [], []
    for i in range(2):
        s = state[:, i].reshape(-1).detach()
        with torch.enable_grad():
            jacobian = torch.autograd.functional.jacobian(one_step, s)
        with torch.no_grad():
            step = one_step(s) - s
        eye = torch.eye(len(s), dtype=jacobian.dtype, device=jacobian.device)
        # frozen units (a saturated gate: f_i(s) = s_i exactly) hold their value at every length: left out
        moving = ~((jacobian == eye).all(1) & (step == 0))
        sub = jacobian[moving][:, moving]
        radius = float(torch.linalg.eigvals(sub.double()).abs().max()) if bool(moving.any()) else 0.0
        residual = float(torch.linalg.vector_norm(step))
        residuals.append(residual)
        radii.append(radius)
        distances.append(residual / (1.0 - radius) if radius < 1 else float("inf"))
        newton = s.clone()
        if radius < 1:
            newton[moving] += torch.linalg.solve(eye[moving][:, moving] - sub, step[moving])
        attractors.append(newton)
    fixed = torch.stack(attractors).view(2, shape[0], shape[2]).transpose(0, 1).contiguous()
    with torch.no_grad():
        corridor_q = q_net.step(corridor_input.expand(2, -1), fixed)[0]
        readout = bool((corridor_q.argmax(-1) == RIGHT).all())
        readout = readout and q_net.step(junction_input, fixed)[0].argmax(-1).tolist() == [UP, DOWN]
    separation = float(torch.linalg.vector_norm(attractors[0] - attractors[1]))
    optimal_path = right and turns == [UP, DOWN]
    reached = max(distances) <= tol
    return {
        "length": int(length),
        "optimal_path": optimal_path,
        "residual": residuals,
        "spectral_radius": radii,
        "distance_to_attractor": distances,
        "separation": separation,
        "attractor_readout": readout,
        "predicts_generalisation": bool(optimal_path and reached and separation > sum(distances) and readout),
    }


__all__ = [
    "RL_HORIZONS",
    "TMAZE_OPTIMAL_RETURN",
    "GreedyRollouts",
    "authors_horizon",
    "corridor_attractors",
    "exploration_histories",
    "greedy_rollouts",
    "horizon_diagnosis",
    "horizon_optimality",
    "input_table",
    "is_optimal_episode",
    "is_tmaze_optimal",
    "maze_layouts",
    "optimal_at",
    "optimal_at_each",
    "optimal_margins",
    "optimal_path_inputs",
    "optimal_path_margins",
    "start_q_values",
    "tmaze_vaa",
]
