"""A compiled CPU kernel for the linear recurrence ``x_t = a_t ⊙ x_{t-1} + b_t``, forward and backward.

The parallel cells (:mod:`recurrent_q.parallel_cells`: minGRU and the LRU) are linear in their state. A
parallel scan over time (:func:`~recurrent_q.parallel_cells.linear_scan`,
:func:`~recurrent_q.parallel_cells.log_linear_scan`) pays ``O(log T)`` passes over the sequence, or
logarithms and exponentials, for a depth it can only use on a wide device; on a CPU with a few cores the
work-optimal algorithm is the sequential loop over time, vectorised over the units of each row: one pass
that reads ``a`` and ``b`` and writes ``x``, ``O(B T N)`` and bound by memory. Here that loop and its
hand-derived backward run in numba, as one autograd node:

- forward: ``x_t = a_t ⊙ x_{t-1} + b_t`` from ``x_{-1} = x0``;
- backward, with ``ĝ_t`` the gradient reaching ``x_t`` from outside (the outputs, and the final state at
  its row's last step): ``g_t = ĝ_t + conj(a_{t+1}) ⊙ g_{t+1}`` from ``t = T - 1`` down, then
  ``∂b_t = g_t``, ``∂a_t = g_t ⊙ conj(x_{t-1})``, ``∂x0 = conj(a_0) ⊙ g_0``. The conjugates are PyTorch's
  convention for complex tensors (the gradient of a real loss ``L`` is ``∂L/∂ conj(z)``, up to a factor 2,
  so that ``z - lr · grad`` descends); for real tensors they are the identity.

A coefficient constant in time (``a`` of shape ``[B or 1, 1, N]``: the LRU's ``λ``) is read in place, and
its gradient summed over time (and batch) in float64 / complex128 accumulators, so that the ``B T`` terms
of the sum do not lose float32 precision.

minGRU's coefficients are computed in the same loop, in linear space, from its gate pre-activations
``p = [k, c]`` (:func:`mingru_recurrence`): ``a = 1 - z = σ(-k)``, ``b = z ⊙ h̃`` with ``z = σ(k)``,
``h̃ = g(c)``; the backward pass recomputes them and returns the gradient of ``p``. Computing them with
PyTorch's elementwise operations instead costs a dozen passes over ``[B, T, H]`` tensors (forward and
backward), several times the loop's own.

The state (and the backward's carried gradient) is kept in float64 / complex128 in the loop and rounded
to float32 / complex64 only when stored: a state carried in float32 picks up a rounding error at every
step, which with ``|a|`` near 1 accumulates to about ``1e-6 |x| / (1 - |a|)``, enough to keep the states of
different starts under one held input apart by more than the VAA's ε (:mod:`recurrent_q.multistability`).

Rows may have different lengths: every row runs all ``T`` steps (the steps past a row's length give the
outputs that the scans give there too, unspecified for the callers), and the final state returned for row
``b`` is ``x`` after its ``lengths[b]``-th step, through which alone the final state's gradient enters.

Used by the cells for float32 (minGRU) and complex64 (LRU) tensors on the CPU; :func:`linear_recurrence`
also takes float64 and complex128 (for the tests' gradient checks), :func:`mingru_recurrence` float32 only.
CUDA and other dtypes take the parallel scans.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

try:  # the kernel is optional: without numba, the cells fall back to their parallel scans
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this guards broken installs
    numba = None

AVAILABLE = numba is not None
ENABLED = AVAILABLE
"""Whether ``MinGRULayer`` and ``LRULayer`` use this kernel on the CPU (set False to run their scans)."""

DTYPES = (torch.float32, torch.float64, torch.complex64, torch.complex128)
"""Dtypes that :func:`linear_recurrence` takes."""
_WIDE = {  # the dtype of the state and of the sums carried in the loops
    torch.float32: torch.float64,
    torch.float64: torch.float64,
    torch.complex64: torch.complex128,
    torch.complex128: torch.complex128,
}


if AVAILABLE:
    _FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no "nnan"/"ninf": non-finite values propagate
    # error_model="numpy": IEEE division (1/0 = inf) instead of a zero check per division, which raises
    # ZeroDivisionError and keeps the loops from vectorising
    _jit = numba.njit(cache=True, fastmath=_FASTMATH, error_model="numpy")
    from recurrent_q._gru_cpu import _exp_  # float32 exp in a loop that vectorises

    @_jit
    def _forward(a, b, x0, last, out, final, x):  # pragma: no cover - compiled
        """``out[r, t] = a[r', t'] ⊙ out[r, t - 1] + b[r, t]`` from ``x0[r]``; ``final[r] = out[r, last[r]]``.

        ``a[Ba, Ta, N]`` with ``Ba`` in ``{1, B}``, ``Ta`` in ``{1, T}`` (``r' = r`` or 0, ``t' = t`` or 0);
        ``x[N]`` (wide dtype) carries the state.
        """
        rows, steps, width = b.shape
        for r in range(rows):
            ra = r if a.shape[0] > 1 else 0
            x[:] = x0[r]
            for t in range(steps):
                at = a[ra, t if a.shape[1] > 1 else 0]
                bt, xt = b[r, t], out[r, t]
                for n in range(width):
                    x[n] = at[n] * x[n] + bt[n]
                    xt[n] = x[n]
            final[r] = out[r, last[r]]

    @_jit
    def _backward(a, x0, out, grad_out, grad_final, last, need_a, grad_a, grad_a_sum, grad_b, grad_x0, carry):
        """The reverse recurrence of the module docstring, row by row.

        Writes ``grad_b[B, T, N]``, ``grad_x0[B, N]`` and, if ``need_a``, ``grad_a[B, T, N]`` (``a`` varying
        in time) or ``grad_a_sum[Ba, N]`` (wide dtype, ``a`` constant in time: the sum over ``t``).
        ``carry[N]`` (wide dtype) carries ``conj(a_{t+1}) ⊙ g_{t+1}``.
        """  # pragma: no cover - compiled
        rows, steps, width = out.shape
        per_step = a.shape[1] > 1
        for r in range(rows):
            ra = r if a.shape[0] > 1 else 0
            carry[:] = 0
            for t in range(steps - 1, -1, -1):
                at = a[ra, t if per_step else 0]
                go, gb = grad_out[r, t], grad_b[r, t]
                prev = out[r, t - 1] if t > 0 else x0[r]
                if t == last[r]:
                    gf = grad_final[r]
                    for n in range(width):
                        carry[n] += gf[n]
                if not need_a:
                    for n in range(width):
                        g = go[n] + carry[n]
                        gb[n] = g
                        carry[n] = np.conj(at[n]) * g
                elif per_step:
                    ga = grad_a[r, t]
                    for n in range(width):
                        g = go[n] + carry[n]
                        gb[n] = g
                        ga[n] = g * np.conj(prev[n])
                        carry[n] = np.conj(at[n]) * g
                else:
                    gs = grad_a_sum[ra]
                    for n in range(width):
                        g = go[n] + carry[n]
                        gb[n] = g
                        gs[n] += g * np.conj(prev[n])
                        carry[n] = np.conj(at[n]) * g
            grad_x0[r] = carry

    @_jit
    def _mingru_gates(p, r, t, width, e_k, e_c, bits):  # pragma: no cover - compiled
        """``e_k = exp(-k)``, ``e_c = exp(-c)`` of row ``r``, step ``t`` (``p[r, t] = [k, c]``)."""
        pt = p[r, t]
        for n in range(width):
            e_k[n] = -pt[n]
            e_c[n] = -pt[width + n]
        _exp_(e_k, bits, width)
        _exp_(e_c, bits, width)

    @_jit
    def _mingru_forward(p, h0, last, out, final, x, e_k, e_c, bits):  # pragma: no cover - compiled
        """minGRU's ``h_t = σ(-k) ⊙ h_{t-1} + σ(k) ⊙ g(c)`` from ``h0``, ``p[B, T, 2H] = [k, c]``;
        ``final[r] = out[r, last[r]]``; ``x[H]`` (float64) carries the state."""
        rows, steps, width = out.shape
        one, half = np.float32(1.0), np.float32(0.5)
        for r in range(rows):
            x[:] = h0[r]
            for t in range(steps):
                _mingru_gates(p, r, t, width, e_k, e_c, bits)
                pt, xt = p[r, t], out[r, t]
                for n in range(width):
                    z = one / (one + e_k[n])  # σ(k)
                    c = pt[width + n]
                    candidate = c + half if c >= 0 else one / (one + e_c[n])  # g(c) > 0
                    x[n] = (e_k[n] * z) * x[n] + z * candidate  # 1 - z = σ(-k) = exp(-k) σ(k)
                    xt[n] = x[n]
            final[r] = out[r, last[r]]

    @_jit
    def _mingru_backward(p, h0, out, grad_out, grad_final, last, grad_p, grad_h0, carry, e_k, e_c, bits):
        """Gradients of ``p = [k, c]`` ``[B, T, 2H]`` and of ``h0``: with ``g_t`` the gradient of ``h_t``
        (module docstring), ``∂k = g_t z (1 - z) (h̃ - h_{t-1})``, ``∂c = g_t z g'(c)``."""  # pragma: no cover
        rows, steps, width = out.shape
        one, half = np.float32(1.0), np.float32(0.5)
        for r in range(rows):
            carry[:] = 0
            for t in range(steps - 1, -1, -1):
                _mingru_gates(p, r, t, width, e_k, e_c, bits)
                pt, go, gp = p[r, t], grad_out[r, t], grad_p[r, t]
                prev = out[r, t - 1] if t > 0 else h0[r]
                if t == last[r]:
                    gf = grad_final[r]
                    for n in range(width):
                        carry[n] += gf[n]
                for n in range(width):
                    z = one / (one + e_k[n])
                    a = e_k[n] * z
                    c = pt[width + n]
                    if c >= 0:
                        candidate, slope = c + half, one
                    else:
                        candidate = one / (one + e_c[n])
                        slope = candidate * (one - candidate)
                    g = go[n] + carry[n]
                    gp[n] = g * (z * a * (candidate - prev[n]))
                    gp[width + n] = g * (z * slope)
                    carry[n] = a * g
            grad_h0[r] = carry


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().resolve_conj().resolve_neg().contiguous().numpy()


