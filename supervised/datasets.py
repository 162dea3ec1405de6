"""Supervised long-memory benchmarks of §4.1–4.2 (docs/specification.md §7) as ``torch.utils.data.Dataset``s.

Every dataset keeps its sequences in a compact tensor ``data`` (the synthetic tasks: the float
inputs themselves; MNIST: the permuted ``uint8`` pixels) and ``targets``, and turns any batch of
``data`` into float inputs ``[B, T, F]`` with :meth:`SequenceDataset.to_inputs`, on whatever
device the batch lives. A trainer can therefore move ``data`` and ``targets`` to the GPU once.

- :class:`CopyFirstInput` — ``u_t ~ N(0, 1)``, target ``y_T = u_1``.
- :class:`Denoising` — 2 channels (noise, marks), 5 targets at ``T-4..T``.
- :class:`PermutedSequentialMNIST` — 784 × 1 pixels, fixed permutation.
- :class:`PermutedLineSequentialMNIST` — 28 rows of 28 permuted pixels, then ``N`` black rows.

MNIST is read from the standard IDX files (``.gz`` or raw) with :func:`load_mnist`, which can
download them (``download=True``) with checksum verification. No torchvision needed.
"""

from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
import zlib
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from recurrent_q.checks import check_integer

TASKS = ("copy", "denoising", "psmnist", "plsmnist")

