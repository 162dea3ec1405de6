"""Where a T-Maze training episode's time goes, part by part, beside each part's arithmetic floor.

Usage: ``python benchmarks/profile_drqn_episode.py [--lengths 100 500 1000] [--episodes 10] [--settle 5]
[--train-mode histories] [--history-window W --burn-in B] [--n-envs N]``

For each corridor length L, the T-Maze runner's DRQN (``experiments.tmaze.make_tmaze_drqn`` with its
defaults: GRU 2 × 64 + warmup, 20 gradient steps of 32 transitions, advantage learning, Watkins's 10-step
returns, γ of the length, the averaged network θ̄, a check every 5 episodes) fills its buffer, warms up,
trains ``--settle`` episodes, then ``--episodes`` more are timed. Each part below is timed where the code
calls it (the process's CPU time, one torch thread, exclusive: a part's time excludes the parts it calls).
``--train-mode``, ``--history-window``, ``--burn-in`` and ``--n-envs`` profile the runner with those
settings instead of its defaults (truncated histories: the stored states' refresh is part of *target
values*).

- *acting: forward*: the online network's one step per env step (``RecurrentQNetwork.step``);
- *acting: env step*, *storing* (``EpisodesInProgress.record_step``, the buffer's ``add`` included), and
  *acting: the rest* (features, ε-greedy choice, callbacks, states refreshed after θ changed);
- *target network copy* and *target values* (``refresh_target_values``: θ' over every new episode, and over
  the whole buffer after each copy);
- *sampling* (``EpisodeReplayBuffer.sample``), *input features*, *loss: forward of the recurrence*
  (``rnn.outputs`` of the online network), *loss: backward*, *Adam step*, *averaged network* (θ̄'s Polyak
  update), *loss: the rest* (returns, head, loss arithmetic);
- *checks* (``TMazeOptimalCallback.check``: two greedy episodes, start Q-values, the optimal path's margins);
- *VAA estimates* (``train/vaa`` every 20 episodes, ``train/vaa_measure`` every 200: the runner's defaults);
- *other*: the learn loop itself.

The arithmetic floor of a part is its matrix-product operations (2 per weight of the recurrent stack per
sequence step: ``experiments.cost.stack_flops``; backward twice the forward) divided by the rate of one
large float32 matrix product (2048³) on one thread, measured in the same process. Prints a Markdown table
per L; the fill and the warmup (once per run) are printed apart.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import torch
from profile_warmup import matmul_rate

import recurrent_q.learning as learning
import recurrent_q.updates as updates
from experiments.cost import TMAZE_INPUT_SIZE, stack_flops, warmup_flops
from experiments.tmaze import TMazeConfig, TMazeOptimalCallback, make_maze, make_tmaze_drqn
from recurrent_q.buffers import EpisodeReplayBuffer
from recurrent_q.callbacks import VAAMonitorCallback
from recurrent_q.collection import EpisodesInProgress

PARTS = (
    "acting: forward",
    "acting: env step",
    "acting: the rest",
    "storing",
    "target network copy",
    "target values",
    "sampling",
    "input features",
    "loss: forward of the recurrence",
    "loss: backward",
    "Adam step",
    "averaged network",
    "loss: the rest",
    "checks",
    "VAA estimates",
    "other",
)


class Sections:
    """Exclusive CPU time per named section: entering a section pauses the one it was called from."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.flops: dict[str, float] = defaultdict(float)
        self._stack: list[str] = []
        self._last = time.process_time()

    def reset(self) -> None:
        self.seconds.clear()
        self.flops.clear()

    def _switch(self, push: str | None) -> None:
        now = time.process_time()
        if self._stack:
            self.seconds[self._stack[-1]] += now - self._last
        if push is None:
            self._stack.pop()
        else:
            self._stack.append(push)
        self._last = now

    def wrap(self, name: str, fn: Callable[..., Any], inside: str | None = None) -> Callable[..., Any]:
        """``fn`` timed as ``name`` (only when called from section ``inside``, if given)."""

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if inside is not None and (not self._stack or self._stack[-1] != inside):
                return fn(*args, **kwargs)
            self._switch(name)
            try:
                return fn(*args, **kwargs)
            finally:
                self._switch(None)

        return timed


