"""Temporal horizon generalisation (``experiments.horizon``): the batched greedy rollouts equal the
Gymnasium env's, the check tells a decaying memory from a held one, the copy MSE at T' equals a direct
computation, the grids' presets hold the intended runs, a policy no longer optimal at the end of training
is shown in the tables, and ``scripts/reproduce.py horizon --preset smoke`` writes its tables and plot."""

from __future__ import annotations

import json
import math
import sys
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

import tmaze_gym  # noqa: F401  (registers TMaze-v0)
from experiments.grid import is_finished
from experiments.horizon import (
    copy_mse,
    copy_test_seed,
    corridor_attractors,
    evaluate_supervised,
    greedy_rollouts,
    horizon_optimality,
    load_supervised_run,
    markdown_tables,
    optimal_at,
    optimal_at_each,
    summarise_horizon,
    write_corridor_attractors,
)
from experiments.presets import build_grid
from experiments.tmaze import TMazeConfig, is_tmaze_optimal
from recurrent_q.callbacks import play_greedy
from recurrent_q.drqn import DRQN
from recurrent_q.policies import RecurrentQState
from supervised.datasets import CopyFirstInput
from supervised.train import SupervisedConfig, evaluate, make_model, train
from tmaze_gym.tmaze import DOWN, LEFT, RIGHT, UP

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))


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
    through scripts/evaluate_tmaze.py."""
    import evaluate_tmaze

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
    lengths = (2, 3, 7, 30)
    for length in lengths:
        assert optimal_at(model.q_net, length) == is_tmaze_optimal(model, gym.make("TMaze-v0", length=length))
        batched = greedy_rollouts(model.q_net, length, record_actions=True)
        for i, layout in enumerate(("up", "down")):
            actions, total, steps = env_rollout(model, length, layout)
            assert batched.actions[i, : batched.steps[i]].tolist() == actions
            assert (batched.returns[i], batched.steps[i]) == (pytest.approx(total), steps)
    rows = evaluate_tmaze.main([str(path), "--lengths", *map(str, lengths)])
    for row, length in zip(rows, lengths, strict=True):
        assert row["optimal"] == optimal_at(model.q_net, length)
        env = gym.make("TMaze-v0", length=length)
        assert (row["return_down"], row["steps_down"]) == pytest.approx(play_greedy(model, env, "down"))
    assert "optimal" in capsys.readouterr().out
    other = tmp_path / "untrained.zip"
    drqn(2, 5).save(other)
    rows = evaluate_tmaze.main([str(path), str(other), "--lengths", "2", "30"])
    assert [(r["model"], r["length"]) for r in rows] == [
        (str(path), 2),
        (str(path), 30),
        (str(other), 2),
        (str(other), 30),
    ]
    untrained = DRQN.load(other, device="cpu")
    assert [r["optimal"] for r in rows] == [
        optimal_at(m.q_net, n) for m in (model, untrained) for n in (2, 30)
    ]
    assert f"model 1: {other}" in capsys.readouterr().out


# --------------------------------------------------------------------------------------------
# Hand-set memories: one decays (one attractor), one holds (two attractors)
# --------------------------------------------------------------------------------------------

OBS_UP_INPUT, OBS_DOWN_INPUT, JUNCTION_INPUT = 4, 5, 7  # x = (one-hot a_{t-1}, one-hot o_t, r_{t-1})


def hand_set(memory: str) -> DRQN:
    """A 1 × 2 GRU DRQN for the T-Maze: unit 0 remembers the layout (+1 up, -1 down), unit 1 is +1 at
    the junction and -1 elsewhere; the head goes Right in the corridor and Up/Down by unit 0's sign.

    ``memory="leaky"``: unit 0 decays, ``h ← 0.9 h + 0.1 tanh(0.02)`` (one attractor ``h* = 0.02``), so
    a down layout's ``h = -1`` turns positive after ~38 steps. ``"bistable"``: ``h ← tanh(3 h + 0.02)``,
    attractors ``±0.995``: held forever.
    """
    model = drqn(10, 0, hidden_size=2, num_layers=1)
    gru = model.q_net.rnn.layers[0].rnn
    with torch.no_grad():
        for p in gru.parameters():
            p.zero_()
        w_ih, b_ih, w_hh = (
            gru.weight_ih_l0,
            gru.bias_ih_l0,
            gru.weight_hh_l0,
        )  # rows: r (0-1), z (2-3), n (4-5)
        b_ih[0:2] = 20.0  # r = 1
        if memory == "leaky":
            b_ih[2] = math.log(0.9 / 0.1)  # z = 0.9 in the corridor
            w_ih[2, [OBS_UP_INPUT, OBS_DOWN_INPUT]] = -40.0  # z = 0 at the start: h = n = ±1
        else:
            b_ih[2] = -20.0  # z = 0
            w_hh[4, 0] = 3.0  # n = tanh(3 h + ...): bistable
        b_ih[3] = -20.0  # unit 1: z = 0, no memory
        w_ih[4, OBS_UP_INPUT], w_ih[4, OBS_DOWN_INPUT], b_ih[4] = 5.0, -5.0, 0.02
        w_ih[5, JUNCTION_INPUT], b_ih[5] = 10.0, -5.0
        head = model.q_net.head
        head.weight.copy_(torch.tensor([[0.0, -1.0], [1.0, 1.0], [0.0, 0.0], [-1.0, 1.0]]))
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


# --------------------------------------------------------------------------------------------
# Copy first input at T'
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def copy_run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("copy_run")
    config = SupervisedConfig(
        task="copy",
        T=10,
        cell="gru",
        width=8,
        epochs=2,
        num_train=80,
        num_test=40,
        vaa_iterations=0,
        seed=3,
        logdir=str(logdir),
        progress=False,
    )
    return logdir, train(config)


def test_copy_mse_at_longer_horizons_equals_a_direct_computation(copy_run):
    logdir, result = copy_run
    config, model = load_supervised_run(logdir)
    for name, value in result.model.state_dict().items():  # best.pt holds the reported weights
        assert torch.equal(model.state_dict()[name], value)
    rows = evaluate_supervised(logdir, (10, 25, 63), num_sequences=16, seed=5, chunk=7)
    for row in rows:
        T = row["T"]
        assert row["data_seed"] == copy_test_seed(5, T)
        data = CopyFirstInput(16, T, row["data_seed"])
        direct_config = SupervisedConfig(**{**vars(config), "T": T})
        direct = make_model(direct_config, data)  # readout at step T - 1, whole sequences at once
        direct.load_state_dict(torch.load(logdir / "best.pt", weights_only=True))
        expected, _ = evaluate(direct, data, data.data, data.targets)
        assert row["mse"] == pytest.approx(expected, rel=1e-5)
        assert copy_mse(model, T, 16, row["data_seed"], chunk=T) == pytest.approx(expected, rel=1e-5)
    assert len({round(r["mse"], 6) for r in rows}) == 3


def test_evaluate_supervised_script(copy_run, tmp_path, capsys):
    import evaluate_supervised

    logdir, _ = copy_run
    out = tmp_path / "rows.json"
    rows = evaluate_supervised.main([str(logdir), "--T", "12", "40", "--sequences", "8", "--json", str(out)])
    assert [r["T"] for r in rows] == [12, 40]
    assert json.loads(out.read_text())[1]["mse"] == pytest.approx(rows[1]["mse"])
    assert "test MSE" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="result.json"):
        evaluate_supervised.main([str(tmp_path), "--T", "12"])


# --------------------------------------------------------------------------------------------
# The grids (experiments.presets) and their tables
# --------------------------------------------------------------------------------------------


def test_the_committed_small_grid_is_the_small_preset():
    # every run of `small` is finished under results/horizon/small with the settings it has now
    root = ROOT / "results" / "horizon" / "small"
    runs = build_grid("horizon", "small")
    assert len(runs) == 90 and all(is_finished(run, root) for run in runs)
    tasks = [(r.config["task"], r.config.get("length")) for r in runs]
    assert tasks == [("tmaze", 20)] * 30 + [("copy", None)] * 30 + [("tmaze", 50)] * 30


def test_the_paper_and_smoke_grids():
    paper = build_grid("horizon", "paper")
    assert len(paper) == 3 * 10 * 5 + 10 * 5
    assert [r.config["task"] for r in paper[:50]] == ["tmaze"] * 50
    assert [r.config["task"] for r in paper[50:100]] == ["copy"] * 50
    assert {r.config["length"] for r in paper[100:]} == {50, 100}
    assert all(r.config["stop_when_optimal"] for r in paper if r.config["task"] == "tmaze")
    assert [r.name for r in build_grid("horizon", "smoke")] == [
        "task=tmaze__length=2__cell=gru__version=warmup__seed=0",
        "task=tmaze__length=2__cell=lru__version=classic__seed=0",
        "task=copy__T=10__cell=gru__version=warmup__seed=0",
        "task=copy__T=10__cell=lru__version=classic__seed=0",
    ]
    smoke_copy = build_grid("horizon", "smoke")[2].config
    assert smoke_copy["vaa_steps"] == 20 and smoke_copy["warmup_config"] == {"steps": 5}


def test_the_train_on_grid_is_small_at_l20_trained_to_the_end():
    runs = build_grid("horizon", "train-on")
    pairs = [
        ("gru", "classic"),
        ("gru", "warmup"),
        ("gru", "double"),
        ("lstm", "warmup"),
        ("nbrc", "classic"),
    ]
    assert [(r.config["cell"], r.config["version"], r.seed) for r in runs] == [
        (cell, version, seed) for cell, version in pairs for seed in range(3)
    ]
    small = {r.name: r.config for r in build_grid("horizon", "small")}
    for run in runs:
        assert run.config["task"] == "tmaze" and run.config["length"] == 20 and run.config["episodes"] == 300
        assert run.config == {**small[run.name], "stop_when_optimal": False}  # the rest as in `small`
        tmaze = {k: v for k, v in run.config.items() if k not in ("task", "horizons", "eval_vaa")}
        TMazeConfig(**tmaze)  # unknown or misspelt settings would raise here
    with pytest.raises(ValueError, match="preset must be one of"):
        build_grid("copy", "train-on")
    with pytest.raises(ValueError, match="train-on for horizon"):
        build_grid("horizon", "huge")


def test_a_policy_no_longer_optimal_at_the_end_is_shown_and_not_evaluated():
    runs = build_grid("horizon", "train-on")[:3]  # GRU classic, seeds 0, 1, 2
    horizons = [{"length": h, "optimal": h <= 100} for h in run_horizons(runs[0])]
    base = {"episodes": 300, "vaa": 0.5}
    results = {
        # optimal at 40, lost at 100, optimal again from 200 to the end: evaluated
        runs[0].name: {
            **base,
            "first_optimal_episode": 40,
            "optimal_at_end": True,
            "optimal_checks": [40, 45, 50] + list(range(200, 301, 5)),
            "horizons": horizons,
        },
        # optimal at 40 only: not optimal at the end, not evaluated
        runs[1].name: {
            **base,
            "first_optimal_episode": 40,
            "optimal_at_end": False,
            "optimal_checks": [40],
            "horizons": [],
        },
        runs[2].name: {
            **base,
            "first_optimal_episode": None,
            "optimal_at_end": False,
            "optimal_checks": [],
            "horizons": [],
        },
    }
    (row,) = summarise_horizon(runs, results)["tmaze"]
    assert (row["ever_optimal"], row["reached"]) == (2, 1)
    assert row["optimal"] == {50: 1, 100: 1, 1000: 0, 10000: 0, 100000: 0}
    assert row["first_optimal_episode"] == (40.0, 0.0)  # over the ever optimal seeds
    first, second, third = row["runs"]
    keys = ("optimal_checks", "checks_since_first", "last_optimal", "optimal_since")
    assert [first[k] for k in keys] == [24, 53, 300, 200]
    assert [second[k] for k in keys] == [1, 53, 40, None]
    assert [third[k] for k in keys] == [0, 0, None, None]
    text = markdown_tables({"tmaze": [row], "copy": []}, "t")
    assert "| 20 | gru | classic | 3 (0, 1, 2) | 2/3 | 1/3 | 1/1 | 1/1 | 0/1 | 0/1 | 0/1 | 40 ± 0 |" in text
    assert "| 20 | gru | classic | 0 | 40 (300) | ✓ | 24/53 | 300 | 200 | 0.500 | ✓ | ✓ | ✗ | ✗ | ✗ |" in text
    assert "| 20 | gru | classic | 1 | 40 (300) | ✗ | 1/53 | 40 | — | 0.500 | — | — | — | — | — |" in text
    assert "| 20 | gru | classic | 2 | never (300) | ✗ | — | — | — | 0.500 | — | — | — | — | — |" in text


def run_horizons(run) -> list[int]:
    return [int(h) for h in run.config["horizons"]]


# --------------------------------------------------------------------------------------------
# The smoke grid, end to end
# --------------------------------------------------------------------------------------------


def test_reproduce_horizon_smoke_writes_the_tables_and_the_plot(tmp_path):
    import reproduce

    assert (
        reproduce.main(
            ["horizon", "--preset", "smoke", "--out", str(tmp_path), "--workers", "1", "--no-progress"]
        )
        == 0
    )
    root = tmp_path / "horizon" / "smoke"
    text = (root / "results.md").read_text()
    assert (
        "### T-Maze" in text and "### Copy first input" in text and "L'=1,000" in text and "T'=1,000" in text
    )
    assert (root / "results.png").stat().st_size > 10_000
    tables = json.loads((root / "results.json").read_text())
    assert {row["cell"] for row in tables["tmaze"]} == {"gru", "lru"}
    assert all(row["mse"]["1000"] is not None for row in tables["copy"])
    metrics = json.loads(
        (root / "task=tmaze__length=2__cell=gru__version=warmup__seed=0" / "metrics.json").read_text()
    )
    assert metrics["optimal_at_length_batched"] == metrics["optimal_at_end"]
    if metrics["optimal_at_end"]:
        assert [h["length"] for h in metrics["horizons"]] == [2, 10, 1000]
        assert metrics["horizons"][0]["optimal"]  # L' = L: the training check, batched
    assert 0.0 < metrics["vaa"] <= 1.0
    rows = write_corridor_attractors("smoke", out=tmp_path, steps=1000)
    assert [(r["cell"], r["seed"]) for r in rows] == [("gru", 0), ("lru", 0)]
    assert "junction" in (root / "attractors.md").read_text()
