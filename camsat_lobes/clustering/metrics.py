"""Clustering metrics that scale to a million points and ten thousand clusters.

Everything that compares two labelings is computed from one sparse contingency
matrix (predicted × true, one non-zero per occupied pair), so cost and memory
grow with the number of points, not with the product of the cluster counts:

- ACC: the best one-to-one map between predicted clusters and classes
  (Hungarian method). Small problems use the dense
  :func:`scipy.optimize.linear_sum_assignment`; large ones a sparse matching
  (:func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching`) on the
  contingency graph padded with zero-gain "unmatched" edges, which gives the
  same optimum without a dense n_pred × n_true matrix. Unequal counts are fine:
  surplus clusters (or classes) stay unmatched and count as errors.
- NMI, AMI (arithmetic normalisation, as scikit-learn's defaults), ARI, FMI,
  purity, homogeneity, completeness and V-measure.
- The expected mutual information needed by AMI depends on the cluster sizes
  only, so it is summed once per pair of *distinct* sizes (weighted by how many
  cluster pairs share them) instead of once per cluster pair. scikit-learn's
  implementation loops over all n_pred × n_true pairs and does not finish in
  reasonable time at 10k × 10k clusters.
- Unsupervised scores from the embeddings: silhouette on a random sample
  (it is quadratic), Calinski-Harabasz and Davies-Bouldin on all points,
  computed in chunks from per-cluster sums (linear in N).
- Points labelled -1 (left out by the clusterer's hygiene) are in no cluster:
  every metric is computed on the kept points, and ``kept_fraction`` says how
  many those are.

Authors
 * camsat contributors 2026
"""

import logging

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching
from scipy.special import gammaln
from sklearn.metrics import silhouette_score

from .validation import check_embeddings, check_labels

__all__ = [
    "contingency_matrix",
    "clustering_accuracy",
    "expected_mutual_information",
    "clustering_metrics",
]

logger = logging.getLogger(__name__)

_DENSE_ASSIGNMENT_MAX = 4_000_000  # n_pred × n_true above which ACC uses the sparse matching
_CHUNK = 65536  # rows per chunk for the embedding-based scores
_EMI_TERMS_PER_CHUNK = 4_000_000
_EMI_WINDOW_SD = 60.0  # hypergeometric terms farther than this (in sd, plus as many counts) skipped


def _encode(labels):
    """Map arbitrary labels to 0..K-1."""
    _, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64, copy=False)


def contingency_matrix(pred, true):
    """Sparse contingency matrix between predicted clusters and true classes.

    Arguments
    ---------
    pred : array_like
        Predicted cluster of each point (any integer or string labels).
    true : array_like
        True class of each point, same length.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``C[i, j]`` is the number of points in the i-th predicted cluster and the
        j-th class (both in sorted label order), int64.

    Example
    -------
    >>> contingency_matrix([0, 0, 1, 1], [5, 5, 5, 7]).toarray()
    array([[2, 0],
           [1, 1]])
    """
    pred = check_labels(pred, name="pred")
    true = check_labels(true, n_points=pred.shape[0], name="true")
    rows, cols = _encode(pred), _encode(true)
    data = np.ones(rows.shape[0], dtype=np.int64)
    shape = (int(rows.max()) + 1, int(cols.max()) + 1)
    matrix = sp.coo_matrix((data, (rows, cols)), shape=shape).tocsr()
    matrix.sum_duplicates()
    return matrix


def _matched_count(table):
    """Largest total count over one-to-one pairs of rows and columns of ``table``."""
    n_rows, n_cols = table.shape
    if n_rows * n_cols <= _DENSE_ASSIGNMENT_MAX:
        dense = table.toarray()
        rows, cols = linear_sum_assignment(dense, maximize=True)
        return int(dense[rows, cols].sum())
    # Square graph [[C, I_rows], [I_cols, C^T-pattern]]: every row and every column
    # may stay unmatched through its own dummy partner, and a matched pair (i, j)
    # frees dummy column i and dummy row j, which pair through the (j, i) entry of
    # the bottom-right block. Every edge weighs 1 (+ C[i, j] for real pairs), and a
    # full matching always has n_rows + n_cols edges, so maximising the total
    # maximises the matched count.
    table = table.tocoo()
    real = sp.coo_matrix(
        (table.data.astype(np.float64) + 1.0, (table.row, table.col)), shape=table.shape
    )
    pattern = sp.coo_matrix((np.ones(table.nnz), (table.col, table.row)), shape=(n_cols, n_rows))
    graph = sp.bmat(
        [
            [real, sp.identity(n_rows, format="coo")],
            [sp.identity(n_cols, format="coo"), pattern],
        ],
        format="csr",
    )
    rows, cols = min_weight_full_bipartite_matching(graph, maximize=True)
    real_pairs = (rows < n_rows) & (cols < n_cols)
    return int(table.tocsr()[rows[real_pairs], cols[real_pairs]].sum())


