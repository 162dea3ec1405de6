"""Datasets of docs/specification.md §7: shapes, targets, marks, the permutation, IDX parsing and download."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from supervised.datasets import (
    MNIST_CHECKSUMS,
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

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-5k"
needs_shared = pytest.mark.skipif(
    not SHARED_MNIST.is_dir(),
    reason=f"real-digit check needs {SHARED_MNIST} (absent outside the project machines)",
)
STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def idx_bytes(array: np.ndarray) -> bytes:
    codes = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C, np.dtype(np.float32): 0x0D}
    header = bytes([0, 0, codes[array.dtype], array.ndim]) + np.array(array.shape, dtype=">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_mnist(root: Path, n_train: int = 6, n_test: int = 4, gz: bool = True, seed: int = 0) -> dict:
    """Write a small MNIST-format directory; return the arrays written."""
    rng = np.random.default_rng(seed)
    arrays = {
        STEMS[0]: rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        STEMS[1]: rng.integers(0, 10, n_train).astype(np.uint8),
        STEMS[2]: rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        STEMS[3]: rng.integers(0, 10, n_test).astype(np.uint8),
    }
    root.mkdir(parents=True, exist_ok=True)
    for stem, array in arrays.items():
        data = idx_bytes(array)
        if gz:
            (root / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (root / stem).write_bytes(data)
    return arrays


# --- synthetic tasks ---------------------------------------------------------------------------
def test_copy_first_input_shapes_targets_and_seed():
    ds = CopyFirstInput(7, T=12, seed=3)
    assert len(ds) == 7 and ds.data.shape == (7, 12, 1) and ds.targets.shape == (7, 1)
    assert ds.target_steps == (11,) and ds.kind == "regression"
    torch.testing.assert_close(ds.targets[:, 0], ds.data[:, 0, 0])  # y_T = u_1
    x, y = ds[2]
    assert x.shape == (12, 1) and y.shape == (1,) and y.item() == x[0, 0].item()
    torch.testing.assert_close(CopyFirstInput(7, T=12, seed=3).data, ds.data)
    assert not torch.equal(CopyFirstInput(7, T=12, seed=4).data, ds.data)
    assert abs(CopyFirstInput(4000, T=5).data.std().item() - 1.0) < 0.05


def test_denoising_marks_and_targets():
    n, T, N = 200, 20, 8
    ds = Denoising(n, T=T, N=N, seed=1)
    assert ds.data.shape == (n, T, 2) and ds.targets.shape == (n, 5) and ds.marks.shape == (n, 5)
    assert ds.target_steps == (T - 5, T - 4, T - 3, T - 2, T - 1)  # steps T-4..T, 1-based
    marks = ds.marks
    assert marks.min() >= 0 and marks.max() <= T - N - 1  # 1..T-N, 1-based
    assert (marks[:, 1:] > marks[:, :-1]).all()  # distinct, in order
    channel = ds.data[:, :, 1]
    assert set(channel.unique().tolist()) == {0.0, 1.0}
    assert (channel.sum(1) == 5).all() and (channel[:, T - N :] == 0).all()
    for i in range(n):
        np.testing.assert_array_equal(channel[i].nonzero().flatten().numpy(), marks[i].numpy())
        torch.testing.assert_close(ds.targets[i], ds.data[i, marks[i], 0])
    # every admissible step is drawn sometimes (uniform without replacement)
    assert set(marks.flatten().tolist()) == set(range(T - N))
    torch.testing.assert_close(Denoising(n, T=T, N=N, seed=1).data, ds.data)


def test_denoising_smallest_valid_and_bad_inputs():
    ds = Denoising(3, T=11, N=5)  # T = N + 6: marks among 6 steps
    assert ds.marks.max() <= 5
    with pytest.raises(ValueError, match=r"T must be greater than N \+ 5"):
        Denoising(3, T=10, N=5)
    with pytest.raises(ValueError, match="N"):
        Denoising(3, T=200, N=4)
    with pytest.raises(ValueError, match="num_sequences"):
        CopyFirstInput(0, T=5)


def test_dataloader_compatible():
    xb, yb = next(iter(DataLoader(Denoising(10, T=12, N=5), batch_size=4)))
    assert xb.shape == (4, 12, 2) and yb.shape == (4, 5)


# --- permutation and IDX parsing ---------------------------------------------------------------
def test_permutation_is_the_papers():
    np.random.seed(42)  # noqa: NPY002 - the paper's exact legacy call (footnote 2)
    expected = np.random.permutation(784)  # noqa: NPY002
    perm = mnist_permutation()
    np.testing.assert_array_equal(perm, expected)
    assert perm[:6].tolist() == [598, 590, 209, 637, 174, 213]
    assert sorted(perm.tolist()) == list(range(784))


@pytest.mark.parametrize("gz", [True, False])
def test_idx_parser_on_written_files(tmp_path, gz):
    arrays = write_mnist(tmp_path, gz=gz)
    images, labels = load_mnist(tmp_path, train=True)
    np.testing.assert_array_equal(images, arrays[STEMS[0]])
    np.testing.assert_array_equal(labels, arrays[STEMS[1]])
    assert labels.dtype == np.int64
    images, labels = load_mnist(tmp_path, train=False)
    np.testing.assert_array_equal(images, arrays[STEMS[2]])
    ints = np.arange(-6, 6, dtype=np.int32).reshape(3, 4)
    (tmp_path / "ints").write_bytes(idx_bytes(ints))
    parsed = read_idx(tmp_path / "ints")
    np.testing.assert_array_equal(parsed, ints)
    assert parsed.shape == (3, 4)


def test_idx_parser_errors_name_the_file(tmp_path):
    arrays = write_mnist(tmp_path, gz=False)
    good = idx_bytes(arrays[STEMS[0]])
    cases = {
        "truncated": good[:-100],
        "badmagic": b"\x08\x03" + good[2:],
        "badgzip": gzip.compress(good)[:-30],
        "headeronly": good[:6],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(MNISTFileError, match=name):
            read_idx(tmp_path / name)
    (tmp_path / STEMS[0]).write_bytes(cases["truncated"])
    with pytest.raises(MNISTFileError, match=rf"{STEMS[0]} is truncated.*download=True"):
        load_mnist(tmp_path)


def test_missing_dir_and_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"directory .*nowhere.* does not exist"):
        load_mnist(tmp_path / "nowhere")
    write_mnist(tmp_path)
    (tmp_path / (STEMS[3] + ".gz")).unlink()
    with pytest.raises(FileNotFoundError, match=rf"{STEMS[3]}\.gz .*download=True"):
        load_mnist(tmp_path, train=False)


def test_mnist_datasets_on_written_files(tmp_path):
    arrays = write_mnist(tmp_path)
    perm = np.random.RandomState(42).permutation(784)
    flat = arrays[STEMS[0]].reshape(-1, 784)[:, perm] / 255.0
    seq = PermutedSequentialMNIST(tmp_path)
    x, y = seq[1]
    assert x.shape == (784, 1) and seq.length == 784 and seq.target_steps == (783,)
    np.testing.assert_allclose(x[:, 0].numpy(), flat[1], rtol=1e-6)
    assert y.item() == arrays[STEMS[1]][1]
    lines = PermutedLineSequentialMNIST(tmp_path, N=5, num_sequences=4)
    assert len(lines) == 4 and lines.length == 33 and lines.target_steps == (32,) and lines.input_size == 28
    batch = lines.to_inputs(lines.data[:2])
    assert batch.shape == (2, 33, 28)
    np.testing.assert_allclose(batch[1, :28].numpy(), flat[1].reshape(28, 28), rtol=1e-6)
    assert (batch[:, 28:] == 0).all()
    with pytest.raises(ValueError, match="num_sequences"):
        PermutedSequentialMNIST(tmp_path, num_sequences=100)


@needs_shared
def test_shared_real_digits():
    images, labels = load_mnist(SHARED_MNIST, train=True)
    assert images.shape == (4000, 28, 28) and np.bincount(labels).tolist() == [400] * 10
    images_test, labels_test = load_mnist(SHARED_MNIST, train=False)
    assert images_test.shape == (1000, 28, 28) and np.bincount(labels_test).tolist() == [100] * 10
    # real digits: dark background, bright strokes, ~19% of pixels lit on average
    assert images[:, 0, :].max() == 0 and images.max() == 255
    assert 0.1 < (images > 128).mean() < 0.3
    lines = PermutedLineSequentialMNIST(SHARED_MNIST, N=72, num_sequences=50)
    x, _ = lines[0]
    assert x.shape == (100, 28) and (x[28:] == 0).all() and x[:28].max() == 1.0


# --- download through a loopback HTTP server ---------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def serve(tmp_path):
    """Serve a directory on 127.0.0.1 (ephemeral port) from a thread; yield its base URL."""
    servers = []

    def start(directory: Path) -> str:
        handler = functools.partial(_QuietHandler, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/mnist"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def checksums_of(directory: Path, algorithm: str) -> dict[str, str]:
    return {
        name: hashlib.new(algorithm, (directory / name).read_bytes()).hexdigest() for name in MNIST_CHECKSUMS
    }


def test_download_from_loopback_server(tmp_path, serve):
    remote = tmp_path / "www" / "mnist"
    arrays = write_mnist(remote)
    url = serve(tmp_path / "www")
    local = tmp_path / "local"
    images, labels = load_mnist(local, download=True, base_url=url, checksums=checksums_of(remote, "sha256"))
    np.testing.assert_array_equal(images, arrays[STEMS[0]])
    np.testing.assert_array_equal(labels, arrays[STEMS[1]])
    assert sorted(p.name for p in local.iterdir()) == sorted(MNIST_CHECKSUMS)
    # present files are not fetched again: with the server's file changed, the local one stays
    (remote / "train-images-idx3-ubyte.gz").write_bytes(b"junk")
    download_mnist(local, base_url=url, checksums=checksums_of(remote, "md5"))
    np.testing.assert_array_equal(load_mnist(local)[0], arrays[STEMS[0]])


def test_download_checksum_mismatch_and_missing(tmp_path, serve):
    remote = tmp_path / "www" / "mnist"
    write_mnist(remote)
    url = serve(tmp_path / "www")
    good = checksums_of(remote, "md5")
    sums = dict(good)
    sums["t10k-images-idx3-ubyte.gz"] = "0" * 32
    with pytest.raises(MNISTFileError, match=r"checksum mismatch for MNIST file t10k-images-idx3-ubyte\.gz"):
        load_mnist(tmp_path / "a", download=True, base_url=url, checksums=sums)
    assert not (tmp_path / "a" / "t10k-images-idx3-ubyte.gz").exists()
    assert not list((tmp_path / "a").glob("*.part"))
    # the default checksums (the real MNIST's) reject the self-written files
    with pytest.raises(MNISTFileError, match="checksum mismatch"):
        load_mnist(tmp_path / "b", download=True, base_url=url)
    (remote / "train-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MNISTFileError, match=r"could not download MNIST file train-labels-idx1-ubyte\.gz"):
        load_mnist(tmp_path / "c", download=True, base_url=url, checksums=good)


@needs_shared
def test_download_serves_shared_digits(tmp_path, serve):
    remote = tmp_path / "www" / "mnist"
    shutil.copytree(SHARED_MNIST, remote)
    url = serve(tmp_path / "www")
    lines = PermutedLineSequentialMNIST(
        tmp_path / "local",
        train=False,
        N=72,
        download=True,
        base_url=url,
        checksums=checksums_of(remote, "md5"),
    )
    assert len(lines) == 1000
    np.testing.assert_array_equal(lines.targets.numpy(), load_mnist(SHARED_MNIST, train=False)[1])
