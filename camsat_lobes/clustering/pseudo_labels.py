"""Read and write ``pseudo_labels.csv`` (columns ID, cluster).

Cluster -1 marks an utterance left out by the clusterer (e.g. a too-small cluster
or an ambiguous point): its row stays in the file, so the file still lists every
utterance, and :func:`~camsat_lobes.speaker_training.pseudo_label_datasets` trains
on none of its segments.

Authors
 * camsat contributors 2026
"""

import csv
import pathlib

import numpy as np

from camsat_lobes.files import write_csv

__all__ = ["write_pseudo_labels", "read_pseudo_labels"]


def write_pseudo_labels(path, ids, labels):
    """Write one row ``ID,cluster`` per utterance.

    Arguments
    ---------
    path : str or pathlib.Path
        CSV file to write (parent folders are made). Written to a temporary
        name first and renamed, so an interrupted run never leaves half a file.
    ids : sequence of str
        Utterance IDs, in the order of ``labels``; must be unique.
    labels : array_like
        Integer cluster of each utterance; -1 for an utterance left out.

    Returns
    -------
    pathlib.Path
        The written path.

    Example
    -------
    >>> import tempfile
    >>> path = write_pseudo_labels(tempfile.mkdtemp() + "/p.csv", ["a", "b", "c"], [3, 0, -1])
    >>> path.read_text().splitlines()
    ['ID,cluster', 'a,3', 'b,0', 'c,-1']
    """
    path = pathlib.Path(path)
    ids = [str(i) for i in ids]
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(
            f"labels must be a 1-D integer array, got shape {labels.shape} dtype {labels.dtype}"
        )
    if len(ids) != labels.size:
        raise ValueError(f"{len(ids)} ids but {labels.size} labels; give one label per ID")
    _check_left_out_marker(labels, where="labels")
    if len(set(ids)) != len(ids):
        seen = set()
        duplicate = next(i for i in ids if i in seen or seen.add(i))
        raise ValueError(f"ID {duplicate!r} appears more than once; IDs must be unique")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_csv(path, ["ID", "cluster"], zip(ids, labels.tolist()))
    return path


def read_pseudo_labels(path):
    """Read a file written by :func:`write_pseudo_labels`.

    Arguments
    ---------
    path : str or pathlib.Path
        The CSV file.

    Returns
    -------
    ids : list of str
        Utterance IDs in file order.
    labels : numpy.ndarray
        int64 cluster of each (-1: left out).

    Example
    -------
    >>> import tempfile
    >>> path = write_pseudo_labels(tempfile.mkdtemp() + "/p.csv", ["a", "b"], [3, -1])
    >>> read_pseudo_labels(path)
    (['a', 'b'], array([ 3, -1]))
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"pseudo-label file {path} does not exist; run the clustering stage"
        )
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header != ["ID", "cluster"]:
            raise ValueError(f"{path}: header must be 'ID,cluster', found {header}")
        ids, labels = [], []
        for line, row in enumerate(reader, start=2):
            if len(row) != 2:
                raise ValueError(f"{path} line {line}: expected 2 columns, found {len(row)}")
            try:
                labels.append(int(row[1]))
            except ValueError:
                raise ValueError(
                    f"{path} line {line}: cluster {row[1]!r} is not an integer"
                ) from None
            ids.append(row[0])
    labels = np.asarray(labels, dtype=np.int64)
    _check_left_out_marker(labels, where=str(path))
    return ids, labels


def _check_left_out_marker(labels, where):
    """Raise when a label is below -1 (cluster ids are >= 0; -1 marks a left-out utterance)."""
    if labels.size and labels.min() < -1:
        row = int(np.argmin(labels))
        raise ValueError(
            f"{where}: cluster {int(labels[row])} (entry {row}) is negative; cluster ids are "
            ">= 0 and -1 marks an utterance left out"
        )
