"""SB3 callbacks: the warmup of sb3-contrib RecurrentPPO's LSTMs, DRQN's VAA monitoring and a time limit;
``play_greedy``, one greedy episode of a model; ``exploration_episodes``, the one loop of episodes of the
exploration policy ℰ (the warmup's here, the T-Maze evaluation's ``experiments.evaluation``).

The T-Maze's "episodes to the optimal policy" check is ``experiments.tmaze.TMazeOptimalCallback``. The
TensorBoard helpers ``tensorboard_writer`` and ``ScopedWriter`` live in ``recurrent_q.tb`` (importable from
here too, where they were first).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList
from stable_baselines3.common.policies import BaseModel
from torch import nn

from recurrent_q.cells import as_stack
from recurrent_q.checks import check_choice, check_integer, check_number
from recurrent_q.multistability import WarmupConfig, WarmupResult, estimate_vaa, warmup
from recurrent_q.policies import RecurrentQState, draw_exploration_actions, exploration_probs
from recurrent_q.tb import ScopedWriter, tensorboard_writer


def env_from_training_env(model: Any) -> gym.Env:
    """A fresh single env made from the id and keyword arguments of the model's (vectorised) training env."""
    spec = model.get_env().get_attr("spec")[0]
    if spec is None:
        raise ValueError("the training env has no spec (not made by gym.make); pass the env explicitly")
    return gym.make(spec.id, **spec.kwargs)


def exploration_episodes(
    env: gym.Env,
    n_steps: int,
    rng: np.random.Generator,
    draw: Callable[[np.random.Generator], int] | None = None,
) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Episodes of the exploration policy ℰ on ``env`` until ``n_steps`` transitions, each reset with a seed
    drawn from ``rng``: per episode, its observations ``[T + 1, *obs_shape]`` (the terminal one included),
    actions ``[T]`` and rewards ``[T]`` (float32).

    :param draw: one action of ℰ drawn from ``rng`` (None: from ``exploration_probs(env)``).
    """
    if draw is None:
        probs = exploration_probs(env)

        def draw(rng: np.random.Generator) -> int:
            return int(draw_exploration_actions(probs, 1, rng)[0])

    episodes, total = [], 0
    while total < n_steps:
        obs, _ = env.reset(seed=int(rng.integers(2**31)))
        observations, actions, rewards, done = [np.asarray(obs)], [], [], False
        while not done:
            action = draw(rng)
            obs, reward, terminated, truncated, _ = env.step(action)
            observations.append(np.asarray(obs))
            actions.append(action)
            rewards.append(reward)
            done = terminated or truncated
        episodes.append((np.stack(observations), np.array(actions), np.array(rewards, dtype=np.float32)))
        total += len(actions)
    return episodes


def right_padded(arrays: list[np.ndarray]) -> np.ndarray:
    """``arrays`` (one dtype, one shape but the first axis) as one array ``[N, longest, ...]``, each
    zero-padded at its end."""
    longest = max(len(array) for array in arrays)
    padded = np.zeros((len(arrays), longest, *arrays[0].shape[1:]), dtype=arrays[0].dtype)
    for i, array in enumerate(arrays):
        padded[i, : len(array)] = array
    return padded


def exploration_rollouts(
    env: gym.Env, n_steps: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Episodes of the exploration policy until ``n_steps`` transitions: the observations each action saw.

    :return: right-padded observations ``[N, T, *obs_shape]`` and lengths ``[N]``.
    """
    episodes = exploration_episodes(env, n_steps, rng)
    return right_padded([observations[:-1] for observations, _, _ in episodes]), np.array(
        [len(actions) for _, actions, _ in episodes]
    )


