"""T-Maze evaluation (``experiments.evaluation``): the batched greedy rollouts equal the Gymnasium env's,
the one optimality test gives the same verdict on both, at the runner's horizon, and tells a decaying
memory from a held one; ``mm-evaluate-tmaze`` reports the same."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.cli import evaluate_tmaze
from experiments.evaluation import (
    MARGIN_FLOOR,
    authors_horizon,
    corridor_attractors,
    default_gamma,
    exploration_histories,
    greedy_rollouts,
    horizon_diagnosis,
    horizon_optimality,
    is_optimal_episode,
    is_tmaze_optimal,
    linear_drift,
    optimal_at,
    optimal_at_each,
    optimal_margins,
    optimal_path_errors,
    optimal_path_margins,
)
from experiments.tmaze import make_tmaze_drqn
from recurrent_q.callbacks import play_greedy
from recurrent_q.drqn import DRQN
from recurrent_q.policies import RecurrentQState
from tmaze_gym.tmaze import DOWN, LEFT, RIGHT, UP


def test_the_optimality_test_and_the_runners_horizon():
    """Return 4 in exactly L + 1 steps; the runner's env and the exploration histories stop at 3L - 1."""
    assert is_optimal_episode(np.array([4.0, 4.0, -0.1, 4.0]), np.array([6, 7, 6, 5]), 5).tolist() == [
        True,
        False,
        False,
        False,
    ]
    assert bool(is_optimal_episode(4.0, 21, 20)) and authors_horizon(20) == 59
    model = make_tmaze_drqn(length=5, buffer_size=64)
    assert model.get_env().envs[0].spec.max_episode_steps == authors_horizon(5) == 14
    _, lengths = exploration_histories(model.q_net, 5, n_steps=500)
    assert int(lengths.max()) - 1 <= authors_horizon(5)  # inputs: the actions + the terminal observation


def drqn(length: int, seed: int, observation_type: str = "discrete", **policy_kwargs) -> DRQN:
    """An untrained DRQN on the T-Maze (random weights: varied greedy paths, bumps included), whose
    first layer's weights on ``a_{t-1}`` and ``r_{t-1}`` are scaled up so that a wrong encoding of
    either changes its actions."""
    env = gym.make("TMaze-v0", length=length, observation_type=observation_type)
    kwargs = {
        "cell": "gru",
        "hidden_size": 16,
        "num_layers": 2,
        "use_previous_reward": True,
        "init": "xavier",
    }
    model = DRQN("RecurrentQPolicy", env, policy_kwargs=kwargs | policy_kwargs, seed=seed)
    width = model.q_net.rnn.input_size
    with torch.no_grad():
        for weight in model.q_net.rnn.layers[0].parameters():
            if weight.dim() == 2 and weight.shape[1] == width:
                weight[:, :4] *= 3.0  # one-hot a_{t-1}
                if model.q_net.use_previous_reward:
                    weight[:, -1] *= 30.0  # r_{t-1}: -0.1 after a bump
    return model


def env_rollout(model: DRQN, length: int, layout: str, observation_type: str = "discrete") -> tuple:
    """Greedy episode through ``TMaze-v0`` one step at a time (``predict`` with its state, as
    ``play_greedy``): actions, return, steps."""
    env = gym.make("TMaze-v0", length=length, observation_type=observation_type)
    obs, _ = env.reset(options={"layout": layout})
    state, start, actions, total = None, True, [], 0.0
    while True:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="use_previous_reward=True")
            action, state = model.predict(
                obs, state=state, episode_start=np.array([start]), deterministic=True
            )
        obs, reward, terminated, truncated, _ = env.step(int(action))
        state = RecurrentQState(*state)._replace(previous_reward=np.full(1, reward, dtype=np.float32))
        start = False
        actions.append(int(action))
        total += float(reward)
        if terminated or truncated:
            return actions, total, len(actions)


