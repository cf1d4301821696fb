"""The fate of one audio file: kept, converted to 16 kHz mono, or skipped.

:func:`check_audio_file` never raises on a bad file; it returns an
:class:`AudioCheck` that says what is wrong with the file and what was done. The
header gives the duration, sample rate and channel count; silence is probed on a
few short windows (:data:`SILENCE_PROBES` of :data:`PROBE_SECONDS`) and confirmed
on the whole file only when every probe is silent; files of floating-point samples
(:data:`FLOAT_SUBTYPES`), the only ones that can hold NaN or inf, are read in full,
:data:`FINITE_CHECK_BLOCK` frames at a time. Containers soundfile cannot read are
converted with ffmpeg (:mod:`camsat_lobes.audio_checks.conversion`) when it is given.

Authors
 * camsat contributors 2026
"""

import dataclasses
import math
from pathlib import Path

import numpy as np
import soundfile as sf

from camsat_lobes.audio_checks.conversion import _one_line, convert_with_ffmpeg
from camsat_lobes.audio_checks.reading import SOUNDFILE_EXTENSIONS, _to_mono_rate

SILENCE_PROBES = 8
PROBE_SECONDS = 0.25
# Sample formats that can store NaN and inf; every other subtype decodes to finite values.
FLOAT_SUBTYPES = frozenset({"FLOAT", "DOUBLE"})
FINITE_CHECK_BLOCK = 1 << 20


@dataclasses.dataclass
class AudioCheck:
    """The fate of one audio file.

    Arguments
    ---------
    path : str
        The file that was checked.
    wav : str or None
        The 16 kHz mono file to put in the manifest: ``path`` itself, the converted
        copy, or None when the file is skipped.
    num_samples : int
        Length of ``wav`` in samples (0 when skipped).
    problem : str
        What is wrong with the file; empty when nothing is.
    action : str
        What was done: ``"kept"``, ``"converted ..."`` or ``"skipped"``.

    Example
    -------
    >>> AudioCheck("a.wav", "a.wav", 16000).usable
    True
    """

    path: str
    wav: str | None
    num_samples: int
    problem: str = ""
    action: str = "kept"

    @property
    def usable(self):
        """Whether the file goes into the manifests."""
        return self.wav is not None


def check_audio_file(
    path,
    converted_path,
    sample_rate=16000,
    min_duration=1.0,
    silence_threshold=1e-4,
    ffmpeg=None,
):
    """Check one audio file and convert it to ``sample_rate`` mono when needed.

    Arguments
    ---------
    path : str or pathlib.Path
        The audio file.
    converted_path : str or pathlib.Path
        Where a converted copy goes (a ``.wav`` path); written only when needed.
    sample_rate : int
        Required sample rate.
    min_duration : float
        Files shorter than this many seconds are skipped.
    silence_threshold : float
        Files whose RMS amplitude is below this are skipped as silent.
        Files holding NaN or inf samples are skipped whatever their level.
    ffmpeg : str, optional
        Path of ``ffmpeg``, used for containers soundfile cannot read (m4a). Without
        it such files are skipped with a message that says how to convert them.

    Returns
    -------
    AudioCheck
        The file's fate; the function does not raise on bad audio.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name)
    >>> sf.write(folder / "fine.wav", 0.1 * np.ones(32000), 16000)
    >>> sf.write(folder / "quiet.wav", np.zeros(32000), 16000)
    >>> sf.write(folder / "fast.wav", 0.1 * np.ones(88200), 44100)
    >>> check_audio_file(folder / "fine.wav", folder / "c1.wav").action
    'kept'
    >>> check_audio_file(folder / "quiet.wav", folder / "c2.wav").problem
    'silent (RMS 0 < 0.0001)'
    >>> check = check_audio_file(folder / "fast.wav", folder / "c3.wav")
    >>> check.problem, check.num_samples, check.wav == str(folder / "c3.wav")
    ('sample rate 44100 Hz', 32000, True)
    >>> broken = 0.1 * np.ones(32000)
    >>> broken[100:103] = [np.nan, np.inf, -np.inf]
    >>> sf.write(folder / "nan.wav", broken, 16000, subtype="FLOAT")
    >>> check_audio_file(folder / "nan.wav", folder / "c4.wav").problem
    'non-finite samples (1 NaN, 2 inf of 32000)'
    >>> tmp.cleanup()
    """
    path, converted_path = str(path), str(converted_path)
    try:
        audio = sf.SoundFile(path)
    except Exception as error:  # any unreadable file is reported, not raised
        return _check_unsupported_container(
            path, converted_path, error, sample_rate, min_duration, silence_threshold, ffmpeg
        )
    try:
        with audio:
            return _check_open_file(
                audio, converted_path, sample_rate, min_duration, silence_threshold
            )
    except Exception as error:  # e.g. a header that promises missing data
        return AudioCheck(path, None, 0, f"unreadable ({_one_line(error)})", "skipped")


