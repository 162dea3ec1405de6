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
sequences before training), ``double`` (double layers, only the first halves warmed up); Appendix H's
baseline ``auxiliary`` (:mod:`supervised.auxiliary`: the reconstruction loss as a pretraining, its
``auxiliary/loss`` and ``auxiliary/vaa`` per epoch in the subfolder ``auxiliary/``, then beside the task's
loss, ``train/reconstruction_loss``).
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, NamedTuple

import torch
from tqdm.auto import tqdm

# The `name as name` imports: names of the run's settings, network and checkpoint, defined in
# supervised/config.py, supervised/model.py and supervised/checkpoint.py, importable from here too.
from recurrent_q.multistability import estimate_vaa, warmup
from recurrent_q.tb import write_hyperparameters
from supervised.auxiliary import draw_anchor, reconstruction_loss
from supervised.checkpoint import CHECKPOINT, _check_same_run, _Progress, _save_checkpoint, load_checkpoint
from supervised.checkpoint import CHECKPOINT_KEYS as CHECKPOINT_KEYS
from supervised.checkpoint import RESUMABLE as RESUMABLE
from supervised.checkpoint import CheckpointError as CheckpointError
from supervised.config import FORMER_CONFIG_KEYS as FORMER_CONFIG_KEYS
from supervised.config import SYNTHETIC_SIZE as SYNTHETIC_SIZE
from supervised.config import VERSIONS as VERSIONS
from supervised.config import SupervisedConfig, SupervisedResult
from supervised.config import config_from_dict as config_from_dict
from supervised.config import current_config_keys as current_config_keys
from supervised.datasets import SequenceDataset
from supervised.model import EVAL_BATCH as EVAL_BATCH
from supervised.model import SequenceModel, _seed, evaluate, loss_and_correct, make_datasets, make_model


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


def _epoch_order(n: int, device: torch.device, *keys: int) -> torch.Tensor:
    """A permutation of ``n`` sequences drawn from the stream ``keys`` (an epoch's order), on ``device``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(_seed(*keys))).to(device)


def _pretrain_auxiliary(c: SupervisedConfig, model: SequenceModel, d: _Data, logdir: Path | None) -> dict:
    """Appendix H's pretraining: ``auxiliary_pretrain_epochs`` epochs on the reconstruction loss alone
    (its own Adam), the loss and the VAA after each epoch (``auxiliary/`` in the subfolder ``auxiliary``)."""
    assert model.auxiliary is not None
    writer = None
    if logdir is not None:
        from torch.utils.tensorboard import SummaryWriter

        writer = SummaryWriter(str(logdir / "auxiliary"))
    optimizer = torch.optim.Adam(model.parameters(), lr=c.learning_rate)
    anchors = torch.Generator().manual_seed(_seed(c.seed, 10))
    n_train, device = d.train.shape[0], d.train.device
    history: dict[str, list] = {"loss": [], "vaa": []}
    tic = time.perf_counter()
    epochs = range(1, c.auxiliary_pretrain_epochs + 1)
    for epoch in tqdm(epochs, desc="auxiliary pretraining", disable=not c.progress_bar):
        order = _epoch_order(n_train, device, c.seed, 11, epoch)
        loss_sum = torch.zeros((), device=device)
        for start in range(0, n_train, c.batch_size):
            idx = order[start : start + c.batch_size]
            x = d.dataset.to_inputs(d.train[idx])
            anchor = draw_anchor(c.auxiliary_length, x.shape[1], anchors)
            _, state = model.rnn(x[:, :anchor])
            loss = reconstruction_loss(model.auxiliary, state, x, anchor, c.auxiliary_length)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += loss.detach() * idx.shape[0]
        history["loss"].append((loss_sum / n_train).item())
        history["vaa"].append(_vaa(model, d.dataset, d.train, c, epoch))
        if writer is not None:
            writer.add_scalar("auxiliary/loss", history["loss"][-1], epoch)
            if history["vaa"][-1] is not None:
                writer.add_scalar("auxiliary/vaa", history["vaa"][-1], epoch)
    if writer is not None:
        writer.close()
    return {"seconds": time.perf_counter() - tic, "history": history}


def _train_epoch(
    c: SupervisedConfig,
    model: SequenceModel,
    optimizer: torch.optim.Optimizer,
    scaler: Any,
    d: _Data,
    epoch: int,
) -> tuple[float, float | None]:
    """One pass over the training sequences in a reproducible order (the same with or without resume):
    the mean task loss and (version auxiliary) the mean reconstruction loss."""
    n_train, device = d.train.shape[0], d.train.device
    order = _epoch_order(n_train, device, c.seed, 7, epoch)
    anchors = torch.Generator().manual_seed(_seed(c.seed, 8, epoch))
    loss_sum = torch.zeros((), device=device)
    reconstruction_sum = torch.zeros((), device=device)
    batches = range(0, n_train, c.batch_size)
    for start in tqdm(batches, leave=False, disable=not c.progress_bar, desc=f"epoch {epoch}"):
        idx = order[start : start + c.batch_size]
        x, y = d.dataset.to_inputs(d.train[idx]), d.train_targets[idx]
        with torch.autocast(device.type, dtype=torch.float16, enabled=c.amp):
            if model.auxiliary is None:
                loss, _ = loss_and_correct(d.dataset, model(x), y)
                total = loss
            else:
                anchor = draw_anchor(c.auxiliary_length, x.shape[1], anchors)
                output, state = model.forward_with_state(x, anchor)
                loss, _ = loss_and_correct(d.dataset, output, y)
                reconstruction = reconstruction_loss(model.auxiliary, state, x, anchor, c.auxiliary_length)
                total = loss + c.auxiliary_weight * reconstruction
                reconstruction_sum += reconstruction.detach() * idx.shape[0]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(total).backward()
        scaler.step(optimizer)
        scaler.update()
        loss_sum += loss.detach() * idx.shape[0]
    reconstruction_mean = (reconstruction_sum / n_train).item() if model.auxiliary is not None else None
    return (loss_sum / n_train).item(), reconstruction_mean


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
            checkpoint.get("pretraining_result"),
        )
        first_epoch, time_offset = checkpoint["epoch"] + 1, run.history["time"][-1]
    else:
        if writer is not None:
            write_hyperparameters(writer, asdict(c))
        if c.version in ("warmup", "double"):
            run.warmup_result = _warm_up(c, model, d, logdir)
        elif c.version == "auxiliary":
            run.pretraining_result = _pretrain_auxiliary(c, model, d, logdir)
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
        train_loss, reconstruction = _train_epoch(c, model, optimizer, scaler, d, epoch)
        _record(c, model, d, run, writer, epoch, train_loss, elapsed())
        if writer is not None and reconstruction is not None:
            writer.add_scalar("train/reconstruction_loss", reconstruction, epoch)
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
        pretraining_result=run.pretraining_result,
    )
    if writer is not None:
        writer.add_scalar("test/loss", test_loss, run.best_epoch)
        if test_accuracy is not None:
            writer.add_scalar("test/accuracy", test_accuracy, run.best_epoch)
        writer.close()
        torch.save(model.state_dict(), logdir / "best.pt")
        (logdir / "result.json").write_text(json.dumps(result.to_dict(), indent=1))
    return result
