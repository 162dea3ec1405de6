"""Tests of DRQN (docs/specification.md §6, Algorithm 4): learning, loss, replay, SB3, predict, errors."""

import copy
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import EvalCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.vec_env import DummyVecEnv
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.evaluation import authors_horizon, optimal_path_margins, start_q_values
from experiments.tmaze import TMazeOptimalCallback, is_tmaze_optimal
from recurrent_q.buffers import EpisodeBatch, EpisodeReplayBuffer
from recurrent_q.cells import CELL_NAMES
from recurrent_q.drqn import DRQN, fixed_point_term
from recurrent_q.multistability import WarmupConfig
from recurrent_q.policies import NO_ACTION, DuelingHead, RecurrentQState, check_spaces
from recurrent_q.schedules import HeldLinearSchedule
from recurrent_q.updates import hold_term, observation_steps

LEARNING_SEED = 0


def tmaze(length: int = 3, **kwargs) -> gym.Env:
    return gym.make("TMaze-v0", length=length, **kwargs)


def small_model(env: gym.Env | None = None, **kwargs) -> DRQN:
    settings = dict(
        buffer_size=256, batch_size=8, gradient_steps=2, vaa_interval=0, vaa_measure_interval=0, seed=0
    )
    settings.update(kwargs)
    return DRQN("RecurrentQPolicy", tmaze() if env is None else env, **settings)


def documented_tmaze_drqn(length: int, seed: int) -> DRQN:
    """The class's defaults plus the T-Maze runner's documented settings (README), built by hand."""
    return DRQN(
        "RecurrentQPolicy",
        tmaze(length, max_episode_steps=authors_horizon(length)),
        use_warmup=True,
        warmup_config=WarmupConfig(batch_size=32),
        gradient_steps=20,
        target_update_interval=2,
        n_steps=10,
        n_step_correction="watkins",
        learning_rate=HeldLinearSchedule(1e-3, 1e-4, 0.5),
        average_tau=0.02,
        average_collects=False,
        advantage_learning=0.5,
        train_mode="sequences",
        policy_kwargs=dict(use_previous_reward=True, init="xavier", hidden_size=64),
        seed=seed,
        vaa_interval=0,
        vaa_measure_interval=0,
    )


def greedy_actions(model: DRQN, env: gym.Env, layout: str) -> list[int]:
    obs, _ = env.reset(options={"layout": layout})
    state, start, actions = None, True, []
    while True:
        action, state = model.predict(obs, state, np.array([start]), deterministic=True)
        actions.append(int(action))
        obs, _, terminated, truncated, _ = env.step(int(action))
        start = False
        if terminated or truncated:
            return actions


def same(params, other_params) -> bool:
    return all(th.equal(p, q) for p, q in zip(list(params), list(other_params), strict=True))


def row(state: RecurrentQState, i: int) -> RecurrentQState:
    return RecurrentQState(
        state.rnn[:, i : i + 1], state.previous_action[i : i + 1], state.previous_reward[i : i + 1]
    )


# ----------------------------------------------------------------------------- learning


def test_gru_warmup_learns_tmaze_length_10():
    """The real check: GRU 2×64 + warmup with the T-Maze runner's settings reaches the optimal policy at
    L = 10 (seed 0: 25 episodes on an AMD EPYC with round 21's loss on whole episodes; 20 on an Intel Xeon
    with round 15's advantage learning, 35 before it; with the 2×32 of before round 5, 70)."""
    model = documented_tmaze_drqn(10, LEARNING_SEED)
    optimal = TMazeOptimalCallback(tmaze(10), check_freq=5, stop_when_optimal=True)
    model.learn(10**9, callback=optimal, max_episodes=500)
    assert optimal.first_optimal_episode is not None, optimal.checks
    assert is_tmaze_optimal(model, tmaze(10))
    # Its first move is Right in both layouts, and the goal's value has reached the start (4 γ^10 ≈ 3.3
    # under the optimal policy; a start that has not heard of the goal is worth about 0).
    q = start_q_values(model.q_net, tmaze(10))
    # At the first optimal check the goal's value is only partly back at the start (the check stops
    # training there; seed 0 on an Intel Xeon: 0.67 and 0.97, seeds 1 and 2: 3.3 and 3.2, 0.50 and 0.36),
    # but far above a start that never heard of it.
    assert (q.argmax(-1) == 0).all() and (q.max(-1) > 0.25).all(), q
    # The same greedy policy through SB3's evaluate_policy, one env and a batch of 3 envs (batched predict).
    mean, _ = evaluate_policy(model, Monitor(tmaze(10)), n_eval_episodes=6, deterministic=True)
    assert mean == pytest.approx(4.0)
    vec_env = DummyVecEnv([lambda: Monitor(tmaze(10))] * 3)
    rewards, lengths = evaluate_policy(
        model, vec_env, n_eval_episodes=9, deterministic=True, return_episode_rewards=True
    )
    assert rewards == pytest.approx([4.0] * 9) and set(lengths) == {11}


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gru_warmup_learns_tmaze_length_20(seed):
    """The runner's documented settings reach the optimal policy at L = 20 on tuning seeds 0-2. (With the
    class's paper defaults alone, C = 20 and 10 gradient steps, seed 0 reached it within 600 episodes on
    an Intel CPU and not on an AMD EPYC: docs/drqn-parity.md, round 4, on why C = 20 is fragile.)"""
    model = documented_tmaze_drqn(20, seed)
    optimal = TMazeOptimalCallback(tmaze(20), stop_when_optimal=True)
    model.learn(10**9, callback=optimal, max_episodes=600)
    assert optimal.first_optimal_episode is not None, optimal.checks


@pytest.mark.slow
def test_sb3_style_learn_ends_with_an_optimal_policy():
    """The SB3 user: the class's defaults plus the runner's documented T-Maze settings (README), a plain
    ``learn(total_timesteps)`` (8,192 of them fill the buffer), no stop at the first optimal check: the
    final greedy policy is optimal at L = 20 on at least 2 of reporting seeds 1000-1002 (never used for a
    choice). With round 21's settings (the loss on every step of the sampled episodes) it passes on an AMD
    EPYC, and the final policy is optimal on 10/10 of seeds 2000-2009 (``results/sb3-user/L20-r21.jsonl``).
    With round 15's settings (round 10's, the averaged
    network and advantage learning) the final
    policy is optimal on 10/10 of seeds 2000-2009 on an Intel Xeon (``results/sb3-user/L20-r15.jsonl``,
    benchmarks/bench_sb3_user.py). With round 10's (10-step Watkins returns, the held-then-decayed rate) it
    passes on an AMD EPYC, and on 10/10 of seeds 2000-2009 (``results/sb3-user/L20-r10.jsonl``). With round
    5's (one-step targets, a constant rate): optimal on all three, after 440, 432 and 455 training episodes,
    and on 10/10 of seeds 1000-1009; with 2 × 32 (before round 5) 1002 was not (its first move in the Up
    layout tied Right and Down)."""
    finals = []
    for seed in (1000, 1001, 1002):
        model = documented_tmaze_drqn(20, seed)
        model.learn(20_000)
        finals.append(is_tmaze_optimal(model, tmaze(20)))
    assert sum(finals) >= 2, finals


# ----------------------------------------------------------------------------- loss


