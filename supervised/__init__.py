"""Supervised long-memory benchmarks (docs/specification.md §7): datasets and the trainer.

- :mod:`supervised.datasets`: copy first input, denoising, permuted (line-)sequential MNIST.
- :mod:`supervised.train`: ``train(SupervisedConfig(...)) -> SupervisedResult`` (import it from
  ``supervised.train``: the package attribute ``train`` is that module).
- :mod:`supervised.config` (the settings and outcome of a run), :mod:`supervised.model` (its data sets,
  network and evaluation), :mod:`supervised.checkpoint` (its per-epoch checkpoint): every public name of
  these is importable from ``supervised.train`` too.
"""

from supervised.datasets import (
    TASKS,
    CopyFirstInput,
    Denoising,
    MNISTFileError,
    PermutedLineSequentialMNIST,
    PermutedSequentialMNIST,
    download_mnist,
    load_mnist,
    mnist_permutation,
    read_idx,
)
from supervised.train import VERSIONS, SupervisedConfig, SupervisedResult

__all__ = [
    "TASKS",
    "VERSIONS",
    "CopyFirstInput",
    "Denoising",
    "MNISTFileError",
    "PermutedLineSequentialMNIST",
    "PermutedSequentialMNIST",
    "SupervisedConfig",
    "SupervisedResult",
    "download_mnist",
    "load_mnist",
    "mnist_permutation",
    "read_idx",
]
