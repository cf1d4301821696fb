"""Writing files that are never seen half-written, and skipping stages whose outputs are current.

Every writer here goes through :func:`atomic_write`: the content goes to a temporary
file next to the destination (``<name>.partial``), which is then renamed over it. A
rename within a folder is atomic, so a reader (or a run restarted after a crash) finds
the previous file or the new one, never a truncated one.

A stage that can be skipped on a rerun writes its outputs, then its options with
:func:`write_json`, last; :func:`outputs_up_to_date` then tells the next run whether
the outputs are all there and were made with the same options.

Text is UTF-8 and CSV files have a header row, as SpeechBrain's manifests.

Authors
 * camsat contributors 2026
"""

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path

__all__ = ["atomic_write", "outputs_up_to_date", "write_csv", "write_json", "write_text"]

TEMPORARY_SUFFIX = ".partial"


def atomic_write(path, write, suffix=TEMPORARY_SUFFIX):
    """Call ``write(temporary_path)``, then rename the temporary file to ``path``.

    Arguments
    ---------
    path : str or pathlib.Path
        Destination; its folder must exist.
    write : callable
        ``write(temporary_path)`` writes the whole content to the
        :class:`pathlib.Path` it is given.
    suffix : str
        Appended to the file name to name the temporary file (a caller that removes
        leftovers of interrupted runs looks for it).

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> atomic_write(folder / "a.bin", lambda temporary: temporary.write_bytes(b"ab"))
    >>> (folder / "a.bin").read_bytes(), sorted(p.name for p in folder.iterdir())
    (b'ab', ['a.bin'])
    """
    path = Path(path)
    temporary = path.with_name(path.name + suffix)
    write(temporary)
    os.replace(temporary, path)


def write_text(path, text):
    r"""Write UTF-8 text atomically (see :func:`atomic_write`).

    Arguments
    ---------
    path : str or pathlib.Path
        Destination.
    text : str
        The whole content.

    Example
    -------
    >>> path = getfixture("tmp_path") / "ids.txt"
    >>> write_text(path, "a\nb\n")
    >>> path.read_text(encoding="utf-8").split()
    ['a', 'b']
    """
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def write_json(path, content):
    r"""Write JSON (indented by 2, no final newline) atomically (see :func:`atomic_write`).

    Arguments
    ---------
    path : str or pathlib.Path
        Destination.
    content : object
        JSON-serialisable content.

    Example
    -------
    >>> path = getfixture("tmp_path") / "a.json"
    >>> write_json(path, {"x": 1})
    >>> path.read_text()
    '{\n  "x": 1\n}'
    """

    def dump(temporary):
        """Dump ``content`` into the temporary file."""
        with open(temporary, "w", encoding="utf-8") as stream:
            json.dump(content, stream, indent=2)

    atomic_write(path, dump)


def write_csv(path, columns, rows):
    """Write a CSV file with a header row atomically (see :func:`atomic_write`).

    Arguments
    ---------
    path : str or pathlib.Path
        Destination.
    columns : list of str
        The header, in column order.
    rows : iterable of dict or of sequence
        One item per row: a dict keyed by column name (a missing key gives an empty
        cell, a key that is not a column raises ValueError), or the values in column
        order.

    Example
    -------
    >>> path = getfixture("tmp_path") / "a.csv"
    >>> write_csv(path, ["ID", "label"], [{"ID": "u1", "label": 0}, ("u2", 1)])
    >>> path.read_text().splitlines()
    ['ID,label', 'u1,0', 'u2,1']
    """

    def dump(temporary):
        """Write the header and the rows into the temporary file."""
        with open(temporary, "w", newline="", encoding="utf-8") as stream:
            writer = csv.DictWriter(stream, fieldnames=columns)
            writer.writeheader()
            writer.writerows(
                row if isinstance(row, Mapping) else dict(zip(columns, row)) for row in rows
            )

    atomic_write(path, dump)


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
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "out.csv").write_text("ID\n")
    >>> outputs_up_to_date(folder / "options.json", {"seed": 1}, [folder / "out.csv"])
    False
    >>> write_json(folder / "options.json", {"seed": 1})
    >>> outputs_up_to_date(folder / "options.json", {"seed": 1}, [folder / "out.csv"])
    True
    >>> outputs_up_to_date(folder / "options.json", {"seed": 2}, [folder / "out.csv"])
    False
    """
    if not os.path.isfile(options_file) or not all(os.path.isfile(path) for path in outputs):
        return False
    with open(options_file, encoding="utf-8") as stream:
        return json.load(stream) == options
