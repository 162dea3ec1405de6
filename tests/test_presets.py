"""The grids (``experiments.presets``): unique and seeded run names, cells of the zoo, the paper's sizes,
the horizon experiment's presets, and the committed ``results/horizon/small`` as its ``small`` grid."""

from __future__ import annotations

from pathlib import Path

import pytest

from experiments.registry import EXPERIMENTS, build_grid
from experiments.run_dirs import is_finished
from experiments.tmaze import TMazeConfig
from recurrent_q.cells import CELL_NAMES

ROOT = Path(__file__).resolve().parents[1]


def tmaze_config(run_config: dict) -> TMazeConfig:
    """The runner's settings of a horizon run (its config without the grid's own keys); unknown or misspelt
    settings raise here."""
    return TMazeConfig(**{k: v for k, v in run_config.items() if k not in ("task", "horizons", "eval_vaa")})


@pytest.mark.parametrize("experiment", ["copy", "denoising", "tmaze", "vaa-vs-loss", "psmnist", "plsmnist"])
@pytest.mark.parametrize("preset", ["small", "paper", "smoke"])
def test_grid_names_are_unique_and_seeded(experiment, preset):
    runs = build_grid(experiment, preset)
    assert runs
    assert len({run.name for run in runs}) == len(runs)
    for run in runs:
        assert run.config["seed"] == run.seed
        assert f"seed={run.seed}" in run.name


def test_the_grids_name_only_cells_of_the_zoo():
    """Every run of every grid and preset (the horizon experiment's own presets included) names a cell of
    CELL_NAMES (a memory-suites DRQN run in its settings; its RecurrentPPO runs use sb3-contrib's LSTM)."""
    runs = [
        run
        for experiment, entry in EXPERIMENTS.items()
        for preset in entry.presets
        for run in build_grid(experiment, preset)
    ]
    cells = {run.config["cell"] for run in runs if run.kind != "memory"}
    cells |= {
        run.config["settings"]["cell"] for run in runs if run.config.get("method", "").startswith("drqn")
    }
    assert "gru" in cells and cells <= set(CELL_NAMES)


def test_paper_grids_follow_the_paper():
    copy = build_grid("copy", "paper")
    assert {r.config["T"] for r in copy} == {50, 300, 600}
    assert all(
        r.config["hidden_size"] == 128 and r.config["num_layers"] == 1 and r.config["epochs"] == 50
        for r in copy
    )
    # warmable cells in three versions, bistable cells classic only
    pairs = {(r.config["cell"], r.config["version"]) for r in copy}
    assert ("gru", "double") in pairs and ("nbrc", "classic") in pairs and ("nbrc", "warmup") not in pairs
    assert {("lstm", "auxiliary"), ("gru", "auxiliary"), ("mgu", "auxiliary")} <= pairs  # Appendix H
    tmaze = build_grid("tmaze", "paper")
    assert {r.config["length"] for r in tmaze} == {20, 100, 200}
    denoising = build_grid("denoising", "paper")
    assert {(r.config["T"], r.config["N"]) for r in denoising} == {(200, 5), (200, 100)}
    plsmnist = build_grid("plsmnist", "paper")
    assert {r.config["N"] for r in plsmnist} == {72, 472}
    assert all(r.config["epochs"] == 70 for r in plsmnist)


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
        tmaze_config(run.config)
    with pytest.raises(ValueError, match="preset must be one of"):
        build_grid("copy", "train-on")
    expected = (
        "train-on, warmup-input, fixed-point, warmup-objective, hold, hold-drift-train-on, hold-obs, "
        "hold-obs-train-on, hold-al, hold-bistable, hold-nbrc, hold-nbrc-drift003, hold-nbrc-off, "
        "hold-cells, hold-nbrc-L50 for horizon"
    )
    with pytest.raises(ValueError, match=expected):
        build_grid("horizon", "huge")


