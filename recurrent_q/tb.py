"""TensorBoard: the writer behind an SB3 logger, a writer seen through a step offset and a tag scope (the
warmup's scalars on the run's step axis), and a run's settings as a text table (:func:`write_hyperparameters`,
used by both trainers). SB3 is imported by :func:`tensorboard_writer` alone, when called: the supervised
trainer imports this module without it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stable_baselines3.common.logger import Logger

HYPERPARAMETERS = "hyperparameters"
"""The TensorBoard text tag of a run's settings (CleanRL's)."""


def hyperparameters_table(settings: Mapping[str, Any]) -> str:
    """``settings`` as a Markdown table, one row per setting (CleanRL's ``|param|value|``)."""
    rows = "\n".join(f"|{key}|{value}|" for key, value in settings.items())
    return f"|param|value|\n|-|-|\n{rows}"


def write_hyperparameters(writer: Any, settings: Mapping[str, Any]) -> None:
    """Write a run's ``settings`` to the TensorBoard ``writer`` (a ``SummaryWriter``) as the text
    :data:`HYPERPARAMETERS`: :func:`hyperparameters_table`."""
    writer.add_text(HYPERPARAMETERS, hyperparameters_table(settings))


def tensorboard_writer(logger: Logger) -> Any:
    """The ``SummaryWriter`` behind an SB3 logger, or None when it does not write to TensorBoard."""
    from stable_baselines3.common.logger import TensorBoardOutputFormat

    for output in logger.output_formats:
        if isinstance(output, TensorBoardOutputFormat):
            return output.writer
    return None


class ScopedWriter:
    """A TensorBoard ``SummaryWriter`` seen through a step offset and a tag scope, for the warmup.

    ``add_scalar("warmup/loss", value, s)`` writes ``warmup/<scope>/loss`` (``warmup/loss`` without a
    scope) at step ``offset + s``: warmup step ``s`` lands on the run's own step axis (``offset`` = the
    model's ``num_timesteps`` when the warmup ran), and two warmups (an actor's and a critic's) on
    separate tags.

    :param writer: the writer (e.g. :func:`tensorboard_writer` of the model's logger).
    :param offset: added to every step.
    :param scope: inserted after the first component of every tag (None: tags unchanged).
    """

    def __init__(self, writer: Any, offset: int = 0, scope: str | None = None) -> None:
        self.writer = writer
        self.offset = int(offset)
        self.scope = scope

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        if self.scope is not None:
            group, _, name = tag.partition("/")
            tag = f"{group}/{self.scope}/{name}"
        self.writer.add_scalar(tag, value, self.offset + step)
