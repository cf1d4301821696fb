"""Embedding-space helpers shared by the clusterers.

Normalisation, cluster means and nearest neighbours (faiss, on the GPU when
faiss-gpu sees one).

Authors
 * camsat contributors 2026
"""

import logging

import faiss
import numpy as np
import scipy.sparse as sp

__all__ = ["l2_normalize", "cluster_means", "faiss_gpu_available", "nearest_neighbours"]

logger = logging.getLogger(__name__)


def l2_normalize(x):
    """Scale each row to unit Euclidean norm (all-zero rows stay zero).

    Arguments
    ---------
    x : numpy.ndarray
        Array whose last axis holds the vectors.

    Returns
    -------
    numpy.ndarray
        float32 array of the same shape.

    Example
    -------
    >>> l2_normalize(np.array([[3.0, 4.0], [0.0, 0.0]]))
    array([[0.6, 0.8],
           [0. , 0. ]], dtype=float32)
    """
    x = np.asarray(x, dtype=np.float32)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return (x / np.maximum(norm, np.finfo(np.float32).tiny)).astype(np.float32)


def cluster_means(x, labels, n_clusters):
    """Mean of the points of each cluster (NaN rows for empty clusters).

    Arguments
    ---------
    x : numpy.ndarray
        Points, shape (N, D).
    labels : numpy.ndarray
        Cluster id of each point in [0, n_clusters).
    n_clusters : int
        Number of cluster ids.

    Returns
    -------
    numpy.ndarray
        float32 array of shape (n_clusters, D).

    Example
    -------
    >>> cluster_means(np.array([[0.0], [2.0], [5.0]]), np.array([0, 0, 1]), 2)
    array([[1.],
           [5.]], dtype=float32)
    """
    labels = np.asarray(labels, dtype=np.int64)
    one_hot = sp.csr_matrix(
        (np.ones(labels.size), (labels, np.arange(labels.size))), shape=(n_clusters, labels.size)
    )
    sums = one_hot @ np.asarray(x, dtype=np.float64)
    counts = np.bincount(labels, minlength=n_clusters).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts[:, None]).astype(np.float32)


def faiss_gpu_available():
    """Whether faiss was built with GPU support and sees at least one GPU.

    Returns
    -------
    bool
        True with faiss-gpu and a visible GPU.

    Example
    -------
    >>> isinstance(faiss_gpu_available(), bool)
    True
    """
    return hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0


def nearest_neighbours(x, k, exact_max=100_000, seed=0):
    """Euclidean k nearest neighbours of every point among the others.

    Exact (``IndexFlatL2``) up to ``exact_max`` points; above that an inverted
    file index (``IndexIVFFlat`` with about 4·√N lists, 32 probed), which keeps
    a million points tractable at a small loss of recall.

    Arguments
    ---------
    x : numpy.ndarray
        Points, shape (N, D), float32.
    k : int
        Number of neighbours (the point itself excluded); needs N > k.
    exact_max : int
        Largest N searched exactly.
    seed : int
        Seed of the IVF training sample.

    Returns
    -------
    distances : numpy.ndarray
        (N, k) float32 Euclidean distances, nearest first.
    indices : numpy.ndarray
        (N, k) int64 neighbour indices.

    Example
    -------
    >>> dist, idx = nearest_neighbours(np.array([[0.0], [1.0], [3.0]], dtype=np.float32), 1)
    >>> idx.ravel().tolist(), dist.ravel().tolist()
    ([1, 0, 1], [1.0, 1.0, 2.0])
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    if n <= k:
        raise ValueError(f"{k} neighbours asked for but only {n} points were given")
    if n <= exact_max:
        index = faiss.IndexFlatL2(dim)
    else:
        n_lists = int(4 * np.sqrt(n))
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, n_lists)
        sample = np.random.default_rng(seed).choice(n, size=min(n, 64 * n_lists), replace=False)
        index.train(x[np.sort(sample)])
        index.nprobe = 32
        logger.info("approximate %d-NN search over %d points (%d lists)", k, n, n_lists)
    if faiss_gpu_available():
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(x)
    sq_dist, idx = index.search(x, k + 1)
    if (idx < 0).any():
        row = int(np.flatnonzero((idx < 0).any(axis=1))[0])
        raise RuntimeError(
            f"the approximate search found fewer than {k} neighbours for point {row}; "
            f"raise exact_max above {n} to search exactly"
        )
    # Drop the point itself (moved last by a stable sort; the last column where absent).
    order = np.argsort(idx == np.arange(n)[:, None], axis=1, kind="stable")[:, :k]
    sq_dist = np.take_along_axis(sq_dist, order, axis=1)
    idx = np.take_along_axis(idx, order, axis=1)
    return np.sqrt(np.maximum(sq_dist, 0)).astype(np.float32), idx.astype(np.int64)
