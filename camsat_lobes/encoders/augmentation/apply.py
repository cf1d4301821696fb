"""Applying an augmenter with a fresh draw for every waveform of a batch.

SpeechBrain's ``Augmenter`` draws one subset of corruptions for a whole batch, so
two views of one utterance in a batch would share a channel.
:func:`augment_independently` draws the subset for every waveform, then runs each
corruption once, batched, on the rows that drew it, when all corruptions draw per
waveform (:data:`ROW_INDEPENDENT`); any other augmenter runs on each waveform alone
(:func:`augment_one_by_one`). :func:`restart_augmentation_streams` makes the file
readers of SpeechBrain's own ``AddNoise`` / ``AddReverb`` start afresh after seeding.

Authors
 * camsat contributors 2026
"""

import torch
from speechbrain.augment.augmenter import Augmenter

from camsat_lobes.encoders.augmentation.corruptions import (
    BackgroundNoise,
    RandomEQ,
    RoomReverb,
    _valid_mask,
)

#: Corruptions that draw their randomness for every waveform of a batch separately.
ROW_INDEPENDENT = (RoomReverb, RandomEQ, BackgroundNoise)


def augment_independently(augmenter, wavs, wav_lens=None):
    """Apply a fresh augmentation draw to every waveform of a batch.

    For an augmenter from :func:`build_augmenter` whose corruptions all draw per
    waveform (:data:`ROW_INDEPENDENT`, the default set), each waveform draws its own
    number and subset of corruptions, and each corruption runs once, batched, on the
    rows that drew it, in the augmenter's order. Any other augmenter (another
    callable, or one with ``DropFreq`` or ``SpeedPerturb``) is called on each
    waveform alone, cut to its true length (:func:`augment_one_by_one`). Samples
    beyond each true length stay zero.

    Arguments
    ---------
    augmenter : callable
        ``augmenter(wavs, lengths) -> (wavs, lengths)`` or ``-> wavs``, e.g. the
        result of :func:`build_augmenter`.
    wavs : torch.Tensor
        Waveforms, shape ``(batch, time)``.
    wav_lens : torch.Tensor, optional
        Relative lengths (default: all ones).

    Returns
    -------
    augmented : torch.Tensor
        Shape ``(batch, time)``.
    lengths : torch.Tensor
        Relative lengths of the augmented waveforms.

    Example
    -------
    >>> from camsat_lobes.encoders.augmentation import build_augmenter
    >>> augmenter = build_augmenter(drop_freq=False)
    >>> lengths = torch.tensor([1.0, 0.5, 0.25])
    >>> out, lens = augment_independently(augmenter, torch.randn(3, 8000), lengths)
    >>> out.shape, lens.tolist(), float(out[1, 4000:].abs().max())
    (torch.Size([3, 8000]), [1.0, 0.5, 0.25], 0.0)
    """
    batch, n_samples = wavs.shape
    if wav_lens is None:
        wav_lens = torch.ones(batch, device=wavs.device)
    if not _batchable(augmenter):
        return augment_one_by_one(augmenter, wavs, wav_lens)
    corruptions = list(augmenter.augmentations.values())
    low = max(0, augmenter.min_augmentations)
    high = min(augmenter.max_augmentations, len(corruptions))
    counts = torch.randint(low, max(low, high) + 1, (batch, 1))
    # A uniformly random subset of `counts` corruptions per row: the smallest random keys.
    ranks = torch.rand(batch, len(corruptions)).argsort(dim=1).argsort(dim=1)
    drawn = (ranks < counts).to(wavs.device)
    augmented = wavs.clone()
    for column, corruption in enumerate(corruptions):
        rows = drawn[:, column].nonzero().squeeze(1)
        if rows.numel() > 0:
            augmented[rows] = corruption(augmented[rows], wav_lens[rows])
    return augmented * _valid_mask(wav_lens, batch, n_samples, wavs.device), wav_lens.clone()


