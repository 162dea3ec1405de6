"""Tests of recurrent_q.callbacks (RecurrentPPO warmup, DRQN's VAA monitoring, wall-time limit, greedy
play), of the T-Maze optimality check and of SB3's callbacks with DRQN (CheckpointCallback with the replay
buffer, warmup scalars in TensorBoard)."""

import gymnasium as gym
import numpy as np
import pytest
import torch as th
from sb3_contrib import RecurrentPPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.logger import KVWriter, Logger
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.tmaze import TMazeOptimalCallback, is_tmaze_optimal
from recurrent_q import callbacks as callbacks_module
from recurrent_q.callbacks import (
    VAAMonitorCallback,
    WallTimeLimit,
    WarmupCallback,
    exploration_rollouts,
    play_greedy,
)
from recurrent_q.drqn import DRQN
from recurrent_q.multistability import WarmupConfig, WarmupResult
from tmaze_gym import DOWN, LEFT, OBS_DOWN, OBS_JUNCTION, OBS_UP, RIGHT, UP


class ScriptedAgent:
    """A recurrent 'model' with SB3's predict: the state remembers the first observation."""

    num_timesteps = 0

    def __init__(self, detour: bool = False, memory: bool = True) -> None:
        self.detour, self.memory = detour, memory

    def predict(self, obs, state=None, episode_start=None, deterministic=False):
        first, steps = (int(obs), 0) if episode_start[0] or state is None else state
        if obs == OBS_JUNCTION:
            goal_up = first == OBS_UP if self.memory else True
            action = UP if goal_up else DOWN
        else:
            action = LEFT if self.detour and steps == 1 else RIGHT
        return np.array(action), (first, steps + 1)


@pytest.mark.parametrize("length", [2, 5])
def test_optimality_check(length):
    env = gym.make("TMaze-v0", length=length)
    assert is_tmaze_optimal(ScriptedAgent(), env)
    assert not is_tmaze_optimal(ScriptedAgent(memory=False), env)  # wrong in the down layout
    assert not is_tmaze_optimal(ScriptedAgent(detour=True), env)  # return 4 but not in L + 1 steps


class CountingAgent(ScriptedAgent):
    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.calls = 0

    def predict(self, *args, **kwargs):
        self.calls += 1
        return super().predict(*args, **kwargs)


def test_play_greedy_stops_at_max_steps_and_the_check_at_l_plus_1():
    env = gym.make("TMaze-v0", length=5)
    agent = CountingAgent(detour=True)  # arrives at step L + 3 = 8
    assert play_greedy(agent, env, "up") == (4.0, 8)
    assert play_greedy(agent, env, "up", max_steps=3) == (0.0, 3)
    agent.calls = 0
    assert not is_tmaze_optimal(agent, env)
    assert agent.calls == 6  # the up layout is cut at L + 1 = 6 steps; the down one is not played
    with pytest.raises(ValueError, match="max_steps must be None or an integer >= 1; got 0"):
        play_greedy(agent, env, "up", max_steps=0)


def test_optimal_callback_first_episode_and_held():
    callback = TMazeOptimalCallback(gym.make("TMaze-v0", length=4), check_freq=20)
    recorder = _Recorder()
    callback.model = ScriptedAgent()
    callback.model.logger = recorder
    assert callback.check(0) and callback.first_optimal_episode == 0 and callback.held
    callback.model = ScriptedAgent(memory=False)
    callback.model.logger = recorder
    assert not callback.check(20)
    assert callback.first_optimal_episode == 0 and not callback.held
    assert recorder.values["eval/optimal"] == 0.0 and recorder.values["eval/first_optimal_episode"] == 0


class _Recorder:
    def __init__(self) -> None:
        self.values = {}

    def record(self, key, value, exclude=None):
        self.values[key] = value

    def dump(self, step=0):
        self.dumped = step


