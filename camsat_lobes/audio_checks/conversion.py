"""Finding ffmpeg and converting audio files to 16-bit mono wav with it.

:func:`find_ffmpeg` looks for ``ffmpeg`` on the PATH, then for the binary of the
``imageio-ffmpeg`` package; :func:`require_ffmpeg` raises, naming both fixes, when
there is none. :func:`convert_with_ffmpeg` converts one file atomically (a
``.partial`` file renamed once whole) and :func:`convert_files` many in parallel,
skipping those converted before, so a stopped conversion resumes.

Authors
 * camsat contributors 2026
"""

import concurrent.futures
import logging
import os
import shutil
import subprocess
from pathlib import Path

from tqdm import tqdm

logger = logging.getLogger(__name__)

CONVERT_BATCH = 4096  # conversions handed to the worker threads at a time


def find_ffmpeg():
    """Return the path of an ``ffmpeg`` executable, or None when there is none.

    ``ffmpeg`` on the PATH comes first; otherwise the binary shipped by the
    ``imageio-ffmpeg`` package (``imageio_ffmpeg.get_ffmpeg_exe()``) when that package
    is installed.

    Returns
    -------
    str or None
        The executable, or None.

    Example
    -------
    >>> found = find_ffmpeg()
    >>> found is None or "ffmpeg" in Path(found).name
    True
    """
    on_path = shutil.which("ffmpeg")
    if on_path:
        return on_path
    try:
        import imageio_ffmpeg
    except ImportError:
        return None
    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:  # the package is there but its binary is not
        return None


def require_ffmpeg(needed_for="converting m4a/aac audio to wav"):
    """Return the path of ``ffmpeg`` (see :func:`find_ffmpeg`), raising when there is none.

    Arguments
    ---------
    needed_for : str
        What ffmpeg is needed for, quoted in the error.

    Returns
    -------
    str
        The executable.

    Raises
    ------
    FileNotFoundError
        When neither ``ffmpeg`` on the PATH nor the ``imageio-ffmpeg`` package is there;
        the message names both fixes.

    Example
    -------
    >>> try:
    ...     found = require_ffmpeg()
    ... except FileNotFoundError as error:
    ...     found = str(error)
    >>> "ffmpeg" in found
    True
    """
    found = find_ffmpeg()
    if found is None:
        raise FileNotFoundError(
            f"ffmpeg is needed for {needed_for}, and there is none: no ffmpeg on the PATH "
            "and no imageio-ffmpeg package. Install one of them: `apt-get install ffmpeg` "
            "(Debian/Ubuntu package ffmpeg, or your system's ffmpeg package), or "
            "`pip install imageio-ffmpeg` (a Python package that ships an ffmpeg binary)"
        )
    return found