@pytest.mark.parametrize(
    "train_mode, alpha, window, burn_in",
    [
        ("histories", 0.0, None, 0),
        ("sequences", 0.0, None, 0),
        ("histories", 0.5, None, 0),
        ("histories", 0.0, 2, 0),
        ("sequences", 0.5, 3, 1),
    ],
)
def test_one_pass_loss_equals_per_prefix_algorithm_4(train_mode, alpha, window, burn_in):
    """The loss of one sequence pass per sampled episode equals Algorithm 4 computed history by history;
    with advantage learning (α > 0) each target loses α times the target network's action gap. With
    truncated histories (``history_window``) run from states stored by the same online network, the
    windows' Q-values are the whole histories' (the loss is the same), and with ``burn_in`` the first steps
    of a window inside its episode are not trained."""
    model = small_model(
        gamma=0.9,
        train_mode=train_mode,
        batch_size=16,
        advantage_learning=alpha,
        history_window=window,
        burn_in=burn_in,
    )
    model.learn(10**9, max_episodes=2)
    with th.no_grad():  # make the target network differ from the online one
        for p in model.q_net_target.parameters():
            p.add_(0.1 * th.randn_like(p))
    model.refresh_target_values()  # the bootstrap values are stored per transition since the last copy
    if window is not None:  # (and the online network's states, where the windows start)
        assert max(buffer_length := model.replay_buffer.lengths) > window, buffer_length
    buffer, batch_size = model.replay_buffer, 16
    rng = copy.deepcopy(model.policy.rng)
    slots, cumulative = buffer._sample_index()
    flat = rng.integers(buffer.size, size=batch_size)
    rows = np.searchsorted(cumulative, flat, side="right")
    steps = buffer.first_live[slots[rows]] + flat - np.where(rows > 0, cumulative[rows - 1], 0)
    if train_mode == "histories":
        pairs = list(zip(slots[rows], steps, strict=True))
    elif window is None:
        pairs = [
            (s, t) for s in np.unique(slots[rows]) for t in range(buffer.first_live[s], buffer.lengths[s])
        ]
    else:  # each sampled t: the steps of its window after the burn-in, up to t
        pairs = []
        for s, end in zip(slots[rows], steps, strict=True):
            start = max(0, end - window + 1)
            first = max(start + (burn_in if start > 0 else 0), buffer.first_live[s])
            pairs += [(s, t) for t in range(first, end + 1)]
    errors = []
    for slot, t in pairs:
        t = int(t)
        obs = th.as_tensor(buffer.observations[slot, : t + 2])[None]
        actions = th.as_tensor(buffer.actions[slot, : t + 1])[None]
        rewards = th.as_tensor(buffer.rewards[slot, : t + 1])[None]
        x = model.q_net.episode_features(obs, actions, rewards)  # history η_{0:t+1}
        with th.no_grad():
            q = model.q_net(x[:, : t + 1])[0][0, -1, actions[0, t]]  # Q_θ(η_{0:t}, a_t)
            next_q = model.q_net_target(x)[0][0, -1].max()  # max_a Q_θ'(η_{0:t+1}, a)
            target_q = model.q_net_target(x[:, : t + 1])[0][0, -1]  # Q_θ'(η_{0:t}, ·)
        terminal = buffer.terminated[slot] and t == buffer.lengths[slot] - 1
        y = rewards[0, t] + (0.0 if terminal else 0.9 * next_q)
        y = y - alpha * (target_q.max() - target_q[actions[0, t]])
        errors.append(float((y - q) ** 2))
    model.train(1, batch_size)
    assert model.logger.name_to_value["train/loss"] == pytest.approx(np.mean(errors), rel=1e-5)


@pytest.mark.parametrize(
    "options",
    [
        dict(n_steps=3),
        dict(n_steps=3, n_step_correction="watkins"),
        dict(double_q=True, loss="huber", max_grad_norm=1.0),
    ],
)
def test_drqn_options_train(options):
    """The options off Algorithm 4 run end to end and give a finite loss."""
    model = small_model(**options)
    model.learn(10**9, max_episodes=3)
    assert np.isfinite(model.logger.name_to_value.get("train/loss", 0.0)) and model._n_updates == 6


def test_stored_target_values_follow_the_target_network():
    """The bootstrap values stored per transition equal max_a Q_θ' of the current target network."""
    model = small_model(target_update_interval=5)
    model.learn(10**9, max_episodes=7)  # copies at episodes 0 and 5; new episodes since then
    model.train(1, 8)  # fills the values of the episodes added since the last copy

    def stored_and_fresh():
        buffer = model.replay_buffer
        batch = buffer.all_episodes()
        x = model.q_net.episode_features(batch.observations, batch.actions, batch.rewards)
        with th.no_grad():
            fresh = model.q_net_target(x)[0][:, 1:].max(-1).values
        live = batch.weights > 0
        return batch.next_values[live], fresh[live]

    stored, fresh = stored_and_fresh()
    assert not th.isnan(stored).any()
    th.testing.assert_close(stored, fresh)
    with th.no_grad():  # a target network changed by hand: values are stale until refreshed
        for p in model.q_net_target.parameters():
            p.mul_(1.5)
    stored, fresh = stored_and_fresh()
    assert not th.allclose(stored, fresh)
    model.refresh_target_values()
    th.testing.assert_close(*stored_and_fresh())


class OneStepBandit(gym.Env):
    """One step, one observation; action 0 pays 1 and action 1 pays 0: Q* = (1, 0), an action gap of 1."""

    observation_space = spaces.Discrete(1)
    action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, float(action == 0), True, False, {}


@pytest.mark.parametrize("alpha", [0.0, 0.5, 0.75])
def test_advantage_learning_widens_the_action_gap_by_one_over_one_minus_alpha(alpha):
    """On a bandit whose action gap is 1, advantage learning's fixed point keeps Q(greedy) = 1 and sets
    Q(other) = −α / (1 − α) (the gap becomes 1 / (1 − α)): 0, −1, −3."""
    model = small_model(
        OneStepBandit(),
        advantage_learning=alpha,
        learning_rate=1e-2,
        gradient_steps=10,
        target_update_interval=1,
        exploration_initial_eps=0.5,
        exploration_final_eps=0.5,
    )
    model.learn(10**9, max_episodes=300)
    zeros = th.zeros(1, 1, dtype=th.int64)
    x = model.q_net.episode_features(th.zeros(1, 2, dtype=th.int64), zeros, zeros.float())  # o_0, then a_0
    with th.no_grad():
        q_values = model.q_net(x[:, :1])[0][0, -1]  # Q(η_0, ·)
    th.testing.assert_close(q_values, th.tensor([1.0, -alpha / (1 - alpha)]), atol=0.05, rtol=0.0)


def test_soft_target_update_moves_tau_of_the_way():
    """tau < 1: every C episodes θ' ← τ θ + (1 − τ) θ' (SB3's Polyak update), and the stored values follow."""
    model = small_model(target_update_interval=1, tau=0.25)
    model.learn(10**9, max_episodes=2)  # updates at episodes 0 and 1, then one more training episode
    before = [p.detach().clone() for p in model.q_net_target.parameters()]
    online = [p.detach().clone() for p in model.q_net.parameters()]
    assert not same(before, online)
    model._update_target()
    for old, new, theta in zip(before, model.q_net_target.parameters(), online, strict=True):
        th.testing.assert_close(new.detach(), 0.25 * theta + 0.75 * old)
    hard = small_model(target_update_interval=1)
    hard.learn(10**9, max_episodes=2)
    hard._update_target()
    assert same(hard.q_net_target.parameters(), hard.q_net.parameters())


def test_averaged_network_follows_each_gradient_step_and_acts(tmp_path):
    """average_tau: after every gradient step θ̄ ← τ̄ θ + (1 − τ̄) θ̄; θ̄ chooses the actions, θ trains."""
    model = small_model(average_tau=0.25, gradient_steps=1)
    model.learn(10**9, max_episodes=2)
    average = model.policy.q_net_average
    assert model.policy.acting_net is average and not same(average.parameters(), model.q_net.parameters())
    before = [p.detach().clone() for p in average.parameters()]
    model.train(gradient_steps=1, batch_size=model.batch_size)  # one step: θ → θ_new
    for old, new, theta in zip(before, average.parameters(), model.q_net.parameters(), strict=True):
        th.testing.assert_close(new.detach(), 0.25 * theta.detach() + 0.75 * old)
    assert not any(p.requires_grad for p in average.parameters())
    # predict acts with θ̄: make θ̄ (only) prefer action 2 at every step
    env = tmaze()
    obs, _ = env.reset(seed=0)
    with th.no_grad():
        average.head.weight.zero_()
        average.head.bias.copy_(th.tensor([0.0, 0.0, 5.0, 0.0]))
        model.q_net.head.bias.copy_(th.tensor([5.0, 0.0, 0.0, 0.0]))
    assert int(model.predict(obs, deterministic=True)[0]) == 2
    model.save(tmp_path / "averaged.zip")
    loaded = DRQN.load(tmp_path / "averaged.zip", device="cpu")
    assert loaded.average_tau == 0.25 and same(loaded.policy.q_net_average.parameters(), average.parameters())
    assert int(loaded.predict(obs, deterministic=True)[0]) == 2
    # average_tau = 1: θ̄ is θ after every step, so training and acting are those without averaging
    plain, copied = small_model(), small_model(average_tau=1.0)
    plain.learn(10**9, max_episodes=3)
    copied.learn(10**9, max_episodes=3)
    assert same(plain.q_net.parameters(), copied.q_net.parameters())
    assert same(copied.policy.q_net_average.parameters(), copied.q_net.parameters())
    assert plain.policy.q_net_average is None and plain.policy.acting_net is plain.q_net


def test_with_average_collects_false_theta_collects_and_the_average_predicts(tmp_path):
    """average_collects=False: the ε-greedy actions of collection are θ's, ``predict``'s are θ̄'s."""
    actions = {}
    for collects in (True, False):
        model = small_model(average_tau=0.25, average_collects=collects, exploration_initial_eps=0.0)
        model.exploration_final_eps = 0.0
        with th.no_grad():  # θ prefers Up (1), θ̄ Down (2), at every step
            for net, action in ((model.q_net, 1), (model.policy.q_net_average, 2)):
                net.head.weight.zero_()
                net.head.bias.copy_(th.nn.functional.one_hot(th.tensor(action), 4).float() * 5.0)
        model.learn(10**9, max_episodes=1)  # the buffer fill (ℰ), then one ε-greedy episode, stored last
        buffer = model.replay_buffer
        last = buffer.queue[-1]
        actions[collects] = set(buffer.actions[last, : buffer.lengths[last]].tolist())
        obs, _ = tmaze().reset(seed=0)
        assert int(model.predict(obs, deterministic=True)[0]) == 2  # θ̄ predicts either way
    assert actions == {True: {2}, False: {1}}
    model.save(tmp_path / "average.zip")
    assert DRQN.load(tmp_path / "average.zip", device="cpu").average_collects is False
    with pytest.raises(ValueError, match="average_collects must be True or False; got 'no'"):
        small_model(average_tau=0.25, average_collects="no")


