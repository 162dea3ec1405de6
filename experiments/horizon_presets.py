"""The presets of the ``horizon`` experiment (temporal horizon generalisation: train at short horizons,
evaluate at long ones) as data, and :func:`horizon_grid`, which turns one into runs. The experiment also
takes the grids' scales (:data:`experiments.presets.PRESETS`); :data:`HORIZON_PRESETS` lists them all.
"""

from __future__ import annotations

import itertools
from typing import Any

from experiments.presets import SMALL_DATA, Run

# Temporal horizon generalisation: the multistable cells (warmed-up or bistable) against the classic GRU
# and the parallel monostable cells, whose warmup should not help.
HORIZON_PAIRS = (
    ("gru", "classic"),
    ("gru", "warmup"),
    ("gru", "double"),
    ("lstm", "warmup"),
    ("nbrc", "classic"),
    ("brc", "classic"),
    ("mingru", "classic"),
    ("lru", "classic"),
    ("mingru", "warmup"),
    ("lru", "warmup"),
)
HORIZON_SETTINGS: dict[str, dict[str, Any]] = {
    # T-Maze: training lengths, seeds, (cell, version) `pairs` (absent: HORIZON_PAIRS), settings of
    # run_tmaze_experiment, episodes per length, horizons L', settings of the VAA (tmaze_vaa).
    # Copy first input (absent `copy`: no copy runs): settings of SupervisedConfig, horizons T', test
    # sequences per T'.
    "small": {
        "lengths": (20, 50),
        "seeds": 3,
        "tmaze": {"stop_when_optimal": True, "vaa_measure_interval": 0},
        "episodes": {20: 300, 50: 200},
        "rl_horizons": (50, 100, 1_000, 10_000, 100_000),
        "eval_vaa": {"steps": 10_000, "iterations": 2, "batch_size": 100},
        "copy": {"T": 50, "num_layers": 1, "hidden_size": 128, "epochs": 10, **SMALL_DATA},
        "copy_horizons": (100, 1_000, 10_000, 100_000),
        "eval_sequences": 32,
    },
    "paper": {
        "lengths": (20, 50, 100),
        "seeds": 5,
        "tmaze": {"stop_when_optimal": True},
        "episodes": {20: 2000, 50: 2000, 100: 2000},
        "rl_horizons": (50, 100, 200, 1_000, 10_000, 100_000),
        "eval_vaa": {"steps": 10_000, "iterations": 10, "batch_size": 200},
        "copy": {"T": 50, "num_layers": 1, "hidden_size": 128, "epochs": 50},
        "copy_horizons": (100, 300, 1_000, 10_000, 100_000),
        "eval_sequences": 1000,
    },
    "smoke": {
        "lengths": (2,),
        "seeds": 1,
        "tmaze": {
            "stop_when_optimal": True,
            "buffer_size": 256,
            "warmup_steps": 5,
            "vaa_measure_interval": 0,
        },
        "episodes": {2: 80},
        "rl_horizons": (2, 10, 1_000),
        "eval_vaa": {"steps": 100, "iterations": 2, "batch_size": 50},
        "copy": {
            "T": 10,
            "num_train": 64,
            "num_test": 64,
            "epochs": 1,
            "num_layers": 1,
            "hidden_size": 8,
            "vaa_steps": 20,
            "warmup_config": {"steps": 5},
        },
        "copy_horizons": (20, 1_000),
        "eval_sequences": 8,
        "pairs": (("gru", "warmup"), ("lru", "classic")),
    },
    # Train on past the first optimal check: the `small` T-Maze at L = 20 with the same 300-episode budget,
    # every run trained to its end (the final policy is the one evaluated at L'), for the cells and versions
    # that reached the optimal policy at L = 20 in `small`; no copy runs.
    "train-on": {
        "lengths": (20,),
        "seeds": 3,
        "pairs": (
            ("gru", "classic"),
            ("gru", "warmup"),
            ("gru", "double"),
            ("lstm", "warmup"),
            ("nbrc", "classic"),
        ),
        "tmaze": {"stop_when_optimal": False, "vaa_measure_interval": 0},
        "episodes": {20: 300},
        "rl_horizons": (50, 100, 1_000, 10_000, 100_000),
        "eval_vaa": {"steps": 10_000, "iterations": 2, "batch_size": 100},
    },
}
# Issue 20 item 2, the warmup's held input and stabilisation curriculum (HeldInput): GRU + warmup (the
# runner's 2 x 64) at L = 20, the model at its first optimal check, tuning seeds 0-4 (of the tuning block
# 0-9: time); each recipe changes the warmup only. `--first-seed 1000` runs the same grid on reporting seeds.
_LONG_CURRICULUM = {"warmup_max_stabilisation": 5000, "warmup_c": 50, "warmup_bptt_steps": 50}
HORIZON_SETTINGS["warmup-input"] = {
    "lengths": (20,),
    "seeds": 5,
    "pairs": (("gru", "warmup"),),
    "recipes": {
        "gaussian-200": {},  # the paper's warmup: u ~ N(0, 1), M* = 200
        "gaussian-5000": dict(_LONG_CURRICULUM),
        "data-200": {"warmup_held_input": "data"},
        "data-5000": {"warmup_held_input": "data", **_LONG_CURRICULUM},
    },
    "tmaze": {"stop_when_optimal": True, "vaa_measure_interval": 0},
    "episodes": {20: 300},
    "rl_horizons": (100, 1_000, 10_000, 100_000),
    "eval_vaa": {"steps": 10_000, "iterations": 2, "batch_size": 100},
}
# ... and the fixed-point term of the loss (DRQN(fixed_point_coef=λ): the states under the repeated corridor
# input drawn onto fixed points of it), on the paper's warmup; `-train-on`: trained to the end of the
# 300-episode budget (the term has more episodes to act), the final network evaluated.
HORIZON_SETTINGS["fixed-point"] = {
    **HORIZON_SETTINGS["warmup-input"],
    "recipes": {
        "off": {},
        "fp0.1": {"fixed_point_coef": 0.1},
        "fp1": {"fixed_point_coef": 1.0},
        "fp10": {"fixed_point_coef": 10.0},
        "off-train-on": {"stop_when_optimal": False},
        "fp1-train-on": {"fixed_point_coef": 1.0, "stop_when_optimal": False},
    },
}
# ... and what the warmup's loss asks (WarmupConfig.objective): the final states' spread as large as it can
# be (the lab's earlier T-Maze code) instead of VAA* at k, on the runner's defaults of round 8; the first
# recipe reruns the warmup-input preset's data-5000 on those defaults.
HORIZON_SETTINGS["warmup-objective"] = {
    **HORIZON_SETTINGS["warmup-input"],
    "recipes": {
        "vaa-data-5000": {"warmup_held_input": "data", **_LONG_CURRICULUM},
        "variance-data-5000": {
            "warmup_held_input": "data",
            "warmup_objective": "variance",
            **_LONG_CURRICULUM,
        },
        # ... with the fixed-point term of the loss, which draws the corridor states onto the attractors
        # within the trained corridor (without attractors, in the fixed-point preset, it could not)
        "variance-data-5000-fp1": {
            "warmup_held_input": "data",
            "warmup_objective": "variance",
            "fixed_point_coef": 1.0,
            **_LONG_CURRICULUM,
        },
        "variance-data-5000-train-on": {
            "warmup_held_input": "data",
            "warmup_objective": "variance",
            "stop_when_optimal": False,
            **_LONG_CURRICULUM,
        },
    },
}
# ... and the hold term of the loss (DRQN(hold_coef=λ_h): the Q-values at the junction kept when the
# corridor is held up to hold_steps longer), on the runner's defaults of round 11 and the paper's warmup,
# tuning seeds 0-9; `-train-on`: the network at the end of the 300-episode budget.
HORIZON_SETTINGS["hold"] = {
    **HORIZON_SETTINGS["warmup-input"],
    "seeds": 10,
    "recipes": {
        "off": {},
        "hold1": {"hold_coef": 1.0, "hold_steps": 1000},
        "hold1-train-on": {"hold_coef": 1.0, "hold_steps": 1000, "stop_when_optimal": False},
        "hold1-10k": {"hold_coef": 1.0, "hold_steps": 10_000},
        # ... and the corridor's advantages kept at the hold's end as well
        "hold1-10k-adv": {"hold_coef": 1.0, "hold_steps": 10_000, "hold_advantages": True},
        "hold1-10k-adv-train-on": {
            "hold_coef": 1.0,
            "hold_steps": 10_000,
            "hold_advantages": True,
            "stop_when_optimal": False,
        },
        # ... and the held states' drift at the hold's end (DRQN(hold_drift_coef=λ_d)): the states asked to
        # stop, not only their readout (λ_d = 1 never reached the optimal policy at L = 20 on seeds 0 and 1)
        "hold1-10k-adv-drift01": {
            "hold_coef": 1.0,
            "hold_steps": 10_000,
            "hold_advantages": True,
            "hold_drift_coef": 0.1,
        },
    },
}
_DRIFT = HORIZON_SETTINGS["hold"]["recipes"]["hold1-10k-adv-drift01"]
# ... the drift recipe trained to the end of its 300-episode budget
HORIZON_SETTINGS["hold-drift-train-on"] = {
    **HORIZON_SETTINGS["hold"],
    "recipes": {"hold1-10k-adv-drift01-train-on": {**_DRIFT, "stop_when_optimal": False}},
}
# ... and holds that end where the observation changes (the junction) rather than wherever the input does
# (DRQN(hold_ends="observation")): the presets above also ended holds at the corridor's exploratory actions,
# where the term asked the corridor's position-dependent Q-values to stay put; first optimal check and end.
_OBS = {**_DRIFT, "hold_ends": "observation"}
HORIZON_SETTINGS["hold-obs"] = {**HORIZON_SETTINGS["hold"], "recipes": {"obs-drift01": _OBS}}
HORIZON_SETTINGS["hold-obs-train-on"] = {
    **HORIZON_SETTINGS["hold"],
    "recipes": {"obs-drift01-train-on": {**_OBS, "stop_when_optimal": False}},
}
# ... and the drift recipe with advantage learning (DRQN(advantage_learning=0.5), the corridor's action gaps
# doubled: the trained-on runs above lost the policy at the corridor's margins); first optimal check and end.
_AL = {**_DRIFT, "advantage_learning": 0.5}
HORIZON_SETTINGS["hold-al"] = {
    **HORIZON_SETTINGS["hold"],
    "recipes": {"drift01-al5": _AL, "drift01-al5-train-on": {**_AL, "stop_when_optimal": False}},
}
# ... and the bistable cells (BRC, NBRC: each unit has true fixed points under a constant input, where a
# warmed-up GRU drifts on near-neutral directions), without and with the drift recipe (which trains the
# junction's readout on states held up to 10 000 corridor steps), on the runner's defaults; tuning seeds 0-9.
HORIZON_SETTINGS["hold-bistable"] = {
    **HORIZON_SETTINGS["hold"],
    "pairs": (("brc", "classic"), ("nbrc", "classic")),
    "recipes": {"off": {}, "drift01": _DRIFT},
}
# ... and NBRC with the hold term at a weaker drift (λ_d = 0.03) or none (the drift recipe at λ_d = 0.1 held
# the policy to 100 000 on 3 of the 8 seeds that learned, but 2 of 10 never learned L = 20); tuning seeds 0-9.
HORIZON_SETTINGS["hold-nbrc"] = {
    **HORIZON_SETTINGS["hold"],
    "pairs": (("nbrc", "classic"),),
    "recipes": {
        "adv": HORIZON_SETTINGS["hold"]["recipes"]["hold1-10k-adv"],
        "drift003": {**_DRIFT, "hold_drift_coef": 0.03},
    },
}
# ... NBRC's best recipe (drift003, chosen on tuning seeds 0-9 in hold-nbrc) at its first optimal check and at
# the end of its 300-episode budget: the report, run on seeds no choice used (`--first-seed 4000`).
_NBRC_DRIFT = HORIZON_SETTINGS["hold-nbrc"]["recipes"]["drift003"]
HORIZON_SETTINGS["hold-nbrc-drift003"] = {
    **HORIZON_SETTINGS["hold-nbrc"],
    "recipes": {"drift003": _NBRC_DRIFT, "drift003-train-on": {**_NBRC_DRIFT, "stop_when_optimal": False}},
}
# The presets below were defined before round 21 of docs/drqn-parity.md made the runner train every step of
# the sampled episodes; they extend drift003, measured with Algorithm 4's updates, and keep them.
_NBRC_DRIFT_R17 = {**_NBRC_DRIFT, "train_mode": "histories"}
# ... and that recipe with its hold term ended at the first optimal check (hold_coef_after_optimal = 0):
# trained on with the term, the policy was lost at L = 20 itself (0/3 optimal at the end); without it, does
# the Q-learning alone keep the policy, and the attractors the term made? The runs are drift003's up to
# their first optimal check, so only the end of the budget is new; tuning seeds 0-9.
HORIZON_SETTINGS["hold-nbrc-off"] = {
    **HORIZON_SETTINGS["hold-nbrc"],
    "recipes": {
        "drift003-off-train-on": {
            **_NBRC_DRIFT_R17,
            "stop_when_optimal": False,
            "hold_coef_after_optimal": 0.0,
        }
    },
}
# ... that recipe on the list of cells (GRU classic, warmup and double, LSTM and MGU warmed up, NBRC,
# BRC, minGRU and LRU classic: the horizon table's first eight pairs and the warmed-up MGU; the table's
# warmed-up minGRU and LRU are left out), 3 seeds (with `--first-seed`, seeds no choice used)
HORIZON_SETTINGS["hold-cells"] = {
    **HORIZON_SETTINGS["hold-nbrc"],
    "seeds": 3,
    "pairs": (*HORIZON_PAIRS[:4], ("mgu", "warmup"), *HORIZON_PAIRS[4:8]),
    "recipes": {"drift003": _NBRC_DRIFT_R17},
}
# ... and NBRC's recipe trained at L = 50 (600 episodes, the runner's budget at that length), 10 seeds
HORIZON_SETTINGS["hold-nbrc-L50"] = {
    **HORIZON_SETTINGS["hold-nbrc-drift003"],
    "recipes": {
        name: {**recipe, "train_mode": "histories"}
        for name, recipe in HORIZON_SETTINGS["hold-nbrc-drift003"]["recipes"].items()
    },
    "lengths": (50,),
    "episodes": {50: 600},
}
HORIZON_PRESETS = tuple(HORIZON_SETTINGS)
"""The presets of the ``horizon`` experiment: :data:`PRESETS` and those above (the keys of the settings)."""


