"""Data preparation for any VoxCeleb-layout folder (VoxCeleb1/2 as wav, MiniVox).

The corpus is ``<root>/wav/<speaker>/<session>/<utterance>.wav`` with a trial list
``<root>/trials.txt`` (lines ``1 spk/sess/utt.wav spk/sess/utt.wav``). Every audio
file is checked (see :mod:`camsat_lobes.audio_checks`): files at another sample rate
or with several channels are converted into ``<save_folder>/converted/``, files that
cannot be used are skipped, and each file's fate is written to
``prepare_report.json`` and ``prepare_report.md``. A trial that names a skipped file
is dropped and counted. The speakers of the trial list are the test speakers; every
other speaker's utterances are the training set, listed whole (``train_utts.csv``)
and cut into fixed-length segments (``train.csv``) like SpeechBrain's VoxCeleb recipe.

A corpus that cannot give a verification experiment stops the preparation with a
ValueError that names the cause, before the audio is checked where the file list
shows it (no trial list, a trial list without target or without non-target trials,
a trial naming a file absent from the corpus, fewer than 2 training speakers) and
right after the report is written where only the audio checks show it.

``preparation.json`` (written last) records the options and a digest of the corpus
(paths, sizes and modification times of the audio files, content of the trial list);
:func:`preparation_differences` compares it with a data folder, so a rerun into the
same folder redoes the work when the corpus or an option changed.

Manifests (``wav`` holds absolute paths, ``start``/``stop`` are in samples and
``duration`` in seconds):

- ``train_utts.csv`` and ``test.csv``: ID, duration, wav, start, stop, spk_id, session
- ``train.csv``: ID, duration, wav, start, stop, spk_id, utt_id
- ``trials.csv``: label, enrol_id, test_id

An utterance ID is ``<speaker>--<session>--<utterance stem>``. ``spk_id`` is there to
score results; no self-supervised stage may read it.

Authors
 * camsat contributors 2026
"""

import functools
import hashlib
import itertools
import json
import logging
import multiprocessing
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath

import numpy as np
from tqdm import tqdm

from camsat_lobes.audio_checks import AUDIO_EXTENSIONS, check_audio_file, find_ffmpeg
from camsat_lobes.files import write_csv, write_json, write_text

logger = logging.getLogger(__name__)

__all__ = [
    "preparation_differences",
    "preparation_is_current",
    "prepare_voxceleb",
    "read_trial_list",
    "segment_rows",
    "utterance_id",
]

UTTERANCE_COLUMNS = ["ID", "duration", "wav", "start", "stop", "spk_id", "session"]
SEGMENT_COLUMNS = ["ID", "duration", "wav", "start", "stop", "spk_id", "utt_id"]
TRIAL_COLUMNS = ["label", "enrol_id", "test_id"]
OUTPUT_FILES = {
    "train_utts_csv": "train_utts.csv",
    "train_csv": "train.csv",
    "test_csv": "test.csv",
    "trials_csv": "trials.csv",
    "report_json": "prepare_report.json",
    "report_md": "prepare_report.md",
}
RECORD_FILE = "preparation.json"
FORMAT_VERSION = 2
MIN_TRAIN_SPEAKERS = 2
NAMED_AT_MOST = 5  # files or speakers quoted in one error message
ID_SEPARATOR = "--"
DEVELOPMENT_SEED = 2024  # the fixed draw of the speakers of a development split
LAYOUT = "<speaker>/<session>/<utterance>"


def utterance_id(relative_path):
    """Return the utterance ID of a path relative to the ``wav`` folder.

    Arguments
    ---------
    relative_path : str
        ``<speaker>/<session>/<utterance>.<ext>``.

    Returns
    -------
    str
        ``<speaker>--<session>--<utterance stem>``.

    Example
    -------
    >>> utterance_id("id10270/x6uYqmx31kE/00001.wav")
    'id10270--x6uYqmx31kE--00001'
    """
    parts = PurePosixPath(relative_path).parts
    if len(parts) != 3:
        raise ValueError(f"{relative_path!r} is not a {LAYOUT} path relative to the wav folder")
    speaker, session, name = parts
    return ID_SEPARATOR.join([speaker, session, PurePosixPath(name).stem])


