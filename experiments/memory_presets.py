"""The presets of the ``memory-suites`` experiment (issue 22 item 2) as data, and :func:`memory_grid`, which
turns one into runs: DRQN with and without warmup and sb3-contrib's ``RecurrentPPO`` with and without
:class:`recurrent_q.WarmupCallback`, on POPGym tasks and a MiniGrid memory task, the same environment-step
budget for every method of a task. Torch-free (the registry and the command line import it); the runner is
:mod:`experiments.memory_suites`, the results writer :mod:`experiments.memory_results`.
"""

from __future__ import annotations

import itertools
from typing import Any

from experiments.presets import Run

MEMORY_TASKS: dict[str, dict[str, str]] = {
    # short name: the gymnasium id and the package that registers it. POPGym's "Stateless CartPole" of the
    # paper is `PositionOnlyCartPole` in the package (velocities hidden).
    "RepeatPreviousEasy": {"env_id": "popgym-RepeatPreviousEasy-v0", "suite": "popgym"},
    "CountRecallEasy": {"env_id": "popgym-CountRecallEasy-v0", "suite": "popgym"},
    "AutoencodeEasy": {"env_id": "popgym-AutoencodeEasy-v0", "suite": "popgym"},
    "PositionOnlyCartPoleEasy": {"env_id": "popgym-PositionOnlyCartPoleEasy-v0", "suite": "popgym"},
    "MiniGrid-MemoryS7": {"env_id": "MiniGrid-MemoryS7-v0", "suite": "minigrid"},
}
"""The tasks the experiment knows, by the name its runs carry."""
MEMORY_METHODS = ("drqn", "drqn-warmup", "rppo", "rppo-warmup")
"""DRQN (``use_warmup`` False / True) and RecurrentPPO (without / with ``WarmupCallback``)."""
MEMORY_PRESETS = ("small", "smoke")
"""The presets of the experiment (a subset of :data:`experiments.presets.PRESETS`)."""

# The settings of each method (keyword arguments of DRQN / RecurrentPPO, see experiments.memory_suites).
DRQN_SETTINGS: dict[str, Any] = {
    "cell": "gru",  # a cell of recurrent_q.cells.CELL_NAMES (RecurrentPPO's is sb3-contrib's nn.LSTM)
    "hidden_size": 64,
    "num_layers": 1,
    "buffer_size": 4096,
    "batch_size": 16,
    "gradient_steps": 4,
    "target_update_interval": 4,
    "learning_rate": 1e-3,
    "gamma": 0.99,
    "exploration_initial_eps": 1.0,
    "exploration_final_eps": 0.05,
    "exploration_fraction": 0.3,
    "n_steps": 5,
    "n_step_correction": "watkins",
    "warmup_steps": 50,
}
RPPO_SETTINGS: dict[str, Any] = {
    "lstm_hidden_size": 64,
    "n_envs": 4,
    "n_steps": 128,
    "batch_size": 128,
    "n_epochs": 4,
    "learning_rate": 3e-4,
    "gamma": 0.99,
    "ent_coef": 0.01,
    "warmup_steps": 50,
    "warmup_transitions": 4096,
}

MEMORY_SETTINGS: dict[str, dict[str, Any]] = {
    # `tasks`, `methods`, `seeds`, the env steps of every run (`timesteps`), the MMER's bins (`mmer_bins`:
    # the training episodes are grouped into this many equal spans of env steps), the deterministic
    # evaluation episodes at the end (`eval_episodes`), and each family's settings (`drqn`, `rppo`).
    "small": {
        "tasks": tuple(MEMORY_TASKS),
        "methods": MEMORY_METHODS,
        "seeds": 3,
        "timesteps": 50_000,
        "mmer_bins": 20,
        "eval_episodes": 20,
        "drqn": DRQN_SETTINGS,
        "rppo": RPPO_SETTINGS,
    },
    "smoke": {
        "tasks": ("RepeatPreviousEasy",),
        "methods": ("drqn-warmup", "rppo-warmup"),
        "seeds": 1,
        "timesteps": 400,
        "mmer_bins": 2,
        "eval_episodes": 2,
        "drqn": {**DRQN_SETTINGS, "hidden_size": 8, "buffer_size": 128, "batch_size": 4, "warmup_steps": 3},
        "rppo": {
            **RPPO_SETTINGS,
            "lstm_hidden_size": 8,
            "n_envs": 2,
            "n_steps": 32,
            "batch_size": 32,
            "n_epochs": 1,
            "warmup_steps": 3,
            "warmup_transitions": 128,
        },
    },
}


def memory_grid(preset: str) -> list[Run]:
    """The runs (kind ``memory``) of ``memory-suites`` at ``preset`` (:data:`MEMORY_PRESETS`): every task,
    method and seed, seed after seed (a grid stopped early has every task and method at seed 0), each with
    the preset's budget of env steps.

    A run's labels are its task and method; its config, the task, method, seed, budget, MMER bins,
    evaluation episodes and its method family's settings.
    """
    if preset not in MEMORY_PRESETS:
        raise ValueError(
            f"preset must be one of {', '.join(MEMORY_PRESETS)} for memory-suites; got {preset!r}"
        )
    s = MEMORY_SETTINGS[preset]
    runs = []
    for seed, task, method in itertools.product(range(s["seeds"]), s["tasks"], s["methods"]):
        family = method.split("-")[0]
        config = {
            "task": task,
            "method": method,
            "seed": seed,
            "timesteps": s["timesteps"],
            "mmer_bins": s["mmer_bins"],
            "eval_episodes": s["eval_episodes"],
            "settings": dict(s[family]),
        }
        runs.append(Run("memory-suites", "memory", (("task", task), ("method", method)), seed, config))
    return runs


__all__ = [
    "DRQN_SETTINGS",
    "MEMORY_METHODS",
    "MEMORY_PRESETS",
    "MEMORY_SETTINGS",
    "MEMORY_TASKS",
    "RPPO_SETTINGS",
    "memory_grid",
]
