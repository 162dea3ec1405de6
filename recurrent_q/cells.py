"""Recurrent cell zoo (Appendix A of Lambrechts et al. 2023) behind one stack interface.

Every layer is a dynamical system ``x_t = f(x_{t-1}, u_t)`` (eq. (A.1)) with output ``o_t = g(x_t)``
(eq. (A.2)) and ``x_0 = 0`` (eq. (A.3)). A :class:`RecurrentStack` chains ``L`` layers
(``u^i_t = o^{i-1}_t``) and keeps its recurrent state in one tensor ``[L, B, S]``.

Shapes: ``B`` batch, ``T`` time, ``F`` input width, ``H`` hidden width, ``S`` state width
(``H``, or ``2H`` for the LSTM state ``[h, c]``).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recurrent_q import _gru_cpu

CELL_NAMES = ("lstm", "gru", "mgu", "brc", "nbrc", "chrono", "mingru", "lru")


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


class _FusedLayer(RecurrentLayer):
    """A one-layer ``nn.GRU``/``nn.LSTM`` (batch first): PyTorch's fused kernels for sequences."""

    rnn: nn.RNNBase

    def _hidden(self, s: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _state(self, hidden: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        raise NotImplementedError

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`RecurrentLayer.forward`.

        With ``lengths`` on CPU, the GRU gathers its outputs and the LSTM (whose kernel returns ``c`` only at
        ``T``) runs the step loop: PyTorch's packed-sequence CPU backward is quadratic in ``T``. On CUDA, the
        packed kernels are used.
        """
        if lengths is None:
            out, hidden = self.rnn(u, self._hidden(s0))
            return out, self._state(hidden)
        if not u.is_cuda:
            if not self.state_is_output:
                return super().forward(u, s0, lengths)
            out, _ = self.rnn(u, self._hidden(s0))
            return out, out[torch.arange(u.shape[0], device=out.device), lengths.to(out.device) - 1]
        packed = pack_padded_sequence(u, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed, self._hidden(s0))
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=u.shape[1])
        return out, self._state(hidden)

    def _project(self, u: Tensor) -> Tensor:
        return F.linear(u, self.rnn.weight_ih_l0, self.rnn.bias_ih_l0 if self.rnn.bias else None)

    def _recurrent(self, h: Tensor) -> Tensor:
        return F.linear(h, self.rnn.weight_hh_l0, self.rnn.bias_hh_l0 if self.rnn.bias else None)

    def _weights(self) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        rnn = self.rnn
        return (
            rnn.weight_ih_l0,
            rnn.weight_hh_l0,
            rnn.bias_ih_l0 if rnn.bias else None,
            (rnn.bias_hh_l0 if rnn.bias else None),
        )


class GRULayer(_FusedLayer):
    """GRU, eqs. (A.10)-(A.12) in PyTorch's ``nn.GRU`` form (``r ⊙ (W_hh h + b_hn)``); state ``h``.

    On the CPU in float32, batches that fit ``_gru_cpu.fits`` run sequences and stabilisation in the compiled
    recurrence of :mod:`recurrent_q._gru_cpu` (one autograd node per layer, padded steps skipped). Other CPU
    cases (larger batches, float64) run sequences in ``nn.GRU``'s kernel and the stabilisation
    (:meth:`iterate`) step by step after computing the held input's term once, which is 1.2-1.5x faster
    than ``nn.GRU`` on the repeated input at 64-256 units (``benchmarks/bench_stabilisation.py``). On CUDA,
    the ``nn.GRU`` (cuDNN) kernels.
    """

    state_is_output = True

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.state_size = input_size, hidden_size, hidden_size
        self.rnn = nn.GRU(input_size, hidden_size, bias=bias, batch_first=True)

    def _compiled(self, u: Tensor) -> bool:
        return (
            _gru_cpu.ENABLED
            and u.device.type == "cpu"
            and u.dtype == torch.float32
            and _gru_cpu.fits(u.shape[0], self.hidden_size)
        )

    def skips_padding(self, u: Tensor) -> bool:
        """See :meth:`RecurrentLayer.skips_padding` (the CPU kernels run only the rows still running)."""
        return self._compiled(u)

    def _recurrence(
        self, gi: Tensor, s0: Tensor, lengths: Tensor | None, steps: int
    ) -> tuple[Tensor, Tensor]:
        rnn = self.rnn
        return _gru_cpu.gru_recurrence(
            gi, s0, rnn.weight_hh_l0, rnn.bias_hh_l0 if rnn.bias else None, lengths, steps
        )

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`RecurrentLayer.forward` (outputs past a row's length are zero on the compiled path)."""
        if not self._compiled(u) or u.shape[1] == 0:
            return super().forward(u, s0, lengths)
        return self._recurrence(self._project(u), s0, lengths, u.shape[1])

    def outputs(self, u: Tensor, s0: Tensor, lengths: Tensor) -> Tensor:
        """See :meth:`RecurrentLayer.outputs`."""
        return self(u, s0, lengths if self._compiled(u) else None)[0]

    def iterate(self, u: Tensor, s0: Tensor, steps: int) -> Tensor:
        """See :meth:`RecurrentLayer.iterate`."""
        if steps == 0:
            return s0
        if self._compiled(u):
            return self._recurrence(self._project(u).unsqueeze(1), s0, None, steps)[1]
        if u.device.type == "cpu":  # the input term once, then step by step
            return super().iterate(u, s0, steps)
        return self.rnn(u.unsqueeze(1).expand(-1, steps, -1), self._hidden(s0))[1][0]  # cuDNN, repeated input

    def _cell(self, p: Tensor, s: Tensor) -> Tensor:
        i_r, i_z, i_n = p.chunk(3, 1)
        h_r, h_z, h_n = self._recurrent(s).chunk(3, 1)
        z = torch.sigmoid(i_z + h_z)  # eq. (A.10)
        r = torch.sigmoid(i_r + h_r)  # eq. (A.11)
        return torch.lerp(torch.tanh(i_n + r * h_n), s, z)  # eq. (A.12)

    def step(self, u: Tensor, s: Tensor) -> Tensor:
        """See :meth:`RecurrentLayer.step` (PyTorch's fused ``gru_cell``, the same function as ``_cell``)."""
        return torch.gru_cell(u, s, *self._weights())

    def _hidden(self, s: Tensor) -> Tensor:
        return s.unsqueeze(0).contiguous()

    def _state(self, hidden: Tensor) -> Tensor:
        return hidden[0]


class LSTMLayer(_FusedLayer):
    """LSTM, eqs. (A.4)-(A.9) (PyTorch gate order i, f, g, o); state ``[h, c]`` of width ``2H``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True) -> None:
        super().__init__()
        self.input_size, self.hidden_size, self.state_size = input_size, hidden_size, 2 * hidden_size
        self.rnn = nn.LSTM(input_size, hidden_size, bias=bias, batch_first=True)

    def _cell(self, p: Tensor, s: Tensor) -> Tensor:
        h, c = s.chunk(2, 1)
        g_i, g_f, g_c, g_o = (p + self._recurrent(h)).chunk(4, 1)
        f = torch.sigmoid(g_f)  # eq. (A.4)
        i = torch.sigmoid(g_i)  # eq. (A.5)
        r = torch.sigmoid(g_o)  # eq. (A.6)
        c = f * c + i * torch.tanh(g_c)  # eqs. (A.7), (A.8)
        return torch.cat([r * torch.tanh(c), c], 1)  # eq. (A.9)

    def step(self, u: Tensor, s: Tensor) -> Tensor:
        """See :meth:`RecurrentLayer.step` (PyTorch's fused ``lstm_cell``, the same function as ``_cell``)."""
        h, c = torch.lstm_cell(u, s.chunk(2, -1), *self._weights())
        return torch.cat([h, c], -1)

    def _hidden(self, s: Tensor) -> tuple[Tensor, Tensor]:
        h, c = s.chunk(2, 1)
        return h.unsqueeze(0).contiguous(), c.unsqueeze(0).contiguous()

    def _state(self, hidden: tuple[Tensor, Tensor]) -> Tensor:
        return torch.cat([hidden[0][0], hidden[1][0]], 1)


def chrono_init_(layer: LSTMLayer, t_max: float) -> LSTMLayer:
    """Chrono initialisation (Tallec & Ollivier 2018), single-bias form (docs/specification.md §3, Settled).

    Per unit ``u ~ U(1, t_max - 1)``: forget-gate bias ``log u``, input-gate bias ``-log u``, every other
    bias (including PyTorch's second bias vector) zero.
    """
    if not t_max > 2:
        raise ValueError(f"t_max must be > 2 (u ~ U(1, t_max - 1)); got {t_max!r}")
    rnn, hidden = layer.rnn, layer.hidden_size
    with torch.no_grad():
        log_u = torch.empty(hidden, device=rnn.bias_ih_l0.device).uniform_(1.0, t_max - 1.0).log_()
        rnn.bias_ih_l0.zero_()
        rnn.bias_hh_l0.zero_()
        rnn.bias_ih_l0[:hidden] = -log_u  # input gate
        rnn.bias_ih_l0[hidden : 2 * hidden] = log_u  # forget gate
    return layer


class _ProjectedLayer(RecurrentLayer):
    """A cell whose input terms ``W u + b`` are computed for the whole sequence in one matmul.

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
        return F.linear(u, self.weight_ih, self.bias)

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


class MGULayer(_ProjectedLayer):
    """Minimal gated unit, eqs. (A.19)-(A.21). Parameters ``weight_ih = [W_fu; W_hu]``,
    ``bias = [b_f; b_h]``, ``weight_fh = W_fh``, ``weight_hh = W_hh``."""

    gates = 2

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_fh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.weight_hh = nn.Parameter(torch.empty(hidden_size, hidden_size))
        self.reset_parameters()

    def _cell(self, p: Tensor, h: Tensor) -> Tensor:
        p_f, p_h = p.chunk(2, -1)
        f = torch.sigmoid(torch.addmm(p_f, h, self.weight_fh.t()))  # eq. (A.19)
        h_tilde = torch.tanh(torch.addmm(p_h, f * h, self.weight_hh.t()))  # eq. (A.20)
        return torch.lerp(h, h_tilde, f)  # eq. (A.21)


class BRCLayer(_ProjectedLayer):
    """Bistable recurrent cell, eqs. (A.13)-(A.15) with the ``W_hu u`` term. Parameters
    ``weight_ih = [W_cu; W_au; W_hu]``, ``bias = [b_c; b_a; b_h]``, vectors ``w_c``, ``w_a``."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.w_c = nn.Parameter(torch.empty(hidden_size))
        self.w_a = nn.Parameter(torch.empty(hidden_size))
        self.reset_parameters()

    def _cell(self, p: Tensor, h: Tensor) -> Tensor:
        p_c, p_a, p_h = p.chunk(3, -1)
        c = torch.sigmoid(torch.addcmul(p_c, self.w_c, h))  # eq. (A.13)
        a = 1.0 + torch.tanh(torch.addcmul(p_a, self.w_a, h))  # eq. (A.14)
        return torch.lerp(torch.tanh(torch.addcmul(p_h, a, h)), h, c)  # eq. (A.15)


class NBRCLayer(_ProjectedLayer):
    """Neuromodulated bistable recurrent cell, eqs. (A.16)-(A.18) with the ``W_hu u`` term. Parameters
    ``weight_ih = [W_cu; W_au; W_hu]``, ``bias = [b_c; b_a; b_h]``, ``weight_hh = [W_ch; W_ah]``."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.reset_parameters()

    def _cell(self, p: Tensor, h: Tensor) -> Tensor:
        p_c, p_a, p_h = p.chunk(3, -1)
        r_c, r_a = (h @ self.weight_hh.t()).chunk(2, -1)
        c = torch.sigmoid(p_c + r_c)  # eq. (A.16)
        a = 1.0 + torch.tanh(p_a + r_a)  # eq. (A.17)
        return torch.lerp(torch.tanh(torch.addcmul(p_h, a, h)), h, c)  # eq. (A.18)


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

    :param cell_name: one of :data:`CELL_NAMES`.
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


def check_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, refusing a name torch does not know and a CUDA device on a machine
    without CUDA (instead of a deep torch error, or SB3's silent fall-back to the CPU)."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be a torch device such as cpu or cuda, got {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='cpu'")
    return resolved


INITS = ("uniform", "xavier")


def _per_gate(init_: Any, weight: Tensor, hidden_size: int) -> None:
    for block in weight.split(hidden_size, 0):
        init_(block)


@torch.no_grad()
def xavier_init_(layer: RecurrentLayer) -> RecurrentLayer:
    """The ``"xavier"`` initialisation: Xavier-uniform input weights and zero biases, per gate.

    Recurrent weights: orthogonal per gate for the GRU, Xavier-uniform per matrix for MGU and NBRC; BRC's
    cellular weights ``w_c``, ``w_a`` are 1. LSTM layers keep PyTorch's initialisation.
    """
    hidden = layer.hidden_size
    if isinstance(layer, GRULayer):
        rnn = layer.rnn
        _per_gate(nn.init.xavier_uniform_, rnn.weight_ih_l0, hidden)
        _per_gate(nn.init.orthogonal_, rnn.weight_hh_l0, hidden)
        if rnn.bias:
            rnn.bias_ih_l0.zero_()
            rnn.bias_hh_l0.zero_()
    elif isinstance(layer, _ProjectedLayer):
        _per_gate(nn.init.xavier_uniform_, layer.weight_ih, hidden)
        layer.bias.zero_()
        for name, weight in layer.named_parameters():
            if name in ("weight_fh", "weight_hh"):
                _per_gate(nn.init.xavier_uniform_, weight, hidden)
            elif name in ("w_c", "w_a"):
                weight.fill_(1.0)
    return layer


def _make_layer(
    name: str, input_size: int, hidden_size: int, t_max: float | None, init: str
) -> RecurrentLayer:
    layer: RecurrentLayer
    if name == "lstm":
        layer = LSTMLayer(input_size, hidden_size)
    elif name == "chrono":
        layer = chrono_init_(LSTMLayer(input_size, hidden_size), t_max)
    elif name == "gru":
        layer = GRULayer(input_size, hidden_size)
    else:
        layers = {"mgu": MGULayer, "brc": BRCLayer, "nbrc": NBRCLayer, "mingru": MinGRULayer, "lru": LRULayer}
        layer = layers[name](input_size, hidden_size)
    return xavier_init_(layer) if init == "xavier" else layer


def make_cell(
    name: str,
    input_size: int,
    hidden_size: int,
    num_layers: int = 1,
    double: bool = False,
    t_max: float | None = None,
    init: str = "uniform",
    device: torch.device | str | None = None,
    dtype: torch.dtype | None = None,
) -> RecurrentStack:
    """Build a stack of ``num_layers`` cells by name.

    :param name: one of :data:`CELL_NAMES`.
    :param input_size: input width ``F`` of the first layer.
    :param hidden_size: width ``H`` of every layer (split in two halves when ``double``).
    :param num_layers: number of layers ``L``.
    :param double: double layers (§6.3): two cells of width ``H / 2`` per layer.
    :param t_max: chrono initialisation horizon (required for ``"chrono"``, unused by other cells).
    :param init: ``"uniform"``: PyTorch's ``U(-1/sqrt(H), 1/sqrt(H))`` for every parameter;
        ``"xavier"``: the initialisation of the paper's published code (:func:`xavier_init_`).
    :param device: device of the parameters.
    :param dtype: floating dtype of the parameters.
    """
    if name not in CELL_NAMES:
        raise ValueError(f"cell must be one of {', '.join(repr(n) for n in CELL_NAMES)}; got {name!r}")
    for arg, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{arg} must be a positive integer; got {value!r}")
    if double and hidden_size % 2:
        raise ValueError(f"hidden_size must be even when double=True (two halves); got {hidden_size}")
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(map(repr, INITS))}; got {init!r}")
    if name == "chrono" and t_max is None:
        raise ValueError("t_max is required for cell 'chrono' (e.g. the longest sequence length)")
    layers: list[RecurrentLayer] = []
    for i in range(num_layers):
        in_size = input_size if i == 0 else hidden_size
        if double:
            half = hidden_size // 2
            layers.append(
                DoubleLayer(
                    _make_layer(name, in_size, half, t_max, init),
                    _make_layer(name, in_size, half, t_max, init),
                )
            )
        else:
            layers.append(_make_layer(name, in_size, hidden_size, t_max, init))
    return RecurrentStack(name, layers, double=double).to(device=device, dtype=dtype)


def as_stack(module: nn.Module) -> RecurrentStack:
    """A :class:`RecurrentStack` view of a ``torch.nn.GRU``/``nn.LSTM`` that shares its parameters.

    Warming up or training the view changes the original module. A ``RecurrentStack`` is returned as is.
    Bidirectional modules and LSTM projections are not supported; dropout is ignored.
    """
    if isinstance(module, RecurrentStack):
        return module
    if not isinstance(module, (nn.GRU, nn.LSTM)):
        raise TypeError(
            f"model must be a RecurrentStack, torch.nn.GRU or torch.nn.LSTM; got {type(module).__name__}"
        )
    if module.bidirectional or module.proj_size:
        raise ValueError("as_stack supports unidirectional modules without proj_size only")
    cls = GRULayer if isinstance(module, nn.GRU) else LSTMLayer
    layers = []
    for k in range(module.num_layers):
        in_size = module.input_size if k == 0 else module.hidden_size
        layer = cls(in_size, module.hidden_size, bias=module.bias)
        for name in layer.rnn._flat_weights_names:
            setattr(layer.rnn, name, getattr(module, name[: -len("l0")] + f"l{k}"))
        layers.append(layer)
    return RecurrentStack("gru" if cls is GRULayer else "lstm", layers)


# The parallel cells subclass the layers above, hence imported last (re-exported here).
from recurrent_q.parallel_cells import LRULayer, MinGRULayer  # noqa: E402
