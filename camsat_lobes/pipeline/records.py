"""What a finished stage leaves behind, and the lock of a run folder.

Every stage writes a :class:`StageRecord` (``done.json``) in its folder, last. The
record holds the stage's options (the resolved hyperparameters it depends on, as
text) and the digests of the records of the stages it read from. A later run
compares them with its own: a stage whose record matches is skipped; one whose
options or inputs differ is *stale*: its folder is moved aside (``<folder>.stale1``,
nothing computed is deleted) and it is done again, and so is every stage after it,
whose inputs then differ in turn.

:class:`RunLock` keeps a second process from writing into the same run folder.

Authors
 * camsat contributors 2026
"""

import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
import time
from pathlib import Path

from camsat_lobes.files import write_json

__all__ = ["RunLock", "RunLockedError", "StageRecord"]

logger = logging.getLogger(__name__)

RECORD_FILE = "done.json"


def _digest(content):
    """Return the SHA-256 of JSON content in canonical form."""
    text = json.dumps(content, sort_keys=True, ensure_ascii=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class StageRecord:
    """The record of one stage in one folder: its options and the records it read from.

    Arguments
    ---------
    folder : str or pathlib.Path
        The stage's folder; the record is ``<folder>/done.json``.
    name : str
        The stage's name, e.g. ``"cluster camsat"``.
    options : dict
        What the stage's outputs depend on: hyperparameter name -> its value as text
        (or any JSON value).
    inputs : list of StageRecord
        The stages whose outputs it reads; they must be done before it runs.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> prepare = StageRecord(folder / "data", "prepare", {"seg_duration": "3.0"})
    >>> prepare.state()
    ('missing', [])
    >>> prepare.finish(seconds=1.5)
    >>> prepare.state()
    ('current', [])
    >>> encoder = StageRecord(folder / "encoder", "encoder", {"epochs": "30"}, [prepare])
    >>> encoder.finish(seconds=2.0)
    >>> StageRecord(folder / "data", "prepare", {"seg_duration": "2.0"}).state()
    ('stale', ['seg_duration'])
    """

    def __init__(self, folder, name, options, inputs=()):
        self.folder = Path(folder)
        self.name = name
        self.options = dict(options)
        self.inputs = list(inputs)

    @property
    def path(self):
        """The record file."""
        return self.folder / RECORD_FILE

    def stored(self):
        """Return the stored record (a dict), or None when the stage has not finished."""
        if not self.path.exists():
            return None
        return json.loads(self.path.read_text())

    def input_digests(self):
        """Return the stored digests of the input records (None for an unfinished input)."""
        digests = {}
        for record in self.inputs:
            stored = record.stored()
            digests[record.name] = None if stored is None else stored.get("digest")
        return digests

    def digest(self):
        """Return the digest of this stage as it would run now (options and inputs)."""
        return _digest(
            {"stage": self.name, "options": self.options, "inputs": self.input_digests()}
        )

    def state(self):
        """Say whether the stage is ``missing``, ``current`` or ``stale``, and what changed.

        Returns
        -------
        tuple
            ``(state, changed)``: ``changed`` lists the options whose values differ and
            the inputs (``"input <name>"``) that were done again since.
        """
        stored = self.stored()
        if stored is None:
            return "missing", []
        if "digest" not in stored:  # written before records kept their options
            return "current", []
        if stored["digest"] == self.digest():
            return "current", []
        old, new = stored.get("options", {}), self.options
        changed = sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))
        old_inputs = stored.get("inputs", {})
        changed += [
            f"input {name}"
            for name, digest in self.input_digests().items()
            if old_inputs.get(name) != digest
        ]
        return "stale", changed

    def finish(self, seconds):
        """Write the record: the stage's outputs are complete.

        Arguments
        ---------
        seconds : float
            The stage's wall time.
        """
        self.folder.mkdir(parents=True, exist_ok=True)
        content = {
            "stage": self.name,
            "seconds": seconds,
            "options": self.options,
            "inputs": self.input_digests(),
            "digest": self.digest(),
        }
        write_json(self.path, content)

    def set_aside(self, changed):
        """Move a stale stage's folder aside (``<folder>.stale<n>``) and say why.

        Arguments
        ---------
        changed : list of str
            What changed (from :meth:`state`), for the log.

        Returns
        -------
        pathlib.Path
            Where the folder went.
        """
        number = 1
        while self.folder.with_name(f"{self.folder.name}.stale{number}").exists():
            number += 1
        destination = self.folder.with_name(f"{self.folder.name}.stale{number}")
        shutil.move(str(self.folder), str(destination))
        logger.warning(
            "%s: done with other settings (changed: %s); it runs again, its previous "
            "outputs are kept in %s",
            self.name,
            ", ".join(changed),
            destination,
        )
        return destination


class RunLockedError(RuntimeError):
    """Another process is writing into the run folder (raised by :class:`RunLock`).

    Example
    -------
    >>> issubclass(RunLockedError, RuntimeError)
    True
    """


class RunLock:
    """An exclusive lock on a run folder, held for the life of the process that takes it.

    The lock file names the holder (process id, host, start time). A lock whose
    process has ended (the operating system releases it) is taken over, and the log
    says so.

    Arguments
    ---------
    path : str or pathlib.Path
        The lock file (``<output_folder>/run.lock``).

    Example
    -------
    >>> path = getfixture("tmp_path") / "run.lock"
    >>> with RunLock(path):
    ...     RunLock(path).acquire()
    Traceback (most recent call last):
    ...
    camsat_lobes.pipeline.records.RunLockedError: ... is being written by process ...
    """

    def __init__(self, path):
        self.path = Path(path)
        self.handle = None

    def acquire(self):
        """Take the lock, or raise :class:`RunLockedError` naming the holder."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "an unknown process"
            handle.close()
            raise RunLockedError(
                f"{self.path.parent} is being written by {holder} (lock file {self.path}). "
                "Wait for that run to end, or run into another --output_folder."
            ) from None
        handle.seek(0)
        previous = handle.read().strip()
        if previous:
            logger.warning("Taking over the lock of %s, whose process has ended", previous)
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
        handle.seek(0)
        handle.truncate()
        handle.write(f"process {os.getpid()} on {socket.gethostname()}, started {started}\n")
        handle.flush()
        self.handle = handle
        return self

    def release(self):
        """Empty the lock file and release the lock."""
        if self.handle is None:
            return
        self.handle.seek(0)
        self.handle.truncate()
        fcntl.flock(self.handle, fcntl.LOCK_UN)
        self.handle.close()
        self.handle = None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
