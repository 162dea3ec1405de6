"""Supervised training of a cell stack + linear readout on the benchmarks of docs/specification.md §7.

One call, :func:`train`, runs one training session from a :class:`SupervisedConfig` and returns a
:class:`SupervisedResult` (test metrics of the best-validation weights, per-epoch history). With a
``logdir`` it also writes TensorBoard scalars (``train/loss``, ``val/loss``, ``val/vaa``,
``test/loss``, ``test/accuracy``; the warmup's ``warmup/*`` in the subfolder ``warmup/``; the settings as the
text ``hyperparameters``, ``recurrent_q.tb.write_hyperparameters``, as the T-Maze runner), a checkpoint
each epoch (``checkpoint.pt``, read back by ``resume=True``; the scalars an interrupted attempt logged
past it are purged), the best weights (``best.pt``) and ``result.json``. No global state: grids of runs
call it in a loop.

Versions (§6.2–6.3): ``classic`` (plain initialisation), ``warmup`` (Algorithm 3 on training
sequences before training), ``double`` (double layers, only the first halves warmed up).
"""

from __future__ import annotations

import copy
import json
import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from recurrent_q.cells import CELL_NAMES, check_device, make_cell
from recurrent_q.multistability import Version, WarmupConfig, estimate_vaa, warmup
from recurrent_q.tb import write_hyperparameters
from supervised.datasets import (
    MNIST_URL,
    TASKS,
    CopyFirstInput,
    Denoising,
    PermutedLineSequentialMNIST,
    PermutedSequentialMNIST,
    SequenceDataset,
)

VERSIONS: tuple[Version, ...] = ("classic", "warmup", "double")
"""The versions (:data:`recurrent_q.multistability.Version`) the supervised trainer runs."""
SYNTHETIC_SIZE = 40_000  # §4.1: 40 000 train and 40 000 test sequences
EVAL_BATCH = 1024
CHECKPOINT = "checkpoint.pt"
# Settings that may change between a run and its resumption.
RESUMABLE = ("epochs", "resume", "progress_bar", "device", "logdir", "data_dir", "download", "mnist_url")


@dataclass
class SupervisedConfig:
    """One supervised run. ``None`` fields take the task's default from docs/specification.md §7."""

    task: str = "copy"
    """benchmark: copy | denoising | psmnist | plsmnist"""
    T: int | None = None
    """sequence length: copy 50 (paper: 50, 300, 600), denoising 200; fixed by N for MNIST"""
    N: int | None = None
    """forgetting period: denoising 100 (paper: 5, 100); black rows of plsmnist 72 (72, 472)"""
    cell: str = "gru"
    """cell of the zoo: lstm | gru | mgu | brc | nbrc | chrono | mingru | lru"""
    version: Version = "classic"
    """classic | warmup (warmup before training) | double (double layers, partial warmup); not
    double-classic"""
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
    logdir: str | None = None
    """run directory for TensorBoard, checkpoints and result.json (None: nothing written)"""
    resume: bool = False
    """continue from logdir/checkpoint.pt if it exists"""
    progress_bar: bool = True
    """show progress bars"""

    def resolved(self) -> SupervisedConfig:
        """A copy with the task defaults filled in, after checking every field."""
        c = copy.deepcopy(self)
        _check_choice("task", c.task, TASKS)
        _check_choice("version", c.version, VERSIONS)
        _check_choice("cell", c.cell, CELL_NAMES)
        mnist = c.task in ("psmnist", "plsmnist")
        if c.task == "copy":
            c.T = 50 if c.T is None else c.T
            if c.N is not None:
                raise ValueError("N is not used by task copy; leave it unset")
        elif c.task == "denoising":
            c.T = 200 if c.T is None else c.T
            c.N = 100 if c.N is None else c.N
            if c.T <= c.N + 5:
                raise ValueError(f"T must be greater than N + 5 = {c.N + 5} for denoising, got T={c.T}")
        elif c.task == "psmnist":
            if c.N is not None or c.T not in (None, 784):
                raise ValueError("task psmnist has T = 784 and no N; leave T and N unset")
            c.T = 784
        else:
            c.N = (72 if c.T is None else c.T - 28) if c.N is None else c.N
            if c.N < 0 or c.T not in (None, 28 + c.N):
                raise ValueError(f"task plsmnist has T = 28 + N with N >= 0, got T={c.T}, N={c.N}")
            c.T = 28 + c.N
        c.num_layers = (1 if c.task == "copy" else 2) if c.num_layers is None else c.num_layers
        c.hidden_size = (128 if c.task == "copy" else 256) if c.hidden_size is None else c.hidden_size
        c.epochs = (70 if mnist else 50) if c.epochs is None else c.epochs
        c.vaa_batch_size = c.batch_size if c.vaa_batch_size is None else c.vaa_batch_size
        if not mnist:
            c.num_train = SYNTHETIC_SIZE if c.num_train is None else c.num_train
            c.num_test = SYNTHETIC_SIZE if c.num_test is None else c.num_test
        elif c.data_dir is None:
            raise ValueError(
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
        ):
            _check_positive(name, getattr(c, name))
        for name in ("num_train", "num_test"):
            if getattr(c, name) is not None:
                _check_positive(name, getattr(c, name))
        if c.vaa_iterations < 0:
            raise ValueError(f"vaa_iterations must be >= 0 (0 disables the VAA), got {c.vaa_iterations}")
        top = 0.5 if c.selection_split is not None else 1.0  # the selection set is as large as validation
        if not 0.0 < c.val_fraction < top:
            raise ValueError(f"val_fraction must be in (0, {top:g}), got {c.val_fraction}")
        split = c.selection_split
        if split is not None and (isinstance(split, bool) or not isinstance(split, int) or split < 0):
            raise ValueError(f"selection_split must be None or an integer >= 0, got {c.selection_split!r}")
        if c.version == "double" and c.hidden_size % 2:
            raise ValueError(f"hidden_size must be even for version double (two halves), got {c.hidden_size}")
        device = check_device(c.device)
        if c.amp and device.type != "cuda":
            raise ValueError(f"amp=True needs a CUDA device, got device={c.device!r}")
        if c.resume and c.logdir is None:
            raise ValueError("resume=True needs a logdir holding checkpoint.pt")
        return c


