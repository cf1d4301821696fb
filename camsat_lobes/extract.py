"""Embedding extraction for clustering, resumable and memory-mapped.

:func:`extract_embeddings` writes, for the utterances of a manifest and in its order:

- ``embeddings.npy``: ``N x D`` float32, one clean embedding per utterance;
- ``views.npy``: ``N x V x D`` float32, ``V`` embeddings of freshly augmented copies;
- ``ids.txt``: the utterance IDs, one per line.

A row's clean embedding does not depend on the batch it was computed in: the
encoders never let zero padding reach their network
(:func:`~camsat_lobes.encoders.base.embed_unpadded`), so it equals the embedding of
the file alone, whatever ``batch_size``. Within a batch, only utterances of the same
length in samples share a forward pass; rows are read longest first so that equal
lengths meet. With ``max_duration`` every longer utterance is cut to the same length,
and these then fill whole forward passes: that is the fast path at VoxCeleb scale,
where otherwise almost every utterance has a length of its own.

The arrays are memory-mapped and filled chunk by chunk; after each chunk they are
flushed and ``extraction_progress.json`` records how many rows are done. A killed run
restarts at the first unfinished chunk, so no row is lost or written twice, and each
chunk's random draws depend only on the seed and the chunk number, so a resumed run
gives the same arrays as an uninterrupted one.

:func:`normalize_embeddings` prepares embeddings for clustering.

Authors
 * camsat contributors 2026
"""

import hashlib
import json
import logging
import os
import pathlib
import random

import numpy as np
import torch
from tqdm import tqdm

from camsat_lobes.encoders.augmentation import (
    augment_independently,
    build_augmenter,
    restart_augmentation_streams,
)
from camsat_lobes.encoders.data import read_audio_columns, waveform_batches
from camsat_lobes.files import write_text

logger = logging.getLogger(__name__)

EMBEDDINGS_FILE = "embeddings.npy"
VIEWS_FILE = "views.npy"
IDS_FILE = "ids.txt"
PROGRESS_FILE = "extraction_progress.json"
NORMALIZATIONS = ("l2", "center", "std", "none")