def test_exploration_rollouts_follow_the_exploration_policy():
    env = gym.make("TMaze-v0", length=30)
    observations, lengths = exploration_rollouts(env, 3000, np.random.default_rng(0))
    assert lengths.sum() >= 3000 and observations.shape[:2] == (len(lengths), lengths.max())
    assert set(np.unique(lengths)) <= set(range(1, 91))
    # Under ℰ (P(Right) = 1/2) most episodes reach the junction; under a uniform policy few would.
    assert (observations == OBS_JUNCTION).any(1).mean() > 0.5


def recurrent_ppo(length: int = 5) -> RecurrentPPO:
    env = make_vec_env("TMaze-v0", n_envs=2, seed=0, env_kwargs={"length": length})
    return RecurrentPPO(
        "MlpLstmPolicy",
        env,
        n_steps=32,
        batch_size=64,
        n_epochs=1,
        policy_kwargs={"lstm_hidden_size": 16},
        seed=0,
    )


def test_warmup_callback_warms_up_recurrent_ppo_lstms():
    model = recurrent_ppo()
    actor = [p.detach().clone() for p in model.policy.lstm_actor.parameters()]
    critic = [p.detach().clone() for p in model.policy.lstm_critic.parameters()]
    callback = WarmupCallback(WarmupConfig(steps=5, batch_size=32), n_steps=300, seed=0)
    model.learn(64, callback=callback)
    assert set(callback.results) == {"actor", "critic"} and len(callback.results["actor"].loss) == 5
    assert not all(th.equal(p, q) for p, q in zip(actor, model.policy.lstm_actor.parameters(), strict=True))
    assert not all(th.equal(p, q) for p, q in zip(critic, model.policy.lstm_critic.parameters(), strict=True))
    model.learn(64, callback=callback, reset_num_timesteps=False)  # a second learn() does not warm up again
    assert len(callback.results["actor"].loss) == 5


def test_warmup_callback_feeds_the_features_the_lstm_sees(monkeypatch):
    calls = []

    def fake_warmup(module, sequences, config, lengths=None, writer=None):
        calls.append((module, sequences, lengths))
        return WarmupResult(vaa_star=[[0.5]], loss=[0.1], stabilisation=[1])

    monkeypatch.setattr(callbacks_module, "warmup", fake_warmup)
    model = recurrent_ppo()
    model.learn(64, callback=WarmupCallback(n_steps=400, seed=0))
    (actor, x, lengths), (critic, _, _) = calls

    def shares_parameters(view, lstm) -> bool:  # the warmed module is a batch-first view of the LSTM
        return {id(p) for p in view.parameters()} == {id(p) for p in lstm.parameters()}

    assert shares_parameters(actor, model.policy.lstm_actor) and shares_parameters(
        critic, model.policy.lstm_critic
    )
    assert (
        x.shape == (len(lengths), int(lengths.max()), model.policy.features_dim) and int(lengths.sum()) >= 400
    )
    valid = th.arange(x.shape[1])[None] < lengths[:, None]
    assert th.equal(x[valid].sum(-1), th.ones(int(valid.sum())))  # one-hot observations of Discrete(4)
    assert th.equal(x[:, 0].argmax(-1) <= OBS_DOWN, th.ones(len(x), dtype=th.bool))  # o_0 shows the layout


def test_warmup_callback_rejects_non_recurrent_models():
    model = PPO("MlpPolicy", gym.make("TMaze-v0", length=3), n_steps=16, batch_size=16)
    with pytest.raises(TypeError, match="lstm_actor"):
        model.learn(16, callback=WarmupCallback(WarmupConfig(steps=1)))
    with pytest.raises(ValueError, match="n_steps must be an integer >= 1; got 0"):
        WarmupCallback(n_steps=0)


def test_wall_time_limit_stops_training():
    model = PPO("MlpPolicy", gym.make("TMaze-v0", length=3), n_steps=16, batch_size=16)
    callback = WallTimeLimit(1e-6)
    model.learn(10_000, callback=callback)
    assert model.num_timesteps < 10_000


def scalars(log_dir) -> EventAccumulator:
    (run_dir,) = log_dir.iterdir()
    return EventAccumulator(str(run_dir)).Reload()