HORIZON_RUN_KEYS = ("task", "horizons", "eval_vaa", "eval_sequences")
"""The keys :func:`horizon_grid` adds to a run's network settings, read by ``experiments.horizon.run_horizon``
itself (the rest of the config goes to the T-Maze or copy trainer)."""


def horizon_grid(preset: str) -> list[Run]:
    """The runs of the ``horizon`` experiment (kind ``horizon``) at ``preset`` (:data:`HORIZON_PRESETS`):
    train at short horizons, evaluate at long ones.

    Order of the runs (the order they start in): the T-Maze at its shortest length, the copy runs (if the
    preset has a ``copy`` part), then the T-Maze at longer lengths (if any) seed after seed, so that a
    grid stopped early has the main comparison and every cell at the longer lengths.
    """
    if preset not in HORIZON_PRESETS:
        raise ValueError(f"preset must be one of {', '.join(HORIZON_PRESETS)} for horizon; got {preset!r}")
    s = HORIZON_SETTINGS[preset]
    pairs = s.get("pairs", HORIZON_PAIRS)
    recipes = s.get("recipes", {"": {}})  # named T-Maze settings on top of `tmaze`, a label of their runs

    def tmaze_runs(length: int, seeds_first: bool = False) -> list[Run]:
        """Cell after cell; with ``seeds_first``, every cell's seed 0, then every cell's seed 1..."""
        order = itertools.product(pairs, range(s["seeds"]))
        if seeds_first:
            order = ((pair, seed) for seed, pair in itertools.product(range(s["seeds"]), pairs))
        runs = []
        for ((cell, version), seed), (recipe, settings) in itertools.product(order, recipes.items()):
            config = {"task": "tmaze", "length": length, "cell": cell, "version": version, "seed": seed}
            config.update(s["tmaze"], episodes=s["episodes"][length])
            config.update(settings, horizons=list(s["rl_horizons"]), eval_vaa=dict(s["eval_vaa"]))
            labels = (("task", "tmaze"), ("length", length), ("cell", cell), ("version", version))
            labels += (("recipe", recipe),) if recipe else ()
            runs.append(Run("horizon", "horizon", labels, seed, config))
        return runs

    shortest, *longer = sorted(s["lengths"])
    runs = tmaze_runs(shortest)
    if "copy" in s:
        for (cell, version), seed in itertools.product(pairs, range(s["seeds"])):
            config = {"task": "copy", **s["copy"], "cell": cell, "version": version, "seed": seed}
            config.update(horizons=list(s["copy_horizons"]), eval_sequences=s["eval_sequences"])
            labels = (("task", "copy"), ("T", config["T"]), ("cell", cell), ("version", version))
            runs.append(Run("horizon", "horizon", labels, seed, config))
    for length in longer:
        runs += tmaze_runs(length, seeds_first=True)
    return runs