def clustering_accuracy(pred, true):
    """Clustering accuracy under the best one-to-one map of clusters to classes.

    The map maximises the number of correctly labelled points (Hungarian
    method on the contingency matrix). When there are more clusters than
    classes (or the reverse), the surplus stays unmatched and its points count
    as errors.

    Arguments
    ---------
    pred : array_like
        Predicted cluster of each point.
    true : array_like
        True class of each point.

    Returns
    -------
    float
        Fraction of points whose cluster maps to their class, in [0, 1].

    Example
    -------
    >>> clustering_accuracy([1, 1, 0, 0, 2], [0, 0, 1, 1, 1])
    0.8
    """
    table = contingency_matrix(pred, true)
    return _matched_count(table) / float(table.sum())


def _entropy(counts):
    """Entropy (nats) of the distribution given by ``counts``."""
    counts = np.asarray(counts, dtype=np.float64)
    counts = counts[counts > 0]
    total = counts.sum()
    return float(-np.sum(counts / total * np.log(counts / total)))


def expected_mutual_information(pred_sizes, true_sizes):
    r"""Compute the expected mutual information (nats) of random labelings of given sizes.

    Under the permutation model (cluster sizes fixed, points shuffled) the
    overlap of a cluster of size a and a class of size b is hypergeometric, so

    .. math::
        E[MI] = \sum_{i,j} \sum_{n} \frac{n}{N}
        \log\frac{N n}{a_i b_j} \, P(n \mid a_i, b_j, N).

    The inner sum depends on (a_i, b_j) only: it is computed once per pair of
    distinct sizes and weighted by how many cluster pairs share it. Overlaps
    farther than 60 standard deviations (plus 60) from the hypergeometric mean
    are skipped; the hypergeometric law is log-concave, so their total weight is
    far below double precision.

    Arguments
    ---------
    pred_sizes : array_like
        Sizes of the predicted clusters (positive integers).
    true_sizes : array_like
        Sizes of the classes; must sum to the same N.

    Returns
    -------
    float
        The expected mutual information in nats.

    Example
    -------
    >>> round(expected_mutual_information([2, 2], [2, 2]), 4)
    0.231
    """
    a = np.asarray(pred_sizes, dtype=np.int64)
    b = np.asarray(true_sizes, dtype=np.int64)
    a, b = a[a > 0], b[b > 0]
    n = int(a.sum())
    if n != int(b.sum()):
        raise ValueError(f"cluster sizes sum to {n} but class sizes sum to {int(b.sum())}")
    a_vals, a_mult = np.unique(a, return_counts=True)
    b_vals, b_mult = np.unique(b, return_counts=True)
    big_a = np.repeat(a_vals, b_vals.size)
    big_b = np.tile(b_vals, a_vals.size)
    weight = np.repeat(a_mult, b_vals.size).astype(np.float64) * np.tile(b_mult, a_vals.size)

    mean = big_a * big_b / n
    sd = np.sqrt(big_a * big_b * (n - big_a) * (n - big_b) / (n * n * max(n - 1, 1)))
    margin = _EMI_WINDOW_SD * (sd + 1.0)
    lo = np.maximum(np.maximum(1, big_a + big_b - n), np.floor(mean - margin)).astype(np.int64)
    hi = np.minimum(np.minimum(big_a, big_b), np.ceil(mean + margin)).astype(np.int64)
    lengths = np.maximum(hi - lo + 1, 0)

    log_fact = gammaln(np.arange(n + 2, dtype=np.float64))  # log_fact[k] = log((k-1)!)
    log_n = np.log(n)
    total = 0.0
    ends = np.cumsum(lengths)
    start = 0
    while start < big_a.size:
        base = ends[start - 1] if start else 0
        stop = int(np.searchsorted(ends, base + _EMI_TERMS_PER_CHUNK, side="right"))
        stop = max(stop, start + 1)
        sl = slice(start, stop)
        reps = lengths[sl]
        pair = np.repeat(np.arange(stop - start), reps)
        offsets = np.arange(reps.sum()) - np.repeat(np.cumsum(reps) - reps, reps)
        nij = lo[sl][pair] + offsets
        ai, bj = big_a[sl][pair], big_b[sl][pair]
        log_p = (
            log_fact[ai + 1]
            + log_fact[bj + 1]
            + log_fact[n - ai + 1]
            + log_fact[n - bj + 1]
            - log_fact[n + 1]
            - log_fact[nij + 1]
            - log_fact[ai - nij + 1]
            - log_fact[bj - nij + 1]
            - log_fact[n - ai - bj + nij + 1]
        )
        term = nij / n * (log_n + np.log(nij) - np.log(ai) - np.log(bj)) * np.exp(log_p)
        total += float(np.sum(term * weight[sl][pair]))
        start = stop
    return total


