"""The preparation itself: :func:`prepare_voxceleb`, for one folder or for VoxCeleb1 and VoxCeleb2.

Every check that needs only the file lists runs before any audio file is opened;
those that need the audio checked run right after the report is written.

Authors
 * camsat contributors 2026
"""

import logging
import os
from pathlib import Path

from camsat_lobes import audio_checks
from camsat_lobes.files import write_json
from camsat_lobes.prepare import corpus
from camsat_lobes.prepare.corpus import (
    _audio_jobs,
    _list_audio_files,
    _needs_ffmpeg,
    _some_of,
    _walk,
)
from camsat_lobes.prepare.record import (
    RECORD_FILE,
    _finished_before,
    _list_names,
    _output_paths,
    _preparation_record,
    _start_over,
)
from camsat_lobes.prepare.report import (
    _by_file,
    _log_summary,
    _note_dropped_trials,
    _summary,
    _write_report,
)
from camsat_lobes.prepare.sources import (
    DEVELOPMENT_LIST,
    SINGLE_LIST,
    _options,
    _resolve,
    _trial_list_files,
    _trial_path,
)
from camsat_lobes.prepare.split import _development_split, _split_sets, _write_manifests
from camsat_lobes.prepare.trials import (
    _check_no_shared_speakers,
    _check_trial_files,
    _check_trial_labels,
    _trial_list_entry,
    _trial_speakers,
    _write_trial_lists,
    read_trial_list,
)

logger = logging.getLogger(__name__)

__all__ = ["prepare_voxceleb"]

MIN_TRAIN_SPEAKERS = 2
CONVERT_WORKERS = 8  # ffmpeg processes at most by default, as the VoxCeleb recipes run


