"""experiments.cost: the arithmetic of a run counted from its settings (``mm-reproduce --dry-run``)."""

from __future__ import annotations

import pytest
import torch

from experiments.cost import cost_lines, run_flops, stack_flops, supervised_flops, tmaze_flops
from experiments.presets import Run
from experiments.registry import build_grid


def test_a_step_costs_two_operations_per_weight_of_the_stack():
    # the zoo's GRU and LSTM have torch's weights and biases: the same count
    assert stack_flops("gru", 1, 8, 1, False) == 2 * sum(p.numel() for p in torch.nn.GRU(1, 8).parameters())
    lstm = torch.nn.LSTM(3, 16, num_layers=2)
    assert stack_flops("lstm", 3, 16, 2, False) == 2 * sum(p.numel() for p in lstm.parameters())
    assert stack_flops("chrono", 1, 8, 1, False) == stack_flops("lstm", 1, 8, 1, False)  # its init only


def test_a_supervised_run_is_counted_by_hand():
    # copy, T = 50, GRU 1 x 8, one epoch of 100 sequences (80 trained x3, 20 validated), no VAA, 10 tested
    config = {"task": "copy", "T": 50, "cell": "gru", "num_layers": 1, "hidden_size": 8, "epochs": 1}
    config |= {"num_train": 100, "num_test": 10, "vaa_iterations": 0, "version": "classic"}
    f = stack_flops("gru", 1, 8, 1, False)
    assert supervised_flops(config) == pytest.approx((3 * 80 + 20) * 50 * f + 10 * 50 * f)
    # the warmup adds S x batch x M* steps trained (x3); a VAA estimate per epoch, I x |X| x M steps
    warm = supervised_flops(config | {"version": "warmup"}) - supervised_flops(config)
    assert warm == pytest.approx(3 * 100 * 200 * 200 * f)
    vaa = supervised_flops(config | {"vaa_iterations": 2, "vaa_steps": 30}) - supervised_flops(config)
    assert vaa == pytest.approx(2 * 32 * 30 * f)
    # Appendix H (version auxiliary, l = 50 by default at T = 50): a 2-layer decoder reads l steps of the 80
    # trained sequences in the epoch, and 20 pretraining epochs read (l + T) / 2 = 50 steps each and decode
    decoder = stack_flops("gru", 1, 8, 2, False)
    auxiliary = supervised_flops(config | {"version": "auxiliary"}) - supervised_flops(config)
    assert auxiliary == pytest.approx(3 * 80 * 50 * decoder + 20 * 3 * 80 * (50 * f + 50 * decoder))


def test_a_tmaze_run_is_counted_at_its_budget_and_horizon():
    config = {"length": 10, "cell": "gru", "version": "classic", "episodes": 4, "hidden_size": 8}
    f = stack_flops("gru", 8, 8, 2, False)
    per_episode = 29 * (1 + 3 * 20 * 32) * f  # horizon 3L - 1 = 29, 20 gradient steps of 32 episodes
    assert tmaze_flops(config) == pytest.approx(4 * per_episode)
    assert tmaze_flops(config | {"horizons": [100, 1000]}) == pytest.approx(4 * per_episode + 2 * 1100 * f)


def test_every_paper_grid_is_counted_and_the_report_sums_what_is_left():
    for experiment in ("copy", "denoising", "tmaze", "psmnist", "plsmnist", "vaa-vs-loss", "horizon"):
        assert all(run_flops(run) > 0 for run in build_grid(experiment, "paper"))
    runs = build_grid("copy", "smoke")
    done = {runs[0].name: "finished"}
    lines = cost_lines(runs, done, rate=1e9)
    left = sum(run_flops(run) for run in runs[1:])
    assert lines[-1].startswith(f"still to run: {len(runs) - 1} of {len(runs)} runs, {left / 1e12:.1f} TFLOP")
    assert f"{left / 1e9 / 3600:.2f} h at 0.001 TFLOP/s" in lines[-1]
    memory = Run("memory-suites", "memory", (("task", "x"),), 0, {})
    assert run_flops(memory) is None and "1 runs not counted" in cost_lines([memory], {}, 1e12)[-1]