def _external_metrics(pred, true):
    """All label-comparison metrics from one sparse contingency matrix."""
    table = contingency_matrix(pred, true)
    n = float(table.sum())
    pred_sizes = np.asarray(table.sum(axis=1)).ravel()
    true_sizes = np.asarray(table.sum(axis=0)).ravel()
    cells = table.tocoo()
    nij = cells.data.astype(np.float64)
    outer = pred_sizes[cells.row].astype(np.float64) * true_sizes[cells.col]

    h_pred, h_true = _entropy(pred_sizes), _entropy(true_sizes)
    mi = max(float(np.sum(nij / n * (np.log(nij) + np.log(n) - np.log(outer)))), 0.0)
    mean_h = (h_pred + h_true) / 2.0
    nmi = 1.0 if mean_h == 0 else mi / mean_h
    emi = expected_mutual_information(pred_sizes, true_sizes)
    denominator = mean_h - emi
    denominator = (
        min(denominator, -np.finfo(float).eps)
        if denominator < 0
        else max(denominator, np.finfo(float).eps)
    )
    ami = 1.0 if h_pred == h_true == 0 else (mi - emi) / denominator

    sum_pairs = float(np.sum(nij * (nij - 1)) / 2)
    sum_pred = float(np.sum(pred_sizes.astype(np.float64) * (pred_sizes - 1)) / 2)
    sum_true = float(np.sum(true_sizes.astype(np.float64) * (true_sizes - 1)) / 2)
    expected = sum_pred * sum_true / (n * (n - 1) / 2) if n > 1 else 0.0
    ari_den = (sum_pred + sum_true) / 2 - expected
    ari = 1.0 if ari_den == 0 else (sum_pairs - expected) / ari_den
    fmi = 0.0 if sum_pairs == 0 else sum_pairs / np.sqrt(sum_pred * sum_true)

    homogeneity = 1.0 if h_true == 0 else mi / h_true
    completeness = 1.0 if h_pred == 0 else mi / h_pred
    v_measure = (
        0.0
        if homogeneity + completeness == 0
        else 2 * homogeneity * completeness / (homogeneity + completeness)
    )
    return {
        "acc": _matched_count(table) / n,
        "nmi": nmi,
        "ami": float(ami),
        "ari": float(ari),
        "fmi": float(fmi),
        "purity": float(table.max(axis=1).toarray().sum() / n),
        "homogeneity": homogeneity,
        "completeness": completeness,
        "v_measure": v_measure,
        "n_true_classes": int(true_sizes.size),
    }


