"""The limit ``L' → ∞`` of a T-Maze policy: where the memory of the two layouts goes along an endless corridor
(:func:`corridor_attractors`, a diagnostic) and the prediction of generalisation to every longer corridor
from the network at its training length alone (:func:`horizon_diagnosis`, with the corridor step's drift
iterated in closed form by :func:`linear_drift`), both on the network's inputs along the optimal path
(:func:`optimal_path_inputs`). Every public name here is importable from
:mod:`experiments.evaluation`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from experiments.optimality import REWARD_VALUES, input_table
from recurrent_q.checks import check_integer
from recurrent_q.policies import RecurrentQNetwork
from tmaze_gym.tmaze import DOWN, OBS_CORRIDOR, OBS_DOWN, OBS_JUNCTION, OBS_UP, RIGHT, UP, check_length


def optimal_path_inputs(q_net: RecurrentQNetwork) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The network's inputs along the optimal path with reward 0: the first observation of each layout
    (up, down; ``a_{-1} = NO_ACTION``) ``[2, F]``, the corridor after a Right ``[F]`` and the junction after
    a Right ``[F]``."""
    table = input_table(q_net)
    zero = int(np.searchsorted(REWARD_VALUES, 0.0))
    return (
        table[[OBS_UP, OBS_DOWN], 0, zero],
        table[OBS_CORRIDOR, RIGHT + 1, zero],
        table[OBS_JUNCTION, RIGHT + 1, zero],
    )


@torch.no_grad()
def corridor_attractors(
    q_net: RecurrentQNetwork, steps: int = 1_000_000, chunk: int = 10_000
) -> dict[str, Any]:
    """Where the memory of the two layouts goes along an endless corridor (the limit ``L' → ∞``).

    From the state after the first observation (up, or down), the corridor input of the optimal path
    (``a = Right``, ``o = Corridor``, ``r = 0``) is held for ``steps`` steps (the stack's sequence
    forward, ``chunk`` steps at a time). A policy optimal at every horizon must go Right at every one of
    these steps and end the two layouts in two distinct states (attractors of that input: multistability)
    from which the junction input gives Up and Down. A diagnostic, with the sequence kernels: the
    evaluation itself is :func:`experiments.evaluation.greedy_rollouts`.

    :return: ``distance`` (Euclidean, all layers) between the two final states; ``junction_actions``, the
        greedy actions at the junction from them (up, down), and ``junction_correct`` (``[UP, DOWN]``);
        ``first_not_right``, the first step (1 = the first observation's) whose greedy action on this path
        is not Right in either layout (None if all are).
    """
    check_integer("steps", steps, 0)
    start, corridor_input, junction_input = optimal_path_inputs(q_net)
    q_values, state = q_net.step(start)
    first_not_right = None if bool((q_values.argmax(-1) == RIGHT).all()) else 1
    corridor = corridor_input.expand(2, min(chunk, max(steps, 1)), -1)
    done = 0
    while done < steps:
        n = min(chunk, steps - done)
        q_values, state = q_net(corridor[:, :n], state)
        wrong = (q_values.argmax(-1) != RIGHT).any(0).nonzero()
        if first_not_right is None and len(wrong):
            first_not_right = done + int(wrong[0]) + 2
        done += n
    q_values, _ = q_net.step(junction_input.expand(2, -1), state)
    actions = q_values.argmax(-1).tolist()
    return {
        "steps": steps,
        "distance": float(torch.linalg.vector_norm(state[:, 0] - state[:, 1])),
        "junction_actions": actions,
        "junction_correct": actions == [UP, DOWN],
        "first_not_right": first_not_right,
    }


DRIFT_CHECKS_PER_DECADE = 4
"""How densely :func:`horizon_diagnosis` reads the network along its linearised drift: at the lengths
``horizon · 10^(-k/4)``, ``k = 0, 1, …``, down to the settled length."""