def profile(
    length: int, episodes: int, settle: int, seed: int, **settings: Any
) -> tuple[Sections, dict[str, float]]:
    """The sections of ``episodes`` training episodes at corridor ``length`` (after ``settle`` more), and
    the run's one-off parts (fill, warmup) in CPU s, with the env steps per timed episode; ``settings``:
    other ``TMazeConfig`` fields."""
    config = TMazeConfig(length=length, seed=seed, episodes=settle + episodes, **settings)
    model = make_tmaze_drqn(config)
    per_step = stack_flops(config.cell, TMAZE_INPUT_SIZE, config.hidden_size, config.num_layers, False)
    s = Sections()
    once: dict[str, float] = {}

    def once_timed(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                once[name] = once.get(name, 0.0) + time.process_time() - start

        return timed

    q_net, target_net = model.policy.q_net, model.q_net_target

    def count(name: str, fn: Callable[..., Any], flops: Callable[..., float]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def counted(*args: Any, **kwargs: Any) -> Any:
            result = fn(*args, **kwargs)
            s.flops[name] += flops(*args, result=result, **kwargs)
            return result

        return counted

    def sampled_steps(*args: Any, result: Any, **kwargs: Any) -> float:
        return float(result.lengths.sum()) * per_step

    # the patches: instance attributes of this model, and the classes' methods for the run's duration
    q_net.step = s.wrap("acting: forward", count("acting: forward", q_net.step, lambda *a, **k: per_step))
    model.env.step = s.wrap("acting: env step", model.env.step)
    model._update_target = s.wrap("target network copy", model._update_target)
    model.refresh_target_values = s.wrap("target values", model.refresh_target_values)
    target_net.q_values = count(
        "target values", target_net.q_values, lambda x, lengths, **k: float(lengths.sum()) * per_step
    )
    q_net.rnn.states = count(  # truncated histories: the online network's states stored with the values
        "target values", q_net.rnn.states, lambda x, *a, **k: float(x.shape[0] * x.shape[1]) * per_step
    )
    q_net.episode_features = s.wrap("input features", q_net.episode_features, inside="loss: the rest")
    q_net.rnn.outputs = s.wrap("loss: forward of the recurrence", q_net.rnn.outputs, inside="loss: the rest")
    model.policy.optimizer.step = s.wrap("Adam step", model.policy.optimizer.step, inside="loss: the rest")
    model.train = s.wrap("loss: the rest", model.train)
    model._warm_up = once_timed("warmup", model._warm_up)
    originals = {
        (EpisodesInProgress, "record_step"): EpisodesInProgress.record_step,
        (EpisodeReplayBuffer, "sample"): EpisodeReplayBuffer.sample,
        (torch.Tensor, "backward"): torch.Tensor.backward,
        (updates, "polyak_update"): updates.polyak_update,
        (learning, "collect_episodes"): learning.collect_episodes,
        (learning, "fill_replay_buffer"): learning.fill_replay_buffer,
        (VAAMonitorCallback, "_on_episode_trained"): VAAMonitorCallback._on_episode_trained,
    }
    callback = TMazeOptimalCallback(make_maze(config), config.check_freq)
    callback.check = s.wrap("checks", callback.check)
    learn = s.wrap("other", model.learn)
    try:  # the classes' patches are undone however the run ends
        EpisodesInProgress.record_step = s.wrap("storing", EpisodesInProgress.record_step)
        EpisodeReplayBuffer.sample = s.wrap(
            "sampling", count("loss: forward of the recurrence", EpisodeReplayBuffer.sample, sampled_steps)
        )
        torch.Tensor.backward = s.wrap("loss: backward", torch.Tensor.backward, inside="loss: the rest")
        updates.polyak_update = s.wrap("averaged network", updates.polyak_update)
        learning.collect_episodes = s.wrap("acting: the rest", learning.collect_episodes)
        learning.fill_replay_buffer = once_timed("buffer fill", learning.fill_replay_buffer)
        vaa = VAAMonitorCallback._on_episode_trained
        VAAMonitorCallback._on_episode_trained = s.wrap("VAA estimates", vaa)
        learn(10**12, callback=callback, max_episodes=settle)
        s.reset()
        steps = model.num_timesteps
        learn(10**12, callback=callback, max_episodes=episodes, reset_num_timesteps=False)
    finally:
        for (owner, name), original in originals.items():
            setattr(owner, name, original)
    s.flops["loss: backward"] = 2.0 * s.flops["loss: forward of the recurrence"]
    assert model.warmup_config is not None
    once["warmup floor"] = warmup_flops(model.warmup_config, per_step)
    once["env steps per episode"] = (model.num_timesteps - steps) / episodes
    return s, once


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[100, 500, 1000])
    parser.add_argument("--episodes", type=int, default=10, help="training episodes timed per length")
    parser.add_argument("--settle", type=int, default=5, help="training episodes run before timing")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-mode", choices=["histories", "sequences"], default=None)
    parser.add_argument("--history-window", type=int, default=None, help="truncated histories (W steps)")
    parser.add_argument("--burn-in", type=int, default=0, help="with --history-window: untrained steps")
    parser.add_argument("--n-envs", type=int, default=1, help="mazes acted on at once")
    args = parser.parse_args()
    settings: dict[str, Any] = {
        "history_window": args.history_window,
        "burn_in": args.burn_in,
        "n_envs": args.n_envs,
    }
    if args.train_mode is not None:
        settings["train_mode"] = args.train_mode
    torch.set_num_threads(1)
    rate = matmul_rate()
    print(
        f"load average at start: {os.getloadavg()[0]:.2f}; one thread's float32 matmul rate (2048³): "
        f"{rate / 1e9:.1f} GFLOP/s; settings besides the runner's defaults: {settings}\n"
    )
    for length in args.lengths:
        s, once = profile(length, args.episodes, args.settle, args.seed, **settings)
        total = sum(s.seconds.values()) / args.episodes
        fill, warm, floor = once.get("buffer fill", 0.0), once.get("warmup", 0.0), once["warmup floor"] / rate
        print(
            f"L = {length}: {total:.3f} CPU s per training episode ({once['env steps per episode']:.0f} env "
            f"steps); once per run: buffer fill {fill:.1f} s, warmup {warm:.1f} s (its floor {floor:.1f} s)\n"
        )
        print("| part | CPU s per episode | share | GFLOP per episode | floor (s) | × floor |")
        print("|---|---:|---:|---:|---:|---:|")
        for part in PARTS:
            seconds = s.seconds.get(part, 0.0) / args.episodes
            flops = s.flops.get(part, 0.0) / args.episodes
            floor = flops / rate
            ratio = f"{seconds / floor:.1f}" if floor > 0 else "—"
            gflop = f"{flops / 1e9:.3f}" if flops else "—"
            floor_text = f"{floor:.4f}" if flops else "—"
            print(f"| {part} | {seconds:.4f} | {seconds / total:.0%} | {gflop} | {floor_text} | {ratio} |")
        print()
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
