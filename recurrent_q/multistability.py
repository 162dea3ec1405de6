"""Reachable multistability of recurrent networks (§5-6 of Lambrechts et al. 2023).

- :func:`vaa`, :func:`estimate_vaa`, :func:`vaa_star`, :data:`HeldInput`: the measures, defined in
  :mod:`recurrent_q.measures` and importable from here.
- :func:`warmup`: Algorithm 3 with the curriculum of §6.1 and the loss of eq. (9), per layer (or, as an
  extension, a loss that spreads the final states apart: :data:`WarmupObjective`).
- :data:`Version`: the training recipes that use it or not (classic, warmup, double, double-classic).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from recurrent_q.cells import RecurrentStack
from recurrent_q.checks import check_choice, check_flag, check_integer, check_number
from recurrent_q.measures import (
    HELD_INPUTS,
    HeldInput,
    _check_eps,
    _check_held_input,
    _data_inputs,
    _prepare,
    _random_hidden_states,
    _stabilise,
    estimate_vaa,
    vaa,
    vaa_star,
)


def _non_finite_parameter(model: nn.Module) -> str | None:
    """The name of the first parameter of ``model`` that holds a NaN or infinite value, if any."""
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter.detach()).all():
            return name
    return None


def _held(run: Callable[[Tensor, int], Tensor], state: Tensor, steps: int, bptt_steps: int | None) -> Tensor:
    """``run(state, steps)``, with gradients through the last ``bptt_steps`` steps only (None: all)."""
    if bptt_steps is None or bptt_steps >= steps:
        return run(state, steps)
    with torch.no_grad():
        state = run(state.detach(), steps - bptt_steps)
    return run(state, bptt_steps)


Version = Literal["classic", "warmup", "double", "double-classic"]
"""A training recipe (a run's ``version``, the same name on both sides: ``TMazeConfig``,
``SupervisedConfig``): classic (plain initialisation, no warmup), warmup (:func:`warmup` before training,
§6.1), double (double layers, only their first halves warmed up, §6.3) or double-classic (double layers, no
warmup, Appendix G). A trainer may run a subset of them (the supervised one: :data:`VERSIONS` but
double-classic)."""
VERSIONS: tuple[Version, ...] = get_args(Version)
"""The values of :data:`Version`, in order."""

WarmupObjective = Literal["vaa_star", "variance"]
"""What the warmup's loss asks of each layer's final states ``f^M(x_i, u)`` (:class:`WarmupConfig`).
``"vaa_star"``: their VAA* at the target ``k`` (eq. (9), the paper). ``"variance"``: their spread,
:func:`spread` (the mean over units of the variance over the batch of their ``tanh``), as large as it can
be: loss ``(1 − spread)²``, whose target 1 lies above any spread a batch reaches short of full
saturation, so that it keeps pushing. VAA* counts final states more than ε apart as distinct
attractors, also when they have not converged but drift slowly apart on a near-neutral manifold; a large
spread after long holds puts the states in saturated regions, where the dynamics contract (the lab's
earlier T-Maze code maximised this variance after holding the corridor input up to 5 000 steps)."""
WARMUP_OBJECTIVES: tuple[WarmupObjective, ...] = get_args(WarmupObjective)
"""The values of :data:`WarmupObjective`, in order."""


def spread(final_states: Tensor) -> Tensor:
    """Spread of final states ``[n, d]``: the mean over the ``d`` units of the variance over the batch of
    ``tanh(final_states)`` (population variance): a scalar in ``[0, 1]`` carrying gradients (1 only once
    ``tanh`` rounds to ±1, at saturation). 0 when every
    state is the same; close to 1 when every unit sits at a large ``|value|``, half of the batch on each
    side."""
    if final_states.dim() != 2 or final_states.shape[0] == 0:
        raise ValueError(
            f"final_states must be a non-empty batch [n, d]; got shape {tuple(final_states.shape)}"
        )
    return torch.tanh(final_states).var(0, unbiased=False).mean()


@dataclass
class WarmupConfig:
    """Warmup hyper-parameters (Algorithm 3, docs/specification.md §5 defaults).

    The rate is width-aware: a layer whose warmed part has ``H`` units is updated by Adam at
    ``lr · reference_width / H``. An Adam step moves every weight by about ``lr`` in the direction of its
    gradient; a recurrent pre-activation sums ``H`` such coherent changes, so it moves by about ``lr · H``.
    The paper's α = 1e-2 was set for 256-unit layers; with it a 32-unit LSTM became multistable too late
    (after the curriculum had reached M* at s = 20, where a monostable layer's states all merge within ε
    and eq. (7) has no gradient: VAA* falls back to 1/n) or not at all, on about half the seeds. The
    scaled rate (8e-2 at 32 units) reaches VAA ≥ 0.9 on every seed tried, and at 256 units it is the
    paper's α (``docs/warmup.md``).
    """

    steps: int = 100
    """S, number of gradient steps."""
    lr: float = 1e-2
    """α, Adam learning rate at ``reference_width`` units (Adam, as in the authors' code)."""
    reference_width: int | None = 256
    """Width at which a layer is updated at ``lr``; a layer of ``H`` warmed units gets
    ``lr · reference_width / H``. None: ``lr`` for every layer, whatever its width."""
    k: float = 0.95
    """Target VAA* of every layer, in (0, 1] (eq. (9))."""
    c: int = 10
    """Stabilisation period increment: M ~ U{1..min(M*, 1 + c·s)} at step s."""
    max_stabilisation: int = 200
    """M*, the largest stabilisation period."""
    batch_size: int = 200
    """n, sequences (hence states) per step; all of them if the data set is smaller."""
    eps: float = 1e-4
    """ε, tolerance in VAA* (eq. (7))."""
    seed: int | None = None
    """Seed of the warmup's own draws (batches, t, M, u); None: torch's global generator."""
    held_input: HeldInput = "gaussian"
    """Where ``u`` comes from (:data:`HeldInput`). ``"gaussian"``: every layer holds its own
    ``u ~ N(0, 1)`` for ``M`` steps of that layer alone (the paper). ``"data"``: one input of the sequences
    is held at the bottom of the whole stack for ``M`` steps, and each layer's VAA* is taken on its final
    states: the attractors of the task's own inputs."""
    objective: WarmupObjective = "vaa_star"
    """What the loss asks of the final states (:data:`WarmupObjective`): ``"vaa_star"``, eq. (9) with the
    target ``k`` (the paper); ``"variance"``, their :func:`spread` as large as it can be."""
    bptt_steps: int | None = None
    """Back-propagate through the last ``bptt_steps`` steps of the stabilisation only (the ``M − bptt_steps``
    before run without gradient, from detached states: neither they nor the sequence prefix are
    differentiated). Memory then grows with ``bptt_steps``, not with ``M``, which makes an ``M*`` in the
    thousands affordable. None: through all ``M`` steps and the prefix (the paper)."""
    bfloat16_products: bool = False
    """Run the matrix products of the warmup's forward and backward passes in bfloat16 (``torch.autocast``
    on the model's device; float32 models): Algorithm 2's prefix, whose fused ``nn.GRU``/``nn.LSTM``
    kernels then run in bfloat16 throughout, and each stabilisation step's products. The stabilisation's
    states and gate arithmetic, VAA* (whose ε = 1e-4 is below bfloat16's resolution), the loss and the
    Adam update stay in the model's precision. It can only be faster where the CPU multiplies bfloat16 in
    hardware (AVX-512 BF16, AMX) and on recent GPUs; on other CPUs it is emulated, and can be slower. The
    compiled GRU kernel of small layers (:mod:`recurrent_q._gru_cpu`) is float32 only and ignores it. Its
    effect on the VAA and the time at 2 × 256 (unchanged VAA; 8-24 % faster on an AMX Xeon):
    ``docs/warmup.md``. Off: the paper's float32."""

    def __post_init__(self) -> None:
        check_integer("steps", self.steps, 0)
        check_number("lr", self.lr, 0, open_low=True)
        if self.reference_width is not None:
            check_integer("reference_width", self.reference_width)
        check_number("k", self.k, 0, 1, open_low=True)
        check_integer("c", self.c, 0)
        check_integer("max_stabilisation", self.max_stabilisation)
        check_integer("batch_size", self.batch_size)
        _check_eps(self.eps)
        _check_held_input(self.held_input)
        check_choice("objective", self.objective, WARMUP_OBJECTIVES)
        if self.bptt_steps is not None:
            check_integer("bptt_steps", self.bptt_steps)
        check_flag("bfloat16_products", self.bfloat16_products)


@dataclass
class WarmupResult:
    """History of a warmup: one entry per gradient step."""

    vaa_star: list[list[float]] = field(default_factory=list)
    """VAA* of each layer (warmed part), ``[step][layer]``, before the update of that step."""
    loss: list[float] = field(default_factory=list)
    """Loss of eq. (9) (``objective="variance"``: ``1/L Σ (1 − spread_i)²``)."""
    stabilisation: list[int] = field(default_factory=list)
    """Stabilisation period M drawn at that step."""
    spread: list[list[float]] = field(default_factory=list)
    """:func:`spread` of each layer's final states (warmed part), ``[step][layer]``, before the update."""


def _layer_lr(cfg: WarmupConfig, hidden_size: int) -> float:
    """Adam rate of a layer of ``hidden_size`` warmed units: ``lr · reference_width / hidden_size``."""
    return cfg.lr if cfg.reference_width is None else cfg.lr * cfg.reference_width / hidden_size


def _layer_finals(
    stack: RecurrentStack, x0: Tensor, m: int, cfg: WarmupConfig, generator: torch.Generator | None
) -> list[Tensor]:
    """Lines 5-6 of Algorithm 3: for every layer, its own ``u ~ N(0, 1)`` held for ``M = m`` steps of that
    layer alone from its part of the states ``x0[L, n, S]``: its final (warmed) states, with grad."""
    ref = next(stack.parameters())
    finals = []
    for i, layer in enumerate(stack.layers):
        warm = layer.warm_layer
        u = torch.randn(1, warm.input_size, generator=generator).to(device=ref.device, dtype=ref.dtype)
        u = u.expand(x0.shape[1], -1)
        finals.append(_held(partial(warm.iterate, u), layer.warm_state(x0[i]), m, cfg.bptt_steps))
    return finals


def _stack_finals(stack: RecurrentStack, x0: Tensor, u: Tensor, m: int, cfg: WarmupConfig) -> list[Tensor]:
    """Lines 5-6 with an input of the data: ``u[1, F]`` held at the bottom of the whole stack for ``M = m``
    steps from the states ``x0[L, n, S]``: each layer's (warmed) final states, with grad."""
    u = u.expand(x0.shape[1], -1)
    final = _held(lambda state, n: _stabilise(stack, state, u, n), x0, m, cfg.bptt_steps)
    return [layer.warm_state(final[i]) for i, layer in enumerate(stack.layers)]


def _products(cfg: WarmupConfig, device: torch.device) -> torch.autocast:
    """The context of the warmup's forward passes: bfloat16 products when ``cfg.bfloat16_products``."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.bfloat16_products)


def _check_finals(finals: list[Tensor], m: int, s: int) -> None:
    """Stop with a clear error when a layer's final states ``[n, S_w]`` are not finite."""
    for i, final in enumerate(finals):
        if not torch.isfinite(final).all():
            raise FloatingPointError(
                f"warmup step {s}: the states of layer {i} became non-finite in the stabilisation "
                f"(M = {m} steps, from finite states, with finite parameters: the cell's recurrence "
                "diverges under a constant input)"
            )


def _loss(finals: list[Tensor], cfg: WarmupConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Line 7 and the loss of line 8 on each layer's final states: ``(loss, VAA* [L], spread [L])``; the
    measure that :attr:`WarmupConfig.objective` does not use is computed without gradient."""
    grad_vaa = cfg.objective == "vaa_star"
    with torch.set_grad_enabled(grad_vaa and torch.is_grad_enabled()):
        v = torch.stack([vaa_star(final, cfg.eps) for final in finals])
    with torch.set_grad_enabled(not grad_vaa and torch.is_grad_enabled()):
        spreads = torch.stack([spread(final) for final in finals])
    loss = ((v - cfg.k) ** 2).mean() if grad_vaa else ((1.0 - spreads) ** 2).mean()  # eq. (9) or its spread
    return loss, v.detach(), spreads.detach()


def _log_step(writer: Any, result: WarmupResult, s: int) -> None:
    """TensorBoard scalars of warmup step ``s`` (the last entries of ``result``)."""
    writer.add_scalar("warmup/loss", result.loss[-1], s)
    writer.add_scalar("warmup/vaa_star", sum(result.vaa_star[-1]) / len(result.vaa_star[-1]), s)
    writer.add_scalar("warmup/stabilisation", result.stabilisation[-1], s)
    writer.add_scalar("warmup/spread", sum(result.spread[-1]) / len(result.spread[-1]), s)
    for i, value in enumerate(result.vaa_star[-1]):
        writer.add_scalar(f"warmup/vaa_star_layer{i}", value, s)


def warmup(
    model: nn.Module,
    sequences: Tensor,
    config: WarmupConfig | None = None,
    lengths: Tensor | None = None,
    writer: Any = None,
    progress: bool = False,
    generator: torch.Generator | None = None,
) -> WarmupResult:
    """Warm up a recurrent network towards reachable multistability, Algorithm 3 (in place).

    At step ``s``: ``n`` sequences without replacement, a state at a random step of each (Algorithm 2),
    ``M ~ U{1..min(M*, 1 + c·s)}``; for every layer ``i``, its own ``u ~ N(0, 1)`` and its VAA* after ``M``
    steps of that layer alone from its part of the states (``config.held_input = "data"``: one input of the
    sequences held at the bottom of the whole stack, and each layer's VAA* on its final states); Adam step
    on ``1/L Σ (v_i - k)²`` (eq. (9); ``config.objective = "variance"``: ``1/L Σ (1 − spread_i)²``, the
    final states spread apart, :func:`spread`) with BPTT through the stabilisation steps and the sequence
    prefix (``config.bptt_steps``: through the last steps only), each layer at its width-scaled rate
    (:class:`WarmupConfig`). For double layers only the first halves enter the loss and the optimiser.
    Parameter ``.grad`` are left ``None``.

    :param model: a ``RecurrentStack`` or a ``torch.nn.GRU``/``nn.LSTM`` (its parameters are updated).
    :param sequences: inputs ``[N, T, F]`` (right-padded when ``lengths`` is given); ``[T, N, F]`` for an
        ``nn.GRU``/``nn.LSTM`` built with ``batch_first=False`` (its own layout).
    :param config: hyper-parameters, :class:`WarmupConfig` defaults when None.
    :param lengths: optional ``[N]`` true lengths; ``t ~ U{1..lengths[i]}``.
    :param writer: optional TensorBoard ``SummaryWriter`` (``warmup/loss``, ``warmup/vaa_star``,
        ``warmup/vaa_star_layer{i}``, ``warmup/spread``, ``warmup/stabilisation``).
    :param progress: show a tqdm progress bar.
    :param generator: CPU ``torch.Generator`` for the draws (overrides ``config.seed``).
    :raises FloatingPointError: when states or the loss become non-finite.
    """
    cfg = config if config is not None else WarmupConfig()
    stack, sequences, lengths = _prepare(model, sequences, lengths)
    bad = _non_finite_parameter(model)
    if bad is not None:
        raise ValueError(
            f"warmup: parameter {bad!r} of the model holds NaN or infinite values before the warmup"
        )
    if generator is None and cfg.seed is not None:
        generator = torch.Generator().manual_seed(cfg.seed)
    groups = [
        {"params": layer.warm_parameters(), "lr": _layer_lr(cfg, layer.warm_layer.hidden_size)}
        for layer in stack.layers
    ]
    params = [p for group in groups for p in group["params"]]
    device = params[0].device
    optimiser = torch.optim.Adam(groups, lr=cfg.lr)
    n = min(cfg.batch_size, sequences.shape[0])
    result = WarmupResult()
    steps = range(1, cfg.steps + 1)
    if progress:
        from tqdm.auto import tqdm

        steps = tqdm(steps, desc="warmup")
    try:
        for s in steps:
            index = torch.randperm(sequences.shape[0], generator=generator)[:n]  # line 2
            with _products(cfg, device):
                x0 = _random_hidden_states(stack, sequences, lengths, index, generator)  # line 3, with grad
            if not torch.isfinite(x0).all():
                layer = int((~torch.isfinite(x0)).flatten(1).any(1).nonzero()[0])
                raise FloatingPointError(
                    f"warmup step {s}: the states of layer {layer} along the input sequences (Algorithm 2) "
                    "became non-finite, from finite inputs and parameters (the cell's recurrence diverges)"
                )
            m_max = min(cfg.max_stabilisation, 1 + cfg.c * s)
            m = int(torch.randint(1, m_max + 1, (1,), generator=generator))  # line 4
            with _products(cfg, device):
                if cfg.held_input == "gaussian":
                    finals = _layer_finals(stack, x0, m, cfg, generator)  # lines 5-6
                else:
                    u = _data_inputs(sequences, lengths, 1, generator, x0)
                    finals = _stack_finals(stack, x0, u, m, cfg)
            _check_finals(finals, m, s)
            loss, v, spreads = _loss(finals, cfg)  # lines 7-8, eq. (9)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"warmup step {s}: the warmup's loss is non-finite (M = {m})")
            grads = torch.autograd.grad(loss, params, allow_unused=True)  # line 9: BPTT over M and the prefix
            for p, g in zip(params, grads, strict=True):
                p.grad = g
            optimiser.step()  # line 10
            bad = _non_finite_parameter(model)
            if bad is not None:
                rates = ", ".join(f"{group['lr']:.3g}" for group in optimiser.param_groups)
                raise FloatingPointError(
                    f"warmup step {s}: the Adam update made parameter {bad!r} non-finite "
                    f"(layer rates {rates}; a smaller WarmupConfig.lr may help)"
                )
            result.vaa_star.append(v.tolist())
            result.spread.append(spreads.tolist())
            result.loss.append(float(loss.detach()))
            result.stabilisation.append(m)
            if writer is not None:
                _log_step(writer, result, s)
            if progress:
                steps.set_postfix(
                    loss=f"{result.loss[-1]:.4f}",
                    vaa_star=f"{float(v.mean()):.3f}",
                    spread=f"{float(spreads.mean()):.3f}",
                    M=m,
                )
    finally:
        for p in params:
            p.grad = None
    return result


__all__ = [
    "HELD_INPUTS",
    "HeldInput",
    "VERSIONS",
    "Version",
    "WARMUP_OBJECTIVES",
    "WarmupConfig",
    "WarmupObjective",
    "WarmupResult",
    "estimate_vaa",
    "spread",
    "vaa",
    "vaa_star",
    "warmup",
]
