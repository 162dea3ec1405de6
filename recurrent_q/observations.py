"""DRQN's observation spaces: which it takes, how their observations are stored and encoded.

DRQN takes ``Discrete``, ``MultiDiscrete``, ``MultiBinary`` and ``Box`` observations, and ``Dict`` or
``Tuple`` spaces of these (not nested: Stable-Baselines3's ``VecEnv`` does not take nested spaces).

* **Structure.** A ``Tuple`` observation is handled as a ``Dict`` keyed ``"0"``, ``"1"``, … in its order
  (:func:`network_space`, :func:`as_network_observation`); a ``Dict`` observation is a ``dict`` of arrays.
  The replay buffer stores the *raw* observations, one array per key for a ``Dict`` or ``Tuple``, in a
  compact dtype (:func:`storage_dtype`: integers for ``Discrete`` / ``MultiDiscrete``, ``uint8`` for images,
  ``float32`` otherwise), as SB3's ``DictReplayBuffer`` does; they are encoded by the Q-network when it
  reads them, so that images stay ``uint8`` in memory and a features extractor gets them whole.
* **Encoding** (:func:`preprocess_observation`, SB3's ``preprocess_obs``): ``Discrete`` -> one-hot,
  ``MultiDiscrete`` -> concatenated one-hots, ``MultiBinary`` and ``Box`` -> floats, images (``uint8``
  ``Box`` of 3 dimensions with values in [0, 255], SB3's ``is_image_space``) divided by 255
  (``normalize_images``). Then a features extractor (SB3's convention, :func:`default_features_extractor`):
  SB3's ``FlattenExtractor`` for vectors, :class:`SmallCNN` for images, :class:`MultiInputExtractor`
  (SB3's ``CombinedExtractor`` with :class:`SmallCNN` for its images) for ``Dict`` and ``Tuple``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.preprocessing import (
    get_flattened_obs_dim,
    is_image_space,
    is_image_space_channels_first,
    preprocess_obs,
)
from stable_baselines3.common.torch_layers import (
    BaseFeaturesExtractor,
    CombinedExtractor,
    FlattenExtractor,
    NatureCNN,
)
from torch import nn

LEAF_SPACES = (spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Box)
ACCEPTED = (
    "Discrete, MultiDiscrete (1-D), MultiBinary, Box (vectors, or uint8 images with values in [0, 255], "
    "channel-first or channel-last) and Dict or Tuple spaces of these (not nested)"
)

Observation = Any  # an array, or a dict of arrays (a Dict or Tuple space); numpy or torch


def _refuse(space: spaces.Space, reason: str) -> ValueError:
    return ValueError(f"DRQN cannot take the observation space {space}: {reason}. It accepts {ACCEPTED}.")


def check_observation_space(space: spaces.Space) -> None:
    """Raise a ``ValueError`` naming ``space`` (and its part) and the accepted kinds unless DRQN takes it
    (``MultiDiscrete`` of one dimension only, as SB3)."""
    if isinstance(space, (spaces.Dict, spaces.Tuple)):
        kind = type(space).__name__
        parts = network_space(space).spaces
        if not parts:
            raise _refuse(space, f"the {kind} is empty")
        for key, part in parts.items():
            if isinstance(part, (spaces.Dict, spaces.Tuple)):
                raise _refuse(space, f"its part {key!r} is a nested {type(part).__name__} space")
            if isinstance(part, spaces.MultiDiscrete):
                check_observation_space(part)
            if not isinstance(part, LEAF_SPACES):
                raise _refuse(
                    space,
                    f"its part {key!r} is {part} ({type(part).__name__}); drop that part, e.g. with "
                    "gymnasium.wrappers.FilterObservation (for MiniGrid, whose 'mission' is a text, use "
                    "minigrid.wrappers.ImgObsWrapper or keep 'image' and 'direction')",
                )
    elif not isinstance(space, LEAF_SPACES):
        raise _refuse(space, f"{type(space).__name__} spaces are not supported")
    elif isinstance(space, spaces.MultiDiscrete) and len(space.shape) != 1:
        raise _refuse(
            space,
            f"a MultiDiscrete of {len(space.shape)} dimensions is not supported (as in SB3); flatten it, "
            "e.g. with gymnasium.wrappers.FlattenObservation (one-hots)",
        )


def network_space(space: spaces.Space) -> spaces.Space:
    """The space of the observations as the Q-network reads them: a ``Tuple`` as a ``Dict`` keyed
    ``"0"``, ``"1"``, … (in its order), any other space as itself."""
    if isinstance(space, spaces.Tuple):
        return spaces.Dict([(str(i), part) for i, part in enumerate(space.spaces)])
    return space


def as_network_observation(observation: Observation, space: spaces.Space) -> Observation:
    """An observation (or a batch) of ``space`` as the Q-network reads it (see :func:`network_space`)."""
    if isinstance(space, spaces.Tuple) and isinstance(observation, (tuple, list)):
        return {str(i): part for i, part in enumerate(observation)}
    return observation


def map_observation(function: Callable[[Any], Any], observation: Observation) -> Observation:
    """``function`` applied to an array, or to each array of a dict."""
    if isinstance(observation, dict):
        return {key: function(part) for key, part in observation.items()}
    return function(observation)


def observation_of_env(observation: Observation, i: int) -> Observation:
    """Env ``i``'s observation in a batch (an array or a dict of arrays)."""
    if isinstance(observation, dict):
        return {key: part[i] for key, part in observation.items()}
    return observation[i]


