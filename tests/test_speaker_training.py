import math

import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from camsat_lobes.margins import AAMSoftmax
from camsat_lobes.speaker_training import SpeakerBrain

RATE, CLASSES = 16000, 3


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_brain(**hparams):
    torch.manual_seed(0)
    modules = {
        "compute_features": Fbank(n_mels=20),
        "mean_var_norm": sb.processing.features.InputNormalization(norm_type="sentence"),
        "embedding_model": ECAPA_TDNN(20, channels=[16, 16, 16, 16, 48], lin_neurons=8),
        "speaker_loss": AAMSoftmax(embedding_dim=8, n_classes=CLASSES),
    }
    return SpeakerBrain(modules, torch.optim.Adam, hparams=hparams)


def tones(n_per_class=4, seconds=1.0):
    """Segments of one pure tone per class (a class is told apart by its pitch)."""
    gen = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * RATE)) / RATE
    items = {}
    for label in range(CLASSES):
        for i in range(n_per_class):
            phase = float(torch.rand(1, generator=gen)) * 2 * math.pi
            wave = 0.5 * torch.sin(2 * math.pi * 300 * (label + 1) * t + phase)
            wave = wave + 0.01 * torch.randn(t.shape, generator=gen)
            items[f"c{label}_{i}"] = {"sig": wave, "label": torch.LongTensor([label])}
    return DynamicItemDataset(items, output_keys=["id", "sig", "label"])


def test_training_crops_are_cut_in_training_only():
    brain = tiny_brain(train_crop_seconds=0.5)
    seen = []
    brain.modules.embedding_model.register_forward_hook(
        lambda module, inputs, output: seen.append(inputs[0].shape[1])
    )
    batch = PaddedBatch([tones()[i] for i in range(2)])
    brain.compute_forward(batch, sb.Stage.TRAIN)
    brain.compute_forward(batch, sb.Stage.VALID)
    crop_frames, whole_frames = seen
    assert crop_frames == 51 and whole_frames == 101  # 0.5 s and 1 s of 10 ms frames


def test_imprinted_class_weights_start_the_loss_lower():
    data = tones()
    batch = PaddedBatch([data[i] for i in range(len(data))])
    brain = tiny_brain()

    def loss():
        with torch.no_grad():
            embeddings = brain.embed(*batch.sig)
            return brain.modules.speaker_loss(embeddings, batch.label.data.squeeze(-1)).item()

    random_start = loss()
    assert brain.imprint_class_weights(data) == CLASSES
    assert loss() < random_start - 1.0
