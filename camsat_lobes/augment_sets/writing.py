"""What the synthetic and the downloaded sets share: item streams, files, CSVs.

Every item of a set draws from its own random stream (:func:`item_rng`), so an item
does not depend on how many came before it. :func:`write_set` writes the items as
wav files and lists them in the CSV that SpeechBrain's ``AddNoise`` and
``AddReverb`` read (:data:`CSV_HEADER`); the options a set was made with are
recorded in :data:`OPTIONS_FILE`, with long file lists reduced to
:func:`path_list_fingerprint`.

Authors
 * camsat contributors 2026
"""

import hashlib
import zlib

import numpy as np
import soundfile as sf
from tqdm import tqdm

from camsat_lobes.files import write_csv

OPTIONS_FILE = "augmentation_options.json"
CSV_HEADER = ["ID", "duration", "wav", "wav_format", "wav_opts"]


def item_rng(seed, name, index):
    """Return the generator of item ``index`` of the set ``name`` (its own seeded stream).

    The stream is keyed by ``(seed, "augment_sets.<name>", index)``.

    Arguments
    ---------
    seed : int
        Seed of all the draws.
    name : str
        The set or the draw (``"noise"``, ``"rir"``, ``"musan_babble"``, ...).
    index : int
        Number of the item in its set.

    Returns
    -------
    numpy.random.Generator
        The item's generator.

    Example
    -------
    >>> item_rng(1234, "noise", 3).random() == item_rng(1234, "noise", 3).random()
    True
    >>> item_rng(1234, "noise", 3).random() == item_rng(1234, "rir", 3).random()
    False
    """
    tag = zlib.crc32(f"augment_sets.{name}".encode())
    return np.random.default_rng(np.random.SeedSequence([int(seed), tag, int(index)]))


def write_set(csv_path, folder, make_item, count, sample_rate, subtype="PCM_16"):
    """Write items ``make_item(index) -> (ID, signal)`` as wav files listed in a CSV.

    Arguments
    ---------
    csv_path : str or pathlib.Path
        The CSV to write (columns :data:`CSV_HEADER`, absolute paths).
    folder : pathlib.Path
        Where the wav files go (``<ID>.wav``); created when missing.
    make_item : callable
        ``make_item(index) -> (ID, signal)`` for ``index`` in ``range(count)``.
    count : int
        Number of items.
    sample_rate : int
        Sample rate of the files.
    subtype : str
        soundfile subtype of the files (``"FLOAT"`` for impulse responses).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> tmp = tempfile.TemporaryDirectory()
    >>> folder = Path(tmp.name)
    >>> def quiet(index):
    ...     return f"quiet_{index}", np.full(800, 0.01, dtype=np.float32)
    >>> write_set(folder / "quiet.csv", folder / "quiet", quiet, 2, 16000)
    >>> open(folder / "quiet.csv").read().splitlines()[2].split(",")[:2]
    ['quiet_1', '0.0500']
    >>> tmp.cleanup()
    """
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index in tqdm(range(count), desc=f"Writing {folder.name}", unit=" files"):
        item_id, signal = make_item(index)
        path = folder / f"{item_id}.wav"
        sf.write(path, signal, sample_rate, subtype=subtype)
        rows.append([item_id, f"{len(signal) / sample_rate:.4f}", str(path), "wav", ""])
    write_csv(csv_path, CSV_HEADER, rows)


def path_list_fingerprint(paths):
    """Return the number of paths and the SHA-1 of their sorted list (order does not matter).

    Arguments
    ---------
    paths : list of str
        The files a set was drawn from.

    Returns
    -------
    dict
        ``count`` and ``sha1``.

    Example
    -------
    >>> path_list_fingerprint(["b.wav", "a.wav"]) == path_list_fingerprint(["a.wav", "b.wav"])
    True
    >>> path_list_fingerprint(["a.wav"])["count"]
    1
    """
    text = "\n".join(sorted(paths))
    return {"count": len(paths), "sha1": hashlib.sha1(text.encode()).hexdigest()}
