"""The T-Maze experiment (Fig. 13): one run of DRQN on ``TMaze-v0`` from one set of settings
(:class:`TMazeConfig`, defined in :mod:`experiments.tmaze_config` and importable from here), and the
optimality check that measures the episodes to the optimal policy (:class:`TMazeOptimalCallback`).
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import gymnasium as gym
import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.monitor import Monitor
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import DummyVecEnv

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.evaluation import (
    TMAZE_OPTIMAL_RETURN,
    authors_horizon,
    default_gamma,
    is_tmaze_optimal,
    maze_layouts,
    optimal_path_margins,
    start_q_values,
)
from experiments.tmaze_config import TMAZE_VERSIONS, TMazeConfig, default_train_mode, with_settings
from recurrent_q.arguments import check_arguments
from recurrent_q.callbacks import WallTimeLimit, env_from_training_env
from recurrent_q.cells import check_device
from recurrent_q.checks import check_choice, check_integer
from recurrent_q.drqn import DRQN
from recurrent_q.multistability import WarmupConfig
from recurrent_q.schedules import HeldLinearSchedule
from recurrent_q.tb import tensorboard_writer, write_hyperparameters
from tmaze_gym.tmaze import LAYOUTS, RIGHT


def run_tmaze_experiment(config: TMazeConfig | None = None, /, **settings: Any) -> dict[str, Any]:
    """Train DRQN on the maze ``env_id`` (``TMaze-v0``: the paper's) of corridor ``length``; report the
    episodes to the optimal policy (Fig. 13).

    :param config: the settings (:class:`TMazeConfig`); keyword arguments set or override its fields
        (``run_tmaze_experiment(length=50, seed=1)``).
    :return: ``first_optimal_episode`` (None if never), ``optimal_at_end``, ``held``, ``episodes``,
        ``fill_episodes``, ``wall_time_s`` and ``cpu_time_s`` (construction to end), ``time_to_optimal_s``
        and ``cpu_time_to_optimal_s`` (from the start of ``learn``: fill, warmup, training and checks),
        ``timesteps_to_optimal``, ``optimal_checks`` and the run's labels (with the ``gamma`` and
        ``train_mode`` used: :func:`resolved_config`).
    """
    c = resolved_config(with_settings(config, settings))
    start, cpu_start = time.perf_counter(), time.process_time()
    model = make_tmaze_drqn(c)
    if c.logdir is not None:
        from stable_baselines3.common.logger import configure

        model.set_logger(configure(c.logdir, ["tensorboard"]))
        write_hyperparameters(
            tensorboard_writer(model.logger),
            dataclasses.asdict(c),
        )
    optimal = TMazeOptimalCallback(
        make_maze(c),
        c.check_freq,
        c.stop_when_optimal,
        best_model_save_path=c.best_model_save_path,
        give_up_after=c.give_up_after,
        end_rate_hold=c.learning_rate_decay_on_optimal,
        after_optimal=after_optimal_settings(c),
    )
    callbacks: list[BaseCallback] = [optimal]
    if c.max_seconds is not None:
        callbacks.append(WallTimeLimit(c.max_seconds, c.clock))
    model.learn(10**12, callback=callbacks, max_episodes=c.episodes, progress_bar=c.progress_bar)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if c.save_path is not None:
        model.save(c.save_path)
    held = optimal.held if optimal.first_optimal_episode is not None else None
    return {
        "length": c.length,
        **(
            {"env_id": c.env_id, "cue_position": optimal.eval_env.unwrapped.cue_position}
            if c.env_id != "TMaze-v0"
            else {}
        ),
        "cell": c.cell,
        "version": c.version,
        "seed": c.seed,
        "train_mode": c.train_mode,
        "history_window": c.history_window,
        "burn_in": c.burn_in,
        "n_envs": c.n_envs,
        "dueling": c.dueling,
        "gamma": c.gamma,
        "first_optimal_episode": optimal.first_optimal_episode,
        "optimal_at_end": is_tmaze_optimal(model, make_maze(c)),
        "held": held,
        "episodes": model.num_train_episodes,
        "fill_episodes": model.num_fill_episodes,
        "wall_time_s": wall,
        "cpu_time_s": cpu,
        "time_to_optimal_s": optimal.first_optimal_time,
        "cpu_time_to_optimal_s": optimal.first_optimal_cpu_time,
        "timesteps_to_optimal": optimal.first_optimal_timesteps,
        "optimal_checks": [episode for episode, ok in optimal.checks if ok],
    }


def after_optimal_settings(config: TMazeConfig) -> dict[str, Any]:
    """The model's settings that ``config`` changes at the first optimal check (the ``*_after_optimal``
    fields that are set), for :class:`TMazeOptimalCallback`'s ``after_optimal``."""
    pairs = {
        "gradient_steps": config.gradient_steps_after_optimal,
        "hold_coef": config.hold_coef_after_optimal,
    }
    return {name: value for name, value in pairs.items() if value is not None}


