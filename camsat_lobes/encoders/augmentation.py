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

Authors
 * camsat contributors 2026
"""

import csv
import logging
import math
import os

import scipy.fft
import torch
from speechbrain.augment.augmenter import Augmenter
from speechbrain.augment.time_domain import DropFreq, SpeedPerturb

from camsat_lobes.audio_checks import read_audio_mono

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
        coloured = coloured * _valid_mask(lengths, batch, n_samples, device)
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


class RoomReverb(torch.nn.Module):
    r"""Room reverberation with an impulse response drawn for every waveform.

    The impulse responses of ``rir_csv`` (the CSV that ``AddReverb`` reads, made by
    :func:`~camsat_lobes.augment_sets.build_augmentation_sets`) are loaded once.
    Each waveform is convolved (linear convolution, by FFT) with its own randomly
    drawn response, aligned on the response's direct path so that the speech does
    not move, and rescaled to its original average amplitude, as SpeechBrain's
    ``AddReverb`` does for a whole batch with one response.

    Arguments
    ---------
    rir_csv : str
        CSV with a ``wav`` column of impulse-response files.
    sample_rate : int
        Sampling rate of the waveforms; the files are resampled to it if needed.

    Example
    -------
    >>> import soundfile, numpy as np
    >>> folder = getfixture("tmp_path")
    >>> soundfile.write(str(folder / "rir.wav"), np.r_[0.0, 1.0, 0.5, 0.25], 16000)
    >>> _ = (folder / "rir.csv").write_text(f"ID,duration,wav\nr0,0.1,{folder}/rir.wav\n")
    >>> reverb = RoomReverb(str(folder / "rir.csv"))
    >>> out = reverb(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), torch.ones(1))
    >>> [round(v, 3) for v in out[0].tolist()]
    [0.571, 0.286, 0.143, 0.0]
    """

    def __init__(self, rir_csv, sample_rate=16000):
        super().__init__()
        self.rir_csv = rir_csv
        self.sample_rate = sample_rate
        self._rirs = None

    def _responses(self):
        """Return the impulse responses, zero-padded to one length, each from its peak on."""
        if self._rirs is None:
            # Start every response at its direct path, so that convolving keeps alignment.
            rirs = [
                rir[int(rir.abs().argmax()) :]
                for rir in _read_csv_audio(self.rir_csv, self.sample_rate)
            ]
            self._rirs = _stack_padded(rirs)[0]
        return self._rirs

    def forward(self, waveforms, lengths=None):
        """Reverberate each waveform with its own room.

        Arguments
        ---------
        waveforms : torch.Tensor
            Shape ``(batch, time)``.
        lengths : torch.Tensor, optional
            Relative lengths; the reverberant tail is cut at each true length.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, time)``.
        """
        batch, n_samples = waveforms.shape
        rirs = self._responses().to(waveforms.device)
        chosen = rirs[torch.randint(len(rirs), (batch,), device=waveforms.device)]
        n_fft = scipy.fft.next_fast_len(n_samples + chosen.shape[1] - 1, real=True)
        spectrum = torch.fft.rfft(waveforms.float(), n=n_fft) * torch.fft.rfft(chosen, n=n_fft)
        reverberant = torch.fft.irfft(spectrum, n=n_fft)[:, :n_samples]
        valid = _valid_mask(lengths, batch, n_samples, waveforms.device)
        reverberant = reverberant * valid
        amplitude_in = (waveforms.abs() * valid).sum(dim=1, keepdim=True)
        amplitude_out = (reverberant.abs() * valid).sum(dim=1, keepdim=True).clamp(min=1e-12)
        return (reverberant * (amplitude_in / amplitude_out)).to(waveforms.dtype)


class BackgroundNoise(torch.nn.Module):
    r"""Additive noise at a random SNR, with a noise file drawn for every waveform.

    The files of ``csv_file`` (the CSV that ``AddNoise`` reads: noises or babble
    from :func:`~camsat_lobes.augment_sets.build_augmentation_sets`) are loaded once
    into memory. Each waveform gets a random file from a random offset (repeated when
    shorter than the waveform) and its own SNR, drawn uniformly in
    ``[snr_low, snr_high]`` dB. As in SpeechBrain's ``AddNoise``, the clean signal is
    scaled by ``1 - a`` and the noise to ``a`` times its RMS, with
    ``a = 1 / (10^(SNR/20) + 1)``, and the mixture is scaled down if it would clip.
    Without a CSV the noise is white.

    Arguments
    ---------
    csv_file : str, optional
        CSV with a ``wav`` column of noise files (``None``: white noise).
    snr_low, snr_high : float
        SNR range in dB.
    sample_rate : int
        Sampling rate of the waveforms; the files are resampled to it if needed.

    Example
    -------
    >>> noise = BackgroundNoise(snr_low=10.0, snr_high=10.0)
    >>> clean = 0.1 * torch.sin(torch.arange(16000) / 5.0).repeat(2, 1)
    >>> clean[1, 8000:] = 0.0  # padding of a half-length waveform
    >>> noisy = noise(clean, torch.tensor([1.0, 0.5]))
    >>> kept = clean[0] * (1 - 1 / (10 ** 0.5 + 1))
    >>> round(float(20 * torch.log10(kept.norm() / (noisy[0] - kept).norm())), 1)
    10.0
    >>> float(noisy[1, 8000:].abs().max())
    0.0
    """

    def __init__(self, csv_file=None, snr_low=0.0, snr_high=15.0, sample_rate=16000):
        super().__init__()
        if snr_low > snr_high:
            raise ValueError(f"BackgroundNoise: snr_low={snr_low} is above snr_high={snr_high}.")
        self.csv_file = csv_file
        self.snr_low = float(snr_low)
        self.snr_high = float(snr_high)
        self.sample_rate = sample_rate
        self._noises = None

    def _bank(self):
        """Return all noise files as one zero-padded tensor, and their lengths in samples."""
        if self._noises is None:
            self._noises = _stack_padded(_read_csv_audio(self.csv_file, self.sample_rate))
        return self._noises

    def _draw(self, batch, n_samples, device):
        """One noise segment of ``n_samples`` per waveform."""
        if self.csv_file is None:
            return torch.randn(batch, n_samples, device=device)
        bank, sizes = self._bank()
        chosen = torch.randint(len(bank), (batch,))
        offsets = (torch.rand(batch) * sizes[chosen]).long()
        positions = (offsets[:, None] + torch.arange(n_samples)) % sizes[chosen][:, None]
        return bank[chosen[:, None], positions].to(device)

    def forward(self, waveforms, lengths=None):
        """Add each waveform its own noise at its own SNR.

        Arguments
        ---------
        waveforms : torch.Tensor
            Shape ``(batch, time)``.
        lengths : torch.Tensor, optional
            Relative lengths; the SNR is measured within them and the noise stops there.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, time)``.
        """
        batch, n_samples = waveforms.shape
        valid = _valid_mask(lengths, batch, n_samples, waveforms.device)
        n_valid = valid.sum(dim=1, keepdim=True).clamp(min=1)
        noise = self._draw(batch, n_samples, waveforms.device) * valid
        clean_rms = torch.sqrt((waveforms.float() * valid).pow(2).sum(1, keepdim=True) / n_valid)
        noise_rms = torch.sqrt(noise.pow(2).sum(1, keepdim=True) / n_valid).clamp(min=1e-14)
        snr = torch.empty(batch, 1, device=waveforms.device).uniform_(self.snr_low, self.snr_high)
        factor = 1 / (10 ** (snr / 20) + 1)
        noisy = waveforms * (1 - factor) + noise * (factor * clean_rms / noise_rms)
        peak = noisy.abs().amax(dim=1, keepdim=True).clamp(min=1.0)
        return (noisy / peak).to(waveforms.dtype)


def _read_csv_audio(csv_file, sample_rate):
    """Read every file of a CSV's ``wav`` column as a mono float32 tensor."""
    with open(csv_file, newline="") as handle:
        paths = [row["wav"] for row in csv.DictReader(handle)]
    if not paths:
        raise ValueError(f"{csv_file} lists no audio files (column `wav`).")
    return [torch.from_numpy(read_audio_mono(path, sample_rate)) for path in paths]


def _stack_padded(signals):
    """Stack 1-D signals zero-padded to the longest; return it and their lengths."""
    longest = max(signal.numel() for signal in signals)
    padded = [torch.nn.functional.pad(signal, (0, longest - signal.numel())) for signal in signals]
    return torch.stack(padded), torch.tensor([signal.numel() for signal in signals])


def _valid_mask(lengths, batch, n_samples, device):
    """Return a ``(batch, time)`` 0/1 mask of the samples within each relative length."""
    if lengths is None:
        return torch.ones(batch, n_samples, device=device)
    positions = torch.arange(n_samples, device=device)
    return (positions < lengths.to(device).unsqueeze(1) * n_samples).float()


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
