"""Parallel, monostable recurrent cells: minGRU (Feng et al. 2024) and LRU (Orvieto et al. 2023).

Both layers are linear in their state, with coefficients that depend on the current input only,

    x_t = a_t ⊙ x_{t-1} + b_t,

so a whole sequence is computed without stepping the cell; ``forward`` takes one of two paths:

- on the CPU in float32 (the LRU's state in complex64), a compiled loop over time
  (:mod:`recurrent_q._scan_cpu`: one pass vectorised over batch × units, forward and hand-derived
  backward, one autograd node). On a CPU with a few cores there is no width for a parallel scan to use,
  and the sequential loop is the work-optimal algorithm (``benchmarks/RESULTS.md``, "Parallel cells");
- elsewhere (CUDA, other dtypes, or ``recurrent_q._scan_cpu.ENABLED = False``, also the fallback without
  numba), a parallel scan over time: minGRU's in log space (Heinsen's method, as in the minGRU paper,
  :func:`log_linear_scan`), the LRU's in complex linear space (:func:`linear_scan`).

Both are :class:`~recurrent_q.layers.RecurrentLayer` of the zoo (:mod:`recurrent_q.layers`, eqs.
(A.1)-(A.3) of Lambrechts et al. 2023): ``step`` for acting, ``forward`` by the loop or the scan, ``iterate``
by squaring the affine map (:func:`affine_power`).

**Monostability.** With an input ``u`` held, the update is ``f(x) = a ⊙ x + b`` with constant ``a``,
``b`` and ``|a| < 1`` entrywise, so ``f^M(x) - x* = a^M ⊙ (x - x*)`` with ``x* = b / (1 - a)``: one
attractor, reached from every state. The VAA (eq. (5) of Lambrechts et al. 2023) tends to its floor
``1/|X|`` as ``M`` grows, for any parameters, and warmup (Algorithm 3) cannot create a second attractor:
it can only bring ``|a|`` closer to 1, which slows the convergence (the stabilisation period ``M``
needed grows like ``1 / (1 - |a|)``). The LRU's ``|λ|`` moves little under warmup (the largest from 0.9969
to ~0.999 in ``tests/test_parallel_cells.py``, which is still enough to make ``M = 10 000`` too short for
its slowest mode); minGRU's update gates ``z = 1 - a`` do close (to ~1e-9), so that the VAA measured at
``M = 10 000`` rises to 1 after warmup: transients longer than ``M``, not attractors.

Shapes: ``B`` batch, ``T`` time, ``F`` input width, ``H`` output width, ``N`` LRU state dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from recurrent_q import _scan_cpu
from recurrent_q.checks import check_integer, check_number
from recurrent_q.layers import ProjectedLayer, RecurrentLayer, as_dtype

SCAN_CHUNK = 32
"""Chunk length of minGRU's log-space scan. Heinsen's scan computes ``log x_t`` as the sum of two terms
of the size of ``|Σ log a|`` over the span scanned, so its rounding error grows with that span (about
1 % at T = 100 000 in float32 without chunks); chunks bound the span, and the chunk ends are joined by
:func:`linear_scan`."""


def linear_scan(a: Tensor, b: Tensor) -> Tensor:
    """``x_t = a_t ⊙ x_{t-1} + b_t`` from ``x_{-1} = 0`` along dimension ``-2``, by recursive pairing.

    Each level combines the steps ``2i, 2i + 1`` into one (``a = a_{2i+1} a_{2i}``,
    ``b = a_{2i+1} b_{2i} + b_{2i+1}``), solves the half-length recurrence, then fills the even steps: depth
    ``O(log T)``, work and memory ``O(T)`` (the levels halve). Only products of the ``a`` and sums are
    formed, never ``a^{-t}``: with ``|a| <= 1`` nothing overflows at any ``T``.

    :param a: ``[..., T, N]`` real or complex, or ``[..., 1, N]`` for a coefficient constant in time.
    :param b: ``[..., T, N]`` of the same dtype.
    :return: ``x`` ``[..., T, N]``.
    """
    steps = b.shape[-2]
    if steps == 1:
        return b
    if steps % 2:  # one step of (a, b) = (0, 0) at the end, dropped below
        b = F.pad(b, (0, 0, 0, 1))
        if a.shape[-2] > 1:
            a = F.pad(a, (0, 0, 0, 1))
    a_even, a_odd = (a, a) if a.shape[-2] == 1 else (a[..., 0::2, :], a[..., 1::2, :])
    b_even, b_odd = b[..., 0::2, :], b[..., 1::2, :]
    x_odd = linear_scan(a_odd * a_even, a_odd * b_even + b_odd)  # x_{2i+1}
    x_even = b_even + a_even * F.pad(x_odd[..., :-1, :], (0, 0, 1, 0))  # x_{2i} = a_{2i} x_{2i-1} + b_{2i}
    return torch.stack([x_even, x_odd], -2).flatten(-3, -2)[..., :steps, :]


def log_linear_scan(log_a: Tensor, log_b: Tensor, x0: Tensor, chunk: int = SCAN_CHUNK) -> Tensor:
    """``x_t = a_t ⊙ x_{t-1} + b_t`` for ``a_t, b_t > 0`` given by their logs, from ``x0`` of any sign.

    Within chunks of ``chunk`` steps, Heinsen's log-space scan (the minGRU paper's ``parallel_scan_log``):
    with ``a*_t = Σ_{k<=t} log a_k`` (cumulative sum from the chunk's start), the chunk's own part is
    ``log x_t = a*_t + logcumsumexp_k(log b_k - a*_k)``. The state entering each chunk follows the same
    recurrence over chunks (coefficients ``exp(a*)`` and the chunk's own part at its end), solved by
    :func:`linear_scan`; ``x0`` enters linearly there, so it needs no logarithm.

    :param log_a: ``[B, T, H]``.
    :param log_b: ``[B, T, H]``, finite.
    :param x0: ``[B, H]``.
    :return: ``x`` ``[B, T, H]``.
    """
    batch, steps, width = log_b.shape
    chunk = min(chunk, steps)
    chunks = -(-steps // chunk)
    pad = (0, 0, 0, chunks * chunk - steps)  # finite padding at the end, its (causal) results dropped
    log_a = F.pad(log_a, pad).reshape(batch, chunks, chunk, width)
    log_b = F.pad(log_b, pad).reshape(batch, chunks, chunk, width)
    a_star = log_a.cumsum(2)
    own = a_star + (log_b - a_star).logcumsumexp(2)  # log of x_t from a zero state at the chunk's start
    decay, own_end = a_star[:, :, -1].exp(), own[:, :, -1].exp()
    first = own_end[:, :1] + decay[:, :1] * x0.unsqueeze(1)
    ends = linear_scan(decay, torch.cat([first, own_end[:, 1:]], 1))  # x at the end of each chunk
    entering = torch.cat([x0.unsqueeze(1), ends[:, :-1]], 1).unsqueeze(2)
    x = torch.addcmul(own.exp(), a_star.exp(), entering)
    return x.reshape(batch, chunks * chunk, width)[:, :steps]


def affine_power(a: Tensor, b: Tensor, x: Tensor, steps: int) -> Tensor:
    """``f^steps(x)`` for the affine map ``f(x) = a ⊙ x + b`` (constant input), by squaring.

    ``f∘f = (a², a ⊙ b + b)``; the powers ``f^{2^k}`` of the set bits of ``steps`` are applied in turn:
    ``O(log steps)`` operations, no division by ``1 - a`` (which may vanish in floating point).
    """
    while steps:
        if steps & 1:
            x = a * x + b
        steps >>= 1
        if steps:
            a, b = a * a, a * b + b
    return x


def _check_sequence(layer: RecurrentLayer, u: Tensor, s0: Tensor, lengths: Tensor | None) -> None:
    if u.dim() != 3 or u.shape[1] == 0 or u.shape[2] != layer.input_size:
        raise ValueError(f"u must have shape [B, T >= 1, F = {layer.input_size}]; got {tuple(u.shape)}")
    if tuple(s0.shape) != (u.shape[0], layer.state_size):
        raise ValueError(
            f"s0 must have shape [B, S] = [{u.shape[0]}, {layer.state_size}]; got {tuple(s0.shape)}"
        )
    if lengths is not None and (
        tuple(lengths.shape) != (u.shape[0],) or int(lengths.min()) < 1 or int(lengths.max()) > u.shape[1]
    ):
        raise ValueError(f"lengths must have shape [B] = [{u.shape[0]}] and values in 1..{u.shape[1]}")


def _check_steps(steps: int) -> None:
    check_integer("steps", steps, 0)


def _compiled(u: Tensor) -> bool:
    """Whether a sequence ``u`` runs the compiled loop of :mod:`recurrent_q._scan_cpu` (CPU, float32)."""
    return _scan_cpu.ENABLED and u.device.type == "cpu" and u.dtype == torch.float32


def _final(states: Tensor, lengths: Tensor | None) -> Tensor:
    """The state after ``lengths[b]`` steps of row ``b`` (all ``T`` when None) of ``states[B, T, S]``."""
    if lengths is None:
        return states[:, -1]
    return states[torch.arange(states.shape[0], device=states.device), lengths.to(states.device) - 1]


def candidate(x: Tensor) -> Tensor:
    """minGRU's ``g``: ``x + 0.5`` for ``x >= 0``, ``σ(x)`` otherwise (positive, continuous)."""
    return torch.where(x >= 0, x + 0.5, torch.sigmoid(x))


def log_candidate(x: Tensor) -> Tensor:
    """``log g(x)``; the ``relu`` keeps the branch not taken finite, and so its zero gradient."""
    return torch.where(x >= 0, torch.log(F.relu(x) + 0.5), -F.softplus(-x))


class MinGRULayer(ProjectedLayer):
    """minGRU (Feng et al. 2024, "Were RNNs All We Needed?", its minGRU and log-space minGRU), state ``h``.

    ``z_t = σ(W_z u_t + b_z)``, ``h̃_t = g(W_h u_t + b_h)``, ``h_t = (1 - z_t) ⊙ h_{t-1} + z_t ⊙ h̃_t``,
    with the paper's ``g`` (:func:`candidate`), which keeps ``h̃_t > 0`` so that sequences can run through the
    log-space scan (:func:`log_linear_scan`, with ``log(1 - z) = -softplus(k)``,
    ``log z = -softplus(-k)``); the compiled CPU loop computes ``1 - z`` and ``z h̃`` in linear space
    instead (:func:`recurrent_q._scan_cpu.mingru_recurrence`). The gates read no state: no recurrent
    weights.

    Parameters ``weight_ih = [W_z; W_h]`` and ``bias = [b_z; b_h]``, ``U(-1/sqrt(H), 1/sqrt(H))`` as every
    cell of the zoo (``init="xavier"``: Xavier-uniform per gate, zero biases).

    Monostable: a held input gives ``h_M - h̃ = (1 - z)^M ⊙ (h_0 - h̃)`` with ``0 < z < 1``, so every state
    converges to ``h̃ = g(W_h u + b_h)``, after about ``1 / min z`` steps. Gates that training or warmup
    shut (``z ≈ 0``) make that longer than any practical ``M``; below ``k ≈ -17`` (float32) or ``-37``
    (float64), ``1 - z`` rounds to 1 and the held state does not move at all.

    :param input_size: ``F``.
    :param hidden_size: ``H`` (the state and the output).
    """

    gates = 2

    def __init__(self, input_size: int, hidden_size: int) -> None:
        super().__init__(input_size, hidden_size)
        self.reset_parameters()

    def _cell(self, p: Tensor, h: Tensor) -> Tensor:
        k, c = p.chunk(2, -1)
        return torch.lerp(h, candidate(c), torch.sigmoid(k))  # h_t = (1 - z_t) h_{t-1} + z_t h̃_t

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`RecurrentLayer.forward` (the compiled loop over time on the CPU in float32, the
        log-space scan elsewhere; outputs are the states)."""
        _check_sequence(self, u, s0, lengths)
        p = self._project(u)
        if _compiled(u):  # the loop over time, a = 1 - z and b = z h̃ in linear space
            return _scan_cpu.mingru_recurrence(p, s0, lengths)
        k, c = p.chunk(2, -1)
        h = log_linear_scan(-F.softplus(k), -F.softplus(-k) + log_candidate(c), s0)  # log(1 - z), log(z h̃)
        return h, _final(h, lengths)

    def iterate(self, u: Tensor, s0: Tensor, steps: int) -> Tensor:
        """See :meth:`RecurrentLayer.iterate`: ``h_M = (1 - z)^M h_0 + (1 - (1 - z)^M) h̃``, by squaring."""
        _check_steps(steps)
        k, c = self._project(u).chunk(2, -1)
        return affine_power(torch.sigmoid(-k), torch.sigmoid(k) * candidate(c), s0, steps)


@dataclass
class LRUInit:
    """Initialisation of the LRU's eigenvalues (Orvieto et al. 2023, Lemma 3.2 and Appendix A).

    ``λ`` uniform on the ring ``r_min <= |λ| <= r_max`` with phase in ``[0, max_phase]``.
    """

    r_min: float = 0.9
    """Smallest ``|λ|``, in ``(0, r_max]``."""
    r_max: float = 0.999
    """Largest ``|λ|``, in ``[r_min, 1)``."""
    max_phase: float = 2 * math.pi
    """Largest phase ``arg λ`` (radians), ``> 0``."""

    def __post_init__(self) -> None:
        if not 0 < self.r_min <= self.r_max < 1:
            raise ValueError(
                f"r_min and r_max must satisfy 0 < r_min <= r_max < 1; got r_min={self.r_min!r}, "
                f"r_max={self.r_max!r}"
            )
        check_number("max_phase (radians)", self.max_phase, 0, open_low=True)


class LRULayer(RecurrentLayer):
    """Linear recurrent unit (Orvieto et al. 2023, "Resurrecting Recurrent Neural Networks for Long
    Sequences", §3), the recurrence of its LRU block.

    ``x_t = λ ⊙ x_{t-1} + γ ⊙ (B u_t)`` with complex diagonal ``λ = exp(-exp(ν_log) + i exp(θ_log))``
    (the stable exponential parametrisation, ``|λ| < 1`` for every ``ν_log``), normalisation ``γ``
    (``γ_log`` initialised at ``log sqrt(1 - |λ|²)`` and trained, as in the paper's Appendix A), and output
    ``y_t = Re(C x_t)``. The state is stored real, ``[Re x, Im x]``: ``state_size = 2N``.

    Settled choices:

    - No feedthrough ``D ⊙ u_t``: the zoo's output function reads the state only (``o_t = g(x_t)``,
      eq. (A.2) of Lambrechts et al. 2023; ``RecurrentStack.step`` calls ``output(s)``). A skip connection
      around the layer, like the paper's, belongs to the model that uses the stack.
    - No nonlinearity or MLP after the recurrence (the paper puts them in its block, not in the
      recurrence): the layer is linear in its state and in its input, so a stack of LRU layers is a linear
      system of its inputs; the nonlinearity comes from the head on top of it.
    - Initialisation: :class:`LRUInit` for ``λ``; ``B = B_re + i B_im`` with entries ``N(0, 1/(2F))`` and
      ``C = C_re + i C_im`` with entries ``N(0, 1/N)`` (Glorot-like, as in the paper's Appendix A);
      ``init="xavier"`` of :func:`~recurrent_q.cells.make_cell` leaves them.

    Monostable: a held input gives ``x_M - x* = λ^M ⊙ (x_0 - x*)`` with ``x* = γ ⊙ B u / (1 - λ)``.

    :param input_size: ``F``.
    :param hidden_size: ``H``, width of the output ``y``.
    :param state_dim: ``N``, complex state dimension (default ``H``).
    :param init: eigenvalue initialisation (default :class:`LRUInit`).
    """

    def __init__(
        self, input_size: int, hidden_size: int, state_dim: int | None = None, init: LRUInit | None = None
    ) -> None:
        super().__init__()
        n = hidden_size if state_dim is None else state_dim
        check_integer("state_dim", n)
        self.input_size, self.hidden_size, self.state_size = input_size, hidden_size, 2 * n
        self.state_dim = n
        self.init = LRUInit() if init is None else init
        self.nu_log = nn.Parameter(torch.empty(n))
        self.theta_log = nn.Parameter(torch.empty(n))
        self.gamma_log = nn.Parameter(torch.empty(n))
        self.B_re = nn.Parameter(torch.empty(n, input_size))
        self.B_im = nn.Parameter(torch.empty(n, input_size))
        self.C_re = nn.Parameter(torch.empty(hidden_size, n))
        self.C_im = nn.Parameter(torch.empty(hidden_size, n))
        self.reset_parameters()

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """``λ`` uniform on the ring of :attr:`init` (Lemma 3.2), ``γ = sqrt(1 - |λ|²)``, Gaussian B, C."""
        r_min, r_max = self.init.r_min, self.init.r_max
        u1, u2 = 1.0 - torch.rand(self.state_dim), 1.0 - torch.rand(self.state_dim)  # in (0, 1]
        radius2 = u1 * (r_max**2 - r_min**2) + r_min**2  # |λ|²
        self.nu_log.copy_(torch.log(-0.5 * torch.log(radius2)))
        self.theta_log.copy_(torch.log(self.init.max_phase * u2))
        self.gamma_log.copy_(0.5 * torch.log1p(-radius2))
        for weight, std in (
            (self.B_re, 1 / math.sqrt(2 * self.input_size)),
            (self.B_im, 1 / math.sqrt(2 * self.input_size)),
            (self.C_re, 1 / math.sqrt(self.state_dim)),
            (self.C_im, 1 / math.sqrt(self.state_dim)),
        ):
            nn.init.normal_(weight, 0.0, std)

    def eigenvalues(self) -> Tensor:
        """``λ = exp(-exp(ν_log) + i exp(θ_log))``, complex ``[N]``."""
        return torch.exp(torch.complex(-self.nu_log.exp(), self.theta_log.exp()))

    def _complex(self, s: Tensor) -> Tensor:
        """``[..., 2N]`` real ``[Re, Im]`` -> ``[..., N]`` complex."""
        return torch.complex(s[..., : self.state_dim], s[..., self.state_dim :])

    @staticmethod
    def _real(x: Tensor) -> Tensor:
        return torch.cat([x.real, x.imag], -1)

    def _project(self, u: Tensor) -> Tensor:
        """``γ ⊙ B u`` as ``[Re, Im]`` ``[..., 2N]``."""
        gamma = self.gamma_log.exp().repeat(2).unsqueeze(1)
        return as_dtype(F.linear(u, gamma * torch.cat([self.B_re, self.B_im])), gamma)

    def _cell(self, p: Tensor, s: Tensor) -> Tensor:
        x = self.eigenvalues() * self._complex(s) + self._complex(p)  # x_t = λ x_{t-1} + γ B u_t
        return self._real(x)

    def output(self, s: Tensor) -> Tensor:
        """``y = Re(C x) = C_re Re(x) - C_im Im(x)``: ``s[..., 2N]`` -> ``y[..., H]``."""
        return as_dtype(F.linear(s, torch.cat([self.C_re, -self.C_im], 1)), s)

    def forward(self, u: Tensor, s0: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """See :meth:`RecurrentLayer.forward` (complex state: the compiled loop over time on the CPU in
        float32, :func:`linear_scan` elsewhere)."""
        _check_sequence(self, u, s0, lengths)
        lam = self.eigenvalues()
        if _compiled(u):  # the loop over time; complex tensors as views of [..., N, 2] real ones, no copies
            gamma_b = self.gamma_log.exp().view(-1, 1, 1) * torch.stack([self.B_re, self.B_im], 1)
            b = as_dtype(F.linear(u, gamma_b.flatten(0, 1)), gamma_b)
            b = torch.view_as_complex(b.unflatten(-1, (-1, 2)))  # γ B u
            x, final = _scan_cpu.linear_recurrence(lam.view(1, 1, -1), b, self._complex(s0), lengths)
            c = torch.stack([self.C_re, -self.C_im], -1).flatten(1)  # y = Re(C x), [Re x, Im x] interleaved
            return as_dtype(F.linear(torch.view_as_real(x).flatten(-2), c), c), self._real(final)
        b = self._complex(self._project(u))
        b = torch.cat([b[:, :1] + lam * self._complex(s0).unsqueeze(1), b[:, 1:]], 1)  # x_0 = λ s0 + γ B u_0
        states = self._real(linear_scan(lam.unsqueeze(0), b))
        return self.output(states), _final(states, lengths)

    def iterate(self, u: Tensor, s0: Tensor, steps: int) -> Tensor:
        """See :meth:`RecurrentLayer.iterate`: ``x_M = λ^M x_0 + Σ_{k<M} λ^k γ B u``, by squaring."""
        _check_steps(steps)
        x = affine_power(self.eigenvalues(), self._complex(self._project(u)), self._complex(s0), steps)
        return self._real(x)


__all__ = [
    "SCAN_CHUNK",
    "LRUInit",
    "LRULayer",
    "MinGRULayer",
    "affine_power",
    "candidate",
    "linear_scan",
    "log_candidate",
    "log_linear_scan",
]
