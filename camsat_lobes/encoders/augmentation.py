"""Channel augmentation for self-supervised views and augmented embeddings.

The augmenter is a SpeechBrain :class:`~speechbrain.augment.augmenter.Augmenter`
built from the offline augmentation sets (noise, room impulse responses, babble; see
``camsat_lobes.augment_sets``) plus a random microphone colouring (:class:`RandomEQ`),
notch filtering (``DropFreq``) and, optionally, speed perturbation. Every call draws a
fresh random subset of these corruptions.

SpeechBrain applies one draw of ``AddReverb`` (one impulse response) and of the
augmentation subset to a whole batch. :func:`augment_independently` calls the
augmenter on each waveform separately, so that every crop or view gets its own room,
microphone and noise: the channel then never tells two views of one utterance apart
from views of other utterances.

Authors
 * camsat contributors 2026
"""

import logging
import math
import os

import torch
from speechbrain.augment.augmenter import Augmenter
from speechbrain.augment.time_domain import AddNoise, AddReverb, DropFreq, SpeedPerturb

logger = logging.getLogger(__name__)


class RandomEQ(torch.nn.Module):
    """Random microphone colouring, drawn independently for every waveform.

    The gain curve interpolates ``n_bands`` random gains (uniform in
    ``[-max_gain_db, max_gain_db]`` dB) placed on a log-frequency axis between
    ``min_freq`` and the Nyquist frequency. With probability ``band_limit_prob`` the
    waveform is also band-limited by 4th-order Butterworth-shaped high-pass and
    low-pass responses with cut-offs drawn log-uniformly from ``highpass_hz`` and
    ``lowpass_hz``. The output keeps the input's energy and zero padding.

    Arguments
    ---------
    sample_rate : int
        Sampling rate of the waveforms (Hz).
    max_gain_db : float
        Largest boost or cut of a band (dB).
    n_bands : int
        Number of random control points of the gain curve (at least 2).
    min_freq : float
        Lowest control frequency (Hz); the gain is flat below it.
    band_limit_prob : float
        Probability of band-limiting a waveform.
    highpass_hz, lowpass_hz : tuple of float
        Ranges of the high-pass and low-pass cut-offs (Hz).

    Example
    -------
    >>> eq = RandomEQ(max_gain_db=12.0)
    >>> wavs = torch.randn(3, 16000)
    >>> out = eq(wavs, torch.tensor([1.0, 0.5, 1.0]))
    >>> out.shape
    torch.Size([3, 16000])
    >>> bool(out[1, 8000:].abs().max() == 0)
    True
    """

    def __init__(
        self,
        sample_rate=16000,
        max_gain_db=10.0,
        n_bands=8,
        min_freq=80.0,
        band_limit_prob=0.5,
        highpass_hz=(50.0, 300.0),
        lowpass_hz=(3400.0, 7600.0),
    ):
        super().__init__()
        if n_bands < 2:
            raise ValueError(f"RandomEQ needs n_bands >= 2, got {n_bands}.")
        nyquist = sample_rate / 2
        for name, value in (
            ("min_freq", (min_freq, min_freq)),
            ("highpass_hz", highpass_hz),
            ("lowpass_hz", lowpass_hz),
        ):
            if not 0 < value[0] <= value[1] < nyquist:
                raise ValueError(
                    f"RandomEQ {name}={value} must lie in (0, {nyquist}) Hz, low <= high."
                )
        self.sample_rate = sample_rate
        self.max_gain_db = float(max_gain_db)
        self.n_bands = int(n_bands)
        self.min_freq = float(min_freq)
        self.band_limit_prob = float(band_limit_prob)
        self.highpass_hz = highpass_hz
        self.lowpass_hz = lowpass_hz

    def forward(self, waveforms, lengths=None):
        """Colour each waveform with its own random response.

        Arguments
        ---------
        waveforms : torch.Tensor
            Shape ``(batch, time)``.
        lengths : torch.Tensor, optional
            Relative lengths; samples beyond them are kept at zero.

        Returns
        -------
        torch.Tensor
            Equalised waveforms, shape ``(batch, time)``.
        """
        if waveforms.dim() != 2:
            raise ValueError(
                f"RandomEQ expects waveforms of shape (batch, time), got {tuple(waveforms.shape)}."
            )
        batch, n_samples = waveforms.shape
        device = waveforms.device
        freqs = torch.fft.rfftfreq(n_samples, 1.0 / self.sample_rate).to(device)
        gain = 10 ** (self._random_curve_db(freqs, batch) / 20)
        limited = torch.rand(batch, 1, device=device) < self.band_limit_prob
        gain = torch.where(limited, gain * self._random_band_limits(freqs, batch), gain)
        spectrum = torch.fft.rfft(waveforms.float(), dim=1)
        coloured = torch.fft.irfft(spectrum * gain, n=n_samples, dim=1)
        if lengths is not None:
            positions = torch.arange(n_samples, device=device)
            coloured = coloured * (positions < lengths.unsqueeze(1) * n_samples)
        energy_in = waveforms.pow(2).sum(dim=1, keepdim=True)
        energy_out = coloured.pow(2).sum(dim=1, keepdim=True).clamp(min=1e-12)
        return (coloured * torch.sqrt(energy_in / energy_out)).to(waveforms.dtype)

    def _random_curve_db(self, freqs, batch):
        """Piecewise-linear gains (dB) over log-frequency, one curve per waveform."""
        device = freqs.device
        log_freqs = torch.log(freqs.clamp(min=self.min_freq))
        knots = torch.linspace(
            math.log(self.min_freq), math.log(self.sample_rate / 2), self.n_bands, device=device
        )
        gains_db = (torch.rand(batch, self.n_bands, device=device) * 2 - 1) * self.max_gain_db
        right = torch.searchsorted(knots, log_freqs).clamp(1, self.n_bands - 1)
        weight = ((log_freqs - knots[right - 1]) / (knots[right] - knots[right - 1])).clamp(0, 1)
        return gains_db[:, right - 1] * (1 - weight) + gains_db[:, right] * weight

    def _random_band_limits(self, freqs, batch):
        """Magnitude of random high-pass and low-pass responses, one per waveform."""

        def log_uniform(bounds):
            """Draw one value per waveform, log-uniformly between ``bounds``."""
            low, high = math.log(bounds[0]), math.log(bounds[1])
            draw = torch.rand(batch, 1, device=freqs.device) * (high - low) + low
            return torch.exp(draw)

        highpass, lowpass = log_uniform(self.highpass_hz), log_uniform(self.lowpass_hz)
        freqs = freqs.clamp(min=1.0)
        return 1 / torch.sqrt((1 + (highpass / freqs) ** 8) * (1 + (freqs / lowpass) ** 8))


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
        shuffle_augmentations=True,
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
        augmentations.append(
            AddReverb(
                sets["rir_csv"], reverb_sample_rate=sample_rate, clean_sample_rate=sample_rate
            )
        )
    if eq_max_gain_db > 0:
        augmentations.append(RandomEQ(sample_rate=sample_rate, max_gain_db=eq_max_gain_db))
    return augmentations


