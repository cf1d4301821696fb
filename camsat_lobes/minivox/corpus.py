"""Plan, render and cache a MiniVox corpus in the VoxCeleb layout.

Layout of a corpus root::

    wav/<speaker>/<session>/<utt>.wav  16 kHz mono 16-bit PCM, e.g. wav/id00003/sess02/00001.wav
    trials.txt                         VoxCeleb trial list "1 enrol.wav test.wav" (under wav/)
    metadata.json                      config, speakers, split, sessions with their channel
                                       parameters, utterances with text, speed and duration
    minivox_config.json                the settings this root was started with
    COMPLETE                           written last, holds the config hash

Every utterance depends only on its own seeded streams (keyed by seed, speaker,
session and utterance), so the files are byte-identical whatever the number of
workers and whether the run was interrupted and resumed. Each file is written
under a temporary name and renamed into place, so a ``.wav`` on disk is always
complete; a rerun skips the utterances already there. A lock on the root lets
several processes ask for the same corpus at once: one builds it, the others wait.

Authors
 * camsat contributors 2026
"""

import contextlib
import fcntl
import functools
import json
import logging
import math
import multiprocessing
import os
import time
import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import signal
from tqdm.auto import tqdm

from camsat_lobes.files import atomic_write

from .channel import ChannelSimulator, SessionChannel, sample_session_channel
from .config import GENERATOR_VERSION, MiniVoxConfig
from .phonemes import english_to_ipa, ipa_to_tokens
from .seeding import rng_for
from .speakers import SpeakerVoice, sample_voice
from .text import make_sentence
from .trials import make_trials, write_trials
from .tts import SAMPLE_RATE as TTS_SAMPLE_RATE
from .tts import KokoroTTS, load_style_packs, load_vocab, model_file

__all__ = [
    "SessionPlan",
    "SpeakerPlan",
    "UtterancePlan",
    "default_root",
    "generate_minivox",
    "plan_corpus",
]

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "COMPLETE"
CONFIG_FILE = "minivox_config.json"
LOCK_FILE = ".lock"
TEMP_SUFFIX = ".tmp"
#: Words per second of Kokoro at speed 1.0 on these sentences (sets sentence lengths).
WORDS_PER_SECOND = 2.4
SPLITS = ("train", "test")


@dataclass(frozen=True)
class UtterancePlan:
    """What one utterance will say and how.

    Arguments
    ---------
    name : str
        File name, e.g. ``"00001.wav"``.
    ids : tuple of int
        (split, speaker, session, utterance) indices keying its random streams.
    text : str
        The sentence.
    speed : float
        Speaking-rate factor.
    lead, tail : float
        Seconds of background before and after the speech.

    Example
    -------
    >>> UtterancePlan("00001.wav", (0, 0, 0, 0), "Hi.", 1.0, 0.1, 0.1).name
    '00001.wav'
    """

    name: str
    ids: tuple
    text: str
    speed: float
    lead: float
    tail: float


@dataclass(frozen=True)
class SessionPlan:
    """One session: its folder name, channel and utterances.

    Example
    -------
    >>> plan = plan_corpus(MiniVoxConfig.tiny())[0].sessions[0]
    >>> plan.name, len(plan.utterances)
    ('sess01', 2)
    """

    name: str
    channel: SessionChannel
    utterances: tuple


@dataclass(frozen=True)
class SpeakerPlan:
    """One speaker: folder name, split, voice and sessions.

    Example
    -------
    >>> speaker = plan_corpus(MiniVoxConfig.tiny())[-1]
    >>> speaker.name, speaker.split
    ('id00003', 'test')
    """

    name: str
    split: str
    voice: SpeakerVoice
    sessions: tuple