@pytest.mark.parametrize(
    "cell, observation_type, use_previous_reward",
    [
        ("gru", "discrete", True),
        ("gru", "onehot", True),
        ("gru", "discrete", False),
        ("lru", "discrete", True),
    ],
)
def test_batched_rollouts_equal_the_env_rollouts(cell, observation_type, use_previous_reward):
    bumped = False
    for seed in range(4):
        model = drqn(6, seed, observation_type, cell=cell, use_previous_reward=use_previous_reward)
        for length in (3, 6):
            batched = greedy_rollouts(model.q_net, length, record_actions=True)
            for i, layout in enumerate(("up", "down")):
                actions, total, steps = env_rollout(model, length, layout, observation_type)
                assert batched.actions[i, : batched.steps[i]].tolist() == actions
                assert batched.returns[i] == pytest.approx(total, abs=1e-9)
                assert batched.steps[i] == steps
                env = gym.make("TMaze-v0", length=length, observation_type=observation_type)
                assert play_greedy(model, env, layout) == pytest.approx(
                    (batched.returns[i], batched.steps[i])
                )
                bumped |= any(a != RIGHT for a in actions[:-1])
            env = gym.make("TMaze-v0", length=length, observation_type=observation_type)
            assert optimal_at(model.q_net, length) == is_tmaze_optimal(model, env)
    assert bumped  # the paths are not all straight: the previous action and reward inputs are exercised


def test_max_steps_and_the_early_verdict_agree_with_playing_out():
    model = drqn(5, 0)
    full = greedy_rollouts(model.q_net, 5, record_actions=True)
    cut = greedy_rollouts(model.q_net, 5, max_steps=3, record_actions=True)
    assert (cut.steps == np.minimum(full.steps, 3)).all()
    assert (cut.actions == full.actions[:, : cut.actions.shape[1]]).all()
    for seed in range(6):
        q_net = drqn(5, seed).q_net
        for length in (2, 5, 9):
            decided = greedy_rollouts(q_net, length, max_steps=length + 1, stop_when_not_optimal=True)
            played = greedy_rollouts(q_net, length, max_steps=length + 1)
            optimal = (played.returns == 4.0) & (played.steps == length + 1)
            assert not (decided.decided & optimal).any()  # a cut maze was not optimal
            assert ((decided.returns == 4.0) & (decided.steps == length + 1) == optimal).all()


def test_several_networks_played_together_play_as_each_alone():
    """Networks of different cells and encodings in one vector env: the same episodes as one at a time,
    also when the early verdict stops some networks' mazes long before others'."""
    nets = [
        drqn(6, 0).q_net,
        drqn(6, 1, cell="lru").q_net,
        drqn(6, 2, "onehot", use_previous_reward=False).q_net,
        drqn(6, 3, cell="nbrc").q_net,
    ]
    for length in (3, 6, 40):
        together = greedy_rollouts(nets, length, record_actions=True)
        assert together.returns.shape == (2 * len(nets),)
        for k, net in enumerate(nets):
            alone = greedy_rollouts(net, length, record_actions=True)
            rows = slice(2 * k, 2 * k + 2)
            assert (together.returns[rows] == alone.returns).all() and (
                together.steps[rows] == alone.steps
            ).all()
            for i in range(2):
                steps = alone.steps[i]
                assert (together.actions[2 * k + i, :steps] == alone.actions[i, :steps]).all()
        for flags in ({"max_steps": length + 1, "stop_when_not_optimal": True}, {"max_steps": 2}):
            together = greedy_rollouts(nets, length, **flags)
            for k, net in enumerate(nets):
                alone = greedy_rollouts(net, length, **flags)
                assert (together.steps[2 * k : 2 * k + 2] == alone.steps).all()
                assert (together.decided[2 * k : 2 * k + 2] == alone.decided).all()
        assert optimal_at_each(nets, length) == [optimal_at(net, length) for net in nets]
    with pytest.raises(ValueError, match="non-empty sequence"):
        greedy_rollouts([], 3)


