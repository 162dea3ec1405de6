"""The layer machinery of the cell zoo: one recurrent layer, a double layer, a stack of layers.

Every layer is a dynamical system ``x_t = f(x_{t-1}, u_t)`` (eq. (A.1) of Lambrechts et al. 2023) with
output ``o_t = g(x_t)`` (eq. (A.2)) and ``x_0 = 0`` (eq. (A.3)). A :class:`RecurrentStack` chains ``L``
layers (``u^i_t = o^{i-1}_t``) and keeps its recurrent state in one tensor ``[L, B, S]``.

The cells are subclasses of :class:`RecurrentLayer` (or of :class:`ProjectedLayer`) in
:mod:`recurrent_q.gated_cells` (LSTM, chrono, GRU, MGU, BRC, NBRC) and :mod:`recurrent_q.parallel_cells`
(minGRU, LRU), built by name by :func:`recurrent_q.cells.make_cell`; they import this module, which imports
none of them.

Shapes: ``B`` batch, ``T`` time, ``F`` input width, ``H`` hidden width, ``S`` state width
(``H``, or ``2H`` for the LSTM state ``[h, c]``).

Under ``torch.autocast`` (bfloat16 or float16 products, e.g. the warmup's ``bfloat16_products``) every layer
casts its products back to the dtype of its states and parameters (:func:`as_dtype`): the products run in
the lower precision, the states and the elementwise gate arithmetic keep theirs.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def as_dtype(x: Tensor, like: Tensor) -> Tensor:
    """``x`` in the dtype of ``like``: a product computed under ``torch.autocast`` back in the precision of
    the states (no copy when the dtypes already agree, as outside autocast)."""
    return x if x.dtype == like.dtype else x.to(like.dtype)


class RecurrentLayer(nn.Module):
    """One recurrent layer: update function ``step`` (f) and output function ``output`` (g).

    Subclasses set ``input_size``, ``hidden_size``, ``state_size`` and implement ``_project(u) -> p`` (the
    input terms ``W u + b``) and ``_cell(p, s) -> s'`` (the rest of the update); ``step`` is their
    composition, ``iterate`` computes the projection of its constant input once.
    """

    input_size: int
    hidden_size: int
    state_size: int
    state_is_output: bool = False  # True when x_t = h_t, so the output sequence is the state sequence

    def _project(self, u: Tensor) -> Tensor:
        raise NotImplementedError

    def _cell(self, p: Tensor, s: Tensor) -> Tensor:
        raise NotImplementedError

    def step(self, u: Tensor, s: Tensor) -> Tensor:
        """Update function ``f(x, u)``: ``u[B, F]``, ``s[B, S]`` -> ``s'[B, S]``."""
        return self._cell(self._project(u), s)

    def output(self, s: Tensor) -> Tensor:
        """Output function ``g(x)``: ``s[B, S]`` -> ``h[B, H]`` (``h`` is the first ``H`` entries)."""
        return s[..., : self.hidden_size]

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Run the layer on a sequence.

        :param u: inputs ``[B, T, F]``.
        :param s0: initial state ``[B, S]``.
        :param lengths: optional ``[B]`` in ``1..T``; the returned state is then the one after
            ``lengths[b]`` steps (outputs past a row's length are unspecified).
        :return: outputs ``[B, T, H]`` and final state ``[B, S]``.
        """
        s = s0
        outputs = []
        for t, p_t in enumerate(self._project(u).unbind(1)):  # unbind: one backward op, not T slices
            s_next = self._cell(p_t, s)
            s = s_next if lengths is None else torch.where((t < lengths).unsqueeze(1), s_next, s)
            outputs.append(self.output(s_next))
        return torch.stack(outputs, 1), s

    def outputs(self, u: Tensor, s0: Tensor, lengths: Tensor) -> Tensor:
        """Outputs ``[B, T, H]`` of a sequence of which row ``b`` needs only its first ``lengths[b]``.

        Entries past a row's length are unspecified; layers that can skip them (the compiled GRU) do.
        """
        return self(u, s0)[0]

    def skips_padding(self, u: Tensor) -> bool:
        """True when ``forward(u, s0, lengths)`` computes nothing past each row's length (then
        :meth:`RecurrentStack.states_at` needs no spans)."""
        return False

    def iterate(self, u: Tensor, s0: Tensor, steps: int) -> Tensor:
        """``f^steps(s0, u)`` with the input ``u[B, F]`` held constant; returns ``[B, S]``."""
        p = self._project(u)
        s = s0
        for _ in range(steps):
            s = self._cell(p, s)
        return s

    @property
    def warm_layer(self) -> RecurrentLayer:
        """The part of the layer that warmup iterates (the whole layer here)."""
        return self

    def warm_state(self, s: Tensor) -> Tensor:
        """The warmed part ``[B, S_w]`` of a state ``[B, S]``."""
        return s

    def warm_parameters(self) -> list[nn.Parameter]:
        """Parameters that warmup optimises."""
        return list(self.parameters())


class ProjectedLayer(RecurrentLayer):
    """A cell whose input terms ``W u + b`` are computed for the whole sequence in one matmul (the base of
    MGU, BRC, NBRC in :mod:`recurrent_q.gated_cells` and of minGRU in :mod:`recurrent_q.parallel_cells`).

    ``weight_ih[G*H, F]`` and ``bias[G*H]`` hold the ``G`` input projections; ``_cell(p, h)`` applies the
    recurrent part given ``p = W u + b``. The state is ``h``.
    """

    state_is_output = True
    gates: int

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.state_size = input_size, hidden_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.bias = nn.Parameter(torch.empty(self.gates * hidden_size))

    def reset_parameters(self) -> None:
        """``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter, as PyTorch's recurrent modules."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _project(self, u: Tensor) -> Tensor:
        return as_dtype(F.linear(u, self.weight_ih, self.bias), self.weight_ih)

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`RecurrentLayer.forward`."""
        h = s0
        outputs = []
        for p_t in self._project(u).unbind(1):  # unbind: one backward op, not T
            h = self._cell(p_t, h)
            outputs.append(h)
        out = torch.stack(outputs, 1)
        if lengths is None:
            return out, h
        return out, out[torch.arange(u.shape[0], device=out.device), lengths.to(out.device) - 1]


class DoubleLayer(RecurrentLayer):
    """Double layer (§6.3, Fig. 16): two half-width layers fed the same input, outputs concatenated.

    State ``[s_first, s_second]``; only ``first`` takes part in warmup.
    """

    def __init__(self, first: RecurrentLayer, second: RecurrentLayer) -> None:
        super().__init__()
        if first.input_size != second.input_size:
            raise ValueError("both halves of a double layer must have the same input_size")
        self.first, self.second = first, second
        self.input_size = first.input_size
        self.hidden_size = first.hidden_size + second.hidden_size
        self.state_size = first.state_size + second.state_size
        self.state_is_output = first.state_is_output and second.state_is_output

    def _split(self, s: Tensor) -> tuple[Tensor, Tensor]:
        return s[..., : self.first.state_size], s[..., self.first.state_size :]

    def step(self, u: Tensor, s: Tensor) -> Tensor:
        s1, s2 = self._split(s)
        return torch.cat([self.first.step(u, s1), self.second.step(u, s2)], -1)

    def output(self, s: Tensor) -> Tensor:
        s1, s2 = self._split(s)
        return torch.cat([self.first.output(s1), self.second.output(s2)], -1)

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`RecurrentLayer.forward`."""
        s1, s2 = self._split(s0)
        h1, s1 = self.first(u, s1, lengths)
        h2, s2 = self.second(u, s2, lengths)
        return torch.cat([h1, h2], -1), torch.cat([s1, s2], -1)

    def outputs(self, u: Tensor, s0: Tensor, lengths: Tensor) -> Tensor:
        s1, s2 = self._split(s0)
        return torch.cat([self.first.outputs(u, s1, lengths), self.second.outputs(u, s2, lengths)], -1)

    def iterate(self, u: Tensor, s0: Tensor, steps: int) -> Tensor:
        s1, s2 = self._split(s0)
        return torch.cat([self.first.iterate(u, s1, steps), self.second.iterate(u, s2, steps)], -1)

    @property
    def warm_layer(self) -> RecurrentLayer:
        return self.first

    def warm_state(self, s: Tensor) -> Tensor:
        return s[..., : self.first.state_size]

    def warm_parameters(self) -> list[nn.Parameter]:
        return list(self.first.parameters())


