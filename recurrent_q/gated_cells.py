"""The gated cells of the zoo (Appendix A of Lambrechts et al. 2023), each a :class:`RecurrentLayer`: LSTM
(and its chrono initialisation), GRU, MGU, BRC and NBRC.

The registry that names and builds them (:data:`recurrent_q.cells.CELLS`, :func:`recurrent_q.cells.make_cell`)
is :mod:`recurrent_q.cells`, which re-exports every class here (the import path of user code, and of models
pickled before the split); the layer machinery they subclass is :mod:`recurrent_q.layers`.

Shapes: ``B`` batch, ``T`` time, ``F`` input width, ``H`` hidden width, ``S`` state width
(``H``, or ``2H`` for the LSTM state ``[h, c]``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recurrent_q import _gru_cpu
from recurrent_q.layers import ProjectedLayer, RecurrentLayer, as_dtype


def _cpu_autocast() -> bool:
    """Whether ``torch.autocast("cpu")`` is on (``is_autocast_enabled`` takes a device from torch 2.4)."""
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch < 2.4
        return torch.is_autocast_cpu_enabled()


class _FusedLayer(RecurrentLayer):
    """A one-layer ``nn.GRU``/``nn.LSTM`` (batch first): PyTorch's fused kernels for sequences."""

    rnn: nn.RNNBase
    fused_under_cpu_autocast = True
    """Whether ``rnn`` runs under ``torch.autocast("cpu")``; if not, sequences run the step loop there."""

    def _hidden(self, s: Tensor) -> Tensor | tuple[Tensor, Tensor]:
        raise NotImplementedError

    def _state(self, hidden: Tensor | tuple[Tensor, Tensor]) -> Tensor:
        raise NotImplementedError

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`RecurrentLayer.forward`.

        With ``lengths`` on CPU, the GRU gathers its outputs and the LSTM (whose kernel returns ``c`` only at
        ``T``) runs the step loop: PyTorch's packed-sequence CPU backward is quadratic in ``T``. On CUDA, the
        packed kernels are used. Under ``torch.autocast("cpu")``, a layer with ``fused_under_cpu_autocast``
        False (the LSTM) runs the step loop.
        """
        if not u.is_cuda and not self.fused_under_cpu_autocast and _cpu_autocast():
            return super().forward(u, s0, lengths)
        if lengths is None:
            out, hidden = self.rnn(u, self._hidden(s0))
            return as_dtype(out, s0), as_dtype(self._state(hidden), s0)
        if not u.is_cuda:
            if not self.state_is_output:
                return super().forward(u, s0, lengths)
            out = as_dtype(self.rnn(u, self._hidden(s0))[0], s0)
            return out, out[torch.arange(u.shape[0], device=out.device), lengths.to(out.device) - 1]
        packed = pack_padded_sequence(u, lengths.cpu(), batch_first=True, enforce_sorted=False)
        out, hidden = self.rnn(packed, self._hidden(s0))
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=u.shape[1])
        return as_dtype(out, s0), as_dtype(self._state(hidden), s0)

    def _project(self, u: Tensor) -> Tensor:
        weight = self.rnn.weight_ih_l0
        return as_dtype(F.linear(u, weight, self.rnn.bias_ih_l0 if self.rnn.bias else None), weight)

    def _recurrent(self, h: Tensor) -> Tensor:
        return as_dtype(F.linear(h, self.rnn.weight_hh_l0, self.rnn.bias_hh_l0 if self.rnn.bias else None), h)

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
        return as_dtype(self.rnn(u.unsqueeze(1).expand(-1, steps, -1), self._hidden(s0))[1][0], s0)  # cuDNN

    def _cell(self, p: Tensor, s: Tensor) -> Tensor:
        i_r, i_z, i_n = p.chunk(3, 1)
        h_r, h_z, h_n = self._recurrent(s).chunk(3, 1)
        z = torch.sigmoid(i_z + h_z)  # eq. (A.10)
        r = torch.sigmoid(i_r + h_r)  # eq. (A.11)
        return torch.lerp(torch.tanh(i_n + r * h_n), s, z)  # eq. (A.12)

    def step(self, u: Tensor, s: Tensor) -> Tensor:
        """See :meth:`RecurrentLayer.step` (PyTorch's fused ``gru_cell``, the same function as ``_cell``)."""
        return as_dtype(torch.gru_cell(u, s, *self._weights()), s)

    def _hidden(self, s: Tensor) -> Tensor:
        return s.unsqueeze(0).contiguous()

    def _state(self, hidden: Tensor) -> Tensor:
        return hidden[0]


class LSTMLayer(_FusedLayer):
    """LSTM, eqs. (A.4)-(A.9) (PyTorch gate order i, f, g, o); state ``[h, c]`` of width ``2H``.

    Under ``torch.autocast("cpu")`` sequences run the step loop (bfloat16 products, float32 states): the
    fused ``nn.LSTM`` kernel has no bfloat16 primitive on CPUs without native bfloat16 instructions (oneDNN
    raises "could not create a primitive descriptor"), and the loop runs the same path on every CPU.
    """

    fused_under_cpu_autocast = False

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
        return as_dtype(torch.cat([h, c], -1), s)

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


class MGULayer(ProjectedLayer):
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
        f = torch.sigmoid(as_dtype(torch.addmm(p_f, h, self.weight_fh.t()), h))  # eq. (A.19)
        h_tilde = torch.tanh(as_dtype(torch.addmm(p_h, f * h, self.weight_hh.t()), h))  # eq. (A.20)
        return torch.lerp(h, h_tilde, f)  # eq. (A.21)


class BRCLayer(ProjectedLayer):
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


class NBRCLayer(ProjectedLayer):
    """Neuromodulated bistable recurrent cell, eqs. (A.16)-(A.18) with the ``W_hu u`` term. Parameters
    ``weight_ih = [W_cu; W_au; W_hu]``, ``bias = [b_c; b_a; b_h]``, ``weight_hh = [W_ch; W_ah]``."""

    gates = 3

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.weight_hh = nn.Parameter(torch.empty(2 * hidden_size, hidden_size))
        self.reset_parameters()

    def _cell(self, p: Tensor, h: Tensor) -> Tensor:
        p_c, p_a, p_h = p.chunk(3, -1)
        r_c, r_a = as_dtype(h @ self.weight_hh.t(), h).chunk(2, -1)
        c = torch.sigmoid(p_c + r_c)  # eq. (A.16)
        a = 1.0 + torch.tanh(p_a + r_a)  # eq. (A.17)
        return torch.lerp(torch.tanh(torch.addcmul(p_h, a, h)), h, c)  # eq. (A.18)
