"""Cell zoo: equations of Appendix A, sequence vs step passes, double layers, views of nn.GRU/nn.LSTM;
the package's modules import alone and without a cycle."""

from __future__ import annotations

import ast
import graphlib
import math
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import recurrent_q
from recurrent_q.cells import CELL_NAMES, DoubleLayer, RecurrentStack, as_stack, make_cell

PACKAGE = Path(recurrent_q.__file__).parent
MODULES = sorted(f"recurrent_q.{module.name}" for module in pkgutil.iter_modules([str(PACKAGE)]))


def sig(x: torch.Tensor) -> torch.Tensor:
    return 1.0 / (1.0 + torch.exp(-x))


# Hand-written reference update functions, one equation a line, with separately named weights.
def ref_lstm(layer, u, x):
    rnn, hid = layer.rnn, layer.hidden_size
    w_u, w_h, b = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0 + rnn.bias_hh_l0
    W = {
        g: (w_u[k * hid : (k + 1) * hid], w_h[k * hid : (k + 1) * hid], b[k * hid : (k + 1) * hid])
        for k, g in enumerate("ifco")
    }
    h, c = x[:, :hid], x[:, hid:]

    def lin(g):
        return u @ W[g][0].T + h @ W[g][1].T + W[g][2]

    f = sig(lin("f"))  # (A.4)
    i = sig(lin("i"))  # (A.5)
    r = sig(lin("o"))  # (A.6)
    c_tilde = torch.tanh(lin("c"))  # (A.7)
    c = f * c + i * c_tilde  # (A.8)
    return torch.cat([r * torch.tanh(c), c], 1)  # (A.9)


def ref_gru(layer, u, h):
    rnn, hid = layer.rnn, layer.hidden_size
    w_u, w_h, b_u, b_h = rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0

    def part(w, k):
        return w[k * hid : (k + 1) * hid]

    z = sig(u @ part(w_u, 1).T + h @ part(w_h, 1).T + part(b_u, 1) + part(b_h, 1))  # (A.10)
    r = sig(u @ part(w_u, 0).T + h @ part(w_h, 0).T + part(b_u, 0) + part(b_h, 0))  # (A.11)
    cand = torch.tanh(u @ part(w_u, 2).T + part(b_u, 2) + r * (h @ part(w_h, 2).T + part(b_h, 2)))
    return z * h + (1 - z) * cand  # (A.12), PyTorch form


def ref_mgu(layer, u, h):
    hid = layer.hidden_size
    W_fu, W_hu = layer.weight_ih[:hid], layer.weight_ih[hid:]
    b_f, b_h = layer.bias[:hid], layer.bias[hid:]
    f = sig(u @ W_fu.T + h @ layer.weight_fh.T + b_f)  # (A.19)
    h_tilde = torch.tanh(u @ W_hu.T + (f * h) @ layer.weight_hh.T + b_h)  # (A.20)
    return f * h_tilde + (1 - f) * h  # (A.21)


def _brc_like(layer, u, h, rec_c, rec_a):
    hid = layer.hidden_size
    W_cu, W_au, W_hu = (layer.weight_ih[k * hid : (k + 1) * hid] for k in range(3))
    b_c, b_a, b_h = (layer.bias[k * hid : (k + 1) * hid] for k in range(3))
    c = sig(u @ W_cu.T + rec_c + b_c)  # (A.13) / (A.16)
    a = 1 + torch.tanh(u @ W_au.T + rec_a + b_a)  # (A.14) / (A.17)
    return c * h + (1 - c) * torch.tanh(u @ W_hu.T + a * h + b_h)  # (A.15) / (A.18)


def ref_brc(layer, u, h):
    return _brc_like(layer, u, h, layer.w_c * h, layer.w_a * h)


def ref_nbrc(layer, u, h):
    hid = layer.hidden_size
    return _brc_like(layer, u, h, h @ layer.weight_hh[:hid].T, h @ layer.weight_hh[hid:].T)


