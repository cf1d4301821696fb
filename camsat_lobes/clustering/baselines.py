"""Non-deep clustering baselines with the common ``fit`` interface.

- :class:`KMeansClusterer`: faiss k-means (spherical on L2-normalised
  embeddings by default; faiss on the GPU when faiss-gpu sees one).
- :class:`GMMClusterer`: scikit-learn Gaussian mixture (diagonal
  covariances), started from the faiss k-means solution.
- :class:`AHCClusterer`: agglomerative clustering. scikit-learn's
  implementation is quadratic in N, so above ``max_points`` the points are first
  over-clustered with k-means and the centroids merged with the same linkage,
  each weighted by its point count (see :func:`weighted_linkage`).

Every ``fit(embeddings, views=None, true_labels=None)`` returns a
:class:`ClusteringResult`; views and true labels are accepted for a uniform
interface and not used by these methods. Asking for more clusters than there are
points, or than there are distinct points (after the L2 normalisation when it is
on), is a ValueError in all three, which names the count (see
:func:`~camsat_lobes.clustering.validation.check_distinct_points`).

Authors
 * camsat contributors 2026
"""

import logging

import faiss
import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sklearn.mixture import GaussianMixture

from .geometry import cluster_means, faiss_gpu_available, l2_normalize
from .result import ClusteringResult
from .validation import check_distinct_points, check_embeddings, check_n_clusters

__all__ = ["KMeansClusterer", "GMMClusterer", "AHCClusterer", "weighted_linkage"]

logger = logging.getLogger(__name__)

#: Soft assignments are kept in the result only up to this many N×K entries.
MAX_PROBABILITY_ENTRIES = 50_000_000


class KMeansClusterer:
    """k-means through ``faiss.Kmeans``.

    Arguments
    ---------
    n_clusters : int
        Number of centroids.
    seed : int
        Seed of the initialisation.
    niter : int
        Lloyd iterations.
    n_redo : int
        Restarts; the best objective is kept.
    spherical : bool
        L2-normalise the embeddings and keep centroids on the unit sphere
        (cosine k-means), which suits cosine scoring of speaker embeddings.
    max_points_per_centroid : int
        faiss trains on at most ``n_clusters × max_points_per_centroid`` points
        (a random subset); every point is assigned afterwards.
    use_gpu : bool, optional
        Force the GPU on or off; by default used when faiss-gpu sees a GPU.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(-5, 1, (20, 2)), rng.normal(5, 1, (20, 2))])
    >>> result = KMeansClusterer(2, spherical=False).fit(x.astype(np.float32))
    >>> result.n_clusters, len(set(result.labels[:20])), result.centroids.shape
    (2, 1, (2, 2))
    """

    def __init__(
        self,
        n_clusters,
        seed=0,
        niter=20,
        n_redo=1,
        spherical=True,
        max_points_per_centroid=256,
        use_gpu=None,
    ):
        self.n_clusters = n_clusters
        self.seed = seed
        self.niter = niter
        self.n_redo = n_redo
        self.spherical = spherical
        self.max_points_per_centroid = max_points_per_centroid
        self.use_gpu = use_gpu

    def fit(self, embeddings, views=None, true_labels=None):
        """Cluster the embeddings.

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
            Labels and the (n_clusters, D) centroids.

        Raises
        ------
        ValueError
            On NaN/inf, a wrong shape, or more clusters than (distinct) points.

        Example
        -------
        >>> x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
        >>> KMeansClusterer(3).fit(x).labels.shape
        (30,)
        """
        x = check_embeddings(embeddings)
        n_clusters = check_n_clusters(self.n_clusters, x.shape[0])
        if self.spherical:
            x = l2_normalize(x)
        check_distinct_points(x, n_clusters, name=_points_name(self.spherical))
        return self._fit_checked(x, n_clusters)

    def _fit_checked(self, x, n_clusters):
        """Run k-means on checked (and normalised) float32 points."""
        gpu = faiss_gpu_available() if self.use_gpu is None else self.use_gpu
        kmeans = faiss.Kmeans(
            x.shape[1],
            n_clusters,
            niter=self.niter,
            nredo=self.n_redo,
            spherical=self.spherical,
            seed=self.seed,
            max_points_per_centroid=self.max_points_per_centroid,
            gpu=bool(gpu),
            verbose=False,
        )
        kmeans.train(x)
        _, assignment = kmeans.index.search(x, 1)
        labels = assignment.ravel().astype(np.int64)
        result = ClusteringResult(labels=labels, centroids=kmeans.centroids.copy())
        logger.info(
            "k-means: %d of %d clusters non-empty (objective %.4g, gpu=%s)",
            result.n_clusters,
            n_clusters,
            kmeans.obj[-1] if len(kmeans.obj) else float("nan"),
            bool(gpu),
        )
        return result


