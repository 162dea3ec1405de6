"""The DRQN policy (Appendix C): online and target recurrent Q-networks (:mod:`recurrent_q.q_network`, whose
names are importable from here too), ε-greedy acting with the exploration policy ℰ, and ``predict`` with a
recurrent state."""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3.common.policies import BasePolicy
from stable_baselines3.common.preprocessing import is_image_space, maybe_transpose
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import is_vectorized_observation, obs_as_tensor
from torch import nn

from recurrent_q.observations import batch_size, network_space, observation_shape
from recurrent_q.q_network import NO_ACTION as NO_ACTION
from recurrent_q.q_network import DuelingHead as DuelingHead
from recurrent_q.q_network import RecurrentQNetwork as RecurrentQNetwork
from recurrent_q.q_network import check_net_arch as check_net_arch
from recurrent_q.q_network import check_spaces as check_spaces


def exploration_probs(env: Any) -> np.ndarray:
    """The exploration policy ℰ of an environment, the one place it is read: the action probabilities in its
    ``exploration_probs`` attribute (``TMaze-v0``: ``[1/2, 1/6, 1/6, 1/6]``), else uniform over its actions.

    :param env: a Gymnasium env (its ``unwrapped`` is read) or a Stable-Baselines3 ``VecEnv`` (its first env).
    """
    if hasattr(env, "get_attr"):  # a VecEnv
        try:
            probs = env.get_attr("exploration_probs")[0]
        except AttributeError:
            probs = None
    else:
        probs = getattr(env.unwrapped, "exploration_probs", None)
    n = int(env.action_space.n)
    return np.full(n, 1.0 / n) if probs is None else np.asarray(probs, dtype=np.float64)