def extract_embeddings(
    encoder,
    manifest_csv,
    output_folder,
    n_views=4,
    augmenter=None,
    batch_size=16,
    chunk_size=512,
    max_duration=None,
    num_workers=0,
    seed=1234,
    progressbar=True,
):
    r"""Embed every utterance of a manifest, clean and in ``n_views`` augmented views.

    Clean embeddings are those of each file embedded alone, for any ``batch_size``
    (the views depend on the random draws, hence on the batching). Utterances of the
    same length share one forward pass; cutting with ``max_duration`` makes the long
    ones equal in length, the fast path on large corpora.

    Arguments
    ---------
    encoder : camsat_lobes.encoders.base.Encoder
        A fitted encoder (``embed``, ``embedding_dim``).
    manifest_csv : str or pathlib.Path
        Manifest with ``ID``, ``wav`` (and ``start``, ``stop``, ``duration``).
    output_folder : str or pathlib.Path
        Where the arrays, ``ids.txt`` and the progress file go.
    n_views : int
        Augmented views per utterance (0 writes a ``N x 0 x D`` views array).
    augmenter : callable, optional
        ``augmenter(wavs, lengths) -> (wavs, lengths)``, applied to each waveform
        separately; default: :func:`~camsat_lobes.encoders.augmentation.build_augmenter`
        without augmentation sets (synthetic noise and equalisation only).
    batch_size : int
        Utterances read per batch; those of equal length are embedded in one forward
        pass, the others separately (padding never reaches the encoder).
    chunk_size : int
        Rows written between two progress updates.
    max_duration : float, optional
        Utterances longer than this (seconds) are cut to their first
        ``max_duration`` seconds; the cut ones all have the same length and are
        embedded together, batch by batch.
    num_workers : int
        Audio-loading processes.
    seed : int
        Seed of the augmentations (chunk ``k`` uses ``seed + k``).
    progressbar : bool
        Whether to show a tqdm bar.

    Returns
    -------
    dict
        Paths ``embeddings``, ``views``, ``ids`` (strings).

    Example
    -------
    >>> import soundfile
    >>> from camsat_lobes.encoders import IVectorEncoder
    >>> folder = getfixture("tmp_path")
    >>> rows = ["ID,duration,wav,start,stop"]
    >>> for i in range(3):
    ...     soundfile.write(str(folder / f"{i}.wav"), np.random.randn(8000) * 0.1, 16000)
    ...     rows.append(f"utt{i},0.5,{folder}/{i}.wav,0,8000")
    >>> _ = (folder / "m.csv").write_text("\n".join(rows) + "\n")
    >>> paths = extract_embeddings(IVectorEncoder(n_components=2, rank=4), folder / "m.csv",
    ...                            folder / "out", n_views=2, progressbar=False)
    >>> np.load(paths["embeddings"]).shape, np.load(paths["views"]).shape
    ((3, 4), (3, 2, 4))
    >>> open(paths["ids"]).read().split()
    ['utt0', 'utt1', 'utt2']
    """
    output_folder = pathlib.Path(output_folder)
    output_folder.mkdir(parents=True, exist_ok=True)
    data = read_audio_columns(manifest_csv)
    ids = list(data)
    paths = _output_paths(output_folder)
    job = _job(manifest_csv, ids, encoder, n_views, chunk_size, batch_size, max_duration, seed)
    progress_path = output_folder / PROGRESS_FILE
    done = _rows_done(progress_path, job, paths)
    if done == len(ids):
        logger.info("Embeddings in %s are complete; nothing to extract", output_folder)
        return paths
    embeddings, views = _open_arrays(output_folder, paths, ids, n_views, job["dim"], done)
    if n_views > 0 and augmenter is None:
        augmenter = build_augmenter(sample_rate=encoder.sample_rate)
    max_samples = None if max_duration is None else int(max_duration * encoder.sample_rate)
    durations = [row["duration"] for row in data.values()]
    bar = tqdm(total=len(ids), initial=done, desc="Embedding", unit="utt", disable=not progressbar)
    for chunk_start in range(done, len(ids), chunk_size):
        chunk_end = min(chunk_start + chunk_size, len(ids))
        rows = _longest_first(range(chunk_start, chunk_end), durations)
        with _seeded(seed + chunk_start // chunk_size):
            if augmenter is not None:
                restart_augmentation_streams(augmenter)
            for batch in waveform_batches(data, rows, batch_size, num_workers):
                _embed_batch(encoder, batch, data, embeddings, views, augmenter, max_samples)
                bar.update(len(batch.id))
        _record_progress(progress_path, job, chunk_end, embeddings, views)
    bar.close()
    del embeddings, views
    return paths


def load_embeddings(folder):
    """Open the arrays written by :func:`extract_embeddings` (read-only memory maps).

    Arguments
    ---------
    folder : str or pathlib.Path
        Output folder of an extraction.

    Returns
    -------
    embeddings : numpy.ndarray
        ``N x D``.
    views : numpy.ndarray
        ``N x V x D``.
    ids : list of str
        Utterance IDs in row order.

    Example
    -------
    >>> load_embeddings(getfixture("tmp_path"))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: No complete extraction in ...
    """
    folder = pathlib.Path(folder)
    progress_path = folder / PROGRESS_FILE
    progress = (
        json.loads(progress_path.read_text(encoding="utf-8")) if progress_path.is_file() else {}
    )
    if progress.get("rows_done") is None or progress["rows_done"] < progress["n_rows"]:
        raise FileNotFoundError(
            f"No complete extraction in {folder}: run extract_embeddings to (re)start it."
        )
    embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")
    views = np.load(folder / VIEWS_FILE, mmap_mode="r")
    ids = (folder / IDS_FILE).read_text(encoding="utf-8").split("\n")[:-1]
    return embeddings, views, ids


def normalize_embeddings(x, method="l2", reference=None, eps=1e-8):
    """Normalise embeddings before clustering.

    Arguments
    ---------
    x : array_like
        Embeddings, shape ``(..., D)`` (e.g. ``N x D`` or views ``N x V x D``).
    method : str
        ``"l2"``: each vector divided by its Euclidean norm; ``"center"``: the mean
        embedding subtracted, then each vector divided by its norm (the geometry of
        the recipe's scores, which subtract the training mean before the cosine);
        ``"std"``: each feature shifted and scaled to zero mean and unit variance;
        ``"none"``: unchanged.
    reference : array_like, optional
        Embeddings whose per-feature statistics ``"center"`` and ``"std"`` use
        (default: ``x``), so that views are shifted with the statistics of the clean
        embeddings.
    eps : float
        Floor of norms and standard deviations.

    Returns
    -------
    numpy.ndarray
        float32 array of the shape of ``x``.

    Example
    -------
    >>> x = np.array([[3.0, 4.0], [1.0, 0.0]])
    >>> normalize_embeddings(x, "l2").tolist()
    [[0.6000000238418579, 0.800000011920929], [1.0, 0.0]]
    >>> normalize_embeddings(x, "center").astype(float).round(4).tolist()
    [[0.4472, 0.8944], [-0.4472, -0.8944]]
    >>> normalize_embeddings(x, "std").tolist()
    [[1.0, 1.0], [-1.0, -1.0]]
    """
    if method not in NORMALIZATIONS:
        raise ValueError(f"Unknown normalisation {method!r}; use one of {NORMALIZATIONS}.")
    x = np.asarray(x, dtype=np.float32)
    if method == "none":
        return x.copy()
    if method == "l2":
        norms = np.linalg.norm(x, axis=-1, keepdims=True)
        return (x / np.maximum(norms, eps)).astype(np.float32)
    reference = x if reference is None else np.asarray(reference, dtype=np.float32)
    flat = reference.reshape(-1, reference.shape[-1]).astype(np.float64)
    if flat.shape[-1] != x.shape[-1]:
        raise ValueError(
            f"reference has {flat.shape[-1]} features but the embeddings have {x.shape[-1]}."
        )
    mean = flat.mean(axis=0)
    if method == "center":
        return normalize_embeddings(x - mean, "l2", eps=eps)
    return ((x - mean) / np.maximum(flat.std(axis=0), eps)).astype(np.float32)


def _rows_done(progress_path, job, paths):
    """Rows already extracted for this very job (0 when anything differs)."""
    if not progress_path.is_file():
        return 0
    try:
        progress = json.loads(progress_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        logger.warning("Unreadable %s; starting the extraction again", progress_path)
        return 0
    rows_done = progress.pop("rows_done", 0)
    if progress != job:
        changed = sorted(k for k in job if progress.get(k) != job[k])
        logger.warning("Extraction settings changed (%s); starting again", ", ".join(changed))
        return 0
    if not all(os.path.isfile(path) for path in paths.values()):
        logger.warning("Output files of %s are missing; starting again", progress_path)
        return 0
    return int(rows_done)


def _output_paths(output_folder):
    """Return the paths (str) of the arrays and of ``ids.txt``."""
    return {
        "embeddings": str(output_folder / EMBEDDINGS_FILE),
        "views": str(output_folder / VIEWS_FILE),
        "ids": str(output_folder / IDS_FILE),
    }


def _job(manifest_csv, ids, encoder, n_views, chunk_size, batch_size, max_duration, seed):
    """Describe the extraction: a run resumes only an extraction with the same description."""
    return {
        "manifest": str(manifest_csv),
        "ids_sha1": hashlib.sha1("\n".join(ids).encode()).hexdigest(),
        "n_rows": len(ids),
        "n_views": int(n_views),
        "dim": int(encoder.embedding_dim),
        "chunk_size": int(chunk_size),
        "batch_size": int(batch_size),
        "max_duration": max_duration,
        "seed": int(seed),
    }


def _open_arrays(output_folder, paths, ids, n_views, dim, done):
    """Open the memory-mapped arrays: new ones (writing ``ids.txt``), or resumed at row ``done``."""
    if done == 0:
        write_text(output_folder / IDS_FILE, "".join(f"{utt_id}\n" for utt_id in ids))
        mode = "w+"
    else:
        logger.info("Resuming extraction in %s at row %d of %d", output_folder, done, len(ids))
        mode = "r+"
    embeddings = np.lib.format.open_memmap(
        paths["embeddings"], mode=mode, dtype=np.float32, shape=(len(ids), dim)
    )
    views = np.lib.format.open_memmap(
        paths["views"], mode=mode, dtype=np.float32, shape=(len(ids), n_views, dim)
    )
    return embeddings, views


def _longest_first(rows, durations):
    """Order rows longest first, ties in manifest order, so that equal lengths share batches.

    The order is deterministic, and the utterances cut to ``max_duration`` sit together.
    """
    return sorted(rows, key=lambda i: -durations[i])


def _embed_batch(encoder, batch, data, embeddings, views, augmenter, max_samples):
    """Write the clean embeddings and the augmented views of one batch into their rows."""
    wavs, lengths = _cut(batch.sig.data, batch.sig.lengths, max_samples)
    batch_rows = [data[utt_id]["index"] for utt_id in batch.id]
    embeddings[batch_rows] = _embed_checked(encoder, wavs, lengths, batch.id, data)
    for view in range(views.shape[1]):
        augmented, aug_lengths = augment_independently(augmenter, wavs, lengths)
        views[batch_rows, view] = _embed_checked(
            encoder, augmented, aug_lengths, batch.id, data, view=view
        )


def _record_progress(progress_path, job, rows_done, embeddings, views):
    """Flush the arrays, then record that the rows before ``rows_done`` are finished."""
    embeddings.flush()
    views.flush()
    write_text(progress_path, json.dumps(dict(job, rows_done=rows_done), indent=1))


class _seeded:
    """Seed Python and torch for a block, restoring their previous states after it."""

    def __init__(self, seed):
        self.seed = seed

    def __enter__(self):
        self.python_state = random.getstate()
        self.torch_state = torch.random.get_rng_state()
        random.seed(self.seed)
        torch.manual_seed(self.seed)

    def __exit__(self, *exc):
        random.setstate(self.python_state)
        torch.random.set_rng_state(self.torch_state)


def _cut(wavs, lengths, max_samples):
    """Cut a padded batch to at most ``max_samples`` samples."""
    if max_samples is None or wavs.shape[1] <= max_samples:
        return wavs, lengths
    absolute = (lengths * wavs.shape[1]).round().clamp(max=max_samples)
    return wavs[:, :max_samples], absolute / max_samples


def _embed_checked(encoder, wavs, lengths, batch_ids, data, view=None):
    """Embed a batch and refuse non-finite embeddings, naming the utterance."""
    embeddings = encoder.embed(wavs, lengths).detach().float().cpu().numpy()
    bad = ~np.isfinite(embeddings).all(axis=1)
    if bad.any():
        utt_id = batch_ids[int(np.flatnonzero(bad)[0])]
        which = "clean embedding" if view is None else f"augmented view {view}"
        raise FloatingPointError(
            f"The encoder returned a non-finite {which} for utterance {utt_id} "
            f"({data[utt_id]['wav']}); check that file (silence, clipping) and the encoder's "
            "weights. Rows finished before it are kept; run again to resume."
        )
    return embeddings
