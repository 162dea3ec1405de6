"""DRQN's episode collection (lines 2 and 10-20 of Algorithm 4): the episodes that the envs of the VecEnv are
playing, their ε-greedy (or ℰ) steps, and their storage in the replay buffer when they end.

``recurrent_q.drqn.DRQN`` calls these functions with itself; they read and advance its env, counters
(``num_timesteps``, ``_episode_num``, ``num_fill_episodes``) and progress, as SB3's ``collect_rollouts``
does for its off-policy algorithms.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback

from recurrent_q.buffers import EpisodeReplayBuffer
from recurrent_q.observations import (
    as_network_observation,
    map_observation,
    observation_of_env,
    stack_observations,
)
from recurrent_q.policies import NO_ACTION, RecurrentQNetwork

if TYPE_CHECKING:
    from recurrent_q.drqn import DRQN


@dataclass
class EpisodesInProgress:
    """The episode that each env of the VecEnv is playing: its history so far and the Q-network's state.

    ``observations[i]`` holds ``o_0 … o_t`` of env ``i`` (``o_t`` is the observation to act on; dicts of
    arrays for a ``Dict`` or ``Tuple`` space, see ``recurrent_q.observations.as_network_observation``),
    ``actions[i]`` and ``rewards[i]`` ``a_0 … a_{t-1}`` and ``r_0 … r_{t-1}``. ``rnn`` ``[L, n_envs, S]``
    is the state after ``x_0 … x_{t-1}``; where ``stale[i]``, it was not computed with the current
    weights (a step acted by ℰ alone, or a gradient step or warmup since) and is recomputed from the
    history before the next greedy action.
    """

    observations: list[list[Any]]
    actions: list[list[int]]
    rewards: list[list[float]]
    rnn: th.Tensor
    previous_action: th.Tensor
    previous_reward: th.Tensor
    stale: np.ndarray
    finished: int = 0  # episodes stored in the buffer and not yet followed by their gradient steps

    @classmethod
    def start(cls, first_observations: Any, rnn: th.Tensor) -> EpisodesInProgress:
        """:param first_observations: the VecEnv's observations (as the network reads them).
        :param rnn: the initial states ``[L, n_envs, S]``."""
        n_envs = rnn.shape[1]
        return cls(
            observations=[[observation_of_env(first_observations, i)] for i in range(n_envs)],
            actions=[[] for _ in range(n_envs)],
            rewards=[[] for _ in range(n_envs)],
            rnn=rnn,
            previous_action=th.full((n_envs,), NO_ACTION, device=rnn.device),
            previous_reward=th.zeros(n_envs, device=rnn.device),
            stale=np.zeros(n_envs, dtype=bool),
        )

    def record_step(
        self,
        actions: np.ndarray,
        rewards: np.ndarray,
        new_obs: np.ndarray,
        dones: np.ndarray,
        infos: list[dict[str, Any]],
        replay_buffer: EpisodeReplayBuffer,
    ) -> int:
        """Append a step to each env's episode; store the episodes that ended in ``replay_buffer`` (counted
        in ``finished``) and start the next ones. Returns the number of episodes stored."""
        space = replay_buffer.observation_space
        new_obs = as_network_observation(new_obs, space)
        ended = np.flatnonzero(dones)
        if len(ended):
            self.rnn = self.rnn.clone()
            self.rnn[:, ended] = 0.0  # the next episode starts from x_0 = 0
        for i in range(len(actions)):
            self.actions[i].append(int(actions[i]))
            self.rewards[i].append(float(rewards[i]))
            if dones[i]:
                last = as_network_observation(infos[i]["terminal_observation"], space)
                observations = stack_observations([*self.observations[i], last])
                terminated = not infos[i].get("TimeLimit.truncated", False)
                replay_buffer.add(
                    observations, np.array(self.actions[i]), np.array(self.rewards[i]), terminated
                )
                self.finished += 1
                self.observations[i], self.actions[i], self.rewards[i] = (
                    [observation_of_env(new_obs, i)],
                    [],
                    [],
                )
                self.previous_action[i] = NO_ACTION
                self.previous_reward[i] = 0.0
                self.stale[i] = False
            else:
                self.observations[i].append(observation_of_env(new_obs, i))
                self.previous_action[i] = int(actions[i])
                self.previous_reward[i] = float(rewards[i])
        return len(ended)

    def refresh_states(self, q_net: RecurrentQNetwork, device: th.device) -> None:
        """Recompute the stale states of envs in the middle of an episode from their histories."""
        for i in np.flatnonzero(self.stale):
            if self.actions[i]:  # at an episode's start the state is x_0 = 0
                observations = map_observation(
                    lambda array: th.as_tensor(array, device=device)[None],
                    stack_observations(self.observations[i]),
                )
                actions = th.as_tensor(self.actions[i], device=device)[None]
                rewards = th.as_tensor(self.rewards[i], dtype=th.float32, device=device)[None]
                x = q_net.episode_features(observations, actions, rewards)  # x_0 … x_t
                with th.no_grad():
                    self.rnn[:, i] = q_net.rnn(x[:, :-1])[1][:, 0]  # the state after x_0 … x_{t-1}
        self.stale[:] = False


def start_episodes(model: DRQN) -> EpisodesInProgress:
    """Start the episodes of every env afresh (resetting the envs if one is mid-episode)."""
    assert model.env is not None
    if model._last_obs is None or not np.all(model._last_episode_starts):
        model._last_obs = model.env.reset()
        model._last_episode_starts = np.ones(model.env.num_envs, dtype=bool)
    rnn = model.q_net.rnn.initial_state(model.env.num_envs, model.device)
    return EpisodesInProgress.start(as_network_observation(model._last_obs, model.observation_space), rnn)


def needs_fill(model: DRQN) -> bool:
    """Whether the buffer still lacks transitions, or fewer than ``learning_starts`` env steps were taken."""
    return not model.replay_buffer.full or model.num_timesteps < model.learning_starts


def fill_replay_buffer(model: DRQN, callback: BaseCallback) -> bool:
    """Line 2: episodes of ℰ until the buffer holds ``buffer_size`` transitions and ``learning_starts``
    env steps were taken; False if a callback stopped training."""
    needed = max(model.buffer_size - len(model.replay_buffer), model.learning_starts - model.num_timesteps)
    model._open_bar("buffer fill", needed, "step")
    episodes = model._episodes_in_progress
    while needs_fill(model):
        if not collect_episodes(model, callback, explore_only=True):
            return False
        model.num_fill_episodes += episodes.finished
        episodes.finished = 0
    return True


def collect_episodes(model: DRQN, callback: BaseCallback, explore_only: bool = False) -> bool:
    """Step every env until an episode ends (lines 10-20): ε-greedy actions (ℰ only if
    ``explore_only``); each episode that ends is stored in the buffer and counted in
    ``finished``. False if a callback stopped training."""
    assert model.env is not None
    self = model  # the callbacks' locals()["self"] is the algorithm, as in SB3's collect_rollouts
    policy, device = model.policy, model.device
    q_net = policy.acting_net if model.average_collects else policy.q_net  # θ̄ if kept, unless told not
    episodes = model._episodes_in_progress
    policy.set_training_mode(False)
    while True:
        if explore_only or model.exploration_rate >= 1.0:
            actions = policy.exploration_actions(model.env.num_envs)
            episodes.stale[:] = True  # the Q-network did not see this step
        else:
            episodes.refresh_states(q_net, device)
            with th.no_grad():
                obs = map_observation(
                    lambda array: th.as_tensor(array, device=device),
                    as_network_observation(model._last_obs, model.observation_space),
                )
                x = q_net.features(obs, episodes.previous_action, episodes.previous_reward)
                q_values, episodes.rnn = q_net.step(x, episodes.rnn)
            actions = policy.select_actions(q_values, policy.rng, model.exploration_rate)
        new_obs, rewards, dones, infos = model.env.step(actions)
        model.num_timesteps += model.env.num_envs
        callback.update_locals(locals())
        if not callback.on_step():
            model._last_obs, model._last_episode_starts = new_obs, dones
            return False
        if model._bar is not None and model._bar.unit == "step":
            model._bar.update(model.env.num_envs)
        model._update_info_buffer(infos, dones)
        stored = episodes.record_step(actions, rewards, new_obs, dones, infos, model.replay_buffer)
        model._episode_num += stored
        model._last_obs, model._last_episode_starts = new_obs, dones
        model._update_current_progress_remaining(model.num_timesteps, model._total_timesteps)
        model._update_exploration_rate()
        if episodes.finished:
            return True