class _LinearRecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, a, b, x0, last):  # type: ignore[override]
        # a: [Ba, Ta, N], b: [B, T, N], x0: [B, N], last: numpy int64 [B] (index of each row's last step)
        out = torch.empty(b.shape, dtype=b.dtype)
        final = torch.empty(x0.shape, dtype=b.dtype)
        state = torch.empty(b.shape[2], dtype=_WIDE[b.dtype]).numpy()
        _forward(_numpy(a), _numpy(b), _numpy(x0), last, out.numpy(), final.numpy(), state)
        ctx.save_for_backward(a, x0, out)
        ctx.last = last
        return out, final

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_final):  # type: ignore[override]
        a, x0, out = ctx.saved_tensors
        need_a = ctx.needs_input_grad[0]
        per_step = a.shape[1] > 1
        grad_a = torch.empty(out.shape if need_a and per_step else (0, 0, 0), dtype=out.dtype)
        grad_a_sum = torch.zeros(
            (a.shape[0], a.shape[2]) if need_a and not per_step else (0, 0), dtype=_WIDE[out.dtype]
        )
        grad_b = torch.empty(out.shape, dtype=out.dtype)
        grad_x0 = torch.empty(x0.shape, dtype=out.dtype)
        _backward(
            _numpy(a),
            _numpy(x0),
            out.numpy(),
            _numpy(grad_out),
            _numpy(grad_final),
            ctx.last,
            need_a,
            grad_a.numpy(),
            grad_a_sum.numpy(),
            grad_b.numpy(),
            grad_x0.numpy(),
            torch.empty(out.shape[2], dtype=_WIDE[out.dtype]).numpy(),
        )
        if need_a and not per_step:
            grad_a = grad_a_sum.to(out.dtype).unsqueeze(1)
        return grad_a if need_a else None, grad_b, grad_x0, None