def test_the_warmup_input_grid_changes_the_warmup_only_and_labels_each_recipe():
    runs = build_grid("horizon", "warmup-input")
    recipes = ["gaussian-200", "gaussian-5000", "data-200", "data-5000"]
    # seed after seed, the four recipes of each: a grid stopped early still compares them on equal seeds
    assert [(dict(r.labels)["recipe"], r.seed) for r in runs] == [(k, s) for s in range(5) for k in recipes]
    assert len({r.name for r in runs}) == 20
    paper = {r.seed: r.config for r in runs if dict(r.labels)["recipe"] == "gaussian-200"}
    for run in runs:
        changed = {
            k
            for k in run.config.keys() | paper[run.seed].keys()
            if run.config.get(k) != paper[run.seed].get(k)
        }
        assert changed <= {"warmup_held_input", "warmup_max_stabilisation", "warmup_c", "warmup_bptt_steps"}
        assert tmaze_config(run.config).cell == "gru"
    data = next(r for r in runs if dict(r.labels)["recipe"] == "data-5000")
    assert data.config["warmup_held_input"] == "data" and data.config["warmup_max_stabilisation"] == 5000
    # the fixed-point grid: the same runs but for the loss's fixed-point term
    fixed = {(dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "fixed-point")}
    assert len(fixed) == 30 and fixed["off", 3] == paper[3]
    assert fixed["fp1", 3] == {**paper[3], "fixed_point_coef": 1.0}
    assert fixed["fp1-train-on", 3] == {**paper[3], "fixed_point_coef": 1.0, "stop_when_optimal": False}


def test_the_hold_grid_changes_the_hold_term_only():
    runs = {(dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "hold")}
    assert len(runs) == 70 and {seed for _, seed in runs} == set(range(10))
    off = runs["off", 7]
    assert off == build_grid_config("warmup-input", "gaussian-200", 0) | {"seed": 7}
    assert runs["hold1", 7] == {**off, "hold_coef": 1.0, "hold_steps": 1000}
    assert runs["hold1-train-on", 7] == {**runs["hold1", 7], "stop_when_optimal": False}
    assert runs["hold1-10k", 7] == {**off, "hold_coef": 1.0, "hold_steps": 10_000}
    assert runs["hold1-10k-adv", 7] == {**runs["hold1-10k", 7], "hold_advantages": True}
    assert runs["hold1-10k-adv-train-on", 7] == {**runs["hold1-10k-adv", 7], "stop_when_optimal": False}
    assert runs["hold1-10k-adv-drift01", 7] == {**runs["hold1-10k-adv", 7], "hold_drift_coef": 0.1}
    obs = {
        (dict(r.labels)["recipe"], r.seed): r.config
        for preset in ("hold-obs", "hold-obs-train-on")
        for r in build_grid("horizon", preset)
    }
    assert len(obs) == 20
    drift = {
        (dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "hold-drift-train-on")
    }
    assert drift["hold1-10k-adv-drift01-train-on", 7] == {
        **runs["hold1-10k-adv-drift01", 7],
        "stop_when_optimal": False,
    }
    assert obs["obs-drift01", 7] == {**runs["hold1-10k-adv-drift01", 7], "hold_ends": "observation"}
    assert obs["obs-drift01-train-on", 7] == {**obs["obs-drift01", 7], "stop_when_optimal": False}
    assert tmaze_config(obs["obs-drift01", 7]).hold_ends == "observation"
    al = {(dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "hold-al")}
    assert len(al) == 20
    assert al["drift01-al5", 7] == {**runs["hold1-10k-adv-drift01", 7], "advantage_learning": 0.5}
    assert al["drift01-al5-train-on", 7] == {**al["drift01-al5", 7], "stop_when_optimal": False}
    assert tmaze_config(al["drift01-al5", 7]).advantage_learning == 0.5
    assert tmaze_config(runs["hold1", 7]).hold_coef == 1.0
    bistable = {
        (r.config["cell"], dict(r.labels)["recipe"], r.seed): r.config
        for r in build_grid("horizon", "hold-bistable")
    }
    assert len(bistable) == 40
    assert bistable["nbrc", "drift01", 4] == {
        **runs["hold1-10k-adv-drift01", 4],
        "cell": "nbrc",
        "version": "classic",
    }
    assert bistable["brc", "off", 0] == {**runs["off", 0], "cell": "brc", "version": "classic"}
    nbrc = {(dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "hold-nbrc")}
    assert len(nbrc) == 20 and {r.config["cell"] for r in build_grid("horizon", "hold-nbrc")} == {"nbrc"}
    assert nbrc["adv", 3] == {**runs["hold1-10k-adv", 3], "cell": "nbrc", "version": "classic"}
    assert nbrc["drift003", 3] == {**bistable["nbrc", "drift01", 3], "hold_drift_coef": 0.03}
    report = {
        (dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "hold-nbrc-drift003")
    }
    assert report["drift003", 3] == nbrc["drift003", 3]
    assert report["drift003-train-on", 3] == {**nbrc["drift003", 3], "stop_when_optimal": False}
    off = {(dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "hold-nbrc-off")}
    assert len(off) == 10
    # (the presets defined before round 21 keep the updates drift003 was measured with)
    assert off["drift003-off-train-on", 3] == {
        **report["drift003-train-on", 3],
        "hold_coef_after_optimal": 0.0,
        "train_mode": "histories",
    }
    tmaze_config(off["drift003-off-train-on", 3])
    cells = {
        (r.config["cell"], r.config["version"], r.seed): r.config for r in build_grid("horizon", "hold-cells")
    }
    r17 = {(recipe, seed): {**config, "train_mode": "histories"} for (recipe, seed), config in nbrc.items()}
    assert len(cells) == 27 and cells["nbrc", "classic", 2] == r17["drift003", 2]
    assert {cell for cell, _, _ in cells} == {"gru", "lstm", "mgu", "nbrc", "brc", "mingru", "lru"}
    for (cell, version, _), config in cells.items():
        assert config == {**r17["drift003", config["seed"]], "cell": cell, "version": version}
        tmaze_config(config)
    long = {(dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "hold-nbrc-L50")}
    assert long["drift003", 3] == {**r17["drift003", 3], "length": 50, "episodes": 600}
    assert long["drift003-train-on", 3] == {**long["drift003", 3], "stop_when_optimal": False}