def resolved_config(config: TMazeConfig) -> TMazeConfig:
    """``config`` with the length's defaults in place of None, as the runner trains with them: ``gamma``
    (:func:`experiments.evaluation.default_gamma`) and ``train_mode``
    (:func:`experiments.tmaze_config.default_train_mode`; ``"sequences"`` with a ``burn_in``, which trains the
    windows' steps after it)."""
    train_mode = config.train_mode
    if train_mode is None:  # a burn-in (the windows' first steps untrained) needs the windows' every step
        train_mode = "sequences" if config.burn_in else default_train_mode(config.length)
    gamma = default_gamma(config.length) if config.gamma is None else config.gamma
    return dataclasses.replace(config, gamma=gamma, train_mode=train_mode)


def make_tmaze_drqn(config: TMazeConfig | None = None, /, **settings: Any) -> DRQN:
    """The runner's DRQN on its maze (``TMaze-v0`` by default; horizon 3L − 1), untrained: for
    ``model.learn`` by hand.

    The runner's schedules (ε, learning rate) run over ``learn(..., max_episodes=config.episodes)``; with
    ``learn(total_timesteps=N)`` alone they run over the ``N`` env steps, the buffer fill included.

    :param config: the settings (:class:`TMazeConfig`); keyword arguments set or override its fields.
    """
    c = resolved_config(with_settings(config, settings))
    check_device(c.device)
    warmup_config = None  # classic and double-classic: no warmup
    if c.version in ("warmup", "double"):
        overrides = {
            "steps": c.warmup_steps,
            "batch_size": c.warmup_batch_size,
            "held_input": c.warmup_held_input,
            "objective": c.warmup_objective,
            "max_stabilisation": c.warmup_max_stabilisation,
            "c": c.warmup_c,
            "bptt_steps": c.warmup_bptt_steps,
        }
        warmup_config = WarmupConfig(**{key: value for key, value in overrides.items() if value is not None})
    horizon = authors_horizon(c.length) if c.max_episode_steps is None else c.max_episode_steps
    final_eps = c.exploration_rate if c.exploration_final_rate is None else c.exploration_final_rate
    learning_rate: float | LinearSchedule | HeldLinearSchedule = c.learning_rate
    if c.learning_rate_final is not None and c.learning_rate_hold_fraction > 0:
        learning_rate = HeldLinearSchedule(
            c.learning_rate, c.learning_rate_final, c.learning_rate_hold_fraction
        )
    elif c.learning_rate_final is not None:  # over the episode budget (DRQN.learn's max_episodes)
        learning_rate = LinearSchedule(c.learning_rate, c.learning_rate_final, 1.0)
    env: gym.Env | DummyVecEnv = make_maze(c, max_episode_steps=horizon)
    if c.n_envs > 1:  # SB3's wrapping of one env, n times
        env = DummyVecEnv([lambda: Monitor(make_maze(c, max_episode_steps=horizon))] * c.n_envs)
    return DRQN(
        "RecurrentQPolicy",
        env,
        buffer_size=c.buffer_size,
        batch_size=c.batch_size,
        gradient_steps=c.gradient_steps,
        target_update_interval=c.target_update_interval,
        tau=c.tau,
        average_tau=c.average_tau,
        average_collects=c.average_collects,
        fixed_point_coef=c.fixed_point_coef,
        hold_coef=c.hold_coef,
        hold_steps=c.hold_steps,
        hold_advantages=c.hold_advantages,
        hold_ends=c.hold_ends,
        hold_drift_coef=c.hold_drift_coef,
        train_mode=c.train_mode,
        history_window=c.history_window,
        burn_in=c.burn_in,
        loss=c.loss,
        double_q=c.double_q,
        advantage_learning=c.advantage_learning,
        max_grad_norm=c.max_grad_norm,
        gamma=c.gamma,
        n_steps=c.n_steps,
        n_step_correction=c.n_step_correction,
        exploration_initial_eps=c.exploration_rate,
        exploration_final_eps=final_eps,
        exploration_fraction=c.exploration_fraction,
        learning_rate=learning_rate,
        use_warmup=warmup_config is not None,
        warmup_config=warmup_config,
        vaa_interval=c.vaa_interval,
        vaa_measure_interval=c.vaa_measure_interval,
        policy_kwargs=dict(
            cell=c.cell,
            hidden_size=c.hidden_size,
            num_layers=c.num_layers,
            double=c.version.startswith("double"),
            use_previous_reward=c.use_previous_reward,
            init=c.init,
            dueling=c.dueling,
        ),
        seed=c.seed,
        device=c.device,
    )


