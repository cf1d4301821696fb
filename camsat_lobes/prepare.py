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

Manifests (``wav`` holds absolute paths, ``start``/``stop`` are in samples and
``duration`` in seconds):

- ``train_utts.csv`` and ``test.csv``: ID, duration, wav, start, stop, spk_id, session
- ``train.csv``: ID, duration, wav, start, stop, spk_id, utt_id
- ``trials.csv``: label, enrol_id, test_id

An utterance ID is ``<speaker>--<session>--<utterance stem>``. ``spk_id`` is there to
score results; no self-supervised stage may read it.
"""

import csv
import functools
import json
import logging
import multiprocessing
import os
import re
from collections import Counter
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from camsat_lobes.audio_checks import AUDIO_EXTENSIONS, check_audio_file, find_ffmpeg

logger = logging.getLogger(__name__)

__all__ = [
    "outputs_up_to_date",
    "prepare_voxceleb",
    "read_trial_list",
    "segment_rows",
    "utterance_id",
    "write_json",
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
OPTIONS_FILE = "prepare_options.json"
FORMAT_VERSION = 1
ID_SEPARATOR = "--"
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


def outputs_up_to_date(options_file, options, outputs):
    r"""Tell whether a stage can be skipped: its outputs exist and were made with ``options``.

    The stage writes ``options_file`` last (with :func:`write_json`), so a run that
    stopped halfway is redone.

    Arguments
    ---------
    options_file : str or pathlib.Path
        JSON file holding the options of the run that made the outputs.
    options : dict
        The options of this run (JSON types).
    outputs : iterable of str or pathlib.Path
        Files the stage writes.

    Returns
    -------
    bool

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name)
    >>> _ = (folder / "out.csv").write_text("ID\n")
    >>> outputs_up_to_date(folder / "options.json", {"seed": 1}, [folder / "out.csv"])
    False
    >>> write_json(folder / "options.json", {"seed": 1})
    >>> outputs_up_to_date(folder / "options.json", {"seed": 1}, [folder / "out.csv"])
    True
    >>> outputs_up_to_date(folder / "options.json", {"seed": 2}, [folder / "out.csv"])
    False
    >>> tmp.cleanup()
    """
    if not os.path.isfile(options_file) or not all(os.path.isfile(path) for path in outputs):
        return False
    with open(options_file, encoding="utf-8") as stream:
        return json.load(stream) == options


def write_json(path, content):
    r"""Write JSON through a temporary file, so a crash never leaves half a file.

    Arguments
    ---------
    path : str or pathlib.Path
        Destination.
    content : object
        JSON-serialisable content.

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> write_json(Path(tmp.name) / "a.json", {"x": 1})
    >>> (Path(tmp.name) / "a.json").read_text()
    '{\n  "x": 1\n}'
    >>> tmp.cleanup()
    """
    temporary = f"{path}.partial"
    with open(temporary, "w", encoding="utf-8") as stream:
        json.dump(content, stream, indent=2)
    os.replace(temporary, path)


def prepare_voxceleb(
    data_folder,
    save_folder,
    trial_file=None,
    seg_duration=3.0,
    min_duration=1.0,
    sample_rate=16000,
    silence_threshold=1e-4,
    num_workers=0,
):
    r"""Write the manifests and the preparation report of a VoxCeleb-layout folder.

    The work is skipped when the outputs exist and were made with the same options
    (recorded in ``prepare_options.json``, written last).

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root holding ``wav/<speaker>/<session>/<utterance>.wav``.
    save_folder : str or pathlib.Path
        Where the manifests, the report and converted audio go.
    trial_file : str or pathlib.Path, optional
        VoxCeleb trial list; by default ``<data_folder>/trials.txt`` when it exists.
        Without one every speaker is a training speaker and the test manifests are
        empty.
    seg_duration : float
        Segment length of ``train.csv`` in seconds.
    min_duration : float
        Files shorter than this (seconds) are skipped.
    sample_rate : int
        Sample rate of the manifests' audio; other rates are converted.
    silence_threshold : float
        Files with an RMS amplitude below this are skipped as silent.
    num_workers : int
        Processes that check files in parallel (0 or 1: in this process).

    Returns
    -------
    dict
        Paths (str) of ``train_utts_csv``, ``train_csv``, ``test_csv``,
        ``trials_csv``, ``report_json`` and ``report_md``.

    Example
    -------
    >>> import tempfile
    >>> import numpy as np, soundfile as sf
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name) / "corpus"
    >>> noise = np.random.default_rng(0).uniform(-0.1, 0.1, 40000)
    >>> for name in ["a/s1/u1", "a/s2/u2", "b/s1/u1", "b/s1/u2"]:
    ...     (root / "wav" / name).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(root / "wav" / f"{name}.wav", noise, 16000)
    >>> _ = (root / "trials.txt").write_text("1 b/s1/u1.wav b/s1/u2.wav\n")
    >>> paths = prepare_voxceleb(root, Path(tmp.name) / "prepared", seg_duration=1.0)
    >>> import csv
    >>> [row["ID"] for row in csv.DictReader(open(paths["train_utts_csv"]))]
    ['a--s1--u1', 'a--s2--u2']
    >>> len(list(csv.DictReader(open(paths["train_csv"]))))
    4
    >>> open(paths["trials_csv"]).read().splitlines()
    ['label,enrol_id,test_id', '1,b--s1--u1,b--s1--u2']
    >>> tmp.cleanup()
    """
    data_folder = Path(data_folder).expanduser().resolve()
    save_folder = Path(save_folder).expanduser().resolve()
    audio_root = _audio_root(data_folder)
    trial_path = _trial_path(data_folder, trial_file)
    options = {
        "format_version": FORMAT_VERSION,
        "data_folder": str(data_folder),
        "trial_file": str(trial_path) if trial_path else None,
        "seg_duration": seg_duration,
        "min_duration": min_duration,
        "sample_rate": sample_rate,
        "silence_threshold": silence_threshold,
    }
    paths = {key: str(save_folder / name) for key, name in OUTPUT_FILES.items()}
    if outputs_up_to_date(save_folder / OPTIONS_FILE, options, paths.values()):
        logger.info("Skipping preparation: %s holds it, made with the same options", save_folder)
        return paths
    save_folder.mkdir(parents=True, exist_ok=True)

    files, report = _list_audio_files(audio_root)
    audio_files = len(files) + sum(entry["action"] == "skipped" for entry in report.values())
    trials = read_trial_list(trial_path) if trial_path else []
    missing = _missing_trial_utterances(trials, files, trial_path, audio_root)
    checks = _check_files(files, audio_root, save_folder / "converted", options, num_workers)
    utterances = {}
    for utt_id, relative in files.items():
        check = checks[relative]
        if check.usable:
            utterances[utt_id] = _utterance_row(utt_id, relative, check, sample_rate)
        if check.problem:
            report[relative] = {"file": relative, "problem": check.problem, "action": check.action}

    test_speakers = {PurePosixPath(path).parts[0] for _, *pair in trials for path in pair}
    train = [row for row in utterances.values() if row["spk_id"] not in test_speakers]
    kept_trials, dropped = _resolve_trials(trials, utterances)
    test_ids = sorted({utt_id for _, *pair in kept_trials for utt_id in pair})
    test = [utterances[utt_id] for utt_id in test_ids]
    _note_dropped_trials(report, dropped, files, missing)

    segments = [
        segment for row in train for segment in segment_rows(row, seg_duration, sample_rate)
    ]
    _write_csv(paths["train_utts_csv"], UTTERANCE_COLUMNS, train)
    _write_csv(paths["train_csv"], SEGMENT_COLUMNS, segments)
    _write_csv(paths["test_csv"], UTTERANCE_COLUMNS, test)
    trial_rows = [dict(zip(TRIAL_COLUMNS, trial)) for trial in kept_trials]
    _write_csv(paths["trials_csv"], TRIAL_COLUMNS, trial_rows)

    used = {row["ID"] for row in train} | set(test_ids)
    summary = {
        "audio_files": audio_files,
        "usable_files": len(utterances),
        "converted": sum(entry["action"].startswith("converted") for entry in report.values()),
        "skipped": sum(entry["action"].startswith("skipped") for entry in report.values()),
        "missing_trial_files": len(missing),
        "ignored_non_audio": sum(entry["action"] == "ignored" for entry in report.values()),
        "problems": dict(Counter(_problem_kind(entry["problem"]) for entry in report.values())),
        "train_utterances": len(train),
        "train_speakers": len({row["spk_id"] for row in train}),
        "train_segments": len(segments),
        "train_hours": round(sum(row["duration"] for row in train) / 3600, 3),
        "test_utterances": len(test),
        "test_speakers": len({row["spk_id"] for row in test}),
        "trials": len(kept_trials),
        "target_trials": sum(label for label, _, _ in kept_trials),
        "trials_dropped": len(dropped),
        "unused_test_speaker_utterances": len(set(utterances) - used),
    }
    _write_report(paths, options, audio_root, summary, sorted(report.values(), key=_by_file))
    _log_summary(summary, paths["report_md"])
    if not utterances:
        raise ValueError(
            f"no usable audio in {audio_root}: every file was skipped; "
            f"see {paths['report_md']} for each file's problem"
        )
    write_json(save_folder / OPTIONS_FILE, options)
    return paths


def _audio_root(data_folder):
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
    if trial_file is None:
        default = data_folder / "trials.txt"
        if default.is_file():
            return default
        logger.warning(
            "%s has no trials.txt and no trial_file was given: every speaker goes to "
            "training and test.csv / trials.csv stay empty",
            data_folder,
        )
        return None
    trial_path = Path(trial_file).expanduser().resolve()
    if not trial_path.is_file():
        raise FileNotFoundError(f"trial file {trial_path} does not exist")
    return trial_path


def _list_audio_files(audio_root):
    """Map utterance ID to path (relative, posix) and report the files left out."""
    files, report, seen = {}, {}, {}
    walk = os.walk(audio_root)
    for folder, subfolders, names in tqdm(walk, desc="Listing audio folders", unit=" folders"):
        subfolders.sort()
        for name in sorted(names):
            relative = Path(folder, name).relative_to(audio_root).as_posix()
            if Path(name).suffix.lower() not in AUDIO_EXTENSIONS:
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


def _missing_trial_utterances(trials, files, trial_path, audio_root):
    named = {path for _, *pair in trials for path in pair}
    missing = sorted(path for path in named if utterance_id(path) not in files)
    if named and len(missing) == len(named):
        raise FileNotFoundError(
            f"none of the {len(named)} files named in {trial_path} is in {audio_root} "
            f"(e.g. {missing[0]}): give the trial list of this corpus, or the data folder "
            "it belongs to"
        )
    if missing:
        logger.warning(
            "%d files named in %s are not in %s (e.g. %s): their trials are dropped",
            len(missing),
            trial_path,
            audio_root,
            missing[0],
        )
    return missing


def _check_files(files, audio_root, converted_root, options, num_workers):
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
    return check_audio_file(*job, **options)


def _utterance_row(utt_id, relative, check, sample_rate):
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


def _note_dropped_trials(report, dropped, files, missing):
    """Report the missing files and add to each entry how many trials its file took down."""
    for path in missing:
        report[path] = _entry(path, "missing (named in the trial list)", "")
    relative_of = files | {utterance_id(path): path for path in missing}
    counts = Counter(
        relative_of[utt_id]
        for _, *pair in dropped
        for utt_id in set(pair)
        if relative_of.get(utt_id) in report
    )
    for relative, count in counts.items():
        dropped_text = f"{count} trial{'s' * (count != 1)} dropped"
        report[relative]["action"] = "; ".join(
            filter(None, [report[relative]["action"], dropped_text])
        )


def _write_csv(path, columns, rows):
    temporary = f"{path}.partial"
    with open(temporary, "w", newline="", encoding="utf-8") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(temporary, path)


def _write_report(paths, options, audio_root, summary, entries):
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
    temporary = f"{paths['report_md']}.partial"
    Path(temporary).write_text("\n".join(lines) + "\n", encoding="utf-8")
    os.replace(temporary, paths["report_md"])


def _log_summary(summary, report_md):
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
    return {"file": relative, "problem": problem, "action": action}


def _problem_kind(problem):
    """Short category of a problem text, numbers blanked ('sample rate N Hz')."""
    return re.sub(r"\d+(\.\d+)?", "N", problem.split(" (")[0].split(":")[0])


def _by_file(entry):
    return entry["file"]


def _cell(text):
    return str(text).replace("|", "\\|")
