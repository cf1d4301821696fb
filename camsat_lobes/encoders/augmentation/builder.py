"""The augmenter of the self-supervised views and of the augmented embeddings.

:func:`build_augmenter` assembles a SpeechBrain ``Augmenter`` from the offline
augmentation sets, in the order of the acoustic path: room, microphone, background
noise, babble, then notches and speed. Every call of the augmenter draws a fresh
random subset of its corruptions.

Authors
 * camsat contributors 2026
"""

import logging
import os

from speechbrain.augment.augmenter import Augmenter
from speechbrain.augment.time_domain import DropFreq, SpeedPerturb

from camsat_lobes.encoders.augmentation.corruptions import BackgroundNoise, RandomEQ, RoomReverb

logger = logging.getLogger(__name__)


def build_augmenter(
    augmentation_sets=None,
    sample_rate=16000,
    noise_snr=(0.0, 15.0),
    babble_snr=(10.0, 20.0),
    reverb=True,
    eq_max_gain_db=10.0,
    drop_freq=True,
    speeds=None,
    min_augmentations=1,
    max_augmentations=None,
):
    """Build the SpeechBrain augmenter for views (one fresh draw per call).

    The corruptions are applied in the order of the acoustic path: room,
    microphone, background noise, babble, then notches and speed.

    Arguments
    ---------
    augmentation_sets : dict, optional
        Paths of the offline sets: ``noise_csv``, ``rir_csv``, ``babble_csv`` (any of
        them may be missing or ``None``). Without a noise CSV, white noise is added.
    sample_rate : int
        Sampling rate of the audio (Hz).
    noise_snr : tuple of float
        SNR range (dB) of the background noise.
    babble_snr : tuple of float
        SNR range (dB) of the babble (kept high enough that the main speaker stays
        dominant).
    reverb : bool
        Whether to convolve with impulse responses when ``rir_csv`` is given.
    eq_max_gain_db : float
        Largest band gain of :class:`RandomEQ`; 0 disables it.
    drop_freq : bool
        Whether to include SpeechBrain's ``DropFreq``.
    speeds : list of int, optional
        Speed factors in percent for ``SpeedPerturb`` (e.g. ``[95, 100, 105]``).
        Speed changes alter the voice, so they are off by default.
    min_augmentations, max_augmentations : int, optional
        Range of the number of corruptions drawn per call (default: 1 to all).

    Returns
    -------
    speechbrain.augment.augmenter.Augmenter
        Called as ``augmenter(wavs, lengths) -> (wavs, lengths)``.

    Example
    -------
    >>> import torch
    >>> augmenter = build_augmenter()
    >>> wavs, lens = augmenter(torch.randn(2, 16000), torch.ones(2))
    >>> wavs.shape
    torch.Size([2, 16000])
    """
    sets = _checked_sets(augmentation_sets)
    augmentations = [
        *_room_and_microphone(sets, sample_rate, reverb, eq_max_gain_db),
        *_noises(sets, sample_rate, noise_snr, babble_snr),
        *_spectral_and_speed(sample_rate, drop_freq, speeds),
    ]
    return Augmenter(
        parallel_augment=False,
        concat_original=False,
        shuffle_augmentations=False,
        min_augmentations=min_augmentations,
        max_augmentations=max_augmentations,
        augmentations=augmentations,
    )


def _checked_sets(augmentation_sets):
    """Return the augmentation sets as a dict, refusing paths that do not exist."""
    sets = dict(augmentation_sets or {})
    unknown = set(sets) - {"noise_csv", "rir_csv", "babble_csv"}
    if unknown:
        logger.debug("Augmentation sets not used by the augmenter: %s", sorted(unknown))
    for key in ("noise_csv", "rir_csv", "babble_csv"):
        path = sets.get(key)
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(
                f"Augmentation set {key}={path} does not exist; build it with "
                "camsat_lobes.augment_sets.build_augmentation_sets or pass None."
            )
    return sets


def _room_and_microphone(sets, sample_rate, reverb, eq_max_gain_db):
    """Return the room reverberation (with a ``rir_csv``) and microphone colouring, if on."""
    augmentations = []
    if reverb and sets.get("rir_csv"):
        augmentations.append(RoomReverb(sets["rir_csv"], sample_rate=sample_rate))
    if eq_max_gain_db > 0:
        augmentations.append(RandomEQ(sample_rate=sample_rate, max_gain_db=eq_max_gain_db))
    return augmentations


def _noises(sets, sample_rate, noise_snr, babble_snr):
    """Return the background noise (white without a ``noise_csv``) and the babble, if any."""
    augmentations = [BackgroundNoise(sets.get("noise_csv"), *noise_snr, sample_rate=sample_rate)]
    if sets.get("babble_csv"):
        augmentations.append(BackgroundNoise(sets["babble_csv"], *babble_snr, sample_rate))
    return augmentations


def _spectral_and_speed(sample_rate, drop_freq, speeds):
    """Return the notch filtering (``DropFreq``) and speed perturbation, if on."""
    augmentations = []
    if drop_freq:
        augmentations.append(DropFreq(drop_freq_count_low=1, drop_freq_count_high=3))
    if speeds:
        augmentations.append(SpeedPerturb(orig_freq=sample_rate, speeds=list(speeds)))
    return augmentations
