"""The synthetic data of one size of the scale bench, where the recipe's cluster stage reads it.

A size's folder is a recipe run folder (:class:`camsat_lobes.pipeline.RunLayout`) holding
only what the cluster stage reads: round 1's embeddings (``round1/embeddings/train/``:
``ids.txt``, ``embeddings.npy``, ``views.npy``) and the manifest of the training
utterances (``save/data/train_utts.csv``, columns ``ID`` and ``spk_id``), plus the true
labels as ``labels.npy`` for k-means. The embeddings are ``make_embeddings`` of
``bench/clustering.py``: speaker centres on the unit sphere, sessions as shared offsets,
per-utterance noise and V perturbed views; N / 182 speakers by default (about VoxCeleb2's
5,994 at 1.09 M points).

The parent process computes the paths (:func:`size_paths`, which imports the package's
pipeline); the child that writes the data (:func:`make_data`) only receives them, so its
imports and peak memory stay those of the generator.
"""

import time

from asnorm import peak_rss_mib

#: Utterances per speaker of the default speaker count (VoxCeleb2 dev: 1,092,009 / 5,994).
UTTERANCES_PER_SPEAKER = 182
#: The system the cluster stage runs (its folder under ``round1/systems``).
SYSTEM = "camsat"


def default_speakers(n_points):
    """Speaker count of a size: one speaker per 182 points (5,994 at 1.09 M), at least 2.

    Arguments
    ---------
    n_points : int
        Number of points.

    Returns
    -------
    int
        The number of synthetic speakers.

    Example
    -------
    >>> default_speakers(1_090_000), default_speakers(100)
    (5989, 2)
    """
    return max(2, round(n_points / UTTERANCES_PER_SPEAKER))


def size_paths(folder):
    """Paths of a size's files, laid out as the recipe lays out a run folder.

    Arguments
    ---------
    folder : str or pathlib.Path
        The size's folder (the run's ``output_folder``).

    Returns
    -------
    dict
        Strings: ``output_folder``; ``embeddings`` (round 1's ``embeddings/train``
        folder: ``ids.txt``, ``embeddings.npy``, ``views.npy``); ``manifest`` (the
        ``train_utts`` manifest); ``labels`` (the true labels, ``labels.npy``, for
        k-means); ``system`` (the folder where the stage writes the CAMSAT system).

    Example
    -------
    >>> paths = size_paths("/tmp/size")
    >>> paths["embeddings"], paths["manifest"]
    ('/tmp/size/round1/embeddings/train', '/tmp/size/save/data/train_utts.csv')
    >>> paths["system"]
    '/tmp/size/round1/systems/camsat'
    """
    from camsat_lobes.pipeline import RunLayout

    layout = RunLayout(folder)
    return {
        "output_folder": str(layout.root),
        "embeddings": str(layout.embeddings(1) / "train"),
        "manifest": str(layout.manifest("train_utts")),
        "labels": str(layout.root / "labels.npy"),
        "system": str(layout.system(1, SYSTEM)),
    }


def make_data(settings, n_points, paths):
    """Generate a size's embeddings and views and write them as the extract stage does.

    Arguments
    ---------
    settings : dict
        The bench's options (``dim``, ``views``, ``speakers``, ``seed``).
    n_points : int
        Number of points N.
    paths : dict
        The size's paths (:func:`size_paths`).

    Returns
    -------
    dict
        ``data_s`` (generation and writing), ``data_imports_rss_mib`` (after the
        imports), ``data_peak_rss_mib``, ``speakers`` and ``work_s``.

    Example
    -------
    >>> import pathlib
    >>> paths = size_paths(getfixture("tmp_path"))
    >>> settings = {"dim": 8, "views": 2, "speakers": None, "seed": 0}
    >>> out = make_data(settings, 50, paths)
    >>> out["speakers"], pathlib.Path(paths["labels"]).is_file()
    (2, True)
    """
    import pathlib

    import numpy as np
    from clustering import make_embeddings

    from camsat_lobes.extract import EMBEDDINGS_FILE, IDS_FILE, VIEWS_FILE

    imports_rss = peak_rss_mib()
    start = time.perf_counter()
    speakers = settings["speakers"] or default_speakers(n_points)
    x, views, labels = make_embeddings(
        n_points, settings["dim"], speakers, settings["views"], seed=settings["seed"]
    )
    embeddings = pathlib.Path(paths["embeddings"])
    manifest = pathlib.Path(paths["manifest"])
    embeddings.mkdir(parents=True, exist_ok=True)
    manifest.parent.mkdir(parents=True, exist_ok=True)
    np.save(embeddings / EMBEDDINGS_FILE, x)
    np.save(embeddings / VIEWS_FILE, views)
    np.save(paths["labels"], labels)
    ids = [f"utt{i:07d}" for i in range(n_points)]
    (embeddings / IDS_FILE).write_text("".join(f"{utt}\n" for utt in ids))
    manifest.write_text(
        "ID,spk_id\n"
        + "".join(f"{utt},spk{label:05d}\n" for utt, label in zip(ids, labels.tolist()))
    )
    seconds = time.perf_counter() - start
    return {
        "data_s": seconds,
        "data_imports_rss_mib": imports_rss,
        "data_peak_rss_mib": peak_rss_mib(),
        "speakers": speakers,
        "work_s": seconds,
    }
