"""Test-session settings shared by every test module."""

import os

import pytest
import torch

# The networks under test are small: one intra-op thread is faster than two on them, and it keeps
# the run's duration steady when other jobs share the machine.
torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def one_thread():
    """Every test starts on one thread, whatever an earlier test set; the count is restored after it."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(autouse=True, scope="session")
def sb3_logdir(tmp_path_factory):
    """SB3's logger makes a folder ``SB3-<date>`` in the system's temporary directory for every model that
    learns without a log folder; the tests' go to one folder under pytest's base temporary directory
    (which pytest prunes) instead of hundreds left in ``/tmp``."""
    previous = os.environ.get("SB3_LOGDIR")
    os.environ["SB3_LOGDIR"] = str(tmp_path_factory.mktemp("sb3-logs"))
    yield
    if previous is None:
        del os.environ["SB3_LOGDIR"]
    else:
        os.environ["SB3_LOGDIR"] = previous