def ref_mingru(layer, u, h):
    hid = layer.hidden_size
    W_z, W_h = layer.weight_ih[:hid], layer.weight_ih[hid:]
    b_z, b_h = layer.bias[:hid], layer.bias[hid:]
    z = sig(u @ W_z.T + b_z)  # minGRU update gate
    pre = u @ W_h.T + b_h
    h_tilde = torch.where(pre >= 0, pre + 0.5, sig(pre))  # minGRU's g (log-space version)
    return (1 - z) * h + z * h_tilde


def ref_lru(layer, u, x):
    n = layer.state_size // 2
    lam = torch.exp(-torch.exp(layer.nu_log) + 1j * torch.exp(layer.theta_log))
    B = (layer.B_re + 1j * layer.B_im) * torch.exp(layer.gamma_log).unsqueeze(1)
    new = lam * (x[:, :n] + 1j * x[:, n:]) + u.to(B.dtype) @ B.T  # x_t = λ x_{t-1} + γ B u_t
    return torch.cat([new.real, new.imag], 1)


REFERENCES = {
    "lstm": ref_lstm,
    "chrono": ref_lstm,
    "gru": ref_gru,
    "mgu": ref_mgu,
    "brc": ref_brc,
    "nbrc": ref_nbrc,
    "mingru": ref_mingru,
    "lru": ref_lru,
}


def randomise(model: nn.Module) -> None:
    """Random weights of a larger scale than the default init, so that every term matters."""
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.7)


@pytest.mark.parametrize("name", CELL_NAMES)
def test_step_matches_equations(name):
    torch.manual_seed(0)
    stack = make_cell(name, 3, 5, num_layers=1, t_max=20, dtype=torch.float64)
    randomise(stack)
    layer = stack.layers[0]
    u = torch.randn(4, 3, dtype=torch.float64)
    x = torch.randn(4, layer.state_size, dtype=torch.float64)
    torch.testing.assert_close(layer.step(u, x), REFERENCES[name](layer, u, x))


@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_sequence_pass_equals_step_by_step(name, double):
    torch.manual_seed(1)
    stack = make_cell(name, 3, 6, num_layers=2, double=double, t_max=20, dtype=torch.float64)
    randomise(stack)
    x = torch.randn(4, 9, 3, dtype=torch.float64)
    s0 = 0.5 * torch.randn(2, 4, stack.state_size, dtype=torch.float64)
    out, final = stack(x, s0)
    state, outs = s0, []
    for t in range(9):
        o, state = stack.step(x[:, t], state)
        outs.append(o)
    torch.testing.assert_close(out, torch.stack(outs, 1))
    torch.testing.assert_close(final, state)
    # every intermediate state, and the states after per-row lengths (Algorithm 2)
    states = stack.states(x, s0)
    assert states.shape == (9, 2, 4, stack.state_size)
    torch.testing.assert_close(states[-1], final)
    lengths = torch.tensor([1, 9, 4, 6])
    at = stack.states_at(x, lengths, s0)
    torch.testing.assert_close(at, states[lengths - 1, :, torch.arange(4)].transpose(0, 1))


@pytest.mark.parametrize("name", ["gru", "lstm", "nbrc"])
def test_states_at_many_rows_and_lengths(name):
    torch.manual_seed(7)
    stack = make_cell(name, 2, 4, num_layers=2, double=name == "lstm", dtype=torch.float64)
    x = torch.randn(30, 17, 2, dtype=torch.float64)
    lengths = torch.randint(1, 18, (30,))
    states = stack.states(x)
    expected = states[lengths - 1, :, torch.arange(30)].transpose(0, 1)
    for blocks in (1, 3, 8):
        torch.testing.assert_close(stack.states_at(x, lengths, blocks=blocks), expected)


@pytest.mark.parametrize("name", ["gru", "lstm", "mgu"])
def test_iterate_equals_repeated_step(name):
    torch.manual_seed(2)
    layer = make_cell(name, 3, 5, dtype=torch.float64).layers[0]
    u, s = torch.randn(4, 3, dtype=torch.float64), torch.randn(4, layer.state_size, dtype=torch.float64)
    expected = s
    for _ in range(7):
        expected = layer.step(u, expected)
    torch.testing.assert_close(layer.iterate(u, s, 7), expected)


