"""DRQN's observation spaces (recurrent_q/observations.py, issue 22 item 2): MultiDiscrete, MultiBinary, Dict,
Tuple and image observations, a user's features extractor, and the errors for the spaces it cannot take."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from gymnasium import spaces
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, FlattenExtractor
from stable_baselines3.common.vec_env import DummyVecEnv
from torch import nn

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.evaluation import is_tmaze_optimal
from recurrent_q.drqn import DRQN
from recurrent_q.observations import MultiInputExtractor, SmallCNN
from recurrent_q.policies import NO_ACTION, DRQNPolicy, RecurrentQNetwork, check_spaces

N_ACTIONS = 2


class RandomObservations(gym.Env):
    """Random observations of ``observation_space``, 2 actions, reward = action, episodes of ``length``."""

    def __init__(self, observation_space: spaces.Space, length: int = 4) -> None:
        self.observation_space = observation_space
        self.action_space = spaces.Discrete(N_ACTIONS)
        self.length = length
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self.observation_space.seed(seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        self.t += 1
        return self.observation_space.sample(), float(action), self.t >= self.length, False, {}


class DictTMaze(gym.ObservationWrapper):
    """The T-Maze's observation as ``{"maze": o, "bias": [1, -0.5]}`` (a constant Box part)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.observation_space = spaces.Dict(
            {"maze": env.observation_space, "bias": spaces.Box(-1, 1, (2,), np.float32)}
        )

    def observation(self, observation):
        return {"maze": observation, "bias": np.array([1.0, -0.5], np.float32)}


class SumExtractor(BaseFeaturesExtractor):
    """A user's features extractor (module level: pickled by reference, as SB3 does)."""

    def __init__(self, observation_space: spaces.Space, features_dim: int = 3) -> None:
        super().__init__(observation_space, features_dim)
        self.linear = nn.Linear(int(np.prod(observation_space.shape)), features_dim)

    def forward(self, observations: th.Tensor) -> th.Tensor:
        return self.linear(observations.flatten(1))


def tiny_model(env, **kwargs) -> DRQN:
    settings = dict(
        buffer_size=32, batch_size=4, gradient_steps=2, vaa_interval=0, vaa_measure_interval=0, seed=0
    )
    settings.update(kwargs)
    return DRQN("RecurrentQPolicy", env, **settings)


def encoded(space: spaces.Space, observation, **policy_kwargs) -> th.Tensor:
    """The observation part of the cell input of a single ``observation`` (as ``predict`` builds it)."""
    policy = DRQNPolicy(space, spaces.Discrete(N_ACTIONS), lambda _: 1e-3, **policy_kwargs)
    obs, vectorized = policy.obs_to_tensor(observation)
    x = policy.q_net.features(obs, th.tensor([NO_ACTION]), th.zeros(1))
    assert not vectorized and x.shape == (1, N_ACTIONS + policy.q_net.obs_size)
    assert (x[0, :N_ACTIONS] == 0).all()  # a_{-1}: the zero vector
    return x[0, N_ACTIONS:]


# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    "space, observation, expected",
    [
        (spaces.MultiDiscrete([3, 2]), np.array([2, 1]), [0, 0, 1, 0, 1]),
        (spaces.MultiDiscrete([3, 2], start=[1, -1]), np.array([3, 0]), [0, 0, 1, 0, 1]),
        (spaces.Discrete(3, start=1), 2, [0, 1, 0]),
        (spaces.MultiBinary(3), np.array([1, 0, 1], np.int8), [1, 0, 1]),
        (spaces.Box(-1, 1, (2, 2)), np.array([[0.5, -0.25], [0, 1]], np.float32), [0.5, -0.25, 0, 1]),
        (
            spaces.Dict({"b": spaces.Box(-1, 1, (2,)), "a": spaces.Discrete(3)}),  # keys sorted: a, b
            {"a": 1, "b": np.array([0.5, -0.25], np.float32)},
            [0, 1, 0, 0.5, -0.25],
        ),
        (
            spaces.Tuple((spaces.Discrete(2), spaces.MultiDiscrete([2, 2]), spaces.MultiBinary(2))),
            (1, np.array([0, 1]), np.array([1, 1], np.int8)),
            [0, 1, 1, 0, 0, 1, 1, 1],
        ),
    ],
    ids=["multidiscrete", "multidiscrete-start", "discrete-start", "multibinary", "box",
         "dict", "tuple"],
)  # fmt: skip
def test_each_space_is_encoded_as_one_hots_and_floats(space, observation, expected):
    assert encoded(space, observation).tolist() == pytest.approx(expected)