def test_fixed_point_term_by_hand():
    """mean ‖o_t − o_{t−1}‖² over the steps whose input repeats the previous one, within the lengths."""
    x = th.tensor([[[1.0], [2.0], [2.0], [2.0], [2.0]], [[3.0], [3.0], [4.0], [4.0], [4.0]]])
    o = th.tensor(
        [
            [[0.0, 0.0], [1.0, 0.0], [1.0, 2.0], [1.0, 2.0], [9.0, 9.0]],
            [[0.0, 0.0], [0.0, 3.0], [5.0, 5.0], [5.0, 6.0], [9.0, 9.0]],
        ]
    )
    # row 0 (length 4): t = 2 (change 4), t = 3 (0); t = 4 is past its length. Row 1 (length 5): t = 1 (9),
    # t = 3 (1), t = 4 (16 + 9 = 25); t = 2 has a new input.
    term = fixed_point_term(x, o, th.tensor([4, 5]))
    assert float(term) == pytest.approx((4 + 0 + 9 + 1 + 25) / 5)
    assert float(fixed_point_term(x[:, :2], o[:, :2], th.tensor([2, 1]))) == 0.0  # no repeated input counts


def term_off_and_on(coef_name: str, measure: Callable[[DRQN], float], **settings: Any) -> dict[float, float]:
    """``measure(model)`` after 20 episodes with the loss term ``coef_name`` at 0 and at 10; and a check
    that the term at 0 trains exactly as without it (the same parameters after 3 episodes)."""
    measured = {}
    for coef in (0.0, 10.0):
        model = small_model(**{coef_name: coef}, gradient_steps=10, **settings)
        model.learn(10**9, max_episodes=20)
        measured[coef] = measure(model)
    plain, zero = small_model(), small_model(**{coef_name: 0})
    plain.learn(10**9, max_episodes=3)
    zero.learn(10**9, max_episodes=3)
    assert same(plain.q_net.parameters(), zero.q_net.parameters())
    return measured


def test_the_fixed_point_term_draws_the_corridor_states_onto_fixed_points():
    """With a large λ the top layer's outputs move less under the repeated corridor input of the buffer's
    episodes than without; λ = 0 trains exactly as before (the same parameters)."""

    def corridor_change(model: DRQN) -> float:
        batch = model.replay_buffer.all_episodes()
        x = model.q_net.episode_features(batch.observations, batch.actions, batch.rewards)[:, :-1]
        with th.no_grad():
            return float(fixed_point_term(x, model.q_net.rnn.outputs(x, batch.lengths), batch.lengths))

    changes = term_off_and_on("fixed_point_coef", corridor_change)
    assert changes[10.0] < 0.2 * changes[0.0], changes


def hold_batch(model: DRQN) -> tuple[th.Tensor, th.Tensor, th.Tensor]:
    """The inputs, Q-values and lengths of every episode of ``model``'s buffer."""
    batch = model.replay_buffer.all_episodes()
    x = model.q_net.episode_features(batch.observations, batch.actions, batch.rewards)[:, :-1]
    with th.no_grad():
        return x, model.q_net.q_values(x, batch.lengths), batch.lengths


def mean_hold_term(model: DRQN, max_steps: int = 300, draws: int = 8) -> float:
    x, q, lengths = hold_batch(model)
    rng = np.random.default_rng(0)
    with th.no_grad():
        terms = [float(hold_term(model.q_net, x, q, lengths, rng, max_steps)) for _ in range(draws)]
    return float(np.mean(terms))


def without_memory(model: DRQN) -> DRQN:
    """A copy of ``model`` (a GRU stack) whose state forgets every step: ``h' = n(x)``."""
    memoryless = copy.deepcopy(model)
    with th.no_grad():
        for layer in memoryless.q_net.rnn.layers:
            size = layer.rnn.weight_hh_l0.shape[1]
            layer.rnn.weight_hh_l0.zero_()
            layer.rnn.bias_hh_l0[size : 2 * size] = -1e4  # update gate z = 0: h' = n(x), no memory
    return memoryless


def test_hold_term_by_hand():
    """0 for a network without memory (its Q-values depend on the current input only, so a longer hold
    changes nothing) and for a batch that holds no input; > 0 for a GRU whose state moves under the held
    corridor input; it finds the holds' ends where the input changes, within the lengths."""
    model = small_model()
    model.learn(10**9, max_episodes=3)
    x, q, lengths = hold_batch(model)
    assert mean_hold_term(model) > 1e-6  # PyTorch's initialisation: the state moves along the corridor
    memoryless = without_memory(model)
    assert mean_hold_term(memoryless) == pytest.approx(0.0, abs=1e-10)
    # no hold: every input differs from the previous one
    ramp = th.arange(6.0).view(1, 6, 1).expand(2, 6, x.shape[-1]).contiguous()
    zero = hold_term(model.q_net, ramp, th.zeros(2, 6, 4), th.tensor([6, 6]), np.random.default_rng(0), 10)
    assert float(zero) == 0.0
    # the held input's advantages: 0 again without memory, larger than the next input's term alone with it
    with th.no_grad():  # the same draws (seed 1) for the three
        alone = float(hold_term(model.q_net, x, q, lengths, np.random.default_rng(1), 300))
        both = float(hold_term(model.q_net, x, q, lengths, np.random.default_rng(1), 300, advantages=True))
        assert both > alone > 0.0
        q_memoryless = memoryless.q_net.q_values(x, lengths)
        rng = np.random.default_rng(1)
        no_memory = hold_term(memoryless.q_net, x, q_memoryless, lengths, rng, 300, advantages=True)
    assert float(no_memory) == pytest.approx(0.0, abs=1e-10)
    # a hold that ends at t = 3 (inputs 1, 2, 2, 2, 5) counts only when t + 1 is within the row's length
    held = th.tensor([1.0, 2.0, 2.0, 2.0, 5.0]).view(1, 5, 1).expand(1, 5, x.shape[-1]).contiguous()
    q_held = model.q_net.q_values(held, th.tensor([5])).detach()
    rng = np.random.default_rng(0)
    with th.no_grad():
        assert float(hold_term(model.q_net, held, q_held, th.tensor([4]), rng, 10)) == 0.0
        assert float(hold_term(model.q_net, held, q_held, th.tensor([5]), rng, 10)) > 0.0
        # with the observations, a hold ends only where the observation changes: the input's change at
        # t + 1 = 4 through its previous action or reward alone (observations 0, 1, 1, 1, 1) ends none
        five = th.tensor([5])
        only_input = th.tensor([[0, 1, 1, 1, 1]])
        assert float(hold_term(model.q_net, held, q_held, five, rng, 10, observations=only_input)) == 0.0
        both = th.tensor([[0, 1, 1, 1, 2]])
        assert float(hold_term(model.q_net, held, q_held, five, rng, 10, observations=both)) > 0.0
        with pytest.raises(ValueError, match=r"observations must have the steps of x \(1, 5\)"):
            hold_term(model.q_net, held, q_held, five, rng, 10, observations=both[:, :4])
    # a Dict space's observations side by side, the last step (o_T) left out
    steps = observation_steps({"a": th.arange(12).view(2, 3, 2), "b": th.arange(6).view(2, 3)})
    assert steps.shape == (2, 2, 3) and steps[1, 1].tolist() == [8.0, 9.0, 4.0]


def test_the_hold_term_keeps_the_q_values_over_longer_holds():
    """With a large λ_h the Q-values at the junction after a corridor held up to 300 steps longer are closer
    to the episode's own than without; λ_h = 0 trains exactly as before (the same parameters)."""
    terms = term_off_and_on("hold_coef", mean_hold_term, hold_steps=300)
    assert terms[10.0] < 0.3 * terms[0.0], terms


def held_drift(model: DRQN, max_steps: int = 300, draws: int = 8) -> float:
    """The mean drift part of the hold term (``drift_coef`` 1 minus 0, the same draws) on the buffer."""
    x, q, lengths = hold_batch(model)
    drifts = []
    with th.no_grad():
        for seed in range(draws):
            on, off = (
                float(hold_term(model.q_net, x, q, lengths, np.random.default_rng(seed), max_steps, **kw))
                for kw in ({"drift_coef": 1.0}, {})
            )
            drifts.append(on - off)
    return float(np.mean(drifts))