@pytest.mark.parametrize("double", [False, True])
@pytest.mark.parametrize("name", CELL_NAMES)
def test_under_autocast_the_products_are_bfloat16_and_the_states_keep_float32(name, double):
    """The warmup's ``bfloat16_products`` (torch.autocast): every path of every cell (sequence, Algorithm 2's
    states, the stabilisation, one step) returns float32 states, close to the float32 ones but not equal
    (the products really ran in bfloat16). 80 rows × 64 units: a single layer is past the compiled GRU's
    size, which is float32 only."""
    torch.manual_seed(3)
    stack = make_cell(name, 3, 64, num_layers=2, double=double, t_max=20)
    x = torch.randn(80, 6, 3)
    lengths = torch.randint(1, 7, (80,))
    u, s = torch.randn(80, 3), 0.1 * torch.randn(80, stack.layers[0].state_size)

    def run() -> list[torch.Tensor]:
        out, final = stack(x)
        layer = stack.layers[0]
        return [out, final, stack.states_at(x, lengths), layer.iterate(u, s, 4), layer.step(u, s)]

    with torch.no_grad():
        reference = run()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            lowered = run()
    for path, (a, b) in enumerate(zip(reference, lowered, strict=True)):
        assert b.dtype == torch.float32, (path, b.dtype)
        assert torch.isfinite(b).all(), path
        gap = float((a - b).abs().max())
        assert gap < 0.1, (path, gap)  # bfloat16 rounds at about 4e-3 relative: six steps stay near
    assert any(not torch.equal(a, b) for a, b in zip(reference, lowered, strict=True))


@pytest.mark.parametrize("constant", [False, True])
def test_compiled_gru_equals_reference_with_gradients(constant):
    """The CPU kernel (float32) gives the step-by-step GRU's outputs, final states and every gradient."""
    from recurrent_q import _gru_cpu

    if not _gru_cpu.AVAILABLE:
        pytest.skip("numba not installed")
    torch.manual_seed(3)
    layer = make_cell("gru", 3, 6).layers[0]
    randomise(layer)
    batch, steps = 7, 11
    u = torch.randn(batch, 1 if constant else steps, 3)
    lengths = torch.full((batch,), steps) if constant else torch.tensor([11, 3, 1, 11, 7, 2, 9])
    h0 = 0.5 * torch.randn(batch, 6)
    weights_out, weights_h = torch.randn(batch, steps, 6), torch.randn(batch, 6)

    def run(compiled: bool):
        params = [p.detach().clone().requires_grad_() for p in (u, h0, *layer.rnn.parameters())]
        uu, hh, w_ih, w_hh, b_ih, b_hh = params
        gi = uu @ w_ih.T + b_ih
        if compiled:
            out, h = _gru_cpu.gru_recurrence(gi, hh, w_hh, b_hh, None if constant else lengths, steps)
        else:
            gi64 = gi.double().expand(-1, steps, -1)
            ref_w, ref_b = w_hh.double(), b_hh.double()
            h, outs = hh.double(), []
            for t in range(steps):
                gh = h @ ref_w.T + ref_b
                r = torch.sigmoid(gi64[:, t, :6] + gh[:, :6])
                z = torch.sigmoid(gi64[:, t, 6:12] + gh[:, 6:12])
                n = torch.tanh(gi64[:, t, 12:] + r * gh[:, 12:])
                running = (t < lengths).unsqueeze(1)
                h_new = z * h + (1 - z) * n
                outs.append(h_new * running)
                h = torch.where(running, h_new, h)
            out = torch.stack(outs, 1)
        ((out * weights_out).sum() + (h * weights_h).sum()).backward()
        return [out.double(), h.double()] + [p.grad.double() for p in params]

    for got, expected in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(got, expected, atol=2e-5, rtol=1e-4)