class GMMClusterer:
    """Gaussian mixture (scikit-learn ``GaussianMixture``) started from faiss k-means.

    Arguments
    ---------
    n_clusters : int
        Number of components.
    seed : int
        Seed of the k-means start and of scikit-learn.
    covariance_type : str
        ``"diag"`` (default) or ``"spherical"``; full covariances are out of
        reach at speaker-embedding scale.
    max_iter : int
        EM iterations.
    tol : float
        EM convergence threshold on the lower-bound gain.
    reg_covar : float
        Added to the variances.
    normalize : bool
        L2-normalise the embeddings first.
    kmeans_niter : int
        Iterations of the k-means start.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(-5, 1, (20, 2)), rng.normal(5, 1, (20, 2))])
    >>> result = GMMClusterer(2, normalize=False).fit(x.astype(np.float32))
    >>> result.n_clusters, result.probabilities.shape
    (2, (40, 2))
    """

    def __init__(
        self,
        n_clusters,
        seed=0,
        covariance_type="diag",
        max_iter=100,
        tol=1e-3,
        reg_covar=1e-6,
        normalize=True,
        kmeans_niter=20,
    ):
        if covariance_type not in ("diag", "spherical"):
            raise ValueError(
                f"covariance_type={covariance_type!r}; use 'diag' or 'spherical' "
                "(full covariances do not scale to speaker embeddings)"
            )
        self.n_clusters = n_clusters
        self.seed = seed
        self.covariance_type = covariance_type
        self.max_iter = max_iter
        self.tol = tol
        self.reg_covar = reg_covar
        self.normalize = normalize
        self.kmeans_niter = kmeans_niter

    def fit(self, embeddings, views=None, true_labels=None):
        """Fit the mixture and assign each point to its most likely component.

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
            Labels, component means as centroids and the posteriors as
            probabilities (when N×K is at most ``MAX_PROBABILITY_ENTRIES``).

        Raises
        ------
        ValueError
            On NaN/inf, a wrong shape, or more components than (distinct) points.

        Example
        -------
        >>> x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
        >>> GMMClusterer(3).fit(x).labels.shape
        (30,)
        """
        x = check_embeddings(embeddings)
        n_clusters = check_n_clusters(self.n_clusters, x.shape[0])
        if self.normalize:
            x = l2_normalize(x)
        check_distinct_points(x, n_clusters, name=_points_name(self.normalize))
        start = KMeansClusterer(
            n_clusters, seed=self.seed, niter=self.kmeans_niter, spherical=False
        )._fit_checked(x, n_clusters)
        counts = np.bincount(start.labels, minlength=n_clusters).astype(np.float64)
        global_var = x.var(axis=0, dtype=np.float64)
        sq = (x.astype(np.float64) - start.centroids[start.labels]) ** 2
        variances = cluster_means(sq, start.labels, n_clusters).astype(np.float64)
        # Empty or single-point clusters borrow the global variance.
        thin = counts < 2
        variances[thin] = global_var
        variances += self.reg_covar
        if self.covariance_type == "spherical":
            variances = variances.mean(axis=1)
        means = np.where(thin[:, None], x[np.arange(n_clusters) % x.shape[0]], start.centroids)
        mixture = GaussianMixture(
            n_components=n_clusters,
            covariance_type=self.covariance_type,
            max_iter=self.max_iter,
            tol=self.tol,
            reg_covar=self.reg_covar,
            random_state=self.seed,
            init_params="random_from_data",
            weights_init=np.maximum(counts, 1) / np.maximum(counts, 1).sum(),
            means_init=means,
            precisions_init=1.0 / variances,
        )
        mixture.fit(x)
        if not mixture.converged_:
            logger.warning("GMM did not converge in %d EM iterations", self.max_iter)
        probabilities = None
        if x.shape[0] * n_clusters <= MAX_PROBABILITY_ENTRIES:
            probabilities = mixture.predict_proba(x).astype(np.float32)
            labels = probabilities.argmax(axis=1)
        else:
            logger.info("GMM posteriors not kept: N×K exceeds %d", MAX_PROBABILITY_ENTRIES)
            labels = mixture.predict(x)
        return ClusteringResult(
            labels=labels,
            centroids=mixture.means_.astype(np.float32),
            probabilities=probabilities,
        )


def _points_name(normalized):
    """Name the clustered points in error messages."""
    return "the L2-normalised embeddings" if normalized else "embeddings"


_LANCE_WILLIAMS = {
    "ward": lambda di, dj, dij, ni, nj, nk: (
        ((ni + nk) * di + (nj + nk) * dj - nk * dij) / (ni + nj + nk)
    ),
    "average": lambda di, dj, dij, ni, nj, nk: (ni * di + nj * dj) / (ni + nj),
    "complete": lambda di, dj, dij, ni, nj, nk: np.maximum(di, dj),
    "single": lambda di, dj, dij, ni, nj, nk: np.minimum(di, dj),
}