def read_trial_list(trial_file):
    r"""Read a VoxCeleb trial list.

    Arguments
    ---------
    trial_file : str or pathlib.Path
        Lines ``<label> <enrol path> <test path>``, label 1 (target) or 0 (non-target),
        paths relative to the corpus ``wav`` folder.

    Returns
    -------
    list of (int, str, str)
        ``(label, enrol path, test path)`` per trial.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> path = Path(tmp.name) / "trials.txt"
    >>> _ = path.write_text("1 a/s1/u1.wav a/s2/u2.wav\n0 a/s1/u1.wav b/s1/u1.wav\n")
    >>> read_trial_list(path)
    [(1, 'a/s1/u1.wav', 'a/s2/u2.wav'), (0, 'a/s1/u1.wav', 'b/s1/u1.wav')]
    >>> tmp.cleanup()
    """
    trials = []
    with open(trial_file, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 3 or fields[0] not in ("0", "1"):
                raise ValueError(
                    f"{trial_file}, line {number}: {line.strip()!r} is not a trial; "
                    "expected '<1|0> <speaker>/<session>/<utt>.wav <speaker>/<session>/<utt>.wav'"
                )
            for path in fields[1:]:
                if len(PurePosixPath(path).parts) != 3:
                    raise ValueError(
                        f"{trial_file}, line {number}: {path!r} is not a {LAYOUT} path "
                        "relative to the wav folder"
                    )
            trials.append((int(fields[0]), fields[1], fields[2]))
    return trials


def segment_rows(utterance, seg_duration=3.0, sample_rate=16000):
    """Cut one utterance row into consecutive segments of ``seg_duration`` seconds.

    As in SpeechBrain's VoxCeleb recipe, an utterance gives
    ``floor(duration / seg_duration)`` segments from its start and the remainder
    shorter than one segment is left out; an utterance shorter than one segment
    gives a single segment covering all of it.

    Arguments
    ---------
    utterance : dict
        A row of ``train_utts.csv`` (ID, wav, start, stop, spk_id).
    seg_duration : float
        Segment length in seconds.
    sample_rate : int
        Sample rate of the audio.

    Returns
    -------
    list of dict
        Rows of ``train.csv`` (ID, duration, wav, start, stop, spk_id, utt_id); the
        segment ID is ``<utterance ID>_<start s>_<stop s>``.

    Example
    -------
    >>> row = {"ID": "a--s1--u1", "wav": "/x.wav", "start": 0, "stop": 112000, "spk_id": "a"}
    >>> [(s["ID"], s["start"], s["stop"]) for s in segment_rows(row, 3.0, 16000)]
    [('a--s1--u1_0_3', 0, 48000), ('a--s1--u1_3_6', 48000, 96000)]
    """
    start, stop = int(utterance["start"]), int(utterance["stop"])
    length = int(round(seg_duration * sample_rate))
    if length <= 0:
        raise ValueError(f"seg_duration={seg_duration} must be positive")
    rows = []
    for index in range(max(1, (stop - start) // length)):
        seg_start = start + index * length
        seg_stop = min(seg_start + length, stop)
        begin, end = (seg_start - start) / sample_rate, (seg_stop - start) / sample_rate
        rows.append(
            {
                "ID": f"{utterance['ID']}_{begin:g}_{end:g}",
                "duration": round((seg_stop - seg_start) / sample_rate, 4),
                "wav": utterance["wav"],
                "start": seg_start,
                "stop": seg_stop,
                "spk_id": utterance["spk_id"],
                "utt_id": utterance["ID"],
            }
        )
    return rows


def preparation_differences(
    data_folder,
    save_folder,
    trial_file=None,
    seg_duration=3.0,
    min_duration=1.0,
    sample_rate=16000,
    silence_threshold=1e-4,
    development_speakers=0,
):
    r"""List what differs between a finished preparation and the corpus as it is now.

    Compares ``<save_folder>/preparation.json`` (written by :func:`prepare_voxceleb`
    once it has finished) with the options given here and with the corpus on disk:
    the resolved data folder and trial list, the options, the audio files under
    ``<data_folder>/wav`` (relative paths, sizes and modification times) and the
    content of the trial list. It walks the audio folder and reads file sizes, but
    opens no audio file. It does not raise on a missing folder: that is a difference.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root holding ``wav/<speaker>/<session>/<utterance>.wav``.
    save_folder : str or pathlib.Path
        Output folder of :func:`prepare_voxceleb`.
    trial_file : str or pathlib.Path, optional
        Trial list; ``<data_folder>/trials.txt`` by default.
    seg_duration : float
        Segment length of ``train.csv`` in seconds.
    min_duration : float
        Shortest usable file in seconds.
    sample_rate : int
        Sample rate of the manifests' audio.
    silence_threshold : float
        RMS amplitude under which a file is silent.
    development_speakers : int
        Training speakers held out as the test set (see :func:`prepare_voxceleb`).

    Returns
    -------
    list of str
        One line per difference, ready for a log message; empty when the
        preparation in ``save_folder`` is current and can be reused.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> root = getfixture("tmp_path") / "corpus"
    >>> noise = np.random.default_rng(0).uniform(-0.1, 0.1, 16000)
    >>> for name in ["a/s1/u1", "b/s1/u1", "c/s1/u1", "c/s2/u2", "d/s1/u1"]:
    ...     (root / "wav" / name).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(root / "wav" / f"{name}.wav", noise, 16000)
    >>> trials = "1 c/s1/u1.wav c/s2/u2.wav\n0 c/s1/u1.wav d/s1/u1.wav\n"
    >>> _ = (root / "trials.txt").write_text(trials)
    >>> save = root.parent / "prepared"
    >>> preparation_differences(root, save)  # doctest: +ELLIPSIS
    ['.../prepared holds no finished preparation (preparation.json is missing)']
    >>> _ = prepare_voxceleb(root, save)
    >>> preparation_differences(root, save)
    []
    >>> preparation_differences(root, save, seg_duration=2.0)
    ['seg_duration: 3.0 then, 2.0 now']
    >>> sf.write(root / "wav" / "b/s1/u2.wav", noise, 16000)
    >>> preparation_differences(root, save)  # doctest: +ELLIPSIS
    ['audio files under .../corpus/wav: 5 then, 6 now (files added or removed)']
    """
    try:
        data_folder = Path(data_folder).expanduser().resolve()
        audio_root = _audio_root(data_folder)
        trial_path = _trial_path(data_folder, trial_file)
        options = _options(
            data_folder,
            trial_path,
            seg_duration,
            min_duration,
            sample_rate,
            silence_threshold,
            development_speakers,
        )
        record = _preparation_record(options, audio_root, _walk(audio_root), trial_path)
    except (OSError, ValueError) as error:
        return [str(error)]
    return _record_differences(Path(save_folder).expanduser().resolve(), record, audio_root)


def preparation_is_current(data_folder, save_folder, **options):
    r"""Tell whether ``save_folder`` holds a finished preparation of the corpus as it is now.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root holding ``wav/<speaker>/<session>/<utterance>.wav``.
    save_folder : str or pathlib.Path
        Output folder of :func:`prepare_voxceleb`.
    **options
        The options given to :func:`prepare_voxceleb` (``trial_file``,
        ``seg_duration``, ``min_duration``, ``sample_rate``, ``silence_threshold``);
        ``num_workers`` is accepted and ignored.

    Returns
    -------
    bool
        True when :func:`preparation_differences` finds no difference.

    Example
    -------
    >>> preparation_is_current(getfixture("tmp_path") / "nowhere", "prepared")
    False
    """
    options.pop("num_workers", None)
    return not preparation_differences(data_folder, save_folder, **options)


def prepare_voxceleb(
    data_folder,
    save_folder,
    trial_file=None,
    seg_duration=3.0,
    min_duration=1.0,
    sample_rate=16000,
    silence_threshold=1e-4,
    development_speakers=0,
    num_workers=0,
):
    r"""Write the manifests and the preparation report of a VoxCeleb-layout folder.

    The work is skipped when ``save_folder`` holds a finished preparation of the same
    corpus with the same options (``preparation.json``, written last; see
    :func:`preparation_differences`), and done again, with the differences logged,
    when anything changed: the data folder, the trial list, an option, or an audio
    file added, removed or rewritten.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root holding ``wav/<speaker>/<session>/<utterance>.wav``.
    save_folder : str or pathlib.Path
        Where the manifests, the report and converted audio go.
    trial_file : str or pathlib.Path, optional
        VoxCeleb trial list; by default ``<data_folder>/trials.txt``. It must exist and
        hold target and non-target trials on files of the corpus.
    seg_duration : float
        Segment length of ``train.csv`` in seconds.
    min_duration : float
        Files shorter than this (seconds) are skipped.
    sample_rate : int
        Sample rate of the manifests' audio; other rates are converted.
    silence_threshold : float
        Files with an RMS amplitude below this are skipped as silent.
    development_speakers : int
        When positive, a development split for choosing hyperparameters: this many
        training speakers (a fixed draw, :func:`development_speaker_draw`) become
        the test set, scored on every pair of their utterances, and the training set
        is the other training speakers. The corpus's own test speakers are left out
        entirely, so nothing chosen on this split has seen them.
    num_workers : int
        Processes that check files in parallel (0 or 1: in this process).

    Returns
    -------
    dict
        Paths (str) of ``train_utts_csv``, ``train_csv``, ``test_csv``,
        ``trials_csv``, ``report_json`` and ``report_md``.

    Raises
    ------
    FileNotFoundError
        When the data folder, its ``wav`` folder, its audio or a given trial file
        does not exist, or no file of the trial list is in the corpus.
    ValueError
        When the corpus cannot give a verification experiment: no trial list, no
        target or no non-target trial, a trial naming a file absent from the corpus,
        fewer than 2 training speakers, or no usable audio. The checks that need only
        the file list run before any audio file is opened.

    Example
    -------
    >>> import tempfile
    >>> import numpy as np, soundfile as sf
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name) / "corpus"
    >>> noise = np.random.default_rng(0).uniform(-0.1, 0.1, 40000)
    >>> for name in ["a/s1/u1", "a/s2/u2", "b/s1/u1", "c/s1/u1", "c/s1/u2", "d/s1/u1"]:
    ...     (root / "wav" / name).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(root / "wav" / f"{name}.wav", noise, 16000)
    >>> trials = "1 c/s1/u1.wav c/s1/u2.wav\n0 c/s1/u1.wav d/s1/u1.wav\n"
    >>> _ = (root / "trials.txt").write_text(trials)
    >>> paths = prepare_voxceleb(root, Path(tmp.name) / "prepared", seg_duration=1.0)
    >>> import csv
    >>> [row["ID"] for row in csv.DictReader(open(paths["train_utts_csv"]))]
    ['a--s1--u1', 'a--s2--u2', 'b--s1--u1']
    >>> len(list(csv.DictReader(open(paths["train_csv"]))))
    6
    >>> open(paths["trials_csv"]).read().splitlines()
    ['label,enrol_id,test_id', '1,c--s1--u1,c--s1--u2', '0,c--s1--u1,d--s1--u1']
    >>> tmp.cleanup()
    """
    data_folder = Path(data_folder).expanduser().resolve()
    save_folder = Path(save_folder).expanduser().resolve()
    audio_root = _audio_root(data_folder)
    relatives = _walk(audio_root)
    files, report = _list_audio_files(audio_root, relatives)
    trial_path = _trial_path(data_folder, trial_file)
    options = _options(
        data_folder,
        trial_path,
        seg_duration,
        min_duration,
        sample_rate,
        silence_threshold,
        development_speakers,
    )
    record = _preparation_record(options, audio_root, relatives, trial_path)
    paths = _output_paths(save_folder)
    if _finished_before(save_folder, record, audio_root):
        return paths
    _start_over(save_folder)

    trials = read_trial_list(trial_path)
    test_speakers = _check_file_list(trials, files, trial_path, audio_root)
    audio_files = len(files) + sum(entry["action"] == "skipped" for entry in report.values())
    utterances = _usable_utterances(files, report, audio_root, save_folder, options, num_workers)
    split = _split(utterances, trials, test_speakers, seg_duration, sample_rate)
    if development_speakers:
        split = _development_split(split, development_speakers, seg_duration, sample_rate)
    _note_dropped_trials(report, split["dropped"], files)
    _write_manifests(paths, split)
    summary = _summary(audio_files, utterances, report, split)
    _write_report(paths, options, audio_root, summary, sorted(report.values(), key=_by_file))
    _log_summary(summary, paths["report_md"])
    _check_prepared(utterances, split, test_speakers, audio_root, trial_path, paths["report_md"])
    write_json(save_folder / RECORD_FILE, record)
    return paths


def _finished_before(save_folder, record, audio_root):
    """Tell (and log) whether ``save_folder`` holds this very preparation, finished."""
    differences = _record_differences(save_folder, record, audio_root)
    if not differences:
        logger.info("Skipping preparation: %s holds it, same corpus and options", save_folder)
        return True
    if (save_folder / RECORD_FILE).exists():
        logger.info("Preparing %s again: %s", save_folder, "; ".join(differences))
    return False


def _start_over(save_folder):
    """Create ``save_folder`` and remove the record of an earlier preparation there."""
    save_folder.mkdir(parents=True, exist_ok=True)
    (save_folder / RECORD_FILE).unlink(missing_ok=True)


def _check_file_list(trials, files, trial_path, audio_root):
    """Run the checks that need only the file list; return the test speakers."""
    _check_trial_labels(trials, f"{trial_path}", f"fix the trial list {trial_path}")
    _check_trial_files(trials, files, trial_path, audio_root)
    test_speakers = {PurePosixPath(path).parts[0] for _, *pair in trials for path in pair}
    speakers = {PurePosixPath(relative).parts[0] for relative in files.values()}
    _check_train_speakers(speakers - test_speakers, test_speakers, audio_root, trial_path)
    return test_speakers


def _usable_utterances(files, report, audio_root, save_folder, options, num_workers):
    """Check every audio file; return the manifest rows of the usable ones, by utterance ID.

    Each file with a problem gets its entry in ``report`` (modified in place).
    """
    checks = _check_files(files, audio_root, save_folder / "converted", options, num_workers)
    utterances = {}
    for utt_id, relative in files.items():
        check = checks[relative]
        if check.usable:
            utterances[utt_id] = _utterance_row(utt_id, relative, check, options["sample_rate"])
        if check.problem:
            report[relative] = {"file": relative, "problem": check.problem, "action": check.action}
    return utterances


def _split(utterances, trials, test_speakers, seg_duration, sample_rate):
    """Split the usable utterances into training and test sets, the trials into kept and dropped.

    Returns a dict: ``train`` (utterance rows), ``segments`` (rows of ``train.csv``),
    ``test`` (utterance rows of the kept trials' files), ``trials`` (kept, as
    ``(label, enrol ID, test ID)``) and ``dropped`` (trials on unusable files).
    """
    train = [row for row in utterances.values() if row["spk_id"] not in test_speakers]
    kept_trials, dropped = _resolve_trials(trials, utterances)
    test_ids = sorted({utt_id for _, *pair in kept_trials for utt_id in pair})
    segments = _segments(train, seg_duration, sample_rate)
    return {
        "train": train,
        "segments": segments,
        "test": [utterances[utt_id] for utt_id in test_ids],
        "trials": kept_trials,
        "dropped": dropped,
    }


def _segments(train, seg_duration, sample_rate):
    """Return the rows of ``train.csv``: every training utterance cut into segments."""
    return [segment for row in train for segment in segment_rows(row, seg_duration, sample_rate)]


def development_speaker_draw(speakers, n_speakers):
    """Return the ``n_speakers`` held out of ``speakers`` for a development split.

    The draw is fixed (a seeded permutation of the sorted speaker names), so every
    run on one corpus holds out the same speakers.

    Arguments
    ---------
    speakers : iterable of str
        The training speakers.
    n_speakers : int
        How many to hold out; at least 2, and at least 2 must stay for training.

    Returns
    -------
    list of str
        The held-out speakers, sorted.

    Example
    -------
    >>> development_speaker_draw([f"id{i:02d}" for i in range(10)], 3)
    ['id02', 'id03', 'id05']
    """
    speakers = sorted(set(speakers))
    if not 2 <= n_speakers <= len(speakers) - 2:
        raise ValueError(
            f"development_speakers={n_speakers}: a development split needs at least 2 "
            f"held-out speakers and 2 left for training, and there are {len(speakers)} "
            "training speakers"
        )
    order = np.random.default_rng(DEVELOPMENT_SEED).permutation(len(speakers))
    return sorted(speakers[i] for i in order[:n_speakers])


def _development_split(split, n_speakers, seg_duration, sample_rate):
    """Hold ``n_speakers`` training speakers out as the test set, scored on all their pairs."""
    held_out = set(development_speaker_draw((row["spk_id"] for row in split["train"]), n_speakers))
    train = [row for row in split["train"] if row["spk_id"] not in held_out]
    test = sorted((row for row in split["train"] if row["spk_id"] in held_out), key=_by_id)
    trials = [
        (int(a["spk_id"] == b["spk_id"]), a["ID"], b["ID"])
        for a, b in itertools.combinations(test, 2)
    ]
    segments = _segments(train, seg_duration, sample_rate)
    return {"train": train, "segments": segments, "test": test, "trials": trials, "dropped": []}


def _by_id(row):
    """Sort key of a manifest row: its ID."""
    return row["ID"]


def _write_manifests(paths, split):
    """Write ``train_utts.csv``, ``train.csv``, ``test.csv`` and ``trials.csv``."""
    write_csv(paths["train_utts_csv"], UTTERANCE_COLUMNS, split["train"])
    write_csv(paths["train_csv"], SEGMENT_COLUMNS, split["segments"])
    write_csv(paths["test_csv"], UTTERANCE_COLUMNS, split["test"])
    trial_rows = [dict(zip(TRIAL_COLUMNS, trial)) for trial in split["trials"]]
    write_csv(paths["trials_csv"], TRIAL_COLUMNS, trial_rows)


def _summary(audio_files, utterances, report, split):
    """Count what the preparation kept, converted, skipped and dropped (the report's table)."""
    train, test, kept_trials = split["train"], split["test"], split["trials"]
    used = {row["ID"] for row in train} | {row["ID"] for row in test}
    return {
        "audio_files": audio_files,
        "usable_files": len(utterances),
        "converted": sum(entry["action"].startswith("converted") for entry in report.values()),
        "skipped": sum(entry["action"].startswith("skipped") for entry in report.values()),
        "ignored_non_audio": sum(entry["action"] == "ignored" for entry in report.values()),
        "problems": dict(Counter(_problem_kind(entry["problem"]) for entry in report.values())),
        "train_utterances": len(train),
        "train_speakers": len({row["spk_id"] for row in train}),
        "train_segments": len(split["segments"]),
        "train_hours": round(sum(row["duration"] for row in train) / 3600, 3),
        "test_utterances": len(test),
        "test_speakers": len({row["spk_id"] for row in test}),
        "trials": len(kept_trials),
        "target_trials": sum(label for label, _, _ in kept_trials),
        "trials_dropped": len(split["dropped"]),
        "unused_test_speaker_utterances": len(set(utterances) - used),
    }


def _check_prepared(utterances, split, test_speakers, audio_root, trial_path, report_md):
    """Run the checks that need the audio checked: usable audio, speakers, trial labels."""
    if not utterances:
        raise ValueError(
            f"no usable audio in {audio_root}: every file was skipped; "
            f"see {report_md} for each file's problem"
        )
    see_report = f"see {report_md} for the skipped files"
    _check_train_speakers(
        {row["spk_id"] for row in split["train"]}, test_speakers, audio_root, trial_path, see_report
    )
    _check_trial_labels(
        split["trials"],
        f"{trial_path}, once the trials on skipped files are dropped,",
        see_report,
    )


def _options(
    data_folder,
    trial_path,
    seg_duration,
    min_duration,
    sample_rate,
    silence_threshold,
    development_speakers,
):
    """Return the options a preparation depends on, as recorded in ``preparation.json``.

    ``development_speakers`` is recorded only when set, so that the records of
    ordinary preparations stay as they were.
    """
    options = {
        "data_folder": str(data_folder),
        "trial_file": str(trial_path),
        "seg_duration": seg_duration,
        "min_duration": min_duration,
        "sample_rate": sample_rate,
        "silence_threshold": silence_threshold,
    }
    if development_speakers:
        options["development_speakers"] = development_speakers
    return options


def _output_paths(save_folder):
    """Return the paths (str) of the manifests and the report, by key of ``OUTPUT_FILES``."""
    return {key: str(save_folder / name) for key, name in OUTPUT_FILES.items()}


def _preparation_record(options, audio_root, relatives, trial_path):
    """Return what a preparation depends on: its options and a digest of the corpus files."""
    digest, count = hashlib.sha256(), 0
    for relative in relatives:
        if Path(relative).suffix.lower() in AUDIO_EXTENSIONS:
            stat = os.stat(audio_root / relative)
            line = f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
            count += 1
    corpus = {
        "audio_files": count,
        "audio_digest": digest.hexdigest(),
        "trial_digest": hashlib.sha256(trial_path.read_bytes()).hexdigest(),
    }
    return {"format_version": FORMAT_VERSION, "options": options, "corpus": corpus}


def _record_differences(save_folder, record, audio_root):
    """Lines saying how ``record`` differs from the one in ``save_folder`` (empty: same)."""
    record_path = save_folder / RECORD_FILE
    if not record_path.is_file():
        return [f"{save_folder} holds no finished preparation ({RECORD_FILE} is missing)"]
    try:
        with open(record_path, encoding="utf-8") as stream:
            old = json.load(stream)
    except (OSError, json.JSONDecodeError) as error:
        return [f"{record_path} is unreadable ({error})"]
    if not isinstance(old, dict) or old.get("format_version") != FORMAT_VERSION:
        version = old.get("format_version") if isinstance(old, dict) else None
        return [f"{record_path} has format {version}; this version writes {FORMAT_VERSION}"]
    differences = [
        f"output {path} is missing"
        for path in _output_paths(save_folder).values()
        if not os.path.isfile(path)
    ]
    old_options, options = old.get("options", {}), record["options"]
    for key in {**options, **old_options}:  # an option missing from a record is unset
        if old_options.get(key) != options.get(key):
            differences.append(f"{key}: {old_options.get(key)!r} then, {options.get(key)!r} now")
    old_corpus, corpus = old.get("corpus", {}), record["corpus"]
    if old_corpus.get("audio_digest") != corpus["audio_digest"]:
        before, now = old_corpus.get("audio_files"), corpus["audio_files"]
        if before != now:
            change = f"{before} then, {now} now (files added or removed)"
        else:
            change = f"same number ({now}) but names, sizes or modification times differ"
        differences.append(f"audio files under {audio_root}: {change}")
    if old_corpus.get("trial_digest") != corpus["trial_digest"]:
        differences.append(f"the content of the trial list {record['options']['trial_file']}")
    return differences


def _audio_root(data_folder):
    """Return ``<data_folder>/wav``, raising when it or the data folder is missing."""
    if not data_folder.is_dir():
        raise FileNotFoundError(
            f"data folder {data_folder} does not exist: give the corpus root that holds "
            f"wav/{LAYOUT}.wav"
        )
    audio_root = data_folder / "wav"
    if not audio_root.is_dir():
        raise FileNotFoundError(
            f"{data_folder} has no wav/ folder: a VoxCeleb-layout corpus keeps its audio in "
            f"{audio_root}/{LAYOUT}.wav (convert VoxCeleb2's aac/*.m4a into such a folder)"
        )
    return audio_root


def _trial_path(data_folder, trial_file):
    """Return the trial list to use, raising when there is none."""
    if trial_file is None:
        default = data_folder / "trials.txt"
        if default.is_file():
            return default
        raise ValueError(
            f"{data_folder} holds no trial list (no trials.txt, and no trial_file was given): "
            "speaker verification needs one to score the system. Put one at "
            f"{default} (lines '<1|0> {LAYOUT}.wav {LAYOUT}.wav', paths relative to "
            f"{data_folder / 'wav'}; e.g. VoxCeleb1's veri_test2.txt) or pass trial_file"
        )
    trial_path = Path(trial_file).expanduser().resolve()
    if not trial_path.is_file():
        raise FileNotFoundError(f"trial file {trial_path} does not exist")
    return trial_path


def _walk(audio_root):
    """Relative posix paths of every file under ``audio_root``, in a stable order."""
    relatives = []
    walk = os.walk(audio_root)
    for folder, subfolders, names in tqdm(walk, desc="Listing audio folders", unit=" folders"):
        subfolders.sort()
        relatives += [Path(folder, name).relative_to(audio_root).as_posix() for name in names]
    return sorted(relatives)


def _list_audio_files(audio_root, relatives):
    """Map utterance ID to path (relative, posix) and report the files left out."""
    files, report, seen = {}, {}, {}
    for relative in relatives:
        if PurePosixPath(relative).suffix.lower() not in AUDIO_EXTENSIONS:
            report[relative] = _entry(relative, "not an audio file", "ignored")
        elif len(PurePosixPath(relative).parts) != 3:
            report[relative] = _entry(relative, f"not in the {LAYOUT} layout", "skipped")
        elif (utt_id := utterance_id(relative)) in seen:
            problem = f"same utterance ID as {seen[utt_id]}"
            report[relative] = _entry(relative, problem, "skipped")
        else:
            seen[utt_id] = files[utt_id] = relative
    if not files:
        raise FileNotFoundError(
            f"no audio files in {audio_root}: expected {audio_root}/{LAYOUT}.wav "
            f"(extensions {', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    return files, report


def _check_trial_labels(trials, where, fix):
    """Raise unless ``trials`` hold at least one target and one non-target trial."""
    targets = sum(label for label, _, _ in trials)
    nontargets = len(trials) - targets
    if targets and nontargets:
        return
    lacking = [
        kind
        for kind, count in (("target (label 1)", targets), ("non-target (label 0)", nontargets))
        if not count
    ]
    raise ValueError(
        f"{where} holds no {' and no '.join(lacking)} trial ({targets} target, {nontargets} "
        f"non-target): EER and minDCF need both kinds; {fix}"
    )


def _check_trial_files(trials, files, trial_path, audio_root):
    """Raise when a file named in the trial list is not in the corpus."""
    named = {path for _, *pair in trials for path in pair}
    missing = sorted(path for path in named if utterance_id(path) not in files)
    if named and len(missing) == len(named):
        raise FileNotFoundError(
            f"none of the {len(named)} files named in {trial_path} is in {audio_root} "
            f"(e.g. {missing[0]}): give the trial list of this corpus, or the data folder "
            "it belongs to"
        )
    if missing:
        raise ValueError(
            f"{len(missing)} of the {len(named)} files named in {trial_path} are not in "
            f"{audio_root}: {_some(missing)}; complete the corpus (a partial download or "
            "copy?) or remove the trials on those files from the trial list"
        )


def _check_train_speakers(train_speakers, test_speakers, audio_root, trial_path, note=""):
    """Raise when fewer than ``MIN_TRAIN_SPEAKERS`` speakers are left for training."""
    if len(train_speakers) >= MIN_TRAIN_SPEAKERS:
        return
    found = f"{len(train_speakers)} training speaker{'s' * (len(train_speakers) != 1)}"
    if train_speakers:
        found += f" ({_some(sorted(train_speakers))})"
    with_audio = " with usable audio" if note else ""
    raise ValueError(
        f"found {found}{with_audio} in {audio_root}, at least {MIN_TRAIN_SPEAKERS} are needed "
        f"to train a speaker network: the training speakers are the speaker folders of "
        f"{audio_root} that {trial_path} does not name (it names {len(test_speakers)} test "
        "speakers). Add the folders of more training speakers to the corpus, or use a trial "
        f"list on fewer speakers{'; ' + note if note else ''}"
    )


def _some(names):
    """Return the first few of ``names``, then how many more."""
    shown = ", ".join(names[:NAMED_AT_MOST])
    more = len(names) - NAMED_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


def _check_files(files, audio_root, converted_root, options, num_workers):
    """Check (and convert where needed) every audio file; return the checks by relative path."""
    check = functools.partial(
        _check_one,
        sample_rate=options["sample_rate"],
        min_duration=options["min_duration"],
        silence_threshold=options["silence_threshold"],
        ffmpeg=find_ffmpeg(),
    )
    jobs = [
        (str(audio_root / relative), str((converted_root / relative).with_suffix(".wav")))
        for relative in files.values()
    ]
    progress = functools.partial(tqdm, total=len(jobs), desc="Checking audio", unit=" files")
    if num_workers > 1:
        with multiprocessing.Pool(num_workers) as pool:
            results = list(progress(pool.imap(check, jobs, chunksize=64)))
    else:
        results = list(progress(map(check, jobs)))
    return dict(zip(files.values(), results))


def _check_one(job, **options):
    """Check one ``(source, converted)`` pair of paths (picklable for the worker pool)."""
    return check_audio_file(*job, **options)


def _utterance_row(utt_id, relative, check, sample_rate):
    """Return the manifest row of a usable file."""
    speaker, session, _ = PurePosixPath(relative).parts
    return {
        "ID": utt_id,
        "duration": round(check.num_samples / sample_rate, 4),
        "wav": str(Path(check.wav).resolve()),
        "start": 0,
        "stop": check.num_samples,
        "spk_id": speaker,
        "session": session,
    }


def _resolve_trials(trials, utterances):
    """Trials as (label, enrol ID, test ID) when both files are usable, and the others."""
    kept, dropped = [], []
    for label, enrol, test in trials:
        resolved = (label, utterance_id(enrol), utterance_id(test))
        usable = resolved[1] in utterances and resolved[2] in utterances
        (kept if usable else dropped).append(resolved)
    return kept, dropped


def _note_dropped_trials(report, dropped, files):
    """Add to each skipped file's report entry how many trials it took down."""
    counts = Counter(
        files[utt_id] for _, *pair in dropped for utt_id in set(pair) if files.get(utt_id) in report
    )
    for relative, count in counts.items():
        dropped_text = f"{count} trial{'s' * (count != 1)} dropped"
        report[relative]["action"] = "; ".join(
            filter(None, [report[relative]["action"], dropped_text])
        )


def _write_report(paths, options, audio_root, summary, entries):
    """Write ``prepare_report.json`` and its markdown table, ``prepare_report.md``."""
    write_json(
        paths["report_json"],
        {"options": options, "audio_root": str(audio_root), "summary": summary, "files": entries},
    )
    lines = [
        "# Data preparation report",
        "",
        f"Audio folder: `{audio_root}`; trial list: `{options['trial_file']}`.",
        "",
        "| quantity | value |",
        "|---|---|",
        *(f"| {key} | {value} |" for key, value in summary.items() if key != "problems"),
        f"| problems | {', '.join(f'{n} {kind}' for kind, n in summary['problems'].items())} |",
        "",
        f"## Files with a problem ({len(entries)})",
        "",
    ]
    if entries:
        lines += ["| file | problem | action |", "|---|---|---|"]
        lines += [
            "| " + " | ".join(_cell(entry[key]) for key in ("file", "problem", "action")) + " |"
            for entry in entries
        ]
    else:
        lines.append("None.")
    write_text(paths["report_md"], "\n".join(lines) + "\n")


def _log_summary(summary, report_md):
    """Log the sizes of the prepared sets, and a warning naming the report if files were skipped."""
    logger.info(
        "Prepared %d training utterances (%.2f h, %d speakers, %d segments), "
        "%d test utterances (%d speakers), %d trials",
        summary["train_utterances"],
        summary["train_hours"],
        summary["train_speakers"],
        summary["train_segments"],
        summary["test_utterances"],
        summary["test_speakers"],
        summary["trials"],
    )
    if summary["problems"]:
        kinds = ", ".join(f"{count} {kind}" for kind, count in summary["problems"].items())
        logger.warning(
            "%d files skipped, %d converted, %d trials dropped (%s): see %s",
            summary["skipped"],
            summary["converted"],
            summary["trials_dropped"],
            kinds,
            report_md,
        )


def _entry(relative, problem, action):
    """Return a report entry: the file, its problem and what was done with it."""
    return {"file": relative, "problem": problem, "action": action}


def _problem_kind(problem):
    """Short category of a problem text, numbers blanked ('sample rate N Hz')."""
    return re.sub(r"\d+(\.\d+)?", "N", problem.split(" (")[0].split(":")[0])


def _by_file(entry):
    """Sort key of report entries: the file path."""
    return entry["file"]


def _cell(text):
    """Escape ``|`` for a markdown table cell."""
    return str(text).replace("|", "\\|")