def test_a_trained_policy_is_evaluated_as_the_env_sees_it(tmp_path, capsys):
    """A DRQN from a tiny run (T-Maze L = 2, warmed-up GRU) under both evaluations, up to L' = 30, and
    through the command mm-evaluate-tmaze."""
    from experiments.tmaze import run_tmaze_experiment

    path = tmp_path / "model.zip"
    result = run_tmaze_experiment(
        length=2,
        seed=0,
        episodes=80,
        buffer_size=256,
        warmup_steps=5,
        stop_when_optimal=True,
        save_path=str(path),
    )
    model = DRQN.load(path, device="cpu")
    assert result["optimal_at_end"]
    # the runner's model acts, is checked and is saved with its averaged network θ̄ (round 11)
    assert model.policy.acting_net is model.policy.q_net_average
    lengths = (2, 3, 7, 30)
    for length in lengths:
        assert optimal_at(model.policy.acting_net, length) == is_tmaze_optimal(
            model, gym.make("TMaze-v0", length=length)
        )
        batched = greedy_rollouts(model.policy.acting_net, length, record_actions=True)
        for i, layout in enumerate(("up", "down")):
            actions, total, steps = env_rollout(model, length, layout)
            assert batched.actions[i, : batched.steps[i]].tolist() == actions
            assert (batched.returns[i], batched.steps[i]) == (pytest.approx(total), steps)
    rows = evaluate_tmaze.run([str(path), "--lengths", *map(str, lengths)])
    for row, length in zip(rows, lengths, strict=True):
        assert row["optimal"] == optimal_at(model.policy.acting_net, length)
        env = gym.make("TMaze-v0", length=length)
        assert (row["return_down"], row["steps_down"]) == pytest.approx(play_greedy(model, env, "down"))
    assert "optimal" in capsys.readouterr().out
    other = tmp_path / "untrained.zip"
    drqn(2, 5).save(other)
    rows = evaluate_tmaze.run([str(path), str(other), "--lengths", "2", "30"])
    assert [(r["model"], r["length"]) for r in rows] == [
        (str(path), 2),
        (str(path), 30),
        (str(other), 2),
        (str(other), 30),
    ]
    untrained = DRQN.load(other, device="cpu")
    assert [r["optimal"] for r in rows] == [
        optimal_at(m.policy.acting_net, n) for m in (model, untrained) for n in (2, 30)
    ]
    assert f"model 1: {other}" in capsys.readouterr().out
    capsys.readouterr()
    for bad, said in ((tmp_path / "missing.zip", "no DRQN model file at"), (tmp_path / "bad.zip", "bad.zip")):
        if bad.name == "bad.zip":
            bad.write_bytes(b"not a model")
        assert evaluate_tmaze.main([str(bad), "--lengths", "2"]) == 2  # one line, no traceback
        err = capsys.readouterr().err
        assert err.startswith("error: ") and said in err and err.count("\n") == 1
    for flags, said in (
        (["--lengths", "2", "0"], "lengths must be an integer >= 1; got 0"),
        (["--device", "abacus"], "device must be a torch device such as cpu or cuda, got 'abacus'"),
    ):  # named by the flags' parsing (tyro's usage error, exit 2), not a torch or env traceback
        with pytest.raises(SystemExit) as exited:
            evaluate_tmaze.run([str(path), *flags])
        message = " ".join(capsys.readouterr().err.replace("│", " ").split())  # tyro's box, any width
        assert exited.value.code == 2 and said in message


# --------------------------------------------------------------------------------------------
# Hand-set memories: one decays (one attractor), one holds (two attractors)
# --------------------------------------------------------------------------------------------

OBS_UP_INPUT, OBS_DOWN_INPUT, JUNCTION_INPUT = 4, 5, 7  # x = (one-hot a_{t-1}, one-hot o_t, r_{t-1})