def draw_exploration_actions(probs: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` actions drawn from the probabilities ``probs`` of ℰ (inverse CDF of ``n`` uniform draws)."""
    cumulative = np.cumsum(probs)
    return np.minimum(
        np.searchsorted(cumulative, rng.random(n) * cumulative[-1], side="right"), len(cumulative) - 1
    )


class RecurrentQState(NamedTuple):
    """What ``DRQN.predict`` carries between calls, as numpy arrays (CPU), one row per env.

    :param rnn: the stack's state ``[L, n_envs, S]``.
    :param previous_action: ``a_{t-1}`` ``[n_envs]`` (``NO_ACTION`` at an episode's start).
    :param previous_reward: ``r_{t-1}`` ``[n_envs]`` (0 at an episode's start).
    """

    rnn: np.ndarray
    previous_action: np.ndarray
    previous_reward: np.ndarray


def check_finite(name: str, value: Any) -> None:
    """Raise a ``ValueError`` if the array ``value`` (or a part of a dict or tuple of arrays) holds NaN or
    infinite numbers (a Q-network would silently map them to action 0)."""
    if isinstance(value, dict):
        for key, part in value.items():
            check_finite(f"{name}[{key!r}]", part)
        return
    if isinstance(value, tuple):
        for i, part in enumerate(value):
            check_finite(f"{name}[{i}]", part)
        return
    array = np.asarray(value)
    if np.issubdtype(array.dtype, np.number) and not np.isfinite(array).all():
        bad = int((~np.isfinite(array)).sum())
        raise ValueError(
            f"{name} contains NaN or infinite values ({bad} of {array.size}, shape {array.shape}): "
            "a Q-network would turn them into action 0"
        )


class DRQNPolicy(BasePolicy):
    """Online and target recurrent Q-networks, the optimiser, and SB3's ``predict`` with a recurrent state.

    :param observation_space: a space that ``check_spaces`` accepts.
    :param action_space: ``Discrete``.
    :param lr_schedule: learning rate schedule (SB3).
    :param cell: one of ``CELL_NAMES``.
    :param hidden_size: width of each layer (2 × 32 by default; the paper's §5.3 uses 2 × 256).
    :param num_layers: number of recurrent layers.
    :param double: double layers (§6.3).
    :param t_max: chrono initialisation horizon (``cell="chrono"`` only).
    :param use_previous_reward: also feed the previous reward (``predict`` then reads it from the state).
    :param init: initialisation of the cells (``"uniform"`` or ``"xavier"``, see ``make_cell``).
    :param net_arch: hidden widths of the Q head (None or ``[]``: one linear layer, the paper's head).
    :param activation_fn: activation between the head's layers.
    :param dueling: a dueling head, ``Q = V + A − mean A`` (``recurrent_q.q_network.DuelingHead``).
    :param exploration_probs: action probabilities of the exploration policy ℰ (uniform if None).
    :param optimizer_class: optimiser (Adam).
    :param optimizer_kwargs: extra optimiser arguments.
    :param averaged: also keep ``q_net_average``, a Polyak average of ``q_net``'s weights that the
        algorithm updates (``DRQN(average_tau=...)``); it then gives every action (:attr:`acting_net`).
    :param features_extractor_class: SB3's ``BaseFeaturesExtractor`` subclass encoding the observation in
        the cells' input (None: flatten / one-hot, ``SmallCNN`` for images, ``MultiInputExtractor`` for
        ``Dict`` and ``Tuple``; see ``recurrent_q.observations``); each network builds its own.
    :param features_extractor_kwargs: its keyword arguments.
    :param normalize_images: divide image observations by 255 (SB3's ``normalize_images``).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        lr_schedule: Schedule,
        cell: str = "gru",
        hidden_size: int = 32,
        num_layers: int = 2,
        double: bool = False,
        t_max: float | None = None,
        use_previous_reward: bool = False,
        init: str = "uniform",
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        exploration_probs: np.ndarray | None = None,
        optimizer_class: type[th.optim.Optimizer] = th.optim.Adam,
        optimizer_kwargs: dict[str, Any] | None = None,
        averaged: bool = False,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        dueling: bool = False,
    ) -> None:
        super().__init__(
            observation_space,
            action_space,
            normalize_images=normalize_images,
            optimizer_class=optimizer_class,
            optimizer_kwargs=optimizer_kwargs,
        )
        self.net_kwargs = dict(
            cell=cell,
            hidden_size=hidden_size,
            num_layers=num_layers,
            double=double,
            t_max=t_max,
            use_previous_reward=use_previous_reward,
            init=init,
            net_arch=check_net_arch(net_arch),
            activation_fn=activation_fn,
            features_extractor_class=features_extractor_class,
            features_extractor_kwargs=features_extractor_kwargs,
            normalize_images=normalize_images,
            dueling=dueling,
        )
        n = int(action_space.n)
        probs = (
            np.full(n, 1.0 / n)
            if exploration_probs is None
            else np.asarray(exploration_probs, dtype=np.float64)
        )
        if probs.shape != (n,) or np.any(probs < 0) or not np.isclose(probs.sum(), 1.0):
            raise ValueError(
                f"exploration_probs must be {n} non-negative probabilities summing to 1; got {probs}"
            )
        self.exploration_probs = probs
        self.exploration_rate = 0.0  # set by the algorithm; used by predict(deterministic=False)
        self.rng = np.random.default_rng()  # exploration draws; the algorithm seeds it
        self.q_net = RecurrentQNetwork(observation_space, action_space, **self.net_kwargs)
        self.q_net_target = RecurrentQNetwork(observation_space, action_space, **self.net_kwargs)
        self.q_net_target.load_state_dict(self.q_net.state_dict())
        self.q_net_target.requires_grad_(False)
        self.averaged = bool(averaged)
        self.q_net_average: RecurrentQNetwork | None = None
        if self.averaged:
            self.q_net_average = RecurrentQNetwork(observation_space, action_space, **self.net_kwargs)
            self.q_net_average.load_state_dict(self.q_net.state_dict())
            self.q_net_average.requires_grad_(False)
        self.optimizer = self.optimizer_class(
            self.q_net.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs
        )
        self._warned_reward = False

    def _get_constructor_parameters(self) -> dict[str, Any]:
        """The arguments that rebuild this policy (``BasePolicy.save`` / ``load``); the learning rate
        schedule is a dummy one, as in SB3: a policy loaded alone is for acting, not for training."""
        data = super()._get_constructor_parameters()
        data.update(
            self.net_kwargs,
            lr_schedule=self._dummy_schedule,
            exploration_probs=self.exploration_probs,
            optimizer_class=self.optimizer_class,
            optimizer_kwargs=self.optimizer_kwargs,
            averaged=self.averaged,
        )
        return data

    @property
    def acting_net(self) -> RecurrentQNetwork:
        """The network whose Q-values choose the actions: ``q_net_average`` if kept, else ``q_net``."""
        return self.q_net if self.q_net_average is None else self.q_net_average

    def forward(self, obs: th.Tensor, deterministic: bool = True) -> th.Tensor:
        return self._predict(obs, deterministic)

    def obs_to_tensor(self, observation: Any) -> tuple[Any, bool]:
        """SB3's ``obs_to_tensor`` (images transposed to the space's channel order, a batch axis added to a
        single observation), also for a ``Tuple`` observation, returned as a dict keyed ``"0"``, ``"1"``, …"""
        space = self.observation_space
        if not isinstance(space, spaces.Tuple):
            return super().obs_to_tensor(observation)
        if not isinstance(observation, (tuple, list)) or len(observation) != len(space.spaces):
            raise ValueError(
                f"the observation space is {space}: an observation must be a tuple of {len(space.spaces)} "
                f"arrays; got {type(observation).__name__}"
            )
        vectorized, parts = False, {}
        for (key, part), obs in zip(network_space(space).spaces.items(), observation, strict=True):
            obs = maybe_transpose(np.asarray(obs), part) if is_image_space(part) else np.asarray(obs)
            vectorized = vectorized or is_vectorized_observation(obs, part)
            parts[key] = obs.reshape((-1, *part.shape))
        return obs_as_tensor(parts, self.device), vectorized

    def _predict(self, observation: th.Tensor, deterministic: bool = True) -> th.Tensor:
        """Greedy action of a one-step history ``(o_0)`` (no memory); ``predict`` carries the state."""
        n = batch_size(observation)
        none = th.full((n,), NO_ACTION, device=self.device)
        net = self.acting_net
        x = net.features(observation, none, th.zeros(n, device=self.device))
        return net.step(x)[0].argmax(-1)

    def initial_state(self, n_envs: int) -> RecurrentQState:
        """The state before any step, for ``n_envs`` envs (numpy, CPU)."""
        rnn = self.q_net.rnn
        return RecurrentQState(
            rnn=np.zeros((rnn.num_layers, n_envs, rnn.state_size), dtype=np.float32),
            previous_action=np.full(n_envs, NO_ACTION, dtype=np.int64),
            previous_reward=np.zeros(n_envs, dtype=np.float32),
        )

    def check_state(self, state: tuple[np.ndarray, ...], n_envs: int, observation: Any) -> RecurrentQState:
        """``state`` as a ``RecurrentQState`` of ``n_envs`` envs, or a ``ValueError`` naming both shapes."""
        try:
            state = RecurrentQState(*(np.asarray(part) for part in state))
        except TypeError:
            raise ValueError(
                "state must be the RecurrentQState returned by the previous predict (rnn, previous_action, "
                f"previous_reward) or None; got {type(state).__name__}"
            ) from None
        rnn = self.q_net.rnn
        expected = (rnn.num_layers, n_envs, rnn.state_size)
        if (
            state.rnn.shape != expected
            or state.previous_action.shape != (n_envs,)
            or state.previous_reward.shape != (n_envs,)
        ):
            raise ValueError(
                "state does not match observation: observation of shape "
                f"{observation_shape(observation)} holds {n_envs} env(s), so state.rnn must have shape "
                f"{expected} and state.previous_action, state.previous_reward shape ({n_envs},); got "
                f"state.rnn {state.rnn.shape}, state.previous_action {state.previous_action.shape}, "
                f"state.previous_reward {state.previous_reward.shape} (state=None starts every env afresh)"
            )
        for name, value in zip(state._fields, state, strict=True):
            check_finite(f"state.{name}", value)
        return state

    def select_actions(
        self, q_values: th.Tensor, rng: np.random.Generator, exploration_rate: float
    ) -> np.ndarray:
        """ε-greedy: with probability ``exploration_rate`` an action of ℰ, otherwise ``argmax Q``."""
        greedy = q_values.argmax(-1).cpu().numpy()
        if exploration_rate <= 0.0:
            return greedy
        explore = rng.random(len(greedy)) < exploration_rate
        if explore.any():
            greedy[explore] = self.exploration_actions(int(explore.sum()), rng)
        return greedy

    def exploration_actions(self, n: int, rng: np.random.Generator | None = None) -> np.ndarray:
        """``n`` actions drawn from the exploration policy ℰ."""
        return draw_exploration_actions(self.exploration_probs, n, self.rng if rng is None else rng)

    def predict(
        self,
        observation: np.ndarray | dict[str, np.ndarray],
        state: tuple[np.ndarray, ...] | None = None,
        episode_start: np.ndarray | None = None,
        deterministic: bool = False,
    ) -> tuple[np.ndarray, RecurrentQState]:
        """Actions for one step of ``n_envs`` envs, carrying the recurrent state (as RecurrentPPO does).

        :param observation: one observation, or a batch ``[n_envs, ...]`` from a VecEnv.
        :param state: the ``RecurrentQState`` returned by the previous call (zeros if None).
        :param episode_start: bool ``[n_envs]``; where true the state is reset before this step.
        :param deterministic: greedy actions if True, else ε-greedy with ``exploration_rate``.
        :return: actions and the next state.
        :raises ValueError: when ``state`` or ``episode_start`` is for another number of envs than
            ``observation``, or when the observation or the state holds NaN or infinite values.
        """
        self.set_training_mode(False)
        check_finite("observation", observation)
        obs, vectorized = self.obs_to_tensor(observation)
        n_envs = batch_size(obs)
        state = self.initial_state(n_envs) if state is None else self.check_state(state, n_envs, observation)
        if episode_start is None:
            episode_start = np.zeros(n_envs, dtype=bool)
        start = np.asarray(episode_start, dtype=bool)
        if start.size != n_envs:
            raise ValueError(
                f"episode_start must hold one flag per env: {n_envs} for observation of shape "
                f"{observation_shape(observation)}; got shape {start.shape}"
            )
        start = start.reshape(n_envs)
        if self.q_net.use_previous_reward and not self._warned_reward:
            warnings.warn(
                "use_previous_reward=True: predict reads r_{t-1} from state.previous_reward; "
                "set it from the env's rewards between calls",
                stacklevel=2,
            )
            self._warned_reward = True
        previous_action = np.where(start, NO_ACTION, state.previous_action)
        previous_reward = np.where(start, 0.0, state.previous_reward)
        with th.no_grad():
            rnn_state = th.as_tensor(state.rnn, dtype=th.float32, device=self.device)
            rnn_state = rnn_state * th.as_tensor(~start, dtype=th.float32, device=self.device).view(1, -1, 1)
            net = self.acting_net
            x = net.features(
                obs,
                th.as_tensor(previous_action, device=self.device),
                th.as_tensor(previous_reward, device=self.device),
            )
            q_values, rnn_state = net.step(x, rnn_state)
        rate = 0.0 if deterministic else self.exploration_rate
        actions = self.select_actions(q_values, self.rng, rate)
        new_state = RecurrentQState(
            rnn=rnn_state.cpu().numpy(),
            previous_action=actions.astype(np.int64),
            previous_reward=np.zeros(n_envs, dtype=np.float32),
        )
        if not vectorized:
            actions = actions.squeeze(axis=0)
        return actions, new_state
