"""supervised.auxiliary: Appendix H's reconstruction loss, its decoder and the version ``auxiliary``."""

from __future__ import annotations

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from recurrent_q.cells import make_cell
from supervised.auxiliary import ReconstructionDecoder, draw_anchor, reconstruction_loss
from supervised.model import SequenceModel
from supervised.train import SupervisedConfig, train

TINY = {"T": 12, "hidden_size": 8, "epochs": 2, "num_train": 80, "num_test": 40, "progress_bar": False}


def test_the_decoder_starts_from_the_anchor_state_and_reads_only_the_inputs_before_each_step():
    torch.manual_seed(0)
    decoder = ReconstructionDecoder("gru", 2, 8, num_layers=2)
    anchor, inputs = torch.randn(3, 8), torch.randn(3, 5, 2)
    out = decoder(anchor, inputs)
    assert out.shape == (3, 5, 2)
    assert not torch.allclose(decoder(torch.randn(3, 8), inputs)[:, 0], out[:, 0])  # the anchor state is read
    changed = inputs.clone()
    changed[:, 3] += 1.0  # teacher forcing: step 3's input is read at step 4 only
    again = decoder(anchor, changed)
    assert torch.equal(again[:, :4], out[:, :4]) and not torch.allclose(again[:, 4], out[:, 4])
    with pytest.raises(ValueError, match=r"anchor_state must have shape \[B, S\] = \[3, 8\]"):
        decoder(torch.randn(3, 6), inputs)


def test_the_loss_is_the_squared_error_on_the_window_before_the_anchor():
    decoder = ReconstructionDecoder("gru", 1, 4, num_layers=1)
    torch.nn.init.zeros_(decoder.head.weight)
    torch.nn.init.zeros_(decoder.head.bias)  # reconstructs zeros: the loss is the window's mean square
    x = torch.arange(10.0).view(1, 10, 1)
    state = torch.zeros(1, 1, 4)
    loss = reconstruction_loss(decoder, state, x, anchor=7, length=3)  # the inputs x_5, x_6, x_7: 4, 5, 6
    assert loss.item() == pytest.approx((16 + 25 + 36) / 3)


def test_anchors_cover_their_range_and_a_window_longer_than_the_sequence_is_named():
    generator = torch.Generator().manual_seed(0)
    drawn = {draw_anchor(3, 6, generator) for _ in range(200)}
    assert drawn == {3, 4, 5, 6}
    with pytest.raises(ValueError, match="auxiliary_length must be at most the sequence length T = 6; got 7"):
        draw_anchor(7, 6, generator)
    with pytest.raises(ValueError, match="auxiliary_length must be an integer >= 1; got 0"):
        draw_anchor(0, 6, generator)


def test_forward_with_state_is_forward_and_the_state_after_the_first_inputs():
    torch.manual_seed(0)
    model = SequenceModel(make_cell("lstm", 2, 6, num_layers=2), 1, (7, 8, 9))
    x = torch.randn(4, 10, 2)
    for step in (1, 5, 10):
        out, state = model.forward_with_state(x, step)
        torch.testing.assert_close(out, model(x))
        torch.testing.assert_close(state, model.rnn(x[:, :step])[1])


def test_with_no_weight_and_no_pretraining_it_trains_as_classic():
    """The version only adds the decoder (drawn after the network) and its loss."""
    classic = train(SupervisedConfig(**TINY, vaa_iterations=0))
    auxiliary = train(
        SupervisedConfig(
            **TINY, version="auxiliary", auxiliary_weight=0.0, auxiliary_pretrain_epochs=0, vaa_iterations=0
        )
    )
    assert auxiliary.history["val_loss"] == pytest.approx(classic.history["val_loss"], rel=1e-5)
    assert auxiliary.test_loss == pytest.approx(classic.test_loss, rel=1e-5)


def test_the_pretraining_lowers_the_reconstruction_loss_and_logs_it(tmp_path):
    """Copy first input, T = 12, the last two inputs reconstructed (l = 2): 8 pretraining epochs bring
    the loss from about the inputs' variance to below half its first epoch's (0.88 -> 0.07 on an AMD
    EPYC): the network learns to hold them and the decoder to read them from the anchor state."""
    result = train(
        SupervisedConfig(
            **{**TINY, "num_train": 400, "hidden_size": 16},
            version="auxiliary",
            learning_rate=1e-2,
            auxiliary_length=2,
            auxiliary_pretrain_epochs=8,
            vaa_iterations=1,
            vaa_steps=50,
            vaa_batch_size=8,
            logdir=str(tmp_path),
        )
    )
    losses = result.pretraining_result["history"]["loss"]
    assert len(losses) == 8 and losses[-1] < 0.5 * losses[0], losses
    assert len(result.pretraining_result["history"]["vaa"]) == 8
    pretraining = EventAccumulator(str(tmp_path / "auxiliary")).Reload()
    assert [e.step for e in pretraining.Scalars("auxiliary/loss")] == list(range(1, 9))
    assert "auxiliary/vaa" in pretraining.Tags()["scalars"]
    training = EventAccumulator(str(tmp_path)).Reload()
    assert [e.step for e in training.Scalars("train/reconstruction_loss")] == [1, 2]
    assert any(k.startswith("auxiliary.") for k in torch.load(tmp_path / "best.pt"))  # saved with the net


def test_a_resumed_auxiliary_run_ends_as_an_uninterrupted_one(tmp_path):
    settings = dict(**TINY, version="auxiliary", auxiliary_pretrain_epochs=1, vaa_iterations=0)
    whole = train(SupervisedConfig(**settings))
    train(SupervisedConfig(**{**settings, "epochs": 1}, logdir=str(tmp_path)))
    resumed = train(SupervisedConfig(**settings, logdir=str(tmp_path), resume=True))
    assert resumed.history["val_loss"] == pytest.approx(whole.history["val_loss"], rel=1e-6)
    assert resumed.pretraining_result["history"] == whole.pretraining_result["history"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"auxiliary_length": 13}, "auxiliary_length must be at most T = 12; got 13"),
        ({"auxiliary_length": 0}, "auxiliary_length must be an integer >= 1; got 0"),
        ({"auxiliary_layers": 0}, "auxiliary_layers must be an integer >= 1; got 0"),
        ({"auxiliary_pretrain_epochs": -1}, "auxiliary_pretrain_epochs must be an integer >= 0; got -1"),
        ({"auxiliary_weight": -1.0}, "auxiliary_weight must be"),
    ],
)
def test_bad_auxiliary_settings_are_named(overrides, message):
    with pytest.raises(ValueError, match=message):
        SupervisedConfig(**TINY, version="auxiliary", **overrides).resolved()


def test_the_default_window_is_appendix_hs_150_steps_or_the_whole_sequence():
    assert SupervisedConfig(task="denoising").resolved().auxiliary_length == 150
    assert SupervisedConfig(task="copy", T=50).resolved().auxiliary_length == 50
