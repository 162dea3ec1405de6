"""Tests of the T-Maze (docs/specification.md §2): rules, registration, truncation, vector env, SB3."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import tmaze_gym
from tmaze_gym import (
    DOWN,
    LEFT,
    OBS_CORRIDOR,
    OBS_DOWN,
    OBS_JUNCTION,
    OBS_UP,
    RIGHT,
    UP,
    TMazeEnv,
    TMazeVectorEnv,
    exploration_policy,
    horizon,
    sample_exploration_action,
    sample_exploration_actions,
)


def expected_step(length, layout, x, action):
    """The rules (docs/specification.md §2) from corridor cell (x, 0): (cell, reward, terminated)."""
    goal_y = 1 if layout == "up" else -1
    if action == RIGHT:
        return ((x + 1, 0), 0.0, False) if x < length else ((x, 0), -0.1, False)
    if action == LEFT:
        return ((x - 1, 0), 0.0, False) if x > 0 else ((x, 0), -0.1, False)
    dy = 1 if action == UP else -1
    if x < length:
        return (x, 0), -0.1, False
    return (length, dy), (4.0 if dy == goal_y else -0.1), True


def expected_obs(length, layout, cell):
    x, _ = cell
    if x == 0:
        return OBS_UP if layout == "up" else OBS_DOWN
    return OBS_CORRIDOR if x < length else OBS_JUNCTION


def optimal_actions(length, layout):
    return [RIGHT] * length + [UP if layout == "up" else DOWN]


# --- the rules (docs/specification.md §2) ----------------------------------------------------


def test_constants_follow_spec():
    assert (RIGHT, UP, LEFT, DOWN) == (0, 1, 2, 3)
    assert (OBS_UP, OBS_DOWN, OBS_CORRIDOR, OBS_JUNCTION) == (0, 1, 2, 3)
    assert TMazeEnv.metadata["gamma"] == 0.98


@pytest.mark.parametrize("length", [1, 2, 3, 5])
def test_transition_and_reward_table_exhaustive(length):
    env = gym.make("TMaze-v0", length=length)
    for layout in ("up", "down"):
        for x in range(length + 1):
            for action in range(4):
                obs, info = env.reset(options={"layout": layout})
                assert obs == expected_obs(length, layout, (0, 0))
                assert info == {"layout": layout}
                for _ in range(x):
                    obs, reward, terminated, truncated, _ = env.step(RIGHT)
                    assert (reward, terminated, truncated) == (0.0, False, False)
                assert env.unwrapped.position == (x, 0)
                assert env.unwrapped.layout == layout
                assert obs == expected_obs(length, layout, (x, 0))
                cell, reward, terminated = expected_step(length, layout, x, action)
                obs, got_reward, got_terminated, truncated, info = env.step(action)
                assert env.unwrapped.position == cell, (layout, x, action)
                assert got_reward == pytest.approx(reward), (layout, x, action)
                assert got_terminated == terminated, (layout, x, action)
                assert obs == expected_obs(length, layout, cell)
                assert not truncated
                assert info == {"layout": layout, "is_success": terminated and reward == 4.0}


@pytest.mark.parametrize("length", [1, 4, 20])
@pytest.mark.parametrize("layout", ["up", "down"])
def test_optimal_policy_earns_4_in_length_plus_1_steps(length, layout):
    env = gym.make("TMaze-v0", length=length)
    env.reset(seed=1, options={"layout": layout})
    total, steps, terminated, truncated = 0.0, 0, False, False
    for action in optimal_actions(length, layout):
        _, reward, terminated, truncated, info = env.step(action)
        total += reward
        steps += 1
    assert (total, steps, terminated, truncated) == (4.0, length + 1, True, False)
    assert info == {"layout": layout, "is_success": True}


def test_returning_to_start_shows_the_signal_again():
    env = TMazeEnv(3)
    env.reset(seed=0, options={"layout": "down"})
    env.step(RIGHT)
    obs, *_ = env.step(LEFT)
    assert obs == OBS_DOWN


def test_layout_is_drawn_with_probability_one_half():
    env = TMazeEnv(2)
    env.reset(seed=123)
    n = 4000
    ups = sum(env.reset()[1]["layout"] == "up" for _ in range(n))
    assert abs(ups / n - 0.5) < 5 * np.sqrt(0.25 / n)


def test_same_seed_same_episode():
    def episode(seed):
        env = gym.make("TMaze-v0", length=5)
        rng = np.random.default_rng(7)
        obs, info = env.reset(seed=seed)
        trace = [obs, info["layout"]]
        for _ in range(15):
            obs, reward, terminated, truncated, _ = env.step(sample_exploration_action(rng))
            trace += [obs, reward, terminated, truncated, env.unwrapped.position]
            if terminated or truncated:
                obs, info = env.reset()
                trace += [obs, info["layout"]]
        return trace

    assert episode(42) == episode(42)
    layouts = {tuple(episode(seed)[:2]) for seed in range(20)}
    assert layouts == {(OBS_UP, "up"), (OBS_DOWN, "down")}


def test_onehot_observations():
    env = gym.make("TMaze-v0", length=2, observation_type="onehot")
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    obs, _ = env.reset(options={"layout": "up"})
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, [1, 0, 0, 0])
    for expected in (OBS_CORRIDOR, OBS_JUNCTION):
        obs, *_ = env.step(RIGHT)
        np.testing.assert_array_equal(obs, np.eye(4)[expected])


def test_step_before_reset_raises():
    with pytest.raises(gym.error.ResetNeeded):
        TMazeEnv(3).step(RIGHT)


def test_step_after_the_episode_ended_raises_until_reset():
    env = TMazeEnv(2)
    env.reset(seed=0, options={"layout": "up"})
    for action in (RIGHT, RIGHT, UP):
        *_, terminated, truncated, _ = env.step(action)
    assert terminated and not truncated
    with pytest.raises(gym.error.ResetNeeded, match="call reset"):
        env.step(RIGHT)
    env.reset(seed=0)
    env.step(RIGHT)  # a new episode steps again
    truncating = TMazeEnv(1)
    truncating.reset(seed=0)
    for _ in range(truncating.max_episode_steps):  # bump into the start's wall until the horizon
        *_, truncated, _ = truncating.step(LEFT)
    assert truncated
    with pytest.raises(gym.error.ResetNeeded, match="terminated or truncated"):
        truncating.step(LEFT)


# --- truncation -------------------------------------------------------------------------------


def steps_until_truncated(env, action=LEFT, limit=10_000):
    env.reset(seed=0)
    for t in range(1, limit + 1):
        _, _, terminated, truncated, info = env.step(action)
        assert not terminated
        if truncated:
            assert info["is_success"] is False
            return t
    raise AssertionError("never truncated")


def test_gym_make_truncates_at_3_length():
    env = gym.make("TMaze-v0", length=50)
    assert env.spec.max_episode_steps == 150
    assert gym.spec("TMaze-v0").max_episode_steps is None
    assert steps_until_truncated(env) == 150
    assert steps_until_truncated(gym.make("TMaze-v0", length=7)) == 21


def test_max_episode_steps_overrides_horizon():
    assert steps_until_truncated(TMazeEnv(50, max_episode_steps=200)) == 200
    assert steps_until_truncated(gym.make("TMaze-v0", length=50, max_episode_steps=100)) == 100
    assert gym.make("TMaze-v0", length=50, max_episode_steps=100).spec.max_episode_steps == 100
    # Documented: gym.make's own max_episode_steps adds a TimeLimit on top of the env's horizon.
    assert steps_until_truncated(gym.make("TMaze-v0", length=5, max_episode_steps=100)) == 15
    vec = gym.make_vec("TMaze-v0", num_envs=2, length=5, max_episode_steps=4)
    vec.reset(seed=0)
    truncated = [vec.step(np.array([LEFT, LEFT]))[3].all() for _ in range(4)]
    assert truncated == [False, False, False, True]


def test_horizon_formula():
    assert [horizon(length) for length in range(1, 301)] == [3 * length for length in range(1, 301)]
    assert horizon(10, [0.75, 0.0, 0.25, 0.0]) == 20
    assert horizon(10, [0.4, 0.3, 0.1, 0.2]) == 34  # ceil(10 / 0.3)
    with pytest.raises(ValueError, match="P\\(Right\\) > P\\(Left\\)"):
        horizon(10, [0.25, 0.25, 0.25, 0.25])
    with pytest.raises(ValueError, match="probs"):
        horizon(10, [0.5, 0.5])


# --- exploration policy -----------------------------------------------------------------------


def test_exploration_policy_probabilities():
    probs = exploration_policy()
    np.testing.assert_allclose(probs, [1 / 2, 1 / 6, 1 / 6, 1 / 6])
    probs[0] = 0.0
    np.testing.assert_allclose(exploration_policy()[0], 0.5)
    np.testing.assert_allclose(TMazeEnv(3).exploration_probs, [1 / 2, 1 / 6, 1 / 6, 1 / 6])
    np.testing.assert_allclose(
        gym.make("TMaze-v0", length=3).unwrapped.exploration_probs, exploration_policy()
    )


@pytest.mark.parametrize("vectorised", [False, True])
def test_exploration_action_frequencies(vectorised):
    rng = np.random.default_rng(0)
    n = 60_000
    if vectorised:
        actions = sample_exploration_actions(rng, n)
    else:
        actions = np.array([sample_exploration_action(rng) for _ in range(n)])
    assert set(np.unique(actions)) <= {0, 1, 2, 3}
    counts = np.bincount(actions, minlength=4)
    expected = n * exploration_policy()
    chi2 = float(((counts - expected) ** 2 / expected).sum())
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, -3, 2.5, "3", True, None])
def test_bad_length(length):
    with pytest.raises(ValueError, match=r"length must be an integer >= 1, got"):
        TMazeEnv(length)
    with pytest.raises(ValueError, match=r"length must be an integer >= 1"):
        gym.make("TMaze-v0", length=length)
    with pytest.raises(ValueError, match=r"length must be an integer >= 1"):
        gym.make_vec("TMaze-v0", num_envs=2, length=length)


@pytest.mark.parametrize("action", [7, 4, -1, 1.5, "up", None])
def test_bad_action(action):
    env = TMazeEnv(3)
    env.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"action must be one of 0 \(Right\), 1 \(Up\), 2 \(Left\), 3 \(Down\)"
    ):
        env.step(action)


def test_numpy_integer_action_accepted():
    env = TMazeEnv(3)
    env.reset(seed=0)
    env.step(np.int64(RIGHT))
    env.step(np.array(RIGHT))
    assert env.position == (2, 0)


def test_bad_options_and_arguments():
    env = TMazeEnv(3)
    with pytest.raises(ValueError, match=r"allowed options: \['layout'\]"):
        env.reset(options={"start": 2})
    with pytest.raises(ValueError, match=r"options\['layout'\] must be one of 'up', 'down'; got 'left'"):
        env.reset(options={"layout": "left"})
    with pytest.raises(ValueError, match=r"observation_type must be one of 'discrete', 'onehot'"):
        TMazeEnv(3, observation_type="image")
    with pytest.raises(ValueError, match=r"max_episode_steps must be None or an integer >= 1, got 0"):
        TMazeEnv(3, max_episode_steps=0)
    with pytest.raises(ValueError, match=r"render_mode must be None, 'ansi' or 'rgb_array'"):
        TMazeEnv(3, render_mode="human")


def test_vector_bad_input():
    vec = TMazeVectorEnv(3, length=2)
    vec.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be one of 0 \(Right\).*got 7"):
        vec.step(np.array([0, 7, 1]))
    with pytest.raises(ValueError, match=r"actions must be an integer array of shape \(3,\)"):
        vec.step(np.array([0, 1]))
    with pytest.raises(ValueError, match=r"allowed options"):
        vec.reset(options={"foo": 1})
    with pytest.raises(ValueError, match=r"options\['layout'\]"):
        vec.reset(options={"layout": ["up", "down"]})
    with pytest.raises(ValueError, match=r"autoreset_mode must be one of"):
        TMazeVectorEnv(3, length=2, autoreset_mode=AutoresetMode.DISABLED)
    with pytest.raises(ValueError, match=r"num_envs must be an integer >= 1"):
        TMazeVectorEnv(0, length=2)


# --- rendering --------------------------------------------------------------------------------


def test_render_ansi():
    env = gym.make("TMaze-v0", length=3, render_mode="ansi")
    env.reset(options={"layout": "down"})
    assert env.render() == "   X\nA...\n   G\n"
    for action in (RIGHT, RIGHT, RIGHT, UP):
        env.step(action)
    assert env.render() == "   A\n....\n   G\n"


def test_render_rgb_array():
    env = gym.make("TMaze-v0", length=4, render_mode="rgb_array")
    env.reset(options={"layout": "up"})
    env.step(RIGHT)
    frame = env.render()
    assert frame.dtype == np.uint8
    assert frame.shape == (3 * 8, 5 * 8, 3)
    agent = frame[8:16, 8:16].reshape(-1, 3)
    assert (agent == agent[0]).all()
    colours = {tuple(frame[r, c]) for r in (4, 12, 20) for c in range(4, 40, 8)}
    assert len(colours) == 5  # wall, free, agent, rewarding goal, wrong goal
    assert tuple(frame[4, 36]) != tuple(frame[20, 36])  # the two goals differ
    assert TMazeEnv(2).render() is None


# --- checkers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [1, 2, 10, 100])
@pytest.mark.parametrize("observation_type", ["discrete", "onehot"])
def test_gymnasium_and_sb3_checkers_pass_without_warning(length, observation_type):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for render_mode in (None, "ansi", "rgb_array"):
            env = gym.make(
                "TMaze-v0", length=length, observation_type=observation_type, render_mode=render_mode
            )
            gym_check_env(env.unwrapped)
        sb3_check_env(TMazeEnv(length, observation_type=observation_type), warn=True)
        sb3_check_env(gym.make("TMaze-v0", length=length, observation_type=observation_type), warn=True)


# --- vectorised variant -----------------------------------------------------------------------


def test_make_vec_returns_numpy_vector_env():
    vec = gym.make_vec("TMaze-v0", num_envs=8, length=5)
    assert isinstance(vec.unwrapped, TMazeVectorEnv)
    assert vec.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    assert vec.observation_space == gym.spaces.MultiDiscrete([4] * 8)
    obs, info = vec.reset(seed=3)
    assert obs.shape == (8,)
    assert set(info["layout"]) <= {"up", "down"}
    assert vec.unwrapped.positions.tolist() == [[0, 0]] * 8


@pytest.mark.parametrize("autoreset_mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("observation_type", ["discrete", "onehot"])
def test_vector_env_matches_single_env(autoreset_mode, observation_type):
    n, length = 8, 3
    vec = gym.make_vec(
        "TMaze-v0",
        num_envs=n,
        length=length,
        observation_type=observation_type,
        autoreset_mode=autoreset_mode,
    )
    singles = [TMazeEnv(length, observation_type=observation_type) for _ in range(n)]
    vec_obs, info = vec.reset(seed=5)
    single_obs = [env.reset(options={"layout": m})[0] for env, m in zip(singles, info["layout"], strict=True)]
    np.testing.assert_array_equal(vec_obs, np.stack(single_obs))
    rng = np.random.default_rng(0)
    pending = np.zeros(n, dtype=bool)
    episodes_ended = 0
    for _ in range(300):
        actions = rng.integers(0, 4, n)
        vec_obs, rewards, terminated, truncated, info = vec.step(actions)
        layouts = vec.unwrapped.layouts
        for i, env in enumerate(singles):
            if pending[i]:  # NEXT_STEP: this step resets maze i
                obs, reset_info = env.reset(options={"layout": layouts[i]})
                assert info["_layout"][i] and info["layout"][i] == reset_info["layout"]
                reward, term, trunc = 0.0, False, False
            else:
                obs, reward, term, trunc, step_info = env.step(actions[i])
                if term or trunc:
                    episodes_ended += 1
                    ended = info if autoreset_mode == AutoresetMode.NEXT_STEP else info["final_info"]
                    assert ended["_is_success"][i]
                    assert ended["is_success"][i] == step_info["is_success"]
                    assert ended["layout"][i] == step_info["layout"]
                    if autoreset_mode == AutoresetMode.SAME_STEP:
                        np.testing.assert_array_equal(info["final_obs"][i], obs)
                        obs, _ = env.reset(options={"layout": layouts[i]})
                else:
                    assert not info.get("_is_success", np.zeros(n, dtype=bool))[i]
            np.testing.assert_array_equal(vec_obs[i], obs)
            assert (rewards[i], terminated[i], truncated[i]) == (pytest.approx(reward), term, trunc)
            assert tuple(vec.unwrapped.positions[i]) == env.position
        pending = (terminated | truncated) & (autoreset_mode == AutoresetMode.NEXT_STEP)
    assert episodes_ended > 20


def test_vector_optimal_policy_and_forced_layouts():
    length = 4
    vec = TMazeVectorEnv(2, length=length)
    vec.reset(seed=0, options={"layout": ["up", "down"]})
    assert vec.layouts == ["up", "down"]
    total = np.zeros(2)
    for t in range(length + 1):
        actions = np.array([RIGHT, RIGHT]) if t < length else np.array([UP, DOWN])
        _, rewards, terminated, _, info = vec.step(actions)
        total += rewards
    assert total.tolist() == [4.0, 4.0]
    assert terminated.all() and info["is_success"].all()


def test_vector_render():
    vec = TMazeVectorEnv(3, length=2, render_mode="ansi")
    vec.reset(options={"layout": "up"})
    assert vec.render() == ("  G\nA..\n  X\n",) * 3
    frames = TMazeVectorEnv(2, length=2, render_mode="rgb_array")
    frames.reset(seed=0)
    assert [f.shape for f in frames.render()] == [(24, 24, 3)] * 2


# --- Stable-Baselines3 / sb3-contrib ----------------------------------------------------------


@pytest.mark.parametrize("observation_type", ["discrete", "onehot"])
def test_recurrent_ppo_runs_without_adapter(observation_type):
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.env_util import make_vec_env

    env = make_vec_env(
        "TMaze-v0", n_envs=2, seed=0, env_kwargs={"length": 3, "observation_type": observation_type}
    )
    model = RecurrentPPO(
        "MlpLstmPolicy",
        env,
        n_steps=64,
        batch_size=64,
        n_epochs=1,
        policy_kwargs={"lstm_hidden_size": 16, "net_arch": []},
        seed=0,
        device="cpu",
    )
    model.learn(total_timesteps=256)
    assert model.num_timesteps >= 256
    assert len(model.ep_success_buffer) > 0  # info["is_success"] reached SB3
    assert all(isinstance(s, bool | np.bool_) for s in model.ep_success_buffer)
    assert len(model.ep_info_buffer) > 0
    assert tmaze_gym.ENV_ID == "TMaze-v0"
