"""The data sets and the network of a supervised run, and its loss and evaluation: :func:`make_datasets`,
:func:`make_model` (a cell stack with a linear readout, :class:`SequenceModel`), :func:`loss_and_correct`
and :func:`evaluate`; ``_seed``, the seeds of the run's independent streams. Every public name here is
importable from :mod:`supervised.train` too."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from recurrent_q.cells import make_cell
from supervised.auxiliary import ReconstructionDecoder
from supervised.config import SupervisedConfig
from supervised.datasets import (
    CopyFirstInput,
    Denoising,
    PermutedLineSequentialMNIST,
    PermutedSequentialMNIST,
    SequenceDataset,
)

EVAL_BATCH = 1024


class SequenceModel(nn.Module):
    """Cell stack + linear readout on the steps that have targets (docs/specification.md §3, Readout).

    ``forward(x[B, T, F]) -> [B, K, output_size]`` for the ``K`` contiguous target steps. ``auxiliary``:
    the decoder of Appendix H's reconstruction loss (set by :func:`make_model` for version ``auxiliary``;
    ``supervised.auxiliary``), trained and saved with the network, unused by ``forward``.
    """

    def __init__(self, rnn: nn.Module, output_size: int, target_steps: tuple[int, ...]) -> None:
        super().__init__()
        if list(target_steps) != list(range(target_steps[0], target_steps[-1] + 1)):
            raise ValueError(f"target_steps must be contiguous, got {target_steps}")
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size, output_size)
        self.first, self.stop = target_steps[0], target_steps[-1] + 1
        self.auxiliary: nn.Module | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, self.first : self.stop])

    def forward_with_state(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(x)`` and the stack's state ``[L, B, S]`` after the first ``step`` inputs, in one pass."""
        out, state = self.rnn(x[:, :step])
        if step < x.shape[1]:
            tail, _ = self.rnn(x[:, step:], state)
            out = torch.cat([out, tail], 1)
        return self.head(out[:, self.first : self.stop]), state


def _seed(*keys: int) -> int:
    """A 63-bit seed derived from ``keys`` (independent streams for data, batches, VAA...)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def make_datasets(config: SupervisedConfig) -> tuple[SequenceDataset, SequenceDataset]:
    """Training (before the validation split) and test datasets of a resolved config."""
    c = config
    if c.task == "copy":
        return CopyFirstInput(c.num_train, c.T, _seed(c.seed, 0)), CopyFirstInput(
            c.num_test, c.T, _seed(c.seed, 1)
        )
    if c.task == "denoising":
        return Denoising(c.num_train, c.T, c.N, _seed(c.seed, 0)), Denoising(
            c.num_test, c.T, c.N, _seed(c.seed, 1)
        )
    kwargs: dict[str, Any] = {"download": c.download, "base_url": c.mnist_url}
    if c.task == "plsmnist":
        kwargs["N"] = c.N
    cls = PermutedSequentialMNIST if c.task == "psmnist" else PermutedLineSequentialMNIST
    return (
        cls(c.data_dir, train=True, num_sequences=c.num_train, **kwargs),
        cls(c.data_dir, train=False, num_sequences=c.num_test, **kwargs),
    )


def make_model(config: SupervisedConfig, dataset: SequenceDataset) -> SequenceModel:
    """The cell stack of ``config`` (double layers for version double) with its readout (and the decoder
    of Appendix H's reconstruction loss for version auxiliary)."""
    c = config
    t_max = c.t_max if c.cell == "chrono" else None
    rnn = make_cell(
        c.cell,
        dataset.input_size,
        c.hidden_size,
        num_layers=c.num_layers,
        double=c.version == "double",
        t_max=t_max,
    )
    model = SequenceModel(rnn, dataset.output_size, dataset.target_steps)
    if c.version == "auxiliary":  # drawn last: the stack and readout are those of version classic
        model.auxiliary = ReconstructionDecoder(
            c.cell, dataset.input_size, c.hidden_size, num_layers=c.auxiliary_layers, t_max=t_max
        )
    return model


def loss_and_correct(
    dataset: SequenceDataset, output: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean loss of a batch (squared error over the target steps, or NLL of the logits at T)
    and the number of correct classes (classification only)."""
    if dataset.kind == "regression":
        return F.mse_loss(output.squeeze(-1).float(), target), None
    logits = output[:, -1].float()
    return F.cross_entropy(logits, target), (logits.argmax(-1) == target).sum()


@torch.no_grad()
def evaluate(
    model: SequenceModel,
    dataset: SequenceDataset,
    data: torch.Tensor,
    targets: torch.Tensor,
    amp: bool = False,
) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``model`` over ``data`` (on the model's device)."""
    model.eval()
    device = data.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for start in range(0, data.shape[0], EVAL_BATCH):
        x = dataset.to_inputs(data[start : start + EVAL_BATCH])
        y = targets[start : start + EVAL_BATCH]
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss, right = loss_and_correct(dataset, model(x), y)
        loss_sum += loss * y.shape[0]
        if right is not None:
            correct += right
    model.train()
    n = data.shape[0]
    return (loss_sum / n).item(), (correct.item() / n if dataset.kind == "classification" else None)