def test_the_tmaze_inputs_keep_their_encoding_and_parameters():
    """Discrete and Box vectors: SB3's FlattenExtractor (no parameter), the state dict of before."""
    for space in (spaces.Discrete(4), spaces.Box(0, 1, (4,), np.float32)):
        q_net = RecurrentQNetwork(space, spaces.Discrete(4))
        assert type(q_net.features_extractor) is FlattenExtractor and q_net.obs_size == 4
        assert not any(key.startswith("features_extractor") for key in q_net.state_dict())
        assert q_net.rnn.input_size == 8
    assert encoded(spaces.Discrete(4), 2).tolist() == [0, 0, 1, 0]


@pytest.mark.parametrize("channels_first", [False, True])
def test_an_image_goes_through_the_small_cnn_divided_by_255(channels_first):
    shape = (3, 5, 4) if channels_first else (5, 4, 3)
    space = spaces.Box(0, 255, shape, np.uint8)
    image = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    th.manual_seed(0)
    policy = DRQNPolicy(space, spaces.Discrete(N_ACTIONS), lambda _: 1e-3)
    cnn = policy.q_net.features_extractor
    assert isinstance(cnn, SmallCNN) and policy.q_net.obs_size == 64
    chw = th.as_tensor(image).float() / 255.0
    chw = chw if channels_first else chw.permute(2, 0, 1)
    expected = cnn.linear(cnn.cnn(chw[None]))[0]
    obs, _ = policy.obs_to_tensor(image)
    x = policy.q_net.features(obs, th.tensor([NO_ACTION]), th.zeros(1))
    assert th.allclose(x[0, N_ACTIONS:], expected)
    # normalize_images=False: the raw values (SB3's convention)
    raw = DRQNPolicy(space, spaces.Discrete(N_ACTIONS), lambda _: 1e-3, normalize_images=False)
    raw.q_net.load_state_dict(policy.q_net.state_dict())
    x_raw = raw.q_net.features(obs, th.tensor([NO_ACTION]), th.zeros(1))
    raw_chw = th.as_tensor(image).float()
    raw_chw = raw_chw if channels_first else raw_chw.permute(2, 0, 1)
    assert th.allclose(x_raw[0, N_ACTIONS:], cnn.linear(cnn.cnn(raw_chw[None]))[0], atol=1e-4)  # layout


def test_a_dict_with_an_image_concatenates_cnn_features_and_one_hots():
    space = spaces.Dict({"image": spaces.Box(0, 255, (3, 7, 7), np.uint8), "direction": spaces.Discrete(4)})
    policy = DRQNPolicy(
        space, spaces.Discrete(N_ACTIONS), lambda _: 1e-3, features_extractor_kwargs={"cnn_output_dim": 8}
    )
    extractor = policy.q_net.features_extractor
    assert isinstance(extractor, MultiInputExtractor) and isinstance(extractor.extractors["image"], SmallCNN)
    assert policy.q_net.obs_size == 4 + 8  # keys in the space's order: direction, image
    obs = {"image": space["image"].sample(), "direction": 3}
    cnn = extractor.extractors["image"]
    expected = th.cat([th.tensor([0.0, 0, 0, 1]), cnn(th.as_tensor(obs["image"])[None].float() / 255)[0]])
    assert th.allclose(encoded_with(policy, obs), expected)


def encoded_with(policy: DRQNPolicy, observation) -> th.Tensor:
    obs, _ = policy.obs_to_tensor(observation)
    return policy.q_net.features(obs, th.tensor([NO_ACTION]), th.zeros(1))[0, N_ACTIONS:]


