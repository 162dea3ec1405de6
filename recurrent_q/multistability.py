"""Reachable multistability of recurrent networks (§5-6 of Lambrechts et al. 2023).

- :func:`vaa`: variability amongst attractors of any map ``step(x, u) -> x``, eq. (5).
- :func:`estimate_vaa`: Algorithms 1-2 on a :class:`~recurrent_q.cells.RecurrentStack` or a plain
  ``torch.nn.GRU``/``nn.LSTM`` (states of all layers, and the LSTM ``c``, concatenated; no tanh).
- :func:`vaa_star`: the differentiable proxy, eqs. (7)-(8).
- :func:`warmup`: Algorithm 3 with the curriculum of §6.1 and the loss of eq. (9), per layer.
- :data:`Version`: the training recipes that use it or not (classic, warmup, double, double-classic).
- :data:`HeldInput`: where the constant input ``u`` comes from: the paper's ``u ~ N(0, 1)`` or the data's
  own inputs (for a T-Maze, mostly the corridor's observation: the attractors its memory must use).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from recurrent_q.cells import RecurrentStack, as_stack

# Largest number of state rows stabilised at once by `estimate_vaa` (iterations are batched up to it).
_MAX_ROWS = 1024
# Largest number of elements of the repeated constant input / outputs held at once while stabilising.
_CHUNK_ELEMENTS = 2**22


def _check_eps(eps: float) -> None:
    if not eps > 0:
        raise ValueError(f"eps must be > 0; got {eps!r}")


def _check_positive_int(name: str, value: int, minimum: int = 1) -> None:
    if not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}; got {value!r}")


HeldInput = Literal["gaussian", "data"]
"""Where the constant input ``u`` held during a stabilisation comes from: ``"gaussian"``, ``u ~ N(0, 1)``
(the paper's Algorithms 1 and 3), or ``"data"``, the input of a random step of a random sequence (within
its length) of the sequences given, held at the bottom of the stack: the attractors of the task's own
inputs (for the T-Maze, with a corridor of length L, the corridor's observation L − 1 times in L + 1)."""
HELD_INPUTS: tuple[HeldInput, ...] = get_args(HeldInput)
"""The values of :data:`HeldInput`, in order."""


def _check_held_input(held_input: str) -> None:
    if held_input not in HELD_INPUTS:
        raise ValueError(f"held_input must be one of {', '.join(map(repr, HELD_INPUTS))}; got {held_input!r}")


def _distances(x: Tensor) -> Tensor:
    """Exact pairwise Euclidean distances ``[n, n]`` of ``x[n, d]`` (no matmul shortcut: small ε matter)."""
    return torch.cdist(x, x, compute_mode="donot_use_mm_for_euclid_dist")


def _vaa_of_final_states(x: Tensor, eps: float) -> Tensor:
    """Eq. (5) given the final states ``f^M(x_i, u)`` as ``[n, d]``; returns a scalar tensor."""
    if not torch.isfinite(x).all():
        raise FloatingPointError("VAA: the final states are not finite (the system diverged)")
    counts = (_distances(x) <= eps).sum(1)  # j = i included
    return (1.0 / counts).mean()  # eq. (5)


def vaa(step: Callable[[Tensor, Any], Tensor], x0: Tensor, u: Any, steps: int, eps: float = 1e-4) -> float:
    """Variability amongst attractors ``VAA_{M,ε}(f, X, u)``, eq. (5).

    :param step: the update function ``f``: ``step(x[n, d], u) -> x[n, d]``, any callable.
    :param x0: the initial states ``X`` as a batch ``[n, d]``.
    :param u: the constant input, passed to ``step`` unchanged.
    :param steps: the stabilisation period ``M`` (``>= 0``).
    :param eps: tolerance ``ε`` under which two final states share an attractor (``> 0``).
    :return: the number of distinct attractors reached divided by ``n``, in ``[1/n, 1]``.
    """
    _check_eps(eps)
    _check_positive_int("steps", steps, 0)
    if x0.dim() != 2 or x0.shape[0] == 0:
        raise ValueError(f"x0 must be a non-empty batch of states [n, d]; got shape {tuple(x0.shape)}")
    with torch.no_grad():
        x = x0
        for _ in range(steps):
            x = step(x, u)
        return float(_vaa_of_final_states(x.reshape(x0.shape[0], -1), eps))


def vaa_star(final_states: Tensor, eps: float = 1e-4) -> Tensor:
    """Differentiable proxy ``VAA*_{M,ε}``, eqs. (7)-(8), of the final states ``f^M(x_i, u)`` ``[n, d]``.

    ``C*_ij = 1`` when ``d_ij = ||tanh f^M(x_i) - tanh f^M(x_j)|| = 0`` (guarded division).
    :return: a scalar tensor in ``(1/n, 1]`` carrying gradients.
    :raises FloatingPointError: when a final state is not finite.
    """
    _check_eps(eps)
    if final_states.dim() != 2 or final_states.shape[0] == 0:
        raise ValueError(
            f"final_states must be a non-empty batch [n, d]; got shape {tuple(final_states.shape)}"
        )
    if not torch.isfinite(final_states).all():
        raise FloatingPointError("vaa_star: the final states are not finite (the system diverged)")
    squashed = torch.tanh(final_states)
    d = _distances(squashed)
    positive = d > 0
    safe_d = torch.where(positive, d, torch.ones_like(d))
    c_star = torch.where(positive, 1.0 - torch.relu(safe_d - eps) / safe_d, torch.ones_like(d))  # eq. (7)
    return (1.0 / c_star.sum(1)).mean()  # eq. (8)


def _prepare(
    model: nn.Module, sequences: Tensor, lengths: Tensor | None
) -> tuple[RecurrentStack, Tensor, Tensor]:
    """The stack (or view), the sequences ``[N, T, F]`` and the lengths ``[N]`` (CPU, long), checked.

    An ``nn.GRU``/``nn.LSTM`` built with ``batch_first=False`` takes its sequences in its own layout,
    ``[T, N, F]``.
    """
    stack = as_stack(model)
    sequences = torch.as_tensor(sequences)
    if isinstance(model, (nn.GRU, nn.LSTM)) and not model.batch_first and sequences.dim() == 3:
        sequences = sequences.transpose(0, 1)  # the module's [T, N, F] -> [N, T, F]
    if sequences.dim() != 3 or sequences.shape[0] == 0 or sequences.shape[1] == 0:
        raise ValueError(
            f"sequences must be a non-empty tensor [N, T, F]; got shape {tuple(sequences.shape)}"
        )
    if sequences.shape[2] != stack.input_size:
        raise ValueError(
            f"sequences have input width {sequences.shape[2]}, "
            f"but the model's input_size is {stack.input_size}"
        )
    n, t = sequences.shape[:2]
    if lengths is None:
        lengths = torch.full((n,), t, dtype=torch.long)
    else:
        lengths = torch.as_tensor(lengths).to(device="cpu", dtype=torch.long)
        if lengths.shape != (n,) or int(lengths.min()) < 1 or int(lengths.max()) > t:
            raise ValueError(f"lengths must have shape [N] = [{n}] and values in 1..{t}")
    read = torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)  # [N, T]: the steps within each length
    bad = (
        ~torch.isfinite(sequences).all(-1) & read.to(sequences.device)
        if sequences.is_floating_point()
        else None
    )
    if bad is not None and bad.any():
        n_bad, t_bad = bad.nonzero()[0].tolist()
        raise ValueError(
            f"sequences contain NaN or infinite values (first at sequence {n_bad}, step {t_bad}, "
            "in the [N, T, F] layout)"
        )
    return stack, sequences, lengths