def test_compiled_gru_layer_matches_nn_gru_path():
    """GRULayer's forward, states_at and iterate give the same values and gradients on both CPU paths."""
    from recurrent_q import _gru_cpu

    if not _gru_cpu.AVAILABLE:
        pytest.skip("numba not installed")
    torch.manual_seed(4)
    stack = make_cell("gru", 5, 8, num_layers=2)
    x, s0 = torch.randn(6, 13, 5), 0.5 * torch.randn(2, 6, 8)
    lengths = torch.tensor([13, 2, 5, 1, 13, 8])
    weights = torch.randn(6, 13, 8)

    def run(enabled: bool):
        _gru_cpu.ENABLED = enabled
        try:
            stack.zero_grad(set_to_none=True)
            xx, ss = x.clone().requires_grad_(), s0.clone().requires_grad_()
            out, final = stack(xx, ss)
            at = stack.states_at(xx, lengths, ss)
            it = stack.layers[0].iterate(xx[:, 0], ss[0], 9)
            loss = (out * weights).sum() + final.pow(2).sum() + at.sin().sum() + it.cos().sum()
            loss.backward()
            return [out, final, at, it, xx.grad, ss.grad] + [p.grad.clone() for p in stack.parameters()]
        finally:
            _gru_cpu.ENABLED = _gru_cpu.AVAILABLE

    for got, expected in zip(run(True), run(False), strict=True):
        torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-4)


def test_xavier_initialisation():
    torch.manual_seed(5)
    gru = make_cell("gru", 9, 32, num_layers=2, init="xavier").layers[1].rnn
    for block in gru.weight_hh_l0.split(32):  # orthogonal per gate
        torch.testing.assert_close(block @ block.T, torch.eye(32), atol=1e-5, rtol=0)
    bound = math.sqrt(6 / (32 + 32))  # Xavier-uniform per gate (fan_in = fan_out = 32)
    assert gru.weight_ih_l0.abs().max() <= bound and gru.weight_ih_l0.abs().max() > 0.9 * bound
    assert not gru.bias_ih_l0.any() and not gru.bias_hh_l0.any()
    brc = make_cell("brc", 3, 4, init="xavier").layers[0]
    assert (brc.w_c == 1).all() and (brc.w_a == 1).all() and not brc.bias.any()
    lstm = make_cell("lstm", 3, 4, init="xavier").layers[0].rnn
    assert lstm.bias_ih_l0.any()  # LSTMs keep PyTorch's initialisation
    with pytest.raises(ValueError, match="init must be one of 'uniform', 'xavier'"):
        make_cell("gru", 3, 4, init="glorot")


def test_shapes_and_zero_initial_state():
    stack = make_cell("lstm", 3, 8, num_layers=3)
    assert (stack.state_size, stack.num_layers, stack.hidden_size) == (16, 3, 8)
    out, state = stack(torch.randn(2, 5, 3))
    assert out.shape == (2, 5, 8) and state.shape == (3, 2, 16)
    assert torch.equal(stack.initial_state(2), torch.zeros(3, 2, 16))
    x = torch.randn(2, 5, 3)
    torch.testing.assert_close(stack(x)[0], stack(x, stack.initial_state(2))[0])


def test_episode_starts_reset_the_state():
    torch.manual_seed(3)
    stack = make_cell("gru", 2, 4, num_layers=2, dtype=torch.float64)
    x = torch.randn(3, 8, 2, dtype=torch.float64)
    s0 = torch.randn(2, 3, 4, dtype=torch.float64)
    starts = torch.zeros(3, 8, dtype=torch.bool)
    starts[0, 0] = starts[1, 5] = starts[2, 3] = True
    out, final = stack(x, s0, episode_starts=starts)
    state, outs = s0, []
    for t in range(8):
        state = state * (~starts[:, t]).view(1, -1, 1)
        o, state = stack.step(x[:, t], state)
        outs.append(o)
    torch.testing.assert_close(out, torch.stack(outs, 1))
    torch.testing.assert_close(final, state)
    # no reset after t = 0: the fast path gives the plain forward
    torch.testing.assert_close(
        stack(x, s0, episode_starts=torch.zeros(3, 8, dtype=torch.bool))[0], stack(x, s0)[0]
    )