def test_the_warmup_objective_grid_changes_the_warmup_objective_only():
    runs = {(dict(r.labels)["recipe"], r.seed): r.config for r in build_grid("horizon", "warmup-objective")}
    assert len(runs) == 20
    vaa = runs["vaa-data-5000", 2]
    assert vaa == {**build_grid_config("warmup-input", "data-5000", 2)}
    assert runs["variance-data-5000", 2] == {**vaa, "warmup_objective": "variance"}
    assert runs["variance-data-5000-fp1", 2] == {
        **vaa,
        "warmup_objective": "variance",
        "fixed_point_coef": 1.0,
    }
    assert runs["variance-data-5000-train-on", 2] == {
        **vaa,
        "warmup_objective": "variance",
        "stop_when_optimal": False,
    }
    assert tmaze_config({**vaa, "warmup_objective": "variance"}).warmup_objective == "variance"


def build_grid_config(preset: str, recipe: str, seed: int) -> dict:
    """The config of one run of a horizon preset's grid."""
    return next(
        r.config
        for r in build_grid("horizon", preset)
        if dict(r.labels)["recipe"] == recipe and r.seed == seed
    )


def test_a_grid_moved_to_a_first_seed_keeps_its_runs_and_names_a_bad_seed(tmp_path):
    """from_seed moves every run's seed (label and config), grid_root and reproduce_command name the moved
    grid's folder and command; a negative or non-integer first_seed is named."""
    from experiments.presets import from_seed, grid_root, reproduce_command

    runs = build_grid("horizon", "hold-nbrc-off")
    moved = from_seed(runs, 4000)
    assert [r.seed for r in moved] == [r.seed + 4000 for r in runs]
    assert all(m.config == {**r.config, "seed": r.seed + 4000} for m, r in zip(moved, runs, strict=True))
    assert grid_root(tmp_path, "horizon", "small") == tmp_path / "horizon" / "small"
    assert grid_root(tmp_path, "horizon", "small", 4000) == tmp_path / "horizon" / "small-from-seed-4000"
    assert reproduce_command("horizon", "small", 4000).endswith("--preset small --first-seed 4000")
    for bad in (-5, 1.5, True):
        with pytest.raises(ValueError, match=f"first_seed must be an integer >= 0; got {bad!r}"):
            grid_root(tmp_path, "horizon", "small", bad)
        with pytest.raises(ValueError, match="first_seed must be an integer >= 0"):
            from_seed(runs, bad)
