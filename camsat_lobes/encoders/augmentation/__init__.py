"""Channel augmentation for self-supervised views and augmented embeddings.

The augmenter is a SpeechBrain :class:`~speechbrain.augment.augmenter.Augmenter`
built from the offline augmentation sets (noise, room impulse responses, babble; see
``camsat_lobes.augment_sets``) plus a random microphone colouring (:class:`RandomEQ`),
notch filtering (``DropFreq``) and, optionally, speed perturbation. Every call draws a
fresh random subset of these corruptions.

Views must not share a channel: the channel would then tell two views of one
utterance apart from views of other utterances. SpeechBrain's augmenter applies one
draw of the augmentation subset to a whole batch, ``AddReverb`` one impulse response,
and ``AddNoise`` one noise offset, and both read their files from disk on every call.
So the room and the noises are our own modules, :class:`RoomReverb` and
:class:`BackgroundNoise`, which read the same CSVs once into memory and draw for
every waveform, and :func:`augment_independently` draws the subset for every
waveform, then runs each corruption once, batched, on the rows that drew it.
Corruptions that draw once per call (``DropFreq``, ``SpeedPerturb``) are applied
waveform by waveform instead (``python bench/dino_profile.py`` measures both paths).

Modules: :mod:`~camsat_lobes.encoders.augmentation.corruptions` (:class:`RandomEQ`,
:class:`RoomReverb`, :class:`BackgroundNoise`: the corruptions that draw for every
waveform, the last two with their sets in memory),
:mod:`~camsat_lobes.encoders.augmentation.builder` (:func:`build_augmenter`) and
:mod:`~camsat_lobes.encoders.augmentation.apply` (:func:`augment_independently`,
:func:`augment_one_by_one`, :func:`restart_augmentation_streams`).

Authors
 * camsat contributors 2026
"""

from camsat_lobes.encoders.augmentation.apply import (
    ROW_INDEPENDENT,
    augment_independently,
    augment_one_by_one,
    restart_augmentation_streams,
)
from camsat_lobes.encoders.augmentation.builder import build_augmenter
from camsat_lobes.encoders.augmentation.corruptions import BackgroundNoise, RandomEQ, RoomReverb

__all__ = [
    "ROW_INDEPENDENT",
    "BackgroundNoise",
    "RandomEQ",
    "RoomReverb",
    "augment_independently",
    "augment_one_by_one",
    "build_augmenter",
    "restart_augmentation_streams",
]