def _non_finite_parameter(model: nn.Module) -> str | None:
    """The name of the first parameter of ``model`` that holds a NaN or infinite value, if any."""
    for name, parameter in model.named_parameters():
        if not torch.isfinite(parameter.detach()).all():
            return name
    return None


def _random_hidden_states(
    stack: RecurrentStack,
    sequences: Tensor,
    lengths: Tensor,
    index: Tensor,
    generator: torch.Generator | None,
) -> Tensor:
    """Algorithm 2: for each chosen sequence, the state ``[L, n, S]`` after ``t ~ U{1..T_i}`` steps from 0."""
    ref = next(stack.parameters())
    chosen = lengths[index]
    t = (torch.rand(len(index), generator=generator, dtype=torch.float64) * chosen).long() + 1
    t = torch.minimum(t, chosen)
    x = sequences[index.to(sequences.device)].to(device=ref.device, dtype=ref.dtype)
    return stack.states_at(x, t.to(ref.device))


def _data_inputs(
    sequences: Tensor, lengths: Tensor, count: int, generator: torch.Generator | None, like: Tensor
) -> Tensor:
    """``count`` inputs ``[count, F]`` of the data: a sequence uniformly, then a step uniformly within its
    length (never the padding), as the dtype and device of ``like``."""
    j = torch.randint(0, sequences.shape[0], (count,), generator=generator)
    t = (torch.rand(count, generator=generator, dtype=torch.float64) * lengths[j]).long()
    t = torch.minimum(t, lengths[j] - 1)
    return sequences[j.to(sequences.device), t.to(sequences.device)].to(device=like.device, dtype=like.dtype)