def test_hold_drift_by_hand():
    """The drift part is λ_d times the distance the top layer's output moves over the hold's last
    back-propagated steps: recomputed here for one hold; linear in λ_d; 0 without memory and for a hold of
    one step (nothing to compare)."""
    model = small_model()
    model.learn(10**9, max_episodes=3)
    held = th.tensor([1.0, 2.0, 2.0, 2.0, 5.0]).view(1, 5, 1).expand(1, 5, model.q_net.rnn.input_size)
    held = held.contiguous()
    lengths = th.tensor([5])
    with th.no_grad():
        q = model.q_net.q_values(held, lengths)
        terms = {
            c: float(
                hold_term(
                    model.q_net, held, q, lengths, np.random.default_rng(0), 100, bptt_steps=5, drift_coef=c
                )
            )
            for c in (0.0, 1.0, 2.0)
        }
        rng = np.random.default_rng(0)  # the draws of hold_term: the hold's end, then M
        rng.choice(1, size=1, replace=False)
        hold = min(max(int(np.exp(rng.uniform(0.0, np.log(101.0)))), 1), 100)
        assert hold > 5  # longer than the back-propagated window: the no-gradient part runs too
        state = model.q_net.rnn.states_at(held, th.tensor([4]))
        outputs, _ = model.q_net.rnn(held[:, 3:4].expand(1, hold, -1), state)
        window = outputs[:, -min(hold, 5) :]
        drift = float((window[0, -1] - window[0, 0]).norm())
    assert drift > 1e-4
    assert terms[1.0] - terms[0.0] == pytest.approx(drift, rel=1e-4, abs=1e-6)
    assert terms[2.0] - terms[0.0] == pytest.approx(2 * drift, rel=1e-4, abs=1e-6)
    with th.no_grad():  # M = 1: one held step, no drift to measure
        one = [
            float(hold_term(model.q_net, held, q, lengths, np.random.default_rng(0), 1, drift_coef=c))
            for c in (0.0, 5.0)
        ]
    assert one[0] == one[1]
    memoryless = without_memory(model)
    assert held_drift(memoryless) == pytest.approx(0.0, abs=1e-6)


def test_the_hold_drift_stops_the_held_states():
    """With the hold term on and a large λ_d, the states still move less at the end of a 300-step hold of
    the corridor input than with λ_d = 0; λ_d = 0 trains exactly as without the option."""
    drifts = term_off_and_on("hold_drift_coef", held_drift, hold_coef=1.0, hold_steps=300)
    assert drifts[10.0] < 0.3 * drifts[0.0], drifts