def test_double_layer_halves():
    torch.manual_seed(4)
    stack = make_cell("lstm", 3, 8, num_layers=2, double=True)
    layer = stack.layers[1]
    assert isinstance(layer, DoubleLayer) and layer.first.hidden_size == 4 and layer.first.input_size == 8
    assert stack.state_size == 16  # [h1, c1, h2, c2], 4 units each
    u, s = torch.randn(2, 8), torch.randn(2, 16)
    new = layer.step(u, s)
    torch.testing.assert_close(new[:, :8], layer.first.step(u, s[:, :8]))
    torch.testing.assert_close(new[:, 8:], layer.second.step(u, s[:, 8:]))
    torch.testing.assert_close(layer.output(new), torch.cat([new[:, :4], new[:, 8:12]], 1))
    assert layer.warm_layer is layer.first
    assert {id(p) for p in layer.warm_parameters()} == {id(p) for p in layer.first.parameters()}
    torch.testing.assert_close(layer.warm_state(s), s[:, :8])


def test_chrono_initialisation():
    torch.manual_seed(5)
    t_max = 50
    rnn = make_cell("chrono", 3, 200, t_max=t_max).layers[0].rnn
    h = 200
    b = rnn.bias_ih_l0.detach()
    forget, inp = b[h : 2 * h], b[:h]
    assert torch.all(forget >= 0) and torch.all(forget <= math.log(t_max - 1))
    torch.testing.assert_close(inp, -forget)
    assert forget.max() > math.log(t_max - 1) - 0.2 and forget.min() < 0.2  # spread over U(1, T_max - 1)
    assert torch.all(b[2 * h :] == 0) and torch.all(rnn.bias_hh_l0 == 0)


@pytest.mark.parametrize("cls", [nn.GRU, nn.LSTM])
def test_as_stack_is_a_view_sharing_parameters(cls):
    torch.manual_seed(6)
    module = cls(3, 5, num_layers=2, batch_first=True)
    view = as_stack(module)
    assert isinstance(view, RecurrentStack) and view.num_layers == 2
    x = torch.randn(4, 7, 3)
    torch.testing.assert_close(view(x)[0], module(x)[0])
    with torch.no_grad():
        next(view.parameters()).add_(1.0)
    assert torch.equal(next(view.parameters()), module.weight_ih_l0)
    torch.testing.assert_close(view(x)[0], module(x)[0])
    assert {id(p) for p in view.parameters()} == {id(p) for p in module.parameters()}


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="cell must be one of 'lstm', 'gru'.*got 'foo'"):
        make_cell("foo", 3, 4)
    with pytest.raises(ValueError, match="hidden_size must be even"):
        make_cell("gru", 3, 5, double=True)
    with pytest.raises(ValueError, match="t_max is required"):
        make_cell("chrono", 3, 4)
    with pytest.raises(ValueError, match="t_max must be > 2"):
        make_cell("chrono", 3, 4, t_max=2)
    with pytest.raises(ValueError, match="num_layers must be an integer >= 1; got 0"):
        make_cell("gru", 3, 4, num_layers=0)
    stack = make_cell("mgu", 3, 4)
    with pytest.raises(ValueError, match="input width 2.*input_size is 3"):
        stack(torch.randn(2, 5, 2))
    with pytest.raises(ValueError, match="input width 2.*input_size is 3"):
        stack.step(torch.randn(2, 2))
    with pytest.raises(ValueError, match="state must have shape"):
        stack(torch.randn(2, 5, 3), torch.zeros(1, 3, 4))
    with pytest.raises(TypeError, match="RecurrentStack, torch.nn.GRU or torch.nn.LSTM"):
        as_stack(nn.RNN(3, 4))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", CELL_NAMES)