def _pairwise_dissimilarity(centroids, weights, linkage, block=2048):
    """Compute the float32 dissimilarities between weighted centroids (diagonal inf)."""
    c = centroids.astype(np.float64)
    sq_norm = np.sum(c**2, axis=1)
    m = c.shape[0]
    out = np.empty((m, m), dtype=np.float32)
    for start in range(0, m, block):
        stop = min(start + block, m)
        sq = np.maximum(sq_norm[start:stop, None] + sq_norm[None, :] - 2 * c[start:stop] @ c.T, 0)
        if linkage == "ward":
            # Ward: increase of the within-cluster sum of squares, times 2.
            wi, wj = weights[start:stop, None], weights[None, :]
            out[start:stop] = 2 * wi * wj / (wi + wj) * sq
        else:
            out[start:stop] = np.sqrt(sq)
    np.fill_diagonal(out, np.inf)
    return out


def merge_preclusters(pre_labels, centroids, n_clusters, linkage="ward", weighted=True):
    """Merge the non-empty pre-clusters of an over-clustering into ``n_clusters`` clusters.

    Empty pre-clusters are dropped; the others are agglomerated by
    :func:`weighted_linkage` and every point takes the cluster of its pre-cluster.

    Arguments
    ---------
    pre_labels : numpy.ndarray
        (N,) pre-cluster of each point, in 0..m-1.
    centroids : numpy.ndarray
        (m, D) pre-cluster centres.
    n_clusters : int
        Number of clusters wanted.
    linkage : str
        Linkage of :func:`weighted_linkage`.
    weighted : bool
        Weigh each pre-cluster by its number of points (else all weigh 1).

    Returns
    -------
    labels : numpy.ndarray
        (N,) int64 cluster of each point, in 0..n_clusters-1.
    n_kept : int
        Number of non-empty pre-clusters.

    Example
    -------
    >>> c = np.array([[0.0], [0.1], [9.0], [5.0], [5.2]])
    >>> labels, n_kept = merge_preclusters(np.array([0, 1, 3, 4, 4]), c, 2)
    >>> labels.tolist(), n_kept
    ([0, 0, 1, 1, 1], 4)
    """
    m = centroids.shape[0]
    counts = np.bincount(pre_labels, minlength=m)
    kept = np.flatnonzero(counts)
    if kept.size < n_clusters:
        raise ValueError(
            f"only {kept.size} of the {m} pre-clusters are non-empty, fewer than "
            f"n_clusters={n_clusters}; lower n_clusters or check the embeddings for duplicates"
        )
    weights = counts[kept] if weighted else np.ones(kept.size)
    lookup = np.full(m, -1, dtype=np.int64)
    lookup[kept] = weighted_linkage(centroids[kept], weights, n_clusters, linkage)
    return lookup[pre_labels], int(kept.size)


def weighted_linkage(centroids, weights, n_clusters, linkage="ward"):
    """Agglomerate weighted centroids into ``n_clusters`` groups.

    Each centroid stands for ``weights[i]`` points. Merges follow the
    Lance-Williams updates of the chosen linkage with those weights as cluster
    sizes, so Ward's criterion is exactly the increase of the within-cluster
    sum of squares of the points' cluster means. The dendrogram is built with
    the nearest-neighbour-chain algorithm (O(m²) time, one m×m float32 matrix)
    and cut at ``n_clusters`` groups.

    Arguments
    ---------
    centroids : numpy.ndarray
        (m, D) centres.
    weights : numpy.ndarray
        (m,) positive point counts.
    n_clusters : int
        Number of groups wanted (≤ m).
    linkage : str
        ``"ward"``, ``"average"``, ``"complete"`` or ``"single"`` (Euclidean).

    Returns
    -------
    numpy.ndarray
        (m,) int64 group of each centroid, in 0..n_clusters-1.

    Example
    -------
    >>> c = np.array([[0.0], [0.1], [5.0], [5.2]])
    >>> weighted_linkage(c, np.array([10, 1, 1, 10]), 2).tolist()
    [0, 0, 1, 1]
    """
    if linkage not in _LANCE_WILLIAMS:
        raise ValueError(f"linkage={linkage!r}; use one of {sorted(_LANCE_WILLIAMS)}")
    update = _LANCE_WILLIAMS[linkage]
    m = centroids.shape[0]
    if not 1 <= n_clusters <= m:
        raise ValueError(f"n_clusters={n_clusters} must lie in [1, {m}] (the number of centroids)")
    size = np.asarray(weights, dtype=np.float64).copy()
    if (size <= 0).any():
        raise ValueError("weights must be positive; drop empty centroids first")
    dist = _pairwise_dissimilarity(centroids, size, linkage)
    active = np.ones(m, dtype=bool)
    merges = []  # (height, a, b)
    chain = []
    for _ in range(m - 1):
        while True:
            if not chain:
                chain.append(int(np.flatnonzero(active)[0]))
            a = chain[-1]
            b = int(np.argmin(dist[a]))
            if len(chain) > 1 and dist[a, chain[-2]] <= dist[a, b]:
                b = chain[-2]
            if len(chain) > 1 and b == chain[-2]:
                break
            chain.append(b)
        chain.pop()
        chain.pop()
        height = float(dist[a, b])
        merges.append((height, a, b))
        row = update(
            dist[a].astype(np.float64), dist[b].astype(np.float64), height, size[a], size[b], size
        )
        row[~active] = np.inf
        row[[a, b]] = np.inf
        dist[a], dist[:, a] = row, row
        dist[b], dist[:, b] = np.inf, np.inf
        size[a] += size[b]
        active[b] = False

    # Cut: apply the m - n_clusters lowest merges (valid for these reducible linkages).
    parent = np.arange(m)

    def root(i):
        """Return the representative of point ``i``'s group (halving the path on the way)."""
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    merges.sort(key=lambda merge: merge[0])
    for _, a, b in merges[: m - n_clusters]:
        parent[root(b)] = root(a)
    roots = np.array([root(i) for i in range(m)])
    return np.unique(roots, return_inverse=True)[1].astype(np.int64)


