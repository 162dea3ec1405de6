"""Parallel cells (minGRU, LRU): the scans equal the step-by-step recurrence, and the cells are monostable."""

from __future__ import annotations

import contextlib
import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from recurrent_q import _scan_cpu
from recurrent_q.cells import LRULayer, MinGRULayer, RecurrentStack, make_cell
from recurrent_q.multistability import WarmupConfig, estimate_vaa, warmup
from recurrent_q.parallel_cells import (
    SCAN_CHUNK,
    LRUInit,
    candidate,
    linear_scan,
    log_candidate,
    log_linear_scan,
)

CELLS = ["mingru", "lru"]
F64 = torch.float64
FLOOR = 1 / 32  # VAA floor 1/|X| with batch_size = 32


def new_layer(name: str, seed: int, input_size: int = 3, hidden_size: int = 5, scale: float | None = None):
    """A float64 layer; with ``scale``, every parameter ~ N(0, scale²) (so that every term matters)."""
    torch.manual_seed(seed)
    layer = make_cell(name, input_size, hidden_size, dtype=F64).layers[0]
    if scale is not None:
        with torch.no_grad():
            for p in layer.parameters():
                p.normal_(0.0, scale)
    return layer


def step_loop(layer, u: torch.Tensor, s0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs ``[B, T, H]`` and states ``[B, T, S]`` by ``T`` calls of ``step``."""
    s, states = s0, []
    for u_t in u.unbind(1):
        s = layer.step(u_t, s)
        states.append(s)
    states = torch.stack(states, 1)
    return layer.output(states), states


@torch.no_grad()
def gate_and_target(layer, u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For an input ``u`` held: the contraction factor ``a`` (``x_{t+1} - x* = a ⊙ (x_t - x*)``) and the
    attractor ``x*`` of the docstrings, computed from the parameters, as complex for the LRU."""
    if isinstance(layer, MinGRULayer):
        hid = layer.hidden_size
        z = torch.sigmoid(u @ layer.weight_ih[:hid].T + layer.bias[:hid])
        pre = u @ layer.weight_ih[hid:].T + layer.bias[hid:]
        return 1 - z, torch.where(pre >= 0, pre + 0.5, torch.sigmoid(pre))  # h* = h̃ = g(W_h u + b_h)
    lam = torch.exp(-torch.exp(layer.nu_log) + 1j * torch.exp(layer.theta_log))
    b = torch.exp(layer.gamma_log) * (u.to(lam.dtype) @ (layer.B_re + 1j * layer.B_im).T)
    return lam.expand_as(b), b / (1 - lam)  # x* = γ B u / (1 - λ)


def as_real(x: torch.Tensor) -> torch.Tensor:
    return torch.cat([x.real, x.imag], -1) if x.is_complex() else x


def random_sequences(n: int = 256, t: int = 20, f: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, t, f, generator=torch.Generator().manual_seed(seed))


def settling_steps(model: RecurrentStack, default: int) -> int:
    """Stabilisation period after which the slowest LRU mode has shrunk by 1e-9 (``default`` otherwise)."""
    lru = [layer for layer in model.layers if isinstance(layer, LRULayer)]
    rates = [float(layer.eigenvalues().detach().abs().max()) for layer in lru]
    return math.ceil(math.log(1e-9) / math.log(max(rates))) if rates else default


def measure_vaa(model: RecurrentStack, data: torch.Tensor, steps: int) -> float:
    return estimate_vaa(
        model, data, steps=steps, iterations=3, batch_size=32, generator=torch.Generator().manual_seed(1)
    )


def toy_train(model: RecurrentStack, data: torch.Tensor, steps: int = 30) -> list[float]:
    """A few Adam steps of a short-memory regression: output the first input of 3 steps before."""
    torch.manual_seed(0)
    head = nn.Linear(model.hidden_size, 1)
    target = torch.roll(data[..., :1], 3, 1)
    target[:, :3] = 0.0
    optimiser = torch.optim.Adam([*model.parameters(), *head.parameters()], lr=1e-2)
    losses = []
    for _ in range(steps):
        loss = ((head(model(data)[0]) - target) ** 2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses


# --- the scans against the recurrence


@pytest.mark.parametrize("scale", [0.7, 4.0])
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("name", CELLS)
def test_scan_equals_step_loop_values_and_gradients(name, with_lengths, scale):
    """``forward`` (scan) = ``T`` calls of ``step``: outputs, final state (at ``lengths[b]``), every gradient.

    ``scale = 4`` saturates minGRU's gates (``z`` near 0 and 1) and puts LRU's ``|λ|`` near 0 and 1.
    """
    layer = new_layer(name, seed=1, scale=scale)
    gen = torch.Generator().manual_seed(2)
    steps = 3 * SCAN_CHUNK + 5  # several chunks and a ragged one; odd levels in the pairing
    u = torch.randn(4, steps, 3, generator=gen, dtype=F64)
    s0 = torch.randn(4, layer.state_size, generator=gen, dtype=F64)
    lengths = torch.tensor([steps, 1, SCAN_CHUNK, 2 * SCAN_CHUNK + 1]) if with_lengths else None
    row_lengths = torch.full((4,), steps) if lengths is None else lengths
    valid = (torch.arange(steps) < row_lengths.unsqueeze(1)).unsqueeze(2)
    w_out = torch.randn(4, steps, layer.hidden_size, generator=gen, dtype=F64)
    w_state = torch.randn(4, layer.state_size, generator=gen, dtype=F64)

    def run(scan: bool) -> list[torch.Tensor]:
        uu, ss = u.clone().requires_grad_(), s0.clone().requires_grad_()
        if scan:
            out, final = layer(uu, ss, lengths)
        else:
            out, states = step_loop(layer, uu, ss)
            final = states[:, -1] if lengths is None else states[torch.arange(4), lengths - 1]
        out = out * valid  # outputs past a row's length are unspecified
        loss = (out * w_out).sum() + (final * w_state).sum()
        return [out, final, *torch.autograd.grad(loss, [uu, ss, *layer.parameters()])]

    for got, expected in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("name", CELLS)
def test_iterate_equals_repeated_step(name):
    layer = new_layer(name, seed=3, scale=0.7)
    gen = torch.Generator().manual_seed(4)
    u = torch.randn(4, 3, generator=gen, dtype=F64)
    s = torch.randn(4, layer.state_size, generator=gen, dtype=F64)
    by_count, x = {}, s
    for m in range(1, 41):
        x = layer.step(u, x)
        by_count[m] = x
    assert torch.equal(layer.iterate(u, s, 0), s)
    for m in (1, 2, 7, 32, 40):
        torch.testing.assert_close(layer.iterate(u, s, m), by_count[m])


# --- monostability


@pytest.mark.parametrize("trained", [False, True])
@pytest.mark.parametrize("name", CELLS)
def test_held_input_has_the_one_attractor_of_the_docstring(name, trained):
    """``f^M(x) - x* = a^M ⊙ (x - x*)`` with the ``a`` and ``x*`` of the docstrings, from every start."""
    torch.manual_seed(5)
    model = make_cell(name, 4, 8)
    if trained:
        toy_train(model, random_sequences())
    layer = model.layers[0].to(F64)
    gen = torch.Generator().manual_seed(6)
    for _ in range(3):
        u = torch.randn(1, 4, generator=gen, dtype=F64)
        starts = 5 * torch.randn(64, layer.state_size, generator=gen, dtype=F64)
        a, target = gate_and_target(layer, u)
        x0 = torch.complex(*starts.chunk(2, -1)) if a.is_complex() else starts
        # one step contracts the distance to x* by a, entrywise (complex for the LRU)
        torch.testing.assert_close(
            layer.iterate(u.expand(64, -1), starts, 1), as_real(target + a * (x0 - target))
        )
        # all starts reach x* once the slowest factor |a|^M < 1e-12
        steps = math.ceil(math.log(1e-12) / math.log(float(a.abs().max())))
        final = layer.iterate(u.expand(64, -1), starts, steps)
        torch.testing.assert_close(final, as_real(target).expand_as(final), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("name", CELLS)
def test_vaa_is_the_floor_at_initialisation_and_after_training(name):
    """``estimate_vaa`` (Algorithms 1-2) gives 1/|X| before and after some training.

    Measured: loss 0.92 -> 0.84 (minGRU), 0.89 -> 0.008 (LRU), VAA 1/32 every time. Training harder
    (lr 3e-2) closes minGRU gates as warmup does: VAA 0.35 at M = 2 000 (see the warmup test below).
    """
    torch.manual_seed(0)
    model = make_cell(name, 4, 16, num_layers=2)
    data = random_sequences()
    assert measure_vaa(model, data, settling_steps(model, 2000)) == pytest.approx(FLOOR)
    losses = toy_train(model, data)
    assert losses[-1] < 0.95 * losses[0]
    assert measure_vaa(model, data, settling_steps(model, 2000)) == pytest.approx(FLOOR)


# --- the zoo's interface


@pytest.mark.parametrize("dtype", [F64, torch.float32])
@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("name", CELLS)
def test_two_layer_stack_states_at(name, double, dtype):
    """float32: the sequences run the compiled loop (with ``lengths`` in ``states_at``'s spans)."""
    torch.manual_seed(7)
    stack = make_cell(name, 4, 8, num_layers=2, double=double, dtype=dtype)
    assert stack.state_size == (16 if name == "lru" else 8)  # LRU: [Re x, Im x] with N = H
    gen = torch.Generator().manual_seed(8)
    x = torch.randn(30, 17, 4, generator=gen, dtype=dtype)
    lengths = torch.randint(1, 18, (30,), generator=gen)
    states = stack.states(x)  # the step loop for the LRU, the sequence path for minGRU
    expected = states[lengths - 1, :, torch.arange(30)].transpose(0, 1)
    for blocks in (1, 3, 8):
        torch.testing.assert_close(stack.states_at(x, lengths, blocks=blocks), expected)
    out, final = stack(x)
    torch.testing.assert_close(final, states[-1])
    assert out.shape == (30, 17, 8)


def test_warmup_leaves_the_lru_at_the_floor():
    """Measured (2 x 16, seed 0): warmup's VAA* starts at 0.99 (M <= 200 is shorter than the LRU's time
    constants 1 / (1 - |λ|) up to ~300), so it has little to do; max |λ| goes from 0.9969 to 0.9990 (float32
    on the compiled loop; 0.9989 in float64, 0.9984 with the float32 scans: the path depends on rounding)
    and the VAA stays 1/32 once the slowest mode has shrunk by 1e-9.

    Not asserted: the VAA at the default M = 10 000. There the slowest mode has shrunk by only
    |λ|^M ≈ 6e-5 (0.999^10 000), and the states of different starts stay more than ε apart: VAA 1.0 after
    this warmup on the compiled loop, 0.81 in float64, 1/32 after the float32 scans' warmup
    (max |λ| 0.9984, 1e-7). A transient as minGRU's below, not an attractor."""
    torch.manual_seed(0)
    model = make_cell("lru", 4, 16, num_layers=2)
    data = random_sequences()
    result = warmup(model, data, WarmupConfig(seed=0))
    assert len(result.loss) == 100 and all(len(v) == 2 for v in result.vaa_star)
    assert all(float(layer.eigenvalues().detach().abs().max()) < 1 for layer in model.layers)
    assert measure_vaa(model, data, settling_steps(model, 2000)) == pytest.approx(FLOOR)


def test_warmup_closes_min_gru_gates_so_vaa_is_high_at_finite_m():
    """Measured (2 x 16 seeds 0-2, 2 x 64 seed 0): after warmup the VAA at M = 10 000 is 1.0, not the floor.

    Warmup shuts update gates (``z = σ(k)`` down to ~1e-9 for typical held inputs), so states move by
    ``(1 - z)^M ≈ 1``: transients longer than M, not new attractors; with enough steps (by squaring, in
    float64) every start still reaches ``h̃``.
    """
    torch.manual_seed(0)
    model = make_cell("mingru", 4, 16, num_layers=2)
    data = random_sequences()
    assert measure_vaa(model, data, 10_000) == pytest.approx(FLOOR)
    warmup(model, data, WarmupConfig(seed=0))
    assert measure_vaa(model, data, 10_000) > 0.5
    bottom = model.layers[0].to(F64)
    gen = torch.Generator().manual_seed(9)
    u = torch.randn(1000, 4, generator=gen, dtype=F64)
    a, _ = gate_and_target(bottom, u)
    assert float((1 - a).min()) < 1e-4  # some gates closed (measured min z 5e-9)
    # still one attractor per held input, reached after ~1/z steps: take inputs whose gates are not
    # shut beyond float64 (z > 1e-12)
    starts = torch.randn(64, 16, generator=gen, dtype=F64)
    usable = [i for i in range(1000) if float((1 - a[i]).min()) > 1e-12][:5]
    assert usable
    for i in usable:
        rate, target = gate_and_target(bottom, u[i : i + 1])
        steps = math.ceil(math.log(1e-12) / math.log(float(rate.max())))
        final = bottom.iterate(u[i : i + 1].expand(64, -1), starts, steps)
        torch.testing.assert_close(final, target.expand_as(final), rtol=1e-9, atol=1e-9)


# --- long sequences, numerics and errors


@pytest.mark.parametrize("name", CELLS)
def test_sequence_of_100_000_steps(name):
    """float32 on T = 100 000, by the compiled loop and by the PyTorch scan: finite values and gradients,
    last state = the float64 step loop's (measured relative errors: minGRU 1e-7 compiled, 9e-7 log-space
    scan; LRU 8e-5 on both paths, from ``λ`` rounded to float32 over time constants of ~1 000 steps)."""
    layer64 = new_layer(name, seed=10, input_size=3, hidden_size=4)
    layer = copy.deepcopy(layer64).float()
    gen = torch.Generator().manual_seed(11)
    u = torch.randn(2, 100_000, 3, generator=gen, dtype=F64)
    s0 = torch.randn(2, layer.state_size, generator=gen, dtype=F64)
    s = s0
    with torch.no_grad():
        for u_t in u.unbind(1):
            s = layer64.step(u_t, s)
    for enabled in {True, False} & {_scan_cpu.AVAILABLE, False}:
        layer.zero_grad()
        uu = u.float().requires_grad_()
        with compiled_loop(enabled):
            out, final = layer(uu, s0.float())
        assert torch.isfinite(out).all() and torch.isfinite(final).all()
        (out.sum() + final.sum()).backward()
        assert torch.isfinite(uu.grad).all() and all(torch.isfinite(p.grad).all() for p in layer.parameters())
        torch.testing.assert_close(final.double(), s, rtol=1e-4, atol=1e-5)


def test_chunks_keep_the_log_space_scan_accurate():
    """SCAN_CHUNK's docstring: in float32 over 100 000 steps, Heinsen's scan in one span errs by ~1 %, in
    chunks by < 1e-5 (relative, against float64)."""
    gen = torch.Generator().manual_seed(12)
    steps = 100_000
    k, c = torch.randn(2, 2, steps, 4, generator=gen)
    log_a, log_b = -F.softplus(k), -F.softplus(-k) + log_candidate(c)  # minGRU's, at U(-1, 1)-like inputs
    x0 = torch.rand(2, 4, generator=gen)
    reference = log_linear_scan(log_a.double(), log_b.double(), x0.double())

    def error(chunk: int) -> float:
        x = log_linear_scan(log_a, log_b, x0, chunk)
        return float(((x.double() - reference).abs() / reference.abs()).max())

    assert error(SCAN_CHUNK) < 1e-5
    assert error(steps) > 1e-3


def test_lru_initialisation_and_output():
    torch.manual_seed(13)
    assert (LRUInit().r_min, LRUInit().r_max, LRUInit().max_phase) == (0.9, 0.999, 2 * math.pi)
    layer = LRULayer(3, 6, state_dim=4000, init=LRUInit(r_min=0.4, r_max=0.8, max_phase=math.pi / 10))
    with torch.no_grad():
        lam = layer.eigenvalues()
        radius, phase = lam.abs(), lam.angle()
        assert radius.min() >= 0.4 - 1e-6 and radius.max() <= 0.8 + 1e-6
        # uniform on the ring (Lemma 3.2): |λ|² ~ U(r_min², r_max²)
        assert float((radius**2).mean()) == pytest.approx((0.4**2 + 0.8**2) / 2, abs=0.01)
        assert phase.min() >= 0 and phase.max() <= math.pi / 10 + 1e-6 and phase.max() > 0.95 * math.pi / 10
        torch.testing.assert_close(layer.gamma_log.exp(), torch.sqrt(1 - radius**2))  # γ = sqrt(1 - |λ|²)
        default = make_cell("lru", 3, 64).layers[0].eigenvalues().abs()
        assert default.min() >= 0.9 - 1e-6 and default.max() <= 0.999 + 1e-6
        # y = Re(C x)
        s = torch.randn(5, 8000)
        x = torch.complex(s[:, :4000], s[:, 4000:])
        expected = (x @ torch.complex(layer.C_re, layer.C_im).T).real
        torch.testing.assert_close(layer.output(s), expected, rtol=1e-4, atol=1e-4)


def test_bad_arguments_raise_clear_errors():
    for name in CELLS:
        layer = new_layer(name, seed=14)
        s0 = torch.zeros(2, layer.state_size, dtype=F64)
        u = torch.randn(2, 5, 3, dtype=F64)
        with pytest.raises(ValueError, match=r"u must have shape \[B, T >= 1, F = 3\]; got \(2, 5, 4\)"):
            layer(torch.randn(2, 5, 4, dtype=F64), s0)
        with pytest.raises(ValueError, match=r"u must have shape .*got \(2, 0, 3\)"):
            layer(torch.randn(2, 0, 3, dtype=F64), s0)
        with pytest.raises(ValueError, match=r"s0 must have shape \[B, S\]"):
            layer(u, torch.zeros(3, layer.state_size, dtype=F64))
        with pytest.raises(ValueError, match=r"lengths must have shape \[B\] = \[2\] and values in 1..5"):
            layer(u, s0, torch.tensor([0, 5]))
        with pytest.raises(ValueError, match="steps must be an integer >= 0; got -1"):
            layer.iterate(u[:, 0], s0, -1)
    with pytest.raises(ValueError, match="r_min and r_max must satisfy 0 < r_min <= r_max < 1"):
        LRUInit(r_max=1.0)
    with pytest.raises(ValueError, match="r_min and r_max must satisfy"):
        LRUInit(r_min=0.95, r_max=0.9)
    with pytest.raises(ValueError, match=r"max_phase \(radians\) must be a number > 0"):
        LRUInit(max_phase=0.0)
    with pytest.raises(ValueError, match="state_dim must be an integer >= 1; got 0"):
        LRULayer(3, 4, state_dim=0)


# --- the compiled CPU loop (recurrent_q/_scan_cpu.py) against the recurrence and the PyTorch scans

needs_numba = pytest.mark.skipif(not _scan_cpu.AVAILABLE, reason="numba not installed")


@contextlib.contextmanager
def compiled_loop(enabled: bool):
    """Route the cells' CPU float32 sequences to the compiled loop (True) or to the PyTorch scans (False)."""
    _scan_cpu.ENABLED = enabled and _scan_cpu.AVAILABLE
    try:
        yield
    finally:
        _scan_cpu.ENABLED = _scan_cpu.AVAILABLE


def random_coefficients(shape_a, rows, steps, width, dtype, gen):
    """``a`` with ``|a| < 1`` (complex: any phase), ``b``, ``x0`` of ``dtype``, for the linear recurrence."""
    real = torch.float64
    radius = torch.rand(shape_a, generator=gen, dtype=real)
    if dtype.is_complex:
        a = radius * torch.exp(2j * math.pi * torch.rand(shape_a, generator=gen, dtype=real))
        b = torch.randn(rows, steps, width, generator=gen, dtype=torch.complex128)
        x0 = torch.randn(rows, width, generator=gen, dtype=torch.complex128)
    else:
        a = 2 * radius - 1
        b = torch.randn(rows, steps, width, generator=gen, dtype=real)
        x0 = torch.randn(rows, width, generator=gen, dtype=real)
    return a.to(dtype), b.to(dtype), x0.to(dtype)


def recurrence_loop(a, b, x0, lengths):
    """The recurrence in PyTorch ops, step by step: ``x [B, T, N]``, the state after ``lengths[b]`` steps."""
    x, states = x0, []
    for t in range(b.shape[1]):
        x = a[:, min(t, a.shape[1] - 1)] * x + b[:, t]
        states.append(x)
    states = torch.stack(states, 1)
    last = torch.full((b.shape[0],), b.shape[1]) if lengths is None else lengths
    return states, states[torch.arange(b.shape[0]), last - 1]


def scan_with_x0(a, b, x0, lengths):
    """The recurrence by :func:`linear_scan` (``x0`` folded into ``b_0``), the final state as the cells."""
    b = torch.cat([b[:, :1] + a[:, :1] * x0.unsqueeze(1), b[:, 1:]], 1)
    states = linear_scan(a, b)
    last = torch.full((b.shape[0],), b.shape[1]) if lengths is None else lengths
    return states, states[torch.arange(b.shape[0]), last - 1]


A_SHAPES = {  # shape of a for [B, T, N] sequences
    "per step": lambda rows, steps, width: (rows, steps, width),
    "constant": lambda rows, steps, width: (rows, 1, width),
    "shared": lambda rows, steps, width: (1, 1, width),  # the LRU's λ
}


@needs_numba
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("a_shape", list(A_SHAPES))
@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_compiled_recurrence_passes_gradcheck(dtype, a_shape, with_lengths):
    """The hand-written backward (the reverse recurrence, conjugates for complex tensors, float64 /
    complex128 sums for a coefficient constant in time) = finite differences, in double precision."""
    gen = torch.Generator().manual_seed(20)
    rows, steps, width = 3, 9, 4
    a, b, x0 = random_coefficients(A_SHAPES[a_shape](rows, steps, width), rows, steps, width, dtype, gen)
    lengths = torch.tensor([9, 1, 5]) if with_lengths else None
    inputs = [x.requires_grad_() for x in (a, b, x0)]
    assert torch.autograd.gradcheck(lambda *t: _scan_cpu.linear_recurrence(*t, lengths), inputs)


@needs_numba
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("a_shape", list(A_SHAPES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.complex64])
def test_compiled_recurrence_equals_step_loop_and_scan(dtype, a_shape, with_lengths):
    """float32 / complex64: states, final state (at ``lengths``) and gradients of ``a``, ``b``, ``x0`` equal
    the step-by-step recurrence in double precision, and :func:`linear_scan` in the same precision.

    Tolerance: ``|a| < 1`` keeps every term bounded; over 70 steps the float32 roundings of the inputs and
    of the stored states give relative errors of a few 1e-7 (the carried state is float64); ``atol = 1e-5,
    rtol = 1e-5`` leaves a margin of ~10x and still fails on any wrong term (those are O(1))."""
    gen = torch.Generator().manual_seed(21)
    rows, steps, width = 4, 70, 6
    a, b, x0 = random_coefficients(A_SHAPES[a_shape](rows, steps, width), rows, steps, width, dtype, gen)
    lengths = torch.tensor([70, 1, 33, 69]) if with_lengths else None
    wide = torch.complex128 if dtype.is_complex else torch.float64
    w_states = torch.randn(rows, steps, width, generator=gen, dtype=wide)
    w_final = torch.randn(rows, width, generator=gen, dtype=wide)

    def run(function, precision):
        inputs = [x.detach().to(precision).requires_grad_() for x in (a, b, x0)]
        states, final = function(*inputs, lengths)
        loss = (states * w_states.to(precision)).real.sum() + (final * w_final.to(precision)).real.sum()
        return [states, final, *torch.autograd.grad(loss, inputs)]

    compiled = run(_scan_cpu.linear_recurrence, dtype)
    for reference in (run(recurrence_loop, wide), run(scan_with_x0, dtype)):
        for got, expected in zip(compiled, reference, strict=True):
            assert got.dtype == dtype
            torch.testing.assert_close(got.to(wide), expected.to(wide), rtol=1e-5, atol=1e-5)


@needs_numba
@pytest.mark.parametrize("with_lengths", [False, True])
def test_compiled_min_gru_equals_linear_and_log_space_recurrences(with_lengths):
    """:func:`mingru_recurrence` (float32, gates computed in the loop) = the linear recurrence with
    ``a = σ(-k)``, ``b = σ(k) g(c)`` from PyTorch's ops, and = the log-space scan, both in float64: states,
    final state, gradients of ``p = [k, c]`` and ``h0``.

    Pre-activations ``N(0, 3²)`` reach both branches of ``g``; row 0 sweeps ``k`` over ±40 (``z`` = 0 and
    1 in float32). Tolerance as above (measured errors ≤ 3e-6). The log-space scan in float32 is the less
    accurate of the two float32 paths here (errors up to 1e-4 in the states, and gradients of saturated
    gates ~3e-5 instead of ~1e-15), hence the float64 references."""
    gen = torch.Generator().manual_seed(22)
    rows, steps, width = 4, 3 * SCAN_CHUNK + 5, 6
    p = 3 * torch.randn(rows, steps, 2 * width, generator=gen)
    p[0, :, :width] = torch.linspace(-40, 40, steps).unsqueeze(1)
    h0 = torch.randn(rows, width, generator=gen)
    lengths = torch.tensor([steps, 1, SCAN_CHUNK, 2 * SCAN_CHUNK + 1]) if with_lengths else None
    w_states = torch.randn(rows, steps, width, generator=gen, dtype=F64)
    w_final = torch.randn(rows, width, generator=gen, dtype=F64)

    def linear(p, h0, lengths):
        k, c = p.chunk(2, -1)
        return _scan_cpu.linear_recurrence(torch.sigmoid(-k), torch.sigmoid(k) * candidate(c), h0, lengths)

    def log_space(p, h0, lengths):
        k, c = p.chunk(2, -1)
        h = log_linear_scan(-F.softplus(k), -F.softplus(-k) + log_candidate(c), h0)
        last = torch.full((rows,), steps) if lengths is None else lengths
        return h, h[torch.arange(rows), last - 1]

    def run(function, precision):
        inputs = [x.detach().to(precision).requires_grad_() for x in (p, h0)]
        states, final = function(*inputs, lengths)
        loss = (states * w_states.to(precision)).sum() + (final * w_final.to(precision)).sum()
        return [states, final, *torch.autograd.grad(loss, inputs)]

    compiled = run(_scan_cpu.mingru_recurrence, torch.float32)
    for reference in (run(linear, F64), run(log_space, F64)):
        for got, expected in zip(compiled, reference, strict=True):
            assert got.dtype == torch.float32
            torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-5)


@needs_numba
@pytest.mark.parametrize("with_lengths", [False, True])
@pytest.mark.parametrize("name", CELLS)
def test_cells_take_the_compiled_loop_and_it_equals_their_scans(name, with_lengths):
    """float32 on the CPU: ``forward`` runs the compiled loop (one autograd node); with ``ENABLED = False``
    (the fallback) the PyTorch scans. Both give the outputs, final state and every gradient of the float64
    layer (the scans, checked against ``step`` above); float64 layers never take the loop.

    Tolerances, from the measured errors: the compiled loop ≤ 1e-5 (minGRU) and ≤ 5e-6 relative (LRU,
    whose gradients of ``ν_log``, ``θ_log`` reach ~30); the float32 scans ≤ 5e-4 (minGRU's log-space scan
    rounds logs of size ~10 before its ``exp``)."""
    layer64 = new_layer(name, seed=23, scale=0.7)
    layer = copy.deepcopy(layer64).float()
    gen = torch.Generator().manual_seed(24)
    steps = 3 * SCAN_CHUNK + 5
    u = torch.randn(4, steps, 3, generator=gen, dtype=F64)
    s0 = torch.randn(4, layer.state_size, generator=gen, dtype=F64)
    lengths = torch.tensor([steps, 1, SCAN_CHUNK, 2 * SCAN_CHUNK + 1]) if with_lengths else None
    w_out = torch.randn(4, steps, layer.hidden_size, generator=gen, dtype=F64)
    w_state = torch.randn(4, layer.state_size, generator=gen, dtype=F64)
    node = "MinGRURecurrence" if name == "mingru" else "LinearRecurrence"

    def run(layer, enabled: bool) -> list[torch.Tensor]:
        dtype = next(layer.parameters()).dtype
        uu, ss = u.to(dtype).requires_grad_(), s0.to(dtype).requires_grad_()
        with compiled_loop(enabled):
            out, final = layer(uu, ss, lengths)
        compiled = any(node in type(fn).__name__ for fn in autograd_nodes(out))
        assert compiled == (enabled and dtype == torch.float32)
        loss = (out * w_out.to(dtype)).sum() + (final * w_state.to(dtype)).sum()
        return [x.double() for x in (out, final, *torch.autograd.grad(loss, [uu, ss, *layer.parameters()]))]

    reference = run(layer64, True)
    for enabled, tolerance in ((True, 2e-5), (False, 1e-3)):
        for got, expected in zip(run(layer, enabled), reference, strict=True):
            torch.testing.assert_close(got, expected, rtol=tolerance, atol=tolerance)


def autograd_nodes(x: torch.Tensor) -> list:
    """Every node of the autograd graph behind ``x``."""
    seen, stack = [], [x.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.append(fn)
        stack.extend(next_fn for next_fn, _ in fn.next_functions)
    return seen


@needs_numba
def test_compiled_recurrences_reject_bad_arguments():
    b, x0, a = torch.zeros(2, 5, 3), torch.zeros(2, 3), torch.full((2, 5, 3), 0.5)
    with pytest.raises(ValueError, match="a, b and x0 must share one dtype"):
        _scan_cpu.linear_recurrence(a.double(), b, x0)
    with pytest.raises(ValueError, match="must share one dtype among"):
        _scan_cpu.linear_recurrence(a.half(), b.half(), x0.half())
    with pytest.raises(ValueError, match=r"b must have shape \[B, T >= 1, N\]; got \(2, 0, 3\)"):
        _scan_cpu.linear_recurrence(a[:, :0], b[:, :0], x0)
    with pytest.raises(ValueError, match=r"x0 must have shape \[B, N\] = \[2, 3\]; got \(3,\)"):
        _scan_cpu.linear_recurrence(a, b, x0[0])
    with pytest.raises(ValueError, match=r"a must have shape \[B, T, N\] = \[2, 5, 3\] or \[2 or 1, 1, 3\]"):
        _scan_cpu.linear_recurrence(a[:, :2], b, x0)
    with pytest.raises(ValueError, match=r"a varying in time must have shape \[B, T, N\] = \[2, 5, 3\]"):
        _scan_cpu.linear_recurrence(a[:1], b, x0)
    with pytest.raises(ValueError, match=r"lengths must have shape \[B\] = \[2\] and values in 1..5"):
        _scan_cpu.linear_recurrence(a, b, x0, torch.tensor([5, 6]))
    p = torch.zeros(2, 5, 6)
    with pytest.raises(ValueError, match="p must be a float32 CPU tensor; got torch.float64"):
        _scan_cpu.mingru_recurrence(p.double(), x0)
    with pytest.raises(ValueError, match=r"p must have shape \[B, T >= 1, 2H\]; got \(2, 5, 5\)"):
        _scan_cpu.mingru_recurrence(p[..., :5], x0)
    with pytest.raises(ValueError, match=r"h0 must have shape \[B, H\] = \[2, 3\]; got \(2, 4\)"):
        _scan_cpu.mingru_recurrence(p, torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"lengths must have shape \[B\] = \[2\] and values in 1..5"):
        _scan_cpu.mingru_recurrence(p, x0, torch.tensor([0, 5]))
