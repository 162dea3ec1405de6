"""Recurrent cell zoo (Appendix A of Lambrechts et al. 2023) behind one stack interface: the gated cells
(LSTM, chrono, GRU, MGU, BRC, NBRC) and :func:`make_cell`.

The layer machinery (:class:`RecurrentLayer`, :class:`DoubleLayer`, :class:`RecurrentStack`, eqs.
(A.1)-(A.3)) is in :mod:`recurrent_q.layers`, the parallel cells (:class:`MinGRULayer`, :class:`LRULayer`)
in :mod:`recurrent_q.parallel_cells`; both are imported here, so ``from recurrent_q.cells import ...``
reaches the whole zoo.

Shapes: ``B`` batch, ``T`` time, ``F`` input width, ``H`` hidden width, ``S`` state width
(``H``, or ``2H`` for the LSTM state ``[h, c]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from recurrent_q import _gru_cpu
from recurrent_q.layers import DoubleLayer, ProjectedLayer, RecurrentLayer, RecurrentStack
from recurrent_q.parallel_cells import LRULayer, MinGRULayer


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
        f = torch.sigmoid(torch.addmm(p_f, h, self.weight_fh.t()))  # eq. (A.19)
        h_tilde = torch.tanh(torch.addmm(p_h, f * h, self.weight_hh.t()))  # eq. (A.20)
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
        r_c, r_a = (h @ self.weight_hh.t()).chunk(2, -1)
        c = torch.sigmoid(p_c + r_c)  # eq. (A.16)
        a = 1.0 + torch.tanh(p_a + r_a)  # eq. (A.17)
        return torch.lerp(torch.tanh(torch.addcmul(p_h, a, h)), h, c)  # eq. (A.18)


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
    elif isinstance(layer, ProjectedLayer):
        _per_gate(nn.init.xavier_uniform_, layer.weight_ih, hidden)
        layer.bias.zero_()
        for name, weight in layer.named_parameters():
            if name in ("weight_fh", "weight_hh"):
                _per_gate(nn.init.xavier_uniform_, weight, hidden)
            elif name in ("w_c", "w_a"):
                weight.fill_(1.0)
    return layer


CellBuilder = Callable[[int, int, float | None], RecurrentLayer]
"""``(input_size, hidden_size, t_max) -> layer``: one layer of a cell, with its own initialisation."""

CELLS: dict[str, CellBuilder] = {
    "lstm": lambda f, h, t_max: LSTMLayer(f, h),
    "gru": lambda f, h, t_max: GRULayer(f, h),
    "mgu": lambda f, h, t_max: MGULayer(f, h),
    "brc": lambda f, h, t_max: BRCLayer(f, h),
    "nbrc": lambda f, h, t_max: NBRCLayer(f, h),
    "chrono": lambda f, h, t_max: chrono_init_(LSTMLayer(f, h), t_max),
    "mingru": lambda f, h, t_max: MinGRULayer(f, h),
    "lru": lambda f, h, t_max: LRULayer(f, h),
}
"""The registry of the zoo: the builder of one layer (input width ``F``, width ``H``) of each cell, by name.
:func:`make_cell` builds every layer through it; :data:`CELL_NAMES` is its names."""

CELL_NAMES = tuple(CELLS)
"""The names of the cells of the zoo, in the order of :data:`CELLS`."""


def _make_layer(
    name: str, input_size: int, hidden_size: int, t_max: float | None, init: str
) -> RecurrentLayer:
    layer = CELLS[name](input_size, hidden_size, t_max)
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