def _held(run: Callable[[Tensor, int], Tensor], state: Tensor, steps: int, bptt_steps: int | None) -> Tensor:
    """``run(state, steps)``, with gradients through the last ``bptt_steps`` steps only (None: all)."""
    if bptt_steps is None or bptt_steps >= steps:
        return run(state, steps)
    with torch.no_grad():
        state = run(state.detach(), steps - bptt_steps)
    return run(state, bptt_steps)


def _stabilise(stack: RecurrentStack, state: Tensor, u: Tensor, steps: int) -> Tensor:
    """``f^steps`` of the whole stack from ``state[L, B, S]`` with input ``u[B, F]`` held at the bottom.

    Runs the fused sequence kernels on the repeated input, in chunks that bound the memory.
    """
    chunk = max(1, min(steps, _CHUNK_ELEMENTS // max(1, u.shape[0] * max(stack.hidden_size, u.shape[1]))))
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        _, state = stack(u.unsqueeze(1).expand(-1, n, -1), state)
        done += n
    return state


def estimate_vaa(
    model: nn.Module,
    sequences: Tensor,
    steps: int = 10_000,
    eps: float = 1e-4,
    iterations: int = 10,
    batch_size: int = 32,
    lengths: Tensor | None = None,
    generator: torch.Generator | None = None,
    held_input: HeldInput = "gaussian",
) -> float:
    """Reachable multistability of a network on a set of sequences, Algorithms 1-2.

    For each of ``iterations`` batches: ``batch_size`` sequences drawn without replacement (all of them if
    fewer), a state at a random step of each (Algorithm 2), one input ``u`` held at the bottom of the
    stack for ``steps`` steps, then eq. (5) on the states of all layers concatenated. Runs under ``no_grad``,
    batched over iterations, on the model's device.

    :param model: a ``RecurrentStack`` or a ``torch.nn.GRU``/``nn.LSTM``.
    :param sequences: inputs ``[N, T, F]`` (right-padded when ``lengths`` is given); ``[T, N, F]`` for an
        ``nn.GRU``/``nn.LSTM`` built with ``batch_first=False`` (its own layout).
    :param steps: stabilisation period ``M``.
    :param eps: tolerance ``ε`` (``> 0``).
    :param iterations: number of batches ``I`` averaged.
    :param batch_size: ``|X|``; the VAA floor is ``1 / min(batch_size, N)``.
    :param lengths: optional ``[N]`` true lengths; ``t ~ U{1..lengths[i]}``.
    :param generator: optional CPU ``torch.Generator`` for the draws (batches, ``t``, ``u``).
    :param held_input: ``"gaussian"``, ``u ~ N(0, 1)`` (the paper), or ``"data"``, the input of a random
        step of a random sequence (:data:`HeldInput`): the attractors of the task's own inputs.
    :return: mean VAA in ``[1 / |X|, 1]``.
    """
    stack, sequences, lengths = _prepare(model, sequences, lengths)
    _check_held_input(held_input)
    _check_eps(eps)
    _check_positive_int("steps", steps, 0)
    _check_positive_int("iterations", iterations)
    _check_positive_int("batch_size", batch_size)
    ref = next(stack.parameters())
    n = min(batch_size, sequences.shape[0])
    per_pass = max(1, _MAX_ROWS // n)
    total = 0.0
    with torch.no_grad():
        for first in range(0, iterations, per_pass):
            k = min(per_pass, iterations - first)
            index = torch.cat([torch.randperm(sequences.shape[0], generator=generator)[:n] for _ in range(k)])
            x0 = _random_hidden_states(stack, sequences, lengths, index, generator)  # Algorithm 2
            if held_input == "gaussian":
                u = torch.randn(k, stack.input_size, generator=generator).to(
                    device=ref.device, dtype=ref.dtype
                )
            else:
                u = _data_inputs(sequences, lengths, k, generator, ref)
            final = _stabilise(stack, x0, u.repeat_interleave(n, 0), steps)
            per_batch = final.permute(1, 0, 2).reshape(k, n, -1)  # all layers concatenated
            total += sum(float(_vaa_of_final_states(x, eps)) for x in per_batch)  # Algorithm 1
    return total / iterations


Version = Literal["classic", "warmup", "double", "double-classic"]
"""A training recipe (a run's ``version``, the same name on both sides: ``TMazeConfig``,
``SupervisedConfig``): classic (plain initialisation, no warmup), warmup (:func:`warmup` before training,
§6.1), double (double layers, only their first halves warmed up, §6.3) or double-classic (double layers, no
warmup, Appendix G). A trainer may run a subset of them (the supervised one: :data:`VERSIONS` but
double-classic)."""
VERSIONS: tuple[Version, ...] = get_args(Version)
"""The values of :data:`Version`, in order."""


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
    bptt_steps: int | None = None
    """Back-propagate through the last ``bptt_steps`` steps of the stabilisation only (the ``M − bptt_steps``
    before run without gradient, from detached states: neither they nor the sequence prefix are
    differentiated). Memory then grows with ``bptt_steps``, not with ``M``, which makes an ``M*`` in the
    thousands affordable. None: through all ``M`` steps and the prefix (the paper)."""

    def __post_init__(self) -> None:
        _check_positive_int("steps", self.steps, 0)
        if not self.lr > 0:
            raise ValueError(f"lr must be > 0; got {self.lr!r}")
        if self.reference_width is not None:
            _check_positive_int("reference_width", self.reference_width)
        if not 0 < self.k <= 1:
            raise ValueError(f"k must be in (0, 1]; got {self.k!r}")
        _check_positive_int("c", self.c, 0)
        _check_positive_int("max_stabilisation", self.max_stabilisation)
        _check_positive_int("batch_size", self.batch_size)
        _check_eps(self.eps)
        _check_held_input(self.held_input)
        if self.bptt_steps is not None:
            _check_positive_int("bptt_steps", self.bptt_steps)


@dataclass
class WarmupResult:
    """History of a warmup: one entry per gradient step."""

    vaa_star: list[list[float]] = field(default_factory=list)
    """VAA* of each layer (warmed part), ``[step][layer]``, before the update of that step."""
    loss: list[float] = field(default_factory=list)
    """Loss of eq. (9)."""
    stabilisation: list[int] = field(default_factory=list)
    """Stabilisation period M drawn at that step."""


def _layer_lr(cfg: WarmupConfig, hidden_size: int) -> float:
    """Adam rate of a layer of ``hidden_size`` warmed units: ``lr · reference_width / hidden_size``."""
    return cfg.lr if cfg.reference_width is None else cfg.lr * cfg.reference_width / hidden_size


def _layer_vaa_stars(
    stack: RecurrentStack, x0: Tensor, m: int, cfg: WarmupConfig, s: int, generator: torch.Generator | None
) -> Tensor:
    """Lines 5-7 of Algorithm 3: for every layer, its own ``u ~ N(0, 1)`` held for ``M = m`` steps of that
    layer alone from its part of the states ``x0[L, n, S]``, then its VAA* (eq. (7)): ``[L]``, with grad."""
    ref = next(stack.parameters())
    finals = []
    for i, layer in enumerate(stack.layers):
        warm = layer.warm_layer
        u = torch.randn(1, warm.input_size, generator=generator).to(device=ref.device, dtype=ref.dtype)
        u = u.expand(x0.shape[1], -1)
        finals.append(_held(partial(warm.iterate, u), layer.warm_state(x0[i]), m, cfg.bptt_steps))
    return _vaa_stars_of(finals, m, cfg, s)


def _stack_vaa_stars(
    stack: RecurrentStack, x0: Tensor, u: Tensor, m: int, cfg: WarmupConfig, s: int
) -> Tensor:
    """Lines 5-7 with an input of the data: ``u[1, F]`` held at the bottom of the whole stack for ``M = m``
    steps from the states ``x0[L, n, S]``, then the VAA* of each layer's (warmed) final states: ``[L]``."""
    u = u.expand(x0.shape[1], -1)
    final = _held(lambda state, n: _stabilise(stack, state, u, n), x0, m, cfg.bptt_steps)
    return _vaa_stars_of([layer.warm_state(final[i]) for i, layer in enumerate(stack.layers)], m, cfg, s)


def _vaa_stars_of(finals: list[Tensor], m: int, cfg: WarmupConfig, s: int) -> Tensor:
    """The VAA* (eq. (7)) of each layer's final states ``[n, S_w]``, checked finite: ``[L]``, with grad."""
    for i, final in enumerate(finals):
        if not torch.isfinite(final).all():
            raise FloatingPointError(
                f"warmup step {s}: the states of layer {i} became non-finite in the stabilisation "
                f"(M = {m} steps, from finite states, with finite parameters: the cell's recurrence "
                "diverges under a constant input)"
            )
    return torch.stack([vaa_star(final, cfg.eps) for final in finals])


def _log_step(writer: Any, result: WarmupResult, s: int) -> None:
    """TensorBoard scalars of warmup step ``s`` (the last entries of ``result``)."""
    writer.add_scalar("warmup/loss", result.loss[-1], s)
    writer.add_scalar("warmup/vaa_star", sum(result.vaa_star[-1]) / len(result.vaa_star[-1]), s)
    writer.add_scalar("warmup/stabilisation", result.stabilisation[-1], s)
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
    on ``1/L Σ (v_i - k)²`` (eq. (9)) with BPTT through the stabilisation steps and the sequence prefix
    (``config.bptt_steps``: through the last steps only), each layer at its width-scaled rate
    (:class:`WarmupConfig`). For double layers only the first halves enter the loss and the optimiser.
    Parameter ``.grad`` are left ``None``.

    :param model: a ``RecurrentStack`` or a ``torch.nn.GRU``/``nn.LSTM`` (its parameters are updated).
    :param sequences: inputs ``[N, T, F]`` (right-padded when ``lengths`` is given); ``[T, N, F]`` for an
        ``nn.GRU``/``nn.LSTM`` built with ``batch_first=False`` (its own layout).
    :param config: hyper-parameters, :class:`WarmupConfig` defaults when None.
    :param lengths: optional ``[N]`` true lengths; ``t ~ U{1..lengths[i]}``.
    :param writer: optional TensorBoard ``SummaryWriter`` (``warmup/loss``, ``warmup/vaa_star``,
        ``warmup/vaa_star_layer{i}``, ``warmup/stabilisation``).
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
            x0 = _random_hidden_states(stack, sequences, lengths, index, generator)  # line 3, with grad
            if not torch.isfinite(x0).all():
                layer = int((~torch.isfinite(x0)).flatten(1).any(1).nonzero()[0])
                raise FloatingPointError(
                    f"warmup step {s}: the states of layer {layer} along the input sequences (Algorithm 2) "
                    "became non-finite, from finite inputs and parameters (the cell's recurrence diverges)"
                )
            m_max = min(cfg.max_stabilisation, 1 + cfg.c * s)
            m = int(torch.randint(1, m_max + 1, (1,), generator=generator))  # line 4
            if cfg.held_input == "gaussian":
                v = _layer_vaa_stars(stack, x0, m, cfg, s, generator)  # lines 5-7
            else:
                u = _data_inputs(sequences, lengths, 1, generator, x0)
                v = _stack_vaa_stars(stack, x0, u, m, cfg, s)
            loss = ((v - cfg.k) ** 2).mean()  # line 8, eq. (9)
            if not torch.isfinite(loss):
                raise FloatingPointError(f"warmup step {s}: the loss of eq. (9) is non-finite (M = {m})")
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
            result.vaa_star.append(v.detach().tolist())
            result.loss.append(float(loss.detach()))
            result.stabilisation.append(m)
            if writer is not None:
                _log_step(writer, result, s)
            if progress:
                steps.set_postfix(
                    loss=f"{result.loss[-1]:.4f}", vaa_star=f"{float(v.detach().mean()):.3f}", M=m
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
    "WarmupConfig",
    "WarmupResult",
    "estimate_vaa",
    "vaa",
    "vaa_star",
    "warmup",
]
