"""What the command line refuses: recordings it cannot judge and damaged model folders.

:func:`read_recording` reads one audio file for embedding and refuses it, with a
:class:`RecordingError` naming the file and the reason, when it is

* missing or unreadable;
* holding NaN or infinite samples;
* shorter than ``min_duration`` seconds (the network needs context; a few hundred
  samples do not even fill its convolutions);
* without speech-level sound: fewer than ``min_speech`` seconds of 20 ms frames whose
  RMS level reaches ``speech_threshold`` dBFS (0 dBFS is a full-scale sine's peak).

The speech check measures energy and nothing else. It refuses silence, near-silence
and a recording that is mostly silence around a click; it **cannot** tell speech from
noise, music, hum or several talkers at speech-like levels: white noise passes it, is
embedded like speech, and its scores mean nothing. Nor does it judge the speaker's
share of the recording or its quality.

:func:`diagnose_model_folder` names the damaged file of a model folder that does not
load (unparsable ``hyperparams.yaml``, a truncated or corrupt checkpoint).

Authors
 * camsat contributors 2026
"""

import dataclasses
import zipfile
from pathlib import Path

import torch
from ruamel.yaml import YAML
from speechbrain.dataio import audio_io

__all__ = [
    "HOW_TO_EXPORT",
    "HPARAMS_FILE",
    "AudioLimits",
    "RecordingError",
    "diagnose_model_folder",
    "model_folder",
    "read_recording",
    "speech_seconds",
]

HOW_TO_EXPORT = (
    "the CAMSAT recipe's verify stage writes one model folder per trained system, to "
    "<output>/.../round<N>/systems/<system>/inference (python train.py hparams/camsat.yaml "
    "--first_stage=verify --last_stage=verify); camsat_lobes.inference.export_model "
    "writes one from trained modules"
)
"""Where model folders come from (ends the messages about missing or damaged ones)."""

HPARAMS_FILE = "hyperparams.yaml"
"""Name of the hyperparameters file of a model folder."""

FRAME_SECONDS = 0.02
"""Length of the frames whose level the speech check measures."""


@dataclasses.dataclass(frozen=True)
class AudioLimits:
    """What a recording must satisfy to be embedded (see the module's docstring).

    Arguments
    ---------
    min_duration : float
        Minimum duration in seconds (default 0.5).
    speech_threshold : float
        Level in dBFS (RMS of a 20 ms frame) from which a frame counts as speech-level
        sound (default -50 dBFS; quiet room noise lies well below, speech well above).
    min_speech : float
        Minimum total duration in seconds of the frames at or above
        ``speech_threshold`` (default 0.25).

    Example
    -------
    >>> AudioLimits()
    AudioLimits(min_duration=0.5, speech_threshold=-50.0, min_speech=0.25)
    """

    min_duration: float = 0.5
    speech_threshold: float = -50.0
    min_speech: float = 0.25


class RecordingError(ValueError):
    """A recording the command line refuses to embed, with its file and the reason.

    Arguments
    ---------
    path : str or pathlib.Path
        The audio file.
    reason : str
        What is wrong with it.

    Example
    -------
    >>> error = RecordingError("a.wav", "too short")
    >>> str(error), error.reason
    ('a.wav: too short', 'too short')
    """

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def read_recording(path, audio_normalizer, limits=AudioLimits()):
    """Read an audio file for embedding, or refuse it with the reason.

    The file is read as it is stored (any sample rate and channel count soundfile
    reads), checked for non-finite samples and duration, converted by
    ``audio_normalizer`` (SpeechBrain's: mono, the model's sample rate), then checked
    for speech-level sound.

    Arguments
    ---------
    path : str or pathlib.Path
        The audio file.
    audio_normalizer : speechbrain.dataio.preprocess.AudioNormalizer
        The model's normaliser (``model.audio_normalizer``); its ``sample_rate`` is
        the model's.
    limits : AudioLimits
        Minimum duration and speech check.

    Returns
    -------
    torch.Tensor
        (time,) float32 waveform at the model's sample rate.

    Raises
    ------
    RecordingError
        When the file is missing, unreadable, non-finite, too short or without
        speech-level sound; the message names the file and the reason.

    Example
    -------
    >>> import numpy as np
    >>> import soundfile as sf
    >>> from speechbrain.dataio.preprocess import AudioNormalizer
    >>> normalizer, folder = AudioNormalizer(16000), getfixture("tmp_path")
    >>> sf.write(folder / "ok.wav", 0.1 * np.random.default_rng(0).normal(size=8000), 8000)
    >>> read_recording(folder / "ok.wav", normalizer).shape
    torch.Size([16000])
    >>> sf.write(folder / "clip.wav", np.full(1600, 0.1), 16000)
    >>> read_recording(folder / "clip.wav", normalizer)
    Traceback (most recent call last):
    ...
    camsat_lobes.inference.checks.RecordingError: .../clip.wav: too short (0.10 s, 1600 samples; ...
    >>> sf.write(folder / "quiet.wav", np.zeros(16000), 16000)
    >>> read_recording(folder / "quiet.wav", normalizer)
    Traceback (most recent call last):
    ...
    camsat_lobes.inference.checks.RecordingError: .../quiet.wav: no speech-level sound: ...
    """
    path = Path(path)
    if not path.is_file():
        raise RecordingError(path, "does not exist" if not path.exists() else "is not a file")
    try:
        signal, rate = audio_io.load(str(path), channels_first=False)
    except Exception as err:  # any decoder error: the file is what the user must fix
        raise RecordingError(path, f"unreadable ({_one_line(err)})") from err
    if signal.numel() == 0:
        raise RecordingError(path, "empty (0 samples)")
    finite = torch.isfinite(signal)
    if not bool(finite.all()):
        nans, infs = int(torch.isnan(signal).sum()), int(torch.isinf(signal).sum())
        raise RecordingError(
            path, f"non-finite samples ({nans} NaN, {infs} inf of {signal.numel()})"
        )
    duration = signal.shape[0] / rate
    if duration < limits.min_duration:
        raise RecordingError(
            path,
            f"too short ({duration:.2f} s, {signal.shape[0]} samples; the minimum is "
            f"{limits.min_duration:g} s, --min-duration)",
        )
    wav = audio_normalizer(signal, rate).float()
    speech, loudest = speech_seconds(wav, audio_normalizer.sample_rate, limits.speech_threshold)
    if speech < limits.min_speech:
        raise RecordingError(
            path,
            f"no speech-level sound: {speech:.2f} s of {FRAME_SECONDS * 1000:g} ms frames at "
            f"or above {limits.speech_threshold:g} dBFS, the minimum is {limits.min_speech:g} s "
            f"(loudest frame {loudest:.1f} dBFS; --speech-threshold, --min-speech)",
        )
    return wav


