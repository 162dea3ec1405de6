"""Test-session settings shared by every test module."""

import torch

# The networks under test are small: one intra-op thread is faster than two on them, and it keeps
# the run's duration steady when other jobs share the machine.
torch.set_num_threads(1)
