"""The runner of the ``memory-suites`` experiment (issue 22 item 2): one run trains DRQN (with or without
warmup) or sb3-contrib's ``RecurrentPPO`` (with or without :class:`recurrent_q.WarmupCallback`) on one POPGym
or MiniGrid memory task for a budget of env steps, and reports

* ``mmer``: POPGym's MMER, the maximum over training of the mean episodic return, here of the training
  episodes grouped by the env step at which they end into ``mmer_bins`` equal spans of the budget (POPGym
  takes the max over RLlib's training iterations of ``episode_reward_mean``). POPGym's rewards are already
  normalised (an episode's return lies in [-1, 1]); MiniGrid's lie in [0, 1];
* ``final_return`` (± ``final_return_std``): the mean return of ``eval_episodes`` deterministic episodes of
  the trained policy on a separately seeded env (SB3's ``evaluate_policy``, which carries the recurrent
  state);
* ``curve``: the mean training return of each span (``curve_steps``: the span's end), the env steps done,
  the training episodes, the wall and CPU time.

Runs are seeded (Python, NumPy, torch, the training and evaluation envs). The suites are optional
(``pip install ".[memory-suites]"``); without them a run raises a ``ValueError`` that says so. TensorBoard
(the run directory): SB3's logger tags of each algorithm (``rollout/ep_rew_mean``, ``train/*``, ``warmup/*``
for DRQN, ``warmup/actor/*`` and ``warmup/critic/*`` for ``WarmupCallback``), ``memory/train_return``
(the mean training return of each span, at its last step) and ``memory/mmer``, ``memory/final_return`` at
the end.
"""

from __future__ import annotations

import importlib
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from stable_baselines3.common.torch_layers import FlattenExtractor

from experiments.memory_presets import MEMORY_METHODS, MEMORY_TASKS
from recurrent_q.tb import tensorboard_writer

EXTRA = 'pip install ".[memory-suites]"'


def require_suite(task: str) -> str:
    """The gymnasium id of ``task`` (:data:`MEMORY_TASKS`), once its suite's package is imported (which
    registers its envs).

    :raises ValueError: an unknown task (the known ones named), or its package is not installed.
    """
    if task not in MEMORY_TASKS:
        raise ValueError(f"task must be one of {', '.join(map(repr, MEMORY_TASKS))}; got {task!r}")
    suite = MEMORY_TASKS[task]["suite"]
    try:
        importlib.import_module(suite)
    except ImportError as error:
        raise ValueError(
            f"the task {task!r} needs the package {suite!r}, which is not installed: {EXTRA} "
            f"(the extra memory-suites installs popgym and minigrid)"
        ) from error
    return MEMORY_TASKS[task]["env_id"]


class TupleToMultiDiscrete(gym.ObservationWrapper):
    """A ``Tuple`` of ``Discrete`` observations (POPGym's Autoencode) as one ``MultiDiscrete``: the same
    one-hots for DRQN, and a space SB3's ``RecurrentPPO`` takes (it takes no ``Tuple``)."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        parts = env.observation_space.spaces
        self.starts = np.array([part.start for part in parts], dtype=np.int64)
        self.observation_space = spaces.MultiDiscrete([part.n for part in parts])

    def observation(self, observation: tuple) -> np.ndarray:
        return np.asarray(observation, dtype=np.int64) - self.starts


class ChannelFirst(gym.ObservationWrapper):
    """An image ``[H, W, C]`` as ``[C, H, W]``: SB3's layout, so that ``WarmupCallback``'s rollouts (taken
    from a copy of this env) and the training env show the CNN the same layout."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        space = env.observation_space
        self.observation_space = spaces.Box(
            np.transpose(space.low, (2, 0, 1)), np.transpose(space.high, (2, 0, 1)), dtype=space.dtype
        )

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(np.transpose(observation, (2, 0, 1)))


class EpisodeLog(gym.Wrapper):
    """Records the return of each finished episode and the env steps (of this env) at its end."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.returns: list[float] = []
        self.end_steps: list[int] = []
        self.steps = 0
        self._return = 0.0

    def reset(self, **kwargs: Any):
        self._return = 0.0
        return self.env.reset(**kwargs)

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        self.steps += 1
        self._return += float(reward)
        if terminated or truncated:
            self.returns.append(self._return)
            self.end_steps.append(self.steps)
            self._return = 0.0
        return obs, reward, terminated, truncated, info


class IntFlattenExtractor(FlattenExtractor):
    """SB3's ``FlattenExtractor`` with an ``int`` features dimension (SB3 sums a ``MultiDiscrete``'s sizes
    into a NumPy integer, which sb3-contrib's ``nn.LSTM`` refuses as its input size)."""

    def __init__(self, observation_space: spaces.Space) -> None:
        super().__init__(observation_space)
        self._features_dim = int(self._features_dim)


