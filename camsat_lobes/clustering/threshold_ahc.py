"""Cosine AHC stopped by a threshold, then cluster hygiene: Hyperion's pseudo-labels.

Hyperion's ``egs/voxceleb/ssl.v1`` clusters DINO embeddings with agglomerative
clustering on cosine scores (average linkage), after a k-means pre-clustering
into N/4 centroids, and stops merging at a score threshold, so the number of
speakers is found, not set. It then keeps the reliable part: clusters of 8 to 50
members, and points whose posterior for their own cluster is at least 0.9.
Everything else is left out (label -1): no network trains on it.

Authors
 * camsat contributors 2026
"""

import logging

import numpy as np
from scipy.cluster.hierarchy import fcluster
from scipy.cluster.hierarchy import linkage as scipy_linkage
from scipy.spatial.distance import pdist

from .baselines import KMeansClusterer
from .geometry import cluster_means, l2_normalize
from .result import ClusteringResult
from .validation import check_embeddings

__all__ = ["ThresholdAHCClusterer", "own_cluster_posterior"]

logger = logging.getLogger(__name__)

LINKAGES = ("average", "complete", "single")
_POSTERIOR_ENTRIES_PER_CHUNK = 16_000_000  # rows × clusters of the score block


class ThresholdAHCClusterer:
    """Cosine AHC stopped at a similarity threshold, with size and confidence filters.

    1. Above ``max_points`` points, spherical k-means (faiss) first groups them
       into ``N // samples_per_precluster`` centroids (Hyperion: N/4), and the AHC
       runs on the centroids; each point takes its centroid's cluster.
    2. AHC on cosine distances, ``1 - cos``, with ``linkage`` (Hyperion: average),
       merging while the linkage similarity is at least ``threshold``. No cluster
       count is set: raising the threshold stops merging earlier and gives more,
       purer clusters. ``n_clusters`` is None for this reason.
    3. Hygiene, on the AHC clusters: clusters with fewer than ``min_size`` or more
       than ``max_size`` members are dropped, and so is every point whose
       posterior for its own cluster is below ``min_confidence``.

    The posterior is a cosine softmax over the mean directions of all AHC
    clusters, ``softmax_k(cos(x, c_k) / temperature)`` (see
    :func:`own_cluster_posterior`), where Hyperion fits a diagonal GMM. The
    softmax is the posterior of a mixture of von Mises-Fisher distributions with
    equal weights and concentration ``1 / temperature``: it lives in the cosine
    geometry of the AHC and of the scoring, and needs no covariance estimate,
    which a diagonal GMM has to make for each cluster from as few as 8 members in
    192 dimensions. The default temperature, 1/30, is the inverse of the scale of
    the AAM loss that trains on these labels: a point is kept when a cosine
    classifier at that scale would give its own cluster at least ``min_confidence``.

    Dropped points get label -1. Kept clusters are numbered 0..K-1 in the order of
    the AHC's clusters, and their centroids are the means of their kept points.

    Arguments
    ---------
    threshold : float
        Cosine similarity at which merging stops, in [-1, 1] (Hyperion: 0.8 on
        DINO embeddings; it depends on the encoder).
    linkage : str
        ``"average"`` (Hyperion's), ``"complete"`` or ``"single"``.
    min_size : int
        Smallest cluster kept (Hyperion: 8).
    max_size : int, optional
        Largest cluster kept (Hyperion: 50); None keeps clusters of any size.
    min_confidence : float
        Smallest posterior of a point for its own cluster (Hyperion: 0.9); 0 keeps
        every point of a kept cluster.
    temperature : float
        Temperature of the cosine softmax.
    max_points : int
        Largest N clustered directly. The AHC holds two copies of the
        ``m (m - 1) / 2`` float64 distances between m points or centroids (0.8 GB
        at 10,000).
    samples_per_precluster : int
        Points per k-means centroid above ``max_points`` (Hyperion: 4).
    seed : int
        Seed of the k-means pre-clustering.
    niter : int
        Iterations of the k-means pre-clustering.
    normalize : bool
        L2-normalise the embeddings first. Cosines ignore the scale anyway; this
        only changes how much each point weighs in the k-means centroids and in
        the result's centroids (False when the recipe has normalised them).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = np.repeat(np.eye(3, 8), [10, 10, 3], axis=0) + 0.05 * rng.normal(size=(23, 8))
    >>> result = ThresholdAHCClusterer(0.5, min_size=5).fit(x.astype(np.float32))
    >>> result.n_clusters, result.labels.tolist().count(-1)  # the 3-point cluster dropped
    (2, 3)
    """

    #: No cluster count is set: the threshold decides it.
    n_clusters = None

    def __init__(
        self,
        threshold,
        linkage="average",
        min_size=8,
        max_size=50,
        min_confidence=0.9,
        temperature=1 / 30,
        max_points=10000,
        samples_per_precluster=4,
        seed=0,
        niter=20,
        normalize=True,
    ):
        if not -1.0 <= threshold <= 1.0:
            raise ValueError(
                f"threshold={threshold} is a cosine similarity and must lie in [-1, 1]; "
                "raise it for more (purer) clusters, lower it for fewer"
            )
        if linkage not in LINKAGES:
            raise ValueError(
                f"linkage={linkage!r}; use one of {', '.join(LINKAGES)} (Ward needs "
                "Euclidean distances, not a cosine threshold)"
            )
        if isinstance(min_size, bool) or not isinstance(min_size, int) or min_size < 1:
            raise ValueError(f"min_size={min_size!r} must be a positive integer (1 keeps all)")
        if max_size is not None and max_size < min_size:
            raise ValueError(
                f"max_size={max_size} is below min_size={min_size}: no cluster could be kept; "
                "raise max_size or set it to None"
            )
        if not 0.0 <= min_confidence < 1.0:
            raise ValueError(
                f"min_confidence={min_confidence} must lie in [0, 1) (0 keeps every point)"
            )
        if not temperature > 0:
            raise ValueError(f"temperature={temperature} must be positive")
        if samples_per_precluster < 1:
            raise ValueError(
                f"samples_per_precluster={samples_per_precluster} must be at least 1 "
                "(1: no pre-clustering)"
            )
        self.threshold = threshold
        self.linkage = linkage
        self.min_size = min_size
        self.max_size = max_size
        self.min_confidence = min_confidence
        self.temperature = temperature
        self.max_points = max_points
        self.samples_per_precluster = samples_per_precluster
        self.seed = seed
        self.niter = niter
        self.normalize = normalize

    def fit(self, embeddings, views=None, true_labels=None):
        """Cluster the embeddings and leave out the unreliable points.

        Arguments
        ---------
        embeddings : array_like
            N×D float array.
        views : array_like, optional
            Ignored.
        true_labels : array_like, optional
            Ignored.

        Returns
        -------
        ClusteringResult
            Labels (-1 for points left out) and the kept clusters' means as
            centroids.

        Raises
        ------
        ValueError
            On NaN/inf, a wrong shape, or when every point is left out (the message
            gives the counts, to choose which setting to relax).

        Example
        -------
        >>> x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
        >>> result = ThresholdAHCClusterer(-1.0, min_size=1, max_size=None).fit(x)
        >>> result.n_clusters, int(result.labels.min())  # -1 merges everything into one
        (1, 0)
        """
        x = check_embeddings(embeddings)
        if self.normalize:
            x = l2_normalize(x)
        units = l2_normalize(x)
        ahc_labels = self._ahc(x, units)
        codes = np.unique(ahc_labels, return_inverse=True)[1].astype(np.int64)
        n_ahc = int(codes.max()) + 1
        sizes = np.bincount(codes, minlength=n_ahc)
        size_ok = sizes >= self.min_size
        if self.max_size is not None:
            size_ok &= sizes <= self.max_size
        keep = size_ok[codes]
        confident = np.ones_like(keep)
        if self.min_confidence > 0:
            centres = l2_normalize(cluster_means(units, codes, n_ahc))
            posterior = own_cluster_posterior(units, centres, codes, self.temperature)
            confident = posterior >= self.min_confidence
            keep &= confident
        n, n_kept = keep.size, int(keep.sum())
        size_range = (
            f"at least {self.min_size}"
            if self.max_size is None
            else f"{self.min_size} to {self.max_size}"
        )
        summary = (
            f"AHC at threshold {self.threshold} made {n_ahc} clusters from {n} points; "
            f"{int(size_ok.sum())} clusters ({int(size_ok[codes].sum())} points) have "
            f"{size_range} members; {int((~confident).sum())} points have a posterior below "
            f"{self.min_confidence}"
        )
        if n_kept == 0:
            raise ValueError(
                f"every point was left out: {summary}. Relax the hygiene (min_size, max_size, "
                "min_confidence) or move the threshold"
            )
        logger.info("%s; %d points (%.1f %%) kept", summary, n_kept, 100.0 * n_kept / n)
        kept_ids, kept_codes = np.unique(codes[keep], return_inverse=True)
        labels = np.full(n, -1, dtype=np.int64)
        labels[keep] = kept_codes
        centroids = cluster_means(x[keep], kept_codes, kept_ids.size)
        return ClusteringResult(labels=labels, centroids=centroids)

    def _ahc(self, x, units):
        """Return the AHC cluster (1-based, as scipy's) of each point."""
        n = x.shape[0]
        assign = np.arange(n)
        points = units
        if n > self.max_points and self.samples_per_precluster > 1:
            m = max(2, n // self.samples_per_precluster)
            logger.info("threshold AHC: %d points pre-clustered into %d centroids", n, m)
            pre = KMeansClusterer(m, seed=self.seed, niter=self.niter)._fit_checked(x, m)
            counts = np.bincount(pre.labels, minlength=m)
            kept = np.flatnonzero(counts)
            lookup = np.full(m, -1, dtype=np.int64)
            lookup[kept] = np.arange(kept.size)
            assign = lookup[pre.labels]
            points = l2_normalize(pre.centroids[kept])
        if points.shape[0] == 1:
            return np.ones(n, dtype=np.int64)
        # For unit vectors, half the squared Euclidean distance is 1 - cos.
        distances = np.maximum(pdist(points.astype(np.float64), "sqeuclidean") / 2.0, 0.0)
        tree = scipy_linkage(distances, method=self.linkage)
        groups = fcluster(tree, t=1.0 - self.threshold, criterion="distance")
        return groups[assign]


def own_cluster_posterior(units, centres, labels, temperature):
    """Posterior of each point for its own cluster under a cosine softmax.

    ``p_i = softmax_k(cos(x_i, c_k) / temperature)[labels_i]``, computed in
    blocks of rows so that N × K never sits in memory at once.

    Arguments
    ---------
    units : numpy.ndarray
        (N, D) unit-norm points.
    centres : numpy.ndarray
        (K, D) unit-norm cluster directions.
    labels : numpy.ndarray
        (N,) cluster of each point, in 0..K-1.
    temperature : float
        Softmax temperature (the inverse of the cosine scale).

    Returns
    -------
    numpy.ndarray
        (N,) float64 posteriors in (0, 1].

    Example
    -------
    >>> centres = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> points = np.array([[1.0, 0.0], [0.6, 0.8]])
    >>> own_cluster_posterior(points, centres, np.array([0, 0]), 0.1).round(3).tolist()
    [1.0, 0.119]
    """
    units = np.asarray(units, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    out = np.empty(units.shape[0])
    block = max(1, _POSTERIOR_ENTRIES_PER_CHUNK // max(1, centres.shape[0]))
    for start in range(0, units.shape[0], block):
        rows = slice(start, start + block)
        logits = units[rows] @ centres.T / temperature
        top = logits.max(axis=1, keepdims=True)
        log_norm = top[:, 0] + np.log(np.exp(logits - top).sum(axis=1))
        own = logits[np.arange(logits.shape[0]), labels[rows]]
        out[rows] = np.exp(own - log_norm)
    return out
