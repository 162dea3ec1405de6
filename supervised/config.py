"""The settings and the outcome of one supervised run (docs/specification.md §7), and the reading of settings
written to disk: :class:`SupervisedConfig` (its task defaults and checks, :meth:`SupervisedConfig.resolved`),
:class:`SupervisedResult`, the versions the trainer runs (:data:`VERSIONS`) and the former key names
(:data:`FORMER_CONFIG_KEYS`, :func:`config_from_dict`). The trainer, ``supervised.train.train``, takes and
returns them; every public name here is importable from :mod:`supervised.train` too."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from torch import nn

from recurrent_q.cells import CellName, check_cell, check_device
from recurrent_q.checks import SettingError, check_choice, check_integer, check_number
from recurrent_q.multistability import WarmupConfig
from supervised.datasets import MNIST_URL, TASKS

SupervisedVersion = Literal["classic", "warmup", "double", "auxiliary"]
"""The versions the supervised trainer runs: the paper's three (:data:`recurrent_q.multistability.Version`)
and Appendix H's baseline, ``auxiliary``."""
VERSIONS: tuple[SupervisedVersion, ...] = ("classic", "warmup", "double", "auxiliary")
SYNTHETIC_SIZE = 40_000  # §4.1: 40 000 train and 40 000 test sequences


@dataclass
class SupervisedConfig:
    """One supervised run. ``None`` fields take the task's default from docs/specification.md §7."""

    task: str = "copy"
    """benchmark: copy | denoising | psmnist | plsmnist"""
    T: int | None = None
    """sequence length: copy 50 (paper: 50, 300, 600), denoising 200; fixed by N for MNIST"""
    N: int | None = None
    """forgetting period: denoising 100 (paper: 5, 100); black rows of plsmnist 72 (72, 472)"""
    cell: CellName = "gru"
    """cell of the zoo (recurrent_q.cells.CELL_NAMES)"""
    version: SupervisedVersion = "classic"
    """classic | warmup (warmup before training) | double (double layers, partial warmup) | auxiliary
    (Appendix H: the reconstruction auxiliary loss as a pretraining, then beside the task's loss;
    supervised.auxiliary); not double-classic"""
    num_layers: int | None = None
    """recurrent layers (1 for copy, 2 otherwise)"""
    hidden_size: int | None = None
    """units per layer (128 for copy, 256 otherwise)"""
    epochs: int | None = None
    """training epochs (50; 70 for MNIST)"""
    batch_size: int = 32
    """training batch size"""
    learning_rate: float = 1e-3
    """Adam learning rate"""
    val_fraction: float = 0.2
    """share of the training set held out for validation"""
    num_train: int | None = None
    """training sequences before the validation split (40 000 synthetic; all MNIST train images)"""
    selection_split: int | None = None
    """Appendix F's selection protocol: split number ``i`` of the learning set (the training sequences)
    into training, validation and *selection* sets (the selection set as large as the validation set;
    the learning set is the training data of seed 0, and split ``i`` is the same for every cell, version
    and seed); the run's "test" figures are then those of the selection set, and the test set is never
    used. None: the standard training/validation split."""
    num_test: int | None = None
    """test sequences (40 000 synthetic; all MNIST test images)"""
    seed: int = 0
    """seed of the data, the initialisation, the warmup and the batches"""
    device: str = "cpu"
    """torch device: cpu | cuda | cuda:1 ..."""
    amp: bool = False
    """mixed precision (float16 autocast + grad scaling); CUDA only"""
    data_dir: str | None = None
    """directory holding the MNIST IDX files (MNIST tasks)"""
    download: bool = False
    """fetch missing MNIST files into data_dir (checksums verified)"""
    mnist_url: str = MNIST_URL
    """base URL of the MNIST mirror used by download"""
    vaa_iterations: int = 10
    """I of Algorithm 1: batches averaged per VAA estimate; 0 disables the per-epoch VAA"""
    vaa_steps: int = 10_000
    """M of Algorithm 1: steps under a constant input"""
    vaa_batch_size: int | None = None
    """|X| of Algorithm 1 (default: batch_size); the VAA floor is 1/|X|"""
    vaa_eps: float = 1e-4
    """tolerance eps of eq. (5)"""
    t_max: int = 600
    """T_max of the chrono initialisation (cell chrono only)"""
    warmup_config: WarmupConfig = field(default_factory=WarmupConfig)
    """settings of the warmup (Algorithm 3), run by the versions warmup and double"""
    warmup_sequences: int = 4096
    """training sequences handed to the warmup (a random subset, to bound memory)"""
    auxiliary_length: int | None = None
    """l, version auxiliary: inputs reconstructed before the anchor (Appendix H: 150 on denoising with
    T = 200); default min(150, T)"""
    auxiliary_pretrain_epochs: int = 20
    """version auxiliary: epochs of pretraining on the reconstruction loss alone (Appendix H: 20)"""
    auxiliary_layers: int = 2
    """version auxiliary: layers of the decoder (of the main network's cell and width)"""
    auxiliary_weight: float = 1.0
    """version auxiliary: weight of the reconstruction loss beside the task's loss during training"""
    logdir: str | None = None
    """run directory for TensorBoard, checkpoints and result.json (None: nothing written)"""
    resume: bool = False
    """continue from logdir/checkpoint.pt if it exists"""
    progress_bar: bool = True
    """show progress bars"""

    def resolved(self) -> SupervisedConfig:
        """A copy with the task defaults filled in, after checking every field."""
        c = copy.deepcopy(self)
        check_choice("task", c.task, TASKS)
        check_choice("version", c.version, VERSIONS)
        check_cell(c.cell)
        mnist = c.task in ("psmnist", "plsmnist")
        if c.task == "copy":
            c.T = 50 if c.T is None else c.T
            if c.N is not None:
                raise SettingError("N is not used by task copy; leave it unset")
        elif c.task == "denoising":
            c.T = 200 if c.T is None else c.T
            c.N = 100 if c.N is None else c.N
            if c.T <= c.N + 5:
                raise SettingError(f"T must be greater than N + 5 = {c.N + 5} for denoising, got T={c.T}")
        elif c.task == "psmnist":
            if c.N is not None or c.T not in (None, 784):
                raise SettingError("task psmnist has T = 784 and no N; leave T and N unset")
            c.T = 784
        else:
            c.N = (72 if c.T is None else c.T - 28) if c.N is None else c.N
            if c.N < 0 or c.T not in (None, 28 + c.N):
                raise SettingError(f"task plsmnist has T = 28 + N with N >= 0, got T={c.T}, N={c.N}")
            c.T = 28 + c.N
        c.num_layers = (1 if c.task == "copy" else 2) if c.num_layers is None else c.num_layers
        c.hidden_size = (128 if c.task == "copy" else 256) if c.hidden_size is None else c.hidden_size
        c.epochs = (70 if mnist else 50) if c.epochs is None else c.epochs
        c.vaa_batch_size = c.batch_size if c.vaa_batch_size is None else c.vaa_batch_size
        c.auxiliary_length = min(150, c.T) if c.auxiliary_length is None else c.auxiliary_length
        if not mnist:
            c.num_train = SYNTHETIC_SIZE if c.num_train is None else c.num_train
            c.num_test = SYNTHETIC_SIZE if c.num_test is None else c.num_test
        elif c.data_dir is None:
            raise SettingError(
                f"data_dir is required for task {c.task}: a directory with the MNIST IDX files "
                "(with download=True they are fetched there)"
            )
        for name in (
            "T",
            "num_layers",
            "hidden_size",
            "epochs",
            "batch_size",
            "vaa_steps",
            "vaa_batch_size",
            "t_max",
            "auxiliary_length",
            "auxiliary_layers",
        ):
            check_integer(name, getattr(c, name))
        check_integer("auxiliary_pretrain_epochs", c.auxiliary_pretrain_epochs, 0)
        check_number("auxiliary_weight", c.auxiliary_weight, 0)
        if c.auxiliary_length > c.T:
            raise SettingError(f"auxiliary_length must be at most T = {c.T}; got {c.auxiliary_length}")
        for name in ("num_train", "num_test"):
            if getattr(c, name) is not None:
                check_integer(name, getattr(c, name))
        if c.vaa_iterations < 0:
            raise SettingError(f"vaa_iterations must be >= 0 (0 disables the VAA), got {c.vaa_iterations}")
        top = 0.5 if c.selection_split is not None else 1.0  # the selection set is as large as validation
        if not 0.0 < c.val_fraction < top:
            raise SettingError(f"val_fraction must be in (0, {top:g}), got {c.val_fraction}")
        split = c.selection_split
        if split is not None and (isinstance(split, bool) or not isinstance(split, int) or split < 0):
            raise SettingError(f"selection_split must be None or an integer >= 0, got {c.selection_split!r}")
        if c.version == "double" and c.hidden_size % 2:
            raise SettingError(
                f"hidden_size must be even for version double (two halves), got {c.hidden_size}"
            )
        device = check_device(c.device)
        if c.amp and device.type != "cuda":
            raise SettingError(f"amp=True needs a CUDA device, got device={c.device!r}")
        if c.resume and c.logdir is None:
            raise SettingError("resume=True needs a logdir holding checkpoint.pt")
        return c


