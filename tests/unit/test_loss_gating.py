import pathlib

import numpy as np
import pytest
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.checkpoints import Checkpointer
from tone_classes import tiny_brain, tones

from camsat_lobes.loss_gating import LossGate, gmm_loss_threshold
from camsat_lobes.margins import (
    AAMSoftmax,
    AdaFace,
    AMSoftmax,
    CosFace,
    OCSoftmax,
    Softmax,
)
from camsat_lobes.mixup import InputMix

REPO = pathlib.Path(__file__).resolve().parents[2]
FRAGMENT = REPO / "hparams" / "training" / "loss_gate.yaml"

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# --- per-sample losses -------------------------------------------------------------


@pytest.mark.parametrize(
    "loss_class", [Softmax, AAMSoftmax, AMSoftmax, CosFace, AdaFace, OCSoftmax]
)
def test_per_sample_losses_average_to_the_batch_loss(loss_class):
    torch.manual_seed(0)
    loss = loss_class(8, 5).eval()  # eval: AdaFace's norm statistics stay put
    emb, labels = torch.randn(6, 1, 8), torch.tensor([0, 1, 2, 3, 4, 0])
    mean = loss(emb, labels)
    per_sample = loss(emb, labels, reduction="none")
    assert per_sample.shape == (6,) and per_sample.dtype == torch.float32
    assert torch.isclose(per_sample.mean(), mean, rtol=1e-5)
    assert torch.equal(loss(emb, labels, reduction="mean"), mean)  # the default path
    partner = labels.roll(1)
    mixed = loss(emb, labels, partner, 0.7, reduction="none")
    assert torch.isclose(mixed.mean(), loss(emb, labels, partner, 0.7), rtol=1e-5)


def test_per_sample_loss_of_a_margin_softmax_is_its_cross_entropy():
    loss = AAMSoftmax(8, 5)
    emb, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    expected = torch.nn.functional.cross_entropy(loss.logits(emb, labels), labels, reduction="none")
    assert torch.allclose(loss(emb, labels, reduction="none"), expected)


def test_unknown_reduction_is_an_error():
    with pytest.raises(ValueError, match="reduction='sum'"):
        AAMSoftmax(8, 5)(torch.randn(2, 8), torch.tensor([0, 1]), reduction="sum")


# --- the gate ----------------------------------------------------------------------


def noisy_batch(n=200, n_classes=10, flip_fraction=0.2, seed=0):
    """AAM per-sample losses of embeddings near their class direction, some labels wrong."""
    gen = torch.Generator().manual_seed(seed)
    loss = AAMSoftmax(16, n_classes)
    with torch.no_grad():
        loss.weight.copy_(torch.eye(n_classes, 16))
    true = torch.randint(0, n_classes, (n,), generator=gen)
    emb = torch.nn.functional.one_hot(true, 16).float() + 0.2 * torch.randn(n, 16, generator=gen)
    labels = true.clone()
    flipped = torch.rand(n, generator=gen) < flip_fraction
    labels[flipped] = (
        true[flipped] + torch.randint(1, n_classes, (n,), generator=gen)[flipped]
    ) % (n_classes)
    return loss(emb, labels, reduction="none").detach(), flipped


def test_gmm_gate_drops_the_wrong_labels_and_keeps_the_rest():
    losses, flipped = noisy_batch()
    gate = LossGate("gmm", warmup_epochs=1)
    gate.set_epoch(1)
    assert gate(losses).all()  # warm-up: everything kept, losses recorded
    gate.set_epoch(2)
    keep = gate(losses)
    assert torch.equal(keep, ~flipped)
    assert gate.kept_fraction == pytest.approx(1 - flipped.float().mean().item())


def test_quantile_and_threshold_gates_drop_the_wrong_labels():
    losses, flipped = noisy_batch(seed=1)
    share_clean = 1 - flipped.float().mean().item()
    quantile = LossGate("quantile", warmup_epochs=0, keep_quantile=share_clean)
    assert torch.equal(quantile(losses), ~flipped)
    gap = (losses[~flipped].max() + losses[flipped].min()) / 2
    threshold = LossGate("threshold", warmup_epochs=0, threshold=float(gap))
    assert torch.equal(threshold(losses), ~flipped)


def test_gate_is_off_during_warmup_and_counts_per_epoch():
    gate = LossGate("threshold", warmup_epochs=2, threshold=1.0)
    losses = torch.tensor([0.5, 2.0, 0.1, 3.0])
    for epoch in (1, 2):
        gate.set_epoch(epoch)
        assert gate(losses).all() and gate.kept_fraction == 1.0
    gate.set_epoch(3)
    assert gate(losses).tolist() == [True, False, True, False]
    assert gate(losses[:2]).tolist() == [True, False]
    assert gate.kept_fraction == pytest.approx(3 / 6)
    gate.set_epoch(4)
    assert gate.kept_fraction == 1.0  # nothing seen yet this epoch