def test_warmup_callback_logs_actor_and_critic_under_separate_tags(tmp_path):
    model = recurrent_ppo()
    model.tensorboard_log = str(tmp_path)
    model.learn(64, callback=WarmupCallback(WarmupConfig(steps=3, batch_size=16), n_steps=300, seed=0))
    events = scalars(tmp_path)
    tags = set(events.Tags()["scalars"])
    for part in ("actor", "critic"):
        assert {f"warmup/{part}/{name}" for name in ("loss", "vaa_star", "stabilisation")} <= tags
        assert [event.step for event in events.Scalars(f"warmup/{part}/loss")] == [
            1,
            2,
            3,
        ]  # at num_timesteps 0
    assert "warmup/loss" not in tags  # the two warmups do not share (and overwrite) one curve


def drqn(**kwargs) -> DRQN:
    settings = dict(
        buffer_size=256, batch_size=8, gradient_steps=2, vaa_interval=0, vaa_measure_interval=0, seed=0
    )
    return DRQN("RecurrentQPolicy", gym.make("TMaze-v0", length=3), **{**settings, **kwargs})


def test_drqn_warmup_scalars_are_on_the_step_axis_of_the_run(tmp_path):
    model = drqn(
        use_warmup=True, warmup_config=WarmupConfig(steps=3, batch_size=8), tensorboard_log=str(tmp_path)
    )
    model.learn(10**9, max_episodes=2, log_interval=1)
    events = scalars(tmp_path)
    start = model.warmup_timestep
    assert start >= 256  # the warmup ran after the buffer fill...
    for tag in ("warmup/loss", "warmup/vaa_star", "warmup/vaa_star_layer0"):
        assert [event.step for event in events.Scalars(tag)] == [
            start + 1,
            start + 2,
            start + 3,
        ]  # ...and is drawn there
    assert min(event.step for event in events.Scalars("train/loss")) > start


def test_checkpoint_callback_saves_the_replay_buffer(tmp_path):
    """SB3's CheckpointCallback(save_replay_buffer=True) calls DRQN.save_replay_buffer; a run goes on from
    any checkpoint: one during the buffer fill tops the buffer up, a later one trains on at once."""
    model = drqn()
    checkpoint = CheckpointCallback(save_freq=100, save_path=str(tmp_path), save_replay_buffer=True)
    model.learn(10**9, callback=checkpoint, max_episodes=5)  # fill (256 steps), then 5 episodes of <= 9 steps
    for steps in (100, 200, 300):
        assert (tmp_path / f"rl_model_{steps}_steps.zip").exists()
        assert (tmp_path / f"rl_model_replay_buffer_{steps}_steps.pkl").exists()

    def resume(steps: int) -> DRQN:
        loaded = DRQN.load(tmp_path / f"rl_model_{steps}_steps.zip", env=gym.make("TMaze-v0", length=3))
        loaded.load_replay_buffer(tmp_path / f"rl_model_replay_buffer_{steps}_steps.pkl")
        assert loaded.num_timesteps == steps
        return loaded

    after_fill = resume(300)
    assert after_fill.replay_buffer.full
    after_fill.learn(10**9, max_episodes=1, reset_num_timesteps=False)
    assert after_fill.num_fill_episodes == model.num_fill_episodes and after_fill.num_timesteps <= 300 + 9
    during_fill = resume(200)
    saved = len(during_fill.replay_buffer)
    assert 0 < saved < 256
    during_fill.learn(10**9, max_episodes=0, reset_num_timesteps=False)
    assert during_fill.replay_buffer.full and during_fill.num_timesteps >= 200 + 256 - saved


def test_the_tensorboard_helpers_of_recurrent_q_tb_are_still_found_in_callbacks():
    from recurrent_q import tb

    assert callbacks_module.tensorboard_writer is tb.tensorboard_writer
    assert callbacks_module.ScopedWriter is tb.ScopedWriter
    assert tb.tensorboard_writer(Logger(folder=None, output_formats=[])) is None

    class Recorder:
        def __init__(self) -> None:
            self.scalars = []

        def add_scalar(self, tag, value, step):
            self.scalars.append((tag, value, step))

    recorder = Recorder()
    tb.ScopedWriter(recorder, offset=100, scope="actor").add_scalar("warmup/loss", 0.5, 3)
    tb.ScopedWriter(recorder).add_scalar("warmup/loss", 0.25, 4)
    assert recorder.scalars == [("warmup/actor/loss", 0.5, 103), ("warmup/loss", 0.25, 4)]