def plan_corpus(config):
    """Return the plan of every speaker, session and utterance (no audio is made).

    Arguments
    ---------
    config : MiniVoxConfig
        The corpus settings.

    Returns
    -------
    list of SpeakerPlan
        Training speakers first (``id00000``...), then test speakers.

    Example
    -------
    >>> plan = plan_corpus(MiniVoxConfig.tiny())
    >>> [s.split for s in plan]
    ['train', 'train', 'test', 'test']
    >>> plan == plan_corpus(MiniVoxConfig.tiny())
    True
    """
    counts = {"train": config.num_train_speakers, "test": config.num_test_speakers}
    speakers = []
    for split_id, split in enumerate(SPLITS):
        sessions_range = getattr(config, f"{split}_sessions")
        utterances_range = getattr(config, f"{split}_utterances")
        for index in range(counts[split]):
            voice = sample_voice(
                rng_for(config.seed, "voice", split_id, index),
                num_packs=5,
                num_dims=256,
                alpha=config.dirichlet_alpha,
                offset_scale=config.voice_offset_scale,
            )
            sizes = rng_for(config.seed, "sizes", split_id, index)
            num_sessions = int(sizes.integers(sessions_range[0], sessions_range[1] + 1))
            sessions = []
            for session in range(num_sessions):
                num_utterances = int(sizes.integers(utterances_range[0], utterances_range[1] + 1))
                ids = (split_id, index, session)
                utterances = tuple(
                    _plan_utterance(config, (*ids, k)) for k in range(num_utterances)
                )
                channel = sample_session_channel(rng_for(config.seed, "channel", *ids), config)
                sessions.append(SessionPlan(f"sess{session + 1:02d}", channel, utterances))
            name = f"id{len(speakers):05d}"
            speakers.append(SpeakerPlan(name, split, voice, tuple(sessions)))
    return speakers


def _plan_utterance(config, ids):
    """Draw the speed, length and sentence of one utterance from its own stream."""
    rng = rng_for(config.seed, "utterance", *ids)
    speed = float(rng.uniform(*config.speed_range))
    seconds = float(rng.uniform(*config.speech_duration))
    num_words = max(1, round(seconds * speed * WORDS_PER_SECOND))
    text = make_sentence(rng, num_words)
    lead, tail = (float(rng.uniform(*config.pad_duration)) for _ in range(2))
    return UtterancePlan(f"{ids[-1] + 1:05d}.wav", ids, text, speed, lead, tail)


def default_root(config):
    """Return the cache folder of a config: ``$CAMSAT_CACHE/minivox/<hash>``.

    ``CAMSAT_CACHE`` defaults to ``~/.cache/camsat``.

    Example
    -------
    >>> cfg = MiniVoxConfig.tiny()
    >>> default_root(cfg).name == cfg.config_hash()
    True
    """
    base = os.environ.get("CAMSAT_CACHE") or Path.home() / ".cache" / "camsat"
    return Path(base) / "minivox" / config.config_hash()


def generate_minivox(config=None, root=None, num_workers=None):
    """Generate (or find in the cache) a MiniVox corpus and return its root.

    Arguments
    ---------
    config : MiniVoxConfig, optional
        The settings; the default preset if omitted.
    root : str or pathlib.Path, optional
        Where to write; :func:`default_root` of the config if omitted.
    num_workers : int, optional
        Worker processes (each runs one single-threaded TTS session); defaults to the
        usable CPU cores. The result does not depend on it.

    Returns
    -------
    pathlib.Path
        The corpus root; it is complete when this returns.

    Notes
    -----
    Workers are started with the ``spawn`` method (a clean interpreter each), so a
    script that calls this with several workers must do so under
    ``if __name__ == "__main__":``. About 0.9 s of CPU per second of audio, nearly
    all of it in the TTS model.

    Example
    -------
    >>> root = generate_minivox(MiniVoxConfig.tiny())  # made once, then read from the cache
    >>> root == default_root(MiniVoxConfig.tiny())
    True
    >>> sorted(p.name for p in root.iterdir() if not p.name.startswith("."))
    ['COMPLETE', 'metadata.json', 'minivox_config.json', 'trials.txt', 'wav']
    >>> sorted(p.name for p in (root / "wav" / "id00000").iterdir())
    ['sess01', 'sess02']
    """
    config = config or MiniVoxConfig()
    root = Path(root) if root is not None else default_root(config)
    if _is_complete(root, config):
        return root
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root):
        if _is_complete(root, config):  # another process finished it while we waited
            return root
        started = time.perf_counter()
        _claim(root, config)
        for stale in (root / "wav").glob(f"*/*/*{TEMP_SUFFIX}"):
            stale.unlink()
        model_file()  # assemble the model once, before the workers start
        speakers = plan_corpus(config)
        num_samples = _render(root, config, speakers, num_workers)
        test_utterances = [
            (speaker.name, session.name, f"{speaker.name}/{session.name}/{utt.name}")
            for speaker in speakers
            if speaker.split == "test"
            for session in speaker.sessions
            for utt in session.utterances
        ]
        trials = make_trials(
            test_utterances, rng_for(config.seed, "trials"), config.cross_session_fraction
        )
        _atomic_write(root / "trials.txt", lambda path: write_trials(path, trials))
        metadata = _metadata(config, speakers, num_samples)
        _atomic_write(root / "metadata.json", lambda path: _write_json(path, metadata))
        _atomic_write(root / COMPLETE_MARKER, lambda path: path.write_text(config.config_hash()))
    summary = metadata["summary"]
    logger.info(
        "MiniVox %s ready in %.0f s: %d speakers, %d sessions, %d utterances, %.2f h, %d trials",
        root,
        time.perf_counter() - started,
        summary["train_speakers"] + summary["test_speakers"],
        summary["sessions"],
        summary["utterances"],
        summary["hours"],
        len(trials),
    )
    return root


