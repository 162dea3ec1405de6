"""Tests of ``XORTMaze-v0`` (tmaze_gym/xor_tmaze.py): rules, registration, seeding, checkers, DRQN."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import SyncVectorEnv
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import tmaze_gym
from tmaze_gym import (
    DEFAULT_LENGTH,
    DOWN,
    LEFT,
    OBS_CORRIDOR,
    OBS_DOWN,
    OBS_JUNCTION,
    OBS_UP,
    RIGHT,
    UP,
    XOR_LAYOUTS,
    TMazeEnv,
    XORTMazeEnv,
    exploration_policy,
    horizon,
    xor_goal,
)

C, J = OBS_CORRIDOR, OBS_JUNCTION


def optimal_actions(length, layout):
    return [RIGHT] * length + [UP if xor_goal(layout) == "up" else DOWN]


# --- registration and defaults ----------------------------------------------------------------


def test_registered_beside_tmaze_with_the_same_defaults():
    assert tmaze_gym.XOR_ENV_ID == "XORTMaze-v0"
    assert gym.spec("XORTMaze-v0").max_episode_steps is None  # the env truncates itself, as TMaze-v0
    env = gym.make("XORTMaze-v0")
    assert isinstance(env.unwrapped, XORTMazeEnv) and isinstance(env.unwrapped, TMazeEnv)
    assert env.unwrapped.length == DEFAULT_LENGTH == 20
    assert env.unwrapped.cue_position == 10  # the middle of the corridor
    assert env.spec.max_episode_steps == horizon(20) == 60
    env = gym.make("XORTMaze-v0", length=7, cue_position=2)
    assert (env.unwrapped.length, env.unwrapped.cue_position, env.spec.max_episode_steps) == (7, 2, 21)
    assert env.observation_space == gym.make("TMaze-v0", length=7).observation_space == gym.spaces.Discrete(4)
    assert env.action_space == gym.spaces.Discrete(4)
    assert env.metadata["gamma"] == 0.98


@pytest.mark.parametrize(("length", "cue_position"), [(2, 1), (3, 1), (4, 2), (5, 2), (20, 10), (21, 10)])
def test_default_cue_position_is_the_middle(length, cue_position):
    assert XORTMazeEnv(length).cue_position == cue_position


def test_xor_rule():
    assert XOR_LAYOUTS == ("up-up", "up-down", "down-up", "down-down")
    assert [xor_goal(layout) for layout in XOR_LAYOUTS] == ["up", "down", "down", "up"]


def test_exploration_policy_is_tmazes():
    env = gym.make("XORTMaze-v0", length=4)
    np.testing.assert_allclose(env.unwrapped.exploration_probs, [1 / 2, 1 / 6, 1 / 6, 1 / 6])
    np.testing.assert_allclose(env.unwrapped.exploration_probs, exploration_policy())
    from recurrent_q.policies import exploration_probs  # the one place DRQN reads ℰ

    np.testing.assert_allclose(exploration_probs(env), exploration_policy())


# --- exact transitions: one hand-written episode per cue pair ---------------------------------

# L = 4, second cue at x = 2. Actions: bump at the start, Right, Right (the second cue), Left, Right (the
# second cue again), Right, Right (the junction), then the rewarded arm. Each step is
# (action, observation, reward, terminated, truncated).
ACTIONS = (UP, RIGHT, RIGHT, LEFT, RIGHT, RIGHT, RIGHT)
HAND_WRITTEN = {
    "up-up": [
        OBS_UP,  # reset
        (UP, OBS_UP, -0.1, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, OBS_UP, 0.0, False, False),
        (LEFT, C, 0.0, False, False),
        (RIGHT, OBS_UP, 0.0, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, J, 0.0, False, False),
        (UP, J, 4.0, True, False),
    ],
    "up-down": [
        OBS_UP,
        (UP, OBS_UP, -0.1, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, OBS_DOWN, 0.0, False, False),
        (LEFT, C, 0.0, False, False),
        (RIGHT, OBS_DOWN, 0.0, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, J, 0.0, False, False),
        (DOWN, J, 4.0, True, False),
    ],
    "down-up": [
        OBS_DOWN,
        (UP, OBS_DOWN, -0.1, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, OBS_UP, 0.0, False, False),
        (LEFT, C, 0.0, False, False),
        (RIGHT, OBS_UP, 0.0, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, J, 0.0, False, False),
        (DOWN, J, 4.0, True, False),
    ],
    "down-down": [
        OBS_DOWN,
        (UP, OBS_DOWN, -0.1, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, OBS_DOWN, 0.0, False, False),
        (LEFT, C, 0.0, False, False),
        (RIGHT, OBS_DOWN, 0.0, False, False),
        (RIGHT, C, 0.0, False, False),
        (RIGHT, J, 0.0, False, False),
        (UP, J, 4.0, True, False),
    ],
}


@pytest.mark.parametrize("layout", XOR_LAYOUTS)
def test_hand_written_episode(layout):
    env = gym.make("XORTMaze-v0", length=4, cue_position=2)
    first_obs, *steps = HAND_WRITTEN[layout]
    assert tuple(step[0] for step in steps[:-1]) == ACTIONS
    goal = {"up-up": "up", "up-down": "down", "down-up": "down", "down-down": "up"}[layout]
    obs, info = env.reset(seed=0, options={"layout": layout})
    assert (obs, info) == (first_obs, {"layout": layout, "goal": goal})
    assert (env.unwrapped.layout, env.unwrapped.goal, env.unwrapped.position) == (layout, goal, (0, 0))
    for t, (action, *expected) in enumerate(steps):
        obs, reward, terminated, truncated, info = env.step(action)
        assert (obs, reward, terminated, truncated) == tuple(expected), (layout, t)
        assert info == {"layout": layout, "goal": goal, "is_success": terminated}, (layout, t)
    assert env.unwrapped.position == (4, 1 if goal == "up" else -1)


@pytest.mark.parametrize("layout", XOR_LAYOUTS)
def test_hand_written_wrong_arm(layout):
    env = gym.make("XORTMaze-v0", length=3, cue_position=1)
    env.reset(seed=0, options={"layout": layout})
    wrong = DOWN if xor_goal(layout) == "up" else UP
    trace = [env.step(action)[:4] for action in (RIGHT, RIGHT, RIGHT, wrong)]
    second = OBS_UP if layout.endswith("-up") else OBS_DOWN
    assert trace == [(second, 0.0, False, False), (C, 0.0, False, False), (J, 0.0, False, False),
                     (J, -0.1, True, False)]  # fmt: skip
    assert env.unwrapped.position == (3, 1 if wrong == UP else -1)


@pytest.mark.parametrize("length", [2, 3, 5])
def test_exhaustive_against_tmaze(length):
    """From every corridor cell, every action: the XOR maze moves and pays as the T-Maze whose layout is the
    rewarded arm, and shows what the T-Maze of the first cue shows except at the second cue's cell."""
    for cue_position in range(1, length):
        env = XORTMazeEnv(length, cue_position=cue_position)
        for layout in XOR_LAYOUTS:
            first, second = layout.split("-")
            rewarded = TMazeEnv(length)
            shown = TMazeEnv(length)
            for x in range(length + 1):
                for action in range(4):
                    env.reset(options={"layout": layout})
                    rewarded.reset(options={"layout": xor_goal(layout)})
                    shown.reset(options={"layout": first})
                    for _ in range(x):
                        env.step(RIGHT), rewarded.step(RIGHT), shown.step(RIGHT)
                    obs, reward, terminated, truncated, info = env.step(action)
                    _, t_reward, t_terminated, t_truncated, t_info = rewarded.step(action)
                    t_obs = shown.step(action)[0]
                    assert env.position == rewarded.position
                    assert (reward, terminated, truncated) == (t_reward, t_terminated, t_truncated)
                    assert info["is_success"] == t_info["is_success"]
                    if env.position == (cue_position, 0):
                        assert obs == (OBS_UP if second == "up" else OBS_DOWN)
                    else:
                        assert obs == t_obs, (cue_position, layout, x, action)


