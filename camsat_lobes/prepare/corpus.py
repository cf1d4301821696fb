"""Finding, listing, converting and checking the audio files of a VoxCeleb-layout corpus.

A corpus keeps its audio as ``<audio root>/<speaker>/<session>/<utterance>.<ext>``:
``<root>/wav`` for one VoxCeleb-layout folder (MiniVox) and VoxCeleb1, ``<root>/dev/aac``
(m4a, as downloaded) or ``<root>/dev/wav`` (converted) for VoxCeleb2. Container files
that soundfile cannot read (m4a) are converted with ffmpeg in parallel into
``<save_folder>/converted/`` first; then every file is checked
(:func:`camsat_lobes.audio_checks.check_audio_file`).

Authors
 * camsat contributors 2026
"""

import dataclasses
import functools
import multiprocessing
import os
from pathlib import Path, PurePosixPath

from tqdm import tqdm

from camsat_lobes import audio_checks
from camsat_lobes.audio_checks import AUDIO_EXTENSIONS, FFMPEG_EXTENSIONS, check_audio_file

__all__ = ["LAYOUT", "utterance_id"]

LAYOUT = "<speaker>/<session>/<utterance>"
ID_SEPARATOR = "--"
NAMED_AT_MOST = 5  # files or speakers quoted in one error message
VOXCELEB2_AUDIO = ("dev/wav", "dev/aac")  # where VoxCeleb2 dev keeps its audio, in order


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


@dataclasses.dataclass
class _Corpus:
    """The audio of one corpus as found on disk.

    Arguments
    ---------
    name : str or None
        ``voxceleb1`` or ``voxceleb2``; None for a single VoxCeleb-layout folder, whose
        report entries then name files by their path relative to ``audio_root``.
    audio_root : pathlib.Path
        The folder holding ``<speaker>/<session>/<utterance>.<ext>``.
    relatives : list of str
        Every file under ``audio_root`` (posix paths relative to it, sorted).
    files : dict
        Utterance ID -> relative path of the audio files in the layout.
    report : dict
        Relative path -> report entry of the files left out while listing.
    """

    name: str | None
    audio_root: Path
    relatives: list
    files: dict
    report: dict

    def label(self, relative):
        """Return how the report names a file: ``<corpus>/<relative>`` or ``<relative>``."""
        return relative if self.name is None else f"{self.name}/{relative}"

    def speakers(self):
        """Return the speakers (first path component) of the listed audio files."""
        return {PurePosixPath(relative).parts[0] for relative in self.files.values()}


def _some_of(names):
    """Return the first few of ``names``, then how many more."""
    shown = ", ".join(names[:NAMED_AT_MOST])
    more = len(names) - NAMED_AT_MOST
    return f"{shown} and {more} more" if more > 0 else shown


def _audio_root(data_folder):
    """Return ``<data_folder>/wav``, raising when it or the data folder is missing."""
    if not data_folder.is_dir():
        raise FileNotFoundError(
            f"data folder {data_folder} does not exist: give the corpus root that holds "
            f"wav/{LAYOUT}.wav"
        )
    root = data_folder / "wav"
    if not root.is_dir():
        raise FileNotFoundError(
            f"{data_folder} has no wav/ folder: a VoxCeleb-layout corpus keeps its audio in "
            f"{root}/{LAYOUT}.wav (convert VoxCeleb2's aac/*.m4a into such a folder)"
        )
    return root


def _voxceleb1_audio_root(folder):
    """Return VoxCeleb1's ``<folder>/wav``, raising with the expected layout when missing."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"voxceleb1_folder {folder} does not exist: give the VoxCeleb1 root that holds "
            f"wav/{LAYOUT}.wav (dev and test unpacked together, all 1,251 speakers) and the "
            "trial lists (veri_test2.txt, list_test_all2.txt, list_test_hard2.txt)"
        )
    root = folder / "wav"
    if not root.is_dir():
        raise FileNotFoundError(
            f"voxceleb1_folder {folder} has no wav/ folder: VoxCeleb1 keeps its audio in "
            f"{root}/<id1xxxx>/<video>/<utterance>.wav (unpack vox1_dev_wav.zip and "
            "vox1_test_wav.zip there)"
        )
    return root


def _voxceleb2_audio_root(folder):
    """Return VoxCeleb2's dev audio folder (``dev/wav`` if converted, else ``dev/aac``)."""
    if not folder.is_dir():
        raise FileNotFoundError(
            f"voxceleb2_folder {folder} does not exist: give the VoxCeleb2 root that holds "
            f"dev/aac/{LAYOUT}.m4a (as downloaded) or dev/wav/{LAYOUT}.wav (converted)"
        )
    for candidate in VOXCELEB2_AUDIO:
        if (folder / candidate).is_dir():
            return folder / candidate
    raise FileNotFoundError(
        f"voxceleb2_folder {folder} has neither dev/wav/ nor dev/aac/: VoxCeleb2 dev keeps "
        f"its audio in {folder}/dev/aac/<id0xxxx>/<video>/<utterance>.m4a (unpack "
        "vox2_dev_aac*.zip there) or, converted, in dev/wav/"
    )