@dataclass
class SupervisedResult:
    """Outcome of :func:`train`. ``history`` lists per epoch (epoch 0 = before training, after
    any warmup): ``epoch``, ``train_loss`` (None at 0), ``val_loss``, ``val_accuracy`` (MNIST),
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

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (without the model)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "model"}


class SequenceModel(nn.Module):
    """Cell stack + linear readout on the steps that have targets (docs/specification.md §3, Readout).

    ``forward(x[B, T, F]) -> [B, K, output_size]`` for the ``K`` contiguous target steps.
    """

    def __init__(self, rnn: nn.Module, output_size: int, target_steps: tuple[int, ...]) -> None:
        super().__init__()
        if list(target_steps) != list(range(target_steps[0], target_steps[-1] + 1)):
            raise ValueError(f"target_steps must be contiguous, got {target_steps}")
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size, output_size)
        self.first, self.stop = target_steps[0], target_steps[-1] + 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)
        return self.head(out[:, self.first : self.stop])


def _check_choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _check_positive(name: str, value: int) -> None:
    if value < 1:
        raise ValueError(f"{name} must be >= 1, got {value}")


def _seed(*keys: int) -> int:
    """A 63-bit seed derived from ``keys`` (independent streams for data, batches, VAA...)."""
    return int(np.random.SeedSequence(list(keys)).generate_state(2, dtype=np.uint64)[0] >> np.uint64(1))


def make_datasets(config: SupervisedConfig) -> tuple[SequenceDataset, SequenceDataset]:
    """Training (before the validation split) and test datasets of a resolved config."""
    c = config
    if c.task == "copy":
        return CopyFirstInput(c.num_train, c.T, _seed(c.seed, 0)), CopyFirstInput(
            c.num_test, c.T, _seed(c.seed, 1)
        )
    if c.task == "denoising":
        return Denoising(c.num_train, c.T, c.N, _seed(c.seed, 0)), Denoising(
            c.num_test, c.T, c.N, _seed(c.seed, 1)
        )
    kwargs: dict[str, Any] = {"download": c.download, "base_url": c.mnist_url}
    if c.task == "plsmnist":
        kwargs["N"] = c.N
    cls = PermutedSequentialMNIST if c.task == "psmnist" else PermutedLineSequentialMNIST
    return (
        cls(c.data_dir, train=True, num_sequences=c.num_train, **kwargs),
        cls(c.data_dir, train=False, num_sequences=c.num_test, **kwargs),
    )


def make_model(config: SupervisedConfig, dataset: SequenceDataset) -> SequenceModel:
    """The cell stack of ``config`` (double layers for version double) with its readout."""
    c = config
    rnn = make_cell(
        c.cell,
        dataset.input_size,
        c.hidden_size,
        num_layers=c.num_layers,
        double=c.version == "double",
        t_max=c.t_max if c.cell == "chrono" else None,
    )
    return SequenceModel(rnn, dataset.output_size, dataset.target_steps)


def loss_and_correct(
    dataset: SequenceDataset, output: torch.Tensor, target: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean loss of a batch (squared error over the target steps, or NLL of the logits at T)
    and the number of correct classes (classification only)."""
    if dataset.kind == "regression":
        return F.mse_loss(output.squeeze(-1).float(), target), None
    logits = output[:, -1].float()
    return F.cross_entropy(logits, target), (logits.argmax(-1) == target).sum()


