"""Supervised trainer: configuration errors, logging, best-validation weights, resume, learning."""

from __future__ import annotations

import gzip
import json
import time
import typing
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recurrent_q.cells import CELL_NAMES
from supervised import train as train_module
from supervised.train import SupervisedConfig, make_datasets, train

TINY = {"T": 8, "hidden_size": 8, "epochs": 2, "num_train": 80, "num_test": 40, "progress_bar": False}
FAST_VAA = {"vaa_iterations": 1, "vaa_steps": 50, "vaa_batch_size": 8}


def tiny(**overrides) -> SupervisedConfig:
    settings = {**TINY, "vaa_iterations": 0} | overrides
    return SupervisedConfig(**settings)


def fast_warmup(config: SupervisedConfig) -> SupervisedConfig:
    """Shrink the warmup of ``config`` (whatever WarmupConfig calls its fields) to a few steps."""
    for name, value in {"steps": 3, "batch_size": 16, "max_stabilisation": 20}.items():
        if hasattr(config.warmup_config, name):
            setattr(config.warmup_config, name, value)
    return config


def write_idx_dir(root: Path, n_train: int = 60, n_test: int = 20) -> None:
    rng = np.random.default_rng(0)
    for stem, shape in {
        "train-images-idx3-ubyte": (n_train, 28, 28),
        "train-labels-idx1-ubyte": (n_train,),
        "t10k-images-idx3-ubyte": (n_test, 28, 28),
        "t10k-labels-idx1-ubyte": (n_test,),
    }.items():
        array = rng.integers(0, 256 if len(shape) == 3 else 10, shape, dtype=np.uint8)
        header = bytes([0, 0, 0x08, len(shape)]) + np.array(shape, dtype=">u4").tobytes()
        root.mkdir(parents=True, exist_ok=True)
        (root / (stem + ".gz")).write_bytes(gzip.compress(header + array.tobytes()))


# --- configuration errors ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (
            {"task": "sorting"},
            r"task must be one of 'copy', 'denoising', 'psmnist', 'plsmnist'; got 'sorting'",
        ),
        ({"version": "hot"}, r"version must be one of 'classic', 'warmup', 'double', 'auxiliary'; got 'hot'"),
        ({"cell": "rnn"}, r"cell must be one of .*gru.*; got 'rnn'"),
        ({"task": "denoising", "T": 105, "N": 100}, r"T must be greater than N \+ 5 = 105"),
        ({"task": "psmnist", "T": None}, r"data_dir is required for task psmnist"),
        ({"task": "plsmnist", "T": None}, r"data_dir is required for task plsmnist"),
        ({"amp": True}, r"amp=True needs a CUDA device"),
        ({"device": "tpu"}, r"device must be a torch device"),
        pytest.param(
            {"device": "cuda"},
            r"device='cuda' but CUDA is not available here",
            marks=pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA"),
        ),
        ({"val_fraction": 1.0}, r"val_fraction must be in \(0, 1\)"),
        ({"val_fraction": 0.5, "selection_split": 0}, r"val_fraction must be in \(0, 0.5\)"),
        ({"selection_split": -1}, r"selection_split must be None or an integer >= 0, got -1"),
        ({"resume": True}, r"resume=True needs a logdir"),
        ({"task": "copy", "N": 3}, r"N is not used by task copy"),
    ],
)
def test_bad_settings_raise_clear_errors(overrides, message):
    with pytest.raises(ValueError, match=message):
        train(tiny(**overrides))


def test_missing_data_dir(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"MNIST data directory .*absent.* does not exist"):
        train(tiny(task="plsmnist", T=None, N=2, data_dir=str(tmp_path / "absent")))


def test_defaults_follow_spec():
    copy_task = SupervisedConfig().resolved()
    assert (copy_task.T, copy_task.num_layers, copy_task.hidden_size, copy_task.epochs) == (50, 1, 128, 50)
    assert (copy_task.num_train, copy_task.num_test, copy_task.batch_size, copy_task.learning_rate) == (
        40_000,
        40_000,
        32,
        1e-3,
    )
    assert (
        copy_task.val_fraction,
        copy_task.vaa_steps,
        copy_task.vaa_iterations,
        copy_task.vaa_batch_size,
    ) == (
        0.2,
        10_000,
        10,
        32,
    )
    mnist = SupervisedConfig(task="plsmnist", data_dir="x").resolved()
    assert (mnist.T, mnist.N, mnist.num_layers, mnist.hidden_size, mnist.epochs) == (100, 72, 2, 256, 70)
    denoising = SupervisedConfig(task="denoising").resolved()
    assert (denoising.T, denoising.N) == (200, 100)