@dataclass
class SupervisedResult:
    """Outcome of :func:`supervised.train.train`. ``history`` lists per epoch (epoch 0 = before training,
    after any warmup): ``epoch``, ``train_loss`` (None at 0), ``val_loss``, ``val_accuracy`` (MNIST),
    ``val_vaa`` (None when disabled) and ``time`` (seconds since the start)."""

    test_loss: float
    test_accuracy: float | None
    best_epoch: int
    best_val_loss: float
    history: dict[str, list]
    vaa_floor: float | None
    warmup_result: dict[str, Any] | None
    wall_time: float
    config: dict[str, Any]
    model: nn.Module | None = field(default=None, repr=False)
    pretraining_result: dict[str, Any] | None = None
    """Version auxiliary: the pretraining's wall time and, per epoch, its reconstruction loss and VAA."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the model)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}


FORMER_CONFIG_KEYS = {
    "warmup": "warmup_config",
    "lr": "learning_rate",
    "width": "hidden_size",
    "layers": "num_layers",
    "progress": "progress_bar",
}
"""Keys of configs written by earlier versions (``result.json``, checkpoints, grid ``config.json``) and
their names now (the reinforcement-learning side's: ``TMazeConfig``, ``DRQN``): read back under the new
name."""


def current_config_keys(saved: dict[str, Any]) -> dict[str, Any]:
    """``saved`` (a config as written to disk) with :data:`FORMER_CONFIG_KEYS` renamed."""
    return {FORMER_CONFIG_KEYS.get(key, key): value for key, value in saved.items()}


def config_from_dict(saved: dict[str, Any]) -> SupervisedConfig:
    """The :class:`SupervisedConfig` of a config written to disk (``result.json``'s ``config``, or a
    checkpoint's), its warmup settings as a :class:`WarmupConfig`, former key names accepted."""
    saved = current_config_keys(saved)
    if isinstance(saved.get("warmup_config"), dict):
        saved["warmup_config"] = WarmupConfig(**saved["warmup_config"])
    return SupervisedConfig(**saved)
