"""DRQN's schedules, as SB3's: learning rate and ε follow ``progress_remaining`` (1 -> 0 in ``learn``)."""

import pickle

import gymnasium as gym
import pytest
from stable_baselines3.common.utils import LinearSchedule

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from recurrent_q.drqn import DRQN


def small_model(**kwargs) -> DRQN:
    settings = dict(
        buffer_size=128, batch_size=8, gradient_steps=1, vaa_interval=0, vaa_measure_interval=0, seed=0
    )
    settings.update(kwargs)
    return DRQN("RecurrentQPolicy", gym.make("TMaze-v0", length=3), **settings)


def test_learning_rate_schedule_is_followed_and_logged():
    calls = []

    def schedule(progress_remaining: float) -> float:
        calls.append(progress_remaining)
        return 1e-3 * progress_remaining

    model = small_model(learning_rate=schedule)
    rates = []
    train = model.train

    def recording_train(gradient_steps, batch_size):
        train(gradient_steps, batch_size)
        rates.append((model._current_progress_remaining, model.policy.optimizer.param_groups[0]["lr"]))
        assert model.logger.name_to_value["train/learning_rate"] == pytest.approx(rates[-1][1])

    model.train = recording_train
    model.learn(400)
    assert len(rates) >= 10
    for progress, rate in rates:  # Adam steps at the rate of the schedule at that progress
        assert rate == pytest.approx(1e-3 * progress)
    progresses = [progress for progress, _ in rates]
    assert progresses == sorted(progresses, reverse=True) and progresses[0] < 1.0 and progresses[-1] < 0.1
    assert min(calls) < 0.1  # the schedule saw the end of training


def test_exploration_schedule_as_sb3_dqn():
    total, fraction = 600, 0.5
    model = small_model(exploration_initial_eps=1.0, exploration_final_eps=0.1, exploration_fraction=fraction)
    used = []
    select = model.policy.select_actions

    def recording_select(q_values, rng, exploration_rate):
        used.append((model.num_timesteps, exploration_rate))
        return select(q_values, rng, exploration_rate)

    model.policy.select_actions = recording_select
    model.learn(total)
    expected = LinearSchedule(1.0, 0.1, fraction)
    assert len(used) > 100
    for step, rate in used:  # ε of each greedy step is the schedule's after the previous env step
        assert rate == pytest.approx(expected(1.0 - step / total))
    assert used[-1][1] == pytest.approx(0.1)  # past the fraction: the final ε
    assert model.logger.name_to_value["rollout/exploration_rate"] == pytest.approx(model.exploration_rate)
    assert model.policy.exploration_rate == model.exploration_rate  # predict(deterministic=False) uses it


def test_default_exploration_is_the_papers_constant_epsilon():
    model = small_model()
    assert model.exploration_initial_eps == model.exploration_final_eps == 0.2
    rates = set()
    select = model.policy.select_actions
    model.policy.select_actions = lambda q, rng, rate: rates.add(rate) or select(q, rng, rate)
    model.learn(300)
    assert rates == {0.2}


def test_schedules_run_over_the_episode_budget_of_learn():
    """``learn(huge, max_episodes=E)``: ε and the rate reach their final values after E training episodes."""
    episodes, fraction = 20, 0.5
    model = small_model(
        learning_rate=LinearSchedule(1e-3, 1e-4, 1.0),
        exploration_initial_eps=0.2,
        exploration_final_eps=0.01,
        exploration_fraction=fraction,
    )
    seen = []  # (training episodes before the step, ε used, rate used)
    train = model.train

    def recording_train(gradient_steps, batch_size):
        train(gradient_steps, batch_size)
        seen.append(
            (model.num_train_episodes, model.exploration_rate, model.policy.optimizer.param_groups[0]["lr"])
        )

    model.train = recording_train
    model.learn(10**12, max_episodes=episodes)
    assert [e for e, _, _ in seen] == list(range(episodes))
    epsilon, rate = LinearSchedule(0.2, 0.01, fraction), LinearSchedule(1e-3, 1e-4, 1.0)
    for e, used_eps, used_rate in seen:  # episode e acts and trains at progress 1 - e / E
        assert used_eps == pytest.approx(epsilon(1.0 - e / episodes))
        assert used_rate == pytest.approx(rate(1.0 - e / episodes))
    assert seen[-1][1] == pytest.approx(0.01) and seen[-1][2] == pytest.approx(1e-4 + 0.9e-3 / episodes)
    assert model.exploration_rate == pytest.approx(0.01)
    # A second learn with its own budget starts its schedules again.
    model.learn(10**12, max_episodes=4, reset_num_timesteps=False)
    assert model.num_train_episodes == episodes + 4
    assert seen[episodes][1] == pytest.approx(0.2) and seen[episodes][2] == pytest.approx(1e-3)


def test_held_linear_schedule_holds_then_decays_and_names_bad_arguments():
    from recurrent_q import HeldLinearSchedule

    schedule = HeldLinearSchedule(1e-3, 1e-4, 0.5)
    assert [schedule(p) for p in (1.0, 0.75, 0.5)] == [1e-3, 1e-3, 1e-3]  # held for the first half
    assert schedule(0.25) == pytest.approx(5.5e-4) and schedule(0.0) == pytest.approx(1e-4)
    assert HeldLinearSchedule(1e-3, 1e-4, 0.0)(0.5) == pytest.approx(LinearSchedule(1e-3, 1e-4, 1.0)(0.5))
    for name, args in (
        ("hold_fraction", (1e-3, 1e-4, 1.0)),
        ("hold_fraction", (1e-3, 1e-4, -0.1)),
        ("start", (-1.0, 1e-4, 0.5)),
        ("end", (1e-3, "1e-4", 0.5)),
    ):
        with pytest.raises(ValueError, match=f"^{name} must be a number"):
            HeldLinearSchedule(*args)
    model = small_model(learning_rate=schedule)  # a DRQN follows it as any SB3 schedule
    assert model.lr_schedule(0.75) == pytest.approx(1e-3) and model.lr_schedule(0.0) == pytest.approx(1e-4)


def test_a_held_rate_ends_its_hold_early_once_and_keeps_the_decay_length():
    from recurrent_q.schedules import HeldLinearSchedule

    schedule = HeldLinearSchedule(1e-3, 1e-4, 0.6)  # held for 60 % of training, then 40 % of decay
    schedule.end_hold(0.9)  # at 10 %: the decay runs from 10 % to 50 %
    assert schedule(0.9) == pytest.approx(1e-3) and schedule(0.7) == pytest.approx(5.5e-4)
    assert schedule(0.5) == pytest.approx(1e-4) and schedule(0.1) == pytest.approx(1e-4)
    schedule.end_hold(0.6)  # a later call does not move the start back
    assert schedule(0.7) == pytest.approx(5.5e-4)
    late = HeldLinearSchedule(1e-3, 1e-4, 0.5)
    late.end_hold(0.2)  # after the hold: nothing changes
    assert late(0.25) == pytest.approx(5.5e-4) and repr(late).endswith("hold_fraction=0.5)")
    with pytest.raises(ValueError, match="progress_remaining must be a number in"):
        late.end_hold(1.5)
    old_state = {"start": 1e-3, "end": 1e-4, "hold_fraction": 0.5}  # pickled before end_hold existed
    old = HeldLinearSchedule.__new__(HeldLinearSchedule)
    old.__setstate__(old_state)
    assert old(0.5) == pytest.approx(1e-3) and old(0.25) == pytest.approx(5.5e-4)
    assert pickle.loads(pickle.dumps(schedule)).decay_start == schedule.decay_start == pytest.approx(0.1)
