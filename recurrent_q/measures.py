"""The measures of reachable multistability (§5 of Lambrechts et al. 2023), and what the warmup shares with
them (:mod:`recurrent_q.multistability`, which re-exports every public name here).

- :func:`vaa`: variability amongst attractors of any map ``step(x, u) -> x``, eq. (5).
- :func:`estimate_vaa`: Algorithms 1-2 on a :class:`~recurrent_q.cells.RecurrentStack` or a plain
  ``torch.nn.GRU``/``nn.LSTM`` (states of all layers, and the LSTM ``c``, concatenated; no tanh).
- :func:`vaa_star`: the differentiable proxy, eqs. (7)-(8).
- :data:`HeldInput`: where the constant input ``u`` comes from: the paper's ``u ~ N(0, 1)`` or the data's
  own inputs (for a T-Maze, mostly the corridor's observation: the attractors its memory must use).
- The machinery the warmup shares: the checks of the model and the sequences, the states at random steps
  (Algorithm 2), the inputs of the data, the stabilisation of a whole stack under a held input.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from recurrent_q.cells import RecurrentStack, as_stack
from recurrent_q.checks import check_choice, check_integer, check_number

# Largest number of state rows stabilised at once by `estimate_vaa` (iterations are batched up to it).
_MAX_ROWS = 1024
# Largest number of elements of the repeated constant input / outputs held at once while stabilising.
_CHUNK_ELEMENTS = 2**22


def _check_eps(eps: float) -> None:
    check_number("eps", eps, 0, open_low=True)


HeldInput = Literal["gaussian", "data"]
"""Where the constant input ``u`` held during a stabilisation comes from: ``"gaussian"``, ``u ~ N(0, 1)``
(the paper's Algorithms 1 and 3), or ``"data"``, the input of a random step of a random sequence (within
its length) of the sequences given, held at the bottom of the stack: the attractors of the task's own
inputs (for the T-Maze, with a corridor of length L, the corridor's observation L − 1 times in L + 1)."""
HELD_INPUTS: tuple[HeldInput, ...] = get_args(HeldInput)
"""The values of :data:`HeldInput`, in order."""


def _check_held_input(held_input: str) -> None:
    check_choice("held_input", held_input, HELD_INPUTS)


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
    check_integer("steps", steps, 0)
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
    check_integer("steps", steps, 0)
    check_integer("iterations", iterations)
    check_integer("batch_size", batch_size)
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
