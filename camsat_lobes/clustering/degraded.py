"""Deliberately degraded pseudo-labels: the true labels with a fraction flipped.

A study of which clustering metric predicts the EER needs pseudo-label sets that
span the whole range of quality, including sets better than any clustering of the
embeddings reaches. :class:`LabelFlipClusterer` makes them from the true labels:
it moves a chosen fraction of the points, drawn at random, to another cluster
drawn at random. It has the ``fit`` interface of the other clusterers, so a recipe
builds it from a yaml fragment like any of them; it is a reference for studies,
never a way to label unlabelled speech (it needs the true labels).

Authors
 * camsat contributors 2026
"""

import numpy as np

from .result import ClusteringResult
from .validation import check_labels

__all__ = ["LabelFlipClusterer"]


class LabelFlipClusterer:
    """The true labels with ``flip_fraction`` of the points moved to another cluster.

    Arguments
    ---------
    flip_fraction : float
        Fraction of the points, in [0, 1], whose label is replaced by a different
        one drawn uniformly among the other clusters (0: the true labels).
    n_clusters : int, optional
        Number of clusters the flipped points are drawn from. Default: the number
        of true classes; more adds clusters that only flipped points fill.
    seed : int
        Seed of the choice of points and of their new clusters.

    Example
    -------
    >>> true = np.repeat(np.arange(4), 25)
    >>> result = LabelFlipClusterer(0.2, seed=0).fit(np.zeros((100, 3)), true_labels=true)
    >>> int((result.labels != true).sum()), result.n_clusters
    (20, 4)
    >>> LabelFlipClusterer(0.2).fit(np.zeros((100, 3)))
    Traceback (most recent call last):
        ...
    ValueError: LabelFlipClusterer degrades the true labels and needs them: pass true_labels to fit
    """

    def __init__(self, flip_fraction, n_clusters=None, seed=0):
        if not 0.0 <= flip_fraction <= 1.0:
            raise ValueError(f"flip_fraction must be in [0, 1], got {flip_fraction}")
        self.flip_fraction = flip_fraction
        self.n_clusters = n_clusters
        self.seed = seed

    def fit(self, embeddings, views=None, true_labels=None):
        """Flip the labels of a random ``flip_fraction`` of the points.

        Arguments
        ---------
        embeddings : numpy.ndarray
            (N, D) embeddings; only their count is used.
        views : numpy.ndarray, optional
            Not used (the common interface).
        true_labels : array_like
            (N,) integer speaker of every point (required).

        Returns
        -------
        ClusteringResult
            The degraded labels.
        """
        if true_labels is None:
            raise ValueError(
                "LabelFlipClusterer degrades the true labels and needs them: "
                "pass true_labels to fit"
            )
        true_labels = check_labels(true_labels, n_points=len(embeddings), name="true_labels")
        labels = np.unique(true_labels, return_inverse=True)[1].astype(np.int64)
        n_clusters = int(labels.max()) + 1 if self.n_clusters is None else self.n_clusters
        if n_clusters < 2 or n_clusters <= labels.max():
            raise ValueError(
                f"n_clusters={n_clusters} must be at least 2 and at least the number of true "
                f"classes ({int(labels.max()) + 1})"
            )
        rng = np.random.default_rng(self.seed)
        flipped = rng.choice(len(labels), round(self.flip_fraction * len(labels)), replace=False)
        # A shift in 1..K-1 (mod K) always lands on another cluster, each equally likely.
        shift = rng.integers(1, n_clusters, size=len(flipped))
        labels[flipped] = (labels[flipped] + shift) % n_clusters
        return ClusteringResult(labels=labels)