def make_memory_env(task: str) -> gym.Env:
    """The env of ``task`` as every method sees it: POPGym's as registered (a ``Tuple`` observation as a
    ``MultiDiscrete``); MiniGrid's image alone (``ImgObsWrapper``: its text ``mission`` dropped),
    channel-first."""
    env = gym.make(require_suite(task))
    if MEMORY_TASKS[task]["suite"] == "minigrid":
        from minigrid.wrappers import ImgObsWrapper

        env = ChannelFirst(ImgObsWrapper(env))
    if isinstance(env.observation_space, spaces.Tuple):
        env = TupleToMultiDiscrete(env)
    return env


def mmer(returns: list[float], end_steps: list[int], budget: int, bins: int) -> tuple[float, list, list]:
    """POPGym's MMER of the training episodes: the max over ``bins`` equal spans of the ``budget`` of env
    steps of the mean return of the episodes that end in the span (empty spans skipped). Returns the MMER
    (NaN if no episode ended), the mean of each span (None if empty) and each span's last step."""
    edges = np.linspace(0, budget, bins + 1)
    index = np.clip(np.searchsorted(edges, end_steps, side="left") - 1, 0, bins - 1)
    means: list[float | None] = []
    for b in range(bins):
        values = [r for r, i in zip(returns, index, strict=True) if i == b]
        means.append(float(np.mean(values)) if values else None)
    finite = [m for m in means if m is not None]
    return (max(finite) if finite else float("nan")), means, [int(e) for e in edges[1:]]


def _drqn(task: str, method: str, env: gym.Env, s: dict[str, Any], seed: int, logdir: Path | None):
    from recurrent_q.drqn import DRQN
    from recurrent_q.multistability import WarmupConfig

    use_warmup = method == "drqn-warmup"
    return DRQN(
        "RecurrentQPolicy",
        env,
        buffer_size=s["buffer_size"],
        batch_size=s["batch_size"],
        gradient_steps=s["gradient_steps"],
        target_update_interval=s["target_update_interval"],
        learning_rate=s["learning_rate"],
        gamma=s["gamma"],
        exploration_initial_eps=s["exploration_initial_eps"],
        exploration_final_eps=s["exploration_final_eps"],
        exploration_fraction=s["exploration_fraction"],
        n_steps=s["n_steps"],
        n_step_correction=s["n_step_correction"],
        use_warmup=use_warmup,
        warmup_config=WarmupConfig(steps=s["warmup_steps"], seed=seed) if use_warmup else None,
        vaa_interval=0,
        vaa_measure_interval=0,
        policy_kwargs=dict(cell=s["cell"], hidden_size=s["hidden_size"], num_layers=s["num_layers"]),
        tensorboard_log=None if logdir is None else str(logdir),
        seed=seed,
        device="cpu",
    )


def _rppo(task: str, method: str, envs: list[gym.Env], s: dict[str, Any], seed: int, logdir: Path | None):
    from sb3_contrib import RecurrentPPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from recurrent_q.observations import SmallCNN

    vec_env = DummyVecEnv([lambda env=env: env for env in envs])
    policy_kwargs: dict[str, Any] = {
        "lstm_hidden_size": s["lstm_hidden_size"],
        "features_extractor_class": IntFlattenExtractor,
    }
    policy = "MlpLstmPolicy"
    if len(envs[0].observation_space.shape) == 3:  # MiniGrid's 7 x 7 view: too small for NatureCNN
        policy = "CnnLstmPolicy"
        policy_kwargs["features_extractor_class"] = SmallCNN
    return RecurrentPPO(
        policy,
        vec_env,
        n_steps=s["n_steps"],
        batch_size=s["batch_size"],
        n_epochs=s["n_epochs"],
        learning_rate=s["learning_rate"],
        gamma=s["gamma"],
        ent_coef=s["ent_coef"],
        policy_kwargs=policy_kwargs,
        tensorboard_log=None if logdir is None else str(logdir),
        seed=seed,
        device="cpu",
    )


