"""Test-session settings shared by every test module."""

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
