"""Run directories of a grid: what a run is (its identity), whether it has finished, and safe JSON files;
and the name of the run directory of a training command (:func:`run_name`).

Each run of a grid (:mod:`experiments.presets`) writes, in ``<out>/<experiment>/<preset>/<run name>/``,
its ``config.json`` (the grid's settings of the run), its ``settings.json`` (those settings with every
default of the code filled in, ``experiments.grid.resolved_settings``), its TensorBoard log and, when it
has finished, its ``metrics.json``. What a relaunch does, run by run (nothing is ever deleted):

- ``metrics.json`` present and the same run: skipped. *The same run* compares the settings that define
  it (:func:`run_identity`): where the data is read from (``data_dir``) is not part of it, so a path
  spelled another way, or omitted, still finds the run.
- settings that differ: the grid stops before running anything, naming the run and the keys that
  differ (:class:`RunConflictError`); with ``restart_changed=True`` the old run directory is moved
  aside, under ``_replaced/``. A default of the code that changed since the run ran is such a difference
  (``default <key>``, read from its ``settings.json``; runs made before that file was written are
  compared on their ``config.json`` only).
- an unreadable ``config.json`` or ``metrics.json`` (a crash during a write by another tool, a disk
  error): a warning names the file, which is moved aside, and the run starts again (from its last
  checkpoint where the trainer has one).
- a run whose metrics are not finite (NaN or infinite loss) is *diverged*: its ``metrics.json`` holds
  ``null`` for those values and ``"diverged": true``.

Two launches of a grid on the same ``--out`` at once (or a Ray task retried while a copy still runs)
never run one run twice side by side: a run is inspected and run only under its claim (:func:`claimed`),
an exclusive lock that the operating system releases when its holder dies, so a claim never outlives a
``kill -9`` or a lost node. Every JSON file is written atomically (:func:`write_json`): a run killed
while writing one never leaves a half-written ``metrics.json`` that a relaunch would take for finished.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import socket
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from experiments.presets import Run

NOT_IDENTITY = ("data_dir",)
"""Config keys that say where inputs are read, not what the run is: ignored when matching runs."""
REPLACED = "_replaced"
"""Folder (under a grid's root) where runs and files set aside by a relaunch are kept."""
SETTINGS_FILE = "settings.json"
"""The file of a run directory that holds the settings its config resolved to when it ran (the code's defaults
filled in: ``experiments.grid.resolved_settings``)."""
CLAIMS = ".claims"
"""Folder (under a grid's root) of the lock files by which a process claims a run (:func:`claimed`)."""


class RunConflictError(ValueError):
    """A run directory holds a run made with other settings than the grid's."""


def run_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The settings that define a run: its config without :data:`NOT_IDENTITY` keys, the keys renamed since
    it was written under their names now (``supervised.train.FORMER_CONFIG_KEYS``)."""
    from supervised.train import current_config_keys

    return {k: v for k, v in current_config_keys(config).items() if k not in NOT_IDENTITY}


def run_name(env_id: str, exp_name: str, seed: int, timestamp: int | None = None) -> str:
    """The name of the run directory of a training command (``mm-train-tmaze``, ``mm-train-supervised``),
    CleanRL's convention: ``{env_id}__{exp_name}__{seed}__{timestamp}``.

    :param env_id: the environment or task (``TMaze-v0``, ``copy``).
    :param exp_name: the experiment: the command's name for it, the cell, the version, the size.
    :param seed: the run's seed.
    :param timestamp: the start in whole seconds since the epoch (None: ``int(time.time())``).
    """
    return f"{env_id}__{exp_name}__{seed}__{int(time.time()) if timestamp is None else timestamp}"


def _changed_defaults(run_dir: Path, current: dict[str, Any]) -> list[str]:
    """``default <field>`` for each of the ``current`` resolved settings that differs from the run's
    ``settings.json`` (none when the run has no readable one: runs made before it was written). A field
    the file lacks because it was added since is read as the value that kept the old behaviour
    (``experiments.tmaze_config.ADDED_FIELDS``)."""
    from experiments.tmaze_config import ADDED_FIELDS

    try:
        recorded = read_json(run_dir / SETTINGS_FILE)
    except ValueError:
        return []
    absent = object()
    recorded = {**{k: v for k, v in ADDED_FIELDS.items() if k in current}, **recorded}
    keys = recorded.keys() | current.keys()
    return [f"default {k}" for k in sorted(keys) if recorded.get(k, absent) != current.get(k, absent)]


def saved_config(run: Run) -> dict[str, Any]:
    """What ``config.json`` holds for ``run``: its kind (the runner) and its config."""
    return {"kind": run.kind, **run.config}


def _differing_keys(saved: dict[str, Any], wanted: dict[str, Any]) -> list[str]:
    saved, wanted = run_identity(saved), run_identity(wanted)
    absent = object()
    return sorted(k for k in saved.keys() | wanted.keys() if saved.get(k, absent) != wanted.get(k, absent))


def read_json(path: Path) -> dict[str, Any]:
    """The JSON object in ``path`` (a config, metrics); ``ValueError`` naming the file when it cannot be read
    or holds something else than an object."""
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path} is unreadable ({type(error).__name__}: {error})") from error
    if not isinstance(data, dict):
        raise ValueError(f"{path} is unreadable (not a JSON object)")
    return data


def set_aside(path: Path, reason: str) -> Path:
    """Move a run directory, or a file of one, to ``<grid root>/_replaced/`` and warn; returns where."""
    root = path.parent if path.is_dir() else path.parent.parent
    aside = root / REPLACED
    aside.mkdir(parents=True, exist_ok=True)
    label = path.name if path.is_dir() else f"{path.parent.name}__{path.name}"
    target = aside / f"{label}.{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    path.replace(target)
    warnings.warn(f"{reason}; moved to {target}", stacklevel=2)
    return target


@contextlib.contextmanager
def claimed(root: str | Path, name: str) -> Iterator[None]:
    """Hold the claim on run ``name`` of the grid under ``root`` while the block runs.

    The claim is an exclusive ``flock`` on ``<root>/.claims/<name>.lock``: a second process that claims
    the same run (another launch on the same ``--out``, on this machine or on a node that shares the
    file system) waits until the first one leaves the block, then finds the run finished. The operating
    system drops the lock when its holder dies, so a killed worker or a lost node never leaves a stale
    claim. Where ``fcntl`` does not exist (Windows), runs are not claimed: launch one grid at a time.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield
        return
    folder = Path(root) / CLAIMS
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def write_json(path: Path, data: Any) -> None:
    """Write ``data`` atomically (a crash never leaves a half-written file), as valid JSON."""
    tmp = path.with_name(f"{path.name}.{socket.gethostname()}-{os.getpid()}.tmp")
    tmp.write_text(json.dumps(finite_or_null(data), indent=2, allow_nan=False, default=str))
    tmp.replace(path)


def finite_or_null(data: Any) -> Any:
    """``data`` with every NaN or infinite float replaced by ``None`` (JSON has no NaN)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite_or_null(v) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [finite_or_null(v) for v in data]
    return data


def non_finite_keys(metrics: dict[str, Any]) -> list[str]:
    """Top-level metrics that are NaN or infinite: a run with any of them has diverged."""
    return sorted(k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v))


def run_state(
    run: Run, run_dir: Path, repair: bool = True, settings: dict[str, Any] | None = None
) -> tuple[str, list[str]]:
    """``("new" | "finished" | "partial" | "changed", differing keys)`` of ``run`` in ``run_dir``.

    :param settings: the settings ``run`` resolves to with the code's defaults (the grid's
        ``experiments.grid.resolved_settings``), compared with the run's ``settings.json`` when both exist
        (None: not compared).
    :param repair: set unreadable ``config.json`` / ``metrics.json`` files aside (with a warning naming
        them). Only the holder of the run's claim (:func:`claimed`) repairs: without it, another process
        may be writing the run at that moment, and the state is only read.
    """
    config_file, metrics_file = run_dir / "config.json", run_dir / "metrics.json"
    if not run_dir.exists():
        return "new", []
    if not config_file.exists():
        if repair and (metrics_file.exists() or any(run_dir.iterdir())):
            set_aside(run_dir, f"{run_dir} has files but no config.json")
        return "new", []
    try:
        saved = read_json(config_file)
    except ValueError as error:
        if repair:
            set_aside(run_dir, f"{error}: the run starts again")
        return "new", []
    differing = _differing_keys(saved, saved_config(run))
    if not differing and settings is not None and (run_dir / SETTINGS_FILE).exists():
        differing = _changed_defaults(run_dir, settings)
    if differing:
        return "changed", differing
    if metrics_file.exists():
        try:
            read_json(metrics_file)
        except ValueError as error:
            if repair:
                set_aside(metrics_file, f"{error}: the run starts again")
            return "partial", []
        return "finished", []
    return "partial", []


def conflict_error(run: Run, run_dir: Path, differing: list[str]) -> RunConflictError:
    """The error that stops a grid whose ``run`` finds other settings (``differing``) in ``run_dir``."""
    since = " (a default of the code changed since it ran)" if differing[0].startswith("default ") else ""
    return RunConflictError(
        f"run {run.name} in {run_dir} was made with other settings ({', '.join(differing)} differ){since}; "
        "nothing was run. Pass --restart-changed to move the old run aside (to "
        f"{run_dir.parent / REPLACED}) and run it again, or use another --out."
    )


def is_finished(run: Run, root: str | Path) -> bool:
    """True when ``run`` has its ``metrics.json`` under ``root``, made with the same settings (read only)."""
    run_dir = Path(root) / run.name
    return (
        (run_dir / "metrics.json").exists()
        and (run_dir / "config.json").exists()
        and run_state(run, run_dir, repair=False)[0] == "finished"
    )


__all__ = [
    "CLAIMS",
    "NOT_IDENTITY",
    "REPLACED",
    "SETTINGS_FILE",
    "RunConflictError",
    "claimed",
    "conflict_error",
    "finite_or_null",
    "is_finished",
    "non_finite_keys",
    "read_json",
    "run_identity",
    "run_name",
    "run_state",
    "saved_config",
    "set_aside",
    "write_json",
]
