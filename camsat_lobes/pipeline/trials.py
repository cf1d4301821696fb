"""The trial lists of a prepared run, as the verify stage and the studies read them.

Preparation writes each trial list as a CSV manifest (``label,enrol_id,test_id``) and
names them in ``trial_lists.json``; with ``full_trials`` the run also scores every
pair of test utterances (``all_pairs``: all targets, all non-targets).

Authors
 * camsat contributors 2026
"""

import csv
import itertools
import json
from pathlib import Path

import numpy as np

from camsat_lobes.files import write_text

__all__ = [
    "ALL_PAIRS",
    "read_column",
    "read_trial_csv",
    "trial_list_files",
    "trial_speakers",
    "write_all_pairs",
]

#: The list of every pair of test utterances.
ALL_PAIRS = "all_pairs"
#: The corpus's own list when preparation names no other (MiniVox, one data folder).
OWN_LIST = "voxceleb"


def read_column(manifest, column):
    r"""Read one column of a CSV manifest, in file order.

    Arguments
    ---------
    manifest : str or pathlib.Path
        A CSV file with a header row.
    column : str
        The column's name.

    Returns
    -------
    list of str
        The column's values.

    Example
    -------
    >>> path = getfixture("tmp_path") / "m.csv"
    >>> _ = path.write_text("ID,spk_id\nu1,a\nu2,b\n")
    >>> read_column(path, "spk_id")
    ['a', 'b']
    """
    with open(manifest, newline="", encoding="utf-8") as stream:
        return [row[column] for row in csv.DictReader(stream)]


def trial_list_files(data_folder, full_trials=False):
    r"""Return the prepared trial lists to score, name -> CSV path, in scoring order.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        The prepared data (``save/data``).
    full_trials : bool
        Also list (and write, once) every pair of test utterances as ``all_pairs``.

    Returns
    -------
    dict
        List name -> path of its ``label,enrol_id,test_id`` CSV.

    Example
    -------
    >>> data = getfixture("tmp_path")
    >>> _ = (data / "trials.csv").write_text("label,enrol_id,test_id\n1,a1,a2\n")
    >>> {name: path.name for name, path in trial_list_files(data).items()}
    {'voxceleb': 'trials.csv'}
    """
    data_folder = Path(data_folder)
    index = data_folder / "trial_lists.json"
    if index.exists():
        named = json.loads(index.read_text())
        lists = {name: data_folder / entry["file"] for name, entry in named.items()}
    else:
        lists = {OWN_LIST: data_folder / "trials.csv"}
    if full_trials:
        lists[ALL_PAIRS] = write_all_pairs(data_folder)
    return lists


def read_trial_csv(path):
    r"""Read a prepared trial list as ``(label, enrol_id, test_id)`` rows.

    Arguments
    ---------
    path : str or pathlib.Path
        A ``label,enrol_id,test_id`` CSV.

    Returns
    -------
    list of tuple
        One ``(int label, enrol ID, test ID)`` per trial, in file order.

    Example
    -------
    >>> path = getfixture("tmp_path") / "t.csv"
    >>> _ = path.write_text("label,enrol_id,test_id\n1,a1,a2\n0,a1,b1\n")
    >>> read_trial_csv(path)
    [(1, 'a1', 'a2'), (0, 'a1', 'b1')]
    """
    with open(path, newline="", encoding="utf-8") as stream:
        return [
            (int(row["label"]), row["enrol_id"], row["test_id"]) for row in csv.DictReader(stream)
        ]


def write_all_pairs(data_folder):
    r"""Write the every-pair trial list of ``test.csv`` unless it exists; return its path.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        The prepared data holding ``test.csv``.

    Returns
    -------
    pathlib.Path
        ``trials_all_pairs.csv``.

    Example
    -------
    >>> data = getfixture("tmp_path")
    >>> _ = (data / "test.csv").write_text("ID,spk_id\na1,a\na2,a\nb1,b\n")
    >>> read_trial_csv(write_all_pairs(data))
    [(1, 'a1', 'a2'), (0, 'a1', 'b1'), (0, 'a2', 'b1')]
    """
    path = Path(data_folder) / f"trials_{ALL_PAIRS}.csv"
    if not path.exists():
        ids = read_column(Path(data_folder) / "test.csv", "ID")
        speakers = read_column(Path(data_folder) / "test.csv", "spk_id")
        rows = [
            f"{int(speakers[a] == speakers[b])},{ids[a]},{ids[b]}\n"
            for a, b in itertools.combinations(range(len(ids)), 2)
        ]
        write_text(path, "label,enrol_id,test_id\n" + "".join(rows))
    return path


def trial_speakers(data_folder, trials):
    r"""Return the labels, enrolment speakers and test speakers of trials, from ``test.csv``.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        The prepared data holding ``test.csv``.
    trials : list of tuple
        ``(label, enrol_id, test_id)`` rows.

    Returns
    -------
    tuple
        ``(labels, enrol_speakers, test_speakers)``: an int array and two lists.

    Example
    -------
    >>> data = getfixture("tmp_path")
    >>> _ = (data / "test.csv").write_text("ID,spk_id\na1,a\nb1,b\n")
    >>> labels, enrol, test = trial_speakers(data, [(0, "a1", "b1")])
    >>> labels.tolist(), enrol, test
    ([0], ['a'], ['b'])
    """
    test_csv = Path(data_folder) / "test.csv"
    speaker_of = dict(zip(read_column(test_csv, "ID"), read_column(test_csv, "spk_id")))
    return (
        np.array([label for label, _, _ in trials]),
        [speaker_of[e] for _, e, _ in trials],
        [speaker_of[t] for _, _, t in trials],
    )