def test_n_step_returns_by_hand():
    """n-step targets: Σ_{i<m} γ^i r_{t+i} + γ^m max Q'(η_{0:t+m}), m = min(n, steps left)."""
    model = small_model(gamma=0.9, n_steps=3)
    nan = float("nan")
    batch = EpisodeBatch(
        observations=th.zeros(2, 6),
        actions=th.zeros(2, 5, dtype=th.long),
        rewards=th.tensor([[1.0, 2.0, 3.0, 4.0, 0.0], [1.0, 1.0, 0.0, 0.0, 0.0]]),
        dones=th.tensor([[0.0, 0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]),  # first: terminal at step 3
        weights=th.ones(2, 5),
        lengths=th.tensor([4, 2]),
        next_values=th.tensor([[10.0, 20.0, 30.0, 40.0, nan], [5.0, 6.0, nan, nan, nan]]),
        episode_lengths=th.tensor([4, 2]),
    )
    returns = model._returns(batch, batch.next_values)
    g = 0.9
    expected_first = [1 + g * 2 + g**2 * 3 + g**3 * 30, 2 + g * 3 + g**2 * 4, 3 + g * 4, 4.0]
    expected_second = [1 + g * 1 + g**2 * 6, 1 + g * 6]  # truncated: bootstraps from its last value
    th.testing.assert_close(returns[0, :4], th.tensor(expected_first))
    th.testing.assert_close(returns[1, :2], th.tensor(expected_second))
    model.n_steps = 1  # Algorithm 4's one-step target
    one_step = model._returns(batch, batch.next_values)
    th.testing.assert_close(one_step[0, :4], th.tensor([1 + g * 10, 2 + g * 20, 3 + g * 30, 4.0]))


def test_watkins_n_step_returns_stop_at_the_first_exploratory_action():
    """Watkins's cut: step t's return stops before the first a_{t+i} (i ≥ 1) not greedy for θ'."""
    model = small_model(gamma=0.9, n_steps=3, n_step_correction="watkins")
    batch = EpisodeBatch(
        observations=th.zeros(1, 6),
        actions=th.zeros(1, 5, dtype=th.long),
        rewards=th.tensor([[1.0, 2.0, 3.0, 4.0, 5.0]]),
        dones=th.zeros(1, 5),
        weights=th.ones(1, 5),
        lengths=th.tensor([5]),
        next_values=th.tensor([[10.0, 20.0, 30.0, 40.0, 50.0]]),
        episode_lengths=th.tensor([5]),
        greedy=th.tensor([[False, True, False, True, True]]),  # a_2 explored; a_0's own flag never matters
    )
    g = 0.9
    expected = [
        1 + g * 2 + g**2 * 20,  # a_1 greedy, a_2 not: cut after two steps
        2 + g * 20,  # a_2 not greedy: one step
        3 + g * 4 + g**2 * 5 + g**3 * 50,  # a_3, a_4 greedy: the full three steps
        4 + g * 5 + g**2 * 50,  # the episode's end (not terminal): bootstraps from its last value
        5 + g * 50,
    ]
    th.testing.assert_close(model._returns(batch, batch.next_values)[0], th.tensor(expected))
    # n longer than the batch (a short episode): every return runs to the episode's end, or to the cut
    model.n_steps = 10
    long = model._returns(batch, batch.next_values)[0]
    th.testing.assert_close(
        long[1:], th.tensor([2 + g * 20, 3 + g * 4 + g**2 * 5 + g**3 * 50, *expected[3:]])
    )
    model.n_step_correction = "none"  # uncorrected: a_2's exploration enters steps 0 and 1's targets
    model.n_steps = 3
    uncorrected = model._returns(batch, batch.next_values)[0]
    th.testing.assert_close(
        uncorrected[:2], th.tensor([1 + g * 2 + g**2 * 3 + g**3 * 30, 2 + g * 3 + g**2 * 4 + g**3 * 40])
    )


def test_stored_greedy_flags_and_action_gaps_follow_the_target_network():
    """The buffer's greedy flags say whether each stored action is an argmax of the target network's Q, and
    (with advantage learning) its gaps are max_a Q_θ' − Q_θ'(a_k)."""
    model = small_model(
        n_steps=3, n_step_correction="watkins", advantage_learning=0.5, target_update_interval=5
    )
    model.learn(10**9, max_episodes=7)
    model.train(1, 8)
    batch = model.replay_buffer.all_episodes()
    x = model.q_net.episode_features(batch.observations, batch.actions, batch.rewards)
    with th.no_grad():
        q = model.q_net_target(x)[0][:, :-1]
    live = batch.weights > 0
    taken = q.gather(-1, batch.actions.unsqueeze(-1)).squeeze(-1)
    assert th.equal(batch.greedy[live], (taken >= q.max(-1).values)[live])
    assert 0 < batch.greedy[live].float().mean() < 1  # ε-greedy and exploration-policy episodes: both kinds
    th.testing.assert_close(batch.gaps[live], (q.max(-1).values - taken)[live])
    assert th.equal(batch.gaps[live] == 0, batch.greedy[live])  # no gap exactly where the action is greedy


def test_truncated_episode_bootstraps_terminal_does_not():
    buffer = EpisodeReplayBuffer(100, spaces.Discrete(4))
    buffer.add(np.array([0, 2, 3]), np.array([0, 0]), np.array([0.0, 4.0]), terminated=True)
    buffer.add(np.array([1, 2, 2]), np.array([0, 1]), np.array([0.0, -0.1]), terminated=False)
    batch = buffer.all_episodes()
    assert batch.dones.tolist() == [[0.0, 1.0], [0.0, 0.0]]
    assert batch.weights.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_truncated_histories_are_the_last_steps_of_each_sampled_history_from_its_stored_state():
    """``sample(window=W)``: one row per sampled transition ``t``, its steps ``s = max(0, t − W + 1) … t``
    with their observations, the action and reward before ``s``, the state stored before ``x_s``, the
    episode's transitions left from ``s`` and its terminal step counted from ``s``."""
    buffer = EpisodeReplayBuffer(100, spaces.Discrete(8))
    obs, actions, rewards = np.array([0, 1, 2, 3, 4, 5]), np.array([0, 1, 2, 3, 0]), np.arange(5.0)
    buffer.add(obs, actions, rewards, terminated=True)
    buffer.add(np.array([7, 6, 7]), np.array([3, 2]), np.array([-1.0, -2.0]), terminated=False)
    with pytest.raises(ValueError, match="set_states"):
        buffer.sample(4, np.random.default_rng(0), window=2)
    states = np.arange(2 * 5, dtype=np.float32).reshape(2, 5, 1, 1) * np.ones((1, 1, 2, 3), np.float32)
    buffer.set_states(np.array([0, 1]), states)  # the state before x_k of slot u: 5 u + k in every entry
    batch = buffer.sample(200, np.random.default_rng(0), "histories", lookahead=1, window=2)
    seen = set()
    for u in range(len(batch.lengths)):
        start, run = int(batch.starts[u]), int(batch.lengths[u])
        slot = 0 if int(batch.observations[u, 0]) < 6 else 1
        stored_obs = [obs, np.array([7, 6, 7])][slot]
        stored_actions = [actions, np.array([3, 2])][slot]
        t = start + run - 1
        seen.add((slot, t))
        assert start == max(0, t - 1) and run == min(2, t + 1)
        assert batch.observations[u, : run + 1].tolist() == stored_obs[start : start + run + 1].tolist()
        assert batch.actions[u, :run].tolist() == stored_actions[start : start + run].tolist()
        assert int(batch.previous_actions[u]) == (stored_actions[start - 1] if start else NO_ACTION)
        stored_rewards = [rewards, np.array([-1.0, -2.0])][slot]
        assert float(batch.previous_rewards[u]) == (stored_rewards[start - 1] if start else 0.0)
        assert batch.initial_states[:, u].flatten().tolist() == [5.0 * slot + start] * 6
        assert batch.weights[u].tolist() == [
            1.0 if k == run - 1 else 0.0 for k in range(batch.weights.shape[1])
        ]
        assert int(batch.episode_lengths[u]) == len(stored_actions) - start
        done = slot == 0 and t == 4
        assert float(batch.dones[u, run - 1]) == float(done)
    assert seen == {(0, t) for t in range(5)} | {(1, 0), (1, 1)}  # every transition is sampled
    # an episode added since the states were stored has none: an error, not the slot's previous states
    buffer.add(np.array([1, 2]), np.array([1]), np.array([0.5]), terminated=True)
    with pytest.raises(ValueError, match=r"refresh_target_values\(\)"):
        buffer.sample(200, np.random.default_rng(0), window=2)
    buffer.set_states(np.array([2]), np.zeros((1, 1, 2, 3), np.float32))
    # sequences: every live step of the window up to t, after a burn-in of 1 where the window starts inside
    batch = buffer.sample(200, np.random.default_rng(1), "sequences", window=3, burn_in=1)
    for u in range(len(batch.lengths)):
        start, run = int(batch.starts[u]), int(batch.lengths[u])
        expected = [1.0 if (start == 0 or k >= 1) and k < run else 0.0 for k in range(batch.weights.shape[1])]
        assert batch.weights[u].tolist() == expected


@pytest.mark.parametrize(
    "policy_kwargs, window",
    [(dict(cell="lstm", double=True, use_previous_reward=True), 2), (dict(cell="gru"), 1)],
)
def test_truncated_histories_from_current_states_train_as_whole_histories(policy_kwargs, window):
    """With the states stored by the online network itself, a gradient step on windows of the sampled
    transitions' histories has the loss of the step on whole histories, also with Watkins's n-step returns
    and advantage learning, for LSTM and double layers (their states are wider than their outputs); the
    states of episodes stored during ``learn`` are stored with their target values."""
    settings = dict(n_steps=3, n_step_correction="watkins", advantage_learning=0.5, gamma=0.9, batch_size=16)
    model = small_model(policy_kwargs=policy_kwargs, history_window=window, **settings)
    model.learn(10**9, max_episodes=3)  # (trained on windows)
    assert np.isfinite(model.replay_buffer.states[list(model.replay_buffer.queue)][:, 0]).all()
    whole = small_model(policy_kwargs=policy_kwargs, **settings)
    whole.learn(10**9, max_episodes=0)
    whole.replay_buffer = model.replay_buffer
    whole.policy.load_state_dict(model.policy.state_dict())
    with th.no_grad():  # a target network that differs from the online one
        for p in model.q_net_target.parameters():
            p.add_(0.1 * th.randn_like(p))
    whole.q_net_target.load_state_dict(model.q_net_target.state_dict())
    model.refresh_target_values()  # the values of θ', the states of θ
    assert max(model.replay_buffer.lengths[list(model.replay_buffer.queue)]) > window
    whole.policy.rng = copy.deepcopy(model.policy.rng)  # the same sampled transitions
    model.train(1, 16)
    whole.train(1, 16)
    losses = [m.logger.name_to_value["train/loss"] for m in (model, whole)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_truncated_histories_arguments_are_checked():
    for settings, match in (
        (dict(history_window=0), "history_window must be None or an integer >= 1"),
        (dict(burn_in=2), "burn_in .* needs truncated histories"),
        (dict(history_window=4, burn_in=1), "burn_in needs train_mode='sequences'"),
        (dict(history_window=4, burn_in=4, train_mode="sequences"), "smaller than history_window"),
        (dict(history_window=4, double_q=True), "double_q is not available with truncated histories"),
        (dict(history_window=4, hold_coef=1.0), "hold_coef is not available"),
    ):
        with pytest.raises(ValueError, match=match):
            small_model(**settings)


def test_replay_buffer_fifo_over_transitions():
    buffer = EpisodeReplayBuffer(10, spaces.Discrete(4))
    for base, length in ((0, 4), (10, 5), (20, 3)):
        buffer.add(np.arange(length + 1) % 4, np.arange(length) + base, np.zeros(length), terminated=True)
    assert len(buffer) == 10 and buffer.full  # the 2 oldest transitions of the first episode were evicted
    rng = np.random.default_rng(0)
    batch = buffer.sample(5000, rng, "histories")
    counts = batch.weights
    sampled = {(u, t) for u, t in zip(*np.nonzero(counts.numpy()), strict=True)}
    assert (0, 0) not in sampled and (0, 1) not in sampled  # evicted: never sampled
    assert len(sampled) == 10  # every live transition is sampled
    assert counts.sum() == 5000 and counts.max() < 2 * 5000 / 10  # about uniform
    # The evicted steps stay in the history of the live ones of the same episode.
    assert batch.actions[0, :4].tolist() == [0, 1, 2, 3]
    buffer.add(np.zeros(9, dtype=np.int64), np.full(8, 30), np.zeros(8), terminated=False)
    assert len(buffer) == 10 and len(buffer.queue) == 2  # first episode gone, second one partly


# ----------------------------------------------------------------------------- SB3 integration


def test_same_seed_same_actions():
    def run(seed):
        model = small_model(seed=seed)
        model.learn(10**9, max_episodes=4)
        slots = list(model.replay_buffer.queue)
        actions = model.replay_buffer.actions[slots].copy()
        return (
            actions,
            [p.detach().clone() for p in model.q_net.parameters()],
            greedy_actions(model, tmaze(), "up"),
        )

    actions, params, greedy = run(0)
    actions_again, params_again, greedy_again = run(0)
    assert np.array_equal(actions, actions_again) and greedy == greedy_again
    assert same(params, params_again)
    other_actions, other_params, _ = run(1)
    assert not np.array_equal(actions, other_actions) and not same(params, other_params)


def test_callbacks_see_the_locals_of_each_env_step_as_in_sb3():
    """A function callback (SB3's ``ConvertCallback``) reads ``locals()["self"]`` (the model) and the step."""
    seen = []

    def record(locals_, globals_):
        seen.append((locals_["self"], dict(locals_)))
        return True

    model = small_model()
    model.learn(10**9, callback=record, max_episodes=1)
    assert len(seen) == model.num_timesteps and all(found is model for found, _ in seen)
    last = seen[-1][1]
    assert {"actions", "new_obs", "rewards", "dones", "infos"} <= set(last) and last["dones"][0]


# Recorded with the code before the SB3-contract changes (learning-rate and ε schedules, learning_starts,
# n_envs > 1, ...): the default DRQN must still act and learn the same. For each setting: env steps, the
# actions of the last 4 stored episodes (the 4 training episodes), the mean loss of each training episode,
# the sum of the online network's parameters after them, and the relative tolerance of those floats.
#
# The floats are float32 sums whose last bits depend on the CPU's kernels (AVX-512, AVX2, SSE, FMA or not;
# MKL, ATen and numba each pick theirs). The tolerances come from the spread measured on one machine over
# nine kernel choices (ATEN_CPU_CAPABILITY=default/avx2, MKL_ENABLE_INSTRUCTIONS=SSE4_2/AVX2,
# MKL_CBWR=COMPATIBLE, NUMBA_CPU_NAME=generic/haswell, one thread), with a margin of about 30:
# - without warmup, at most 3.6e-6 (relative, parameter sum) and 3e-7 (losses): rel = 1e-4;
# - with the warmup, whose Adam rate (8e-2 at 32 units) amplifies those last bits, up to 3.7e-4, and one
#   greedy action of the 36 flipped: rel = 1e-2, and the actions and env steps are not recorded (None).
RECORDED = {
    "default": (
        {},
        8235,
        [[1] * 9, [2, 1, 1, 1, 2, 1, 1, 1, 1], [0, 1, 1, 1, 0, 1, 1, 1, 2], [1] * 9],
        [0.3951049745082855, 0.6308951377868652, 0.49984580278396606, 0.43289637565612793],
        1.5173614562918374,
        1e-4,
    ),
    "small": (
        dict(buffer_size=256, batch_size=8, gradient_steps=2, vaa_interval=0, vaa_measure_interval=0),
        296,
        [[1, 1, 1, 1, 1, 1, 1, 0, 2], [1] * 9, [3, 1, 1, 1, 1, 2, 1, 1, 1], [2, 1, 3, 1, 1, 1, 2, 1, 2]],
        [0.05666927248239517, 0.9903703331947327, 0.030599765479564667, 0.01905778981745243],
        -0.6527642978762742,
        1e-4,
    ),
    "small_warmup": (
        dict(
            buffer_size=256,
            batch_size=8,
            gradient_steps=2,
            vaa_interval=0,
            vaa_measure_interval=0,
            use_warmup=True,
            warmup_config=WarmupConfig(steps=3, batch_size=16),
        ),
        None,
        None,
        [0.34665054082870483, 1.0477625131607056, 0.2571796476840973, 0.06654277443885803],
        108.18939701416093,
        1e-2,
    ),
}


@pytest.mark.parametrize("name", RECORDED)
def test_default_drqn_acts_and_learns_as_recorded(name):
    kwargs, timesteps, actions, losses, param_sum, rel = RECORDED[name]
    model = DRQN("RecurrentQPolicy", tmaze(3), seed=0, **kwargs)
    recorded_losses = []
    train = model.train

    def recording_train(gradient_steps, batch_size):
        train(gradient_steps, batch_size)
        recorded_losses.append(model.logger.name_to_value["train/loss"])

    model.train = recording_train
    model.learn(10**9, max_episodes=4)
    buffer = model.replay_buffer
    if timesteps is not None:
        assert model.num_timesteps == timesteps
        assert [buffer.actions[s, : buffer.lengths[s]].tolist() for s in list(buffer.queue)[-4:]] == actions
    assert recorded_losses == pytest.approx(losses, rel=rel)
    with th.no_grad():
        assert sum(float(p.double().sum()) for p in model.q_net.parameters()) == pytest.approx(
            param_sum, rel=rel
        )


def test_drqn_on_the_registered_env_id():
    """``DRQN("RecurrentQPolicy", "TMaze-v0")``: the registered env has a default corridor length."""
    model = DRQN("RecurrentQPolicy", "TMaze-v0", buffer_size=256, batch_size=8, gradient_steps=1, seed=0)
    assert model.get_env().get_attr("length") == [tmaze_gym.DEFAULT_LENGTH]
    model.learn(10**9, max_episodes=1)
    assert model.replay_buffer.full and model.num_train_episodes == 1


# ----------------------------------------------------------------------------- vectorised envs


def vec_tmaze(n_envs: int, length: int = 3, **kwargs) -> DummyVecEnv:
    return DummyVecEnv([lambda: Monitor(tmaze(length, **kwargs))] * n_envs)


def replays_in_a_fresh_maze(observations, actions, rewards, length: int = 3) -> bool:
    """Whether an episode stored in the buffer is one T-Maze episode: its actions, played in a fresh maze
    of the layout its first observation shows, give back its observations and rewards."""
    env = tmaze(length)
    obs, _ = env.reset(options={"layout": "up" if observations[0] == tmaze_gym.OBS_UP else "down"})
    seen, got = [obs], []
    for action in actions:
        obs, reward, _, _, _ = env.step(int(action))
        seen.append(obs)
        got.append(reward)
    return seen == list(observations) and np.allclose(got, rewards)


def test_vectorised_envs_store_every_episode_whole():
    model = small_model(vec_tmaze(3))
    added = []
    add = model.replay_buffer.add

    def recording_add(observations, actions, rewards, terminated):
        added.append((observations.copy(), actions.copy(), rewards.copy()))
        return add(observations, actions, rewards, terminated)

    model.replay_buffer.add = recording_add
    model.learn(10**9, max_episodes=6)
    episodes = model._episodes_in_progress
    assert model.num_train_episodes == 6 and model.replay_buffer.full
    assert len(added) == model.num_fill_episodes + 6 + episodes.finished
    assert all(replays_in_a_fresh_maze(*episode) for episode in added)  # no steps of another env mixed in
    in_progress = sum(len(actions) for actions in episodes.actions)
    assert sum(len(actions) for _, actions, _ in added) + in_progress == model.num_timesteps
    assert model._n_updates == 6 * 2  # gradient_steps after each training episode


def test_vectorised_acting_state_follows_the_whole_history():
    """An env in the middle of an episode acts on the state of its whole history under the current weights:
    states not computed by the Q-network (fill) or computed before a gradient step are recomputed."""
    model = small_model(vec_tmaze(3))
    model.learn(10**9, max_episodes=3)
    episodes = model._episodes_in_progress
    assert any(episodes.actions), "no env in the middle of an episode"
    model.train(2, 8)  # new weights
    episodes.stale[:] = True
    episodes.refresh_states(model.q_net, model.device)
    q_net = model.q_net
    for i in range(3):
        state = q_net.rnn.initial_state(1)
        obs, actions, rewards = episodes.observations[i], episodes.actions[i], episodes.rewards[i]
        previous_action, previous_reward = NO_ACTION, 0.0
        with th.no_grad():
            for t in range(len(actions)):  # step by step, as a single env would have
                x = q_net.features(
                    th.as_tensor([obs[t]]), th.as_tensor([previous_action]), th.as_tensor([previous_reward])
                )
                state = q_net.step(x, state)[1]
                previous_action, previous_reward = actions[t], rewards[t]
        th.testing.assert_close(episodes.rnn[:, i], state[:, 0], atol=1e-5, rtol=1e-5)


def test_vectorised_drqn_learns_tmaze():
    """Three envs at once, each finished episode followed by its gradient steps: optimal at L = 5 (seeds 0-4
    first optimal at 65, 65, 85, 45, 45 episodes)."""
    model = DRQN(
        "RecurrentQPolicy",
        vec_tmaze(3, length=5, max_episode_steps=14),
        buffer_size=1024,
        use_warmup=True,
        warmup_config=WarmupConfig(batch_size=32, steps=50),
        gradient_steps=20,
        policy_kwargs=dict(use_previous_reward=True, init="xavier"),
        seed=0,
        vaa_interval=0,
        vaa_measure_interval=0,
    )
    optimal = TMazeOptimalCallback(tmaze(5), check_freq=5, stop_when_optimal=True)
    model.learn(10**9, callback=optimal, max_episodes=300)
    assert optimal.first_optimal_episode is not None, optimal.checks


# ----------------------------------------------------------------------------- SB3 options


def test_learning_starts_takes_exploration_steps_before_training():
    """SB3's ``learning_starts``: env steps with ℰ and no gradient step (here beyond the buffer fill)."""
    model = small_model(learning_starts=600, exploration_initial_eps=0.0, exploration_final_eps=0.0)
    greedy_calls, train_calls = [], []
    select, train = model.policy.select_actions, model.train
    model.policy.select_actions = lambda *args: greedy_calls.append(model.num_timesteps) or select(*args)
    model.train = lambda *args: train_calls.append(model.num_timesteps) or train(*args)
    model.learn(10**9, max_episodes=2)
    assert model.replay_buffer.full and train_calls and min(train_calls) >= 600
    assert greedy_calls and min(greedy_calls) >= 600  # before it, actions of ℰ only
    assert model.num_train_episodes == 2
    assert small_model().learning_starts == 0  # off by default: the fill is the random phase


def test_net_arch_builds_the_q_head():
    model = small_model(policy_kwargs=dict(net_arch=[16, 8], activation_fn=th.nn.Tanh))
    head = model.q_net.head
    assert [type(m) for m in head] == [th.nn.Linear, th.nn.Tanh, th.nn.Linear, th.nn.Tanh, th.nn.Linear]
    assert [m.out_features for m in head if isinstance(m, th.nn.Linear)] == [16, 8, 4]
    model.learn(10**9, max_episodes=2)
    assert np.isfinite(model.logger.name_to_value["train/loss"])
    assert isinstance(small_model().q_net.head, th.nn.Linear)  # by default the paper's linear head


def test_dueling_head_is_value_plus_centred_advantages():
    model = small_model(policy_kwargs=dict(dueling=True, net_arch=[16]))
    head = model.q_net.head
    assert isinstance(head, DuelingHead)
    assert [m.out_features for m in head.value if isinstance(m, th.nn.Linear)] == [16, 1]
    assert [m.out_features for m in head.advantage if isinstance(m, th.nn.Linear)] == [16, 4]
    h = th.randn(3, 5, model.q_net.rnn.hidden_size)
    with th.no_grad():
        q, v, a = head(h), head.value(h), head.advantage(h)
    th.testing.assert_close(q, v + a - a.mean(-1, keepdim=True))
    th.testing.assert_close(q.mean(-1, keepdim=True), v)  # V is the mean of the Q-values, A their gaps
    # an update of one action's Q-value moves the value stream, hence every action's
    loss = head(h)[..., 0].sum()
    loss.backward()
    assert head.value[0].weight.grad.abs().sum() > 0
    linear = small_model(policy_kwargs=dict(dueling=True)).q_net.head  # no net_arch: two linear streams
    assert isinstance(linear.value, th.nn.Linear) and linear.value.out_features == 1
    model.learn(10**9, max_episodes=2)
    assert np.isfinite(model.logger.name_to_value["train/loss"])
    with pytest.raises(ValueError, match="dueling must be True or False; got 'yes'"):
        small_model(policy_kwargs=dict(dueling="yes"))


def test_progress_bar_shows_the_stages_without_rich(capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "rich", None)  # as after `pip install -e .`: rich is not there
    model = small_model(use_warmup=True, warmup_config=WarmupConfig(steps=2, batch_size=8))
    model.learn(10**9, max_episodes=2, progress_bar=True)
    err = capsys.readouterr().err
    assert "buffer fill" in err and "warmup" in err and "training" in err
    assert "2/2" in err.split("training")[-1]  # the training bar counts episodes when max_episodes is given
    model.learn(300, reset_num_timesteps=False, progress_bar=True)  # no fill nor warmup: training only
    err = capsys.readouterr().err
    assert "training" in err and "buffer fill" not in err and "warmup" not in err


def test_save_load_same_greedy_actions(tmp_path):
    model = small_model(train_mode="sequences", policy_kwargs=dict(cell="lstm"))
    untrained = [p.detach().clone() for p in model.q_net.parameters()]
    model.learn(10**9, max_episodes=4)
    assert not same(untrained, model.q_net.parameters())
    model.save(tmp_path / "drqn.zip")
    loaded = DRQN.load(tmp_path / "drqn.zip", device="cpu")
    assert loaded.policy_kwargs["cell"] == "lstm" and loaded.train_mode == "sequences"
    assert same(model.q_net.parameters(), loaded.q_net.parameters())
    assert same(model.q_net_target.parameters(), loaded.q_net_target.parameters())
    for length in (3, 6):  # also on a longer corridor than the one trained on
        for layout in ("up", "down"):
            assert greedy_actions(model, tmaze(length), layout) == greedy_actions(
                loaded, tmaze(length), layout
            )
    loaded.set_env(tmaze())
    loaded.learn(10**9, max_episodes=1)  # the buffer is not saved: it is filled again
    assert loaded.replay_buffer.full and loaded.num_train_episodes == 5


def test_evaluate_policy_and_eval_callback(tmp_path):
    model = small_model()
    eval_callback = EvalCallback(Monitor(tmaze()), n_eval_episodes=2, eval_freq=100, log_path=str(tmp_path))
    model.learn(10**9, callback=eval_callback, max_episodes=3)
    assert len(eval_callback.evaluations_results) >= 2  # the fill alone is 256 steps
    assert all(len(r) == 2 for r in eval_callback.evaluations_results)
    rewards, lengths = evaluate_policy(
        model, Monitor(tmaze()), n_eval_episodes=4, return_episode_rewards=True
    )
    assert len(rewards) == 4 and all(1 <= n <= 9 for n in lengths)
    vec_env = DummyVecEnv([lambda: Monitor(tmaze())] * 2)
    rewards, _ = evaluate_policy(model, vec_env, n_eval_episodes=4, return_episode_rewards=True)
    assert len(rewards) == 4


def test_learn_counts_env_steps_and_stops_by_episodes():
    model = small_model()
    model.learn(300)
    assert 300 <= model.num_timesteps < 300 + 9 and model.replay_buffer.full
    episodes = model.num_train_episodes
    model.learn(10**9, max_episodes=2, reset_num_timesteps=False)
    assert model.num_train_episodes == episodes + 2


def test_predict_resets_state_where_episode_start():
    model = small_model()
    model.learn(10**9, max_episodes=2)
    _, state = model.predict(np.array([0, 1]), None, np.array([True, True]), deterministic=True)
    obs = np.array([2, 2])
    actions, state2 = model.predict(obs, state, np.array([True, False]), deterministic=True)
    _, fresh = model.predict(obs[:1], None, np.array([True]), deterministic=True)
    _, kept = model.predict(obs[1:], row(state, 1), np.array([False]), deterministic=True)
    _, reset1 = model.predict(obs[1:], None, np.array([True]), deterministic=True)
    np.testing.assert_allclose(state2.rnn[:, 0], fresh.rnn[:, 0], atol=1e-6)
    np.testing.assert_allclose(state2.rnn[:, 1], kept.rnn[:, 0], atol=1e-6)
    assert not np.allclose(state2.rnn[:, 1], reset1.rnn[:, 0])  # env 1 remembered its first observation
    assert state2.previous_action.tolist() == actions.tolist()
    # state=None and episode_start=None: a zero state, nothing reset.
    _, none_state = model.predict(obs, None, None, deterministic=True)
    np.testing.assert_allclose(none_state.rnn, fresh.rnn.repeat(2, axis=1), atol=1e-6)
    # A single (non-vectorised) observation gives a scalar action.
    action, _ = model.predict(2, None, np.array([True]), deterministic=True)
    assert np.ndim(action) == 0


def test_predict_feeds_the_previous_action():
    model = small_model()
    state = model.policy.initial_state(1)
    _, after_right = model.predict(
        np.array([2]), state._replace(previous_action=np.array([0])), deterministic=True
    )
    _, after_left = model.predict(
        np.array([2]), state._replace(previous_action=np.array([2])), deterministic=True
    )
    _, no_action = model.predict(np.array([2]), state._replace(previous_action=np.array([NO_ACTION])))
    assert not np.allclose(after_right.rnn, after_left.rnn)
    _, start = model.predict(np.array([2]), after_right, np.array([True]), deterministic=True)
    np.testing.assert_allclose(start.rnn, no_action.rnn, atol=1e-6)


def test_predict_rejects_a_state_of_another_number_of_envs_and_nan():
    model = small_model(tmaze(observation_type="onehot"))
    obs = np.eye(4, dtype=np.float32)[[0, 2, 2]]
    _, state_of_one = model.predict(obs[:1], None, np.array([True]))
    with pytest.raises(
        ValueError, match=r"observation of shape \(3, 4\) holds 3 env.*state.rnn \(2, 1, 32\)"
    ):
        model.predict(obs, state_of_one, np.zeros(3, dtype=bool))
    with pytest.raises(ValueError, match=r"episode_start must hold one flag per env: 3"):
        model.predict(obs, None, np.zeros(2, dtype=bool))
    bad = obs.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValueError, match="observation contains NaN or infinite values"):
        model.predict(bad)
    _, state = model.predict(obs)
    state.rnn[0, 2, 0] = np.nan
    with pytest.raises(ValueError, match="state.rnn contains NaN or infinite values"):
        model.predict(obs, state)
    with pytest.raises(ValueError, match="state.previous_reward contains NaN"):
        model.predict(obs, model.policy.initial_state(3)._replace(previous_reward=np.full(3, np.inf)))


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("double", [False, True])
def test_every_cell_trains_with_warmup(cell, double):
    model = small_model(
        use_warmup=True,
        warmup_config=WarmupConfig(steps=2, batch_size=8),
        policy_kwargs=dict(cell=cell, double=double, hidden_size=8),
    )
    before = [p.detach().clone() for p in model.q_net.parameters()]
    model.learn(10**9, max_episodes=2)
    assert len(model.warmup_result.loss) == 2
    assert not same(before, model.q_net.parameters())
    if cell == "chrono":
        assert model.policy_kwargs["t_max"] == 9  # the horizon 3L


@pytest.mark.parametrize(
    "env_id, kwargs", [("CartPole-v1", {}), ("TMaze-v0", {"length": 3, "observation_type": "onehot"})]
)
def test_any_env_with_discrete_actions(env_id, kwargs):
    model = small_model(
        gym.make(env_id, **kwargs), train_mode="sequences", policy_kwargs=dict(use_previous_reward=True)
    )
    model.learn(10**9, max_episodes=2)
    assert model.replay_buffer.full and model.num_train_episodes == 2
    assert np.allclose(
        model.policy.exploration_probs, 0.5 if env_id == "CartPole-v1" else [1 / 2, 1 / 6, 1 / 6, 1 / 6]
    )
    obs = np.stack([model.observation_space.sample() for _ in range(3)])
    with pytest.warns(UserWarning, match="previous_reward"):
        actions, state = model.predict(obs, None, np.ones(3, dtype=bool))
    assert actions.shape == (3,) and state.rnn.shape == (2, 3, 32)


def test_tensorboard_keys(tmp_path):
    model = small_model(
        use_warmup=True,
        warmup_config=WarmupConfig(steps=3, batch_size=16),
        vaa_interval=2,
        vaa_steps=20,
        vaa_measure_interval=4,
        vaa_measure_steps=50,
        tensorboard_log=str(tmp_path),
    )
    model.learn(10**9, callback=TMazeOptimalCallback(tmaze(), check_freq=1), max_episodes=4, log_interval=2)
    (run_dir,) = tmp_path.iterdir()
    events = EventAccumulator(str(run_dir)).Reload()
    scalars = set(events.Tags()["scalars"])
    assert len(events.Scalars("eval/optimal")) == 5  # every check (episodes 0-4), not every log_interval
    # the corridor step of the smallest margin: a step of the corridor, where the margins say it is
    length = tmaze().unwrapped.length
    steps = [e.value for e in events.Scalars("eval/corridor_margin_step")]
    assert len(steps) == 5 and all(s == int(s) and 0 <= s < length for s in steps)
    margins = optimal_path_margins(model.policy.acting_net, length)[:, :-1].min(0)
    assert steps[-1] == int(margins.argmin()) and events.Scalars("eval/corridor_margin")[-1].value == (
        pytest.approx(margins.min(), abs=1e-6)
    )
    expected = {"rollout/ep_rew_mean", "rollout/success_rate", "train/loss", "train/vaa", "train/vaa_measure"}
    expected |= {"train/vaa_data"}
    expected |= {"rollout/exploration_rate", "train/learning_rate"}
    assert (
        expected
        | {
            "warmup/vaa_star",
            "eval/optimal",
            "eval/start_value",
            "eval/start_margin",
            "eval/corridor_margin",
            "eval/corridor_margin_step",
            "eval/junction_margin",
        }
        <= scalars
    )
    # the README's table of tags names only tags such a run writes (eval/first_optimal_episode: once reached)
    readme = (Path(__file__).parents[1] / "README.md").read_text()
    rows = [
        line
        for line in readme.splitlines()
        if line.startswith(("| any DRQN", "| the warmup", "| T-Maze runs"))
    ]
    named = {tag for row in rows for tag in re.findall(r"`([a-z_]+/[a-z_/]+)`", row)}
    assert len(rows) == 3 and len(named) > 15
    assert named - {"eval/first_optimal_episode"} <= scalars, sorted(named - scalars)


# ----------------------------------------------------------------------------- errors


def test_tmaze_runner_refuses_a_device_it_does_not_have(monkeypatch):
    from experiments.tmaze import run_tmaze_experiment

    monkeypatch.setattr(th.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available here"):
        run_tmaze_experiment(length=2, device="cuda", episodes=1)
    with pytest.raises(ValueError, match="device must be a torch device"):
        run_tmaze_experiment(length=2, device="gpu0", episodes=1)


def test_bad_arguments():
    for value in (0.0, 1.5, True, "0.1"):
        with pytest.raises(ValueError, match=r"average_tau must be None or a number in \(0, 1\]"):
            small_model(average_tau=value)
    for value in (-0.1, 1.0, float("nan"), True):
        with pytest.raises(ValueError, match=r"advantage_learning must be a number in \[0, 1\)"):
            small_model(advantage_learning=value)
    with pytest.raises(ValueError, match="policy_kwargs must not hold 'averaged'"):
        small_model(policy_kwargs=dict(averaged=True))
    for value in (-0.1, float("nan"), float("inf"), True, "1"):
        with pytest.raises(ValueError, match="fixed_point_coef must be a finite number >= 0"):
            small_model(fixed_point_coef=value)
    for value in (-1.0, float("inf"), False):
        with pytest.raises(ValueError, match="hold_coef must be a finite number >= 0"):
            small_model(hold_coef=value)
        with pytest.raises(ValueError, match="hold_drift_coef must be a finite number >= 0"):
            small_model(hold_drift_coef=value)
    for value in (0, 2.5):
        with pytest.raises(ValueError, match="hold_steps"):
            small_model(hold_steps=value)
    with pytest.raises(ValueError, match="hold_advantages must be True or False"):
        small_model(hold_advantages=1)
    with pytest.raises(ValueError, match="Discrete action space"):
        DRQN("RecurrentQPolicy", gym.make("Pendulum-v1"))
    with pytest.raises(ValueError, match="cell must be one of 'lstm', 'gru'"):
        small_model(policy_kwargs=dict(cell="transformer"))
    with pytest.raises(ValueError, match=r"batch_size \(64\) must not exceed buffer_size \(32\)"):
        small_model(buffer_size=32, batch_size=64)
    with pytest.raises(ValueError, match="train_mode must be one of 'histories', 'sequences'"):
        small_model(train_mode="transitions")
    with pytest.raises(ValueError, match=r"cannot take the observation space Text.*It accepts Discrete"):
        check_spaces(spaces.Text(5), spaces.Discrete(2))  # (Blackjack-v1, a Tuple, is now taken)
    with pytest.raises(ValueError, match=r"exploration_initial_eps must be a number in \[0, 1\]"):
        small_model(exploration_initial_eps=1.5)
    with pytest.raises(ValueError, match=r"exploration_final_eps must be a number in \[0, 1\]"):
        small_model(exploration_final_eps=-0.1)
    with pytest.raises(ValueError, match=r"exploration_fraction must be a number in \(0, 1\]"):
        small_model(exploration_fraction=0.0)
    with pytest.raises(ValueError, match="learning_starts must be an integer >= 0; got -1"):
        small_model(learning_starts=-1)
    with pytest.raises(ValueError, match="net_arch must be None or a list of positive integers"):
        small_model(policy_kwargs=dict(net_arch=[16, 0]))
    with pytest.raises(ValueError, match="use_warmup must be True or False"):
        small_model(use_warmup="yes")
    with pytest.raises(ValueError, match="warmup_config must be None or a WarmupConfig"):
        small_model(use_warmup=True, warmup_config={"steps": 3})
    with pytest.raises(
        ValueError, match=r"warmup_config is given but use_warmup is False \(pass use_warmup=True\)"
    ):
        small_model(warmup_config=WarmupConfig(steps=3))
    with pytest.raises(ValueError, match="max_episodes"):
        small_model().learn(100, max_episodes=-1)
    with pytest.raises(ValueError, match="loss must be one of 'squared', 'huber'"):
        small_model(loss="l1")
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1; got 0"):
        small_model(n_steps=0)
    with pytest.raises(ValueError, match="n_step_correction must be one of 'none', 'watkins'; got 'retrace'"):
        small_model(n_step_correction="retrace")
    with pytest.raises(ValueError, match="max_grad_norm must be None or a number > 0"):
        small_model(max_grad_norm=0.0)
    for bad in (0.0, 1.5, True):
        with pytest.raises(ValueError, match=r"tau must be a number in \(0, 1\]"):
            small_model(tau=bad)
    with pytest.raises(ValueError, match="init must be one of 'uniform', 'xavier'"):
        small_model(policy_kwargs=dict(init="he"))
    model = small_model()
    for bad in (-5, float("nan"), "100", True):
        with pytest.raises(ValueError, match="total_timesteps must be a non-negative number"):
            model.learn(bad)
    assert model.num_timesteps == 0  # nothing ran: no buffer fill


def test_greedy_play_feeds_the_previous_reward():
    """``play_greedy`` (the optimality check) passes ``r_{t-1}`` on to a DRQN that feeds it."""
    from recurrent_q.callbacks import play_greedy

    env, checked = tmaze(), 0
    for seed in range(20):
        model = small_model(seed=seed, policy_kwargs=dict(use_previous_reward=True))
        q_net = model.q_net
        with th.no_grad():
            q_net.rnn.layers[0].rnn.weight_ih_l0[:, -1] = 20.0  # r_{t-1} moves the state strongly
        # The greedy episode with the true rewards, stepped by hand
        obs, _ = env.reset(options={"layout": "up"})
        state, action, reward, expected, rewards = None, NO_ACTION, 0.0, [], []
        while True:
            x = q_net.features(th.as_tensor([obs]), th.as_tensor([action]), th.as_tensor([reward]))
            with th.no_grad():
                q, state = q_net.step(x, state)
            action = int(q.argmax(-1))
            expected.append(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            rewards.append(reward)
            if terminated or truncated:
                break
        played = []
        predict = model.predict

        def recording_predict(*args, _predict=predict, _played=played, **kwargs):
            actions, new_state = _predict(*args, **kwargs)
            _played.append(int(actions))
            return actions, new_state

        model.predict = recording_predict
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # play_greedy passes the rewards: predict's warning is not for it
            total, steps = play_greedy(model, env, "up")
        assert played == expected and steps == len(expected) and np.isclose(total, sum(rewards))
        checked += any(r != 0.0 for r in rewards[:-1])
    assert checked > 0  # some episodes had a nonzero reward before their last step
