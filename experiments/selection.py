"""Appendix F's selection of the supervised settings, run by Optuna on the grid engine.

The paper selects, per cell and version, the number of layers, the width, the learning rate and the batch
size by a grid search: each setting is trained on five splits of the learning set into training,
validation and *selection* sets (the same splits for every cell and version), the weights of lowest
validation loss are evaluated on the selection set, and the setting of lowest mean selection loss is
selected; the selected setting is then trained five times with the standard split and its test figures
are reported. Here:

- a study per (task size, cell, version), an Optuna study whose storage (a journal file, ``study.log``) is
  in its folder ``<out>/selection/<experiment>/<preset>/<study>/``, its runs under ``splits/`` and
  ``final/``: a relaunch resumes it (a trial cut by a crash is run again, and the runs it had finished
  are not);
- a trial's splits are runs of the grid engine (:mod:`experiments.grid`, ``selection_split = i`` of
  ``supervised.train.SupervisedConfig``), run by local worker processes;
- with ``ray_address``, the study is driven by Ray Tune: ``ray.tune.search.optuna.OptunaSearch`` asks the
  same Optuna study (the same journal, the same sampler, the grid's settings enqueued in it) and every
  trial is a Tune trial of one CPU on the cluster, which trains its splits one after the other, so trials
  run side by side on as many CPUs as the cluster has; Tune's own files go to ``tune/`` in the study's
  folder; the ``final_seeds`` runs are then one Ray task each;
- ``sampler="grid"`` is the paper's grid search (every setting of :data:`SEARCH_SPACES`, in order);
  ``"tpe"`` is Optuna's TPE sampler for ``n_trials`` trials, for spaces too large to enumerate;
- the study ends with ``selection.md`` (the table of trials, best first) and ``selection.json`` (the
  selected setting), and, with ``final_seeds``, the selected setting trained on the standard split with
  as many seeds, its test loss (and accuracy) as mean ± std.
"""

from __future__ import annotations

import itertools
import math
import statistics
from pathlib import Path
from typing import Any

from experiments.grid import run_local, run_ray
from experiments.presets import GRIDS, PRESETS, Run
from experiments.results import table_lines
from experiments.run_dirs import claimed, write_json

SELECTION_EXPERIMENTS = ("copy", "denoising", "psmnist", "plsmnist")
"""The supervised experiments whose settings can be selected."""

SEARCH_SPACES: dict[str, dict[str, list]] = {
    # Appendix F (Tables F.1 and F.2): layers, width, learning rate, batch size
    "paper": {
        "num_layers": [1, 2, 3],
        "hidden_size": [256, 512],
        "learning_rate": [1e-4, 5e-4, 1e-3],
        "batch_size": [32, 64],
    },
    "small": {
        "num_layers": [1, 2],
        "hidden_size": [32, 64],
        "learning_rate": [5e-4, 1e-3],
        "batch_size": [32],
    },
    "smoke": {"num_layers": [1], "hidden_size": [8], "learning_rate": [5e-4, 1e-3], "batch_size": [32]},
}
"""The settings searched at each preset (the paper's grid at ``paper``)."""

SPLITS = {"paper": 5, "small": 3, "smoke": 2}
"""Splits of the learning set per setting (the paper: 5)."""


