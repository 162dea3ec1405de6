"""Replay buffer of episodes for DRQN: transitions are stored once, inside their episode.

A transition ``(η_{0:t}, a_t, r_t, o_{t+1}, η_{0:t+1})`` of Algorithm 4 is step ``t`` of a stored
episode, whose history is the episode's prefix. Capacity and eviction count *transitions*
(FIFO, the oldest is replaced): when the oldest episode loses its first steps, they can no
longer be sampled, but its data stays until all of its transitions are gone, so that the
histories of the remaining ones are complete.
"""

from __future__ import annotations

from collections import deque
from typing import NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces

from recurrent_q.checks import check_choice, check_integer
from recurrent_q.observations import (
    as_network_observation,
    batch_size,
    map_observation,
    network_space,
    storage_dtype,
)
from recurrent_q.q_network import NO_ACTION

TRAIN_MODES = ("histories", "sequences")


class EpisodeBatch(NamedTuple):
    """Right-padded episodes ``[U, T + 1]`` and the weight of each of their transitions ``[U, T]``.

    ``observations[u, k]`` is ``o_k`` (raw, as stored; a dict of such tensors, one per key, for a ``Dict``
    or ``Tuple`` observation space); ``actions[u, k]``, ``rewards[u, k]`` are
    ``a_k``, ``r_k``; ``dones[u, k]`` is 1 where ``o_{k+1}`` is terminal (a truncated episode is not);
    ``weights[u, k]`` is how many times transition ``k`` of episode ``u`` enters the loss (0 on padding).
    ``lengths[u]`` is the number of transitions of episode ``u`` to run: up to its last one of weight > 0.
    ``next_values[u, k]`` is the stored bootstrap value ``max_a Q_θ'(η_{0:k+1}, a)`` of transition ``k``
    (see :meth:`EpisodeReplayBuffer.set_next_values`; NaN where none was stored).
    ``episode_lengths[u]`` is the number of transitions of the whole episode ``u``.
    ``greedy[u, k]`` is whether ``a_k`` was a greedy action of the network that stored the values,
    ``a_k ∈ argmax_a Q_θ'(η_{0:k}, a)`` (False where none was stored): where Watkins's n-step returns
    cut the trace.
    ``gaps[u, k]`` is the same network's action gap ``max_a Q_θ'(η_{0:k}, a) − Q_θ'(η_{0:k}, a_k)`` (0 where
    none was stored): what advantage learning takes off the target.

    Truncated histories (``EpisodeReplayBuffer.sample(window=W)``): row ``u`` is then a window of its
    episode from step ``starts[u]`` on, and every per-step field above is of that window (``k`` counts from
    ``starts[u]``; ``episode_lengths[u]`` is the transitions left in the episode from ``starts[u]``).
    ``initial_states[:, u]`` (``[L, U, S]``) is the stored state before the window's first input,
    ``previous_actions[u]`` and ``previous_rewards[u]`` are ``a_{s−1}`` and ``r_{s−1}`` of that input
    (``NO_ACTION`` and 0 at an episode's start). All four are None for whole episodes.
    """

    observations: th.Tensor | dict[str, th.Tensor]
    actions: th.Tensor
    rewards: th.Tensor
    dones: th.Tensor
    weights: th.Tensor
    lengths: th.Tensor
    next_values: th.Tensor
    episode_lengths: th.Tensor
    greedy: th.Tensor | None = None
    gaps: th.Tensor | None = None
    starts: th.Tensor | None = None
    initial_states: th.Tensor | None = None
    previous_actions: th.Tensor | None = None
    previous_rewards: th.Tensor | None = None