def make_maze(config: TMazeConfig, length: int | None = None, **kwargs: Any) -> gym.Env:
    """The maze of ``config`` (its ``env_id``, ``length`` unless given, ``cue_position``), made by
    ``gym.make`` with ``kwargs``. At another ``length`` than the training one, the second cue of
    ``XORTMaze-v0`` stays where it was in training (``cue_position``, or the middle of the training
    corridor): the XOR of the two cues is then held over the longer rest of the corridor."""
    if config.env_id == "XORTMaze-v0":
        cue = config.cue_position
        if cue is None and length is not None and length != config.length:
            cue = gym.make(config.env_id, length=config.length).unwrapped.cue_position
        kwargs["cue_position"] = cue
    return gym.make(config.env_id, length=config.length if length is None else length, **kwargs)


AFTER_OPTIMAL = ("gradient_steps", "hold_coef", "hold_drift_coef")
"""The model settings :class:`TMazeOptimalCallback` changes at the first optimal check (``after_optimal``)."""


class TMazeOptimalCallback(BaseCallback):
    """Episodes to optimal policy (Fig. 13): every ``check_freq`` episodes, is the greedy policy optimal?

    Logs ``eval/optimal`` (0/1) and, once reached, ``eval/first_optimal_episode``; with DRQN also the
    Q-values of the first step (:func:`experiments.evaluation.start_q_values`): ``eval/start_value``
    (max_a Q, the lower of the two layouts; the optimal policy's is 4 γ^L) and ``eval/start_margin``
    (Q(Right) − max of the other actions, the lower of the two layouts; > 0 when the greedy policy
    steps into the corridor), the evidence of whether the goal's value reaches the start; and the
    smallest margins along the optimal episode (:func:`experiments.evaluation.optimal_path_margins`):
    ``eval/corridor_margin`` (the ``L`` corridor steps) and ``eval/junction_margin`` (the turn), both > 0
    exactly when the greedy policy is optimal, and ``eval/corridor_margin_step``, the corridor step of the
    smallest (0 at the cue: is a policy wrong just after the cue, in the state's transient, or further
    on?); the optimal Q-function's are about 0.06 and 0.16 at L = 50
    (:func:`experiments.evaluation.optimal_margins`), so values near 0 mean a policy about to be lost or
    won, and which decision decides it. With DRQN the
    check runs before training episode ``e`` (the policy after ``e`` episodes, the buffer fill not
    counted); with other algorithms (e.g. RecurrentPPO) ``e`` counts the finished training episodes.

    :param eval_env: a ``TMaze-v0`` or ``XORTMaze-v0`` env (a fresh copy of the training env if None); the
        Q-value and margin tags are logged on ``TMaze-v0`` only.
    :param check_freq: episodes between checks (20, the authors' schedule).
    :param stop_when_optimal: stop training at the first optimal check.
    :param best_model_save_path: folder where the model of the first optimal check is saved as
        ``best_model.zip`` (as SB3's ``EvalCallback``, which keeps the first model of the best score:
        every optimal policy earns the same return); None: not saved.
    :param give_up_after: stop training when the policy was optimal at no check up to this episode (the
        check at that episode included); None: never.
    :param verbose: 1 prints each optimal check.
    :param end_rate_hold: at the first optimal check, start the decay of the model's learning rate, a
        :class:`recurrent_q.schedules.HeldLinearSchedule` (its ``end_hold``), if its hold is not over.
    :param after_optimal: settings of the model changed at the first optimal check, by attribute name
        (:data:`AFTER_OPTIMAL`): ``{"gradient_steps": 40}`` for more updates per episode,
        ``{"hold_coef": 0.0}`` to end a hold term; None: none. They take effect from the next training
        episode on (not with ``stop_when_optimal``); the ``best_model.zip`` saved at that check keeps the
        settings the model had until then.
    """

    def __init__(
        self,
        eval_env: gym.Env | None = None,
        check_freq: int = 20,
        stop_when_optimal: bool = False,
        best_model_save_path: str | os.PathLike | None = None,
        verbose: int = 0,
        give_up_after: int | None = None,
        end_rate_hold: bool = False,
        after_optimal: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(verbose)
        self.end_rate_hold = end_rate_hold
        self.after_optimal = dict(after_optimal or {})
        for name in self.after_optimal:
            check_choice("after_optimal", name, AFTER_OPTIMAL)
        check_integer("check_freq", check_freq)
        check_integer("give_up_after", give_up_after, optional=True)
        self.give_up_after = give_up_after
        self.eval_env = eval_env
        self.check_freq = check_freq
        self.stop_when_optimal = stop_when_optimal
        self.best_model_save_path = best_model_save_path
        self.first_optimal_episode: int | None = None
        self.first_optimal_time: float | None = None  # seconds since the start of training
        self.first_optimal_timesteps: int | None = None  # env steps of the model at that check
        self.first_optimal_cpu_time: float | None = None  # CPU seconds of this process since the start
        self.held = True  # optimal at every check after the first optimal one
        self.checks: list[tuple[int, bool]] = []
        self._episodes = 0
        self._start = self._cpu_start = 0.0

    def _init_callback(self) -> None:
        if self.eval_env is None:
            self.eval_env = env_from_training_env(self.model)
        self._is_drqn = hasattr(self.model, "num_train_episodes")
        self._check_after_optimal()
        if self.end_rate_hold and not isinstance(self.model.learning_rate, HeldLinearSchedule):
            raise ValueError(
                "end_rate_hold needs a model whose learning_rate is a HeldLinearSchedule (a rate held, then "
                f"decayed); got {self.model.learning_rate!r}"
            )

    def _check_after_optimal(self) -> None:
        """A ``ValueError`` naming ``after_optimal`` when the model lacks one of its settings, or (DRQN) when
        a value is out of the range the model's constructor allows."""
        for name in self.after_optimal:
            if not hasattr(self.model, name):
                raise ValueError(
                    f"after_optimal sets {name}, which {type(self.model).__name__} does not have"
                )
        if not isinstance(self.model, DRQN) or not self.after_optimal:
            return
        before = {name: getattr(self.model, name) for name in self.after_optimal}
        try:
            for name, value in self.after_optimal.items():
                setattr(self.model, name, value)
            check_arguments(self.model)
        except ValueError as error:
            raise ValueError(f"after_optimal: {error}") from error
        finally:
            for name, value in before.items():
                setattr(self.model, name, value)

    def _on_training_start(self) -> None:
        self._start = time.perf_counter()
        self._cpu_start = time.process_time()

    def check(self, episode: int) -> bool:
        """Run the check for the policy after ``episode`` training episodes, log it and return it."""
        optimal = is_tmaze_optimal(self.model, self.eval_env)
        self.checks.append((episode, optimal))
        self.logger.record("eval/optimal", float(optimal))
        if isinstance(self.model, DRQN) and maze_layouts(self.eval_env) == LAYOUTS:  # TMaze-v0's only
            q = start_q_values(self.model.policy.acting_net, self.eval_env)
            self.logger.record("eval/start_value", float(q.max(-1).min()))
            others = np.delete(q, RIGHT, axis=1)
            self.logger.record("eval/start_margin", float((q[:, RIGHT] - others.max(-1)).min()))
            margins = optimal_path_margins(self.model.policy.acting_net, self.eval_env.unwrapped.length)
            corridor = margins[:, :-1].min(0)  # the smaller of the two layouts', per corridor step
            self.logger.record("eval/corridor_margin", float(corridor.min()))
            self.logger.record("eval/corridor_margin_step", int(corridor.argmin()))
            self.logger.record("eval/junction_margin", float(margins[:, -1].min()))
        if optimal and self.first_optimal_episode is None:
            self.first_optimal_episode = episode
            self.first_optimal_time = time.perf_counter() - self._start
            self.first_optimal_timesteps = self.model.num_timesteps
            self.first_optimal_cpu_time = time.process_time() - self._cpu_start
            if self.end_rate_hold:
                self.model.learning_rate.end_hold(self.model._current_progress_remaining)
            if self.best_model_save_path is not None:  # the model as it was at this check
                os.makedirs(self.best_model_save_path, exist_ok=True)
                self.model.save(os.path.join(self.best_model_save_path, "best_model"))
            for name, value in self.after_optimal.items():
                setattr(self.model, name, value)
            if self.verbose:
                print(f"optimal policy after {episode} episodes ({self.first_optimal_time:.1f} s)")
        elif not optimal and self.first_optimal_episode is not None:
            self.held = False
        if self.first_optimal_episode is not None:
            self.logger.record("eval/first_optimal_episode", self.first_optimal_episode)
        # Written at once, as SB3's EvalCallback does: every check is a point of the curves, not only those
        # that happen to precede the algorithm's own dump (every log_interval episodes).
        self.logger.dump(self.model.num_timesteps)
        return optimal

    def _due(self, episode: int) -> bool:
        return episode % self.check_freq == 0 and (not self.checks or self.checks[-1][0] != episode)

    def _on_rollout_start(self) -> None:
        if self._is_drqn and self._due(self.model.num_train_episodes):
            self.check(self.model.num_train_episodes)

    def _on_step(self) -> bool:
        if not self._is_drqn:
            for done in self.locals.get("dones", ()):
                if done:
                    self._episodes += 1
                    if self._due(self._episodes):
                        self.check(self._episodes)
        if self.first_optimal_episode is not None:
            return not self.stop_when_optimal
        # Give up once the check of episode give_up_after (or a later one) has been made, never optimal.
        return self.give_up_after is None or not self.checks or self.checks[-1][0] < self.give_up_after

    def _on_training_end(self) -> None:
        episode = self.model.num_train_episodes if self._is_drqn else self._episodes
        if self._due(episode):
            self.check(episode)


__all__ = [
    "AFTER_OPTIMAL",
    "TMAZE_OPTIMAL_RETURN",
    "TMAZE_VERSIONS",
    "TMazeConfig",
    "TMazeOptimalCallback",
    "after_optimal_settings",
    "is_tmaze_optimal",
    "make_maze",
    "make_tmaze_drqn",
    "resolved_config",
    "run_tmaze_experiment",
]
