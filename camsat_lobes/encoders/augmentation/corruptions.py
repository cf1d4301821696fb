"""Corruptions that draw their randomness for every waveform of a batch.

* :class:`RandomEQ`: a random microphone colouring (and, sometimes, band-limiting);
* :class:`RoomReverb`: reverberation with an impulse response drawn per waveform;
* :class:`BackgroundNoise`: additive noise (or babble) at an SNR drawn per waveform.

The rooms and noises are the files listed by the CSVs of
:func:`~camsat_lobes.augment_sets.build_augmentation_sets` (those SpeechBrain's
``AddReverb`` and ``AddNoise`` read), loaded once into memory banks instead of read
from disk on every call. Every corruption keeps each waveform's zero padding.

Authors
 * camsat contributors 2026
"""

import csv
import math

import scipy.fft
import torch

from camsat_lobes.audio_checks import read_audio_mono


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