def hand_set(memory: str, slow: str | None = None) -> DRQN:
    """A 1 × 2 GRU DRQN for the T-Maze: unit 0 remembers the layout (+1 up, -1 down), unit 1 is +1 at
    the junction and -1 elsewhere; the head goes Right in the corridor and Up/Down by unit 0's sign.

    ``memory="frozen"``: unit 0's update gate is exactly 1 after the start: ``h`` is held unchanged.
    ``memory="leaky"``: unit 0 decays, ``h ← 0.9 h + 0.1 tanh(0.02)`` (one attractor ``h* = 0.02``), so
    a down layout's ``h = -1`` turns positive after ~38 steps. ``"bistable"``: ``h ← tanh(3 h + 0.02)``,
    attractors ``±0.995``: held forever.

    ``slow`` adds a unit 2 (1 × 3) that is 0 after the first observation and creeps towards
    ``tanh(5) ≈ 1`` at every later step, ``h ← (1 − ε) h + ε tanh(5)`` with ``ε = 10⁻⁶`` (update gate
    ``1 − ε``): an eigenvalue ``1 − 10⁻⁶`` of the corridor step, neutral up to ``L' = 10⁵`` (like the trained
    GRUs' 0.9999995), and ``h ≈ 1 − e^(−ε L')`` at the junction of corridor ``L'`` (0.01 at 10⁴, 0.095 at
    10⁵). ``slow="ignored"``: the head does not read it. ``slow="read"``: it adds ``40 h`` to Up, and the
    down layout (``h_0 = -0.995``) turns Up at the junction once ``40 h > 2 · 0.995``: from ``L' ≈ 51 000``.
    """
    size = 2 if slow is None else 3
    model = drqn(10, 0, hidden_size=size, num_layers=1)
    gru = model.q_net.rnn.layers[0].rnn
    r, z, n = 0, size, 2 * size  # the rows of the gates in weight_ih_l0, bias_ih_l0, weight_hh_l0
    with torch.no_grad():
        for p in gru.parameters():
            p.zero_()
        w_ih, b_ih, w_hh = gru.weight_ih_l0, gru.bias_ih_l0, gru.weight_hh_l0
        b_ih[r : r + size] = 20.0  # r = 1
        if memory == "leaky":
            b_ih[z] = math.log(0.9 / 0.1)  # z = 0.9 in the corridor
            w_ih[z, [OBS_UP_INPUT, OBS_DOWN_INPUT]] = -40.0  # z = 0 at the start: h = n = ±1
        elif memory == "frozen":
            b_ih[z] = 100.0  # z = 1 exactly (float32) in the corridor: h is held, a neutral direction
            w_ih[z, [OBS_UP_INPUT, OBS_DOWN_INPUT]] = -200.0  # z = 0 at the start: h = n = ±1
        else:
            b_ih[z] = -20.0  # z = 0
            w_hh[n, 0] = 3.0  # n = tanh(3 h + ...): bistable
        b_ih[z + 1] = -20.0  # unit 1: z = 0, no memory
        w_ih[n, OBS_UP_INPUT], w_ih[n, OBS_DOWN_INPUT], b_ih[n] = 5.0, -5.0, 0.02
        w_ih[n + 1, JUNCTION_INPUT], b_ih[n + 1] = 10.0, -5.0
        head = model.q_net.head
        weight = [[0.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-1.0, 1.0]]
        if slow is not None:
            epsilon = 1e-6
            b_ih[z + 2] = math.log((1 - epsilon) / epsilon)  # z = 1 - ε after the start
            w_ih[z + 2, [OBS_UP_INPUT, OBS_DOWN_INPUT]] = -40.0  # z = 0 at the start: h = n = 0
            b_ih[n + 2] = 5.0
            w_ih[n + 2, [OBS_UP_INPUT, OBS_DOWN_INPUT]] = -5.0
            weight = [row + [40.0 if slow == "read" and k == UP else 0.0] for k, row in enumerate(weight)]
        head.weight.copy_(torch.tensor(weight))
        head.bias.copy_(torch.tensor([0.0, -1.0, -5.0, -1.0]))
        assert (RIGHT, UP, LEFT, DOWN) == (0, 1, 2, 3)
    model.q_net_target.load_state_dict(model.q_net.state_dict())
    return model


def first_failure(model: DRQN, lengths: range, batched: bool) -> int | None:
    for length in lengths:
        if batched:
            ok = optimal_at(model.q_net, length)
        else:
            ok = is_tmaze_optimal(model, gym.make("TMaze-v0", length=length))
        if not ok:
            return length
    return None


def test_a_decaying_memory_is_optimal_at_short_horizons_only():
    leaky = hand_set("leaky")
    rows = {r["length"]: r["optimal"] for r in horizon_optimality(leaky.q_net, (1, 20, 100, 10_000))}
    assert rows == {1: True, 20: True, 100: False, 10_000: False}
    # the horizon where it breaks is the same under the env's rollouts: h = 0.02 - 1.02 * 0.9^t > 0 at t = 38
    assert first_failure(leaky, range(30, 45), batched=True) == first_failure(
        leaky, range(30, 45), batched=False
    )
    assert 35 <= first_failure(leaky, range(30, 45), batched=True) <= 42
    limit = corridor_attractors(leaky.q_net, steps=10_000)  # one attractor: both layouts end together
    assert limit["distance"] < 1e-4 and limit["junction_actions"] == [UP, UP]
    assert not limit["junction_correct"]


def test_a_held_memory_is_optimal_at_every_horizon():
    bistable = hand_set("bistable")
    rows = horizon_optimality(bistable.q_net, (1, 20, 100, 10_000))
    assert all(r["optimal"] for r in rows), rows
    assert is_tmaze_optimal(bistable, gym.make("TMaze-v0", length=100))
    limit = corridor_attractors(bistable.q_net, steps=10_000)  # two attractors, each read as its layout
    assert limit["distance"] > 1.9 and limit["junction_correct"]