def speech_seconds(wav, sample_rate, threshold_db):
    """Duration of the 20 ms frames whose RMS level reaches ``threshold_db`` dBFS.

    Arguments
    ---------
    wav : torch.Tensor
        (time,) waveform, full scale at 1.0.
    sample_rate : int
        Its sample rate.
    threshold_db : float
        Frame level (dBFS) from which a frame counts.

    Returns
    -------
    tuple
        ``(seconds, loudest)``: the frames' total duration and the level of the
        loudest frame in dBFS (``-inf`` for digital silence).

    Example
    -------
    >>> wav = torch.zeros(16000)
    >>> wav[:8000] = 0.1
    >>> speech_seconds(wav, 16000, -50.0)
    (0.5, -20.0)
    """
    frame = max(1, round(FRAME_SECONDS * sample_rate))
    count = wav.shape[0] // frame
    frames = wav[: count * frame].reshape(count, frame) if count else wav.reshape(1, -1)
    levels = 10 * torch.log10(frames.double().square().mean(dim=1))  # -inf when silent
    active = int((levels >= threshold_db).sum())
    return active * frames.shape[1] / sample_rate, round(float(levels.max()), 1)


def diagnose_model_folder(folder, hparams_file="hyperparams.yaml"):
    """Find the damaged file of a model folder that does not load.

    Checks that ``hparams_file`` parses as YAML and that every ``*.ckpt`` file of the
    folder is a complete torch archive (each member's checksum is verified).

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder.
    hparams_file : str
        Name of its hyperparameters file.

    Returns
    -------
    str
        What is wrong, naming the file; empty when no damage was found.

    Example
    -------
    >>> import shutil
    >>> folder = shutil.copytree(model_dir, getfixture("tmp_path") / "copy")
    >>> diagnose_model_folder(folder)
    ''
    >>> ckpt = folder / "scoring.ckpt"
    >>> _ = ckpt.write_bytes(ckpt.read_bytes()[:-100])
    >>> diagnose_model_folder(folder)
    'checkpoint .../copy/scoring.ckpt is damaged or truncated (...)'
    """
    folder = Path(folder)
    hparams = folder / hparams_file
    try:
        YAML().load(hparams.read_text(encoding="utf-8"))
    except Exception as err:  # a YAML or decoding error: the file is damaged
        return f"{hparams} is damaged ({_one_line(err)})"
    for ckpt in sorted(folder.glob("*.ckpt")):
        try:
            with zipfile.ZipFile(ckpt) as archive:
                bad = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            return f"checkpoint {ckpt} is damaged or truncated ({_one_line(err)})"
        if bad is not None:
            return f"checkpoint {ckpt} is damaged (corrupt member {bad})"
    return ""


def model_folder(source, hparams_file=HPARAMS_FILE):
    r"""Check that ``source`` is a model folder and return its absolute path.

    Arguments
    ---------
    source : str or pathlib.Path
        The folder to check.
    hparams_file : str
        Name of the hyperparameters file it must hold.

    Returns
    -------
    pathlib.Path
        The absolute path of the folder.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> model_folder(folder)
    Traceback (most recent call last):
    ...
    FileNotFoundError: model folder ... has no hyperparams.yaml: the CAMSAT recipe's verify ...
    >>> _ = (folder / "hyperparams.yaml").write_text("modules: {}\n")
    >>> model_folder(folder) == folder.absolute()
    True
    """
    folder = Path(source).expanduser().absolute()
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist: {HOW_TO_EXPORT}")
    if not (folder / hparams_file).is_file():
        raise FileNotFoundError(f"model folder {folder} has no {hparams_file}: {HOW_TO_EXPORT}")
    return folder


def _one_line(error):
    """Return the first 200 characters of an error's text, on one line."""
    text = " ".join(str(error).split())
    return text[:200] if text else type(error).__name__