def prepare_voxceleb(
    data_folder=None,
    save_folder=None,
    trial_file=None,
    seg_duration=3.0,
    min_duration=1.0,
    sample_rate=16000,
    silence_threshold=1e-4,
    development_speakers=0,
    num_workers=0,
    voxceleb1_folder=None,
    voxceleb2_folder=None,
    train_on=None,
    trial_lists=None,
    convert_workers=None,
):
    r"""Write the manifests, trial CSVs and preparation report of a VoxCeleb-layout corpus.

    The corpus is one folder (``data_folder`` with ``wav/`` and ``trials.txt``: the
    list's speakers are the test set, every other speaker trains), or, as in the
    field's protocol, VoxCeleb1 and VoxCeleb2 apart (``voxceleb1_folder``,
    ``voxceleb2_folder``): the training set comes from ``train_on`` and the test set is
    every utterance named by any of ``trial_lists``. A training set that shares a
    speaker with a trial list is refused before any audio file is opened. Container
    files (VoxCeleb2's m4a) are converted to 16 kHz mono wav with ffmpeg, in parallel
    and resumably, into ``<save_folder>/converted/``.

    The work is skipped when ``save_folder`` holds a finished preparation of the same
    corpus with the same options (``preparation.json``, written last; see
    :func:`~camsat_lobes.prepare.preparation_differences`), and done again, with the
    differences logged, when anything changed.

    Arguments
    ---------
    data_folder : str or pathlib.Path, optional
        One corpus root holding ``wav/<speaker>/<session>/<utterance>.wav`` (and
        ``trials.txt``); leave it None when giving ``voxceleb1_folder``.
    save_folder : str or pathlib.Path
        Where the manifests, the report and converted audio go.
    trial_file : str or pathlib.Path, optional
        Trial list of ``data_folder``; by default ``<data_folder>/trials.txt``. It must
        exist and hold target and non-target trials on files of the corpus.
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
        training speakers (a fixed draw, :func:`~camsat_lobes.prepare.development_speaker_draw`)
        become the test set, scored on the pairs of their utterances (every pair up
        to 600,000, else a fixed draw: :func:`~camsat_lobes.prepare.development_trials`),
        and the training set is the other training speakers. The corpus's own test speakers are left
        out entirely, so nothing chosen on this split has seen them. With VoxCeleb1 and
        VoxCeleb2 the list is named ``development`` (``trials_development.csv``).
    num_workers : int
        Processes that check files in parallel (0 or 1: in this process).
    voxceleb1_folder : str or pathlib.Path, optional
        VoxCeleb1 root: ``wav/<id1xxxx>/<video>/<utterance>.wav`` (all 1,251 speakers)
        and the trial lists.
    voxceleb2_folder : str or pathlib.Path, optional
        VoxCeleb2 root: ``dev/aac/<id0xxxx>/<video>/<utterance>.m4a`` as downloaded, or
        ``dev/wav/`` (used when present) once converted. Needed when VoxCeleb2 trains.
    train_on : str or list of str, optional
        The corpora that train: ``"voxceleb2"`` (VoxCeleb2 dev; the default),
        ``"voxceleb1"`` (VoxCeleb1 dev: the VoxCeleb1 speakers that no trial list names,
        so only with O alone, as E and H name every VoxCeleb1 speaker) or both.
    trial_lists : dict, optional
        List name -> trial list file, relative to ``voxceleb1_folder`` (or absolute);
        by default ``{"O": "veri_test2.txt", "E": "list_test_all2.txt",
        "H": "list_test_hard2.txt"}``.
    convert_workers : int, optional
        ffmpeg processes converting container files at once; by default the CPU count,
        at most 8.

    Returns
    -------
    dict
        Paths (str) of ``train_utts_csv``, ``train_csv``, ``test_csv``, ``trials_csv``
        (``trials.csv`` of a single folder, else the first list's CSV), ``report_json``,
        ``report_md`` and ``trial_lists_json``; and ``trial_lists``, list name -> CSV
        path (``{"voxceleb": ".../trials.csv"}`` for a single folder,
        ``{"O": ".../trials_O.csv", ...}`` for VoxCeleb).

    Raises
    ------
    FileNotFoundError
        When a folder, its audio, a trial list or ffmpeg (needed for m4a) is missing,
        or no file of a trial list is in the corpus.
    ValueError
        When the corpus cannot give a verification experiment: no trial list, no
        target or no non-target trial, a trial naming a file absent from the corpus,
        fewer than 2 training speakers, a training speaker that a trial list names, or
        no usable audio. The checks that need only the file list run before any audio
        file is opened.

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
    >>> import json
    >>> json.loads(open(paths["trial_lists_json"]).read())
    {'voxceleb': {'file': 'trials.csv', 'trials': 2, 'targets': 1}}
    >>> tmp.cleanup()
    """
    if save_folder is None:
        raise ValueError("prepare_voxceleb needs save_folder, where the manifests go")
    save_folder = Path(save_folder).expanduser().resolve()
    sources = _resolve(
        data_folder, trial_file, voxceleb1_folder, voxceleb2_folder, train_on, trial_lists
    )
    settings = {
        "seg_duration": seg_duration,
        "min_duration": min_duration,
        "sample_rate": sample_rate,
        "silence_threshold": silence_threshold,
        "development_speakers": development_speakers,
    }
    workers = {"num_workers": num_workers, "convert_workers": _convert_workers(convert_workers)}
    if sources.single:
        return _prepare_folder(sources, trial_file, save_folder, settings, workers)
    return _prepare_voxceleb(sources, trial_lists, save_folder, settings, workers)


def _convert_workers(convert_workers):
    """Return the number of ffmpeg processes: as given, else the CPU count up to 8."""
    if convert_workers is None:
        return max(1, min(CONVERT_WORKERS, os.cpu_count() or 1))
    if int(convert_workers) < 1:
        raise ValueError(f"convert_workers={convert_workers} must be at least 1")
    return int(convert_workers)