@torch.no_grad()
def evaluate(
    model: SequenceModel,
    dataset: SequenceDataset,
    data: torch.Tensor,
    targets: torch.Tensor,
    amp: bool = False,
) -> tuple[float, float | None]:
    """Mean loss and accuracy (None for regression) of ``model`` over ``data`` (on the model's device)."""
    model.eval()
    device = data.device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), device=device, dtype=torch.long)
    for start in range(0, data.shape[0], EVAL_BATCH):
        x = dataset.to_inputs(data[start : start + EVAL_BATCH])
        y = targets[start : start + EVAL_BATCH]
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            loss, right = loss_and_correct(dataset, model(x), y)
        loss_sum += loss * y.shape[0]
        if right is not None:
            correct += right
    model.train()
    n = data.shape[0]
    return (loss_sum / n).item(), (correct.item() / n if dataset.kind == "classification" else None)


def _vaa(
    model: SequenceModel, dataset: SequenceDataset, data: torch.Tensor, config: SupervisedConfig, epoch: int
) -> float | None:
    """VAA of the stack on training sequences (Algorithms 1–2), reproducible for a given epoch."""
    c = config
    if c.vaa_iterations == 0:
        return None
    generator = torch.Generator().manual_seed(_seed(c.seed, 3, epoch))
    count = min(data.shape[0], c.vaa_iterations * c.vaa_batch_size)
    chosen = torch.randperm(data.shape[0], generator=generator)[:count].to(data.device)
    sequences = dataset.to_inputs(data[chosen])
    model.eval()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(_seed(c.seed, 4, epoch))
        value = estimate_vaa(
            model.rnn,
            sequences,
            steps=c.vaa_steps,
            eps=c.vaa_eps,
            iterations=c.vaa_iterations,
            batch_size=min(c.vaa_batch_size, count),
            generator=generator,
        )
    model.train()
    return float(value)


def _summarise_warmup(result: Any, seconds: float) -> dict[str, Any]:
    """JSON-ready summary of a WarmupResult: wall time, last per-layer VAA* and loss, full history."""
    history = json.loads(
        json.dumps(asdict(result), default=lambda v: v.tolist() if hasattr(v, "tolist") else str(v))
    )
    vaa_star, loss = history.get("vaa_star") or [None], history.get("loss") or [None]
    return {"seconds": seconds, "final_vaa_star": vaa_star[-1], "final_loss": loss[-1], "history": history}


def train(config: SupervisedConfig) -> SupervisedResult:
    """Train one network on one benchmark (docs/specification.md §7); see the module docstring.

    :param config: the run's settings; unset fields take the task defaults.
    :return: test loss/accuracy of the weights of best validation loss, with the history.
    :raises ValueError: an unknown task, version, cell or device, or inconsistent sizes.
    :raises FileNotFoundError: a missing MNIST directory or file.
    """
    c = config.resolved()
    device = torch.device(c.device)
    # The caller's random state is left as it was: every draw here comes from seeded streams.
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        return _train(c, device)


class _Data(NamedTuple):
    """A run's data on its device: the training set split into training and validation, the test set."""

    dataset: SequenceDataset  # the training set (its to_inputs and loss conventions)
    test_set: SequenceDataset
    train: torch.Tensor
    train_targets: torch.Tensor
    val: torch.Tensor
    val_targets: torch.Tensor
    test: torch.Tensor
    test_targets: torch.Tensor


