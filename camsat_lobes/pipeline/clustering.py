"""The cluster stage: pseudo-labels of every system, with their clustering metrics.

Each system normalises the round's embeddings once (``embedding_norm``, or its own),
clusters them, and writes ``pseudo_labels.csv`` (-1 for an utterance its clusterer
left out), ``clustering_metrics.json`` (against the true speakers, read only here to
score the clustering) and ``history.json`` (per-epoch curves of the deep clusterers).
The true-label reference writes the true speakers as its labels. A system with
``labels_from`` takes another system's labels (the same pseudo-labels, trained
otherwise).

Authors
 * camsat contributors 2026
"""

import json
import logging
import shutil

import numpy as np

from camsat_lobes.clustering import clustering_metrics, write_pseudo_labels
from camsat_lobes.extract import normalize_embeddings
from camsat_lobes.files import write_text

from .layout import TRUE_LABELS
from .trials import read_column

__all__ = ["CLUSTERING_FILES", "cluster", "copy_clustering"]

logger = logging.getLogger(__name__)

#: What the cluster stage leaves in a system's folder (copied for ``labels_from``).
CLUSTERING_FILES = (
    "pseudo_labels.csv",
    "clustering_metrics.json",
    "history.json",
    "collapsed.json",
)


def cluster(run, round_index, embedding_norm="l2", min_cluster_fraction=0.1):
    """Cluster the round's embeddings with every system and score the pseudo-labels.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run (its systems are the clusterings).
    round_index : int
        The round.
    embedding_norm : str
        Normalisation of the embeddings before clustering (a system's own
        ``embedding_norm`` wins): ``l2``, ``center``, ``std`` or ``none``.
    min_cluster_fraction : float
        A clustering that keeps fewer clusters than this fraction of the speakers (and
        always fewer than 2) cannot train a network: the run stops, or a study sets it
        aside.
    """
    folder = run.layout.embeddings(round_index) / "train"
    ids = (folder / "ids.txt").read_text().split()
    manifest = run.layout.manifest("train_utts")
    speaker_of = dict(zip(read_column(manifest, "ID"), read_column(manifest, "spk_id")))
    true_labels = np.unique([speaker_of[i] for i in ids], return_inverse=True)[1]
    embeddings = np.load(folder / "embeddings.npy")
    views = np.load(folder / "views.npy")
    for system in run.labelled_systems():
        run.once(
            run.record("cluster", round_index, system),
            lambda system=system: _cluster_system(
                run,
                round_index,
                system,
                (ids, embeddings, views, true_labels),
                embedding_norm,
                min_cluster_fraction,
            ),
        )


def _cluster_system(run, round_index, system, data, embedding_norm, min_cluster_fraction):
    """Cluster with one system, then save its pseudo-labels and metrics."""
    ids, embeddings, views, true_labels = data
    folder = run.layout.system(round_index, system)
    source = run.system_option(system, "labels_from", None)
    if source is not None:
        copy_clustering(run.layout.system(round_index, source), folder)
        return
    norm = run.system_option(system, "embedding_norm", embedding_norm)
    x = normalize_embeddings(embeddings, norm)
    x_views = normalize_embeddings(views, norm, reference=embeddings) if views.shape[1] else None
    if system == TRUE_LABELS:
        labels, history, k_initial = true_labels, [], int(true_labels.max() + 1)
    else:
        clusterer = run.systems[system]["clusterer"]
        result = clusterer.fit(x, views=x_views, true_labels=true_labels)
        labels, history, k_initial = result.labels, result.history, clusterer.n_clusters
    labels = _contiguous(labels)
    problem = _collapse(
        system, int(labels.max()) + 1, run.hparams["n_speakers"], min_cluster_fraction
    )
    if problem and not run.skip_collapsed:
        raise RuntimeError(problem)
    if problem:
        logger.warning("%s Set aside: no network is trained on it.", problem)
        write_text(folder / "collapsed.json", json.dumps({"problem": problem}))
        return
    write_pseudo_labels(folder / "pseudo_labels.csv", ids, labels)
    metrics = clustering_metrics(labels, true_labels, embeddings=x)
    metrics["k_initial"] = k_initial
    write_text(folder / "clustering_metrics.json", json.dumps(metrics, indent=2))
    write_text(folder / "history.json", json.dumps(history, indent=2))


def _contiguous(labels):
    """Renumber the kept clusters 0..K-1 in order; -1 (left out) stays -1."""
    labels = np.asarray(labels)
    kept = labels >= 0
    result = np.full(labels.shape, -1, dtype=np.int64)
    result[kept] = np.unique(labels[kept], return_inverse=True)[1]
    return result


def copy_clustering(source, folder):
    """Give a system the pseudo-labels (and metrics) of an already clustered one.

    Arguments
    ---------
    source : pathlib.Path
        The clustered system's folder (its cluster stage must be done).
    folder : pathlib.Path
        The folder of the system that shares its labels.

    Example
    -------
    >>> source, folder = getfixture("tmp_path") / "kmeans", getfixture("tmp_path") / "sharer"
    >>> folder.mkdir()
    >>> copy_clustering(source, folder)
    Traceback (most recent call last):
    ...
    RuntimeError: 'sharer' takes its labels from 'kmeans' (labels_from), which is not ...
    """
    if not (source / "done.json").exists():
        raise RuntimeError(
            f"{folder.name!r} takes its labels from {source.name!r} (labels_from), which is "
            "not clustered yet: list it before the systems that share its labels."
        )
    for name in CLUSTERING_FILES:
        if (source / name).exists():
            shutil.copy2(source / name, folder / name)


def _collapse(system, n_found, expected, min_cluster_fraction):
    """Say why a clustering kept too few clusters to train on (None when it is fine)."""
    needed = max(2, int(np.ceil(min_cluster_fraction * expected)))
    if n_found >= needed:
        return None
    return (
        f"system {system!r} kept {n_found} cluster(s), fewer than {needed} "
        f"(min_cluster_fraction={min_cluster_fraction} of the {expected} "
        "expected speakers): its pseudo-labels cannot train a speaker network. Raise the "
        "weight of the marginal entropy (camsat_mu, the system's `mu`) or the initial number "
        "of clusters (n_clusters), then run again; the finished stages are kept."
    )