def _prepare_folder(sources, trial_file, save_folder, settings, workers):
    """Prepare one VoxCeleb-layout folder: its trial list's speakers test, the others train."""
    root = sources.roots[None]
    relatives = _walk(root)
    found = _list_audio_files(root, relatives)
    trial_files = {SINGLE_LIST: _trial_path(sources.data_folder, trial_file)}
    recorded = _options(sources, trial_files, **settings)
    record = _preparation_record(recorded, {None: (root, relatives)}, trial_files, True)
    paths = _output_paths(save_folder, [SINGLE_LIST], True)
    if _finished_before(save_folder, record, sources.roots, paths):
        return paths
    _start_over(save_folder)

    path = trial_files[SINGLE_LIST]
    trials = read_trial_list(path)
    _check_trial_labels(trials, f"{path}", f"fix the trial list {path}")
    _check_trial_files(trials, found.files, path, root)
    test_speakers = _trial_speakers(trials)
    train_speakers = found.speakers() - test_speakers
    _check_folder_speakers(train_speakers, test_speakers, root, path)

    jobs = _audio_jobs(found, list(found.files), save_folder / "converted")
    ffmpeg = audio_checks.find_ffmpeg() if _needs_ffmpeg(jobs) else None
    split, utterances, report, converted = _check_and_split(
        jobs, found.report, {SINGLE_LIST: trials}, train_speakers, recorded, workers, ffmpeg
    )
    if settings["development_speakers"]:
        split = _development(split, settings, SINGLE_LIST)
    _write_outputs(paths, split, jobs, report)
    audio_files = len(found.files) + _skipped(found.report)
    counts = _summary(audio_files, utterances, report, split, converted)
    _write_report(paths, recorded, root, counts, sorted(report.values(), key=_by_file), trial_files)
    _log_summary(counts, paths["report_md"])

    see_report = f"see {paths['report_md']} for the skipped files"
    if not utterances:
        _no_usable_audio(root, paths["report_md"])
    train = {row["spk_id"] for row in split["train"]}
    _check_folder_speakers(train, test_speakers, root, path, see_report)
    for trials in split["trials"].values():
        where = f"{path}, once the trials on skipped files are dropped,"
        _check_trial_labels(trials, where, see_report)
    write_json(save_folder / RECORD_FILE, record)
    return paths


def _prepare_voxceleb(sources, trial_lists, save_folder, settings, workers):
    """Prepare VoxCeleb1's trial lists and the training corpora of ``train_on``."""
    trial_files = _trial_list_files(sources.folders["voxceleb1"], trial_lists)
    walks = {name: (root, _walk(root)) for name, root in sources.roots.items()}
    found = {
        name: _list_audio_files(root, relatives, name) for name, (root, relatives) in walks.items()
    }
    recorded = _options(sources, trial_files, **settings)
    record = _preparation_record(recorded, walks, trial_files, False)
    names = _list_names(sources, trial_files, settings["development_speakers"])
    paths = _output_paths(save_folder, names, False)
    if _finished_before(save_folder, record, sources.roots, paths):
        return paths
    _start_over(save_folder)

    lists = {name: read_trial_list(path) for name, path in trial_files.items()}
    by_corpus = _plan_voxceleb(sources, found, lists, trial_files)
    train_speakers = set().union(*by_corpus.values())
    vox1 = found["voxceleb1"]
    named = set()
    if not settings["development_speakers"]:  # a development split scores no list
        paths_named = {path for trials in lists.values() for _, *pair in trials for path in pair}
        named = {corpus.utterance_id(path) for path in paths_named}
    vox1_ids = [
        utt_id
        for utt_id, relative in vox1.files.items()
        if utt_id in named or relative.split("/")[0] in by_corpus.get("voxceleb1", ())
    ]
    jobs = _audio_jobs(vox1, vox1_ids, save_folder / "converted" / "voxceleb1")
    if "voxceleb2" in found:
        vox2 = found["voxceleb2"]
        jobs += _audio_jobs(vox2, list(vox2.files), save_folder / "converted" / "voxceleb2")
    containers = _needs_ffmpeg(jobs)
    ffmpeg = None
    if containers:
        ffmpeg = audio_checks.require_ffmpeg(
            f"converting the {len(containers)} m4a/aac files of {_roots_of(containers, found)}"
        )
    listed = {
        label: item for found_one in found.values() for label, item in found_one.report.items()
    }
    scored = {} if settings["development_speakers"] else lists
    split, utterances, report, converted = _check_and_split(
        jobs, listed, scored, train_speakers, recorded, workers, ffmpeg
    )
    if settings["development_speakers"]:
        split = _development(split, settings, DEVELOPMENT_LIST)
    _write_outputs(paths, split, jobs, report)
    counts = _summary(len(jobs) + _skipped(listed), utterances, report, split, converted)
    entries = sorted(report.values(), key=_by_file)
    _write_report(paths, recorded, sources.roots, counts, entries, trial_files)
    _log_summary(counts, paths["report_md"])

    see_report = f"see {paths['report_md']} for the skipped files"
    if not utterances:
        _no_usable_audio(", ".join(map(str, sources.roots.values())), paths["report_md"])
    _check_voxceleb_speakers({row["spk_id"] for row in split["train"]}, sources, see_report)
    for name, trials in split["trials"].items():
        where = f"trial list {name} ({trial_files.get(name, 'development split')}), once the "
        _check_trial_labels(trials, where + "trials on skipped files are dropped,", see_report)
    write_json(save_folder / RECORD_FILE, record)
    return paths