def test_gmm_gate_without_two_modes_keeps_everything():
    assert gmm_loss_threshold(np.ones(100)) is None
    assert gmm_loss_threshold(np.array([0.5, 1.0])) is None  # too few to fit
    gate = LossGate("gmm", warmup_epochs=0)
    gate.set_epoch(1)  # nothing recorded before: no gate yet
    assert gate(torch.tensor([0.1, 9.0, 50.0])).all()


def test_gate_state_survives_a_checkpoint(tmp_path):
    losses, flipped = noisy_batch(seed=2)
    gate = LossGate("gmm", warmup_epochs=1)
    gate.set_epoch(1)
    gate(losses)
    # End of epoch 1: a SpeechBrain checkpoint saves the recorded losses.
    Checkpointer(tmp_path / "ckpt", recoverables={"loss_gate": gate}).save_checkpoint()

    resumed = LossGate("gmm", warmup_epochs=1)
    Checkpointer(tmp_path / "ckpt", recoverables={"loss_gate": resumed}).recover_if_possible()
    for g in (gate, resumed):
        g.set_epoch(2)
    assert resumed.gmm_threshold == gate.gmm_threshold is not None
    assert torch.equal(resumed(losses), gate(losses))
    gate._save(tmp_path / "mid.ckpt")  # in the middle of epoch 2
    again = LossGate("gmm", warmup_epochs=1)
    again._load(tmp_path / "mid.ckpt")
    again.set_epoch(2)  # resuming the same epoch changes nothing
    assert again.gmm_threshold == gate.gmm_threshold
    assert again.kept_fraction == gate.kept_fraction < 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"method": "median"}, "method='median'"),
        ({"warmup_epochs": -1}, "warmup_epochs=-1"),
        ({"method": "threshold"}, "needs a positive threshold"),
        ({"method": "quantile", "keep_quantile": 1.5}, "keep_quantile in \\(0, 1\\]"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LossGate(**kwargs)


def test_yaml_fragment_loads():
    gate = load_hyperpyyaml(FRAGMENT.read_text())["loss_gate"]
    assert isinstance(gate, LossGate)
    assert (gate.method, gate.warmup_epochs) == ("gmm", 4)


# --- SpeakerBrain ------------------------------------------------------------------


def trained_state(brain):
    """Train two steps of 3 segments; return the parameters and the epoch's loss."""
    data = tones(n_per_class=2, seconds=0.5)
    brain.fit(range(1, 2), data, train_loader_kwargs={"batch_size": 3}, progressbar=False)
    return [p.detach().clone() for p in brain.modules.parameters()], brain.train_loss


def test_no_gate_leaves_training_byte_identical():
    today, today_loss = trained_state(tiny_brain())
    with_none, none_loss = trained_state(tiny_brain(loss_gate=None))
    assert len(today) == len(with_none)
    assert all(torch.equal(a, b) for a, b in zip(today, with_none))
    assert today_loss == none_loss


def test_gated_step_averages_the_kept_samples_only():
    gate = LossGate("quantile", warmup_epochs=0, keep_quantile=0.5)
    brain = tiny_brain(loss_gate=gate)
    data = tones(seconds=0.5)
    batch = PaddedBatch([data[i] for i in range(0, 12, 2)])
    brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    predictions = brain.compute_forward(batch, sb.Stage.TRAIN)
    loss = brain.compute_objectives(predictions, batch, sb.Stage.TRAIN)
    embeddings, labels = predictions
    per_sample = brain.modules.speaker_loss(embeddings, labels, reduction="none")
    kept = per_sample.argsort()[:3]
    assert torch.isclose(loss, per_sample[kept].mean())
    assert gate.kept_fraction == 0.5


def test_kept_fraction_is_logged_with_the_train_stats():
    class Recorder:
        def __init__(self):
            self.train_stats = []

        def log_stats(self, stats_meta, train_stats=None, valid_stats=None):
            self.train_stats.append(train_stats)

    recorder = Recorder()
    gate = LossGate("quantile", warmup_epochs=1, keep_quantile=0.5)
    brain = tiny_brain(loss_gate=gate, train_logger=recorder)
    data = tones(n_per_class=2, seconds=0.5)
    brain.fit(range(1, 3), data, data, train_loader_kwargs={"batch_size": 2}, progressbar=False)
    kept = [stats["kept_fraction"] for stats in recorder.train_stats]
    assert kept == [1.0, 0.5]
    assert all("loss" in stats for stats in recorder.train_stats)


def test_gate_and_mixup_together_are_refused():
    with pytest.raises(ValueError, match="loss_gate and mixup are both set"):
        tiny_brain(loss_gate=LossGate(), mixup=InputMix())
