"""Reading VoxCeleb trial lists, checking them against a corpus, writing the trial CSVs.

A VoxCeleb trial list has lines ``<1|0> <enrol path> <test path>`` (1: target, same
speaker; 0: non-target), paths ``<speaker>/<session>/<utterance>.wav`` relative to the
corpus ``wav`` folder. The cleaned VoxCeleb1 lists are ``veri_test2.txt`` (O),
``list_test_all2.txt`` (E) and ``list_test_hard2.txt`` (H). Each prepared list becomes a
CSV (``label, enrol_id, test_id`` with utterance IDs), and ``trial_lists.json`` maps
each list's name to its CSV and its trial and target counts.

Authors
 * camsat contributors 2026
"""

import re
from pathlib import PurePosixPath

from camsat_lobes.files import write_csv, write_json
from camsat_lobes.prepare.corpus import LAYOUT, _some_of, utterance_id

__all__ = ["DEFAULT_TRIAL_LISTS", "read_trial_list"]

TRIAL_COLUMNS = ["label", "enrol_id", "test_id"]
DEFAULT_TRIAL_LISTS = {"O": "veri_test2.txt", "E": "list_test_all2.txt", "H": "list_test_hard2.txt"}
TRIAL_LISTS_FILE = "trial_lists.json"
LIST_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


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
    >>> from pathlib import Path
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


def _check_list_names(trial_lists):
    """Raise unless ``trial_lists`` is a non-empty mapping of usable list names to files."""
    if not hasattr(trial_lists, "items") or not trial_lists:
        raise ValueError(
            f"trial_lists={trial_lists!r}: give a mapping of list names to trial list files, "
            f"e.g. {DEFAULT_TRIAL_LISTS}"
        )
    for name in trial_lists:
        if not isinstance(name, str) or not LIST_NAME.fullmatch(name):
            raise ValueError(
                f"trial list name {name!r} cannot name a file (trials_<name>.csv): use "
                "letters, digits, '_', '-' and '.', e.g. 'O', 'E', 'H'"
            )


def _trial_speakers(trials):
    """Return the speakers named by ``trials`` (the first component of each path)."""
    return {PurePosixPath(path).parts[0] for _, *pair in trials for path in pair}


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
    """Raise when a file named in the trial list is not among ``files`` (by utterance ID)."""
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
            f"{audio_root}: {_some_of(missing)}; complete the corpus (a partial download or "
            "copy?) or remove the trials on those files from the trial list"
        )


def _check_no_shared_speakers(train_speakers, list_speakers, trial_files, fix):
    """Raise when a training speaker is also a speaker of a trial list.

    Arguments
    ---------
    train_speakers : set of str
        The speakers of the training set.
    list_speakers : dict
        List name -> the speakers its trials name.
    trial_files : dict
        List name -> the list's file (for the message).
    fix : str
        How to fix it, appended to the message.
    """
    for name, speakers in list_speakers.items():
        shared = sorted(train_speakers & speakers)
        if shared:
            count = f"{len(shared)} speaker{'s' * (len(shared) != 1)}"
            raise ValueError(
                f"the training set shares {count} with trial list {name} "
                f"({trial_files[name]}): {_some_of(shared)}. A speaker that trains must never "
                f"be scored, or the error rates are not the field's: {fix}"
            )


def _resolve_trials(trials, utterances):
    """Trials as (label, enrol ID, test ID) when both files are usable, and the others."""
    kept, dropped = [], []
    for label, enrol, test in trials:
        resolved = (label, utterance_id(enrol), utterance_id(test))
        usable = resolved[1] in utterances and resolved[2] in utterances
        (kept if usable else dropped).append(resolved)
    return kept, dropped


def _write_trials(path, trials):
    """Write ``(label, enrol ID, test ID)`` trials as a CSV with ``TRIAL_COLUMNS``."""
    write_csv(path, TRIAL_COLUMNS, [dict(zip(TRIAL_COLUMNS, trial)) for trial in trials])


def _trial_list_entry(file_name, trials):
    """Return the ``trial_lists.json`` entry of one list: its CSV and its counts."""
    targets = sum(label for label, _, _ in trials)
    return {"file": file_name, "trials": len(trials), "targets": targets}


def _write_trial_lists(path, entries):
    """Write ``trial_lists.json``: list name -> ``{"file", "trials", "targets"}``."""
    write_json(path, entries)