class Records(KVWriter):
    """An SB3 logger output that keeps every dumped ``(key, value, step)`` of the ``train/vaa*`` keys."""

    def __init__(self) -> None:
        self.rows = []

    def write(self, key_values, key_excluded, step=0):
        self.rows += [(key, value, step) for key, value in key_values.items() if key.startswith("train/vaa")]


def vaa_rows(model: DRQN, **learn) -> list:
    records = Records()
    model.set_logger(Logger(folder=None, output_formats=[records]))
    model.learn(10**9, log_interval=2, **learn)
    return records.rows


VAA = dict(interval=2, steps=20, measure_interval=3, measure_steps=30, batch_size=16)


def test_drqn_vaa_settings_and_a_vaa_monitor_callback_log_the_same():
    """``DRQN(vaa_*=...)`` adds the monitor: the same records, at the same steps, as passing it to ``learn``;
    ``train/vaa`` at e = 0 (after the fill) and every 2 episodes, ``train/vaa_measure`` every 3 (not at 0),
    each dumped with the logs of its episode or the next dump."""
    settings = {f"vaa_{name}": value for name, value in VAA.items()}
    by_settings = vaa_rows(drqn(**settings), max_episodes=6)
    seen = []

    class Seen(VAAMonitorCallback):
        def _on_episode_trained(self) -> None:
            seen.append(self.model.num_train_episodes)
            super()._on_episode_trained()

    model = drqn()
    by_callback = vaa_rows(model, max_episodes=6, callback=[Seen(**VAA)])
    assert by_settings == by_callback and seen == [0, 1, 2, 3, 4, 5, 6]
    # dumped every 2 episodes: e = 0 (after the fill), 2, 4 (with the measure of e = 3), 6 (vaa and measure);
    # each train/vaa with its train/vaa_data (the buffer's inputs held)
    keys = [key.removeprefix("train/") for key, _, _ in by_callback]
    assert keys == ["vaa", "vaa_data"] * 2 + [
        "vaa_measure",
        "vaa",
        "vaa_data",
        "vaa",
        "vaa_data",
        "vaa_measure",
    ]
    steps = [step for _, _, step in by_callback]
    assert 256 <= steps[0] == steps[1] < steps[2] == steps[3] < steps[4] == steps[5] == steps[6]
    assert steps[6] < steps[7] == steps[8] == steps[9] == model.num_timesteps
    assert all(0.0 < value <= 1.0 for _, value, _ in by_callback)


def test_no_vaa_monitor_without_an_interval_and_one_after_the_given_callbacks():
    model = drqn()
    model.set_logger(Logger(folder=None, output_formats=[]))
    assert not isinstance(model._init_callback(None), VAAMonitorCallback)
    model = drqn(vaa_interval=5)
    model.set_logger(Logger(folder=None, output_formats=[]))
    alone = model._init_callback(None)
    assert (
        isinstance(alone, VAAMonitorCallback)
        and alone.interval == 5
        and alone.generator is model._vaa_generator
    )
    limit = WallTimeLimit(60)
    chained = model._init_callback(limit)
    assert chained.callbacks[0] is limit and isinstance(chained.callbacks[1], VAAMonitorCallback)


def test_vaa_monitor_callback_arguments():
    with pytest.raises(ValueError, match="measure_interval must be an integer >= 0"):
        VAAMonitorCallback(measure_interval=-1)
    with pytest.raises(ValueError, match="batch_size must be an integer >= 1"):
        VAAMonitorCallback(batch_size=0)
    with pytest.raises(TypeError, match="VAAMonitorCallback measures the cell stack of a DRQN"):
        PPO("MlpPolicy", "CartPole-v1", n_steps=64, batch_size=32).learn(64, callback=VAAMonitorCallback())