def linear_drift(jacobian: torch.Tensor, step: torch.Tensor, steps: int) -> torch.Tensor:
    """The displacement ``Σ_{j < steps} J^j (f(s) − s)`` after ``steps`` iterations of the map linearised at
    ``s``, ``f(x) ≈ f(s) + J (x − s)``: per eigen-direction of ``J``, ``(λ^n − 1) / (λ − 1)`` times the step's
    component, which converges to ``1 / (1 − λ)`` times it for a contracting direction, grows as ``n`` times
    it for a neutral one (``λ = 1``) and geometrically for an expanding one. In float64, by repeated
    squaring (``O(log steps)`` matrix products); ``jacobian`` ``[S, S]``, ``step`` ``[S]``."""
    check_integer("steps", steps, 0)
    jacobian, step = jacobian.double(), step.double()
    total = torch.zeros_like(step)
    power = torch.eye(len(step), dtype=step.dtype, device=step.device)  # J^(steps added to total)
    block_sum, block_power = step.clone(), jacobian.clone()  # Σ_{j < 2^k} J^j r and J^(2^k)
    while steps:
        if steps & 1:
            total = total + power @ block_sum
            power = power @ block_power
        steps >>= 1
        if steps:
            block_sum = block_sum + block_power @ block_sum
            block_power = block_power @ block_power
    return total


def _margin(q_values: torch.Tensor, actions: list[int]) -> torch.Tensor:
    """Per row, the Q-value of its action in ``actions`` minus the best other one (> 0: chosen greedily)."""
    index = torch.tensor(actions, device=q_values.device)[:, None]
    other = q_values.scatter(-1, index, float("-inf")).max(-1).values
    return q_values.gather(-1, index).squeeze(-1) - other