def _batchable(augmenter):
    """Whether :func:`augment_independently` may draw per row and batch the corruptions.

    True for a plain sequential SpeechBrain augmenter (every input augmented once,
    nothing concatenated) whose corruptions are all in :data:`ROW_INDEPENDENT`.
    """
    return (
        isinstance(augmenter, Augmenter)
        and not augmenter.parallel_augment
        and not augmenter.concat_original
        and augmenter.repeat_augment == 1
        and augmenter.augment_prob >= 1.0
        and augmenter.augment_start_index == 0
        and augmenter.augment_end_index is None
        and all(isinstance(c, ROW_INDEPENDENT) for c in augmenter.augmentations.values())
    )


def augment_one_by_one(augmenter, wavs, wav_lens):
    """Call the augmenter on every waveform alone, cut to its true length.

    The general path of :func:`augment_independently`, for any augmenter; longer
    outputs (e.g. from slowing down) are cut to the input's length.

    Arguments
    ---------
    augmenter : callable
        ``augmenter(wavs, lengths) -> (wavs, lengths)`` or ``-> wavs``.
    wavs : torch.Tensor
        Waveforms, shape ``(batch, time)``.
    wav_lens : torch.Tensor
        Relative lengths.

    Returns
    -------
    augmented : torch.Tensor
        Shape ``(batch, time)``.
    lengths : torch.Tensor
        Relative lengths of the augmented waveforms.

    Example
    -------
    >>> def louder(wavs, lengths):
    ...     return 2 * wavs
    >>> out, lens = augment_one_by_one(louder, torch.ones(2, 4), torch.tensor([1.0, 0.5]))
    >>> out.tolist(), lens.tolist()
    ([[2.0, 2.0, 2.0, 2.0], [2.0, 2.0, 0.0, 0.0]], [1.0, 0.5])
    """
    batch, n_samples = wavs.shape
    augmented = torch.zeros_like(wavs)
    lengths = torch.empty(batch, device=wavs.device)
    for i in range(batch):
        n_valid = max(1, int(round(float(wav_lens[i]) * n_samples)))
        out = augmenter(wavs[i : i + 1, :n_valid], torch.ones(1, device=wavs.device))
        if isinstance(out, tuple):
            out = out[0]
        n_out = min(out.shape[1], n_samples)
        augmented[i, :n_out] = out[0, :n_out]
        lengths[i] = n_out / n_samples
    return augmented, lengths


def restart_augmentation_streams(augmenter):
    """Make the noise and impulse-response readers of an augmenter start afresh.

    Needed only for augmenters built with SpeechBrain's own ``AddNoise`` or
    ``AddReverb`` (those of :func:`build_augmenter` keep no reader), which read
    their files through a shuffled loader that keeps its position between calls.
    This function drops those loaders, so that they are rebuilt on their next use
    exactly as in a new augmenter: after seeding the random generators, the
    following draws then depend on the seed only, and a resumed extraction
    reproduces the views of an uninterrupted one.

    Workaround of SpeechBrain behaviour (1.1.x): the loaders are private attributes
    of ``AddNoise`` / ``AddReverb`` with no public reset, so this function deletes
    them; it is the only place that touches them.

    Arguments
    ---------
    augmenter : Augmenter or torch.nn.Module
        The augmenter (nested augmenters are followed).

    Example
    -------
    >>> from camsat_lobes.encoders.augmentation import build_augmenter
    >>> augmenter = build_augmenter()
    >>> _ = augmenter(torch.randn(1, 800), torch.ones(1))
    >>> restart_augmentation_streams(augmenter)
    """
    pending = [augmenter]
    while pending:
        module = pending.pop()
        children = getattr(module, "augmentations", None)
        if isinstance(children, dict):
            pending.extend(children.values())
        for reader in ("data_loader", "noise_data", "rir_data"):
            if reader in vars(module):
                delattr(module, reader)