def _noises(sets, sample_rate, noise_snr, babble_snr):
    """Return the background noise (white without a ``noise_csv``) and the babble, if any."""
    augmentations = [
        AddNoise(
            csv_file=sets.get("noise_csv"),
            snr_low=noise_snr[0],
            snr_high=noise_snr[1],
            noise_sample_rate=sample_rate,
            clean_sample_rate=sample_rate,
        )
    ]
    if sets.get("babble_csv"):
        augmentations.append(
            AddNoise(
                csv_file=sets["babble_csv"],
                snr_low=babble_snr[0],
                snr_high=babble_snr[1],
                noise_sample_rate=sample_rate,
                clean_sample_rate=sample_rate,
            )
        )
    return augmentations


def _spectral_and_speed(sample_rate, drop_freq, speeds):
    """Return the notch filtering (``DropFreq``) and speed perturbation, if on."""
    augmentations = []
    if drop_freq:
        augmentations.append(DropFreq(drop_freq_count_low=1, drop_freq_count_high=3))
    if speeds:
        augmentations.append(SpeedPerturb(orig_freq=sample_rate, speeds=list(speeds)))
    return augmentations


def augment_independently(augmenter, wavs, wav_lens=None):
    """Apply a fresh augmentation draw to every waveform of a batch.

    Each waveform is cut to its true length, augmented alone, and put back into a
    tensor of the input's shape (longer outputs, e.g. from slowing down, are cut).

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
    >>> augmenter = build_augmenter(drop_freq=False)
    >>> lengths = torch.tensor([1.0, 0.5, 0.25])
    >>> out, lens = augment_independently(augmenter, torch.randn(3, 8000), lengths)
    >>> out.shape, lens.tolist()
    (torch.Size([3, 8000]), [1.0, 0.5, 0.25])
    """
    batch, n_samples = wavs.shape
    if wav_lens is None:
        wav_lens = torch.ones(batch, device=wavs.device)
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

    ``AddNoise`` and ``AddReverb`` read their files through a shuffled loader that
    keeps its position between calls. This function drops those loaders, so that
    they are rebuilt on their next use exactly as in a new augmenter: after seeding
    the random generators, the following draws then depend on the seed only, and a
    resumed extraction reproduces the views of an uninterrupted one.

    Workaround of SpeechBrain behaviour (1.1.x): the loaders are private attributes
    of ``AddNoise`` / ``AddReverb`` with no public reset, so this function deletes
    them; it is the only place that touches them.

    Arguments
    ---------
    augmenter : Augmenter or torch.nn.Module
        The augmenter (nested augmenters are followed).

    Example
    -------
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
