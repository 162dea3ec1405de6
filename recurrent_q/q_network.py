"""The recurrent Q-network of DRQN (Appendix C): the input ``x_k = (one-hot a_{k-1}, φ(o_k)[, r_{k-1}])``, a
cell stack of the zoo and a Q head; the checks of the spaces and of the head's ``net_arch``.
:mod:`recurrent_q.policies` (the DRQN policy) re-exports every public name here."""

from __future__ import annotations

import math
from typing import Any

import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor, create_mlp
from torch import nn

from recurrent_q.cells import check_cell, make_cell
from recurrent_q.checks import check_flag
from recurrent_q.observations import (
    as_network_observation,
    check_observation_space,
    make_features_extractor,
    network_space,
    preprocess_observation,
)

NO_ACTION = -1  # the previous action a_{-1} at the first step: encoded as a zero vector


def check_spaces(observation_space: spaces.Space, action_space: spaces.Space) -> None:
    """Raise a ``ValueError`` unless actions are ``Discrete`` and observations of a kind DRQN takes:
    ``Discrete``, ``MultiDiscrete``, ``MultiBinary``, ``Box`` (vectors or images), or a ``Dict`` or
    ``Tuple`` of these (see ``recurrent_q.observations.check_observation_space``)."""
    if not isinstance(action_space, spaces.Discrete):
        raise ValueError(f"DRQN needs a Discrete action space; got {action_space}")
    check_observation_space(observation_space)


def check_net_arch(net_arch: Any) -> list[int]:
    """Return ``net_arch`` as a list of layer widths, or raise a ``ValueError`` naming what is allowed."""
    if net_arch is None:
        return []
    if not isinstance(net_arch, (list, tuple)) or not all(
        isinstance(width, int) and not isinstance(width, bool) and width >= 1 for width in net_arch
    ):
        raise ValueError(
            f"net_arch must be None or a list of positive integers (hidden widths); got {net_arch!r}"
        )
    return list(net_arch)


def _mlp(
    in_features: int, out_features: int, net_arch: list[int], activation_fn: type[nn.Module]
) -> nn.Module:
    """SB3's ``create_mlp`` as a module; with no hidden layer a bare ``nn.Linear``."""
    if not net_arch:
        return nn.Linear(in_features, out_features)
    return nn.Sequential(*create_mlp(in_features, out_features, net_arch, activation_fn))


class DuelingHead(nn.Module):
    """The dueling Q head (Wang et al., 2016): ``Q(h, a) = V(h) + A(h, a) − mean_b A(h, b)``.

    Two streams on the cells' output, each ``net_arch`` then a linear layer: the value ``V`` (one output) and
    the advantages ``A`` (one per action). Every update of one action's Q-value moves ``V`` and so the
    others' as well; the advantage stream learns the action gaps apart from the state's value. It is meant
    for tasks whose gaps are small against the values, such as the T-Maze's corridor at long L: stepping
    Left there costs two steps, a gap of ``(1 − γ²) Q`` (about 1 % of the value at γ = 0.995). There, at
    L = 200, it did not fix the tuning seed that fails (docs/drqn-parity.md, round 25): an option, off by
    default.
    """

    def __init__(
        self, in_features: int, n_actions: int, net_arch: list[int], activation_fn: type[nn.Module]
    ) -> None:
        super().__init__()
        self.value = _mlp(in_features, 1, net_arch, activation_fn)
        self.advantage = _mlp(in_features, n_actions, net_arch, activation_fn)

    def forward(self, h: th.Tensor) -> th.Tensor:
        advantages = self.advantage(h)
        return self.value(h) + advantages - advantages.mean(-1, keepdim=True)