def run_memory_suite(
    task: str,
    method: str,
    seed: int,
    timesteps: int,
    mmer_bins: int,
    eval_episodes: int,
    settings: dict[str, Any],
    logdir: str | Path | None = None,
) -> dict[str, Any]:
    """Train ``method`` (:data:`MEMORY_METHODS`) on ``task`` (:data:`MEMORY_TASKS`) for ``timesteps`` env
    steps with ``seed``; the metrics of the module's docstring.

    :param settings: the method family's settings (:data:`experiments.memory_presets.DRQN_SETTINGS` or
        ``RPPO_SETTINGS``).
    :param logdir: TensorBoard folder (None: none written).
    """
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.utils import set_random_seed

    if method not in MEMORY_METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, MEMORY_METHODS))}; got {method!r}")
    require_suite(task)
    start, cpu_start = time.perf_counter(), time.process_time()
    set_random_seed(seed)  # Python, NumPy, torch (SB3 seeds them again, and the envs, from `seed`)
    callback = None
    if method.startswith("drqn"):
        logs = [EpisodeLog(make_memory_env(task))]
        logs[0].action_space.seed(seed)
        model = _drqn(task, method, logs[0], settings, seed, None if logdir is None else Path(logdir))
    else:
        from recurrent_q.callbacks import WarmupCallback
        from recurrent_q.multistability import WarmupConfig

        logs = [EpisodeLog(make_memory_env(task)) for _ in range(settings["n_envs"])]
        model = _rppo(task, method, logs, settings, seed, None if logdir is None else Path(logdir))
        if method == "rppo-warmup":
            callback = WarmupCallback(
                WarmupConfig(steps=settings["warmup_steps"], seed=seed),
                n_steps=settings["warmup_transitions"],
                env=make_memory_env(task),
                seed=seed,
            )
    model.learn(timesteps, callback=callback, tb_log_name="run")
    # the episodes of every env, at the global step where they ended (the envs are stepped together)
    n_envs = len(logs)
    returns = [r for log in logs for r in log.returns]
    end_steps = [step * n_envs for log in logs for step in log.end_steps]
    order = np.argsort(end_steps, kind="stable")
    returns, end_steps = [returns[i] for i in order], [end_steps[i] for i in order]
    best, means, edges = mmer(returns, end_steps, timesteps, mmer_bins)
    eval_env = Monitor(make_memory_env(task))
    eval_env.reset(seed=10_000 + seed)
    eval_returns, _ = evaluate_policy(
        model, eval_env, n_eval_episodes=eval_episodes, deterministic=True, return_episode_rewards=True
    )
    final, final_std = float(np.mean(eval_returns)), float(np.std(eval_returns))
    writer = tensorboard_writer(model.logger)
    if writer is not None:
        for mean, step in zip(means, edges, strict=True):
            if mean is not None:
                writer.add_scalar("memory/train_return", mean, step)
        writer.add_scalar("memory/mmer", best, model.num_timesteps)
        writer.add_scalar("memory/final_return", final, model.num_timesteps)
        writer.flush()
    return {
        "task": task,
        "env_id": MEMORY_TASKS[task]["env_id"],
        "method": method,
        "seed": seed,
        "mmer": best,
        "final_return": final,
        "final_return_std": final_std,
        "eval_episodes": eval_episodes,
        "curve": means,
        "curve_steps": edges,
        "timesteps": int(model.num_timesteps),
        "budget": timesteps,
        "train_episodes": len(returns),
        "wall_time_s": time.perf_counter() - start,
        "cpu_time_s": time.process_time() - cpu_start,
    }


def run_memory(config: dict[str, Any], run_dir: Path, resume: bool) -> dict[str, Any]:
    """The grid's runner (kind ``memory``): :func:`run_memory_suite` of ``config``, TensorBoard in
    ``run_dir``. A run has no checkpoint: an interrupted one starts again (``resume`` is ignored)."""
    return run_memory_suite(**config, logdir=run_dir)


__all__ = [
    "ChannelFirst",
    "EpisodeLog",
    "IntFlattenExtractor",
    "TupleToMultiDiscrete",
    "make_memory_env",
    "mmer",
    "require_suite",
    "run_memory",
    "run_memory_suite",
]