def _walk(root):
    """Relative posix paths of every file under ``root``, in a stable order."""
    relatives = []
    folders = os.walk(root)
    for folder, subfolders, names in tqdm(folders, desc="Listing audio folders", unit=" folders"):
        subfolders.sort()
        relatives += [Path(folder, name).relative_to(root).as_posix() for name in names]
    return sorted(relatives)


def _list_audio_files(root, relatives, name=None):
    """Return the :class:`Corpus` of the files under ``root``, raising when it holds no audio."""
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
            f"no audio files in {root}: expected {root}/{LAYOUT}.wav "
            f"(extensions {', '.join(sorted(AUDIO_EXTENSIONS))})"
        )
    corpus = _Corpus(name, root, relatives, files, {})
    corpus.report = {
        corpus.label(relative): {**item, "file": corpus.label(relative)}
        for relative, item in report.items()
    }
    return corpus


def _entry(label, problem, action):
    """Return a report entry: the file, its problem and what was done with it."""
    return {"file": label, "problem": problem, "action": action}


@dataclasses.dataclass
class _AudioJob:
    """One file to check: where it is, where a converted copy goes, how the report names it."""

    utt_id: str
    label: str
    source: str
    converted: str
    speaker: str
    session: str


def _audio_jobs(corpus, utt_ids, converted_root):
    """Return the :class:`AudioJob` of each of ``utt_ids`` (in that order) of ``corpus``."""
    jobs = []
    for utt_id in utt_ids:
        relative = corpus.files[utt_id]
        speaker, session, _ = PurePosixPath(relative).parts
        converted = (converted_root / relative).with_suffix(".wav")
        source = corpus.audio_root / relative
        jobs.append(
            _AudioJob(utt_id, corpus.label(relative), str(source), str(converted), speaker, session)
        )
    return jobs


def _needs_ffmpeg(jobs):
    """Return the jobs whose source is a container that only ffmpeg decodes (m4a, aac, ...)."""
    return [job for job in jobs if Path(job.source).suffix.lower() in FFMPEG_EXTENSIONS]


def _convert_files(jobs, ffmpeg, sample_rate, workers):
    """Convert the container files among ``jobs`` with ffmpeg; return failures by job label."""
    containers = _needs_ffmpeg(jobs)
    if not containers or ffmpeg is None:
        return {}
    failures = audio_checks.convert_files(
        [(job.source, job.converted) for job in containers],
        ffmpeg,
        sample_rate=sample_rate,
        workers=workers,
    )
    return {job.label: failures[job.source] for job in containers}


def _check_files(pairs, options, num_workers):
    """Check (and convert where needed) ``(source, converted)`` pairs; return their checks."""
    check = functools.partial(
        _check_one,
        sample_rate=options["sample_rate"],
        min_duration=options["min_duration"],
        silence_threshold=options["silence_threshold"],
        ffmpeg=None,  # containers were converted before (convert_files), or cannot be
    )
    progress = functools.partial(tqdm, total=len(pairs), desc="Checking audio", unit=" files")
    if num_workers > 1:
        with multiprocessing.Pool(num_workers) as pool:
            return list(progress(pool.imap(check, pairs, chunksize=64)))
    return list(progress(map(check, pairs)))


def _check_one(pair, **options):
    """Check one ``(source, converted)`` pair of paths (picklable for the worker pool)."""
    return check_audio_file(*pair, **options)


def _usable_utterances(jobs, report, options, num_workers, ffmpeg=None, convert_workers=1):
    """Convert and check every job; return the manifest rows of the usable files, by utterance ID.

    Each file with a problem gets its entry in ``report`` (modified in place, keyed by
    the job's label); a container converted with ffmpeg is no problem and gets none.

    Returns
    -------
    utterances : dict
        Utterance ID -> row of ``train_utts.csv`` / ``test.csv``.
    converted_with_ffmpeg : int
        How many container files were converted with ffmpeg (now or by an earlier run).
    """
    failures = _convert_files(jobs, ffmpeg, options["sample_rate"], convert_workers)
    for job in jobs:
        if failures.get(job.label):
            problem = f"unreadable (ffmpeg failed: {failures[job.label]})"
            report[job.label] = _entry(job.label, problem, "skipped")
    to_check = [job for job in jobs if not failures.get(job.label)]
    pairs = [
        (job.converted, job.converted) if job.label in failures else (job.source, job.converted)
        for job in to_check
    ]
    checks = _check_files(pairs, options, num_workers)
    utterances = {}
    for job, check in zip(to_check, checks):
        if check.usable:
            utterances[job.utt_id] = _utterance_row(job, check, options["sample_rate"])
        if check.problem:
            problem = check.problem
            if job.label in failures:
                problem = f"{Path(job.source).suffix.lower().lstrip('.')} container, {problem}"
            report[job.label] = _entry(job.label, problem, check.action)
    return utterances, sum(not failure for failure in failures.values())


def _utterance_row(job, check, sample_rate):
    """Return the manifest row of a usable file."""
    return {
        "ID": job.utt_id,
        "duration": round(check.num_samples / sample_rate, 4),
        "wav": str(Path(check.wav).resolve()),
        "start": 0,
        "stop": check.num_samples,
        "spk_id": job.speaker,
        "session": job.session,
    }