class RecurrentQNetwork(nn.Module):
    """``Q_θ(η_{0:t}, ·)``: input ``x_k = (one-hot a_{k-1}, φ(o_k)[, r_{k-1}])`` -> cell stack -> Q head.

    ``φ`` is SB3's preprocessing then a features extractor (``recurrent_q.observations``): by default a
    ``Discrete`` observation is one-hot encoded and a ``Box`` vector flattened (no parameter), a
    ``MultiDiscrete`` one gives its concatenated one-hots, an image goes through ``SmallCNN``, and each
    part of a ``Dict`` or ``Tuple`` observation is encoded so and concatenated (``MultiInputExtractor``).

    :param observation_space: a space that ``check_spaces`` accepts.
    :param action_space: ``Discrete``.
    :param cell: one of ``CELL_NAMES``.
    :param hidden_size: width of each layer.
    :param num_layers: number of recurrent layers.
    :param double: double layers (§6.3).
    :param t_max: chrono initialisation horizon (``cell="chrono"`` only).
    :param use_previous_reward: also feed ``r_{k-1}`` (the authors' code; off in the paper's text).
    :param init: initialisation of the cells (``"uniform"`` or ``"xavier"``, see ``make_cell``).
    :param net_arch: hidden widths of the Q head on top of the cell stack (SB3's ``net_arch``); None or
        ``[]``: one linear layer (the paper's head).
    :param activation_fn: activation between the head's layers (SB3's ``activation_fn``).
    :param dueling: a :class:`DuelingHead` (a value and an advantage stream, each of ``net_arch``) instead
        of one stream.
    :param features_extractor_class: SB3's ``BaseFeaturesExtractor`` subclass giving ``φ(o_k)`` from the
        preprocessed observation (None: ``default_features_extractor``); built on ``network_space``.
    :param features_extractor_kwargs: its keyword arguments.
    :param normalize_images: divide image observations by 255 (SB3's ``normalize_images``).
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Discrete,
        cell: str = "gru",
        hidden_size: int = 32,
        num_layers: int = 2,
        double: bool = False,
        t_max: float | None = None,
        use_previous_reward: bool = False,
        init: str = "uniform",
        net_arch: list[int] | None = None,
        activation_fn: type[nn.Module] = nn.ReLU,
        features_extractor_class: type[BaseFeaturesExtractor] | None = None,
        features_extractor_kwargs: dict[str, Any] | None = None,
        normalize_images: bool = True,
        dueling: bool = False,
    ) -> None:
        super().__init__()
        check_spaces(observation_space, action_space)
        check_cell(cell)
        self.observation_space = observation_space
        self.network_space = network_space(observation_space)
        self.n_actions = int(action_space.n)
        self.use_previous_reward = use_previous_reward
        self.normalize_images = normalize_images
        self.features_extractor = make_features_extractor(
            observation_space, features_extractor_class, features_extractor_kwargs, normalize_images
        )
        self.obs_size = int(self.features_extractor.features_dim)  # size of φ(o_k)
        input_size = self.n_actions + self.obs_size + int(use_previous_reward)
        self.rnn = make_cell(
            cell, input_size, hidden_size, num_layers=num_layers, double=double, t_max=t_max, init=init
        )
        net_arch = check_net_arch(net_arch)
        check_flag("dueling", dueling)
        if dueling:
            self.head: nn.Module = DuelingHead(self.rnn.hidden_size, self.n_actions, net_arch, activation_fn)
        else:  # with no net_arch the paper's linear head (a bare Linear: the parameter names of saved models)
            self.head = _mlp(self.rnn.hidden_size, self.n_actions, net_arch, activation_fn)

    def features(
        self, observations: th.Tensor, previous_actions: th.Tensor, previous_rewards: th.Tensor
    ) -> th.Tensor:
        """Inputs ``x[..., F]`` from raw ``observations[..., *obs_shape]`` (a dict of them for a ``Dict`` or
        ``Tuple`` space), ``a_{k-1}``, ``r_{k-1}``.

        ``previous_actions`` equal to ``NO_ACTION`` give a zero one-hot vector.
        """
        lead = previous_actions.shape
        obs = self.observation_features(observations, lead)
        actions = F.one_hot(previous_actions.long() + 1, self.n_actions + 1)[..., 1:]
        parts = [actions.float(), obs.float()]
        if self.use_previous_reward:
            parts.append(previous_rewards.float().unsqueeze(-1))
        return th.cat(parts, -1)

    def observation_features(self, observations: Any, lead: tuple[int, ...] | th.Size) -> th.Tensor:
        """``φ(o)`` ``[*lead, obs_size]`` of raw observations ``[*lead, *obs_shape]`` (or a dict of them):
        SB3's preprocessing then the features extractor, on the ``prod(lead)`` observations at once."""
        n = math.prod(lead)
        space = self.network_space
        observations = as_network_observation(observations, self.observation_space)
        if isinstance(space, spaces.Dict):
            flat = {key: observations[key].reshape(n, *part.shape) for key, part in space.spaces.items()}
        else:
            flat = observations.reshape(n, *space.shape)
        features = self.features_extractor(preprocess_observation(flat, space, self.normalize_images))
        return features.reshape(*lead, features.shape[-1])

    def episode_features(
        self,
        observations: th.Tensor,
        actions: th.Tensor,
        rewards: th.Tensor,
        previous_actions: th.Tensor | None = None,
        previous_rewards: th.Tensor | None = None,
    ) -> th.Tensor:
        """Inputs ``[B, T + 1, F]`` of episodes: ``o_0 … o_T``, ``a_{-1} … a_{T-1}``, ``r_{-1} … r_{T-1}``.

        :param previous_actions: ``[B]``, the action before each row's first observation (a window that
            starts inside its episode; ``EpisodeBatch.previous_actions``); None: ``NO_ACTION``.
        :param previous_rewards: ``[B]``, the reward before it; None: 0.
        """
        first = th.full_like(actions[:, :1], NO_ACTION)
        if previous_actions is not None:
            first = previous_actions.to(actions).view(-1, 1)
        first_reward = th.zeros_like(rewards[:, :1])
        if previous_rewards is not None:
            first_reward = previous_rewards.to(rewards).view(-1, 1)
        previous_actions = th.cat([first, actions], 1)
        previous_rewards = th.cat([first_reward, rewards], 1)
        return self.features(observations, previous_actions, previous_rewards)

    def forward(self, x: th.Tensor, state: th.Tensor | None = None) -> tuple[th.Tensor, th.Tensor]:
        """Q-values ``[B, T, |A|]`` of every prefix of ``x[B, T, F]``, and the final state ``[L, B, S]``."""
        out, state = self.rnn(x, state)
        return self.head(out), state

    def q_values(self, x: th.Tensor, lengths: th.Tensor) -> th.Tensor:
        """Q-values ``[B, T, |A|]`` of the prefixes of ``x[B, T, F]`` that row ``b`` needs: its first
        ``lengths[b]`` (the others are unspecified; padded steps are skipped where the cell allows it)."""
        return self.head(self.rnn.outputs(x, lengths))

    def step(self, x: th.Tensor, state: th.Tensor | None = None) -> tuple[th.Tensor, th.Tensor]:
        """One step for acting: ``x[B, F]`` -> (Q-values ``[B, |A|]``, state ``[L, B, S]``)."""
        out, state = self.rnn.step(x, state)
        return self.head(out), state
