import pytest
import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from tone_classes import CLASSES, tiny_brain, tones

pytestmark = pytest.mark.usefixtures("one_torch_thread")


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