def _load_data(c: SupervisedConfig, device: torch.device) -> _Data:
    """Generated or read once, split by a seeded permutation, moved to the device once.

    With ``c.selection_split = i``, the permutation is split ``i``'s (the same for every seed, cell and
    version), the learning set gives a selection set too, and the selection set stands for the test set.
    """
    if c.selection_split is not None:  # one learning set for every split: the training data of seed 0
        train_full, test_set = make_datasets(replace(c, seed=0))
    else:
        train_full, test_set = make_datasets(c)
    held = 2 if c.selection_split is not None else 1
    n_val = max(1, round(c.val_fraction * len(train_full)))
    if len(train_full) - held * n_val < 1:
        raise ValueError(
            f"num_train={len(train_full)} leaves no training sequence after the validation"
            f"{' and selection' if held == 2 else ''} split"
        )
    stream = (c.selection_split, 9) if c.selection_split is not None else (c.seed, 2)
    split = torch.randperm(len(train_full), generator=torch.Generator().manual_seed(_seed(*stream)))
    data, targets = train_full.data.to(device), train_full.targets.to(device)
    train_idx, val_idx = split[held * n_val :].to(device), split[:n_val].to(device)
    if c.selection_split is not None:
        chosen = split[n_val : 2 * n_val].to(device)
        test, test_targets, test_set = data[chosen], targets[chosen], train_full
    else:
        test, test_targets = test_set.data.to(device), test_set.targets.to(device)
    return _Data(
        train_full,
        test_set,
        data[train_idx],
        targets[train_idx],
        data[val_idx],
        targets[val_idx],
        test,
        test_targets,
    )


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


def _warm_up(c: SupervisedConfig, model: SequenceModel, d: _Data, logdir: Path | None) -> dict[str, Any]:
    """Warmup (Algorithm 3) on training sequences; double: only the first halves (docs/specification.md §3).
    Its scalars go to ``logdir/warmup`` (a folder that no resume purges)."""
    generator = torch.Generator().manual_seed(_seed(c.seed, 6))
    chosen = torch.randperm(d.train.shape[0], generator=generator)[: c.warmup_sequences].to(d.train.device)
    writer = None
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(logdir / "warmup"))
    tic = time.perf_counter()
    result = warmup(
        model.rnn,
        d.dataset.to_inputs(d.train[chosen]),
        c.warmup_config,
        writer=writer,
        progress=c.progress_bar,
    )
    if writer is not None:
        writer.close()
    return _summarise_warmup(result, time.perf_counter() - tic)


def _train_epoch(
    c: SupervisedConfig,
    model: SequenceModel,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    d: _Data,
    epoch: int,
) -> float:
    """One pass over the training sequences in a reproducible order (the same with or without resume)."""
    n_train, device = d.train.shape[0], d.train.device
    order = torch.randperm(n_train, generator=torch.Generator().manual_seed(_seed(c.seed, 7, epoch))).to(
        device
    )
    loss_sum = torch.zeros((), device=device)
    batches = range(0, n_train, c.batch_size)
    for start in tqdm(batches, leave=False, disable=not c.progress_bar, desc=f"epoch {epoch}"):
        idx = order[start : start + c.batch_size]
        x, y = d.dataset.to_inputs(d.train[idx]), d.train_targets[idx]
        with torch.autocast(device.type, dtype=torch.float16, enabled=c.amp):
            loss, _ = loss_and_correct(d.dataset, model(x), y)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach() * idx.shape[0]
    return (loss_sum / n_train).item()


def _record(
    c: SupervisedConfig, model: SequenceModel, d: _Data, run: _Progress, writer: Any, epoch: int,
    train_loss: float | None, elapsed: float,
) -> None:  # fmt: skip
    """Validation loss, accuracy and VAA after ``epoch``: into the history, the best weights, TensorBoard."""
    val_loss, val_accuracy = evaluate(model, d.dataset, d.val, d.val_targets, c.amp)
    vaa = _vaa(model, d.dataset, d.train, c, epoch)
    for key, value in zip(
        run.history, (epoch, train_loss, val_loss, val_accuracy, vaa, elapsed), strict=True
    ):
        run.history[key].append(value)
    if epoch >= 1 and val_loss < run.best_val:
        run.best_val, run.best_epoch = val_loss, epoch
        run.best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if writer is not None:
        scalars = {
            "train/loss": train_loss,
            "val/loss": val_loss,
            "val/accuracy": val_accuracy,
            "val/vaa": vaa,
        }
        for tag, value in scalars.items():
            if value is not None:
                writer.add_scalar(tag, value, epoch)
        writer.flush()