def test_the_horizon_diagnosis_predicts_from_the_training_length_alone():
    """The bistable memory is at its attractors ±0.995 after 20 steps (slope 3 (1 − 0.995²) ≈ 0.03 there)
    and reads them right: predicted to generalise, as it does. The leaky one is optimal at L = 20 but still
    moving (ρ = 0.9, 0.14 from its one attractor h* = 0.02, read Up in both layouts): not predicted, and it
    fails at L' = 100; the settling steps, played, find its first failure."""
    bistable, leaky = hand_set("bistable").q_net, hand_set("leaky").q_net
    held = horizon_diagnosis(bistable, 20)
    assert held["optimal_path"] and held["attractor_readout"] and held["predicts_generalisation"]
    assert max(held["distance_to_attractor"]) < 1e-6 and held["separation"] == pytest.approx(
        2 * 0.995, abs=0.01
    )
    assert max(held["spectral_radius"]) < 0.1
    fading = horizon_diagnosis(leaky, 20)
    assert fading["optimal_path"] and optimal_at(leaky, 20)
    assert fading["spectral_radius"] == pytest.approx([0.9, 0.9], abs=1e-3)
    assert 0.05 < max(fading["distance_to_attractor"]) < 0.3 and fading["separation"] < 1e-4
    assert not fading["attractor_readout"] and not fading["predicts_generalisation"]
    assert not horizon_diagnosis(leaky, 100)["optimal_path"]
    # a unit held by a saturated gate (eigenvalue exactly 1, no residual) holds at every length: left out
    frozen = hand_set("frozen").q_net
    assert optimal_at(frozen, 100_000)
    held = horizon_diagnosis(frozen, 20)
    assert held["predicts_generalisation"] and max(held["spectral_radius"]) < 1e-6  # unit 1 only
    # the settled corridor (10 L steps, played) shows where the leaky memory breaks: the down layout turns Up
    assert fading["settle"] == 200 and fading["predicted_horizon"] + 1 == first_failure(
        hand_set("leaky"), range(30, 45), batched=True
    )
    assert fading["readout_margin"][0] > 0 > fading["readout_margin"][1]
    bad = (("horizon", 20, "an integer >= 21"), ("settle", -1, "None or an integer >= 0"))
    for name, value, allowed in bad:
        with pytest.raises(ValueError, match=f"{name} must be {allowed}; got {value}"):
            horizon_diagnosis(leaky, 20, **{name: value})


def test_the_linear_drift_is_the_iterated_linear_map():
    """Σ_{j<n} J^j r by repeated squaring = the n-step iteration of x ← r + J x from 0; per eigen-direction
    (λ^n − 1) / (λ − 1) times r's component: bounded for |λ| < 1, n times it for λ = 1."""
    jacobian = torch.tensor([[0.5, 0.2, 0.0], [0.0, 1.0, 0.0], [0.1, 0.0, -0.9]])
    step = torch.tensor([0.3, -0.01, 0.2])
    for n in (0, 1, 2, 7, 64, 1000):
        x = torch.zeros(3, dtype=torch.float64)
        for _ in range(n):
            x = step.double() + jacobian.double() @ x
        assert linear_drift(jacobian, step, n).tolist() == pytest.approx(x.tolist(), rel=1e-9, abs=1e-12)
    assert float(linear_drift(jacobian, step, 10**5)[1]) == pytest.approx(-0.01 * 10**5)  # the neutral unit
    assert float(linear_drift(torch.tensor([[0.9]]), torch.tensor([0.1]), 10**5)) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="steps must be an integer >= 0"):
        linear_drift(jacobian, step, -1)


