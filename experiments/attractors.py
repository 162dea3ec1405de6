"""The limit ``L' → ∞`` of a T-Maze policy: where the memory of the two layouts goes along an endless corridor
(:func:`corridor_attractors`, a diagnostic) and the prediction of generalisation to every longer corridor
from the network at its training length alone (:func:`horizon_diagnosis`), both on the network's inputs along
the optimal path (:func:`optimal_path_inputs`). Every public name here is importable from
:mod:`experiments.evaluation`."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from experiments.optimality import REWARD_VALUES, input_table
from recurrent_q.checks import check_integer, check_number
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


def horizon_diagnosis(q_net: RecurrentQNetwork, length: int, tol: float = 1e-2) -> dict[str, Any]:
    """Whether a network optimal at corridor ``length`` stays optimal at every longer one, predicted from
    the network alone, without playing a longer corridor.

    Each layout is played along the optimal path of the training length: the first observation, then the
    ``length - 1`` corridor inputs (``a = Right``, ``o = Corridor``, ``r = 0``), to the state ``s`` that
    meets the junction. Then, for the one-step map ``f(s) = step(corridor input, s)``: its residual
    ``‖f(s) − s‖``, the spectral radius ``ρ`` of its Jacobian at ``s`` (units frozen by a saturated gate,
    ``f_i(s) = s_i`` exactly, left out: they hold at every length) and, when ``ρ < 1``, the distance to
    the attractor of the corridor input, ``‖f(s) − s‖ / (1 − ρ)`` (exact for a linear map), with the
    attractor estimated by one Newton step ``s* = s + (I − J)⁻¹ (f(s) − s)``. The prediction holds when the
    greedy policy goes Right along the path and turns to the right arm at ``s`` (optimal at ``length``),
    both layouts are within ``tol`` of their attractors, the two attractors are further apart than the two
    distances, and the greedy readout at each attractor is Right in the corridor and the right arm at the
    junction: then a longer corridor only moves the state closer to where it reads right.

    :param q_net: a T-Maze DRQN Q-network (``DRQN.policy.acting_net``).
    :param length: the training length ``L``.
    :param tol: largest distance to the attractor counted as reached.
    :return: ``optimal_path`` (Right along the path and the right arm at ``s``), ``residual``,
        ``spectral_radius`` and ``distance_to_attractor`` (per layout, up and down), ``separation`` (between
        the two attractors), ``attractor_readout`` (Right and the right arm from each attractor) and
        ``predicts_generalisation``.
    """
    check_length(length)
    check_number("tol", tol, 0, open_low=True)
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

    def one_step(flat: torch.Tensor) -> torch.Tensor:
        return q_net.step(corridor_input.unsqueeze(0), flat.view(shape[0], 1, shape[2]))[1].reshape(-1)

    residuals, radii, distances, attractors = [], [], [], []
    for i in range(2):
        s = state[:, i].reshape(-1).detach()
        with torch.enable_grad():
            jacobian = torch.autograd.functional.jacobian(one_step, s)
        with torch.no_grad():
            step = one_step(s) - s
        eye = torch.eye(len(s), dtype=jacobian.dtype, device=jacobian.device)
        # frozen units (a saturated gate: f_i(s) = s_i exactly) hold their value at every length: left out
        moving = ~((jacobian == eye).all(1) & (step == 0))
        sub = jacobian[moving][:, moving]
        radius = float(torch.linalg.eigvals(sub.double()).abs().max()) if bool(moving.any()) else 0.0
        residual = float(torch.linalg.vector_norm(step))
        residuals.append(residual)
        radii.append(radius)
        distances.append(residual / (1.0 - radius) if radius < 1 else float("inf"))
        newton = s.clone()
        if radius < 1:
            newton[moving] += torch.linalg.solve(eye[moving][:, moving] - sub, step[moving])
        attractors.append(newton)
    fixed = torch.stack(attractors).view(2, shape[0], shape[2]).transpose(0, 1).contiguous()
    with torch.no_grad():
        corridor_q = q_net.step(corridor_input.expand(2, -1), fixed)[0]
        readout = bool((corridor_q.argmax(-1) == RIGHT).all())
        readout = readout and q_net.step(junction_input, fixed)[0].argmax(-1).tolist() == [UP, DOWN]
    separation = float(torch.linalg.vector_norm(attractors[0] - attractors[1]))
    optimal_path = right and turns == [UP, DOWN]
    reached = max(distances) <= tol
    return {
        "length": int(length),
        "optimal_path": optimal_path,
        "residual": residuals,
        "spectral_radius": radii,
        "distance_to_attractor": distances,
        "separation": separation,
        "attractor_readout": readout,
        "predicts_generalisation": bool(optimal_path and reached and separation > sum(distances) and readout),
    }