def linear_recurrence(
    a: Tensor, b: Tensor, x0: Tensor, lengths: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """``x_t = a_t ⊙ x_{t-1} + b_t`` from ``x_{-1} = x0`` along dimension 1, differentiable in ``a``, ``b``,
    ``x0`` (CPU; float32, float64, complex64 or complex128, one dtype for all three).

    :param a: ``[B, T, N]``, or ``[B, 1, N]`` / ``[1, 1, N]`` for a coefficient constant in time (and batch).
    :param b: ``[B, T, N]``.
    :param x0: ``[B, N]``.
    :param lengths: optional ``[B]`` in ``1..T``: the final state of row ``b`` is ``x`` after its
        ``lengths[b]``-th step (``x_{lengths[b] - 1}``; every row still runs all ``T`` steps).
    :return: ``x`` ``[B, T, N]`` and the final state ``[B, N]``.
    """
    if not AVAILABLE:
        raise RuntimeError("the compiled linear recurrence needs numba, which is not installed")
    tensors = {"a": a, "b": b, "x0": x0}
    for name, x in tensors.items():
        if x.device.type != "cpu":
            raise ValueError(f"{name} must be a CPU tensor; got device {x.device}")
        if x.dtype != b.dtype or x.dtype not in DTYPES:
            raise ValueError(
                f"a, b and x0 must share one dtype among {', '.join(map(str, DTYPES))}; got a {a.dtype}, "
                f"b {b.dtype}, x0 {x0.dtype}"
            )
    if b.dim() != 3 or b.shape[1] == 0:
        raise ValueError(f"b must have shape [B, T >= 1, N]; got {tuple(b.shape)}")
    rows, steps, width = b.shape
    if tuple(x0.shape) != (rows, width):
        raise ValueError(f"x0 must have shape [B, N] = [{rows}, {width}]; got {tuple(x0.shape)}")
    if a.dim() != 3 or a.shape[0] not in (1, rows) or a.shape[1] not in (1, steps) or a.shape[2] != width:
        raise ValueError(
            f"a must have shape [B, T, N] = [{rows}, {steps}, {width}] or [{rows} or 1, 1, {width}]; "
            f"got {tuple(a.shape)}"
        )
    if a.shape[1] == steps and steps > 1 and a.shape[0] != rows:
        raise ValueError(f"a varying in time must have shape [B, T, N] = [{rows}, {steps}, {width}]")
    return _LinearRecurrence.apply(a, b, x0, _last_steps(lengths, rows, steps))


class _MinGRURecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, p, h0, last):  # type: ignore[override]
        # p: [B, T, 2H] = [k, c], h0: [B, H], last: numpy int64 [B]
        rows, steps, width = p.shape[0], p.shape[1], h0.shape[1]
        out = torch.empty((rows, steps, width), dtype=torch.float32)
        final = torch.empty((rows, width), dtype=torch.float32)
        _mingru_forward(_numpy(p), _numpy(h0), last, out.numpy(), final.numpy(), *_mingru_work(width))
        ctx.save_for_backward(p, h0, out)
        ctx.last = last
        return out, final

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out, grad_final):  # type: ignore[override]
        p, h0, out = ctx.saved_tensors
        grad_p = torch.empty(p.shape, dtype=torch.float32)
        grad_h0 = torch.empty(h0.shape, dtype=torch.float32)
        _mingru_backward(
            _numpy(p),
            _numpy(h0),
            out.numpy(),
            _numpy(grad_out),
            _numpy(grad_final),
            ctx.last,
            grad_p.numpy(),
            grad_h0.numpy(),
            np.empty(h0.shape[1], np.float64),
            *_mingru_work(h0.shape[1])[1:],
        )
        return grad_p, grad_h0, None