def _save_checkpoint(
    path: Path,
    c: SupervisedConfig,
    epoch: int,
    model: SequenceModel,
    optimizer: Any,
    scaler: Any,
    run: _Progress,
) -> None:
    """Everything :func:`_train` needs to continue after ``epoch``, written atomically."""
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
        "config": asdict(c),
    }
    torch.save(state, path.with_suffix(".tmp"))
    path.with_suffix(".tmp").replace(path)


def _train(c: SupervisedConfig, device: torch.device) -> SupervisedResult:
    start_time = time.perf_counter()
    logdir = Path(c.logdir) if c.logdir is not None else None
    checkpoint_path = logdir / CHECKPOINT if logdir is not None else None
    checkpoint = None
    if c.resume and checkpoint_path.exists():
        checkpoint = load_checkpoint(checkpoint_path, device)
        _check_same_run(checkpoint["config"], c)
    d = _load_data(c, device)
    torch.manual_seed(_seed(c.seed, 5))
    model = make_model(c, d.dataset).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=c.learning_rate)
    scaler = torch.amp.GradScaler("cuda", enabled=c.amp)
    writer = None
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        logdir.mkdir(parents=True, exist_ok=True)
        # On resume, TensorBoard drops what an interrupted attempt logged past the checkpoint's epoch
        # (purge_step). The warmup logs in its own folder, which no purge touches.
        writer = SummaryWriter(str(logdir), purge_step=checkpoint["epoch"] + 1 if checkpoint else None)

    run = _Progress()
    if checkpoint is not None:
        model.load_state_dict(checkpoint["model"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        scaler.load_state_dict(checkpoint["scaler"])
        run = _Progress(
            checkpoint["history"],
            checkpoint["best_val"],
            checkpoint["best_epoch"],
            checkpoint["best_state"],
            checkpoint["warmup_result"],
        )
        first_epoch, time_offset = checkpoint["epoch"] + 1, run.history["time"][-1]
    else:
        if writer is not None:
            write_hyperparameters(writer, asdict(c))
        if c.version in ("warmup", "double"):
            run.warmup_result = _warm_up(c, model, d, logdir)
        first_epoch, time_offset = 0, 0.0

    def elapsed() -> float:
        return time_offset + time.perf_counter() - start_time

    if first_epoch == 0:
        _record(c, model, d, run, writer, 0, None, elapsed())  # after any warmup, before training
        first_epoch = 1
    epochs = tqdm(
        range(first_epoch, c.epochs + 1), desc=f"{c.task} {c.cell} {c.version}", disable=not c.progress_bar
    )
    for epoch in epochs:
        train_loss = _train_epoch(c, model, optimizer, scaler, d, epoch)
        _record(c, model, d, run, writer, epoch, train_loss, elapsed())
        epochs.set_postfix(train=train_loss, val=run.history["val_loss"][-1], vaa=run.history["val_vaa"][-1])
        if checkpoint_path is not None:
            _save_checkpoint(checkpoint_path, c, epoch, model, optimizer, scaler, run)

    # Report the weights of best validation loss on the test set.
    if run.best_state is not None:
        model.load_state_dict(run.best_state)
    test_loss, test_accuracy = evaluate(model, d.test_set, d.test, d.test_targets, c.amp)
    result = SupervisedResult(
        test_loss=test_loss,
        test_accuracy=test_accuracy,
        best_epoch=run.best_epoch,
        best_val_loss=run.best_val,
        history=run.history,
        vaa_floor=1.0 / min(c.vaa_batch_size, d.train.shape[0]) if c.vaa_iterations else None,
        warmup_result=run.warmup_result,
        wall_time=elapsed(),
        config=asdict(c),
        model=model,
    )
    if writer is not None:
        writer.add_scalar("test/loss", test_loss, run.best_epoch)
        if test_accuracy is not None:
            writer.add_scalar("test/accuracy", test_accuracy, run.best_epoch)
        writer.close()
        torch.save(model.state_dict(), logdir / "best.pt")
        (logdir / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result


CHECKPOINT_KEYS = ("epoch", "model", "optimizer", "scaler", "best_val", "best_epoch", "best_state")
CHECKPOINT_KEYS += ("history", "warmup_result", "config")
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


class CheckpointError(ValueError):
    """A checkpoint that cannot be read back (truncated, corrupt, or not written by :func:`train`)."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.path = path


def load_checkpoint(path: str | Path, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`train`.

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