class EpisodeReplayBuffer:
    """FIFO replay buffer of ``buffer_size`` transitions, stored as whole episodes.

    :param buffer_size: capacity ``N`` in transitions.
    Observations are stored raw, in a compact dtype (``recurrent_q.observations.storage_dtype``: ``int64``
    for ``Discrete`` and ``MultiDiscrete``, ``uint8`` for images, ``float32`` for other ``Box``), and for a
    ``Dict`` or ``Tuple`` space one array per key (a ``Tuple``'s keyed ``"0"``, ``"1"``, …), as SB3's
    ``DictReplayBuffer``; the Q-network encodes them when it reads them (``RecurrentQNetwork.features``).

    :param observation_space: the env's observation space (one that ``check_spaces`` accepts).
    :param device: device of the sampled tensors.
    """

    states: np.ndarray | None = None  # (also the value of buffers pickled before it existed)

    def __init__(
        self, buffer_size: int, observation_space: spaces.Space, device: th.device | str = "cpu"
    ) -> None:
        check_integer("buffer_size", buffer_size)
        self.buffer_size = buffer_size
        self.observation_space = observation_space
        self.device = th.device(device)
        space = network_space(observation_space)
        self.size = 0  # live (sampleable) transitions
        # Slot storage, grown on demand: episodes are rows right-padded to `max_length` transitions.
        self.max_length = 0
        if isinstance(space, spaces.Dict):  # one array per key (obs_shape and obs_dtype are dicts)
            self.obs_shape = {key: part.shape for key, part in space.spaces.items()}
            self.obs_dtype = {key: storage_dtype(part) for key, part in space.spaces.items()}
            self.observations = {
                key: np.zeros((0, 1, *shape), dtype=self.obs_dtype[key])
                for key, shape in self.obs_shape.items()
            }
        else:
            self.obs_shape = observation_space.shape
            self.obs_dtype = storage_dtype(observation_space)
            self.observations = np.zeros((0, 1, *self.obs_shape), dtype=self.obs_dtype)
        self.actions = np.zeros((0, 0), dtype=np.int64)
        self.rewards = np.zeros((0, 0), dtype=np.float32)
        self.next_values = np.zeros((0, 0), dtype=np.float32)
        self.greedy = np.zeros((0, 0), dtype=bool)
        self.gaps = np.zeros((0, 0), dtype=np.float32)
        self.missing_next_values: set[int] = set()  # slots stored since their last set_next_values
        # The states ``[slots, T, L, S]`` before each input x_k (set_states; None until first set)
        self.states: np.ndarray | None = None
        self.lengths = np.zeros(0, dtype=np.int64)
        self.terminated = np.zeros(0, dtype=bool)
        self.first_live = np.zeros(0, dtype=np.int64)  # steps before it were evicted
        self.queue: deque[int] = deque()  # occupied slots, oldest first
        self.free: list[int] = []
        self._index: tuple[np.ndarray, np.ndarray] | None = None  # (slots, cumulative live counts)

    @property
    def full(self) -> bool:
        """Whether the buffer holds ``buffer_size`` transitions."""
        return self.size >= self.buffer_size

    def __len__(self) -> int:
        return self.size

    def _grow(self, slots: int, length: int) -> None:
        old_slots, old_length = len(self.lengths), self.max_length
        if slots <= old_slots and length <= old_length:
            return
        slots, length = max(slots, old_slots), max(length, old_length)

        def resized(array: np.ndarray, width: int) -> np.ndarray:
            new = np.zeros((slots, width, *array.shape[2:]), dtype=array.dtype)
            new[: array.shape[0], : array.shape[1]] = array
            return new

        self.observations = map_observation(lambda array: resized(array, length + 1), self.observations)
        self.actions = resized(self.actions, length)
        self.rewards = resized(self.rewards, length)
        self.next_values = resized(self.next_values, length)
        self.greedy = resized(self.greedy, length)
        self.gaps = resized(self.gaps, length)
        if self.states is not None:
            self.states = resized(self.states, length)
        for name in ("lengths", "terminated", "first_live"):
            array = getattr(self, name)
            setattr(self, name, np.concatenate([array, np.zeros(slots - old_slots, dtype=array.dtype)]))
        self.free.extend(range(slots - 1, old_slots - 1, -1))
        self.max_length = length

    def add(
        self, observations: np.ndarray, actions: np.ndarray, rewards: np.ndarray, terminated: bool
    ) -> int:
        """Store one episode of ``T >= 1`` transitions, evicting the oldest transitions beyond capacity.

        :param observations: ``o_0 … o_T``, shape ``[T + 1, *obs_shape]`` (a dict or tuple of such arrays
            for a ``Dict`` or ``Tuple`` space).
        :param actions: ``a_0 … a_{T-1}``, shape ``[T]``.
        :param rewards: ``r_0 … r_{T-1}``, shape ``[T]``.
        :param terminated: whether ``o_T`` is terminal (False when the episode was truncated).
        :return: the slot of the episode (for :meth:`set_next_values`).
        """
        length = len(actions)
        observations = as_network_observation(observations, self.observation_space)
        n_observations = batch_size(observations)
        if length < 1 or len(rewards) != length or n_observations != length + 1:
            raise ValueError(
                "an episode needs T >= 1 actions and rewards and T + 1 observations; got "
                f"{n_observations} observations, {len(actions)} actions, {len(rewards)} rewards"
            )
        if not self.free or length > self.max_length:
            self._grow(max(2 * len(self.lengths), 16) if not self.free else 0, length)
        slot = self.free.pop()
        if isinstance(self.observations, dict):
            for key, stored in self.observations.items():
                stored[slot, : length + 1] = np.asarray(observations[key], dtype=self.obs_dtype[key]).reshape(
                    length + 1, *self.obs_shape[key]
                )
        else:
            self.observations[slot, : length + 1] = np.asarray(observations, dtype=self.obs_dtype).reshape(
                length + 1, *self.obs_shape
            )
        self.actions[slot, :length] = actions
        self.rewards[slot, :length] = rewards
        self.next_values[slot] = np.nan
        self.greedy[slot] = False
        self.gaps[slot] = 0.0
        if self.states is not None:
            self.states[slot] = np.nan  # (a reused slot: not the previous episode's states)
        self.missing_next_values.add(slot)
        self.lengths[slot], self.terminated[slot], self.first_live[slot] = length, terminated, 0
        self.queue.append(slot)
        self.size += length
        while self.size > self.buffer_size:
            oldest = self.queue[0]
            evicted = min(int(self.lengths[oldest] - self.first_live[oldest]), self.size - self.buffer_size)
            self.first_live[oldest] += evicted
            self.size -= evicted
            if self.first_live[oldest] == self.lengths[oldest]:
                self.free.append(self.queue.popleft())
                self.missing_next_values.discard(oldest)
        self._index = None
        return slot

    def set_next_values(
        self,
        slots: np.ndarray,
        values: np.ndarray,
        greedy: np.ndarray | None = None,
        gaps: np.ndarray | None = None,
    ) -> None:
        """Store the bootstrap values ``[len(slots), T]`` of episodes (entries past their lengths ignored).

        DRQN stores ``max_a Q_θ'(η_{0:k+1}, a)`` here: the target network only changes when it is
        copied, so the values of every stored transition are computed once per copy (and once for each
        new episode) instead of once per sampled batch.

        :param greedy: optionally, ``[len(slots), T]`` booleans: whether each ``a_k`` is greedy for the
            same network (``EpisodeBatch.greedy``); False when not given.
        """
        width = min(values.shape[1], self.max_length)
        self.next_values[slots, :width] = values[:, :width]
        self.greedy[slots, :width] = False if greedy is None else greedy[:, :width]
        self.gaps[slots, :width] = 0.0 if gaps is None else gaps[:, :width]
        self.missing_next_values.difference_update(int(slot) for slot in slots)

    def set_states(self, slots: np.ndarray, states: np.ndarray) -> None:
        """Store the recurrent states ``[len(slots), T, L, S]`` before each input ``x_k`` of episodes
        (``states[:, 0]`` is the initial state; entries past their lengths ignored): where a truncated
        history (``sample(window=...)``) starts its recurrence, R2D2's stored state. DRQN stores its online
        network's states here when it refreshes the target values."""
        states = np.asarray(states, dtype=np.float32)
        if states.ndim != 4 or states.shape[0] != len(slots):
            raise ValueError(f"states must have shape [len(slots), T, L, S]; got {states.shape}")
        if self.states is None or self.states.shape[2:] != states.shape[2:]:
            self.states = np.full((len(self.lengths), self.max_length, *states.shape[2:]), np.nan, np.float32)
        width = min(states.shape[1], self.max_length)
        self.states[slots, :width] = states[:, :width]

    def forget_next_values(self) -> None:
        """Mark the bootstrap values of every stored episode as missing (e.g. a buffer loaded into another
        model, whose target network did not compute them): DRQN recomputes them before its next step."""
        self.next_values[:] = np.nan
        # (a buffer pickled before it had them)
        self.greedy = np.zeros(self.next_values.shape, dtype=bool)
        self.gaps = np.zeros(self.next_values.shape, dtype=np.float32)
        self.missing_next_values = set(self.queue)

    def _sample_index(self) -> tuple[np.ndarray, np.ndarray]:
        if self._index is None:
            slots = np.fromiter(self.queue, dtype=np.int64, count=len(self.queue))
            self._index = slots, np.cumsum(self.lengths[slots] - self.first_live[slots])
        return self._index

    def sample(
        self,
        batch_size: int,
        rng: np.random.Generator,
        mode: str = "histories",
        lookahead: int = 1,
        window: int | None = None,
        burn_in: int = 0,
    ) -> EpisodeBatch:
        """Sample ``batch_size`` transitions uniformly; return the episodes that hold them, each once.

        :param mode: ``"histories"``: the weights count the sampled transitions (Algorithm 4, the loss
            is on the last step of each sampled history); ``"sequences"``: every live transition of
            the sampled episodes has weight 1 (R2D2 / Memory-RL style).
        :param lookahead: the rewards, dones and values are returned up to this many steps past the last
            sampled one (``n`` of n-step returns).
        :param window: truncated histories: each sampled transition ``t`` gets its own row, the last
            ``window`` steps ``s … t`` of its history (``s = max(0, t − window + 1)``), to be run from the
            state stored before ``x_s`` (:meth:`set_states`); None: whole episodes.
        :param burn_in: with ``window`` and ``mode="sequences"``, the first ``burn_in`` steps of a row that
            starts inside its episode (``s > 0``) refresh the stored state and carry no weight (R2D2's
            burn-in); the other live steps up to ``t`` have weight 1.
        """
        check_choice("mode", mode, TRAIN_MODES)
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        slots, cumulative = self._sample_index()
        flat = rng.integers(self.size, size=batch_size)
        rows = np.searchsorted(cumulative, flat, side="right")
        steps = self.first_live[slots[rows]] + flat - np.where(rows > 0, cumulative[rows - 1], 0)
        if window is not None:
            return self._windows(slots[rows], steps, window, burn_in, mode, lookahead)
        unique_rows, episode = np.unique(rows, return_inverse=True)
        chosen = slots[unique_rows]
        lengths = self.lengths[chosen]
        if mode == "histories":
            horizon = min(int(steps.max()) + lookahead, int(lengths.max()))
            weights = np.zeros((len(chosen), horizon), dtype=np.float32)
            np.add.at(weights, (episode, steps), 1.0)
            run = np.zeros(len(chosen), dtype=np.int64)
            np.maximum.at(run, episode, steps + 1)  # each history is run up to its last sampled step
        else:
            horizon = int(lengths.max())
            t = np.arange(horizon)
            weights = ((t >= self.first_live[chosen, None]) & (t < lengths[:, None])).astype(np.float32)
            run = lengths
        return self._episodes(chosen, horizon, weights, run)

    def _windows(
        self, slots: np.ndarray, ends: np.ndarray, window: int, burn_in: int, mode: str, lookahead: int
    ) -> EpisodeBatch:
        """One row per sampled transition ``(slots[u], ends[u])``: its history's last ``window`` steps."""
        check_integer("window", window)
        check_integer("burn_in", burn_in, 0)
        lengths = self.lengths[slots]
        starts = np.maximum(ends - window + 1, 0)
        run = ends - starts + 1
        left = lengths - starts  # transitions of the episode from each row's start
        horizon = int(np.minimum(run + lookahead - 1, left).max())
        steps = starts[:, None] + np.arange(horizon)  # each row's steps in its episode
        valid = steps < lengths[:, None]
        cols = np.minimum(steps, self.max_length - 1)
        rows = slots[:, None]
        if mode == "histories":
            weights = np.zeros((len(slots), horizon), dtype=np.float32)
            weights[np.arange(len(slots)), run - 1] = 1.0
        else:
            first = np.maximum(starts + np.where(starts > 0, burn_in, 0), self.first_live[slots])
            weights = ((steps >= first[:, None]) & (steps <= ends[:, None])).astype(np.float32)
        dones = self._dones(slots, left - 1, horizon)
        obs_cols = np.minimum(starts[:, None] + np.arange(horizon + 1), self.max_length)
        inside = starts > 0
        before = np.maximum(starts - 1, 0)
        previous_actions = np.where(inside, self.actions[slots, before], NO_ACTION)
        previous_rewards = np.where(inside, self.rewards[slots, before], 0.0).astype(np.float32)
        initial_states = None if self.states is None else self.states[slots, starts]
        if initial_states is None or not np.isfinite(initial_states).all():
            raise ValueError(
                "truncated histories start from stored states, and a sampled episode has none: call "
                "set_states() on its slots (DRQN: refresh_target_values()) after adding it"
            )
        device = self.device

        def tensor(array: np.ndarray) -> th.Tensor:
            return th.as_tensor(array).to(device)

        return EpisodeBatch(
            observations=map_observation(lambda stored: tensor(stored[rows, obs_cols]), self.observations),
            actions=tensor(np.where(valid, self.actions[rows, cols], 0)),
            rewards=tensor(np.where(valid, self.rewards[rows, cols], 0.0).astype(np.float32)),
            dones=tensor(dones),
            weights=tensor(weights),
            lengths=tensor(run),
            next_values=tensor(np.where(valid, self.next_values[rows, cols], np.nan).astype(np.float32)),
            episode_lengths=tensor(left),
            greedy=tensor(valid & self.greedy[rows, cols]),
            gaps=tensor(np.where(valid, self.gaps[rows, cols], 0.0).astype(np.float32)),
            starts=tensor(starts),
            initial_states=tensor(np.ascontiguousarray(initial_states.transpose(1, 0, 2))),
            previous_actions=tensor(previous_actions.astype(np.int64)),
            previous_rewards=tensor(previous_rewards),
        )

    def _dones(self, slots: np.ndarray, last: np.ndarray, horizon: int) -> np.ndarray:
        """``[len(slots), horizon]``: 1 at column ``last[u]``, the episode's last transition, where it is
        terminal (a truncated episode's is not) and within the horizon."""
        dones = np.zeros((len(slots), horizon), dtype=np.float32)
        ended = self.terminated[slots] & (last < horizon)
        dones[np.flatnonzero(ended), last[ended]] = 1.0
        return dones

    def all_episodes(self) -> EpisodeBatch:
        """Every stored episode, whole (for warmup and VAA), with weight 1 on its live transitions."""
        return self.episodes(np.fromiter(self.queue, dtype=np.int64, count=len(self.queue)))

    def episodes(self, chosen: np.ndarray) -> EpisodeBatch:
        """The stored episodes of slots ``chosen``, whole, with weight 1 on their live transitions."""
        horizon = int(self.lengths[chosen].max())
        t = np.arange(horizon)
        weights = (t >= self.first_live[chosen, None]) & (t < self.lengths[chosen, None])
        return self._episodes(chosen, horizon, weights.astype(np.float32), self.lengths[chosen])

    def _episodes(
        self, slots: np.ndarray, horizon: int, weights: np.ndarray, lengths: np.ndarray
    ) -> EpisodeBatch:
        dones = self._dones(slots, self.lengths[slots] - 1, horizon)
        device = self.device
        return EpisodeBatch(
            observations=map_observation(
                lambda stored: th.as_tensor(stored[slots, : horizon + 1]).to(device), self.observations
            ),
            actions=th.as_tensor(self.actions[slots, :horizon]).to(device),
            rewards=th.as_tensor(self.rewards[slots, :horizon]).to(device),
            dones=th.as_tensor(dones).to(device),
            weights=th.as_tensor(weights).to(device),
            lengths=th.as_tensor(lengths).to(device),
            next_values=th.as_tensor(self.next_values[slots, :horizon]).to(device),
            episode_lengths=th.as_tensor(self.lengths[slots]).to(device),
            greedy=th.as_tensor(self.greedy[slots, :horizon]).to(device),
            gaps=th.as_tensor(self.gaps[slots, :horizon]).to(device),
        )
