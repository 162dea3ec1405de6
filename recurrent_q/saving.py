"""DRQN's saving and loading, beside SB3's: what ``save`` leaves out, one clear error for a model file that
cannot be read, the settings of models saved under former names, and the replay buffer's pickle file.

:class:`DRQNSaving` holds the methods (``load``, ``save_replay_buffer``, ``load_replay_buffer`` and SB3's
hooks of ``save``) that ``recurrent_q.drqn.DRQN`` inherits; they call the functions here.
"""

from __future__ import annotations

import io
import json
import pathlib
import pickle
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import torch as th
from gymnasium import spaces
from stable_baselines3.common.save_util import load_from_pkl, save_to_pkl

from recurrent_q.buffers import EpisodeReplayBuffer
from recurrent_q.multistability import WarmupConfig

if TYPE_CHECKING:
    from recurrent_q.drqn import DRQN

SelfDRQN = TypeVar("SelfDRQN", bound="DRQN")

EXCLUDED_SAVE_PARAMS = (
    "q_net",
    "q_net_target",
    "_vaa_generator",
    "warmup_result",
    "exploration_schedule",
    "_episodes_in_progress",
    "_episode_budget",
    "_bar",
)
"""The attributes of a DRQN that ``save`` leaves out, besides SB3's."""


@contextmanager
def readable_model(path: str | pathlib.Path | io.BufferedIOBase) -> Iterator[None]:
    """Turn the errors of reading a cut, corrupt or foreign model file into one ``ValueError`` naming
    ``path``."""
    try:
        yield
    except (
        AssertionError,
        KeyError,
        EOFError,
        zipfile.BadZipFile,
        json.JSONDecodeError,
        pickle.UnpicklingError,
    ) as error:
        raise ValueError(
            f"{path} is not a readable DRQN model ({type(error).__name__}: {error}); "
            "it may be cut short or damaged, or not written by DRQN.save"
        ) from error


def adopt_former_warmup(model: DRQN) -> None:
    """``use_warmup`` and ``warmup_config`` of a model saved when one ``warmup`` argument held both."""
    legacy = model.__dict__.pop("warmup", None)
    if legacy is not None and legacy is not False:
        model.use_warmup = True
        model.warmup_config = legacy if isinstance(legacy, WarmupConfig) else None


def read_replay_buffer(
    path: str | pathlib.Path | io.BufferedIOBase,
    observation_space: spaces.Space,
    device: th.device,
    verbose: int = 0,
) -> EpisodeReplayBuffer:
    """The replay buffer of a file written by ``DRQN.save_replay_buffer``, on ``device``, its bootstrap
    values forgotten (:meth:`EpisodeReplayBuffer.forget_next_values`).

    :raises ValueError: if the file cannot be read, or holds observations of another space than
        ``observation_space``.
    :raises TypeError: if the file holds no :class:`EpisodeReplayBuffer`.
    """
    try:
        buffer = load_from_pkl(path, verbose)
    except (EOFError, pickle.UnpicklingError, AttributeError, ValueError) as error:
        raise ValueError(
            f"{path} is not a readable replay buffer ({type(error).__name__}: {error}); "
            "it may be cut short or damaged"
        ) from error
    if not isinstance(buffer, EpisodeReplayBuffer):
        raise TypeError(
            "load_replay_buffer needs a file written by DRQN.save_replay_buffer (an "
            f"EpisodeReplayBuffer); got {type(buffer).__name__}"
        )
    if buffer.observation_space != observation_space:
        raise ValueError(
            f"the replay buffer holds observations of {buffer.observation_space}, "
            f"but the model's observation space is {observation_space}"
        )
    buffer.device = device
    buffer.forget_next_values()
    return buffer


class DRQNSaving:
    """The saving and loading methods of ``recurrent_q.drqn.DRQN`` (a base class of it, before SB3's
    ``BaseAlgorithm``, whose ``save``/``load`` they extend)."""

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), *EXCLUDED_SAVE_PARAMS]

    def _get_torch_save_params(self) -> tuple[list[str], list[str]]:
        return ["policy", "policy.optimizer"], []

    @classmethod
    def load(
        cls: type[SelfDRQN], path: str | pathlib.Path | io.BufferedIOBase, *args: Any, **kwargs: Any
    ) -> SelfDRQN:
        """SB3's ``load`` (same arguments), with one clear error for a file that is not a readable model.

        :raises ValueError: naming ``path`` when the zip is cut, corrupt, or not written by ``save``.
        :raises FileNotFoundError: naming ``path`` when neither it nor ``path`` + ``.zip`` (SB3 adds the
            suffix) exists.
        """
        found = []
        if isinstance(path, (str, pathlib.Path)):
            found = [p for p in (pathlib.Path(path), pathlib.Path(f"{path}.zip")) if p.is_file()]
            if not found:
                raise FileNotFoundError(f"no DRQN model file at {path} (nor at {path}.zip)")
        with readable_model(path):
            if found and not zipfile.is_zipfile(found[0]):  # SB3 would say it in its own words
                raise zipfile.BadZipFile("File is not a zip file")
            model = super().load(path, *args, **kwargs)
        adopt_former_warmup(model)  # a model saved when one ``warmup`` argument held both settings
        return model

    def save_replay_buffer(self: DRQN, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Save the replay buffer (whole episodes, :class:`EpisodeReplayBuffer`) as a pickle file.

        As SB3's off-policy algorithms: ``model.save`` leaves the buffer out; ``CheckpointCallback(...,
        save_replay_buffer=True)`` calls this method.

        :param path: file to write (a ``.pkl`` suffix is added if missing; folders are created).
        """
        save_to_pkl(path, self.replay_buffer, self.verbose)

    def load_replay_buffer(self: DRQN, path: str | pathlib.Path | io.BufferedIOBase) -> None:
        """Load a replay buffer written by :meth:`save_replay_buffer`, on this model's device.

        Its stored bootstrap values were computed by the target network of the run that saved it:
        they are recomputed by this model's target network before its next gradient step. A full
        buffer is not filled again by ``learn``.

        :param path: the pickle file.
        :raises TypeError: if the file holds no :class:`EpisodeReplayBuffer`.
        :raises ValueError: if its observation space is not the model's.
        """
        self.replay_buffer = read_replay_buffer(path, self.observation_space, self.device, self.verbose)
