"""The settings of a MiniVox corpus: sizes, durations, voices, channel ranges and seed.

The presets:

========================  ==============  =============  =====================  =================
preset                    train speakers  test speakers  sessions x utterances  spoken length (s)
========================  ==============  =============  =====================  =================
``tiny()``                2               2              2 x 2                  1.0 - 1.6
``small()``               6               3              2 x 2                  1.2 - 2.0
default                   120             24             2-3 x 2 (test 3 x 2)   1.6 - 3.0
``voxceleb2_ratios()``    100             40             8 x 3 (test 3 x 2)     2.0 - 3.5
``shifted()``             2               24             2 x 2 (test 3 x 2)     1.6 - 3.0
========================  ==============  =============  =====================  =================

The TTS model takes nearly all of the generation time, so the amount of speech
(utterances x spoken length) is what sets it (``bench/minivox_speed.py`` shows the
split). The default preset is a first look that generates in about 15 minutes on 2 CPU
cores. ``voxceleb2_ratios()`` spends about four times that speech on many utterances and
sessions per speaker, VoxCeleb2's shape rather than its size, which is where pseudo-label
quality shows in the trained network.

``shifted()`` is a test set of voices drawn unlike the default preset's: other style
blends, other sentences, larger and noisier rooms (see its docstring). A model trained on
the default preset is scored on it to see whether a setting that helps on MiniVox's own
test speakers still helps on voices it was not drawn from.

``tiny()`` keeps two *test* speakers (besides its two training speakers) because a
trial list needs non-target pairs, which only exist between two test speakers.

The channel ranges (see :mod:`camsat_lobes.minivox.channel`) are milder than the
"all three at full strength" setting that made a pretrained encoder fail on
cross-session trials (38 % EER): reverberation time 0.15-0.6 s at 0.5-2.5 m,
microphone band limits 50-300 Hz / 3.4-7.6 kHz with three peaks of up to +-6 dB,
and background noise at 10-30 dB SNR (instead of 5-20 dB).

Authors
 * camsat contributors 2026
"""

import dataclasses
import hashlib
import json
from dataclasses import dataclass

__all__ = ["GENERATOR_VERSION", "PRESET_NAMES", "MiniVoxConfig"]

#: Bumped whenever a code change alters the generated files, so that the cache
#: folder of an older generator is never mistaken for a current one.
GENERATOR_VERSION = 1

#: Names accepted by :meth:`MiniVoxConfig.preset`: the training corpora smallest first, then
#: the shifted test set.
PRESET_NAMES = ("tiny", "small", "default", "voxceleb2_ratios", "shifted")