@pytest.mark.parametrize("length", [2, 5, 20])
@pytest.mark.parametrize("layout", XOR_LAYOUTS)
def test_optimal_policy_earns_4_in_length_plus_1_steps(length, layout):
    env = gym.make("XORTMaze-v0", length=length)
    env.reset(seed=1, options={"layout": layout})
    total, steps = 0.0, 0
    for action in optimal_actions(length, layout):
        _, reward, terminated, truncated, info = env.step(action)
        total, steps = total + reward, steps + 1
    assert (total, steps, terminated, truncated, info["is_success"]) == (4.0, length + 1, True, False, True)


def test_onehot_observations():
    env = gym.make("XORTMaze-v0", length=3, cue_position=1, observation_type="onehot")
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (4,), np.float32)
    obs, _ = env.reset(options={"layout": "up-down"})
    assert obs.dtype == np.float32
    np.testing.assert_array_equal(obs, np.eye(4)[OBS_UP])
    for expected in (OBS_DOWN, OBS_CORRIDOR, OBS_JUNCTION):
        obs, *_ = env.step(RIGHT)
        np.testing.assert_array_equal(obs, np.eye(4)[expected])


# --- randomness and seeding -------------------------------------------------------------------


def test_layouts_are_uniform_and_each_cue_alone_says_nothing():
    env = XORTMazeEnv(2)
    env.reset(seed=123)
    n = 8000
    layouts = [env.reset()[1]["layout"] for _ in range(n)]
    counts = np.array([layouts.count(layout) for layout in XOR_LAYOUTS])
    chi2 = float(((counts - n / 4) ** 2 / (n / 4)).sum())
    assert chi2 < 16.27  # chi-square, 3 degrees of freedom, p = 0.001
    for cue in (0, 1):  # P(goal up | cue up) = 1/2 for either cue alone
        up_cue = [layout for layout in layouts if layout.split("-")[cue] == "up"]
        frac = sum(xor_goal(layout) == "up" for layout in up_cue) / len(up_cue)
        assert abs(frac - 0.5) < 5 * np.sqrt(0.25 / len(up_cue))