class WarmupCallback(BaseCallback):
    """Warm up the LSTM(s) of sb3-contrib's ``RecurrentPPO`` before training (§6.1), as DRQN's ``warmup``.

    At the start of the first ``learn``, it rolls out the exploration policy ℰ
    (``env.unwrapped.exploration_probs``, else uniform) for ``n_steps`` transitions, passes the
    observations through the policy's features extractor (what the LSTM sees), and warms up
    ``policy.lstm_actor`` on these sequences, and ``policy.lstm_critic`` (on the critic's features)
    if the critic has its own LSTM. Each warmup logs under its own tags, ``warmup/actor/*`` and
    ``warmup/critic/*`` (``vaa_star`` at the end; with TensorBoard, every warmup step ``s`` at the
    model's step ``num_timesteps + s``: ``loss``, ``vaa_star``, ``vaa_star_layer{i}``, ``spread``,
    ``stabilisation``).

    :param config: warmup settings (docs/specification.md §5 defaults if None).
    :param n_steps: transitions of ℰ to collect (the DRQN buffer size by default).
    :param env: env for the rollouts (a fresh copy of the training env if None).
    :param seed: seed of the rollouts.
    :param verbose: 0 silent, 1 prints the final VAA*.
    """

    def __init__(
        self,
        config: WarmupConfig | None = None,
        n_steps: int = 8192,
        env: gym.Env | None = None,
        seed: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose)
        check_integer("n_steps", n_steps)
        self.config = WarmupConfig() if config is None else config
        self.n_steps = n_steps
        self.env = env
        self.seed = seed
        self.results: dict[str, WarmupResult] = {}

    def _on_training_start(self) -> None:
        if self.results:
            return  # warm up once, not at every learn()
        policy = self.model.policy
        if not isinstance(getattr(policy, "lstm_actor", None), nn.LSTM):
            raise TypeError(
                f"WarmupCallback needs a policy with an nn.LSTM `lstm_actor` (sb3-contrib RecurrentPPO); "
                f"got {type(policy).__name__} (for DRQN use DRQN(..., use_warmup=True))"
            )
        env = self.env if self.env is not None else env_from_training_env(self.model)
        observations, lengths = exploration_rollouts(env, self.n_steps, np.random.default_rng(self.seed))
        n, t = observations.shape[:2]
        obs = th.as_tensor(observations.reshape(n * t, *observations.shape[2:]), device=policy.device)
        lengths_t = th.as_tensor(lengths)
        modules = [("actor", policy.lstm_actor, policy.pi_features_extractor)]
        if policy.lstm_critic is not None:
            modules.append(("critic", policy.lstm_critic, policy.vf_features_extractor))
        writer = tensorboard_writer(self.logger)
        for name, lstm, extractor in modules:
            with th.no_grad():
                features = BaseModel.extract_features(policy, obs, extractor).reshape(n, t, -1)
            scoped = None if writer is None else ScopedWriter(writer, self.model.num_timesteps, name)
            # A batch-first view sharing the LSTM's parameters: the features are [N, T, F], while
            # sb3-contrib's LSTMs are built with batch_first=False.
            view = as_stack(lstm)
            self.results[name] = warmup(view, features, self.config, lengths=lengths_t, writer=scoped)
            vaa_star = float(np.mean(self.results[name].vaa_star[-1]))
            self.logger.record(f"warmup/{name}/vaa_star", vaa_star)
            if self.verbose:
                print(f"warmup of lstm_{name}: VAA* = {vaa_star:.3f}")

    def _on_step(self) -> bool:
        return True


def notify_episode_trained(callback: BaseCallback) -> None:
    """Call ``on_episode_trained()`` of ``callback`` and of the callbacks it chains (``CallbackList``), where
    they have one: DRQN's event after the gradient steps of a training episode (see
    :class:`VAAMonitorCallback`)."""
    if isinstance(callback, CallbackList):
        for child in callback.callbacks:
            notify_episode_trained(child)
    elif hasattr(callback, "on_episode_trained"):
        callback.on_episode_trained()