def _is_complete(root, config):
    """Tell whether ``root`` holds the finished corpus of ``config`` (raise for another config)."""
    marker = root / COMPLETE_MARKER
    if not marker.is_file():
        return False
    found = marker.read_text().strip()
    if found != config.config_hash():
        raise ValueError(
            f"{root} holds a complete MiniVox corpus of another config (hash {found}, "
            f"wanted {config.config_hash()}); pass another root or delete that folder"
        )
    return True


def _claim(root, config):
    """Record the config in ``root``, or check that a partial corpus there has the same one."""
    config_path = root / CONFIG_FILE
    if config_path.is_file():
        found = json.loads(config_path.read_text())
        if found.get("config_hash") != config.config_hash():
            raise ValueError(
                f"{root} holds a partial MiniVox corpus of another config "
                f"(hash {found.get('config_hash')}, wanted {config.config_hash()}); "
                "pass another root or delete that folder"
            )
        return
    others = sorted(p.name for p in root.iterdir() if p.name != LOCK_FILE)
    if others:
        raise ValueError(
            f"{root} is not empty ({', '.join(others[:5])}) and is not a MiniVox folder; "
            "give an empty or new folder as root"
        )
    record = {"config_hash": config.config_hash(), "generator_version": GENERATOR_VERSION}
    record["config"] = config.to_dict()
    _atomic_write(config_path, lambda path: _write_json(path, record))


@contextlib.contextmanager
def _locked(root):
    """Hold an exclusive lock on ``root`` for the block."""
    with open(root / LOCK_FILE, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _atomic_write(path, write):
    """Write ``path`` atomically through a ``TEMP_SUFFIX`` file (a rerun removes leftover wavs)."""
    atomic_write(path, write, suffix=TEMP_SUFFIX)


def _write_json(path, data):
    """Write MiniVox's JSON layout (indent 1, non-ASCII kept, final newline); not atomic."""
    path.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def _wav_frames(path):
    """Return the number of samples of a wav file."""
    with wave.open(str(path), "rb") as handle:
        return handle.getnframes()


def _render(root, config, speakers, num_workers):
    """Make every missing utterance; return {relative path: number of samples}."""
    num_samples, jobs = {}, []
    for speaker in speakers:
        for session in speaker.sessions:
            folder = root / "wav" / speaker.name / session.name
            paths = [folder / utt.name for utt in session.utterances]
            if all(path.is_file() for path in paths):
                num_samples.update({_relative(root, p): _wav_frames(p) for p in paths})
            else:
                jobs.append((root, config, speaker, session))
    total = sum(len(s.utterances) for speaker in speakers for s in speaker.sessions)
    if num_workers is None:
        num_workers = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    num_workers = max(1, min(num_workers, len(jobs)))
    todo = total - len(num_samples)
    logger.info("MiniVox: %d of %d utterances to make, %d workers", todo, total, num_workers)
    with tqdm(total=total, initial=len(num_samples), desc="MiniVox", unit="utt") as bar:
        with contextlib.ExitStack() as stack:
            if num_workers > 1:
                pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(num_workers))
                results = pool.imap_unordered(_render_session, jobs)
            else:
                results = map(_render_session, jobs)
            for result in results:
                num_samples.update(result)
                bar.update(len(result))
    return num_samples