def _check_open_file(audio, converted_path, sample_rate, min_duration, silence_threshold):
    path = audio.name
    if audio.frames == 0:
        return AudioCheck(path, None, 0, "empty (0 samples)", "skipped")
    duration = audio.frames / audio.samplerate
    if duration < min_duration:
        problem = f"too short ({duration:.2f} s < min_duration {min_duration:g} s)"
        return AudioCheck(path, None, 0, problem, "skipped")
    conversions = []
    if audio.samplerate != sample_rate:
        conversions.append(f"sample rate {audio.samplerate} Hz")
    if audio.channels != 1:
        conversions.append(f"{audio.channels} channels")
    if audio.subtype in FLOAT_SUBTYPES:
        problem = _non_finite_problem(audio)
        if problem:
            return AudioCheck(path, None, 0, problem, "skipped")
    if not conversions:
        rms = _probe_rms(audio)
        if rms < silence_threshold:
            audio.seek(0)
            rms = _rms(audio.read(dtype="float32"))
        if rms < silence_threshold:
            return AudioCheck(path, None, 0, _silent(rms, silence_threshold), "skipped")
        return AudioCheck(path, path, audio.frames)
    audio.seek(0)
    signal = audio.read(dtype="float32", always_2d=True)
    problem = _non_finite_text(*_count_non_finite(signal), signal.size)
    if problem:
        return AudioCheck(path, None, 0, ", ".join([*conversions, problem]), "skipped")
    signal = _to_mono_rate(signal, audio.samplerate, sample_rate)
    if _rms(signal) < silence_threshold:
        problem = ", ".join([*conversions, _silent(_rms(signal), silence_threshold)])
        return AudioCheck(path, None, 0, problem, "skipped")
    _write_wav(converted_path, signal, sample_rate)
    action = f"converted to {sample_rate} Hz mono: {converted_path}"
    return AudioCheck(path, converted_path, len(signal), ", ".join(conversions), action)


def _check_unsupported_container(
    path, converted_path, error, sample_rate, min_duration, silence_threshold, ffmpeg
):
    extension = Path(path).suffix.lower()
    if extension in SOUNDFILE_EXTENSIONS:
        return AudioCheck(path, None, 0, f"unreadable ({_one_line(error)})", "skipped")
    kind = extension.lstrip(".") or "file without extension"
    if ffmpeg is None:
        problem = (
            f"{kind} not supported: convert to wav with ffmpeg "
            f"(ffmpeg -i in{extension} -ac 1 -ar {sample_rate} out.wav) "
            "or install ffmpeg (`apt-get install ffmpeg` or `pip install imageio-ffmpeg`) "
            "and prepare again"
        )
        return AudioCheck(path, None, 0, problem, "skipped")
    failure = convert_with_ffmpeg(path, converted_path, ffmpeg, sample_rate)
    if failure:
        return AudioCheck(path, None, 0, f"unreadable (ffmpeg failed: {failure})", "skipped")
    check = check_audio_file(
        converted_path, converted_path, sample_rate, min_duration, silence_threshold
    )
    if not check.usable:
        Path(converted_path).unlink(missing_ok=True)
        return AudioCheck(path, None, 0, f"{kind} container, {check.problem}", "skipped")
    action = f"converted with ffmpeg to {sample_rate} Hz mono: {converted_path}"
    return AudioCheck(path, converted_path, check.num_samples, f"{kind} container", action)


def _non_finite_problem(audio):
    """Problem text when an open file holds NaN or inf samples (read block by block), else ''."""
    audio.seek(0)
    nans = infs = 0
    for block in audio.blocks(blocksize=FINITE_CHECK_BLOCK, dtype="float32", always_2d=True):
        block_nans, block_infs = _count_non_finite(block)
        nans, infs = nans + block_nans, infs + block_infs
    audio.seek(0)
    return _non_finite_text(nans, infs, audio.frames * audio.channels)


def _count_non_finite(signal):
    """Numbers of NaN and of infinite values in an array."""
    if np.isfinite(signal).all():
        return 0, 0
    return int(np.isnan(signal).sum()), int(np.isinf(signal).sum())


def _non_finite_text(nans, infs, total):
    if not nans and not infs:
        return ""
    return f"non-finite samples ({nans} NaN, {infs} inf of {total})"


def _probe_rms(audio):
    """RMS over a few short windows spread evenly over an open file."""
    window = max(1, int(PROBE_SECONDS * audio.samplerate))
    starts = np.linspace(0, max(0, audio.frames - window), SILENCE_PROBES).astype(int)
    squares, count = 0.0, 0
    for start in np.unique(starts):
        audio.seek(int(start))
        block = audio.read(window, dtype="float32", always_2d=True)
        squares += float(np.square(block, dtype=np.float64).sum())
        count += block.size
    return math.sqrt(squares / max(count, 1))


def _rms(signal):
    return float(np.sqrt(np.mean(np.square(signal, dtype=np.float64)))) if signal.size else 0.0


def _silent(rms, threshold):
    return f"silent (RMS {rms:.2g} < {threshold:g})"


def _write_wav(path, signal, sample_rate):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.clip(signal, -1.0, 1.0), sample_rate, subtype="PCM_16")