def stack_observations(observations: Sequence[Observation]) -> Observation:
    """``np.stack`` of a list of observations (arrays, or dicts of arrays: one stack per key)."""
    first = observations[0]
    if isinstance(first, dict):
        return {key: np.stack([obs[key] for obs in observations]) for key in first}
    return np.stack(observations)


def batch_size(observation: Observation) -> int:
    """The length of the first axis of an observation batch (of its first part for a dict)."""
    if isinstance(observation, dict):
        observation = next(iter(observation.values()))
    return len(observation)


def observation_shape(observation: Any) -> Any:
    """The shape of an observation (for messages): of each part of a dict or tuple."""
    if isinstance(observation, dict):
        return {key: np.shape(part) for key, part in observation.items()}
    if isinstance(observation, tuple):
        return tuple(np.shape(part) for part in observation)
    return np.shape(observation)


def storage_dtype(space: spaces.Space) -> type:
    """The dtype in which the replay buffer stores observations of a non-structured ``space``."""
    if isinstance(space, (spaces.Discrete, spaces.MultiDiscrete)):
        return np.int64
    if isinstance(space, spaces.MultiBinary):
        return np.int8
    if is_image_space(space):
        return np.uint8
    return np.float32


def preprocess_observation(
    observation: th.Tensor | dict[str, th.Tensor], space: spaces.Space, normalize_images: bool = True
) -> th.Tensor | dict[str, th.Tensor]:
    """SB3's ``preprocess_obs`` of a batch ``[N, *shape]`` (a dict of them for a ``Dict`` space), where the
    ``start`` of ``Discrete`` and ``MultiDiscrete`` spaces is honoured: ``Discrete`` -> one-hot ``[N, n]``,
    ``MultiDiscrete`` -> the one-hots of its components concatenated ``[N, sum(nvec)]``, images divided by
    255 if ``normalize_images``, other ``Box`` and ``MultiBinary`` -> floats."""
    if isinstance(space, spaces.Dict):
        return {
            key: preprocess_observation(observation[key], part, normalize_images)
            for key, part in space.spaces.items()
        }
    if isinstance(space, spaces.Discrete):
        return F.one_hot(observation.long().reshape(-1) - int(space.start), int(space.n)).float()
    if isinstance(space, spaces.MultiDiscrete):
        nvec, start = space.nvec, space.start
        values = observation.long().reshape(len(observation), len(nvec))
        return th.cat(
            [F.one_hot(values[:, i] - int(start[i]), int(n)) for i, n in enumerate(nvec)], -1
        ).float()
    return preprocess_obs(observation, space, normalize_images=normalize_images)


