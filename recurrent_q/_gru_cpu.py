"""A compiled CPU kernel for the GRU recurrence, forward and backward (eqs. (A.10)-(A.12), ``nn.GRU`` form).

PyTorch's CPU ``nn.GRU`` records about a dozen autograd nodes per time step; at the widths of the
T-Maze agent (2 × 32) their overhead, not arithmetic, sets the cost of a training step. Here the whole
recurrence of one layer is one autograd node: the forward loop and the hand-derived backward loop run
in numba (one small matrix product per step, elementwise gates in compiled loops), and the products
that do not depend on the recurrence (``W_hh``'s and ``b_hh``'s gradients) are single batched matmuls.

Rows of a batch may have different lengths: rows are sorted by length and step ``t`` only computes the
rows still running, so padded steps cost nothing. The input projection ``W_ih u + b_ih`` is computed
by the caller (batched over time); with a projection of one time step the input is held constant
(``iterate``, the stabilisation of VAA and warmup).

Used for float32 tensors on the CPU only; CUDA and other dtypes take PyTorch's kernels.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

try:  # the kernels are optional: without numba, GRULayer falls back to nn.GRU
    import numba
except ImportError:  # pragma: no cover - numba is a dependency; this guards broken installs
    numba = None

AVAILABLE = numba is not None
ENABLED = AVAILABLE
"""Whether ``GRULayer`` uses these kernels on the CPU (set False to compare with ``nn.GRU``)."""
MAX_WORK = 4096
"""Largest ``rows × hidden units`` run here for layers of at most 64 units (128 rows at 32 units: the T-Maze
agent); wider layers are run here up to ``MAX_WORK // 2``. Past that ``nn.GRU``'s kernels are faster
(``benchmarks/bench_gru_kernels.py``; at 2 × 256 this kernel was 1.5-3.3× slower, and a loop stepped in
Python over PyTorch's products, tried too, 1.2-1.5× slower than ``nn.GRU``)."""


def fits(rows: int, hidden: int) -> bool:
    """Whether ``rows`` rows of a ``hidden``-unit layer are run by this kernel (see ``MAX_WORK``)."""
    return rows * hidden <= (MAX_WORK if hidden <= 64 else MAX_WORK // 2)


if AVAILABLE:
    _FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}  # no "nnan"/"ninf": non-finite values propagate
    _jit = numba.njit(cache=True, fastmath=_FASTMATH)

    @numba.njit(fastmath=_FASTMATH, inline="always")
    def _exp_(x, bits, m):  # pragma: no cover - compiled
        """``x[:m] = exp(x[:m])`` in float32 (Cephes' polynomial, ~1 ulp), in a loop that vectorises."""
        lo, hi, half, one = np.float32(-87.0), np.float32(88.0), np.float32(0.5), np.float32(1.0)
        log2e, c1, c2 = np.float32(1.44269504088896341), np.float32(0.693359375), np.float32(-2.12194440e-4)
        for j in range(m):
            v = x[j]
            v = lo if v < lo else v
            v = hi if v > hi else v
            k = np.floor(v * log2e + half)  # exp(v) = 2^k exp(f), |f| <= ln(2) / 2
            f = v - k * c1 - k * c2
            p = np.float32(1.9875691500e-4)
            p = p * f + np.float32(1.3981999507e-3)
            p = p * f + np.float32(8.3334519073e-3)
            p = p * f + np.float32(4.1665795894e-2)
            p = p * f + np.float32(1.6666665459e-1)
            p = p * f + np.float32(5.0000001201e-1)
            x[j] = p * f * f + f + one
            bits[j] = (np.int32(k) + np.int32(127)) << np.int32(23)  # the float 2^k
        scale = bits.view(np.float32)
        for j in range(m):
            x[j] = x[j] * scale[j]

    @_jit
    def _forward(gi, h0, weight_hh_t, bias_hh, order, active, save):  # pragma: no cover - compiled
        """``gi[B, T_in, 3H]`` (``T_in`` = T, or 1 for a constant input), ``h0[B, H]``.

        Rows are visited in ``order`` (decreasing length); step ``t`` runs the first ``active[t]`` of them.
        Returns outputs ``[B, T, H]`` (zero past a row's length), the final state ``[B, H]`` and, if
        ``save``, what the backward pass reads, time-major with rows in ``order`` (``[T, B, ·]``, only the
        first ``active[t]`` rows of step ``t`` written): the gates ``r, z`` ``[T, B, 2H]``, ``n`` and
        ``W_hn h + b_hn`` ``[T, B, H]`` each, and the state before the step ``[T, B, H]``.
        """
        steps = active.shape[0]
        batch, hidden = h0.shape
        h2 = 2 * hidden
        one, two = np.float32(1.0), np.float32(2.0)
        out = np.zeros((batch, steps, hidden), np.float32)  # calloc: the padding is never touched
        kept = steps if save else 0
        rz_all = np.empty((kept, batch, h2), np.float32)
        n_all = np.empty((kept, batch, hidden), np.float32)
        hn_all = np.empty((kept, batch, hidden), np.float32)
        prev_all = np.empty((kept, batch, hidden), np.float32)
        h = np.empty((batch, hidden), np.float32)  # the state, rows in `order`
        for i in range(batch):
            h[i] = h0[order[i]]
        gh = np.empty((batch, 3 * hidden), np.float32)
        rz = np.empty(h2, np.float32)
        hn = np.empty(hidden, np.float32)
        q = np.empty(hidden, np.float32)
        bits = np.empty(h2, np.int32)
        constant = gi.shape[1] == 1
        for t in range(steps):
            a = active[t]
            ti = 0 if constant else t
            np.dot(h[:a], weight_hh_t, gh[:a])
            for i in range(a):
                b = order[i]
                g = gi[b, ti]
                ghi = gh[i]
                hi = h[i]
                for j in range(h2):
                    rz[j] = -(g[j] + ghi[j] + bias_hh[j])
                _exp_(rz, bits, h2)
                for j in range(h2):
                    rz[j] = one / (one + rz[j])  # r: eq. (A.11), z: eq. (A.10)
                for j in range(hidden):
                    hn[j] = ghi[h2 + j] + bias_hh[h2 + j]
                    q[j] = -two * (g[h2 + j] + rz[j] * hn[j])
                _exp_(q, bits, hidden)
                if save:
                    prev_all[t, i] = hi
                    rz_all[t, i] = rz
                    hn_all[t, i] = hn
                for j in range(hidden):
                    q[j] = two / (one + q[j]) - one  # n = tanh
                    hi[j] = q[j] + rz[hidden + j] * (hi[j] - q[j])  # eq. (A.12)
                out[b, t] = hi
                if save:
                    n_all[t, i] = q
        final = np.empty((batch, hidden), np.float32)
        for i in range(batch):
            final[order[i]] = h[i]
        return out, final, rz_all, n_all, hn_all, prev_all

    @_jit
    def _backward(grad_out, grad_h, rz_all, n_all, hn_all, prev_all, weight_hh, order, active, constant):
        """Gradients of the gate pre-activations ``[B, T or 1, 3H]``, of ``h0`` ``[B, H]``, and those of
        ``W_hh h + b_hh`` ``[B, T, 3H]`` (zero past a row's length). ``grad_h`` (final state) reaches row
        ``b`` at its last step; the saved tensors are ``_forward``'s.
        """  # pragma: no cover - compiled
        batch, steps, hidden = grad_out.shape
        h2, h3 = 2 * hidden, 3 * hidden
        one = np.float32(1.0)
        grad_gi = np.zeros((batch, 1 if constant else steps, h3), np.float32)  # zero past a row's length
        grad_gh = np.zeros((batch, steps, h3), np.float32)
        gh_t = np.empty((batch, h3), np.float32)  # this step's grad_gh, rows in `order`
        dh_t = np.empty((batch, hidden), np.float32)
        dh = np.empty((batch, hidden), np.float32)
        for i in range(batch):
            dh[i] = grad_h[order[i]]
        for t in range(steps - 1, -1, -1):
            a = active[t]
            for i in range(a):
                b = order[i]
                go = grad_out[b, t]
                rz, n_, hn, hp = rz_all[t, i], n_all[t, i], hn_all[t, i], prev_all[t, i]
                d = gh_t[i]
                for j in range(hidden):
                    g = dh[i, j] + go[j]
                    r, z, n = rz[j], rz[hidden + j], n_[j]
                    dn = g * (one - z) * (one - n * n)
                    dz = g * (hp[j] - n) * z * (one - z)
                    dr = dn * hn[j] * r * (one - r)
                    d[j], d[hidden + j], d[h2 + j] = dr, dz, dn
                    dh[i, j] = g * z
                if constant:
                    grad_gi[b, 0] += d
                else:
                    grad_gi[b, t] = d
                for j in range(hidden):
                    d[h2 + j] = d[h2 + j] * rz[j]
                grad_gh[b, t] = d
            np.dot(gh_t[:a], weight_hh, dh_t[:a])
            dh[:a] += dh_t[:a]
        grad_h0 = np.empty((batch, hidden), np.float32)
        for i in range(batch):
            grad_h0[order[i]] = dh[i]
        return grad_gi, grad_h0, grad_gh


def _active_rows(lengths: np.ndarray, steps: int) -> np.ndarray:
    """``active[t]`` = number of rows still running at step ``t``."""
    return (lengths[None, :] > np.arange(steps)[:, None]).sum(1).astype(np.int64)


def _numpy(x: Tensor) -> np.ndarray:
    return x.detach().contiguous().numpy()


class _GRURecurrence(torch.autograd.Function):
    @staticmethod
    def forward(ctx, gi, h0, weight_hh, bias_hh, lengths, steps):  # type: ignore[override]
        # gi: [B, T_in, 3H], h0: [B, H], lengths: numpy [B]
        order = np.argsort(-lengths, kind="stable").astype(np.int64)
        active = _active_rows(lengths, steps)
        save = any(ctx.needs_input_grad[:4])
        out, h, *saved = _forward(
            _numpy(gi), _numpy(h0), _numpy(weight_hh.t()), _numpy(bias_hh), order, active, save
        )
        out_t, h_t = torch.from_numpy(out), torch.from_numpy(h)
        if save:
            ctx.save_for_backward(h0, out_t, weight_hh, *(torch.from_numpy(x) for x in saved))
            ctx.order, ctx.active, ctx.constant = order, active, gi.shape[1] == 1
        return out_t, h_t

    @staticmethod
    def backward(ctx, grad_out, grad_h):  # type: ignore[override]
        h0, out, weight_hh, *saved = ctx.saved_tensors
        grad_gi, grad_h0, grad_gh = _backward(
            _numpy(grad_out),
            _numpy(grad_h),
            *(x.numpy() for x in saved),
            _numpy(weight_hh),
            ctx.order,
            ctx.active,
            ctx.constant,
        )
        grad_gh_t = torch.from_numpy(grad_gh)
        h_prev = torch.cat([h0.detach().unsqueeze(1), out[:, :-1]], 1)  # h_{t-1}; zero past a row's length
        grad_weight = grad_gh_t.flatten(0, 1).t() @ h_prev.flatten(0, 1)  # Σ_t dgh_tᵀ h_{t-1}
        grad_bias = grad_gh_t.sum((0, 1))
        return torch.from_numpy(grad_gi), torch.from_numpy(grad_h0), grad_weight, grad_bias, None, None


def gru_recurrence(
    gi: Tensor, h0: Tensor, weight_hh: Tensor, bias_hh: Tensor | None, lengths: Tensor | None, steps: int
) -> tuple[Tensor, Tensor]:
    """Run the GRU recurrence of one layer on the CPU (float32), differentiable in every tensor argument.

    :param gi: input projections ``W_ih u + b_ih`` ``[B, T, 3H]``, or ``[B, 1, 3H]`` for an input held
        constant over the ``steps`` steps.
    :param h0: initial state ``[B, H]``.
    :param weight_hh: ``W_hh`` ``[3H, H]`` (gate order r, z, n as ``nn.GRU``).
    :param bias_hh: ``b_hh`` ``[3H]`` (None: zero).
    :param lengths: optional ``[B]`` in ``1..steps``: row ``b`` runs ``lengths[b]`` steps.
    :param steps: number of steps ``T``.
    :return: outputs ``[B, T, H]`` (zero past a row's length) and the state after each row's last step.
    """
    if bias_hh is None:
        bias_hh = gi.new_zeros(weight_hh.shape[0])
    if lengths is None:
        lengths_np = np.full(gi.shape[0], steps, dtype=np.int64)
    else:
        lengths_np = lengths.detach().cpu().numpy().astype(np.int64)
    return _GRURecurrence.apply(gi, h0, weight_hh, bias_hh, lengths_np, steps)