def _plan_voxceleb(sources, found, lists, trial_files):
    """Check the trial lists and training speakers on the file lists; return the speakers by corpus.

    Runs before any audio file is opened: each list must hold both kinds of trial on
    files of VoxCeleb1; the training speakers (VoxCeleb2 dev, and VoxCeleb1's speakers
    that no list names) must be at least 2, must not be named by any list, and must
    not be in both corpora.
    """
    vox1 = found["voxceleb1"]
    for name, trials in lists.items():
        path = trial_files[name]
        _check_trial_labels(trials, f"trial list {name} ({path})", f"fix the trial list {path}")
        _check_trial_files(trials, vox1.files, path, vox1.audio_root)
    list_speakers = {name: _trial_speakers(trials) for name, trials in lists.items()}
    named = set().union(*list_speakers.values())
    by_corpus = {}
    if "voxceleb2" in sources.train_on:
        by_corpus["voxceleb2"] = found["voxceleb2"].speakers()
    if "voxceleb1" in sources.train_on:
        by_corpus["voxceleb1"] = vox1.speakers() - named
        if not by_corpus["voxceleb1"]:
            covered = ", ".join(f"{name}: {len(list_speakers[name])}" for name in lists)
            raise ValueError(
                f"train_on includes voxceleb1, but the trial lists name every speaker of "
                f"{vox1.audio_root} (speakers per list: {covered}), so VoxCeleb1 dev is "
                "empty: VoxCeleb1 dev trains only when O alone is scored "
                "(trial_lists={'O': 'veri_test2.txt'}); or train_on='voxceleb2'"
            )
    train_speakers = set().union(*by_corpus.values())
    holders = [str(sources.roots[name]) for name, speakers in by_corpus.items() if speakers & named]
    _check_no_shared_speakers(
        train_speakers,
        list_speakers,
        trial_files,
        f"remove those speaker folders from {' and '.join(holders) or 'the training corpus'} "
        "(is voxceleb2_folder really VoxCeleb2?), or leave that list out of trial_lists",
    )
    if len(by_corpus) == 2:
        both = sorted(by_corpus["voxceleb1"] & by_corpus["voxceleb2"])
        if both:
            raise ValueError(
                f"{len(both)} speaker folder{'s are' if len(both) > 1 else ' is'} in both "
                f"{sources.roots['voxceleb1']} and {sources.roots['voxceleb2']}: "
                f"{_some_of(both)}; VoxCeleb1 and VoxCeleb2 speaker IDs never overlap, so "
                "one of the folders is not what it should be"
            )
    _check_voxceleb_speakers(train_speakers, sources)
    return by_corpus


