"""Small VoxCeleb-layout corpora of tones and broken files, and the preparation tests' fixtures.

A test module uses a fixture by importing it (``from audio_corpus import corpus``).
"""

import csv

import numpy as np
import pytest
import soundfile as sf

import camsat_lobes.audio_checks as audio_checks
import camsat_lobes.prepare.corpus as prepare_corpus

RATE = 16000

# A corpus with good files and one file of each bad kind (see ``bad_files_corpus``).
GOOD = {
    "spkA/s1/u1.wav": 2.5,
    "spkA/s2/u2.wav": 7.2,
    "spkB/s1/u1.wav": 1.5,
    "spkC/s1/u1.wav": 2.0,
    "spkC/s2/u1.wav": 2.0,
    "spkD/s1/u1.wav": 2.0,
    "spkD/s2/u1.wav": 2.0,
}
BAD_CORPUS_TRIALS = """\
1 spkC/s1/u1.wav spkC/s2/u1.wav
0 spkC/s1/u1.wav spkD/s1/u1.wav
1 spkC/s1/bad.wav spkC/s1/u1.wav
0 spkC/s1/bad.wav spkD/s1/u1.wav
1 spkD/s1/u1.wav spkD/s2/u1.wav
"""

# Speakers a, b train and c, d test with ``make_corpus``'s default trials.
TRIALS = """\
1 c/s1/u1.wav c/s2/u2.wav
0 c/s1/u1.wav d/s1/u1.wav
1 d/s1/u1.wav d/s2/u2.wav
0 d/s2/u2.wav c/s2/u2.wav
"""
C_TRIALS = "1 c/s1/u1.wav c/s2/u2.wav\n0 c/s1/u1.wav d/s1/u1.wav\n"


def tone(seconds=1.5, rate=RATE, channels=1, frequency=220.0):
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.1 * np.sin(2 * np.pi * frequency * t)
    return np.stack([signal] * channels, axis=1) if channels > 1 else signal


def write(root, relative, signal, rate=RATE, subtype=None):
    path = root / "wav" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, rate, subtype=subtype)
    return path


def write_bytes(root, relative, content):
    path = root / "wav" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def make_bad_files_corpus(root):
    """Good files, and a corrupt, empty, silent, short, 8 kHz, stereo, m4a and text file."""
    for relative, seconds in GOOD.items():
        write(root, relative, tone(seconds))
    write_bytes(root, "spkA/s1/corrupt.wav", b"RIFF\x00\x01not really a wave file" * 4)
    write(root, "spkA/s1/empty.wav", np.zeros(0))
    write(root, "spkA/s2/silent.wav", np.zeros(2 * RATE))
    write(root, "spkA/s2/short.wav", tone(0.5))
    write(root, "spkB/s1/rate8k.wav", tone(2.0, rate=8000), rate=8000)
    write(root, "spkB/s1/stereo.wav", tone(2.0, channels=2))
    write_bytes(root, "spkB/s2/talk.m4a", b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    write_bytes(root, "spkB/s2/notes.txt", b"not audio")
    write(root, "spkA/loose.wav", tone(2.0))
    write(root, "spkC/s1/bad.wav", np.zeros(2 * RATE))
    (root / "trials.txt").write_text(BAD_CORPUS_TRIALS)
    return root


def make_corpus(root, speakers="abcd", trials=TRIALS):
    """Two utterances per speaker; with the default trials a, b train and c, d test."""
    for number, speaker in enumerate(speakers):
        write(root, f"{speaker}/s1/u1.wav", tone(frequency=150 + 40 * number))
        write(root, f"{speaker}/s2/u2.wav", tone(frequency=170 + 40 * number))
    if trials is not None:
        (root / "trials.txt").write_text(trials)
    return root


def rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture
def bad_files_corpus(tmp_path):
    """A VoxCeleb-layout folder with good files and one file of each bad kind."""
    return make_bad_files_corpus(tmp_path / "corpus")


@pytest.fixture
def corpus(tmp_path):
    """Speakers a, b (training) and c, d (test), two utterances each."""
    return make_corpus(tmp_path / "corpus")


@pytest.fixture
def no_ffmpeg(monkeypatch):
    """No ffmpeg anywhere: neither on the PATH nor from imageio-ffmpeg."""
    monkeypatch.setattr(audio_checks, "find_ffmpeg", lambda: None)


@pytest.fixture
def no_audio_checks(monkeypatch):
    """Fail if a test reaches the (expensive) audio conversion or checks."""

    def fail(*args, **kwargs):
        raise AssertionError("the audio files were opened")

    monkeypatch.setattr(prepare_corpus, "_check_files", fail)
    monkeypatch.setattr(prepare_corpus, "_convert_files", fail)
