"""Per-session recording channels: a simulated room, a coloured microphone, background noise.

All utterances of one session share its channel, as the clips of one VoxCeleb video
share a room, a microphone and a background. Every parameter is drawn from the
session's own seeded stream (see :func:`camsat_lobes.minivox.seeding.rng_for`), apart
from the augmentation sets used in training, which are built with other seeds.

Default ranges (:class:`camsat_lobes.minivox.config.MiniVoxConfig`):

- room: shoebox of 3-9 x 2.5-7 x 2.4-3.5 m simulated with pyroomacoustics (image
  sources), reverberation time 0.15-0.6 s (absorption from Sabine's formula; where the
  simulated response decays slower than asked, which elongated shoeboxes do, an
  exponential window brings its measured T20 down to the target), talker 0.5-2.5 m
  from the microphone;
- microphone: 2nd-order high-pass at 50-300 Hz, 4th-order low-pass at 3.4-7.6 kHz and
  three peaking filters of -6 to +6 dB at 200 Hz-5 kHz (Q 0.7-2.5);
- background: Gaussian noise with a 1/f^b power spectrum (b in 0-2: white to brown),
  slowly amplitude-modulated (depth 0-0.5, 0.1-1 Hz), mains hum in 30 % of the
  sessions, mixed at 10-30 dB SNR; each utterance gets a fresh noise draw;
- level: 20-32 dB below full scale (RMS), peaks kept under full scale.

These are milder than the setting that broke a pretrained encoder (noise at
5-20 dB SNR with strong rooms and EQ gave 38 % cross-session EER): hard, since a
shared session channel is a false speaker cue, but learnable.

Authors
 * camsat contributors 2026
"""

import dataclasses
from dataclasses import dataclass

import numpy as np
from scipy import signal

__all__ = ["ChannelSimulator", "SessionChannel", "decay_time", "sample_session_channel"]

ROOM_SIZE_RANGE = ((3.0, 9.0), (2.5, 7.0), (2.4, 3.5))
EQ_FREQUENCY_RANGE = (200.0, 5000.0)
EQ_Q_RANGE = (0.7, 2.5)
NOISE_SLOPE_RANGE = (0.0, 2.0)
MODULATION_DEPTH_RANGE = (0.0, 0.5)
MODULATION_RATE_RANGE = (0.1, 1.0)
HUM_LEVEL_DB_RANGE = (-10.0, 0.0)
MAX_IMAGE_ORDER = 50  # reflections past order 50 lie ~35 dB down at RT60 = 0.6 s
SABINE = 0.161  # s/m: 24 ln(10) / speed of sound


@dataclass(frozen=True)
class SessionChannel:
    """The parameters of one session's channel (JSON-ready through :meth:`to_dict`).

    Arguments
    ---------
    room_dim : tuple of float
        Room size (length, width, height) in metres.
    rt60 : float
        Sabine reverberation time in seconds.
    source, microphone : tuple of float
        Positions of the talker and the microphone, metres.
    highpass_hz, lowpass_hz : float
        Band limits of the microphone.
    eq_peaks : tuple of tuple
        ``(frequency_hz, gain_db, q)`` of each peaking filter.
    noise_slope : float
        Exponent b of the noise power spectrum 1/f^b.
    modulation : tuple of float
        ``(depth, rate_hz)`` of the slow amplitude modulation of the noise.
    hum_hz : float
        Mains frequency of the hum (0 for none).
    hum_db : float
        Hum level relative to the broadband noise, dB.
    snr_db : float
        Speech-to-noise ratio, dB.
    level_db : float
        RMS level of the recording, dBFS.

    Example
    -------
    >>> from camsat_lobes.minivox.config import MiniVoxConfig
    >>> channel = sample_session_channel(np.random.default_rng(0), MiniVoxConfig())
    >>> 10.0 <= channel.snr_db <= 30.0
    True
    >>> sorted(channel.to_dict())[:3]
    ['eq_peaks', 'highpass_hz', 'hum_db']
    """

    room_dim: tuple
    rt60: float
    source: tuple
    microphone: tuple
    highpass_hz: float
    lowpass_hz: float
    eq_peaks: tuple
    noise_slope: float
    modulation: tuple
    hum_hz: float
    hum_db: float
    snr_db: float
    level_db: float

    def to_dict(self):
        """Return the parameters as a dict of rounded numbers and lists.

        Example
        -------
        >>> from camsat_lobes.minivox.config import MiniVoxConfig
        >>> d = sample_session_channel(np.random.default_rng(1), MiniVoxConfig()).to_dict()
        >>> len(d["room_dim"]), isinstance(d["rt60"], float)
        (3, True)
        """
        return _rounded(dataclasses.asdict(self))


def _rounded(value):
    if isinstance(value, (tuple, list)):
        return [_rounded(v) for v in value]
    if isinstance(value, dict):
        return {k: _rounded(v) for k, v in value.items()}
    return round(float(value), 4)


def _uniform(rng, bounds):
    return float(rng.uniform(*bounds))