def test_a_features_extractor_of_the_user_replaces_the_observation_and_is_trained(tmp_path):
    space = spaces.Box(-1, 1, (2, 3), np.float32)
    model = tiny_model(
        RandomObservations(space),
        policy_kwargs=dict(
            features_extractor_class=SumExtractor, features_extractor_kwargs={"features_dim": 5}
        ),
    )
    q_net = model.q_net
    assert isinstance(q_net.features_extractor, SumExtractor) and q_net.obs_size == 5
    assert q_net.rnn.input_size == N_ACTIONS + 5
    assert q_net.features_extractor is not model.q_net_target.features_extractor
    obs = space.sample()
    expected = q_net.features_extractor(th.as_tensor(obs)[None])[0]
    assert th.allclose(encoded_with(model.policy, obs), expected)
    before = q_net.features_extractor.linear.weight.detach().clone()
    model.learn(10**9, max_episodes=3)
    assert not th.equal(before, q_net.features_extractor.linear.weight)  # trained with the cells
    model.save(tmp_path / "model.zip")
    loaded = DRQN.load(tmp_path / "model.zip")
    assert loaded.policy_kwargs["features_extractor_class"] is SumExtractor
    assert th.equal(loaded.q_net.features_extractor.linear.weight, q_net.features_extractor.linear.weight)
    with pytest.raises(ValueError, match="features_extractor_class must be a class of features extractor"):
        tiny_model(RandomObservations(space), policy_kwargs=dict(features_extractor_class="NatureCNN"))


# ----------------------------------------------------------------------------- storage, learning, predict


def test_the_buffer_stores_each_key_raw_in_a_compact_dtype():
    space = spaces.Dict(
        {
            "image": spaces.Box(0, 255, (5, 5, 3), np.uint8),
            "cells": spaces.MultiDiscrete([3, 2]),
            "bits": spaces.MultiBinary(2),
            "x": spaces.Box(-1, 1, (2,), np.float64),
        }
    )
    model = tiny_model(RandomObservations(space))
    model.learn(10**9, max_episodes=1)
    stored = model.replay_buffer.observations
    assert {key: (array.dtype, array.shape[2:]) for key, array in stored.items()} == {
        "image": (np.uint8, (3, 5, 5)),  # transposed to channel-first by SB3's VecTransposeImage
        "cells": (np.int64, (2,)),
        "bits": (np.int8, (2,)),
        "x": (np.float32, (2,)),
    }
    batch = model.replay_buffer.all_episodes()
    x = model.q_net.episode_features(batch.observations, batch.actions, batch.rewards)
    assert x.shape[:2] == (len(batch.lengths), batch.actions.shape[1] + 1)
    assert x.shape[2] == N_ACTIONS + model.q_net.obs_size == N_ACTIONS + 64 + 5 + 2 + 2


def test_tuple_observations_are_stored_and_acted_on_as_a_dict():
    """A Tuple (Blackjack's kind) is keyed "0", "1", … and is not transposed by SB3: the CNN permutes."""
    space = spaces.Tuple((spaces.Discrete(3), spaces.Box(0, 255, (4, 4, 1), np.uint8)))
    model = tiny_model(RandomObservations(space))
    model.learn(10**9, max_episodes=2)
    assert set(model.replay_buffer.observations) == {"0", "1"}
    assert model.replay_buffer.observations["1"].shape[2:] == (4, 4, 1)
    action, state = model.predict(space.sample(), deterministic=True)
    assert action.shape == () and state.rnn.shape[1] == 1
    blackjack = tiny_model(gym.make("Blackjack-v1"))
    blackjack.learn(10**9, max_episodes=1)
    assert blackjack.q_net.obs_size == 32 + 11 + 2


class StopWhenOptimal(BaseCallback):
    """Stop ``learn`` at the first check (every ``every`` training episodes) where the greedy policy is
    optimal in both layouts (``is_tmaze_optimal``: ``predict`` on the Dict observations)."""

    def __init__(self, env: gym.Env, every: int = 2) -> None:
        super().__init__()
        self.env, self.every, self.next_check = env, every, every
        self.first_optimal_episode: int | None = None

    def _on_step(self) -> bool:
        episode = self.model.num_train_episodes
        if episode >= self.next_check:
            self.next_check = episode + self.every
            if is_tmaze_optimal(self.model, self.env):
                self.first_optimal_episode = episode
                return False
        return True