def episode(seed, length=5):
    env = gym.make("XORTMaze-v0", length=length)
    rng = np.random.default_rng(7)
    obs, info = env.reset(seed=seed)
    trace = [info["layout"], obs]
    for _ in range(3 * length):
        obs, reward, terminated, truncated, _ = env.step(int(rng.integers(4)))
        trace.append((obs, reward, terminated, truncated))
        if terminated or truncated:
            break
    return trace


def test_same_seed_same_episode_and_seeds_cover_the_four_layouts():
    assert episode(42) == episode(42)
    assert {episode(seed)[0] for seed in range(30)} == set(XOR_LAYOUTS)
    env = XORTMazeEnv(5)
    first = [env.reset(seed=3)[1]["layout"]] + [env.reset()[1]["layout"] for _ in range(10)]
    again = [env.reset(seed=3)[1]["layout"]] + [env.reset()[1]["layout"] for _ in range(10)]
    assert first == again


def test_forced_layout_draws_nothing():
    """A forced layout takes no draw from np_random (as TMaze-v0's): the next random layout is the first
    one of the seed."""
    forced, free = XORTMazeEnv(3), XORTMazeEnv(3)
    assert forced.reset(seed=9, options={"layout": "down-up"})[1]["layout"] == "down-up"
    assert forced.reset()[1]["layout"] == free.reset(seed=9)[1]["layout"]


# --- truncation -------------------------------------------------------------------------------


def test_truncates_at_3_length_and_max_episode_steps_overrides():
    env = gym.make("XORTMaze-v0", length=6)
    env.reset(seed=0)
    ends = [env.step(LEFT)[2:4] for _ in range(18)]
    assert ends == [(False, False)] * 17 + [(False, True)]
    env = XORTMazeEnv(6, max_episode_steps=4)
    env.reset(seed=0)
    assert [env.step(LEFT)[3] for _ in range(4)] == [False, False, False, True]
    with pytest.raises(gym.error.ResetNeeded, match="XORTMazeEnv.step called after the episode ended"):
        env.step(RIGHT)
    with pytest.raises(gym.error.ResetNeeded, match="Cannot call XORTMazeEnv.step before XORTMazeEnv.reset"):
        XORTMazeEnv(3).step(RIGHT)


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [0, 1, -3, 2.5, "3", True, None])
def test_bad_length(length):
    with pytest.raises(ValueError, match=r"length must be an integer >= 2, got"):
        XORTMazeEnv(length)
    with pytest.raises(ValueError, match=r"length must be an integer >= 2, got"):
        gym.make("XORTMaze-v0", length=length)