def _log_uniform(rng, bounds):
    return float(np.exp(rng.uniform(*np.log(bounds))))


def _place(rng, room_dim, distance):
    """Return talker and microphone positions ``distance`` apart, 0.3 m or more from walls."""
    room = np.asarray(room_dim)
    for _ in range(100):
        source = np.array([rng.uniform(0.5, room[0] - 0.5), rng.uniform(0.5, room[1] - 0.5)])
        angle = rng.uniform(0, 2 * np.pi)
        mic = source + distance * np.array([np.cos(angle), np.sin(angle)])
        if np.all(mic >= 0.3) and np.all(mic <= room[:2] - 0.3):
            break
    else:  # along the length, which always fits (room length >= distance + 1.2 m)
        source = np.array([0.5, room[1] / 2])
        mic = source + np.array([distance, 0.0])
    heights = rng.uniform(1.1, 1.8), rng.uniform(0.8, 1.6)
    return (*source, heights[0]), (*mic, heights[1])


def sample_session_channel(rng, config):
    """Draw the channel of one session from the ranges of ``config``.

    Arguments
    ---------
    rng : numpy.random.Generator
        The session's own stream.
    config : MiniVoxConfig
        Holds the ranges (``rt60_range``, ``snr_db_range``, ...).

    Returns
    -------
    SessionChannel

    Example
    -------
    >>> from camsat_lobes.minivox.config import MiniVoxConfig
    >>> a = sample_session_channel(np.random.default_rng(3), MiniVoxConfig())
    >>> a == sample_session_channel(np.random.default_rng(3), MiniVoxConfig())
    True
    """
    distance = _uniform(rng, config.mic_distance_range)
    room_dim = [_uniform(rng, bounds) for bounds in ROOM_SIZE_RANGE]
    room_dim[0] = max(room_dim[0], distance + 1.2)
    volume = np.prod(room_dim)
    surface = 2 * (
        room_dim[0] * room_dim[1] + room_dim[0] * room_dim[2] + room_dim[1] * room_dim[2]
    )
    shortest_rt60 = SABINE * volume / (surface * 0.95)  # absorption below 0.95
    rt60 = max(_uniform(rng, config.rt60_range), shortest_rt60)
    source, microphone = _place(rng, room_dim, distance)
    eq_peaks = tuple(
        (
            _log_uniform(rng, EQ_FREQUENCY_RANGE),
            _uniform(rng, (-config.eq_gain_db, config.eq_gain_db)),
            _uniform(rng, EQ_Q_RANGE),
        )
        for _ in range(config.eq_num_peaks)
    )
    return SessionChannel(
        room_dim=tuple(room_dim),
        rt60=rt60,
        source=tuple(map(float, source)),
        microphone=tuple(map(float, microphone)),
        highpass_hz=_log_uniform(rng, config.highpass_hz_range),
        lowpass_hz=_log_uniform(rng, config.lowpass_hz_range),
        eq_peaks=eq_peaks,
        noise_slope=_uniform(rng, NOISE_SLOPE_RANGE),
        modulation=(_uniform(rng, MODULATION_DEPTH_RANGE), _uniform(rng, MODULATION_RATE_RANGE)),
        hum_hz=float(rng.choice([50.0, 60.0])) if rng.random() < config.hum_probability else 0.0,
        hum_db=_uniform(rng, HUM_LEVEL_DB_RANGE),
        snr_db=_uniform(rng, config.snr_db_range),
        level_db=_uniform(rng, config.level_db_range),
    )


def _peaking_sos(frequency, gain_db, q, sample_rate):
    """Return one peaking-EQ biquad (second-order section) of the audio-EQ cookbook."""
    amplitude = 10 ** (gain_db / 40)
    omega = 2 * np.pi * frequency / sample_rate
    alpha = np.sin(omega) / (2 * q)
    b = [1 + alpha * amplitude, -2 * np.cos(omega), 1 - alpha * amplitude]
    a = [1 + alpha / amplitude, -2 * np.cos(omega), 1 - alpha / amplitude]
    return np.concatenate([b, a]) / a[0]


def decay_time(impulse_response, sample_rate):
    """Return the reverberation time (T20, Schroeder backward integration) in seconds.

    Example
    -------
    >>> t = np.arange(16000) / 16000
    >>> h = np.random.default_rng(0).normal(size=16000) * 10 ** (-60 / 0.5 * t / 20)
    >>> round(decay_time(h, 16000), 1)
    0.5
    """
    energy = np.cumsum(np.asarray(impulse_response, np.float64)[::-1] ** 2)[::-1]
    decay_db = 10 * np.log10(energy / energy[0] + 1e-30)
    start, stop = np.argmax(decay_db <= -5.0), np.argmax(decay_db <= -25.0)
    return float(3.0 * (stop - start) / sample_rate)