def dict_tmaze(length: int = 2) -> gym.Env:
    return DictTMaze(gym.make("TMaze-v0", length=length))


def test_dict_tmaze_reaches_the_optimal_policy():
    """The memory task with a Dict observation (the T-Maze's plus a constant Box part), L = 2: optimal
    after 26 training episodes with seed 0 (seeds 0-3 measured: 26, more than 150, 6, 60), a few seconds."""
    model = tiny_model(
        dict_tmaze(),
        buffer_size=128,
        batch_size=16,
        learning_rate=3e-3,
        gradient_steps=10,
        target_update_interval=2,
        policy_kwargs=dict(use_previous_reward=True, init="xavier"),
    )
    optimal = StopWhenOptimal(dict_tmaze())
    model.learn(10**9, callback=optimal, max_episodes=100)
    assert optimal.first_optimal_episode is not None
    assert is_tmaze_optimal(model, dict_tmaze())


def test_predict_a_dict_observation_alone_and_in_a_vecenv_batch():
    model = tiny_model(dict_tmaze(3))
    model.learn(10**9, max_episodes=2)
    vec_env = DummyVecEnv([lambda: dict_tmaze(3)] * 3)
    batch = vec_env.reset()
    actions, state = model.predict(batch, deterministic=True)
    assert actions.shape == (3,) and state.rnn.shape == (2, 3, 32)
    for i in range(3):  # each env alone gives its row of the batch
        single = {key: value[i] for key, value in batch.items()}
        action, alone = model.predict(single, deterministic=True)
        assert action.shape == () and action == actions[i]
        assert np.allclose(alone.rnn[:, 0], state.rnn[:, i], atol=1e-6)
    batch, _, dones, _ = vec_env.step(actions)
    actions, state = model.predict(batch, state, dones, deterministic=True)  # the state goes on
    assert actions.shape == (3,)
    with pytest.raises(ValueError, match=r"observation\['bias'\] contains NaN"):
        model.predict({"maze": 0, "bias": np.array([np.nan, 0.0], np.float32)})


def test_an_image_env_learns_and_predicts():
    space = spaces.Box(0, 255, (6, 6, 3), np.uint8)
    model = tiny_model(
        RandomObservations(space), policy_kwargs=dict(features_extractor_kwargs={"features_dim": 16})
    )
    cnn = model.q_net.features_extractor
    assert isinstance(cnn, SmallCNN) and model.observation_space.shape == (3, 6, 6)
    before = [p.detach().clone() for p in cnn.parameters()]
    model.learn(10**9, max_episodes=3)
    assert model.num_train_episodes == 3
    assert any(not th.equal(a, b) for a, b in zip(before, cnn.parameters(), strict=True))
    action, _ = model.predict(space.sample(), deterministic=True)  # channel-last, as the env gives it
    assert action.shape == ()
    actions, state = model.predict(np.stack([space.sample() for _ in range(4)]), deterministic=True)
    assert actions.shape == (4,) and state.rnn.shape[1] == 4


