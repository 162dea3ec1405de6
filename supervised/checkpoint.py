"""The checkpoint of a supervised run, written after each epoch and read back by ``resume=True``: what it
holds (:data:`CHECKPOINT_KEYS`, the run's progress), its writing and reading (:func:`load_checkpoint`,
:class:`CheckpointError`) and the check that a resumed run has the settings of the saved one (all but
:data:`RESUMABLE`). Every public name here is importable from :mod:`supervised.train` too."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from supervised.config import SupervisedConfig, current_config_keys
from supervised.model import SequenceModel

CHECKPOINT = "checkpoint.pt"
# Settings that may change between a run and its resumption.
RESUMABLE = ("epochs", "resume", "progress_bar", "device", "logdir", "data_dir", "download", "mnist_url")


@dataclass
class _Progress:
    """What a run has done so far: saved in each checkpoint, restored on resume."""

    history: dict[str, list] = field(
        default_factory=lambda: {
            k: [] for k in ("epoch", "train_loss", "val_loss", "val_accuracy", "val_vaa", "time")
        }
    )
    best_val: float = math.inf
    best_epoch: int = 0
    best_state: dict[str, torch.Tensor] | None = None
    warmup_result: dict[str, Any] | None = None
    pretraining_result: dict[str, Any] | None = None


def _save_checkpoint(
    path: Path,
    c: SupervisedConfig,
    epoch: int,
    model: SequenceModel,
    optimizer: Any,
    scaler: Any,
    run: _Progress,
) -> None:
    """Everything ``supervised.train._train`` needs to continue after ``epoch``, written atomically."""
    state = {
        "epoch": epoch,
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scaler": scaler.state_dict(),
        "best_val": run.best_val,
        "best_epoch": run.best_epoch,
        "best_state": run.best_state,
        "history": run.history,
        "warmup_result": run.warmup_result,
        "pretraining_result": run.pretraining_result,
        "config": asdict(c),
    }
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scaler", "best_val", "best_epoch", "best_state")
CHECKPOINT_KEYS += ("history", "warmup_result", "config")


class CheckpointError(ValueError):
    """A checkpoint that cannot be read back (truncated, corrupt, or not written by
    :func:`supervised.train.train`)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`supervised.train.train`.

    :raises CheckpointError: naming the file, when it cannot be read or lacks a key of a checkpoint.
    """
    path = Path(path)
    try:
        checkpoint = torch.load(path, map_location=device, weights_only=False)
    except Exception as error:  # a truncated zip, a bad pickle, an I/O error: all say the same to the user
        raise CheckpointError(
            path,
            f"checkpoint {path} is unreadable ({type(error).__name__}: {error}); "
            "move it away to start the run again",
        ) from error
    if isinstance(checkpoint, dict) and "warmup" in checkpoint and "warmup_result" not in checkpoint:
        checkpoint["warmup_result"] = checkpoint.pop("warmup")  # written by an earlier version
    missing = [k for k in CHECKPOINT_KEYS if k not in checkpoint] if isinstance(checkpoint, dict) else ["all"]
    if missing:
        raise CheckpointError(
            path, f"{path} is not a checkpoint of supervised.train (missing: {', '.join(missing)})"
        )
    return checkpoint


def _check_same_run(saved: dict[str, Any], config: SupervisedConfig) -> None:
    now, saved = asdict(config), current_config_keys(saved)
    changed = [k for k in now if k not in RESUMABLE and k in saved and saved[k] != now[k]]
    if changed:
        raise ValueError(
            f"resume=True but the checkpoint was written with other settings ({', '.join(changed)}); "
            "use the same settings or another logdir"
        )