def _calinski_davies(embeddings, codes, n_clusters):
    """Calinski-Harabasz and Davies-Bouldin scores, linear in N (chunked)."""
    n, dim = embeddings.shape
    sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    sums = np.zeros((n_clusters, dim))
    for start in range(0, n, _CHUNK):
        chunk = embeddings[start : start + _CHUNK].astype(np.float64)
        rows = codes[start : start + _CHUNK]
        one_hot = sp.csr_matrix(
            (np.ones(rows.size), (rows, np.arange(rows.size))), shape=(n_clusters, rows.size)
        )
        sums += one_hot @ chunk
    centroids = sums / sizes[:, None]
    grand_mean = sums.sum(axis=0) / n

    within_sq = 0.0
    spread = np.zeros(n_clusters)  # sum of distances to the own centroid
    for start in range(0, n, _CHUNK):
        chunk = embeddings[start : start + _CHUNK].astype(np.float64)
        rows = codes[start : start + _CHUNK]
        sq = np.sum((chunk - centroids[rows]) ** 2, axis=1)
        within_sq += float(sq.sum())
        spread += np.bincount(rows, weights=np.sqrt(sq), minlength=n_clusters)
    between_sq = float(np.sum(sizes * np.sum((centroids - grand_mean) ** 2, axis=1)))
    calinski = (
        1.0 if within_sq == 0 else between_sq * (n - n_clusters) / (within_sq * (n_clusters - 1))
    )

    spread /= sizes
    if np.allclose(spread, 0):
        return calinski, 0.0
    centroid_sq = np.sum(centroids**2, axis=1)
    worst = np.empty(n_clusters)
    block = max(1, 2**24 // n_clusters)
    for start in range(0, n_clusters, block):
        stop = min(start + block, n_clusters)
        dist = (
            centroid_sq[start:stop, None]
            + centroid_sq[None, :]
            - 2 * centroids[start:stop] @ (centroids.T)
        )
        dist = np.sqrt(np.maximum(dist, 0))
        dist[np.arange(stop - start), np.arange(start, stop)] = 0
        dist[dist == 0] = np.inf
        worst[start:stop] = np.max((spread[start:stop, None] + spread[None, :]) / dist, axis=1)
    return calinski, float(np.mean(worst))


def clustering_metrics(pred, true=None, embeddings=None, silhouette_sample=10000, seed=0):
    """Compute the clustering metrics suite.

    Points whose predicted cluster is -1 were left out by the clusterer: the
    metrics describe the kept points only, and ``kept_fraction`` how many they are.

    Arguments
    ---------
    pred : array_like
        Predicted cluster of each point (N,); integer -1 marks a point left out.
    true : array_like, optional
        True class of each point (N,); enables the external metrics. Needs at
        least two classes.
    embeddings : array_like, optional
        N×D embeddings; enables silhouette, Calinski-Harabasz and
        Davies-Bouldin. Needs at least two predicted clusters.
    silhouette_sample : int
        Silhouette (Euclidean) is quadratic in N: it is computed on this many
        randomly drawn points when N is larger.
    seed : int
        Seed of that sample.

    Returns
    -------
    dict
        ``n_points`` (all N points), ``n_clusters`` (non-empty predicted clusters)
        and ``kept_fraction`` (share of points not labelled -1; 1.0 when none is);
        with ``true``: ``acc``, ``nmi``, ``ami``, ``ari``, ``fmi``, ``purity``,
        ``homogeneity``, ``completeness``, ``v_measure``, ``n_true_classes``;
        with ``embeddings``: ``silhouette``, ``calinski_harabasz``,
        ``davies_bouldin``. All values are Python floats or ints.

    Example
    -------
    >>> m = clustering_metrics([0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 1, 1])
    >>> m["acc"], m["n_clusters"], round(m["homogeneity"], 3), m["kept_fraction"]
    (0.6666666666666666, 3, 1.0, 1.0)
    >>> m = clustering_metrics([0, 0, 1, 1, -1, -1], [0, 0, 1, 1, 1, 0])
    >>> m["acc"], m["n_clusters"], m["kept_fraction"]
    (1.0, 2, 0.6666666666666666)
    """
    pred = check_labels(pred, name="pred")
    n_points = int(pred.shape[0])
    if true is not None:
        true = check_labels(true, n_points=n_points, name="true", min_classes=2)
    if embeddings is not None:
        embeddings = check_embeddings(embeddings)
        if embeddings.shape[0] != n_points:
            raise ValueError(
                f"embeddings have {embeddings.shape[0]} rows but pred has {n_points} labels"
            )
    kept = _kept_points(pred)
    if kept is not None:
        pred = pred[kept]
        true = None if true is None else true[kept]
        embeddings = None if embeddings is None else embeddings[kept]
    codes = _encode(pred)
    n_clusters = int(codes.max()) + 1
    metrics = {
        "n_points": n_points,
        "n_clusters": n_clusters,
        "kept_fraction": 1.0 if kept is None else float(kept.mean()),
    }
    if true is not None:
        metrics.update(_external_metrics(codes, true))
    if embeddings is not None:
        if n_clusters < 2:
            raise ValueError(
                "pred has a single cluster: silhouette, Calinski-Harabasz and Davies-Bouldin "
                "need at least 2 (the clustering collapsed); call without embeddings"
            )
        sample = None
        if pred.shape[0] > silhouette_sample:
            sample = np.random.default_rng(seed).choice(
                pred.shape[0], size=silhouette_sample, replace=False
            )
        idx = slice(None) if sample is None else np.sort(sample)
        sample_codes = codes[idx]
        if np.unique(sample_codes).size < 2 or np.unique(sample_codes).size >= sample_codes.size:
            raise ValueError(
                f"the silhouette sample of {sample_codes.size} points holds "
                f"{np.unique(sample_codes).size} clusters; silhouette needs between 2 and "
                "n_sample - 1: raise silhouette_sample"
            )
        metrics["silhouette"] = float(silhouette_score(embeddings[idx], sample_codes))
        calinski, davies = _calinski_davies(embeddings, codes, n_clusters)
        metrics["calinski_harabasz"] = float(calinski)
        metrics["davies_bouldin"] = davies
    return metrics


def _kept_points(pred):
    """Return the mask of points not labelled -1, or None when every point is kept."""
    if pred.dtype.kind not in "iuf":
        return None
    kept = pred != -1
    if kept.all():
        return None
    if not kept.any():
        raise ValueError(
            f"all {pred.shape[0]} points of pred are -1 (left out): there is no cluster to "
            "score; relax the clusterer's hygiene (size range, confidence)"
        )
    return kept