@dataclass(frozen=True)
class MiniVoxConfig:
    """All the settings of a MiniVox corpus; the default values are the default preset.

    Ranges are ``(low, high)`` pairs, inclusive for counts; each value is drawn
    uniformly from its range (frequencies log-uniformly).

    Arguments
    ---------
    num_train_speakers, num_test_speakers : int
        Disjoint speaker sets; the trial list uses the test speakers only.
    train_sessions, test_sessions : tuple of int
        Number of sessions per speaker.
    train_utterances, test_utterances : tuple of int
        Number of utterances per session.
    speech_duration : tuple of float
        Target length in seconds of the spoken part of an utterance (sets the number
        of words; the real length varies by about 20 % around it).
    pad_duration : tuple of float
        Seconds of room noise before and after the speech (each side).
    speed_range : tuple of float
        Speaking-rate factor of each utterance.
    dirichlet_alpha : float
        Concentration of the Dirichlet blend of the five style packs (small: a voice
        leans on one or two packs).
    voice_offset_scale : float
        Per-speaker Gaussian offset, in units of the between-pack standard deviation
        of each style dimension.
    rt60_range : tuple of float
        Reverberation time of the session's room, seconds.
    mic_distance_range : tuple of float
        Distance from the talker to the microphone, metres.
    highpass_hz_range, lowpass_hz_range : tuple of float
        Band limits of the session's microphone.
    eq_num_peaks : int
        Number of peaking filters colouring the microphone.
    eq_gain_db : float
        The peaking gains are drawn in ``[-eq_gain_db, eq_gain_db]``.
    snr_db_range : tuple of float
        Speech-to-background-noise ratio of the session, dB.
    hum_probability : float
        Probability that a session's background holds mains hum.
    level_db_range : tuple of float
        RMS level of the session's recordings, dBFS.
    cross_session_fraction : float
        Smallest fraction of the target trials that pair two different sessions.
    sample_rate : int
        Sample rate of the written files (16-bit PCM, mono).
    seed : int
        Seed of everything random.

    Example
    -------
    >>> cfg = MiniVoxConfig.tiny()
    >>> cfg.num_train_speakers, cfg.num_test_speakers
    (2, 2)
    >>> len(cfg.config_hash())
    12
    >>> MiniVoxConfig.from_dict(cfg.to_dict()) == cfg
    True
    """

    num_train_speakers: int = 120
    num_test_speakers: int = 24
    train_sessions: tuple[int, int] = (2, 3)
    test_sessions: tuple[int, int] = (3, 3)
    train_utterances: tuple[int, int] = (2, 2)
    test_utterances: tuple[int, int] = (2, 2)
    speech_duration: tuple[float, float] = (1.6, 3.0)
    pad_duration: tuple[float, float] = (0.1, 0.25)
    speed_range: tuple[float, float] = (0.85, 1.15)
    dirichlet_alpha: float = 0.3
    voice_offset_scale: float = 1.0
    rt60_range: tuple[float, float] = (0.15, 0.6)
    mic_distance_range: tuple[float, float] = (0.5, 2.5)
    highpass_hz_range: tuple[float, float] = (50.0, 300.0)
    lowpass_hz_range: tuple[float, float] = (3400.0, 7600.0)
    eq_num_peaks: int = 3
    eq_gain_db: float = 6.0
    snr_db_range: tuple[float, float] = (10.0, 30.0)
    hum_probability: float = 0.3
    level_db_range: tuple[float, float] = (-32.0, -20.0)
    cross_session_fraction: float = 0.8
    sample_rate: int = 16000
    seed: int = 2024

    def __post_init__(self):
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):  # from JSON
                value = tuple(value)
                object.__setattr__(self, field.name, value)
            if isinstance(value, tuple) and not (len(value) == 2 and value[0] <= value[1]):
                raise ValueError(
                    f"MiniVoxConfig.{field.name}={value!r} is not a (low, high) range "
                    "with low <= high; give two numbers in increasing order"
                )
        positive = ["num_train_speakers", "train_sessions", "test_sessions"]
        positive += ["train_utterances", "test_utterances", "speech_duration", "speed_range"]
        for name in positive:
            if min(_as_tuple(getattr(self, name))) <= 0:
                raise ValueError(f"MiniVoxConfig.{name}={getattr(self, name)!r} must be > 0")
        if self.num_test_speakers < 2:
            raise ValueError(
                f"MiniVoxConfig.num_test_speakers={self.num_test_speakers}: the trial list "
                "needs at least 2 test speakers (non-target trials pair two of them)"
            )
        if self.test_sessions[1] * self.test_utterances[1] < 2:
            raise ValueError(
                "MiniVoxConfig: test speakers need at least 2 utterances for target trials; "
                "raise test_sessions or test_utterances"
            )
        if not 0.0 < self.cross_session_fraction <= 1.0:
            raise ValueError(
                f"MiniVoxConfig.cross_session_fraction={self.cross_session_fraction} "
                "must lie in (0, 1]"
            )
        if self.lowpass_hz_range[1] >= self.sample_rate / 2:
            raise ValueError(
                f"MiniVoxConfig.lowpass_hz_range={self.lowpass_hz_range} must stay below "
                f"the Nyquist frequency {self.sample_rate / 2} Hz"
            )

    @classmethod
    def tiny(cls, **overrides):
        """Return the smallest useful corpus: 2 train + 2 test speakers x 2 x 2, for tests.

        Example
        -------
        >>> MiniVoxConfig.tiny(seed=3).seed
        3
        """
        tiny = dict(
            num_train_speakers=2,
            num_test_speakers=2,
            train_sessions=(2, 2),
            test_sessions=(2, 2),
            train_utterances=(2, 2),
            test_utterances=(2, 2),
            speech_duration=(1.0, 1.6),
            pad_duration=(0.05, 0.1),
        )
        return cls(**{**tiny, **overrides})

    @classmethod
    def small(cls, **overrides):
        """Return a small corpus (6 train + 3 test speakers) that generates in seconds.

        Example
        -------
        >>> MiniVoxConfig.small().num_train_speakers
        6
        """
        small = dict(
            num_train_speakers=6,
            num_test_speakers=3,
            train_sessions=(2, 2),
            test_sessions=(2, 2),
            train_utterances=(2, 2),
            test_utterances=(2, 2),
            speech_duration=(1.2, 2.0),
            pad_duration=(0.05, 0.15),
        )
        return cls(**{**small, **overrides})

    @classmethod
    def default(cls, **overrides):
        """Return the default preset (120 train + 24 test speakers), as ``MiniVoxConfig()``.

        Example
        -------
        >>> MiniVoxConfig.default() == MiniVoxConfig()
        True
        """
        return cls(**overrides)

    @classmethod
    def voxceleb2_ratios(cls, **overrides):
        """Return a corpus shaped by VoxCeleb2's ratios: 100 speakers x 8 sessions x 3 utterances.

        VoxCeleb2 has about 180 utterances over about 25 videos per speaker; what a
        pseudo-label can add over the self-supervised encoder it came from depends on
        those ratios, not on the corpus size. This preset gives each of 100 training
        speakers 24 utterances over 8 sessions (each its own room, microphone and
        noise), spoken parts of 2-3.5 s (the speaker networks train on 3 s crops), and
        40 test speakers (3 sessions x 2 utterances) for narrower intervals than the
        default preset's 24. About 2 hours of speech.

        Example
        -------
        >>> cfg = MiniVoxConfig.voxceleb2_ratios()
        >>> cfg.num_train_speakers, cfg.train_sessions, cfg.train_utterances
        (100, (8, 8), (3, 3))
        """
        ratios = dict(
            num_train_speakers=100,
            num_test_speakers=40,
            train_sessions=(8, 8),
            train_utterances=(3, 3),
            speech_duration=(2.0, 3.5),
        )
        return cls(**{**ratios, **overrides})

    @classmethod
    def shifted(cls, **overrides):
        """Return a test set of 24 speakers whose voices are drawn unlike the default preset's.

        Only its test speakers are meant to be scored (its 2 training speakers keep the
        corpus preparable). What differs from the default preset:

        - voices: even blends of the five style packs (Dirichlet α = 1.0 instead of 0.3,
          so no voice leans on one pack) and speaking rates 0.8-1.2 instead of 0.85-1.15;
        - sentences: another seed draws other sentences (and other speakers);
        - rooms: reverberation 0.3-0.9 s instead of 0.15-0.6 s at 1-3 m instead of
          0.5-2.5 m, peaks of up to ±9 dB instead of ±6 dB, and background noise at
          8-25 dB SNR instead of 10-30 dB.

        Example
        -------
        >>> MiniVoxConfig.shifted().num_test_speakers, MiniVoxConfig.shifted().dirichlet_alpha
        (24, 1.0)
        """
        shifted = dict(
            num_train_speakers=2,
            train_sessions=(2, 2),
            dirichlet_alpha=1.0,
            speed_range=(0.8, 1.2),
            rt60_range=(0.3, 0.9),
            mic_distance_range=(1.0, 3.0),
            eq_gain_db=9.0,
            snr_db_range=(8.0, 25.0),
            seed=4202,
        )
        return cls(**{**shifted, **overrides})

    @classmethod
    def preset(cls, name, **overrides):
        """Return the preset called ``name``, one of :data:`PRESET_NAMES`.

        Use this rather than ``getattr(MiniVoxConfig, name)()``, which turns a mistyped
        name into an AttributeError and accepts any attribute (``"from_dict"``...).

        Arguments
        ---------
        name : str
            ``"tiny"``, ``"small"``, ``"default"``, ``"voxceleb2_ratios"`` or
            ``"shifted"``.
        **overrides
            Fields to set otherwise (e.g. ``seed=3``).

        Returns
        -------
        MiniVoxConfig
            The preset's settings.

        Raises
        ------
        ValueError
            When ``name`` is not a preset; the message lists the valid names.

        Example
        -------
        >>> MiniVoxConfig.preset("default") == MiniVoxConfig()
        True
        >>> MiniVoxConfig.preset("small", seed=3).seed
        3
        >>> MiniVoxConfig.preset("huge")
        Traceback (most recent call last):
        ...
        ValueError: unknown MiniVox preset 'huge'; choose one of: tiny, small, default,
        voxceleb2_ratios, shifted
        """
        if not isinstance(name, str) or name not in PRESET_NAMES:
            raise ValueError(
                f"unknown MiniVox preset {name!r}; choose one of: {', '.join(PRESET_NAMES)}"
            )
        return getattr(cls, name)(**overrides)

    def to_dict(self):
        """Return the settings as a JSON-ready dict (ranges as lists).

        Example
        -------
        >>> MiniVoxConfig.tiny().to_dict()["train_sessions"]
        [2, 2]
        """
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }

    @classmethod
    def from_dict(cls, values):
        """Build a config from :meth:`to_dict` output; unknown keys are an error.

        Example
        -------
        >>> MiniVoxConfig.from_dict({"seed": 5}).seed
        5
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"unknown MiniVoxConfig fields {unknown}; known fields: {sorted(known)}"
            )
        return cls(**values)

    def config_hash(self):
        """Return 12 hex digits naming these settings (and the generator version).

        Example
        -------
        >>> MiniVoxConfig().config_hash() == MiniVoxConfig(seed=1).config_hash()
        False
        """
        text = json.dumps({"generator": GENERATOR_VERSION, **self.to_dict()}, sort_keys=True)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _as_tuple(value):
    return value if isinstance(value, tuple) else (value,)
