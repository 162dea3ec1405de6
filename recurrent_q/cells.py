"""Recurrent cell zoo (Appendix A of Lambrechts et al. 2023) behind one stack interface: the registry of its
cells (:data:`CELLS`, :data:`CELL_NAMES`), :func:`make_cell` that builds a stack of any of them,
their initialisations (:func:`xavier_init_`) and :func:`as_stack`.

The cells themselves are in :mod:`recurrent_q.gated_cells` (LSTM, chrono, GRU, MGU, BRC, NBRC) and
:mod:`recurrent_q.parallel_cells` (:class:`MinGRULayer`, :class:`LRULayer`), the layer machinery they share
(:class:`RecurrentLayer`, :class:`DoubleLayer`, :class:`RecurrentStack`, eqs. (A.1)-(A.3)) in
:mod:`recurrent_q.layers`; all are imported here, so ``from recurrent_q.cells import ...`` reaches the whole
zoo (and models pickled before the split still load).

Shapes: ``B`` batch, ``T`` time, ``F`` input width, ``H`` hidden width, ``S`` state width
(``H``, or ``2H`` for the LSTM state ``[h, c]``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from recurrent_q.checks import SettingError, check_choice, check_integer
from recurrent_q.gated_cells import (
    BRCLayer,
    GRULayer,
    LSTMLayer,
    MGULayer,
    NBRCLayer,
    chrono_init_,
)
from recurrent_q.layers import DoubleLayer, ProjectedLayer, RecurrentLayer, RecurrentStack
from recurrent_q.parallel_cells import LRULayer, MinGRULayer


def check_device(device: str | torch.device) -> torch.device:
    """``torch.device(device)``, refusing a name torch does not know and a CUDA device on a machine
    without CUDA (instead of a deep torch error, or SB3's silent fall-back to the CPU)."""
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise SettingError(f"device must be a torch device such as cpu or cuda, got {device!r}") from error
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise SettingError(f"device={device!r} but CUDA is not available here; use device='cpu'")
    return resolved


CellInit = Literal["uniform", "xavier"]
"""The initialisations of :func:`make_cell` (``init``): PyTorch's, or the authors' (:func:`xavier_init_`)."""
INITS: tuple[CellInit, ...] = get_args(CellInit)


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

CellName = Literal[CELL_NAMES]
"""The type of a cell's name (the ``cell`` of ``SupervisedConfig``, ``TMazeConfig`` and the command lines,
whose choices it gives): the names of :data:`CELLS`, read from the registry, not written again."""


def check_cell(name: str) -> None:
    """A :class:`~recurrent_q.checks.SettingError` naming the cells of :data:`CELL_NAMES` if ``name`` is not
    one of them."""
    check_choice("cell", name, CELL_NAMES)


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
    check_cell(name)
    for arg, value in (("input_size", input_size), ("hidden_size", hidden_size), ("num_layers", num_layers)):
        check_integer(arg, value)
    if double and hidden_size % 2:
        raise SettingError(f"hidden_size must be even when double=True (two halves); got {hidden_size}")
    check_choice("init", init, INITS)
    if name == "chrono" and t_max is None:
        raise SettingError("t_max is required for cell 'chrono' (e.g. the longest sequence length)")
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