class RecurrentStack(nn.Module):
    """A stack of ``num_layers`` recurrent layers (``u^i_t = o^{i-1}_t``) with one state tensor ``[L, B, S]``.

    :param cell_name: one of :data:`recurrent_q.cells.CELL_NAMES`.
    :param layers: the layers, all of the same ``hidden_size`` and ``state_size``.
    :param double: whether the layers are :class:`DoubleLayer`.
    """

    def __init__(self, cell_name: str, layers: list[RecurrentLayer], double: bool = False) -> None:
        super().__init__()
        self.cell_name = cell_name
        self.layers = nn.ModuleList(layers)
        self.double = double
        self.input_size = layers[0].input_size
        self.hidden_size = layers[-1].hidden_size
        self.num_layers = len(layers)
        self.state_size = layers[0].state_size

    def _reference(self) -> Tensor:
        return next(self.parameters())

    def initial_state(self, batch_size: int, device: torch.device | str | None = None) -> Tensor:
        """Zero state ``[L, B, S]`` (``x_0 = 0``, eq. (A.3)) on ``device`` (default: the parameters')."""
        ref = self._reference()
        return torch.zeros(
            self.num_layers, batch_size, self.state_size, device=device or ref.device, dtype=ref.dtype
        )

    def _check_input(self, x: Tensor, dims: int) -> None:
        shape = "[B, T, F]" if dims == 3 else "[B, F]"
        if x.dim() != dims:
            raise ValueError(f"x must have shape {shape}; got {tuple(x.shape)}")
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"x has input width {x.shape[-1]}, but the stack's input_size is {self.input_size}"
            )

    def _state_or_zeros(self, x: Tensor, state: Tensor | None) -> Tensor:
        if state is None:
            return self.initial_state(x.shape[0], x.device)
        expected = (self.num_layers, x.shape[0], self.state_size)
        if tuple(state.shape) != expected:
            raise ValueError(f"state must have shape [L, B, S] = {list(expected)}; got {list(state.shape)}")
        return state

    def _run(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h, finals = x, []
        for layer, s in zip(self.layers, state, strict=True):
            h, s = layer(h, s)
            finals.append(s)
        return h, torch.stack(finals)

    def forward(
        self, x: Tensor, state: Tensor | None = None, episode_starts: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """Run the stack on ``x[B, T, F]`` from ``state[L, B, S]`` (zeros if None).

        :param episode_starts: optional bool ``[B, T]``; where true, the state is reset to zero before step
            ``t``. Resets after ``t = 0`` split the sequence into segments, each run with the fused kernels.
        :return: outputs ``[B, T, H]`` of the top layer and the final state ``[L, B, S]``.
        """
        self._check_input(x, 3)
        state = self._state_or_zeros(x, state)
        if episode_starts is None:
            return self._run(x, state)
        starts = episode_starts.to(device=x.device, dtype=torch.bool)
        if tuple(starts.shape) != tuple(x.shape[:2]):
            raise ValueError(f"episode_starts must have shape [B, T] = {list(x.shape[:2])}")
        cuts = [0, *(starts[:, 1:].any(0).nonzero().flatten() + 1).tolist(), x.shape[1]]
        outputs = []
        for begin, end in zip(cuts[:-1], cuts[1:], strict=False):
            state = state.masked_fill(starts[:, begin].view(1, -1, 1), 0.0)
            out, state = self._run(x[:, begin:end], state)
            outputs.append(out)
        return torch.cat(outputs, 1), state

    def outputs(self, x: Tensor, lengths: Tensor, state: Tensor | None = None) -> Tensor:
        """Outputs ``[B, T, H]`` of the top layer where row ``b`` needs only its first ``lengths[b]`` steps.

        Entries past a row's length are unspecified (layers that can skip them do, see
        :meth:`RecurrentLayer.outputs`).
        """
        self._check_input(x, 3)
        state = self._state_or_zeros(x, state)
        h = x
        for layer, s in zip(self.layers, state, strict=True):
            h = layer.outputs(h, s, lengths)
        return h

    def step(self, x: Tensor, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One step for acting: ``x[B, F]`` -> (output ``[B, H]``, state ``[L, B, S]``)."""
        self._check_input(x, 2)
        state = self._state_or_zeros(x, state)
        h, new = x, []
        for layer, s in zip(self.layers, state, strict=True):
            s = layer.step(h, s)
            h = layer.output(s)
            new.append(s)
        return h, torch.stack(new)

    def states(self, x: Tensor, state: Tensor | None = None) -> Tensor:
        """Every intermediate state ``[T, L, B, S]`` (the state after step ``t + 1`` at index ``t``)."""
        self._check_input(x, 3)
        state = self._state_or_zeros(x, state)
        h, per_layer = x, []
        for layer, s in zip(self.layers, state, strict=True):
            if layer.state_is_output:
                seq, _ = layer(h, s)
            else:
                steps = []
                for h_t in h.unbind(1):
                    s = layer.step(h_t, s)
                    steps.append(s)
                seq = torch.stack(steps, 1)
            per_layer.append(seq)
            h = layer.output(seq)
        return torch.stack(per_layer).permute(2, 0, 1, 3)

    def states_at(self, x: Tensor, lengths: Tensor, state: Tensor | None = None, blocks: int = 16) -> Tensor:
        """States ``[L, B, S]`` after ``lengths[b]`` steps of each row of ``x[B, T, F]`` (Algorithm 2).

        Rows are sorted by length and time is cut in up to ``blocks`` spans at length quantiles; each span
        runs only the rows still active, so little is computed past a row's length (16 spans: about 6 % of
        the steps run past a row's length when the lengths are uniform; more spans cost more calls than
        they save).

        :param lengths: integer ``[B]`` in ``1..T``.
        """
        self._check_input(x, 3)
        state = self._state_or_zeros(x, state)
        lengths = lengths.to(device=x.device, dtype=torch.long)
        if lengths.shape != (x.shape[0],) or int(lengths.min()) < 1 or int(lengths.max()) > x.shape[1]:
            raise ValueError(f"lengths must have shape [B] = [{x.shape[0]}] and values in 1..{x.shape[1]}")
        if all(layer.skips_padding(x) for layer in self.layers):
            blocks = 1  # one pass: the layers themselves stop each row at its length
        sorted_lengths, order = lengths.sort(descending=True)
        picks = torch.linspace(0, x.shape[0] - 1, blocks, device=x.device).round().long()
        ends = sorted({*sorted_lengths[picks].tolist(), int(sorted_lengths[0])})
        x, state = x[order], state[:, order]
        begin = 0
        for end in ends:
            active = int((sorted_lengths > begin).sum())  # the sorted rows still running
            steps = (sorted_lengths[:active] - begin).clamp(max=end - begin)
            h, finals = x[:active, begin:end], []
            for layer, s in zip(self.layers, state[:, :active], strict=True):
                h, s = layer(h, s, steps)
                finals.append(s)
            state = torch.cat([torch.stack(finals), state[:, active:]], 1)
            begin = end
        return state[:, order.argsort()]