@pytest.mark.parametrize(
    "space",
    [
        spaces.MultiDiscrete([3, 2]),
        spaces.MultiBinary(3),
        spaces.Box(0, 255, (5, 5, 3), np.uint8),
        spaces.Dict({"image": spaces.Box(0, 255, (5, 5, 3), np.uint8), "direction": spaces.Discrete(4)}),
        spaces.Tuple((spaces.Discrete(3), spaces.Box(-1, 1, (2,), np.float32))),
    ],
    ids=["multidiscrete", "multibinary", "image", "dict", "tuple"],
)
def test_save_load_with_each_space(tmp_path, space):
    env = RandomObservations(space)
    model = tiny_model(env)
    model.learn(10**9, max_episodes=2)
    model.save(tmp_path / "model.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    loaded = DRQN.load(tmp_path / "model.zip", env=RandomObservations(space))
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    observations = [space.sample() for _ in range(3)]
    state = other = None
    for obs in observations:
        action, state = model.predict(obs, state, deterministic=True)
        loaded_action, other = loaded.predict(obs, other, deterministic=True)
        assert action == loaded_action
        assert np.allclose(state.rnn, other.rnn)
    loaded.learn(10**9, max_episodes=1, reset_num_timesteps=False)  # trains on with the loaded buffer
    policy_path = tmp_path / "policy.pt"
    model.policy.save(policy_path)
    policy = DRQNPolicy.load(policy_path)
    assert np.allclose(
        policy.predict(observations[0], deterministic=True)[1].rnn,
        model.predict(observations[0], deterministic=True)[1].rnn,
    )


# ----------------------------------------------------------------------------- refused spaces


@pytest.mark.parametrize(
    "space, match",
    [
        (spaces.Text(5), r"Text.*Text spaces are not supported.*It accepts Discrete, MultiDiscrete \(1-D"),
        (spaces.Sequence(spaces.Discrete(2)), r"Sequence spaces are not supported"),
        (spaces.Graph(spaces.Box(0, 1, (2,)), spaces.Discrete(2)), r"Graph spaces are not supported"),
        (spaces.OneOf([spaces.Discrete(2)]), r"OneOf spaces are not supported"),
        (spaces.Tuple((spaces.Discrete(2), spaces.Dict({"a": spaces.Discrete(2)}))), r"'1' is a nested Dict"),
        (spaces.Dict({"a": spaces.Tuple((spaces.Discrete(2),))}), r"'a' is a nested Tuple"),
        (spaces.Dict({"image": spaces.Discrete(2), "mission": spaces.Text(9)}), r"'mission' is Text.*Filter"),
        (spaces.MultiDiscrete([[2, 2], [3, 2]]), r"MultiDiscrete of 2 dimensions.*FlattenObservation"),
        (spaces.Tuple(()), r"the Tuple is empty"),
    ],
    ids=["text", "sequence", "graph", "oneof", "dict-in-tuple", "tuple-in-dict", "text-in-dict",
         "multidiscrete-2d", "empty"],
)  # fmt: skip
def test_spaces_it_cannot_take_are_named(space, match):
    with pytest.raises(ValueError, match=match):
        check_spaces(space, spaces.Discrete(2))
    with pytest.raises(ValueError, match=match):  # before SB3's VecEnv fails on them
        tiny_model(RandomObservations(space))


def test_non_discrete_actions_are_refused():
    for action_space in (spaces.Box(-1, 1, (1,)), spaces.MultiDiscrete([2, 2])):
        with pytest.raises(ValueError, match="DRQN needs a Discrete action space"):
            check_spaces(spaces.Discrete(2), action_space)


# ----------------------------------------------------------------------------- memory suites (optional)


def test_popgym_repeat_previous_runs():
    popgym = pytest.importorskip("popgym")
    del popgym
    model = tiny_model(gym.make("popgym-RepeatPreviousEasy-v0"), buffer_size=64, batch_size=8)
    model.learn(10**9, max_episodes=2)
    assert model.num_train_episodes == 2


def test_minigrid_memory_runs_on_its_image():
    """MiniGrid's observation is a Dict with a text 'mission', which DRQN refuses by name: keep 'image'
    (``ImgObsWrapper``, through the small CNN) or 'image' and 'direction' (``FilterObservation``)."""
    pytest.importorskip("minigrid")
    from minigrid.wrappers import ImgObsWrapper

    with pytest.raises(ValueError, match="'mission' is MissionSpace.*ImgObsWrapper"):
        tiny_model(gym.make("MiniGrid-MemoryS7-v0"))
    model = tiny_model(ImgObsWrapper(gym.make("MiniGrid-MemoryS7-v0")), buffer_size=64, batch_size=8)
    assert isinstance(model.q_net.features_extractor, SmallCNN)
    model.learn(10**9, max_episodes=2)
    assert model.num_train_episodes == 2
    filtered = gym.wrappers.FilterObservation(gym.make("MiniGrid-MemoryS7-v0"), ["image", "direction"])
    model = tiny_model(filtered, buffer_size=64, batch_size=8, gradient_steps=1)
    model.learn(10**9, max_episodes=1)
    assert model.num_train_episodes == 1