def test_a_version_the_supervised_trainer_does_not_run_is_named_with_the_ones_it_does():
    allowed = "version must be one of 'classic', 'warmup', 'double', 'auxiliary'; got 'double-classic'"
    with pytest.raises(ValueError, match=allowed):
        SupervisedConfig(version="double-classic").resolved()


def test_the_cell_choices_are_the_registrys():
    """The choices of ``--cell`` (the type of ``SupervisedConfig.cell``) are the cells of CELL_NAMES."""
    assert typing.get_args(typing.get_type_hints(SupervisedConfig)["cell"]) == CELL_NAMES


def logged_settings(run_dir: Path) -> dict[str, str]:
    """The settings a run wrote to TensorBoard as the text ``hyperparameters`` (CleanRL's tag), by name."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert "hyperparameters/text_summary" in events.Tags()["tensors"], events.Tags()
    (event,) = events.Tensors("hyperparameters/text_summary")
    header, rule, *rows = event.tensor_proto.string_val[0].decode().splitlines()
    assert (header, rule) == ("|param|value|", "|-|-|")
    return dict(row.strip("|").split("|", 1) for row in rows)


# --- runs --------------------------------------------------------------------------------------
def test_run_logs_tensorboard_checkpoint_and_result(tmp_path):
    rng_state = torch.get_rng_state()
    result = train(fast_warmup(tiny(logdir=str(tmp_path), version="warmup", **FAST_VAA)))
    assert torch.equal(torch.get_rng_state(), rng_state)  # the caller's random state is untouched
    assert result.history["epoch"] == [0, 1, 2] and result.history["train_loss"][0] is None
    assert all(0.0 < v <= 1.0 for v in result.history["val_vaa"])
    assert result.vaa_floor == 1 / 8 and result.warmup_result is not None
    assert result.test_accuracy is None and np.isfinite(result.test_loss)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    tags = set(events.Tags()["scalars"])
    assert {"train/loss", "val/loss", "val/vaa", "test/loss"} <= tags
    assert [e.step for e in events.Scalars("val/loss")] == [0, 1, 2]
    assert events.Scalars("test/loss")[0].value == pytest.approx(result.test_loss)
    settings = logged_settings(tmp_path)  # the resolved config, under the tag of the T-Maze runner
    assert list(settings) == list(result.config) and settings["hidden_size"] == "8"
    assert settings["version"] == "warmup" and settings["num_layers"] == "1"
    saved = json.loads((tmp_path / "result.json").read_text())
    assert saved["test_loss"] == pytest.approx(result.test_loss) and saved["config"]["T"] == 8
    assert (tmp_path / "checkpoint.pt").is_file() and (tmp_path / "best.pt").is_file()


def test_best_validation_weights_are_reported(monkeypatch):
    """Epoch 1 has the best (forced) validation loss: the test metrics are those of its weights."""
    real_evaluate = train_module.evaluate
    forced = iter([5.0, 1.0, 3.0, 2.0])  # epochs 0..3: validation losses; epoch 1 is best

    def fake_evaluate(model, dataset, data, targets, amp=False):
        loss, accuracy = real_evaluate(model, dataset, data, targets, amp)
        return (next(forced, loss), accuracy) if data.shape[0] == 16 else (loss, accuracy)

    monkeypatch.setattr(train_module, "evaluate", fake_evaluate)
    result = train(tiny(epochs=3))
    monkeypatch.undo()
    assert result.best_epoch == 1 and result.best_val_loss == 1.0
    after_one = train(tiny(epochs=1))
    after_three = train(tiny(epochs=3))
    assert result.test_loss == pytest.approx(after_one.test_loss, rel=1e-6)
    assert after_three.test_loss != pytest.approx(after_one.test_loss, rel=1e-6)
    for name, tensor in result.model.state_dict().items():
        torch.testing.assert_close(tensor, after_one.model.state_dict()[name])


def test_resume_continues_from_the_saved_epoch(tmp_path):
    def config(**overrides) -> SupervisedConfig:
        return fast_warmup(tiny(version="warmup", **FAST_VAA, **overrides))

    straight = train(config(epochs=3))
    train(config(epochs=2, logdir=str(tmp_path)))
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert checkpoint["epoch"] == 2
    checkpoint["history"]["train_loss"][1] = 123.0  # marks the history that must be carried on
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    time.sleep(1.1)  # event files are read in the order of their names, which begin with their second
    resumed = train(config(epochs=3, logdir=str(tmp_path), resume=True))
    assert resumed.history["epoch"] == [0, 1, 2, 3] and resumed.history["train_loss"][1] == 123.0
    assert resumed.history["train_loss"][2:] == pytest.approx(straight.history["train_loss"][2:], rel=1e-6)
    assert resumed.history["val_vaa"] == pytest.approx(straight.history["val_vaa"])
    assert resumed.test_loss == pytest.approx(straight.test_loss, rel=1e-6)
    assert resumed.warmup_result["final_loss"] == pytest.approx(straight.warmup_result["final_loss"])
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    warmup_events = EventAccumulator(str(tmp_path / "warmup"))
    warmup_events.Reload()
    assert [e.step for e in warmup_events.Scalars("warmup/loss")] == [1, 2, 3]  # the warmup's log survives
    with pytest.raises(ValueError, match=r"other settings \(hidden_size\)"):
        train(config(epochs=3, hidden_size=6, logdir=str(tmp_path), resume=True))


@pytest.mark.parametrize("cell", CELL_NAMES)
@pytest.mark.parametrize("version", ["classic", "double", "auxiliary"])
def test_every_cell_and_version_runs(cell, version):
    config = fast_warmup(tiny(cell=cell, version=version, epochs=1, task="denoising", T=12, N=5, **FAST_VAA))
    config.auxiliary_pretrain_epochs = 1
    result = train(config)
    assert np.isfinite(result.test_loss) and len(result.history["val_loss"]) == 2
    assert (result.warmup_result is not None) == (version == "double")
    assert (result.pretraining_result is not None) == (version == "auxiliary")


def test_mnist_accuracy_on_written_files(tmp_path):
    write_idx_dir(tmp_path)
    config = tiny(task="plsmnist", T=None, N=3, data_dir=str(tmp_path), num_train=None, num_test=None)
    result = train(config)
    _, test_set = make_datasets(config.resolved())
    with torch.no_grad():
        logits = result.model(test_set.to_inputs(test_set.data))[:, -1]
    expected = (logits.argmax(-1) == test_set.targets).float().mean().item()
    assert result.test_accuracy == pytest.approx(expected)
    loss = torch.nn.functional.cross_entropy(logits, test_set.targets).item()
    assert result.test_loss == pytest.approx(loss, rel=1e-5)
    assert len(result.history["val_accuracy"]) == 3 and result.history["val_accuracy"][0] is not None


def test_scripts_train_and_plot(tmp_path):
    from experiments.cli import plot_runs, train_supervised

    for seed in (0, 1):
        train_supervised.main(
            [
                "--T",
                "6",
                "--hidden-size",
                "4",
                "--epochs",
                "2",
                "--num-train",
                "40",
                "--num-test",
                "10",
                "--seed",
                str(seed),
            ]
            + [
                "--vaa-iterations",
                "1",
                "--vaa-steps",
                "20",
                "--no-progress-bar",
                "--logdir",
                str(tmp_path / f"copy__{seed}"),
            ]
        )
    output = tmp_path / "curves.png"
    plot_runs.main([str(tmp_path / "copy__0"), str(tmp_path / "copy__1"), "--output", str(output)])
    assert output.stat().st_size > 10_000


def test_train_supervised_names_missing_or_corrupt_mnist_in_one_line(tmp_path, capsys):
    """The command: a missing MNIST folder or a corrupt file is one error line naming it, exit 2."""
    from experiments.cli import train_supervised

    missing = tmp_path / "no-mnist"
    assert train_supervised.main(["--task", "psmnist", "--data-dir", str(missing), "--no-progress-bar"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: MNIST data directory {missing} does not exist") and err.count("\n") == 1
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "train-images-idx3-ubyte").write_bytes(b"not an IDX file")
    (corrupt / "train-labels-idx1-ubyte").write_bytes(b"not an IDX file")
    assert train_supervised.main(["--task", "psmnist", "--data-dir", str(corrupt), "--no-progress-bar"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "train-images-idx3-ubyte" in err and err.count("\n") == 1


def test_train_supervised_names_a_bad_setting_in_one_line(tmp_path, capsys):
    """A setting the flags' parsing does not check (checked by ``SupervisedConfig.resolved``): one error line
    naming it, exit status 2."""
    from experiments.cli import train_supervised

    flags = ["--logdir", str(tmp_path / "run"), "--no-progress-bar"]
    assert train_supervised.main(["--hidden-size", "0", *flags]) == 2
    assert capsys.readouterr().err == "error: hidden_size must be an integer >= 1; got 0\n"
    assert train_supervised.main(["--version", "double", "--hidden-size", "5", *flags]) == 2
    expected = "error: hidden_size must be even for version double (two halves), got 5\n"
    assert capsys.readouterr().err == expected


def test_warmup_learns_copy_where_classic_does_not():
    """Copy first input, T = 30, GRU 1×32, 6 short epochs: the warmed-up GRU learns, the classic one
    stays at the variance of u_1 (measured over seeds 0-6: warmup 0.03-0.21, classic 0.95-1.14)."""
    common = {"task": "copy", "T": 30, "hidden_size": 32, "epochs": 6, "num_train": 2500, "num_test": 500}
    classic = train(SupervisedConfig(**common, progress_bar=False, vaa_iterations=0))
    warmed = SupervisedConfig(
        **common, progress_bar=False, version="warmup", vaa_steps=2000, vaa_iterations=1
    )
    warmed.warmup_config.steps, warmed.warmup_config.batch_size = 30, 100
    result = train(warmed)
    assert classic.test_loss > 0.8
    assert result.test_loss < 0.4
    assert result.history["val_vaa"][0] > 0.5  # multistable after the warmup, before training


def test_resume_purges_what_an_interrupted_attempt_logged_past_the_checkpoint(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    config = fast_warmup(tiny(version="warmup", epochs=2, logdir=str(tmp_path)))
    train(config)
    # an attempt killed after logging epoch 3 but before its checkpoint: its points must not stay.
    # (Event files are read in the order of their names, which begin with the second they were made.)
    time.sleep(1.1)
    with SummaryWriter(str(tmp_path)) as stale:
        stale.add_scalar("train/loss", 999.0, 3)
        stale.add_scalar("val/loss", 999.0, 3)
    time.sleep(1.1)
    config.epochs, config.resume = 3, True
    resumed = train(config)
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    assert [e.step for e in events.Scalars("train/loss")] == [1, 2, 3]
    assert events.Scalars("train/loss")[-1].value == pytest.approx(resumed.history["train_loss"][3])
    assert [e.step for e in events.Scalars("val/loss")] == [0, 1, 2, 3]
    warmup_events = EventAccumulator(str(tmp_path / "warmup"))
    warmup_events.Reload()
    assert [e.step for e in warmup_events.Scalars("warmup/loss")] == [1, 2, 3]  # untouched by the purge


@pytest.mark.parametrize("damage", ["truncated", "not a checkpoint"])
def test_an_unreadable_checkpoint_is_named(tmp_path, damage):
    from supervised.train import CheckpointError

    train(tiny(epochs=1, logdir=str(tmp_path)))
    path = tmp_path / "checkpoint.pt"
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    else:
        torch.save({"epoch": 1}, path)
    with pytest.raises(CheckpointError, match=rf"{path}.*(unreadable|missing: model)") as error:
        train(tiny(epochs=2, logdir=str(tmp_path), resume=True))
    assert error.value.path == path


def test_train_supervised_resume_needs_a_logdir(monkeypatch):
    from experiments.cli import train_supervised

    monkeypatch.setattr(train_supervised, "train", lambda config: pytest.fail("must not train"))
    with pytest.raises(SystemExit, match="--resume needs --logdir"):
        train_supervised.main(["--resume"])


def test_checkpoints_and_configs_written_with_former_key_names_are_read_back(tmp_path):
    """Earlier versions saved the warmup settings as ``warmup`` (now ``warmup_config``) and its summary as
    ``warmup`` (now ``warmup_result``)."""
    config = SupervisedConfig(task="copy", T=10, version="warmup")
    config.warmup_config.steps = 7
    former_config = {("warmup" if k == "warmup_config" else k): v for k, v in asdict(config).items()}
    assert train_module.config_from_dict(former_config) == config
    train_module._check_same_run(former_config, config)  # the same run: no error
    changed = {**former_config, "warmup": {**former_config["warmup"], "steps": 8}}
    with pytest.raises(ValueError, match="other settings \\(warmup_config\\)"):
        train_module._check_same_run(changed, config)
    former = {k: None for k in train_module.CHECKPOINT_KEYS if k != "warmup_result"}
    former |= {"warmup": {"final_loss": 0.5}, "config": former_config}
    torch.save(former, tmp_path / "checkpoint.pt")
    checkpoint = train_module.load_checkpoint(tmp_path / "checkpoint.pt")
    assert checkpoint["warmup_result"] == {"final_loss": 0.5} and "warmup" not in checkpoint


def test_configs_and_checkpoints_written_with_the_former_supervised_names_are_read_back(tmp_path):
    """Before the supervised config took the reinforcement-learning side's names it said ``lr``, ``width``,
    ``layers`` and ``progress`` (now ``learning_rate``, ``hidden_size``, ``num_layers``, ``progress_bar``):
    a config, a checkpoint and a ``result.json`` written then are read back, and a run resumes from it."""
    from experiments.horizon import load_supervised_run

    config = tiny(epochs=1, hidden_size=6, num_layers=2, learning_rate=2e-3, logdir=str(tmp_path))
    former_config = {
        "T": 8, "N": None, "task": "copy", "cell": "gru", "version": "classic", "layers": 2, "width": 6,
        "epochs": 1, "lr": 2e-3, "num_train": 80, "num_test": 40, "vaa_iterations": 0,
        "logdir": str(tmp_path), "progress": False,
    }  # fmt: skip
    assert train_module.config_from_dict(former_config) == config
    train_module._check_same_run(former_config, config)  # the same run: no error
    with pytest.raises(ValueError, match=r"other settings \(hidden_size\)"):
        train_module._check_same_run({**former_config, "width": 8}, config)
    train(config)
    checkpoint = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    checkpoint["config"] = {**asdict(config.resolved()), **former_config, "epochs": 1}
    for name in ("learning_rate", "hidden_size", "num_layers", "progress_bar"):
        del checkpoint["config"][name]
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    result = json.loads((tmp_path / "result.json").read_text())
    result["config"] = checkpoint["config"]
    (tmp_path / "result.json").write_text(json.dumps(result))
    loaded, model = load_supervised_run(tmp_path)
    assert (loaded.hidden_size, loaded.num_layers, loaded.learning_rate) == (6, 2, 2e-3)
    assert model.rnn.hidden_size == 6
    resumed = train(
        tiny(epochs=2, hidden_size=6, num_layers=2, learning_rate=2e-3, logdir=str(tmp_path), resume=True)
    )
    assert resumed.history["epoch"] == [0, 1, 2]


def test_a_selection_split_holds_out_a_selection_set_the_same_for_every_cell_and_seed():
    """Appendix F: with selection_split = i, the learning set (seed 0's training data) is split into
    training, validation and selection sets, disjoint and covering it; split i does not depend on the cell,
    version or seed; another i is another split; the test set is never used (the "test" is the selection)."""

    def parts(**overrides):
        config = tiny(task="copy", T=10, num_train=50, num_test=30, **overrides).resolved()
        data = train_module._load_data(config, torch.device("cpu"))
        return [data.train, data.val, data.test], data

    learning = make_datasets(tiny(task="copy", T=10, num_train=50, num_test=30, seed=0).resolved())[0].data
    rows = {tuple(row.flatten().tolist()): i for i, row in enumerate(learning)}
    (train_part, val, selection), data = parts(selection_split=0, seed=3)
    found = [sorted(rows[tuple(r.flatten().tolist())] for r in part) for part in (train_part, val, selection)]
    assert [len(f) for f in found] == [30, 10, 10]
    assert sorted(sum(found, [])) == list(range(50))  # disjoint, and the whole learning set
    same, _ = parts(selection_split=0, seed=7, cell="lstm", version="warmup")
    assert all(torch.equal(a, b) for a, b in zip(same, (train_part, val, selection), strict=True))
    other, _ = parts(selection_split=1, seed=3)
    assert not torch.equal(other[2], selection)
    standard, _ = parts(seed=3)
    assert standard[2].shape[0] == 30 and not any(tuple(r.flatten().tolist()) in rows for r in standard[2])
