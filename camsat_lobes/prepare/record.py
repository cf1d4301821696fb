"""The record of a finished preparation, and what differs between it and the corpus now.

``preparation.json`` (written last) records the options and a digest of the corpus:
the paths, sizes and modification times of the audio files of each audio folder, and
the content of each trial list. :func:`preparation_differences` compares it with a
save folder, so a rerun into the same folder redoes the work when the corpus or an
option changed, and skips it otherwise.

Authors
 * camsat contributors 2026
"""

import hashlib
import json
import logging
import os
from pathlib import Path

from camsat_lobes.audio_checks import AUDIO_EXTENSIONS
from camsat_lobes.prepare.corpus import _walk
from camsat_lobes.prepare.sources import (
    DEVELOPMENT_LIST,
    SINGLE_LIST,
    _options,
    _resolve,
    _trial_list_files,
    _trial_path,
)

logger = logging.getLogger(__name__)

__all__ = ["preparation_differences", "preparation_is_current"]

RECORD_FILE = "preparation.json"
FORMAT_VERSION = 2
MANIFEST_FILES = {
    "train_utts_csv": "train_utts.csv",
    "train_csv": "train.csv",
    "test_csv": "test.csv",
}
REPORT_FILES = {"report_json": "prepare_report.json", "report_md": "prepare_report.md"}
SINGLE_TRIALS_FILE = "trials.csv"
TRIAL_LISTS_FILE = "trial_lists.json"


def preparation_differences(
    data_folder=None,
    save_folder=None,
    trial_file=None,
    seg_duration=3.0,
    min_duration=1.0,
    sample_rate=16000,
    silence_threshold=1e-4,
    development_speakers=0,
    voxceleb1_folder=None,
    voxceleb2_folder=None,
    train_on=None,
    trial_lists=None,
):
    r"""List what differs between a finished preparation and the corpus as it is now.

    Compares ``<save_folder>/preparation.json`` (written by
    :func:`~camsat_lobes.prepare.prepare_voxceleb` once it has finished) with the
    options given here and with the corpus on disk: the resolved folders and trial
    lists, the options, the audio files of each audio folder (relative paths, sizes and
    modification times) and the content of each trial list. It walks the audio folders
    and reads file sizes, but opens no audio file. It does not raise on a missing
    folder: that is a difference.

    Arguments
    ---------
    data_folder : str or pathlib.Path, optional
        Corpus root holding ``wav/<speaker>/<session>/<utterance>.wav`` and
        ``trials.txt``; or None with ``voxceleb1_folder``.
    save_folder : str or pathlib.Path
        Output folder of :func:`~camsat_lobes.prepare.prepare_voxceleb`.
    trial_file : str or pathlib.Path, optional
        Trial list of ``data_folder``; ``<data_folder>/trials.txt`` by default.
    seg_duration : float
        Segment length of ``train.csv`` in seconds.
    min_duration : float
        Shortest usable file in seconds.
    sample_rate : int
        Sample rate of the manifests' audio.
    silence_threshold : float
        RMS amplitude under which a file is silent.
    development_speakers : int
        Training speakers held out as the test set.
    voxceleb1_folder, voxceleb2_folder : str or pathlib.Path, optional
        VoxCeleb1 and VoxCeleb2 roots (see :func:`~camsat_lobes.prepare.prepare_voxceleb`).
    train_on : str or list of str, optional
        The corpora that train.
    trial_lists : dict, optional
        List name -> trial list file.

    Returns
    -------
    list of str
        One line per difference, ready for a log message; empty when the
        preparation in ``save_folder`` is current and can be reused.

    Example
    -------
    >>> import numpy as np, soundfile as sf
    >>> from camsat_lobes.prepare import prepare_voxceleb
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
    if save_folder is None:
        raise ValueError("preparation_differences needs save_folder, the preparation's folder")
    try:
        sources = _resolve(
            data_folder, trial_file, voxceleb1_folder, voxceleb2_folder, train_on, trial_lists
        )
        if sources.single:
            trial_files = {SINGLE_LIST: _trial_path(sources.data_folder, trial_file)}
        else:
            trial_files = _trial_list_files(sources.folders["voxceleb1"], trial_lists)
        recorded = _options(
            sources,
            trial_files,
            seg_duration,
            min_duration,
            sample_rate,
            silence_threshold,
            development_speakers,
        )
        walks = {name: (root, _walk(root)) for name, root in sources.roots.items()}
        record = _preparation_record(recorded, walks, trial_files, sources.single)
    except (OSError, ValueError) as error:
        return [str(error)]
    save_folder = Path(save_folder).expanduser().resolve()
    names = _list_names(sources, trial_files, development_speakers)
    paths = _output_paths(save_folder, names, sources.single)
    return _record_differences(save_folder, record, sources.roots, paths)


def preparation_is_current(data_folder, save_folder, **options):
    r"""Tell whether ``save_folder`` holds a finished preparation of the corpus as it is now.

    Arguments
    ---------
    data_folder : str or pathlib.Path or None
        Corpus root holding ``wav/<speaker>/<session>/<utterance>.wav``; None with
        ``voxceleb1_folder`` among the options.
    save_folder : str or pathlib.Path
        Output folder of :func:`~camsat_lobes.prepare.prepare_voxceleb`.
    **options
        The options given to :func:`~camsat_lobes.prepare.prepare_voxceleb`;
        ``num_workers`` and ``convert_workers`` are accepted and ignored.

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
    options.pop("convert_workers", None)
    return not preparation_differences(data_folder, save_folder, **options)