def _mingru_work(width: int) -> tuple[np.ndarray, ...]:
    """The kernels' buffers: the float64 state, ``exp(-k)``, ``exp(-c)`` and the exponent bits."""
    return (
        np.empty(width, np.float64),
        np.empty(width, np.float32),
        np.empty(width, np.float32),
        np.empty(width, np.int32),
    )


def mingru_recurrence(p: Tensor, h0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """minGRU's recurrence from its gate pre-activations (CPU, float32), differentiable in ``p`` and ``h0``.

    ``h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t`` with ``z_t = σ(k_t)``, ``h̃_t = g(c_t)``
    (:func:`~recurrent_q.parallel_cells.candidate`), computed in linear space in the loop.

    :param p: ``[B, T, 2H]``: ``k = W_z u + b_z`` then ``c = W_h u + b_h`` along the last dimension.
    :param h0: ``[B, H]``.
    :param lengths: optional ``[B]`` in ``1..T``, as in :func:`linear_recurrence`.
    :return: ``h`` ``[B, T, H]`` and the final state ``[B, H]``.
    """
    if not AVAILABLE:
        raise RuntimeError("the compiled minGRU recurrence needs numba, which is not installed")
    for name, x in (("p", p), ("h0", h0)):
        if x.device.type != "cpu" or x.dtype != torch.float32:
            raise ValueError(f"{name} must be a float32 CPU tensor; got {x.dtype} on {x.device}")
    if p.dim() != 3 or p.shape[1] == 0 or p.shape[2] % 2:
        raise ValueError(f"p must have shape [B, T >= 1, 2H]; got {tuple(p.shape)}")
    rows, steps, width = p.shape[0], p.shape[1], p.shape[2] // 2
    if tuple(h0.shape) != (rows, width):
        raise ValueError(f"h0 must have shape [B, H] = [{rows}, {width}]; got {tuple(h0.shape)}")
    return _MinGRURecurrence.apply(p, h0, _last_steps(lengths, rows, steps))


def _last_steps(lengths: Tensor | None, rows: int, steps: int) -> np.ndarray:
    """Index of each row's last step, int64 ``[B]``, from ``lengths`` (None: all ``T`` steps)."""
    if lengths is None:
        return np.full(rows, steps - 1, dtype=np.int64)
    if tuple(lengths.shape) != (rows,) or int(lengths.min()) < 1 or int(lengths.max()) > steps:
        raise ValueError(f"lengths must have shape [B] = [{rows}] and values in 1..{steps}")
    return lengths.detach().cpu().numpy().astype(np.int64) - 1
