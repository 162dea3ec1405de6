"""Saving and loading DRQN as SB3 does: the replay buffer, the policy alone, and continuing a run."""

import copy
import importlib.util
import json
import pathlib
import pickle
import re
import zipfile

import gymnasium as gym
import numpy as np
import pytest
import torch as th

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from recurrent_q import learning as learning_module
from recurrent_q.drqn import DRQN
from recurrent_q.multistability import WarmupConfig
from recurrent_q.policies import DRQNPolicy


def tmaze(length: int = 3, **kwargs) -> gym.Env:
    return gym.make("TMaze-v0", length=length, **kwargs)


def small_model(**kwargs) -> DRQN:
    settings = dict(
        buffer_size=256, batch_size=8, gradient_steps=2, vaa_interval=0, vaa_measure_interval=0, seed=0
    )
    settings.update(kwargs)
    return DRQN("RecurrentQPolicy", tmaze(), **settings)


DATA = pathlib.Path(__file__).parent / "data"
BUFFER_ARRAYS = ("observations", "actions", "rewards", "lengths", "terminated", "first_live")


def test_save_load_replay_buffer(tmp_path):
    path = pathlib.Path(tmp_path / "logs/replay_buffer.pkl")
    path.parent.mkdir(exist_ok=True, parents=True)
    model = small_model()
    model.learn(10**9, max_episodes=3)
    old_replay_buffer = copy.deepcopy(model.replay_buffer)
    model.save_replay_buffer(path)
    model.replay_buffer = None
    model.load_replay_buffer(path)
    buffer = model.replay_buffer
    for name in BUFFER_ARRAYS:
        assert np.array_equal(getattr(old_replay_buffer, name), getattr(buffer, name)), name
    assert list(buffer.queue) == list(old_replay_buffer.queue) and len(buffer) == len(old_replay_buffer)
    assert buffer.device == model.device
    # Same samples from the same draws
    old_batch = old_replay_buffer.sample(16, np.random.default_rng(1))
    batch = buffer.sample(16, np.random.default_rng(1))
    for name in ("observations", "actions", "rewards", "dones", "weights", "lengths"):
        assert th.equal(getattr(old_batch, name), getattr(batch, name)), name
    # The bootstrap values are recomputed by this model's target network before its next gradient step
    assert buffer.missing_next_values == set(buffer.queue)
    model.train(1, 8)
    assert not buffer.missing_next_values
    live = buffer.all_episodes().weights > 0
    th.testing.assert_close(
        buffer.all_episodes().next_values[live], old_replay_buffer.all_episodes().next_values[live]
    )
    # Training goes on with the loaded buffer, which is not filled again
    fill_episodes = model.num_fill_episodes
    model.learn(10**9, max_episodes=2, reset_num_timesteps=False)
    assert model.num_fill_episodes == fill_episodes and model.num_train_episodes == 5


def test_load_replay_buffer_refuses_other_files(tmp_path):
    model = small_model()
    with open(tmp_path / "other.pkl", "wb") as file:
        pickle.dump({"not": "a buffer"}, file)
    with pytest.raises(TypeError, match="load_replay_buffer needs a file written by DRQN.save_replay_buffer"):
        model.load_replay_buffer(tmp_path / "other.pkl")
    onehot = DRQN("RecurrentQPolicy", tmaze(observation_type="onehot"), buffer_size=256, batch_size=8)
    onehot.save_replay_buffer(tmp_path / "onehot.pkl")
    with pytest.raises(ValueError, match="the replay buffer holds observations of Box"):
        model.load_replay_buffer(tmp_path / "onehot.pkl")