class SmallCNN(BaseFeaturesExtractor):
    """A CNN for small images, such as MiniGrid's 7 × 7 × 3 partial view (SB3's ``NatureCNN`` needs at least
    36 × 36): 3 × 3 convolutions with padding 1 (they keep the height and width), each followed by a ReLU,
    then a linear layer to ``features_dim`` and a ReLU.

    Images are channel-first ``[N, C, H, W]`` (as SB3's ``VecTransposeImage`` makes them), or channel-last
    ``[N, H, W, C]`` if the space is (SB3's ``is_image_space_channels_first``; a ``Tuple``'s images are not
    transposed by SB3): they are then permuted here.

    :param observation_space: a ``Box`` of 3 dimensions (an image, see SB3's ``is_image_space``).
    :param features_dim: number of features out.
    :param channels: output channels of each convolution (16 then 32 by default).
    :param normalized_image: as SB3's ``NatureCNN``: only check that the space is a ``Box`` of 3
        dimensions, not its dtype and bounds.
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        features_dim: int = 64,
        channels: Sequence[int] = (16, 32),
        normalized_image: bool = False,
    ) -> None:
        if not is_image_space(observation_space, normalized_image=normalized_image):
            raise ValueError(
                f"SmallCNN needs an image space (a uint8 Box of 3 dimensions with values in [0, 255]); got "
                f"{observation_space}"
            )
        super().__init__(observation_space, features_dim)
        shape = observation_space.shape
        self.channels_first = is_image_space_channels_first(observation_space)
        c, h, w = shape if self.channels_first else (shape[2], shape[0], shape[1])
        layers: list[nn.Module] = []
        for out in channels:
            layers += [nn.Conv2d(c, int(out), kernel_size=3, padding=1), nn.ReLU()]
            c = int(out)
        layers.append(nn.Flatten())
        self.cnn = nn.Sequential(*layers)
        self.linear = nn.Sequential(nn.Linear(c * h * w, features_dim), nn.ReLU())

    def forward(self, observations: th.Tensor) -> th.Tensor:
        if not self.channels_first:
            observations = observations.permute(0, 3, 1, 2)
        return self.linear(self.cnn(observations))


class MultiInputExtractor(CombinedExtractor):
    """SB3's ``CombinedExtractor`` (its ``forward``: each key's features concatenated, in the space's order)
    with a :class:`SmallCNN` for each image key instead of ``NatureCNN``, and ``nn.Flatten`` for the others
    (one-hots for ``Discrete`` and ``MultiDiscrete``).

    :param observation_space: a ``Dict`` space (a ``Tuple`` is given as :func:`network_space` makes it).
    :param cnn_output_dim: features of each image key.
    :param normalized_image: as SB3's ``CombinedExtractor``.
    """

    def __init__(
        self, observation_space: spaces.Dict, cnn_output_dim: int = 64, normalized_image: bool = False
    ) -> None:
        BaseFeaturesExtractor.__init__(self, observation_space, features_dim=1)
        extractors: dict[str, nn.Module] = {}
        total = 0
        for key, part in observation_space.spaces.items():
            if is_image_space(part, normalized_image=normalized_image):
                extractors[key] = SmallCNN(
                    part, features_dim=cnn_output_dim, normalized_image=normalized_image
                )
                total += cnn_output_dim
            else:
                extractors[key] = nn.Flatten()
                total += int(get_flattened_obs_dim(part))
        self.extractors = nn.ModuleDict(extractors)
        self._features_dim = total


def default_features_extractor(
    space: spaces.Space, normalize_images: bool = True
) -> type[BaseFeaturesExtractor]:
    """The features extractor DRQN uses unless ``policy_kwargs`` name one: :class:`MultiInputExtractor` for
    a ``Dict`` (or ``Tuple``) space, :class:`SmallCNN` for an image, else SB3's ``FlattenExtractor``
    (one-hot of a ``Discrete``, flattened ``Box``: no parameter). As in SB3, with ``normalize_images=False``
    any ``Box`` of 3 dimensions counts as an (already normalised) image."""
    space = network_space(space)
    if isinstance(space, spaces.Dict):
        return MultiInputExtractor
    if is_image_space(space, normalized_image=not normalize_images):
        return SmallCNN
    return FlattenExtractor


def make_features_extractor(
    space: spaces.Space,
    features_extractor_class: type[BaseFeaturesExtractor] | None = None,
    features_extractor_kwargs: dict[str, Any] | None = None,
    normalize_images: bool = True,
) -> BaseFeaturesExtractor:
    """The features extractor of a Q-network, built on :func:`network_space` of ``space`` as SB3 builds it
    (``features_extractor_class(space, **features_extractor_kwargs)``; ``normalized_image=True`` is passed
    to SB3's CNN extractors and to ours when ``normalize_images`` is False)."""
    cls = features_extractor_class or default_features_extractor(space, normalize_images)
    if not (isinstance(cls, type) and issubclass(cls, nn.Module)):
        raise ValueError(
            "features_extractor_class must be a class of features extractor (a subclass of SB3's "
            f"BaseFeaturesExtractor); got {cls!r}"
        )
    kwargs = dict(features_extractor_kwargs or {})
    if not normalize_images and issubclass(cls, (NatureCNN, CombinedExtractor, SmallCNN)):
        kwargs.setdefault("normalized_image", True)
    extractor = cls(network_space(space), **kwargs)
    if not isinstance(getattr(extractor, "features_dim", None), (int, np.integer)):
        raise ValueError(f"the features extractor {cls.__name__} has no integer features_dim")
    return extractor
