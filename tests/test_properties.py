"""Property-based tests (hypothesis): the T-Maze's invariants (Appendix D) under any action sequence,
the single and the vectorised env agreeing step for step, reset/seed determinism, and the argument
checks of public functions (any bad value gets a ``ValueError`` naming the argument)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from recurrent_q.cells import CELL_NAMES, make_cell
from recurrent_q.multistability import WarmupConfig, vaa_star
from tmaze_gym.tmaze import TMazeEnv
from tmaze_gym.vector import TMazeVectorEnv

# derandomize: the same examples on every run (CI is seeded like every other test)
SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)
lengths = st.integers(min_value=1, max_value=12)
actions = st.lists(st.integers(min_value=0, max_value=3), min_size=1, max_size=60)
layouts = st.sampled_from(["up", "down"])


def reference_step(length: int, goal_y: int, x: int, y: int, action: int):
    """Appendix D, written again from the text: (x, y, reward, terminated)."""
    dx, dy = {0: (1, 0), 1: (0, 1), 2: (-1, 0), 3: (0, -1)}[action]
    nx, ny = x + dx, y + dy
    inside = (ny == 0 and 0 <= nx <= length) or (nx == length and ny in (-1, 1))
    if not inside:
        return x, y, -0.1, False  # a bump: the state is unchanged
    if ny == 0:
        return nx, ny, 0.0, False
    return nx, ny, (4.0 if ny == goal_y else -0.1), True


def reference_observation(length: int, goal_y: int, x: int) -> int:
    if x == 0:
        return 0 if goal_y == 1 else 1
    return 2 if x < length else 3


@SETTINGS
@given(length=lengths, layout=layouts, moves=actions)
def test_any_action_sequence_keeps_the_rules_of_appendix_d(length, layout, moves):
    env = TMazeEnv(length)
    obs, info = env.reset(seed=0, options={"layout": layout})
    goal_y = 1 if layout == "up" else -1
    x = y = 0
    assert obs == reference_observation(length, goal_y, 0) and info == {"layout": layout}
    for t, action in enumerate(moves, start=1):
        obs, reward, terminated, truncated, info = env.step(action)
        x, y, expected_reward, expected_end = reference_step(length, goal_y, x, y, action)
        assert env.position == (x, y)
        assert reward == expected_reward and terminated == expected_end
        assert truncated == (t >= 3 * length)  # the horizon 3L of eq. (D.9)
        assert info["is_success"] == (terminated and reward == 4.0) and info["layout"] == layout
        assert obs == reference_observation(length, goal_y, x)
        if terminated or truncated:
            with pytest.raises(gym.error.ResetNeeded, match="call reset"):
                env.step(action)
            break


@SETTINGS
@given(length=lengths, data=st.data())
def test_the_vector_env_follows_the_single_env_step_for_step(length, data):
    """Same layouts, same actions: same observations, rewards and ends (with next-step autoreset)."""
    n = 3
    vector = TMazeVectorEnv(n, length, autoreset_mode="SameStep")
    obs, info = vector.reset(seed=0)
    singles = [TMazeEnv(length) for _ in range(n)]
    for i, env in enumerate(singles):
        single_obs, _ = env.reset(options={"layout": info["layout"][i]})
        assert single_obs == obs[i]
    for _ in range(data.draw(st.integers(1, 40))):
        moves = data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
        obs, rewards, terminated, truncated, info = vector.step(np.array(moves))
        for i, env in enumerate(singles):
            single = env.step(moves[i])
            assert (single[1], single[2], single[3]) == (rewards[i], terminated[i], truncated[i])
            if terminated[i] or truncated[i]:
                assert info["final_obs"][i] == single[0]
                assert bool(info["final_info"]["is_success"][i]) == single[4]["is_success"]
                reset_obs, _ = env.reset(options={"layout": info["layout"][i]})
                assert reset_obs == obs[i]
            else:
                assert single[0] == obs[i]


@SETTINGS
@given(length=lengths, seed=st.integers(0, 2**32 - 1), episodes=st.integers(1, 8))
def test_reset_with_a_seed_replays_the_same_layouts(length, seed, episodes):
    def layouts_of(env):
        drawn = [env.reset(seed=seed)[1]["layout"]]
        drawn += [env.reset()[1]["layout"] for _ in range(episodes)]
        return drawn

    env = gym.make("TMaze-v0", length=length)
    first = layouts_of(env)
    assert layouts_of(env) == first
    assert layouts_of(gym.make("TMaze-v0", length=length)) == first


bad_integers = st.one_of(
    st.integers(max_value=0),
    st.floats(allow_nan=True).filter(lambda v: not float(v).is_integer() or v <= 0),
    st.text(max_size=3),
    st.none(),
    st.booleans(),
)


@SETTINGS
@given(length=bad_integers)
def test_a_bad_corridor_length_is_named(length):
    with pytest.raises(ValueError, match="length must be an integer >= 1"):
        TMazeEnv(length)


@SETTINGS
@given(action=st.one_of(st.integers().filter(lambda a: not 0 <= a <= 3), st.text(max_size=2), st.none()))
def test_an_action_out_of_range_is_named(action):
    env = TMazeEnv(3)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be"):
        env.step(action)


@SETTINGS
@given(name=st.text(max_size=8).filter(lambda n: n not in CELL_NAMES))
def test_an_unknown_cell_name_lists_the_known_ones(name):
    with pytest.raises(ValueError, match="cell must be one of .*'gru'"):
        make_cell(name, 3, 4)


@SETTINGS
@given(
    argument=st.sampled_from(["input_size", "hidden_size", "num_layers"]),
    value=st.one_of(st.integers(max_value=0), st.floats(), st.text(max_size=2), st.none()),
)
def test_a_bad_cell_size_is_named(argument, value):
    sizes = {"input_size": 3, "hidden_size": 4, "num_layers": 1, argument: value}
    with pytest.raises(ValueError, match=f"{argument} must be an integer >= 1; got "):
        make_cell("gru", **sizes)


BAD_WARMUP_SETTINGS = {
    "steps": st.one_of(st.integers(max_value=-1), st.floats(), st.text(max_size=2)),
    "c": st.one_of(st.integers(max_value=-1), st.floats()),
    "max_stabilisation": st.one_of(st.integers(max_value=0), st.floats()),
    "batch_size": st.one_of(st.integers(max_value=0), st.none()),
    "lr": st.one_of(st.floats(max_value=0.0), st.just(math.nan)),
    "eps": st.one_of(st.floats(max_value=0.0), st.just(math.nan)),
    "k": st.one_of(st.floats(max_value=0.0), st.floats(min_value=1.0, exclude_min=True), st.just(math.nan)),
}


@SETTINGS
@given(data=st.data(), field=st.sampled_from(sorted(BAD_WARMUP_SETTINGS)))
def test_a_bad_warmup_setting_is_named(data, field):
    value = data.draw(BAD_WARMUP_SETTINGS[field])
    with pytest.raises(ValueError, match=rf"^{field} must be"):
        WarmupConfig(**{field: value})


@SETTINGS
@given(
    states=st.lists(st.floats(-1, 1, width=32), min_size=2, max_size=24).map(
        lambda v: torch.tensor(v).reshape(-1, 1)
    ),
    eps=st.floats(1e-6, 1e-2),
)
def test_vaa_star_lies_between_its_floor_and_one(states, eps):
    value = float(vaa_star(states, eps))
    assert 1 / len(states) - 1e-6 <= value <= 1 + 1e-6
    assert math.isclose(
        float(vaa_star(states[:1].expand(len(states), -1), eps)), 1 / len(states), rel_tol=1e-5
    )