@pytest.mark.filterwarnings("ignore:use_previous_reward=True")
@pytest.mark.parametrize(
    "policy_kwargs", [{}, dict(cell="lstm", net_arch=[16], use_previous_reward=True), dict(dueling=True)]
)
def test_save_load_policy(tmp_path, policy_kwargs):
    """``model.policy.save`` then ``DRQNPolicy.load`` (SB3's ``BasePolicy`` API) rebuilds the same policy."""
    model = small_model(policy_kwargs=policy_kwargs)
    model.learn(10**9, max_episodes=2)
    model.policy.save(tmp_path / "policy.pth")
    policy = DRQNPolicy.load(tmp_path / "policy.pth", device="cpu")
    assert isinstance(policy, DRQNPolicy) and policy.net_kwargs == model.policy.net_kwargs
    state_dict = model.policy.state_dict()
    for key, value in policy.state_dict().items():
        assert th.equal(value, state_dict[key]), key
    assert np.array_equal(policy.exploration_probs, model.policy.exploration_probs)
    observations = np.array([0, 1, 2])
    start = np.ones(3, dtype=bool)
    state, loaded_state = None, None
    for _ in range(4):  # the same greedy actions and states, step after step
        actions, state = model.policy.predict(observations, state, start, deterministic=True)
        loaded_actions, loaded_state = policy.predict(observations, loaded_state, start, deterministic=True)
        assert np.array_equal(actions, loaded_actions)
        np.testing.assert_allclose(state.rnn, loaded_state.rnn)
        start[:] = False


def test_a_model_saved_with_the_former_warmup_argument_loads_with_its_warmup(tmp_path):
    """A model saved when ``warmup=`` held both the switch and the settings keeps its warmup."""
    config = WarmupConfig(steps=2, batch_size=8)
    small_model(use_warmup=True, warmup_config=config).save(tmp_path / "new.zip")
    with zipfile.ZipFile(tmp_path / "new.zip") as source:
        files = {name: source.read(name) for name in source.namelist()}
    data = json.loads(files["data"])
    del data["use_warmup"]
    data["warmup"] = data.pop("warmup_config")  # the former attribute: a WarmupConfig (or True)
    files["data"] = json.dumps(data).encode()
    with zipfile.ZipFile(tmp_path / "old.zip", "w") as target:
        for name, content in files.items():
            target.writestr(name, content)
    loaded = DRQN.load(tmp_path / "old.zip", env=tmaze(), device="cpu")
    assert loaded.use_warmup is True and loaded.warmup_config == config
    assert not hasattr(loaded, "warmup")
    assert DRQN.load(tmp_path / "new.zip", env=tmaze(), device="cpu").warmup_config == config