def test_the_horizon_diagnosis_tells_a_harmless_neutral_direction_from_a_drift_into_the_wrong_arm():
    """A unit with the corridor eigenvalue 1 − 10⁻⁶ (neutral up to 10⁵ steps, like a saturated update gate)
    creeps by ~10⁻⁶ a step. Ignored by the head, it is harmless: optimal at every L' (here 10⁵), predicted;
    the old rule (ρ < 1, distance to the attractor ‖f(s) − s‖ / (1 − ρ) ≈ 1) could not tell. Read by the
    head, it turns the down layout Up at the junction past L' ≈ 52 000: predicted up to 31 623, the last
    checked length before it, not at 10⁵."""
    harmless, drifting = hand_set("bistable", "ignored").q_net, hand_set("bistable", "read").q_net
    assert optimal_at(harmless, 100_000)
    assert optimal_at(drifting, 31_623) and not optimal_at(drifting, 56_234)
    for q_net in (harmless, drifting):
        d = horizon_diagnosis(q_net, 20)
        assert d["optimal_path"] and d["neutral_dimensions"] == [1, 1]
        assert d["spectral_radius"] == pytest.approx([1 - 1e-6] * 2, abs=1e-7)
        assert min(d["distance_to_attractor"]) > 0.9  # the attractor view: far from it
        # the drift by 10⁵ steps, tanh(5) (1 − (1 − ε)^(10⁵ − 220)) ≈ 0.09, all along unit 2
        assert d["drift_bound"] == pytest.approx([0.09, 0.09], abs=0.01)
    held = horizon_diagnosis(harmless, 20)
    assert held["predicts_generalisation"] and held["predicted_horizon"] == 100_000
    assert min(held["readout_margin"]) > 1.9  # the readout does not see the drift
    drifted = horizon_diagnosis(drifting, 20)
    assert not drifted["predicts_generalisation"] and drifted["predicted_horizon"] == 31_623
    assert max(drifted["readout_margin"]) < 0  # both layouts read wrong by 10⁵ (Up in the corridor, too)
    assert horizon_diagnosis(drifting, 20, horizon=31_623)["predicts_generalisation"]


