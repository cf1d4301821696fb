"""A tiny speaker Brain and a dataset of pure tones, one pitch per class.

A test module imports them (``from tone_classes import tiny_brain, tones``).
"""

import math

import speechbrain as sb
import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from camsat_lobes.margins import AAMSoftmax
from camsat_lobes.speaker_training import SpeakerBrain

RATE, CLASSES = 16000, 3


def tiny_brain(**hparams):
    """A SpeakerBrain with an 8-dimensional ECAPA and an AAM head over ``CLASSES``."""
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
