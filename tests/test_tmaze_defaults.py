"""The registered ``TMaze-v0`` works without arguments, as its docstring promises."""

import gymnasium as gym

import tmaze_gym
from tmaze_gym import DEFAULT_LENGTH, TMazeEnv, TMazeVectorEnv, horizon


def test_registered_env_has_the_documented_default_length():
    env = gym.make("TMaze-v0")
    assert env.unwrapped.length == DEFAULT_LENGTH == 20
    assert env.spec.max_episode_steps == horizon(DEFAULT_LENGTH) == 60
    assert TMazeEnv().length == DEFAULT_LENGTH
    assert TMazeVectorEnv(num_envs=2).length == DEFAULT_LENGTH
    assert gym.make_vec("TMaze-v0", num_envs=2).unwrapped.length == DEFAULT_LENGTH
    assert gym.make("TMaze-v0", length=3).unwrapped.length == 3  # an explicit length is unchanged


def test_docstring_states_the_default_length():
    doc = TMazeEnv.__doc__
    arguments = doc.split("## Arguments")[1].split("## References")[0]
    assert f"{DEFAULT_LENGTH} by default" in arguments
    assert "default L = 20" in doc.split("## Version History")[1]
    assert "DEFAULT_LENGTH = 20" in tmaze_gym.__doc__