@pytest.mark.parametrize("cue_position", [0, 5, 6, -1, 2.5, "2", True])
def test_bad_cue_position(cue_position):
    message = r"cue_position must be None or an integer in 1 \.\. 4 \(a corridor cell of a maze of length 5\)"
    with pytest.raises(ValueError, match=message):
        XORTMazeEnv(5, cue_position=cue_position)
    with pytest.raises(ValueError, match=message):
        gym.make("XORTMaze-v0", length=5, cue_position=cue_position)
    assert XORTMazeEnv(5, cue_position=np.int64(4)).cue_position == 4


@pytest.mark.parametrize("action", [7, 4, -1, 1.5, "up", None])
def test_bad_action(action):
    env = XORTMazeEnv(3)
    env.reset(seed=0)
    with pytest.raises(
        ValueError, match=r"action must be one of 0 \(Right\), 1 \(Up\), 2 \(Left\), 3 \(Down\)"
    ):
        env.step(action)


def test_bad_options_and_arguments():
    env = XORTMazeEnv(3)
    with pytest.raises(
        ValueError, match=r"unknown reset option\(s\) \['second_cue'\]; allowed options: \['layout'\]"
    ):
        env.reset(options={"layout": "up-up", "second_cue": "down"})
    for layout in ("up", "down", "up-left", "UP-UP", None, ("up", "up")):
        with pytest.raises(
            ValueError,
            match=r"options\['layout'\] must be one of 'up-up', 'up-down', 'down-up', 'down-down' "
            r"\('<first cue>-<second cue>'\); got",
        ):
            env.reset(options={"layout": layout})
    with pytest.raises(ValueError, match=r"options must be None or a dict"):
        env.reset(options=["up-up"])
    with pytest.raises(ValueError, match=r"observation_type must be one of 'discrete', 'onehot'"):
        XORTMazeEnv(3, observation_type="image")
    with pytest.raises(ValueError, match=r"max_episode_steps must be None or an integer >= 1, got 0"):
        XORTMazeEnv(3, max_episode_steps=0)
    with pytest.raises(ValueError, match=r"render_mode must be None, 'ansi' or 'rgb_array'"):
        XORTMazeEnv(3, render_mode="human")
    with pytest.raises(ValueError, match=r"options\['layout'\] must be one of 'up-up'"):
        xor_goal("up")


# --- rendering --------------------------------------------------------------------------------


def test_render_marks_the_rewarded_arm():
    env = gym.make("XORTMaze-v0", length=3, render_mode="ansi")
    env.reset(options={"layout": "down-down"})  # the cues agree: Up pays
    assert env.render() == "   G\nA...\n   X\n"
    env.reset(options={"layout": "up-down"})  # they differ: Down pays
    for action in (RIGHT, RIGHT, RIGHT, DOWN):
        env.step(action)
    assert env.render() == "   X\n....\n   A\n"
    frames = gym.make("XORTMaze-v0", length=4, render_mode="rgb_array")
    frames.reset(options={"layout": "up-down"})
    tmaze = gym.make("TMaze-v0", length=4, render_mode="rgb_array")
    tmaze.reset(options={"layout": "down"})
    np.testing.assert_array_equal(frames.render(), tmaze.render())
    assert XORTMazeEnv(2).render() is None


# --- checkers ---------------------------------------------------------------------------------


@pytest.mark.parametrize("length", [2, 3, 10, 100])
@pytest.mark.parametrize("observation_type", ["discrete", "onehot"])
def test_gymnasium_and_sb3_checkers_pass_without_warning(length, observation_type):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for render_mode in (None, "ansi", "rgb_array"):
            env = gym.make(
                "XORTMaze-v0", length=length, observation_type=observation_type, render_mode=render_mode
            )
            gym_check_env(env.unwrapped)
        sb3_check_env(XORTMazeEnv(length, observation_type=observation_type), warn=True)
        sb3_check_env(
            gym.make("XORTMaze-v0", length=length, cue_position=1, observation_type=observation_type),
            warn=True,
        )


