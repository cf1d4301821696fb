"""Reading audio as mono float32 at a sample rate, and the containers that can be read.

:data:`SOUNDFILE_EXTENSIONS` are read by soundfile (libsndfile, as SpeechBrain's
``audio_io``); :data:`FFMPEG_EXTENSIONS` (VoxCeleb2's m4a) need ffmpeg first
(:mod:`camsat_lobes.audio_checks.conversion`). :func:`read_audio_mono` reads a whole
file and :func:`read_audio_excerpt` a part of one, averaging the channels (or keeping
one) and resampling with a polyphase filter.

Authors
 * camsat contributors 2026
"""

import math

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

# Containers that libsndfile (and hence soundfile and SpeechBrain's audio_io) reads.
SOUNDFILE_EXTENSIONS = frozenset(
    {".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".w64", ".rf64", ".caf"}
)
# Containers that need ffmpeg (VoxCeleb2 ships m4a).
FFMPEG_EXTENSIONS = frozenset({".m4a", ".aac", ".mp4", ".opus", ".webm", ".wma"})
AUDIO_EXTENSIONS = SOUNDFILE_EXTENSIONS | FFMPEG_EXTENSIONS


def read_audio_mono(path, sample_rate=16000):
    """Read an audio file as a mono float32 signal at ``sample_rate``.

    Several channels are averaged; another sample rate is converted with a
    polyphase filter.

    Arguments
    ---------
    path : str or pathlib.Path
        A file soundfile can read.
    sample_rate : int
        Sample rate of the returned signal.

    Returns
    -------
    numpy.ndarray
        1-D float32 signal.

    Example
    -------
    >>> from pathlib import Path
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "stereo.wav"
    >>> sf.write(path, np.zeros((8000, 2)), 8000)
    >>> read_audio_mono(path, 16000).shape
    (16000,)
    >>> tmp.cleanup()
    """
    signal, file_rate = sf.read(str(path), dtype="float32", always_2d=True)
    return _to_mono_rate(signal, file_rate, sample_rate)


def read_audio_excerpt(path, start=0.0, duration=None, sample_rate=16000, channel=None):
    """Read part of an audio file as a mono float32 signal at ``sample_rate``.

    Only the excerpt is read from disk, so a few seconds of an hour-long file are cheap.

    Arguments
    ---------
    path : str or pathlib.Path
        A file soundfile can read.
    start : float
        Where the excerpt starts, in seconds.
    duration : float, optional
        Its length in seconds (shorter where the file ends); None: to the end.
    sample_rate : int
        Sample rate of the returned signal.
    channel : int, optional
        The channel to keep (e.g. 0 for the first microphone of an impulse response
        recorded with several); None averages the channels.

    Returns
    -------
    numpy.ndarray
        1-D float32 signal.

    Example
    -------
    >>> from pathlib import Path
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "ramp.wav"
    >>> sf.write(path, np.stack([np.arange(8000) / 8000, np.zeros(8000)], axis=1), 8000)
    >>> excerpt = read_audio_excerpt(path, start=0.5, duration=0.25, channel=0)
    >>> excerpt.shape, round(float(excerpt[1000]), 1)
    ((4000,), 0.6)
    >>> tmp.cleanup()
    """
    with sf.SoundFile(str(path)) as audio:
        audio.seek(min(int(round(start * audio.samplerate)), audio.frames))
        frames = -1 if duration is None else int(round(duration * audio.samplerate))
        signal = audio.read(frames, dtype="float32", always_2d=True)
        file_rate = audio.samplerate
    if channel is not None:
        signal = signal[:, channel]
    return _to_mono_rate(signal, file_rate, sample_rate)


def _to_mono_rate(signal, file_rate, sample_rate):
    signal = signal.mean(axis=1) if signal.ndim == 2 else signal
    if file_rate != sample_rate:
        common = math.gcd(int(file_rate), int(sample_rate))
        signal = resample_poly(signal, sample_rate // common, file_rate // common)
    return np.ascontiguousarray(signal, dtype=np.float32)