def test_cuda(name):
    stack = make_cell(name, 3, 4, num_layers=2, double=True, t_max=10, device="cuda")
    x = torch.randn(2, 5, 3, device="cuda")
    out, state = stack(x, episode_starts=torch.zeros(2, 5, dtype=torch.bool, device="cuda"))
    assert out.device.type == state.device.type == "cuda"
    assert stack.states_at(x, torch.tensor([1, 5], device="cuda")).device.type == "cuda"


def test_the_cells_and_measures_import_without_sb3_or_gymnasium():
    """The library's core needs only PyTorch: SB3 and Gymnasium load with DRQN, not with the cells."""
    import subprocess
    import sys

    code = (
        "import sys; import recurrent_q.cells, recurrent_q.multistability, supervised.train\n"
        "names = ('stable_baselines3', 'sb3_contrib', 'gymnasium', 'tmaze_gym')\n"
        "heavy = [m for m in names if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "from recurrent_q import DRQN\n"
        "assert 'stable_baselines3' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports_alone(module):
    """Each module of ``recurrent_q`` imports as the first one of a fresh interpreter."""
    done = subprocess.run(
        [sys.executable, "-c", f"import {module}"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]


def _package_imports(module: str) -> set[str]:
    """The modules of ``recurrent_q`` (``"recurrent_q"`` for its ``__init__``) that ``module`` imports when
    it is loaded: the imports of its body, also under ``if`` and ``try``, but not under ``if TYPE_CHECKING``
    nor in functions and classes."""
    path = PACKAGE / ("__init__.py" if module == "recurrent_q" else f"{module.rsplit('.', 1)[1]}.py")
    statements, imported = list(ast.parse(path.read_text()).body), set()
    while statements:
        node = statements.pop()
        if isinstance(node, ast.If) and not (
            isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"
        ):
            statements += node.body + node.orelse
        elif isinstance(node, ast.Try):
            statements += node.body + node.orelse + node.finalbody
            statements += [statement for handler in node.handlers for statement in handler.body]
        elif isinstance(node, ast.Import):
            imported |= {".".join(alias.name.split(".")[:2]) for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{module}: relative import"
            if node.module == "recurrent_q":  # submodules, or names of the package's __init__
                imported |= {
                    f"recurrent_q.{a.name}" if f"recurrent_q.{a.name}" in MODULES else "recurrent_q"
                    for a in node.names
                }
            else:
                imported.add(".".join(node.module.split(".")[:2]))
    return {name for name in imported if name == "recurrent_q" or name in MODULES}


def test_the_modules_import_each_other_without_a_cycle():
    """The zoo in two layers: ``layers`` is below the cells (``gated_cells`` and ``parallel_cells`` import
    it, it imports neither), and the registry ``cells`` is above both, which do not import it nor each
    other."""
    graph = {module: _package_imports(module) for module in ["recurrent_q", *MODULES]}
    families = {"recurrent_q.gated_cells", "recurrent_q.parallel_cells"}
    assert {"recurrent_q.layers", *families} <= graph["recurrent_q.cells"]
    for family in families:
        assert "recurrent_q.layers" in graph[family]
        assert not graph[family] & {"recurrent_q.cells", *families}
    assert not graph["recurrent_q.layers"] & {"recurrent_q.cells", *families}
    list(graphlib.TopologicalSorter(graph).static_order())  # CycleError names a cycle


def test_the_compiled_gru_runs_only_where_it_was_measured_faster():
    from recurrent_q import _gru_cpu

    assert _gru_cpu.fits(128, 32) and _gru_cpu.fits(64, 64) and _gru_cpu.fits(16, 128)
    assert not _gru_cpu.fits(129, 32) and not _gru_cpu.fits(24, 128) and not _gru_cpu.fits(8, 256 + 1)
    layer = make_cell("gru", 3, 256).layers[0]
    assert not layer._compiled(torch.zeros(16, 3)) and not layer.skips_padding(torch.zeros(16, 3))
    assert make_cell("gru", 3, 32).layers[0].skips_padding(torch.zeros(32, 3))
