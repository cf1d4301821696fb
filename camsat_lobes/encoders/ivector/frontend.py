"""Front end of the i-vector extractor: MFCCs, energy VAD, per-utterance CMVN.

:class:`MFCCFrontEnd` turns a padded batch of waveforms into MFCCs (with deltas),
keeps the voiced frames of each utterance (those within ``vad_threshold_db`` of its
loudest frame) and normalises every utterance over those frames
(:func:`masked_standardize`); the mask of kept frames comes with the features.

Authors
 * camsat contributors 2026
"""

import math

import torch
from speechbrain.lobes.features import MFCC
from speechbrain.processing.features import spectral_magnitude

from camsat_lobes.encoders.base import relative_lengths


class MFCCFrontEnd(torch.nn.Module):
    """MFCCs (+ deltas) with energy voice-activity detection and per-utterance CMVN.

    Arguments
    ---------
    sample_rate : int
        Sampling rate (Hz).
    n_mfcc : int
        Cepstral coefficients per frame.
    n_mels : int
        Mel bands before the DCT.
    deltas : bool
        Whether to append first and second derivatives (triples the size).
    vad_threshold_db : float or None
        Frames more than this many dB below the loudest frame of the utterance
        are dropped; ``None`` keeps every frame.

    Example
    -------
    >>> front_end = MFCCFrontEnd()
    >>> feats, mask = front_end(torch.randn(2, 16000), torch.tensor([1.0, 0.5]))
    >>> feats.shape, mask.shape, front_end.feature_dim
    (torch.Size([2, 101, 60]), torch.Size([2, 101]), 60)
    >>> int(mask[1].sum()) <= 51
    True
    """

    def __init__(self, sample_rate=16000, n_mfcc=20, n_mels=40, deltas=True, vad_threshold_db=30.0):
        super().__init__()
        self.mfcc = MFCC(
            sample_rate=sample_rate, n_mfcc=n_mfcc, n_mels=n_mels, deltas=deltas, context=False
        )
        self.deltas = deltas
        self.vad_threshold_db = vad_threshold_db
        self.feature_dim = n_mfcc * (3 if deltas else 1)

    def forward(self, wavs, wav_lens=None):
        """Compute normalised features and the mask of kept frames.

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``.
        wav_lens : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        feats : torch.Tensor
            Shape ``(batch, frames, feature_dim)``; frames outside the mask are 0.
        mask : torch.Tensor
            Boolean, shape ``(batch, frames)``: real, voiced frames.
        """
        lengths = relative_lengths(wavs, wav_lens)
        stft = self.mfcc.compute_STFT(wavs)
        power = spectral_magnitude(stft, power=1)
        feats = self.mfcc.compute_dct(self.mfcc.compute_fbanks(power))
        if self.deltas:
            delta = self.mfcc.compute_deltas(feats)
            feats = torch.cat([feats, delta, self.mfcc.compute_deltas(delta)], dim=2)
        n_frames = feats.shape[1]
        valid = torch.arange(n_frames, device=wavs.device) < (lengths * n_frames).round().clamp(
            min=1
        ).unsqueeze(1)
        mask = valid
        if self.vad_threshold_db is not None:
            energy = 10 * torch.log10(power.sum(dim=2) + 1e-10)
            loudest = energy.masked_fill(~valid, -math.inf).amax(dim=1, keepdim=True)
            mask = valid & (energy > loudest - self.vad_threshold_db)
        feats = masked_standardize(feats, mask)
        return feats, mask


def masked_standardize(feats, mask, eps=1e-5):
    """Mean/variance-normalise each utterance over its masked frames (others set to 0).

    Arguments
    ---------
    feats : torch.Tensor
        Shape ``(batch, frames, dim)``.
    mask : torch.Tensor
        Boolean, shape ``(batch, frames)``.
    eps : float
        Variance floor.

    Returns
    -------
    torch.Tensor
        Normalised features, same shape.

    Example
    -------
    >>> x = torch.tensor([[[1.0], [3.0], [100.0]]])
    >>> mask = torch.tensor([[True, True, False]])
    >>> masked_standardize(x, mask).flatten().round(decimals=3).tolist()
    [-1.0, 1.0, 0.0]
    """
    weight = mask.unsqueeze(2).to(feats.dtype)
    count = weight.sum(dim=1, keepdim=True).clamp(min=1)
    mean = (feats * weight).sum(dim=1, keepdim=True) / count
    var = ((feats - mean).pow(2) * weight).sum(dim=1, keepdim=True) / count
    return (feats - mean) / torch.sqrt(var + eps) * weight
