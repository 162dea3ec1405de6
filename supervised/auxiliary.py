"""Appendix H's baseline: the reconstruction auxiliary loss of Trinh et al. (2018), as a pretraining and
as a second term of the training loss (the supervised version ``auxiliary``).

At an anchor step ``a`` drawn uniformly in ``{l, …, T}``, a decoder (:class:`ReconstructionDecoder`: a
stack of the main network's cell and width) starts from the main network's top-layer state after the
first ``a`` inputs and reconstructs the ``l`` inputs before the anchor, ``x_{a-l+1..a}``, one step at a
time with teacher forcing (it reads a zero input, then ``x_{a-l+1..a-1}``); the loss is their mean squared
error (Appendix H: "the MSE between the real sequence and the reconstructed sequence"). The pretraining
minimises it alone for ``auxiliary_pretrain_epochs`` epochs (the paper: 20), then training minimises the
task's loss plus ``auxiliary_weight`` times it (the paper: 1, "the auxiliary loss is also taken into
account to make the gradient step"). Gradients run through the whole sequence (no truncated BPTT).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recurrent_q.cells import make_cell
from recurrent_q.checks import check_integer


class ReconstructionDecoder(nn.Module):
    """The auxiliary network of Appendix H: ``num_layers`` cells of width ``hidden_size`` (the main
    network's cell and width: its state fits the decoder's first layer) and a linear readout to the
    inputs.

    ``forward(anchor_state[B, S], inputs[B, l, F]) -> [B, l, F]``: the reconstruction of ``inputs``; the
    first layer starts from ``anchor_state``, the others from zero.
    """

    def __init__(
        self, cell: str, input_size: int, hidden_size: int, num_layers: int = 2, t_max: float | None = None
    ) -> None:
        super().__init__()
        self.rnn = make_cell(cell, input_size, hidden_size, num_layers=num_layers, t_max=t_max)
        self.head = nn.Linear(hidden_size, input_size)

    def forward(self, anchor_state: Tensor, inputs: Tensor) -> Tensor:
        state = self.rnn.initial_state(inputs.shape[0], inputs.device)
        if anchor_state.shape != state.shape[1:]:
            raise ValueError(
                f"anchor_state must have shape [B, S] = {list(state.shape[1:])} (the main network's "
                f"cell and width); got {list(anchor_state.shape)}"
            )
        state = torch.cat([anchor_state.to(state.dtype)[None], state[1:]])
        shifted = torch.cat([torch.zeros_like(inputs[:, :1]), inputs[:, :-1]], 1)  # teacher forcing
        out, _ = self.rnn(shifted, state)
        return self.head(out)


def draw_anchor(length: int, sequence_length: int, generator: torch.Generator) -> int:
    """An anchor ``a`` uniform in ``{length, …, sequence_length}`` (the state after ``a`` inputs)."""
    check_integer("auxiliary_length", length)
    if length > sequence_length:
        raise ValueError(
            f"auxiliary_length must be at most the sequence length T = {sequence_length}; got {length}"
        )
    return int(torch.randint(length, sequence_length + 1, (1,), generator=generator))


def reconstruction_loss(
    decoder: ReconstructionDecoder, anchor_state: Tensor, x: Tensor, anchor: int, length: int
) -> Tensor:
    """Mean squared error of the decoder's reconstruction of ``x[:, anchor - length : anchor]`` from the
    main network's state after ``anchor`` inputs (``anchor_state``: its state ``[L, B, S]``; the top
    layer's is used)."""
    target = x[:, anchor - length : anchor]
    return F.mse_loss(decoder(anchor_state[-1], target).float(), target.float())


__all__ = ["ReconstructionDecoder", "draw_anchor", "reconstruction_loss"]