def _readout_margins(
    q_net: RecurrentQNetwork, corridor_input: torch.Tensor, junction_input: torch.Tensor, state: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The next corridor step from ``state`` ``[layers, 2, S]`` (up, down): its state and, per layout, the
    smaller of the margin of Right there and the margin of the layout's arm from ``state``'s junction step;
    ``-inf`` where the state is not finite."""
    corridor_q, after = q_net.step(corridor_input.expand(2, -1), state)
    junction_q = q_net.step(junction_input, state)[0]
    margins = torch.minimum(_margin(corridor_q, [RIGHT, RIGHT]), _margin(junction_q, [UP, DOWN]))
    finite = torch.isfinite(state).flatten(2).all(-1).all(0)
    return after, torch.where(finite & ~margins.isnan(), margins, float("-inf"))


def _linearise(
    q_net: RecurrentQNetwork, corridor_input: torch.Tensor, state: torch.Tensor
) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """Per layout of ``state`` ``[layers, 2, S]``: its state ``s`` (flattened over the layers), the
    Jacobian of the corridor step ``f`` at ``s``, the step ``f(s) − s`` and the mask of the moving units (a
    unit frozen by a saturated gate, ``f_i(s) = s_i`` exactly, holds its value at every length)."""
    shape = state.shape

    def one_step(flat: torch.Tensor) -> torch.Tensor:
        return q_net.step(corridor_input.unsqueeze(0), flat.view(shape[0], 1, shape[2]))[1].reshape(-1)

    out = []
    for i in range(shape[1]):
        s = state[:, i].reshape(-1).detach()
        with torch.enable_grad():
            jacobian = torch.autograd.functional.jacobian(one_step, s)
        with torch.no_grad():
            step = one_step(s) - s
        eye = torch.eye(len(s), dtype=jacobian.dtype, device=jacobian.device)
        out.append((s, jacobian, step, ~((jacobian == eye).all(1) & (step == 0))))
    return out


def horizon_diagnosis(
    q_net: RecurrentQNetwork, length: int, horizon: int = 100_000, settle: int | None = None
) -> dict[str, Any]:
    """Whether a network optimal at corridor ``length`` stays optimal at every longer one up to ``horizon``,
    predicted from the network alone, without playing a longer corridor than ``length + settle``.

    Each layout is played along the optimal path of the training length: the first observation, then the
    ``length - 1`` corridor inputs (``a = Right``, ``o = Corridor``, ``r = 0``), to the state ``s`` that
    meets the junction. At ``s``, for the one-step map ``f(s) = step(corridor input, s)`` (the attractor
    view, kept for comparison): its residual ``‖f(s) − s‖``, the spectral radius ``ρ`` of its Jacobian
    (units frozen by a saturated gate, ``f_i(s) = s_i`` exactly, left out: they hold at every length), the
    distance ``‖f(s) − s‖ / (1 − ρ)`` to the attractor of the corridor input when ``ρ < 1``, the attractor
    estimated by one Newton step ``s* = s + (I − J)⁻¹ (f(s) − s)``, their separation and readout.

    The prediction. A trained GRU's Jacobian has many eigenvalues within 0.002 of 1 in modulus (neutral
    directions: saturated update gates), so ``ρ < 1`` rarely holds; what matters is whether the drift along
    those directions reaches a wrong readout. (1) The corridor is played ``settle`` more steps
    (``10 · length`` by default), checking the greedy readout at every one (Right, and the layout's arm
    from the junction: optimal at every length from ``length`` to ``length + settle``): the fast
    transients decay. (2) At the settled state ``x``, ``f`` is linearised, ``f(y) ≈ f(x) + J (y − x)``, and
    iterated in closed form (:func:`linear_drift`): the state at ``L'`` is ``x + Σ_{j<n} J^j (f(x) − x)``
    with ``n = L' − length − settle``, every eigen-direction at once, with no threshold between contracting
    and neutral ones. (3) The readout is evaluated at these drifted states for ``L' = horizon · 10^(-k/4)``
    (:data:`DRIFT_CHECKS_PER_DECADE`) down to the settled length: Right after a corridor step and the
    layout's arm after the junction step, in both layouts (so the drift has not closed the separation of
    the two layouts either: they are read as different arms). The prediction holds when every check up to
    ``horizon`` reads right. It is a first-order extrapolation: exact for a map affine along the
    corridor, and an estimate where the drift leaves the region where ``J`` holds.

    :param q_net: a T-Maze DRQN Q-network (``DRQN.policy.acting_net``).
    :param length: the training length ``L``.
    :param horizon: the longest corridor ``L'`` to predict (> ``length``).
    :param settle: the corridor steps played past ``length`` before the linearisation (``>= 0``; default
        ``10 · length``; capped at ``horizon - length``).
    :return: at ``s``: ``optimal_path`` (Right along the path and the right arm at ``s``), ``residual``,
        ``spectral_radius`` and ``distance_to_attractor`` (per layout, up and down), ``separation`` (between
        the two Newton attractors) and ``attractor_readout`` (Right and the right arm from each attractor);
        the prediction: ``horizon``, ``settle``, ``neutral_dimensions`` (per layout, how many eigenvalues of
        the Jacobian at the settled state, frozen units left out, have ``|λ| ≥ 1 − 1 / horizon``: less than
        a factor e of contraction by ``horizon``), ``drift_bound`` (per layout, the linearised displacement
        ``‖Σ_{j<n} J^j (f(x) − x)‖`` by ``L' = horizon``: the first-order estimate, not a bound of the
        nonlinear map's), ``readout_margin``
        (per layout, the smallest margin of the right action over every check: ``> 0`` reads right),
        ``predicted_horizon`` (the longest checked ``L'`` up to which every check reads right, at least
        ``length``; None when the network is not optimal at ``length``) and ``predicts_generalisation``
        (``predicted_horizon`` is ``horizon``).
    """
    check_length(length)
    check_integer("horizon", horizon, length + 1)
    check_integer("settle", settle, 0, optional=True)
    settle = min(10 * length if settle is None else settle, horizon - length)
    start, corridor_input, junction_input = optimal_path_inputs(q_net)
    junction_input = junction_input.expand(2, -1)
    with torch.no_grad():
        q_values, state = q_net.step(start)
        right = bool((q_values.argmax(-1) == RIGHT).all())
        if length > 1:
            q_values, state = q_net(corridor_input.expand(2, length - 1, -1), state)
            right = right and bool((q_values.argmax(-1) == RIGHT).all())
        turns = q_net.step(junction_input, state)[0].argmax(-1).tolist()
    shape = state.shape  # [layers, 2, S]

    residuals, radii, distances, attractors = [], [], [], []
    for s, jacobian, step, moving in _linearise(q_net, corridor_input, state):
        sub = jacobian[moving][:, moving]
        radius = float(torch.linalg.eigvals(sub.double()).abs().max()) if bool(moving.any()) else 0.0
        residual = float(torch.linalg.vector_norm(step))
        residuals.append(residual)
        radii.append(radius)
        distances.append(residual / (1.0 - radius) if radius < 1 else float("inf"))
        newton = s.clone()
        if radius < 1:
            eye = torch.eye(len(sub), dtype=sub.dtype, device=sub.device)
            newton[moving] += torch.linalg.solve(eye - sub, step[moving])
        attractors.append(newton)
    fixed = torch.stack(attractors).view(2, shape[0], shape[2]).transpose(0, 1).contiguous()
    with torch.no_grad():
        corridor_q = q_net.step(corridor_input.expand(2, -1), fixed)[0]
        readout = bool((corridor_q.argmax(-1) == RIGHT).all())
        readout = readout and q_net.step(junction_input, fixed)[0].argmax(-1).tolist() == [UP, DOWN]
    separation = float(torch.linalg.vector_norm(attractors[0] - attractors[1]))
    optimal_path = right and turns == [UP, DOWN]

    # (1) settle: the readout at every length from L to L + settle, played
    checks: list[tuple[int, torch.Tensor]] = []  # (L', per-layout margin), by increasing L'
    with torch.no_grad():
        for k in range(settle + 1):
            after, margins = _readout_margins(q_net, corridor_input, junction_input, state)
            checks.append((length + k, margins))
            if k < settle:
                state = after
    # (2) the linearised drift from the settled state, (3) read at L' = horizon · 10^(-k/4)
    settled = length + settle
    grid = (round(horizon * 10 ** (-k / DRIFT_CHECKS_PER_DECADE)) for k in range(64))
    lengths = sorted({n for n in grid if n > settled})
    neutral, drift = [], []
    drifted = {n: [] for n in lengths}
    for s, jacobian, step, moving in _linearise(q_net, corridor_input, state):
        sub = jacobian[moving][:, moving].double()
        modulus = torch.linalg.eigvals(sub).abs() if bool(moving.any()) else sub.new_zeros(0)
        neutral.append(int((modulus >= 1 - 1 / horizon).sum()))
        for n in lengths:
            drifted[n].append(s.double() + linear_drift(jacobian, step, n - settled))
        far = drifted[lengths[-1]][-1] - s if lengths else s.new_zeros(1)
        drift.append(float(torch.linalg.vector_norm(far)))
    with torch.no_grad():
        for n in lengths:
            moved = torch.stack(drifted[n]).float().view(2, shape[0], shape[2]).transpose(0, 1).contiguous()
            checks.append((n, _readout_margins(q_net, corridor_input, junction_input, moved)[1]))
    predicted = length if optimal_path else None
    if optimal_path:
        for n, margins in checks:
            if not bool((margins > 0).all()):
                break
            predicted = n
    return {
        "length": int(length),
        "optimal_path": optimal_path,
        "residual": residuals,
        "spectral_radius": radii,
        "distance_to_attractor": distances,
        "separation": separation,
        "attractor_readout": readout,
        "horizon": int(horizon),
        "settle": int(settle),
        "neutral_dimensions": neutral,
        "drift_bound": drift,
        "readout_margin": torch.stack([m for _, m in checks]).min(0).values.tolist(),
        "predicted_horizon": predicted,
        "predicts_generalisation": predicted == horizon,
    }