def _format(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _grid_config(experiment: str, preset: str, size: dict[str, int] | None) -> tuple[dict, dict]:
    if experiment not in SELECTION_EXPERIMENTS:
        raise ValueError(f"experiment must be one of {', '.join(SELECTION_EXPERIMENTS)}; got {experiment!r}")
    if preset not in PRESETS:
        raise ValueError(f"preset must be one of {', '.join(PRESETS)}; got {preset!r}")
    grid = GRIDS[experiment][preset]
    return grid["common"], dict(size if size is not None else grid["sizes"][-1])


def study_runs(
    experiment: str, preset: str, size: dict, cell: str, version: str, params: dict, seeds: range, split: bool
) -> list[Run]:
    """The runs of one setting: on selection splits ``seeds`` (``split``) or on the standard split."""
    common, _ = _grid_config(experiment, preset, size)
    labels = tuple(size.items()) + (("cell", cell), ("version", version)) + tuple(params.items())
    runs = []
    for seed in seeds:
        config = {**common, **size, "cell": cell, "version": version, **params, "seed": seed}
        if split:
            config["selection_split"] = seed
        runs.append(Run(experiment, "supervised", labels, seed, config))
    return runs


def _split_losses(
    study_of: dict[str, Any], params: dict, splits: int, root: Path, extra: dict, workers: int
) -> list[float | None]:
    """The selection-set losses of ``params`` on the study's splits (None where a split diverged), its runs
    trained by local worker processes under ``root/splits`` (those already there are read back)."""
    runs = study_runs(**study_of, params=params, seeds=range(splits), split=True)
    runs = [Run(r.experiment, r.kind, r.labels, r.seed, {**r.config, **extra}) for r in runs]
    results = run_local(runs, root / "splits", workers, progress=False)[0]
    return [results[run.name]["test_loss"] for run in runs]  # the selection set's loss


def _selection_loss(losses: list[float | None]) -> float:
    # a diverged split (its loss null) makes the setting the worst there is
    return math.inf if any(loss is None for loss in losses) else statistics.fmean(losses)


def _tune_trial(config: dict, study_of: dict, splits: int, root: str, extra: dict) -> dict[str, Any]:
    """A Ray Tune trial: the splits of one setting, one after the other on the trial's CPU."""
    losses = _split_losses(study_of, config, splits, Path(root), extra, workers=1)
    return {"selection_loss": _selection_loss(losses), "selection_losses": losses}


def _optimize_with_tune(
    study: Any,
    space: dict[str, list],
    sampler: Any,
    n_trials: int,
    study_of: dict[str, Any],
    splits: int,
    root: Path,
    extra: dict,
    address: str,
) -> None:
    """``n_trials`` trials of ``study`` driven by Ray Tune's Optuna searcher on the cluster at ``address``
    (``"local"``: one started here). The searcher asks and tells the same study (its journal storage), so
    a relaunch without Ray, or with it, sees every trial; the per-split losses go to the trials' user
    attributes, as :func:`select`'s own objective puts them."""
    try:
        import optuna
        import ray
        from ray import tune
        from ray.tune.search.optuna import OptunaSearch
    except ImportError as error:
        raise ImportError("--ray-address needs Ray Tune: pip install '.[sweep]'") from error

    class _Searcher(OptunaSearch):
        """Tune's Optuna searcher, which also keeps the per-split losses in the trial's user attributes."""

        def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
            if result and trial_id in self._ot_trials:
                self._ot_trials[trial_id].set_user_attr("selection_losses", result["selection_losses"])
            super().on_trial_complete(trial_id, result, error)

    distributions = {
        key: optuna.distributions.CategoricalDistribution(values) for key, values in space.items()
    }
    searcher = _Searcher(
        space=distributions,
        metric="selection_loss",
        mode="min",
        sampler=sampler,
        study_name=study.study_name,
        storage=study._storage,
    )
    trainable = tune.with_resources(
        tune.with_parameters(
            _tune_trial, study_of=study_of, splits=splits, root=str(root.resolve()), extra=extra
        ),
        {"cpu": 1},
    )
    if address == "local":
        ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    else:
        ray.init(address=address, log_to_driver=False)
    try:
        tuner = tune.Tuner(
            trainable,
            tune_config=tune.TuneConfig(search_alg=searcher, num_samples=n_trials),
            run_config=tune.RunConfig(storage_path=str((root / "tune").resolve()), name="trials", verbose=0),
        )
        grid = tuner.fit()
    finally:
        ray.shutdown()
    errors = [result.error for result in grid if result.error is not None]
    if errors:
        raise RuntimeError(f"{len(errors)} Ray Tune trial(s) of the study in {root} failed: {errors[0]!r}")


def select(
    experiment: str,
    cell: str,
    version: str,
    preset: str = "small",
    size: dict[str, int] | None = None,
    out: str | Path = "results",
    sampler: str = "grid",
    n_trials: int | None = None,
    splits: int | None = None,
    final_seeds: int = 0,
    workers: int = 2,
    ray_address: str | None = None,
    data_dir: str | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or resume) the selection study of ``cell``/``version`` on ``experiment`` at ``preset``.

    :param size: the task size (``{"T": 200, "N": 100}``); default: the preset's last (largest) size.
    :param sampler: ``"grid"`` (every setting of the preset's space, the paper's) or ``"tpe"``.
    :param n_trials: trials of the TPE sampler (the grid runs every setting).
    :param splits: splits per setting (default :data:`SPLITS` of the preset).
    :param final_seeds: train the selected setting on the standard split with seeds 0, 1, ... and report
        its test figures (0: do not).
    :return: ``{"selected", "selection_loss", "trials" (rows of the table), "final" (test figures)}``.
    """
    try:
        import optuna
    except ImportError as error:
        raise ImportError("the selection needs Optuna: pip install '.[sweep]'") from error
    _, size = _grid_config(experiment, preset, size)
    if sampler not in ("grid", "tpe"):
        raise ValueError(f"sampler must be 'grid' or 'tpe'; got {sampler!r}")
    if sampler == "tpe" and (not isinstance(n_trials, int) or n_trials < 1):
        raise ValueError(f"n_trials must be an integer >= 1 with sampler 'tpe'; got {n_trials!r}")
    splits = SPLITS[preset] if splits is None else splits
    if isinstance(splits, bool) or not isinstance(splits, int) or splits < 1:
        raise ValueError(f"splits must be an integer >= 1; got {splits!r}")
    space = SEARCH_SPACES[preset]
    name = "__".join([*(f"{k}={v}" for k, v in size.items()), f"cell={cell}", f"version={version}"])
    root = Path(out) / "selection" / experiment / preset / name
    root.mkdir(parents=True, exist_ok=True)
    extra = {"data_dir": str(data_dir)} if data_dir is not None else {}

    study_of = {"experiment": experiment, "preset": preset, "size": size, "cell": cell, "version": version}

    def execute(runs: list[Run], where: Path) -> dict[str, dict]:
        runs = [Run(r.experiment, r.kind, r.labels, r.seed, {**r.config, **extra}) for r in runs]
        if ray_address:
            return run_ray(runs, where, ray_address, progress=False)[0]
        return run_local(runs, where, workers, progress=False)[0]

    def objective(trial: optuna.Trial) -> float:
        params = {key: trial.suggest_categorical(key, values) for key, values in space.items()}
        losses = _split_losses(study_of, params, splits, root, extra, workers)
        trial.set_user_attr("selection_losses", losses)
        return _selection_loss(losses)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(root / "study.log"))
    )
    chosen = optuna.samplers.TPESampler(seed=0) if sampler == "tpe" else optuna.samplers.RandomSampler(seed=0)
    with claimed(root.parent, root.name):  # one launch works on a study at a time
        study = optuna.create_study(
            study_name=name, storage=storage, sampler=chosen, direction="minimize", load_if_exists=True
        )
        trials = study.get_trials(deepcopy=False)
        for trial in trials:  # cut by a crash of an earlier launch: run again (its finished splits are kept)
            if trial.state == optuna.trial.TrialState.RUNNING:
                study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
                if sampler == "tpe":
                    study.enqueue_trial(trial.params)
        done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
        if sampler == "grid":
            seen = {
                tuple(sorted(t.params.items())) for t in trials if t.state.name in ("COMPLETE", "WAITING")
            }
            for values in itertools.product(*space.values()):
                params = dict(zip(space, values, strict=True))
                if tuple(sorted(params.items())) not in seen:
                    study.enqueue_trial(params)
            remaining = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))
        else:
            remaining = max(0, n_trials - len(done))
        if ray_address and remaining > 0:
            _optimize_with_tune(study, space, chosen, remaining, study_of, splits, root, extra, ray_address)
        elif remaining > 0:
            study.optimize(objective, n_trials=remaining, show_progress_bar=progress)
        complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise RuntimeError(f"no trial of the study in {root} completed")
    complete = sorted(complete, key=lambda t: (t.value, t.number))
    best = complete[0]
    keys = list(space)
    rows = [
        [str(t.number), *(_format(t.params[k]) for k in keys), f"{t.value:.4g}"]
        + [
            ", ".join(f"{v:.4g}" if v is not None else "diverged" for v in t.user_attrs["selection_losses"])
            if "selection_losses" in t.user_attrs
            else "not recorded"
        ]
        for t in complete
    ]
    summary: dict[str, Any] = {
        "experiment": experiment,
        "preset": preset,
        "size": size,
        "cell": cell,
        "version": version,
        "splits": splits,
        "sampler": sampler,
        "selected": best.params,
        "selection_loss": best.value,
        "trials": [{"number": t.number, **t.params, "selection_loss": t.value} for t in complete],
        "final": None,
    }
    lines = [
        f"## Selection: {experiment} {size}, {cell} {version} ({preset}, {splits} splits, {sampler})",
        "",
        *table_lines(["trial", *keys, "selection loss (mean)", "per split"], rows),
    ]
    if final_seeds:
        runs = study_runs(
            experiment, preset, size, cell, version, best.params, range(final_seeds), split=False
        )
        results = execute(runs, root / "final")
        final = {}
        for metric in ("test_loss", "test_accuracy"):
            values = [results[run.name].get(metric) for run in runs]
            if all(isinstance(v, (int, float)) for v in values):
                final[metric] = {
                    "mean": statistics.fmean(values),
                    "std": statistics.pstdev(values),
                    "values": values,
                }
        summary["final"] = final
        lines += ["", f"Selected setting trained on the standard split, seeds 0–{final_seeds - 1}:", ""]
        lines += [f"- {metric}: {v['mean']:.4g} ± {v['std']:.2g}" for metric, v in final.items()]
    text = "\n".join(lines) + "\n"
    (root / "selection.md").write_text(text)
    write_json(root / "selection.json", summary)
    summary["text"] = text
    summary["root"] = str(root)
    return summary


__all__ = ["SEARCH_SPACES", "SELECTION_EXPERIMENTS", "SPLITS", "select", "study_runs"]