class VAAMonitorCallback(BaseCallback):
    """Log the VAA of DRQN's cell stack on the histories of its replay buffer (:func:`estimate_vaa`).

    ``train/vaa``, an estimate with ``M = steps``, every ``interval`` training episodes, and
    ``train/vaa_measure`` (``M = measure_steps``, the paper's 10 000) every ``measure_interval``, both with
    the paper's held input ``u ~ N(0, 1)``; with ``data_input``, also ``train/vaa_data``, the estimate of
    ``train/vaa`` with inputs of the buffer held instead (``held_input="data"`` of :func:`estimate_vaa`: the
    attractors of the task's own inputs, for the T-Maze mostly the corridor's). Each on
    batches of ``batch_size`` histories (``|X|``: the floor of the VAA is ``1 / batch_size``). The
    estimates run on DRQN's event ``on_episode_trained``: after the gradient steps of training episode
    ``e`` (before ``learn`` dumps its logs), and once at ``e = 0``, after the buffer fill and the warmup
    (``train/vaa`` only: the network training starts from).

    ``DRQN(vaa_interval=..., vaa_steps=..., vaa_measure_interval=..., vaa_measure_steps=...,
    vaa_batch_size=...)`` adds one to the callbacks of each ``learn`` (when an interval is not 0), drawing
    on the model's generator so that a continued run draws on; pass one to ``learn`` yourself with both
    intervals of the model set to 0.

    :param interval: training episodes between ``train/vaa`` estimates (0: never).
    :param steps: ``M`` of ``train/vaa``.
    :param measure_interval: training episodes between ``train/vaa_measure`` estimates (0: never).
    :param measure_steps: ``M`` of ``train/vaa_measure``.
    :param batch_size: histories per batch ``|X|`` (at most the episodes in the buffer).
    :param data_input: also log ``train/vaa_data`` whenever ``train/vaa`` is logged.
    :param generator: the random draws of the estimates (None: a generator seeded with the model's seed,
        0 if it has none, made at the first ``learn`` and kept across ``learn`` calls).
    :param verbose: 0 silent, 1 prints each estimate.
    """

    def __init__(
        self,
        interval: int = 20,
        steps: int = 200,
        measure_interval: int = 200,
        measure_steps: int = 10_000,
        batch_size: int = 200,
        generator: th.Generator | None = None,
        verbose: int = 0,
        data_input: bool = True,
    ) -> None:
        super().__init__(verbose)
        for name, value, minimum in (
            ("interval", interval, 0),
            ("steps", steps, 0),
            ("measure_interval", measure_interval, 0),
            ("measure_steps", measure_steps, 0),
            ("batch_size", batch_size, 1),
        ):
            check_integer(name, value, minimum)
        self.interval = interval
        self.steps = steps
        self.measure_interval = measure_interval
        self.measure_steps = measure_steps
        self.batch_size = batch_size
        self.generator = generator
        self.data_input = data_input

    def _init_callback(self) -> None:
        if not hasattr(self.model, "replay_histories"):
            raise TypeError(
                "VAAMonitorCallback measures the cell stack of a DRQN on its replay buffer; "
                f"got {type(self.model).__name__}"
            )
        if self.generator is None:
            seed = self.model.seed
            self.generator = th.Generator().manual_seed(0 if seed is None else int(seed))

    def on_episode_trained(self) -> None:
        """Log the estimates due after ``model.num_train_episodes`` training episodes."""
        self._on_episode_trained()

    def _on_episode_trained(self) -> None:
        e = self.model.num_train_episodes
        todo = []
        if self.interval and e % self.interval == 0:
            todo.append(("train/vaa", self.steps, "gaussian"))
            if self.data_input:
                todo.append(("train/vaa_data", self.steps, "data"))
        if e > 0 and self.measure_interval and e % self.measure_interval == 0:
            todo.append(("train/vaa_measure", self.measure_steps, "gaussian"))
        if not todo:
            return
        x, lengths = self.model.replay_histories()
        for key, steps, held_input in todo:
            value = estimate_vaa(
                self.model.q_net.rnn,
                x,
                steps=steps,
                batch_size=min(self.batch_size, len(x)),
                lengths=lengths,
                generator=self.generator,
                held_input=held_input,
            )
            self.logger.record(key, value)
            if self.verbose:
                print(f"episode {e}: {key} = {value:.3f}")

    def _on_step(self) -> bool:
        return True


def play_greedy(
    model: Any, env: gym.Env, layout: str | None = None, max_steps: int | None = None
) -> tuple[float, int]:
    """One episode of ``model``'s greedy policy (``predict(..., deterministic=True)`` with its state).

    With a DRQN that feeds the previous reward, ``r_{t-1}`` is passed on in its state (its ``predict``
    cannot see the env's rewards).

    :param layout: T-Maze layout to force (``reset(options={"layout": ...})``), None for a random one.
    :param max_steps: stop after this many steps even if the episode goes on (None: play it out).
    :return: undiscounted return and number of steps.
    """
    check_integer("max_steps", max_steps, optional=True)
    obs, _ = env.reset(options=None if layout is None else {"layout": layout})
    state, start, total, steps = None, True, 0.0, 0
    while True:
        with warnings.catch_warnings():  # the warning that predict cannot see rewards: they are passed here
            warnings.filterwarnings("ignore", message="use_previous_reward=True")
            action, state = model.predict(
                obs, state=state, episode_start=np.array([start]), deterministic=True
            )
        obs, reward, terminated, truncated, _ = env.step(int(action))
        if isinstance(state, RecurrentQState):
            state = state._replace(previous_reward=np.full(1, reward, dtype=np.float32))
        start = False
        total += float(reward)
        steps += 1
        if terminated or truncated or steps == max_steps:
            return total, steps


CLOCKS = {"wall": time.perf_counter, "process": time.process_time}


class WallTimeLimit(BaseCallback):
    """Stop training after ``max_seconds`` (from the start of ``learn``).

    :param max_seconds: the budget in seconds.
    :param clock: ``"wall"`` (wall time) or ``"process"`` (CPU time of this process: with one torch
        thread, about the wall time the run would take alone on the machine; for loaded machines).
    """

    def __init__(self, max_seconds: float, clock: str = "wall") -> None:
        super().__init__()
        check_number("max_seconds", max_seconds, 0, open_low=True)
        check_choice("clock", clock, CLOCKS)
        self.max_seconds = max_seconds
        self.clock = CLOCKS[clock]
        self.deadline = float("inf")

    def _on_training_start(self) -> None:
        self.deadline = self.clock() + self.max_seconds

    def _on_step(self) -> bool:
        return self.clock() < self.deadline
