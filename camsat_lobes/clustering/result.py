"""The result every clusterer returns.

Authors
 * camsat contributors 2026
"""

from dataclasses import dataclass, field

import numpy as np

__all__ = ["ClusteringResult"]


@dataclass
class ClusteringResult:
    """Labels and by-products of one clustering run.

    Cluster ids are the clusterer's own (0..K-1 for K requested clusters);
    clusters that ended up empty leave gaps, so ``n_clusters`` (the number of
    non-empty clusters) may be smaller than ``labels.max() + 1``. Label -1 marks a
    point left out (a clusterer with cluster hygiene, e.g.
    :class:`~camsat_lobes.clustering.ThresholdAHCClusterer`, drops unreliable
    points): it belongs to no cluster and no network trains on it.

    Arguments
    ---------
    labels : numpy.ndarray
        Cluster id of each point, shape (N,), int64; -1 for a point left out.
    centroids : numpy.ndarray, optional
        Cluster centres, shape (K, D), row k for cluster id k (k-means, GMM
        means, AHC cluster means).
    probabilities : numpy.ndarray, optional
        Soft assignments, shape (N, K), column k for cluster id k (GMM, CAMSAT).
    history : list of dict
        Per-epoch records of deep methods (loss terms, cluster count, metrics
        when true labels were given); empty for the others.

    Attributes
    ----------
    n_clusters : int
        Number of non-empty clusters (distinct values in ``labels`` other than -1).

    Example
    -------
    >>> result = ClusteringResult(labels=np.array([0, 0, 3]))
    >>> result.n_clusters, result.labels.dtype
    (2, dtype('int64'))
    >>> ClusteringResult(labels=np.array([0, -1, 1, 1])).n_clusters  # -1: left out
    2
    """

    labels: np.ndarray
    centroids: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    history: list = field(default_factory=list)
    n_clusters: int = field(init=False)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if self.labels.ndim != 1 or self.labels.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D array, got shape {self.labels.shape}")
        if self.labels.min() < -1:
            raise ValueError(
                f"labels hold {int(self.labels.min())}; cluster ids are >= 0, and -1 marks a "
                "point left out"
            )
        self.n_clusters = int(np.unique(self.labels[self.labels >= 0]).size)
