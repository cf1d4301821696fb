"""Shared machinery of the self-supervised encoders: crops, schedules, loop, encoder.

Any SpeechBrain embedding lobe (ECAPA-TDNN, x-vector TDNN, ResNet) is trained
without labels on random crops of the training utterances, by one of the methods in
:mod:`camsat_lobes.encoders.dino` and :mod:`camsat_lobes.encoders.simclr`. This
package holds what they share, one module each, in the order a training run meets it:

* the data (:mod:`~camsat_lobes.encoders.ssl.crops`): :func:`ssl_dataset` cuts
  fresh random crops (:func:`random_crops`) of every utterance at each access, and
  keeps only the audio columns of the manifest, so speaker labels are never read;
* the schedules (:mod:`~camsat_lobes.encoders.ssl.schedules`): :func:`learning_rate`
  (linear warm-up, then cosine decay) and :func:`cosine_schedule`, which DINO also
  uses for the teacher momentum;
* the training loop (:mod:`~camsat_lobes.encoders.ssl.brain`): :class:`SSLBrain`
  augments every crop with its own channel, embeds it and follows the schedules; a
  method's Brain adds its forward pass and loss;
* the encoder (:mod:`~camsat_lobes.encoders.ssl.encoder`): :class:`SSLEncoder` holds
  the networks and the settings, builds the Brain, trains (resuming from
  checkpoints) and embeds.

Authors
 * camsat contributors 2026
"""

from camsat_lobes.encoders.ssl.brain import SSLBrain
from camsat_lobes.encoders.ssl.crops import random_crop_batch, random_crops, ssl_dataset
from camsat_lobes.encoders.ssl.encoder import SSLEncoder
from camsat_lobes.encoders.ssl.schedules import cosine_schedule, learning_rate

__all__ = [
    "SSLBrain",
    "SSLEncoder",
    "cosine_schedule",
    "learning_rate",
    "random_crops",
    "random_crop_batch",
    "ssl_dataset",
]