def _check_and_split(jobs, listed, lists, train_speakers, recorded, workers, ffmpeg):
    """Convert and check the audio, then split it; return the split, rows, report, conversions."""
    report = dict(listed)
    utterances, converted = corpus._usable_utterances(
        jobs,
        report,
        recorded,
        workers["num_workers"],
        ffmpeg=ffmpeg,
        convert_workers=workers["convert_workers"],
    )
    split = _split_sets(
        utterances, train_speakers, lists, recorded["seg_duration"], recorded["sample_rate"]
    )
    return split, utterances, report, converted


def _development(split, settings, name):
    """Return the development split of ``split`` (its trials named ``name``)."""
    return _development_split(
        split,
        settings["development_speakers"],
        settings["seg_duration"],
        settings["sample_rate"],
        name,
    )


def _write_outputs(paths, split, jobs, report):
    """Note the dropped trials in the report; write the manifests, trial CSVs and their index."""
    _note_dropped_trials(report, split["dropped"], {job.utt_id: job.label for job in jobs})
    _write_manifests(paths, split, paths["trial_lists"])
    entries = {
        name: _trial_list_entry(Path(paths["trial_lists"][name]).name, trials)
        for name, trials in split["trials"].items()
    }
    _write_trial_lists(paths["trial_lists_json"], entries)


def _skipped(listed):
    """Count the audio files that listing left out (not those ignored as non-audio)."""
    return sum(entry["action"] == "skipped" for entry in listed.values())


def _roots_of(jobs, found):
    """Name the audio folders that ``jobs`` come from."""
    roots = [str(item.audio_root) for item in found.values()]
    used = {root for root in roots for job in jobs if job.source.startswith(root + os.sep)}
    return " and ".join(sorted(used))


def _no_usable_audio(where, report_md):
    """Raise: every audio file was skipped."""
    raise ValueError(
        f"no usable audio in {where}: every file was skipped; "
        f"see {report_md} for each file's problem"
    )


def _check_folder_speakers(train_speakers, test_speakers, root, trial_file, note=""):
    """Raise when fewer than ``MIN_TRAIN_SPEAKERS`` speakers of one folder are left to train."""
    if len(train_speakers) >= MIN_TRAIN_SPEAKERS:
        return
    found = f"{len(train_speakers)} training speaker{'s' * (len(train_speakers) != 1)}"
    if train_speakers:
        found += f" ({_some_of(sorted(train_speakers))})"
    with_audio = " with usable audio" if note else ""
    raise ValueError(
        f"found {found}{with_audio} in {root}, at least {MIN_TRAIN_SPEAKERS} are needed "
        f"to train a speaker network: the training speakers are the speaker folders of "
        f"{root} that {trial_file} does not name (it names {len(test_speakers)} test "
        "speakers). Add the folders of more training speakers to the corpus, or use a trial "
        f"list on fewer speakers{'; ' + note if note else ''}"
    )


def _check_voxceleb_speakers(train_speakers, sources, note=""):
    """Raise when fewer than ``MIN_TRAIN_SPEAKERS`` VoxCeleb speakers are left to train."""
    if len(train_speakers) >= MIN_TRAIN_SPEAKERS:
        return
    found = f"{len(train_speakers)} training speaker{'s' * (len(train_speakers) != 1)}"
    if train_speakers:
        found += f" ({_some_of(sorted(train_speakers))})"
    where = " and ".join(str(sources.roots[name]) for name in sources.train_on)
    with_audio = " with usable audio" if note else ""
    raise ValueError(
        f"found {found}{with_audio} in {where} (train_on={list(sources.train_on)}), at least "
        f"{MIN_TRAIN_SPEAKERS} are needed to train a speaker network: add speaker folders "
        f"there{'; ' + note if note else ''}"
    )