class ChannelSimulator:
    """Applies a session's channel to clean speech; the room and filters are built once.

    Arguments
    ---------
    channel : SessionChannel
        The session's parameters.
    sample_rate : int
        Sample rate of the speech it will receive.

    Example
    -------
    >>> from camsat_lobes.minivox.config import MiniVoxConfig
    >>> channel = sample_session_channel(np.random.default_rng(0), MiniVoxConfig())
    >>> simulator = ChannelSimulator(channel, 16000)
    >>> speech = np.random.default_rng(1).normal(size=16000)
    >>> out = simulator.apply(speech, np.random.default_rng(2), lead=800, tail=800)
    >>> out.shape, bool(np.abs(out).max() < 1.0)
    ((17600,), True)
    """

    def __init__(self, channel, sample_rate):
        self.channel = channel
        self.sample_rate = sample_rate
        self.impulse_response = self._room_impulse_response()
        self.microphone_sos = self._microphone_sos()

    def _room_impulse_response(self):
        import pyroomacoustics as pra

        c = self.channel
        absorption, max_order = pra.inverse_sabine(c.rt60, c.room_dim)
        room = pra.ShoeBox(
            c.room_dim,
            fs=self.sample_rate,
            materials=pra.Material(absorption),
            max_order=min(max_order, MAX_IMAGE_ORDER),
        )
        room.add_source(list(c.source))
        room.add_microphone(list(c.microphone))
        room.compute_rir()
        response = np.asarray(room.rir[0][0], np.float64)
        start = max(int(np.argmax(np.abs(response))) - 8, 0)  # no propagation delay
        response = response[start:]
        measured = decay_time(response, self.sample_rate)
        if measured > c.rt60:  # image sources in a shoebox decay slower than Sabine says
            excess_db_per_s = 60.0 / c.rt60 - 60.0 / measured
            t = np.arange(len(response)) / self.sample_rate
            response = response * 10 ** (-excess_db_per_s * t / 20)
        return response / np.abs(response).max()

    def _microphone_sos(self):
        c = self.channel
        nyquist = self.sample_rate / 2
        sections = [
            signal.butter(2, c.highpass_hz / nyquist, "highpass", output="sos"),
            signal.butter(4, c.lowpass_hz / nyquist, "lowpass", output="sos"),
        ]
        sections += [
            _peaking_sos(f, g, q, self.sample_rate)[None] for f, g, q in c.eq_peaks if f < nyquist
        ]
        return np.concatenate(sections)

    def background(self, num_samples, rng):
        """Return ``num_samples`` of this session's background noise with unit RMS.

        Example
        -------
        >>> from camsat_lobes.minivox.config import MiniVoxConfig
        >>> channel = sample_session_channel(np.random.default_rng(0), MiniVoxConfig())
        >>> noise = ChannelSimulator(channel, 16000).background(8000, np.random.default_rng(0))
        >>> round(float(np.sqrt(np.mean(noise**2))), 3)
        1.0
        """
        c = self.channel
        spectrum = np.fft.rfft(rng.normal(size=num_samples))
        frequencies = np.maximum(np.fft.rfftfreq(num_samples, 1 / self.sample_rate), 20.0)
        noise = np.fft.irfft(spectrum * frequencies ** (-c.noise_slope / 2), n=num_samples)
        noise /= np.sqrt(np.mean(noise**2)) + 1e-12
        t = np.arange(num_samples) / self.sample_rate
        depth, rate = c.modulation
        noise *= 1 + depth * np.sin(2 * np.pi * rate * t + rng.uniform(0, 2 * np.pi))
        if c.hum_hz:
            phases = rng.uniform(0, 2 * np.pi, 5)
            hum = sum(np.sin(2 * np.pi * k * c.hum_hz * t + phases[k - 1]) / k for k in range(1, 6))
            hum *= 10 ** (c.hum_db / 20) / (np.sqrt(np.mean(hum**2)) + 1e-12)
            noise = noise + hum
        return noise / (np.sqrt(np.mean(noise**2)) + 1e-12)

    def apply(self, speech, rng, lead, tail):
        """Return the recording of ``speech`` in this session.

        Arguments
        ---------
        speech : numpy.ndarray
            Clean speech at ``sample_rate``.
        rng : numpy.random.Generator
            The utterance's own stream (draws the noise).
        lead, tail : int
            Samples of background before and after the speech (the reverberation
            tail rings into ``tail``).

        Returns
        -------
        numpy.ndarray
            Float64 recording of ``lead + len(speech) + tail`` samples, peaks below 1.
        """
        padded = np.pad(np.asarray(speech, np.float64), (lead, tail))
        reverberant = signal.fftconvolve(padded, self.impulse_response)[: len(padded)]
        speech_power = np.mean(reverberant[lead : lead + len(speech)] ** 2) + 1e-12
        noise_rms = np.sqrt(speech_power / 10 ** (self.channel.snr_db / 10))
        mixture = reverberant + noise_rms * self.background(len(padded), rng)
        recorded = signal.sosfilt(self.microphone_sos, mixture)
        recorded *= 10 ** (self.channel.level_db / 20) / (np.sqrt(np.mean(recorded**2)) + 1e-12)
        peak = np.abs(recorded).max()
        return recorded * (0.99 / peak) if peak > 0.99 else recorded
