"""DRQN's ``learn`` loop: its stages (buffer fill, warmup, training episodes: Algorithm 4), the warmup's run
on the buffer, the VAA monitoring added to its callbacks, the schedules' progress by episodes, its tqdm bars
and the logs it dumps.

``recurrent_q.drqn.DRQN`` calls these functions with itself; they read and advance its counters and call
its methods (``_warm_up``, ``_update_target``, ``refresh_target_values``, ``train``, ``dump_logs``), as
``recurrent_q.collection`` does for the episodes.
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, ConvertCallback
from stable_baselines3.common.type_aliases import MaybeCallback
from stable_baselines3.common.utils import safe_mean
from tqdm.auto import tqdm

from recurrent_q.callbacks import VAAMonitorCallback, notify_episode_trained
from recurrent_q.collection import collect_episodes, fill_replay_buffer, needs_fill
from recurrent_q.multistability import WarmupConfig, warmup
from recurrent_q.tb import ScopedWriter, tensorboard_writer

if TYPE_CHECKING:
    from recurrent_q.drqn import DRQN


def run_stages(
    model: DRQN, callback: BaseCallback, total_timesteps: int, log_interval: int, max_episodes: int | None
) -> None:
    """The stages of ``learn``: buffer fill (line 2), warmup (lines 3-5), training (lines 6-28)."""
    ready = False  # the buffer was just filled or the Q-network warmed up: the callbacks' event at e = 0
    if needs_fill(model):
        if not fill_replay_buffer(model, callback):
            return
        ready = True
    if model.use_warmup and model.warmup_timestep is None and model.num_train_episodes == 0:
        model._warm_up()
        ready = True
    if ready and model.num_train_episodes == 0:
        notify_episode_trained(callback)  # e = 0: the network after the warmup (or at initialisation)
        model.logger.dump(step=model.num_timesteps)
    if max_episodes is None:
        model._open_bar("training", total_timesteps - model.num_timesteps, "step")
    else:
        model._open_bar("training", max_episodes, "episode")
    episodes = model._episodes_in_progress
    first_episode = model.num_train_episodes
    continue_training = True
    while continue_training and model.num_timesteps < total_timesteps:
        if max_episodes is not None and model.num_train_episodes - first_episode >= max_episodes:
            break
        if model.num_train_episodes % model.target_update_interval == 0:
            model._update_target()
            model.refresh_target_values()
        callback.on_rollout_start()
        if episodes.finished == 0:  # else: an episode that ended with another one, not trained on yet
            continue_training = collect_episodes(model, callback)
        callback.on_rollout_end()
        if not continue_training:
            break
        episodes.finished -= 1
        model.train(model.gradient_steps, model.batch_size)
        episodes.stale[:] = True  # θ changed: the states of the episodes in progress are recomputed
        model.num_train_episodes += 1
        model._update_current_progress_remaining(model.num_timesteps, total_timesteps)
        model._update_exploration_rate()
        if model._bar is not None and model._bar.unit == "episode":
            model._bar.update(1)
        notify_episode_trained(callback)
        if log_interval and model.num_train_episodes % log_interval == 0:
            model.dump_logs()


def warm_up(model: DRQN) -> None:
    """Lines 3-5: warm up the cell stack on the histories in the buffer (Algorithm 3,
    ``recurrent_q.multistability.warmup``), then copy it to the target (``DRQN._warm_up``).

    Its TensorBoard scalars (``warmup/*``, one per warmup step ``s``) are written at step
    ``num_timesteps + s`` of the run: on the axis of the other scalars, where the warmup ran.
    """
    config = model.warmup_config if model.warmup_config is not None else WarmupConfig()
    x, lengths = model.replay_histories()
    writer = tensorboard_writer(model.logger)
    if writer is not None:
        writer = ScopedWriter(writer, offset=model.num_timesteps)
    generator = None if config.seed is not None else th.Generator().manual_seed(model._seed_or_zero())
    model._open_bar(None)  # the warmup shows its own bar
    model.warmup_result = warmup(
        model.q_net.rnn,
        x,
        config,
        lengths=lengths,
        writer=writer,
        progress=model._progress_bar,
        generator=generator,
    )
    model.warmup_timestep = model.num_timesteps
    if writer is None and model.warmup_result.vaa_star:
        model.logger.record("warmup/vaa_star", float(np.mean(model.warmup_result.vaa_star[-1])))
        model.logger.record("warmup/spread", float(np.mean(model.warmup_result.spread[-1])))
    model.q_net_target.load_state_dict(model.q_net.state_dict())
    if model.policy.q_net_average is not None:
        model.policy.q_net_average.load_state_dict(model.q_net.state_dict())
    model._episodes_in_progress.stale[:] = True  # θ changed


def with_vaa_monitor(model: DRQN, callback: MaybeCallback) -> MaybeCallback:
    """``callback`` followed by the VAA monitoring of ``model``'s ``vaa_*`` settings (a
    :class:`recurrent_q.callbacks.VAAMonitorCallback`; none when both its intervals are 0)."""
    if model.vaa_interval or model.vaa_measure_interval:
        monitor = VAAMonitorCallback(
            model.vaa_interval,
            model.vaa_steps,
            model.vaa_measure_interval,
            model.vaa_measure_steps,
            model.vaa_batch_size,
            generator=model._vaa_generator,
        )
        if callback is None:
            callback = monitor
        elif isinstance(callback, list):
            callback = [*callback, monitor]
        else:
            callback = [
                callback if isinstance(callback, BaseCallback) else ConvertCallback(callback),
                monitor,
            ]
    return callback


def episode_progress_remaining(model: DRQN) -> float:
    """``model``'s progress remaining, lowered to that over the training episodes of
    ``learn(max_episodes=...)`` if that is further along."""
    if model._episode_budget is None:
        return model._current_progress_remaining
    first, budget = model._episode_budget
    done = model.num_train_episodes - first
    by_episodes = 1.0 - done / budget if budget > 0 else 0.0
    return min(model._current_progress_remaining, by_episodes)


def open_bar(model: DRQN, desc: str | None, total: int = 0, unit: str = "step") -> None:
    """Close the progress bar of the previous stage and, with ``progress_bar``, open one for ``desc``."""
    if model._bar is not None:
        if model._bar.n > model._bar.total:  # the last episode ends past the bound
            model._bar.total = model._bar.n
        model._bar.close()
        model._bar = None
    if desc is not None and model._progress_bar:
        model._bar = tqdm(total=max(int(total), 0), desc=desc, unit=unit, dynamic_ncols=True)


def dump_logs(model: DRQN) -> None:
    """Write the ``rollout/``, ``time/`` and pending ``train/`` and ``eval/`` records."""
    elapsed = max((time.time_ns() - model.start_time) / 1e9, sys.float_info.epsilon)
    model.logger.record("time/episodes", model.num_train_episodes)
    model.logger.record("time/fps", int((model.num_timesteps - model._num_timesteps_at_start) / elapsed))
    model.logger.record("time/time_elapsed", elapsed, exclude="tensorboard")
    model.logger.record("time/total_timesteps", model.num_timesteps, exclude="tensorboard")
    if model.ep_info_buffer:
        model.logger.record("rollout/ep_rew_mean", safe_mean([info["r"] for info in model.ep_info_buffer]))
        model.logger.record("rollout/ep_len_mean", safe_mean([info["l"] for info in model.ep_info_buffer]))
    if model.ep_success_buffer:
        model.logger.record("rollout/success_rate", safe_mean(model.ep_success_buffer))
    model.logger.dump(step=model.num_timesteps)