class AHCClusterer:
    """Agglomerative hierarchical clustering that scales to a million points.

    Up to ``max_points`` points: scikit-learn ``AgglomerativeClustering``.
    Above: k-means over-clustering into ``n_preclusters`` groups, then
    :func:`weighted_linkage` on their centroids weighted by their counts.

    Arguments
    ---------
    n_clusters : int
        Number of clusters.
    seed : int
        Seed of the k-means over-clustering.
    linkage : str
        ``"ward"`` (default), ``"average"``, ``"complete"`` or ``"single"``.
    max_points : int
        Largest N clustered directly.
    n_preclusters : int, optional
        Size of the over-clustering; by default ``max(2 × n_clusters,
        max_points // 5)`` (capped at N). The merge holds an
        ``n_preclusters²`` float32 matrix (1.6 GB at 20,000).
    normalize : bool
        L2-normalise the embeddings first.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(-5, 1, (50, 2)), rng.normal(5, 1, (50, 2))])
    >>> ahc = AHCClusterer(2, max_points=40, n_preclusters=10, normalize=False)
    >>> result = ahc.fit(x.astype(np.float32))
    >>> result.n_clusters, len(set(result.labels[:50]))
    (2, 1)
    """

    def __init__(
        self,
        n_clusters,
        seed=0,
        linkage="ward",
        max_points=10000,
        n_preclusters=None,
        normalize=True,
    ):
        if linkage not in _LANCE_WILLIAMS:
            raise ValueError(f"linkage={linkage!r}; use one of {sorted(_LANCE_WILLIAMS)}")
        self.n_clusters = n_clusters
        self.seed = seed
        self.linkage = linkage
        self.max_points = max_points
        self.n_preclusters = n_preclusters
        self.normalize = normalize

    def fit(self, embeddings, views=None, true_labels=None):
        """Cluster the embeddings.

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
            Labels and the cluster means as centroids.

        Raises
        ------
        ValueError
            On NaN/inf, a wrong shape, or more clusters than (distinct) points.

        Example
        -------
        >>> x = np.random.default_rng(0).normal(size=(30, 4)).astype(np.float32)
        >>> AHCClusterer(3).fit(x).n_clusters
        3
        """
        x = check_embeddings(embeddings)
        n_clusters = check_n_clusters(self.n_clusters, x.shape[0])
        if self.normalize:
            x = l2_normalize(x)
        check_distinct_points(x, n_clusters, name=_points_name(self.normalize))
        n = x.shape[0]
        if n <= self.max_points:
            labels = AgglomerativeClustering(n_clusters=n_clusters, linkage=self.linkage).fit(x)
            labels = labels.labels_
        else:
            m = self.n_preclusters or max(2 * n_clusters, self.max_points // 5)
            m = check_n_clusters(min(m, n), n, name="n_preclusters")
            if m < n_clusters:
                raise ValueError(f"n_preclusters={m} must be at least n_clusters={n_clusters}")
            logger.info("AHC: %d points over-clustered into %d before merging", n, m)
            pre = KMeansClusterer(m, seed=self.seed, spherical=False)._fit_checked(x, m)
            labels, _ = merge_preclusters(
                pre.labels, cluster_means(x, pre.labels, m), n_clusters, self.linkage
            )
        return ClusteringResult(labels=labels, centroids=cluster_means(x, labels, n_clusters))