def test_the_evaluation_command_prints_the_diagnosis(tmp_path, capsys):
    paths = [tmp_path / "bistable.zip", tmp_path / "leaky.zip"]
    for path, memory in zip(paths, ("bistable", "leaky"), strict=True):
        hand_set(memory).save(path)
    evaluate_tmaze.run([*map(str, paths), "--lengths", "20", "--diagnose-length", "20"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "diagnosis at L = 20" in line]
    assert len(lines) == 2
    assert lines[0].startswith("model 0: ")
    assert lines[0].endswith("-> stays optimal at every longer corridor up to L' = 100000")
    assert lines[1].startswith("model 1: ") and lines[1].endswith("-> predicted up to L' = 37 only")


def test_the_margins_along_the_optimal_path_decide_optimality():
    """Every margin > 0 exactly when the greedy policy is optimal; the hand-set memories' margins are
    known: Right leads by 3 − |h_0| − (1 + h_1) ≈ 2 in the corridor, the turn by 2 |h_0| at the junction."""
    bistable, leaky = hand_set("bistable"), hand_set("leaky")
    margins = optimal_path_margins(bistable.q_net, 100)
    assert margins.shape == (2, 101)
    h = 1.0
    for _ in range(200):  # the up attractor of h <- tanh(3 h + 0.02); the down one is -tanh(3 h - 0.02)
        h = math.tanh(3 * h + 0.02)
    h_down = h
    for _ in range(200):
        h_down = math.tanh(3 * h_down - 0.02)
    assert margins[:, :-1] == pytest.approx(np.full((2, 100), 2.0), abs=1e-2)
    assert margins[:, -1] == pytest.approx([2 * h, 2 * h_down], abs=1e-3)
    assert optimal_at(bistable.q_net, 100)
    # the leaky memory: down's h_0 = -1 decays to +0.02, so the junction margin of the down layout
    # turns negative after ~38 steps (and the corridor stays right)
    short, long = optimal_path_margins(leaky.q_net, 20), optimal_path_margins(leaky.q_net, 100)
    assert (short > 0).all() and optimal_at(leaky.q_net, 20)
    assert (long[:, :-1] > 1.9).all() and long[1, -1] < 0 < long[0, -1] and not optimal_at(leaky.q_net, 100)
    for seed in range(6):  # random networks: the margins agree with the rollouts, bumps and turns included
        q_net = drqn(6, seed).q_net
        for length in (1, 3, 6):
            assert bool((optimal_path_margins(q_net, length) > 0).all()) == optimal_at(q_net, length)
    with pytest.raises(ValueError, match="length"):
        optimal_path_margins(bistable.q_net, 0)


def test_the_optimal_path_errors_name_the_wrong_steps():
    """The leaky memory forgets the Down cue by L = 100: its only wrong step is the Down layout's junction,
    where Up beats Down; the bistable memory is right everywhere. On random networks a wrong step exists
    exactly when the greedy policy is not optimal, and each one's margin is the Q-values' difference."""
    bistable, leaky = hand_set("bistable"), hand_set("leaky")
    for layout in optimal_path_errors(bistable.q_net, 100, 0.98):
        assert layout["wrong"] == [] and layout["smallest_margin"] > 1.9
    up, down = optimal_path_errors(leaky.q_net, 100, 0.98)
    assert (up["layout"], down["layout"]) == ("up", "down")
    assert up["wrong"] == [] and down["at"] == 100 and down["smallest_margin"] < 0
    assert down["optimal_margin"] == pytest.approx(optimal_margins(100, 0.98)[-1])
    (junction,) = down["wrong"]
    assert (junction["step"], junction["optimal"], junction["greedy"]) == (100, "Down", "Up")
    assert junction["q_star"] == 4.0 and junction["q_greedy"] - junction["q_optimal"] == pytest.approx(
        -down["smallest_margin"]
    )
    short = optimal_path_errors(leaky.q_net, 20, 0.98)
    assert all(layout["wrong"] == [] for layout in short)
    for seed in range(6):
        q_net = drqn(6, seed).q_net
        for length in (1, 3, 6):
            layouts = optimal_path_errors(q_net, length, 0.5)
            assert all(layout["wrong"] == [] for layout in layouts) == optimal_at(q_net, length)
            for layout in layouts:
                for w in layout["wrong"]:
                    assert w["q_greedy"] > w["q_optimal"]
                    assert w["q_star"] == pytest.approx(4 * 0.5 ** (length - w["step"]))
    with pytest.raises(ValueError, match="gamma"):
        optimal_path_errors(bistable.q_net, 20, 1.5)


def test_the_evaluation_command_prints_the_wrong_steps(tmp_path, capsys):
    path = tmp_path / "leaky.zip"
    hand_set("leaky").save(path)
    evaluate_tmaze.run([str(path), "--lengths", "20", "100", "--margins"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "layout: smallest margin" in line]
    assert len(lines) == 4
    assert lines[0].startswith("at L = 20, up layout") and lines[0].endswith("right at every step")
    assert lines[3].startswith("at L = 100, down layout")
    assert "wrong at 1 step: step 100: Up " in lines[3]
    assert "over Down" in lines[3] and "(Q* 4.000)" in lines[3]


def test_the_optimal_q_functions_margins():
    """Right over a bump or a step back, by hand: L = 1 and 2 at γ = 0.5 (Right from the start is worth
    4 γ^L, a bump −0.1 + γ Q(Right), a step back γ² Q(Right)), and the figures of the docstring."""
    assert optimal_margins(1, 0.5) == pytest.approx([4 * 0.5 - (-0.1 + 0.5 * 2.0), 4 - (-0.1 + 2.0)])
    assert optimal_margins(2, 0.5) == pytest.approx([1.0 - 0.4, 2.0 - 0.9, 2.1])
    at_50 = optimal_margins(50, 0.98)
    assert at_50[1] == pytest.approx(4 * 0.98**49 * (1 - 0.98**2)) and 0.05 < at_50[1] < 0.07
    assert at_50[-1] == pytest.approx(4 * (1 - 0.98**2))  # a step back beats a bump at the junction
    assert (optimal_margins(100, 0.98) > 0).all()
    with pytest.raises(ValueError, match="gamma"):
        optimal_margins(5, 0.0)


def test_the_default_gamma_keeps_the_corridor_margin_above_its_floor():
    """The paper's 0.98 while Q*'s smallest corridor margin is at least 0.01 (up to L = 137: every length of
    the paper's Fig. 13 but 200), then the γ that maximises that margin (the runner's default)."""

    def smallest(length: int, gamma: float) -> float:
        return optimal_margins(length, gamma)[:-1].min()

    assert [default_gamma(length) for length in (1, 20, 50, 100, 137)] == [0.98] * 5
    assert smallest(137, 0.98) >= MARGIN_FLOOR > smallest(138, 0.98)
    for length in (138, 200, 500):
        gamma = default_gamma(length)
        assert gamma == pytest.approx(math.sqrt((length - 1) / (length + 1)))
        assert smallest(length, gamma) > max(smallest(length, gamma - 1e-3), smallest(length, gamma + 1e-3))
        assert smallest(length, gamma) > smallest(length, 0.98)
    assert (
        default_gamma(200) == pytest.approx(0.99501, abs=1e-5) and smallest(200, default_gamma(200)) > 0.014
    )
    with pytest.raises(ValueError, match="length"):
        default_gamma(0)