def _fixture_script():
    """``tests/data/make_drqn_fixture.py`` as a module (its ``q_values`` and ``predicted_actions``)."""
    spec = importlib.util.spec_from_file_location("make_drqn_fixture", DATA / "make_drqn_fixture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_model_saved_before_the_slim_drqn_loads_predicts_the_same_and_trains_on():
    """``tests/data/drqn_tmaze3.zip``, saved by commit 69a8c55 (before episode collection, the TensorBoard
    helpers and the VAA monitoring left ``recurrent_q/drqn.py``; ``tests/data/make_drqn_fixture.py``),
    gives the Q-values and greedy actions recorded beside it, and ``learn`` goes on from it."""
    record = json.loads((DATA / "drqn_tmaze3.json").read_text())
    model = DRQN.load(DATA / "drqn_tmaze3.zip", env=tmaze(record["length"]), device="cpu")
    for name, value in record["settings"].items():
        assert getattr(model, name) == value, name
    assert model.warmup_config == WarmupConfig(**record["warmup_config"])
    assert (model.num_train_episodes, model.num_timesteps) == (
        record["num_train_episodes"],
        record["num_timesteps"],
    )
    assert model.warmup_timestep == record["warmup_timestep"]
    fixture = _fixture_script()  # the same computations as when the record was written
    for episode in record["episodes"]:
        np.testing.assert_allclose(fixture.q_values(model, episode), episode["q_values"], rtol=0, atol=1e-5)
        assert fixture.predicted_actions(model, episode) == episode["predicted_actions"]
    # Training goes on: the buffer (not saved) is filled again, no second warmup, the saved VAA schedule runs
    weights = [p.detach().clone() for p in model.q_net.parameters()]
    model.learn(10**9, max_episodes=2, reset_num_timesteps=False)
    assert model.num_train_episodes == record["num_train_episodes"] + 2 and model.replay_buffer.full
    assert model.warmup_timestep == record["warmup_timestep"]
    assert not all(th.equal(p, q) for p, q in zip(weights, model.q_net.parameters(), strict=True))
    assert "train/vaa" in model.logger.name_to_value  # e = 6, vaa_interval = 2, not yet dumped


def test_continued_run_neither_refills_nor_warms_up_again(tmp_path, monkeypatch):
    model = small_model(use_warmup=True, warmup_config=WarmupConfig(steps=2, batch_size=8))
    model.learn(10**9, max_episodes=2)
    assert model.warmup_timestep >= 256  # the warmup ran after the buffer fill
    warmed_at, fill_episodes, timesteps = model.warmup_timestep, model.num_fill_episodes, model.num_timesteps
    model.save(tmp_path / "drqn.zip")
    model.save_replay_buffer(tmp_path / "buffer.pkl")

    def no_second_warmup(*args, **kwargs):
        raise AssertionError("the warmup ran again on trained weights")

    monkeypatch.setattr(learning_module, "warmup", no_second_warmup)  # where DRQN calls it
    # In memory: a second learn, with or without resetting the step counter
    model.learn(10**9, max_episodes=1, reset_num_timesteps=False)
    model.learn(10**9, max_episodes=1)
    assert model.num_fill_episodes == fill_episodes
    # Loaded, with its replay buffer: training goes on where it stopped
    loaded = DRQN.load(tmp_path / "drqn.zip", env=tmaze(), device="cpu")
    loaded.load_replay_buffer(tmp_path / "buffer.pkl")
    assert loaded.warmup_timestep == warmed_at and loaded.num_timesteps == timesteps
    loaded.learn(10**9, max_episodes=2, reset_num_timesteps=False)
    assert loaded.num_fill_episodes == fill_episodes and loaded.num_train_episodes == 4
    assert timesteps < loaded.num_timesteps <= timesteps + 2 * 9  # two training episodes, no fill
    # Loaded without its replay buffer: the empty buffer is filled again with ℰ, and that is all
    refilled = DRQN.load(tmp_path / "drqn.zip", env=tmaze(), device="cpu")
    weights = [p.detach().clone() for p in refilled.q_net.parameters()]
    refilled.learn(10**9, max_episodes=0, reset_num_timesteps=False)
    assert refilled.replay_buffer.full and refilled.num_fill_episodes > fill_episodes
    assert all(th.equal(p, q) for p, q in zip(weights, refilled.q_net.parameters(), strict=True))
    refilled.learn(10**9, max_episodes=1, reset_num_timesteps=False)
    assert refilled.num_train_episodes == 3


@pytest.mark.parametrize("damage", ["cut", "not a zip", "data not JSON", "missing"])
def test_a_damaged_model_file_is_named(tmp_path, damage):
    import zipfile

    model = DRQN("RecurrentQPolicy", gym.make("TMaze-v0", length=3), buffer_size=64, seed=0)
    good = tmp_path / "model.zip"
    model.save(good)
    path = tmp_path / "damaged.zip"
    if damage == "cut":
        path.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    elif damage == "not a zip":
        path.write_bytes(b"PK\x03\x04 garbage")
    elif damage == "data not JSON":
        with zipfile.ZipFile(good) as source, zipfile.ZipFile(path, "w") as target:
            for name in source.namelist():
                target.writestr(name, b"{not json" if name == "data" else source.read(name))
    if damage == "missing":
        said = re.escape(f"no DRQN model file at {path} (nor at {path}.zip)")
        with pytest.raises(FileNotFoundError, match=said):
            DRQN.load(path)
    else:
        with pytest.raises(ValueError, match=f"{path}.*(not a readable DRQN model|wasn't a zip-file)"):
            DRQN.load(path)


def test_a_cut_replay_buffer_file_is_named(tmp_path):
    model = DRQN("RecurrentQPolicy", gym.make("TMaze-v0", length=3), buffer_size=64, seed=0)
    model.learn(64)
    model.save_replay_buffer(tmp_path / "buffer.pkl")
    cut = tmp_path / "cut.pkl"
    cut.write_bytes((tmp_path / "buffer.pkl").read_bytes()[:200])
    with pytest.raises(ValueError, match=f"{cut} is not a readable replay buffer"):
        model.load_replay_buffer(cut)