MNIST_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/"
# md5 of the four standard files (the values torchvision and most mirrors publish).
MNIST_CHECKSUMS = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
MNIST_FILES = {
    True: ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    False: ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# IDX type codes -> big-endian numpy dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
NUM_MARKS = 5


def mnist_permutation() -> np.ndarray:
    """The paper's fixed pixel order, ``np.random.seed(42); np.random.permutation(784)`` (footnote 2).

    ``RandomState(42)`` is the generator that ``np.random.seed(42)`` installs, so this is the same
    permutation without touching NumPy's global state.
    """
    return np.random.RandomState(42).permutation(784)


class MNISTFileError(RuntimeError):
    """A missing, truncated or corrupt MNIST file, or a checksum mismatch; the message names the file."""


# ---------------------------------------------------------------------------------------------
# Base class
# ---------------------------------------------------------------------------------------------
class SequenceDataset(Dataset):
    """Sequences ``x[T, F]`` with targets on the steps ``target_steps``.

    :ivar data: compact storage of the ``n`` sequences (see :meth:`to_inputs`).
    :ivar targets: ``[n, K]`` float (regression, one value per target step) or ``[n]`` long (class).
    :ivar target_steps: 0-based indices of the ``K`` steps that carry a target (``T - 1`` is the last).
    :ivar output_size: outputs of the readout per target step (1, or 10 logits).
    :ivar kind: ``"regression"`` (squared error) or ``"classification"`` (NLL of logits).
    """

    data: torch.Tensor
    targets: torch.Tensor
    length: int
    input_size: int
    output_size: int
    target_steps: tuple[int, ...]
    kind: str

    def to_inputs(self, data: torch.Tensor) -> torch.Tensor:
        """Float inputs ``[B, T, F]`` from a batch ``data[idx]`` (identity for the synthetic tasks)."""
        return data

    def __len__(self) -> int:
        return self.data.shape[0]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.to_inputs(self.data[index : index + 1])[0], self.targets[index]


class CopyFirstInput(SequenceDataset):
    """Copy first input (§4.1): ``u_t ~ N(0, 1)``, ``t = 1..T``; target ``y_T = u_1``.

    :param num_sequences: number of sequences ``n``.
    :param T: sequence length (paper: 50, 300, 600).
    :param seed: seed of the generator (same seed, same sequences).

    ``data`` is ``[n, T, 1]``, ``targets`` ``[n, 1]``, one target at step ``T`` (index ``T - 1``).
    """

    kind = "regression"
    input_size = 1
    output_size = 1

    def __init__(self, num_sequences: int, T: int = 50, seed: int = 0) -> None:
        check_integer("num_sequences", num_sequences)
        check_integer("T", T)
        generator = torch.Generator().manual_seed(seed)
        self.length = T
        self.data = torch.randn(num_sequences, T, 1, generator=generator)
        self.targets = self.data[:, 0, :].clone()
        self.target_steps = (T - 1,)


class Denoising(SequenceDataset):
    """Denoising (§4.1): channel 1 noise ``N(0, 1)``, channel 2 marks 5 steps ``t_1 < … < t_5``
    drawn without replacement in ``{1..T-N}``; targets at ``T-4..T`` are ``u^1_{t_1..t_5}`` in order.

    :param num_sequences: number of sequences ``n``.
    :param T: sequence length (paper: 200); must exceed ``N + 5``.
    :param N: forgetting period, at least 5 (paper: 5, 100).
    :param seed: seed of the generator.

    ``data`` is ``[n, T, 2]``, ``targets`` ``[n, 5]``, ``marks`` ``[n, 5]`` the 0-based marked steps
    (sorted), ``target_steps = (T-5, …, T-1)``.
    """

    kind = "regression"
    input_size = 2
    output_size = 1

    def __init__(self, num_sequences: int, T: int = 200, N: int = 100, seed: int = 0) -> None:
        check_integer("num_sequences", num_sequences)
        check_integer("N (forgetting period)", N, NUM_MARKS)
        if not isinstance(T, int) or T <= N + NUM_MARKS:
            raise ValueError(
                f"T must be greater than N + {NUM_MARKS} = {N + NUM_MARKS} for denoising "
                f"(marks are drawn in 1..T-N), got T={T!r}"
            )
        generator = torch.Generator().manual_seed(seed)
        self.length = T
        noise = torch.randn(num_sequences, T, generator=generator)
        # 5 distinct steps in {1..T-N} (0-based 0..T-N-1): the first 5 of a random order, sorted.
        order = torch.rand(num_sequences, T - N, generator=generator).argsort(dim=1)
        self.marks = order[:, :NUM_MARKS].sort(dim=1).values
        mark_channel = torch.zeros(num_sequences, T)
        mark_channel.scatter_(1, self.marks, 1.0)
        self.data = torch.stack([noise, mark_channel], dim=2)
        self.targets = noise.gather(1, self.marks)
        self.target_steps = tuple(range(T - NUM_MARKS, T))


# ---------------------------------------------------------------------------------------------
# MNIST: IDX files, download, permuted (line-)sequential datasets
# ---------------------------------------------------------------------------------------------
def read_idx(path: str | Path) -> np.ndarray:
    """Parse one IDX file (gzip-compressed or raw) into an array of its shape and type.

    :raises MNISTFileError: truncated, corrupt or not an IDX file (the message names the file).
    """
    path = Path(path)
    advice = f"delete {path} and download it again (download=True), or copy a good copy there"
    try:
        raw = path.read_bytes()
        if raw[:2] == b"\x1f\x8b":
            raw = gzip.decompress(raw)
    except FileNotFoundError:
        raise MNISTFileError(f"MNIST file {path} does not exist") from None
    except (OSError, EOFError, zlib.error) as error:
        raise MNISTFileError(
            f"MNIST file {path} is a corrupt or truncated gzip file ({error}); {advice}"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise MNISTFileError(
            f"MNIST file {path} is not an IDX file (bad magic number {raw[:4].hex()}); {advice}"
        )
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise MNISTFileError(f"MNIST file {path} is truncated inside its header; {advice}")
    shape = tuple(int(d) for d in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        state = "truncated" if len(raw) < expected else "longer than its header says"
        raise MNISTFileError(
            f"MNIST file {path} is {state}: {len(raw)} bytes (uncompressed) for shape {shape}, "
            f"expected {expected}; {advice}"
        )
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _digest(path: Path, expected: str) -> str:
    """Hex digest of ``path`` with md5 (32 hex digits expected) or sha256 (64)."""
    algorithm = {32: "md5", 64: "sha256"}.get(len(expected))
    if algorithm is None:
        raise ValueError(
            f"checksum for {path.name} must be an md5 (32 hex) or sha256 (64 hex) digest, got {expected!r}"
        )
    digest = hashlib.new(algorithm)
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def download_mnist(
    root: str | Path,
    base_url: str = MNIST_URL,
    checksums: dict[str, str] | None = None,
    timeout: float = 60.0,
) -> None:
    """Fetch the four ``*.gz`` IDX files that are missing in ``root`` from ``base_url`` and verify them.

    :param root: directory to write into (created if needed).
    :param base_url: the files are fetched from ``base_url + name``.
    :param checksums: ``{file name: md5 or sha256 hex}``; default :data:`MNIST_CHECKSUMS`.
    :raises MNISTFileError: a failed download or a checksum mismatch (the bad file is not kept).
    """
    checksums = MNIST_CHECKSUMS if checksums is None else checksums
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    if not base_url.endswith("/"):
        base_url += "/"
    for name, expected in checksums.items():
        target = root / name
        if target.exists() or (root / name.removesuffix(".gz")).exists():
            continue
        partial = root / (name + ".part")
        url = base_url + name
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response, partial.open("wb") as out:
                for block in iter(lambda response=response: response.read(1 << 20), b""):
                    out.write(block)
        except (urllib.error.URLError, OSError) as error:
            partial.unlink(missing_ok=True)
            raise MNISTFileError(
                f"could not download MNIST file {name} from {url} ({error}); check the network or "
                f"base_url, or put the file in {root} yourself"
            ) from None
        actual = _digest(partial, expected)
        if actual != expected.lower():
            partial.unlink()
            raise MNISTFileError(
                f"checksum mismatch for MNIST file {name} downloaded from {url}: got {actual}, expected "
                f"{expected}; the file was deleted. Check base_url, or pass the right checksums"
            )
        partial.replace(target)


def _find_idx(root: Path, stem: str) -> Path | None:
    for name in (stem, stem + ".gz"):
        if (root / name).is_file():
            return root / name
    return None


def load_mnist(
    root: str | Path,
    train: bool = True,
    download: bool = False,
    base_url: str = MNIST_URL,
    checksums: dict[str, str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Images ``uint8 [n, 28, 28]`` and labels ``int64 [n]`` of the MNIST train or test (t10k) split.

    Reads ``{stem}`` or ``{stem}.gz`` in ``root`` (the standard names, e.g.
    ``train-images-idx3-ubyte.gz``). With ``download=True`` missing files are fetched first
    (:func:`download_mnist`).

    :raises FileNotFoundError: ``root`` or a file is missing (and ``download`` is false).
    :raises MNISTFileError: a corrupt, truncated or inconsistent file.
    """
    root = Path(root)
    if download:
        download_mnist(root, base_url=base_url, checksums=checksums)
    if not root.is_dir():
        raise FileNotFoundError(
            f"MNIST data directory {root} does not exist: pass the directory holding the IDX files "
            f"(data_dir), or download=True to fetch them there"
        )
    arrays = []
    for stem in MNIST_FILES[train]:
        path = _find_idx(root, stem)
        if path is None:
            raise FileNotFoundError(
                f"MNIST file {stem}.gz (or {stem}) not found in {root}: put the standard IDX files "
                f"there, or use download=True to fetch them"
            )
        arrays.append(read_idx(path))
    images, labels = arrays
    if images.ndim != 3 or images.shape[1:] != (28, 28) or images.dtype != np.uint8:
        raise MNISTFileError(
            f"MNIST images file in {root} holds {images.dtype} {images.shape}, not uint8 [n, 28, 28]"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise MNISTFileError(
            f"MNIST labels file in {root} holds shape {labels.shape} for {images.shape[0]} images"
        )
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise MNISTFileError(f"MNIST labels file in {root} holds labels outside 0..9")
    return images, labels.astype(np.int64)


class PermutedSequentialMNIST(SequenceDataset):
    """Permuted sequential MNIST (§4.2): the 784 pixels of the permuted image one at a time.

    :param root: directory with the IDX files.
    :param train: the train split (else t10k).
    :param download: fetch missing files first (see :func:`load_mnist`).
    :param num_sequences: keep the first ``n`` images (default all).
    :param base_url: download mirror.
    :param checksums: checksum override for the download.

    ``data`` is ``uint8 [n, 784]`` (pixels already permuted), ``targets`` ``long [n]``;
    :meth:`to_inputs` gives ``[B, 784, 1]`` in ``[0, 1]``. One 10-way target at ``T = 784``.
    """

    kind = "classification"
    output_size = 10
    input_size = 1
    rows = 784

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        download: bool = False,
        num_sequences: int | None = None,
        base_url: str = MNIST_URL,
        checksums: dict[str, str] | None = None,
    ) -> None:
        images, labels = load_mnist(
            root, train=train, download=download, base_url=base_url, checksums=checksums
        )
        if num_sequences is not None:
            check_integer("num_sequences", num_sequences)
            if num_sequences > len(labels):
                raise ValueError(f"num_sequences={num_sequences} but {root} holds only {len(labels)} images")
            images, labels = images[:num_sequences], labels[:num_sequences]
        self.permutation = mnist_permutation()
        self.data = torch.from_numpy(images.reshape(len(images), 784)[:, self.permutation].copy())
        self.targets = torch.from_numpy(labels)
        self.length = self.rows
        self.target_steps = (self.length - 1,)

    def to_inputs(self, data: torch.Tensor) -> torch.Tensor:
        return data.reshape(data.shape[0], self.rows, self.input_size).float() / 255.0


class PermutedLineSequentialMNIST(PermutedSequentialMNIST):
    """Permuted line-sequential MNIST (§4.2): the 28 rows of the permuted image, then ``N`` black rows.

    Same parameters as :class:`PermutedSequentialMNIST`, plus ``N`` (paper: 72, 472), so
    ``T = 28 + N``; :meth:`to_inputs` gives ``[B, 28 + N, 28]`` in ``[0, 1]``, zeros after row 28.
    """

    input_size = 28
    rows = 28

    def __init__(
        self,
        root: str | Path,
        train: bool = True,
        N: int = 72,
        download: bool = False,
        num_sequences: int | None = None,
        base_url: str = MNIST_URL,
        checksums: dict[str, str] | None = None,
    ) -> None:
        check_integer("N (black rows)", N, 0)
        super().__init__(root, train, download, num_sequences, base_url, checksums)
        self.N = N
        self.length = self.rows + N
        self.target_steps = (self.length - 1,)

    def to_inputs(self, data: torch.Tensor) -> torch.Tensor:
        lines = data.reshape(data.shape[0], self.rows, self.input_size).float() / 255.0
        return torch.nn.functional.pad(lines, (0, 0, 0, self.N))