def convert_with_ffmpeg(source, target, ffmpeg, sample_rate=16000):
    """Convert one audio file to 16-bit mono wav at ``sample_rate`` with ffmpeg, atomically.

    ffmpeg writes ``<target>.partial``, renamed to ``target`` once it has succeeded,
    so an existing ``target`` is always a whole conversion.

    Arguments
    ---------
    source : str or pathlib.Path
        Any file ffmpeg decodes (m4a/aac, wav, flac, ...).
    target : str or pathlib.Path
        The wav file to write; its folder is created.
    ffmpeg : str
        Path of the ffmpeg executable (:func:`find_ffmpeg`, :func:`require_ffmpeg`).
    sample_rate : int
        Sample rate of the output.

    Returns
    -------
    str
        Empty on success, else ffmpeg's reason for failing (its error output on one line).

    Example
    -------
    >>> import numpy as np
    >>> import soundfile as sf
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name)
    >>> sf.write(folder / "in.wav", 0.1 * np.ones((8000, 2)), 8000)
    >>> ffmpeg = find_ffmpeg()
    >>> if ffmpeg:
    ...     assert convert_with_ffmpeg(folder / "in.wav", folder / "out" / "o.wav", ffmpeg) == ""
    ...     assert sf.info(folder / "out" / "o.wav").samplerate == 16000
    ...     failure = convert_with_ffmpeg(folder / "none.m4a", folder / "x.wav", ffmpeg)
    ...     assert "No such file" in failure
    >>> tmp.cleanup()
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".partial")
    command = [ffmpeg, "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-vn"]
    command += ["-ac", "1", "-ar", str(sample_rate), "-c:a", "pcm_s16le", "-f", "wav"]
    command.append(str(temporary))
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, errors="replace", check=False
        )
    except OSError as error:  # e.g. the executable vanished or is not executable
        return f"ffmpeg could not run ({_one_line(error)})"
    if result.returncode != 0:
        temporary.unlink(missing_ok=True)
        return _one_line(result.stderr) if result.stderr.strip() else f"exit {result.returncode}"
    os.replace(temporary, target)
    return ""


def convert_files(jobs, ffmpeg, sample_rate=16000, workers=1, desc="Converting with ffmpeg"):
    """Convert many files with ffmpeg in parallel, skipping those converted before.

    Resumable: a target that exists and is not older than its source was written
    whole by an earlier call (see :func:`convert_with_ffmpeg`) and is not converted
    again, so a conversion stopped halfway (a crash, Ctrl-C) goes on where it stopped.

    Arguments
    ---------
    jobs : iterable of (str, str)
        ``(source, target wav)`` pairs.
    ffmpeg : str
        Path of the ffmpeg executable (:func:`require_ffmpeg`).
    sample_rate : int
        Sample rate of the outputs (mono, 16-bit).
    workers : int
        ffmpeg processes run at once (VoxCeleb recipes use 8).
    desc : str
        Label of the progress bar.

    Returns
    -------
    dict
        ``source -> failure``: an empty string where the target is there (converted
        now or before), else ffmpeg's reason.

    Example
    -------
    >>> import numpy as np
    >>> import soundfile as sf
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name)
    >>> sf.write(folder / "a.wav", 0.1 * np.ones(8000), 8000)
    >>> jobs = [(str(folder / "a.wav"), str(folder / "out" / "a.wav"))]
    >>> ffmpeg = find_ffmpeg()
    >>> if ffmpeg:
    ...     assert convert_files(jobs, ffmpeg, workers=2) == {jobs[0][0]: ""}
    ...     assert sf.info(jobs[0][1]).frames == 16000
    >>> tmp.cleanup()
    """
    jobs = [(str(source), str(target)) for source, target in jobs]
    failures, pending = {}, []
    for source, target in jobs:
        if _converted_before(source, target):
            failures[source] = ""
        else:
            pending.append((source, target))
    if len(failures):
        logger.info("%d of %d files were converted before; not again", len(failures), len(jobs))

    def convert(job):
        """Convert one ``(source, target)`` job; return its failure (empty on success)."""
        return convert_with_ffmpeg(job[0], job[1], ffmpeg, sample_rate)

    workers = max(1, int(workers))
    bar = tqdm(total=len(pending), desc=desc, unit=" files", disable=not pending)
    with bar, concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        for start in range(0, len(pending), CONVERT_BATCH):  # a million futures at once is GBs
            batch = pending[start : start + CONVERT_BATCH]
            for (source, _), failure in zip(batch, pool.map(convert, batch)):
                failures[source] = failure
                bar.update()
    failed = sum(bool(failure) for failure in failures.values())
    if failed:
        logger.warning("ffmpeg failed on %d of %d files", failed, len(jobs))
    return {source: failures[source] for source, _ in jobs}


def _converted_before(source, target):
    """Whether ``target`` exists and is not older than ``source``."""
    try:
        return os.stat(target).st_mtime_ns >= os.stat(source).st_mtime_ns
    except OSError:
        return False


def _one_line(error):
    text = " ".join(str(error).split())
    return text[:200] if text else type(error).__name__