def _list_names(sources, trial_files, development_speakers):
    """Return the names of the trial lists a preparation writes."""
    if sources.single:
        return [SINGLE_LIST]
    return [DEVELOPMENT_LIST] if development_speakers else list(trial_files)


def _output_paths(save_folder, names, single):
    """Return the paths (str) of the manifests, trial CSVs and report, by key.

    ``trial_lists`` maps each list name to its CSV; ``trials_csv`` is the single
    folder's ``trials.csv``, or the first list's CSV.
    """
    if single:
        trial_lists = {names[0]: str(save_folder / SINGLE_TRIALS_FILE)}
    else:
        trial_lists = {name: str(save_folder / f"trials_{name}.csv") for name in names}
    return {
        **{key: str(save_folder / name) for key, name in MANIFEST_FILES.items()},
        "trials_csv": next(iter(trial_lists.values())),
        **{key: str(save_folder / name) for key, name in REPORT_FILES.items()},
        "trial_lists_json": str(save_folder / TRIAL_LISTS_FILE),
        "trial_lists": trial_lists,
    }


def _file_outputs(paths):
    """Return every output file path of ``output_paths``, each once, in order."""
    files = [path for key, path in paths.items() if key != "trial_lists"]
    return list(dict.fromkeys(files + list(paths["trial_lists"].values())))


def _preparation_record(recorded, walks, trial_files, single):
    """Return what a preparation depends on: its options and a digest of the corpus files.

    ``walks`` maps corpus names to ``(audio root, relative paths)``.
    """
    digests = {name: _audio_digest(root, relatives) for name, (root, relatives) in walks.items()}
    lists = {name: _file_digest(path) for name, path in trial_files.items()}
    if single:
        ((count, digest),) = digests.values()
        corpus = {"audio_files": count, "audio_digest": digest, "trial_digest": lists[SINGLE_LIST]}
    else:
        corpus = {
            "audio": {
                name: {"audio_files": count, "audio_digest": digest}
                for name, (count, digest) in digests.items()
            },
            "trial_digests": lists,
        }
    return {"format_version": FORMAT_VERSION, "options": recorded, "corpus": corpus}


def _audio_digest(root, relatives):
    """Return the number of audio files and a digest of their paths, sizes and times."""
    digest, count = hashlib.sha256(), 0
    for relative in relatives:
        if Path(relative).suffix.lower() in AUDIO_EXTENSIONS:
            stat = os.stat(root / relative)
            line = f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}\n"
            digest.update(line.encode("utf-8", "surrogateescape"))
            count += 1
    return count, digest.hexdigest()


def _file_digest(path):
    """Return the SHA-256 of a file's content."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def _record_differences(save_folder, record, roots, paths):
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
        f"output {path} is missing" for path in _file_outputs(paths) if not os.path.isfile(path)
    ]
    old_options, now_options = old.get("options", {}), record["options"]
    for key in {**now_options, **old_options}:  # an option missing from a record is unset
        if old_options.get(key) != now_options.get(key):
            differences.append(
                f"{key}: {old_options.get(key)!r} then, {now_options.get(key)!r} now"
            )
    old_audio, old_lists = _by_corpus(old.get("corpus", {}))
    audio, lists = _by_corpus(record["corpus"])
    for name, now in audio.items():
        before = old_audio.get(name, {})
        if before.get("audio_digest") != now["audio_digest"]:
            differences.append(f"audio files under {roots[name]}: {_change(before, now)}")
    for name, digest in lists.items():
        if old_lists.get(name) != digest:
            if name is None:
                differences.append(f"the content of the trial list {now_options['trial_file']}")
            else:
                path = now_options["trial_lists"][name]
                differences.append(f"the content of the trial list {name} ({path})")
    return differences


def _by_corpus(corpus):
    """Return a record's audio digests by corpus name and trial digests by list name.

    The record of a single folder has one of each, named None.
    """
    if "audio" in corpus:
        return corpus["audio"], corpus.get("trial_digests", {})
    audio = {key: corpus.get(key) for key in ("audio_files", "audio_digest")}
    return {None: audio}, {None: corpus.get("trial_digest")}


def _change(before, now):
    """Say how the audio files of one folder changed."""
    then, count = before.get("audio_files"), now["audio_files"]
    if then != count:
        return f"{then} then, {count} now (files added or removed)"
    return f"same number ({count}) but names, sizes or modification times differ"


def _finished_before(save_folder, record, roots, paths):
    """Tell (and log) whether ``save_folder`` holds this very preparation, finished."""
    differences = _record_differences(save_folder, record, roots, paths)
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