def test_make_vec_is_gymnasiums_sync_vector_env():
    vec = gym.make_vec("XORTMaze-v0", num_envs=3, length=4, cue_position=1)
    assert isinstance(vec, SyncVectorEnv)
    obs, info = vec.reset(seed=0)
    assert obs.shape == (3,) and set(info["layout"]) <= set(XOR_LAYOUTS)
    obs, *_ = vec.step(np.array([RIGHT] * 3))
    expected = [OBS_UP if layout.endswith("-up") else OBS_DOWN for layout in info["layout"]]
    assert obs.tolist() == expected  # the second cue at x = 1


# --- the docstring's promises -----------------------------------------------------------------


def test_docstring_follows_the_template_and_states_the_rule():
    doc = XORTMazeEnv.__doc__
    sections = ["Description", "Action Space", "Observation Space", "Starting State", "Reward", "Episode End",
                "Information", "Arguments", "References", "Version History"]  # fmt: skip
    positions = [doc.index(f"## {section}\n") for section in sections]
    assert positions == sorted(positions)
    assert "**Up when the two cues agree** (Up-Up or Down-Down), **Down\n    when they differ**" in doc
    arguments = doc.split("## Arguments")[1].split("```python")[1].split("```")[0]
    namespace: dict = {}
    exec(arguments.replace("\n    ", "\n"), namespace)  # the documented gym.make line runs
    env = namespace["env"]
    assert (env.unwrapped.length, env.unwrapped.cue_position, env.render_mode) == (20, 10, "ansi")
    _, info = env.reset(seed=0)
    assert set(info) == {"layout", "goal"}  # as the Information section says
    assert set(env.step(RIGHT)[4]) == {"layout", "goal", "is_success"}


# --- DRQN on the XOR maze, unchanged ----------------------------------------------------------


def greedy_xor_results(model, env):
    """``play_greedy`` in each of the four layouts, stopped after ``L + 1`` steps: ``[(return, steps)]``."""
    from recurrent_q.callbacks import play_greedy

    length = env.unwrapped.length
    return [play_greedy(model, env, layout, max_steps=length + 1) for layout in XOR_LAYOUTS]


def test_drqn_and_play_greedy_run_unchanged():
    from experiments.evaluation import is_optimal_episode, is_tmaze_optimal
    from recurrent_q.drqn import DRQN

    env = gym.make("XORTMaze-v0", length=3, cue_position=1)
    model = DRQN(
        "RecurrentQPolicy",
        env,
        buffer_size=64,
        batch_size=8,
        gradient_steps=2,
        vaa_interval=0,
        vaa_measure_interval=0,
        seed=0,
    )
    np.testing.assert_allclose(model.policy.exploration_probs, exploration_policy())  # ℰ read from the env
    model.learn(200)
    assert model.num_timesteps >= 200
    results = greedy_xor_results(model, gym.make("XORTMaze-v0", length=3, cue_position=1))
    assert all(1 <= steps <= 4 for _, steps in results)
    optimal = is_optimal_episode(*np.array(results).T, 3)
    assert optimal.shape == (4,)
    # The optimality check plays the four layouts, not half of them: optimal only if all four are.
    assert is_tmaze_optimal(model, env) == bool(optimal.all())


@pytest.mark.slow
def test_drqn_learns_the_xor_maze_length_3():
    """GRU 1 x 32 with the T-Maze runner's update settings reaches the optimal policy in all four layouts at
    L = 3, second cue at x = 1 (seed 0: after 1,730 env steps, 512 of them the buffer fill; about 3 min on a
    loaded 2-core machine, 50 s of CPU)."""
    from experiments.evaluation import is_optimal_episode
    from recurrent_q.drqn import DRQN

    model = DRQN(
        "RecurrentQPolicy",
        gym.make("XORTMaze-v0", length=3, cue_position=1),
        buffer_size=512,
        gradient_steps=20,
        target_update_interval=2,
        policy_kwargs=dict(use_previous_reward=True, init="xavier", hidden_size=32),
        seed=0,
        vaa_interval=0,
        vaa_measure_interval=0,
    )
    evaluation_env = gym.make("XORTMaze-v0", length=3, cue_position=1)
    for _ in range(30):
        model.learn(200, reset_num_timesteps=False)
        results = greedy_xor_results(model, evaluation_env)
        if is_optimal_episode(*np.array(results).T, 3).all():
            break
    assert is_optimal_episode(*np.array(results).T, 3).all(), results