def _relative(root, path):
    """Return ``path`` relative to ``<root>/wav``, posix style."""
    return path.relative_to(root / "wav").as_posix()


_worker = {}


def _worker_state():
    """Return this process's TTS session, vocabulary and style packs (loaded once)."""
    if not _worker:
        _worker["tts"] = KokoroTTS(num_threads=1)
        _worker["vocab"] = load_vocab()
        _worker["packs"] = load_style_packs()[1]
    return _worker["tts"], _worker["vocab"], _worker["packs"]


def _render_session(job):
    """Write the missing utterances of one session; return their sample counts."""
    root, config, speaker, session = job
    folder = root / "wav" / speaker.name / session.name
    folder.mkdir(parents=True, exist_ok=True)
    tts, vocab, packs = _worker_state()
    style_table = speaker.voice.style_table(packs)
    simulator = ChannelSimulator(session.channel, config.sample_rate)
    result = {}
    for utt in session.utterances:
        path = folder / utt.name
        if not path.is_file():
            tokens = ipa_to_tokens(english_to_ipa(utt.text), vocab)
            speech = tts.synthesize(tokens, style_table, utt.speed)
            speech = _resample(_trim_silence(speech), TTS_SAMPLE_RATE, config.sample_rate)
            lead, tail = (round(seconds * config.sample_rate) for seconds in (utt.lead, utt.tail))
            audio = simulator.apply(speech, rng_for(config.seed, "noise", *utt.ids), lead, tail)
            _atomic_write(path, functools.partial(_write_wav, audio=audio, rate=config.sample_rate))
        result[_relative(root, path)] = _wav_frames(path)
    return result


def _trim_silence(audio, threshold=0.02, margin=0.04):
    """Cut leading and trailing samples quieter than ``threshold`` x peak (keep a margin)."""
    loud = np.flatnonzero(np.abs(audio) > threshold * (np.abs(audio).max() + 1e-12))
    if loud.size == 0:
        return audio
    pad = int(margin * TTS_SAMPLE_RATE)
    return audio[max(loud[0] - pad, 0) : loud[-1] + pad]


def _resample(audio, source_rate, target_rate):
    """Resample with a polyphase filter."""
    step = math.gcd(source_rate, target_rate)
    return signal.resample_poly(audio, target_rate // step, source_rate // step)


def _write_wav(path, audio, rate):
    """Write mono 16-bit PCM, clipping to [-1, 1]."""
    pcm = np.round(np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(pcm.tobytes())


def _metadata(config, speakers, num_samples):
    """Return the JSON-ready description of the corpus."""
    pack_names = load_style_packs()[0]
    rate = config.sample_rate
    entries = {}
    for speaker in speakers:
        sessions = {}
        for session in speaker.sessions:
            folder = f"{speaker.name}/{session.name}"
            utterances = {
                utt.name: {
                    "text": utt.text,
                    "speed": round(utt.speed, 4),
                    "duration": round(num_samples[f"{folder}/{utt.name}"] / rate, 4),
                }
                for utt in session.utterances
            }
            sessions[session.name] = {
                "channel": session.channel.to_dict(),
                "utterances": utterances,
            }
        weights = {name: round(w, 4) for name, w in zip(pack_names, speaker.voice.weights)}
        entries[speaker.name] = {
            "split": speaker.split,
            "voice_weights": weights,
            "sessions": sessions,
        }
    summary = {
        "train_speakers": sum(s.split == "train" for s in speakers),
        "test_speakers": sum(s.split == "test" for s in speakers),
        "sessions": sum(len(s.sessions) for s in speakers),
        "utterances": len(num_samples),
        "hours": round(sum(num_samples.values()) / rate / 3600, 4),
    }
    return {
        "name": "MiniVox",
        "generator_version": GENERATOR_VERSION,
        "config_hash": config.config_hash(),
        "config": config.to_dict(),
        "sample_rate": rate,
        "summary": summary,
        "speakers": entries,
    }
