"""Clustering metrics: hand-computed answers, agreement with scikit-learn, scale."""

import math
import time
import tracemalloc

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from sklearn import metrics as skm
from sklearn.metrics.cluster._expected_mutual_info_fast import (
    expected_mutual_information as sklearn_emi,
)

from camsat_lobes.clustering import (
    clustering_accuracy,
    clustering_metrics,
    contingency_matrix,
    expected_mutual_information,
)
from camsat_lobes.clustering import metrics as cm


def _h(*probabilities):
    return -sum(p * math.log(p) for p in probabilities if p > 0)


def test_hand_computed_pair_with_more_clusters_than_classes():
    # Clusters {0,1} {2,3} {4,5}; classes {0,1} {2,3,4,5}.
    pred = [0, 0, 1, 1, 2, 2]
    true = [0, 0, 1, 1, 1, 1]
    m = clustering_metrics(pred, true)
    h_true, h_pred = _h(1 / 3, 2 / 3), math.log(3)
    mi = h_true  # every cluster is pure, so H(class | cluster) = 0
    assert m["n_clusters"] == 3 and m["n_true_classes"] == 2
    assert m["acc"] == pytest.approx(4 / 6)  # one of the class-1 clusters stays unmatched
    assert m["purity"] == pytest.approx(1.0)
    assert m["homogeneity"] == pytest.approx(1.0)
    assert m["completeness"] == pytest.approx(mi / h_pred)
    assert m["nmi"] == pytest.approx(mi / ((h_true + h_pred) / 2))
    assert m["v_measure"] == pytest.approx(m["nmi"])
    # Pairs: same-cluster 3, same-class 1 + 6 = 7, both 3, all 15.
    expected = 3 * 7 / 15
    assert m["ari"] == pytest.approx((3 - expected) / ((3 + 7) / 2 - expected))
    assert m["fmi"] == pytest.approx(3 / math.sqrt(3 * 7))


def test_fewer_clusters_than_classes_and_permutation():
    assert clustering_accuracy([5, 5, 5, 5], [0, 0, 1, 1]) == pytest.approx(0.5)
    assert clustering_accuracy([0, 0, 1, 1, 1], ["a", "a", "b", "b", "c"]) == pytest.approx(0.8)
    m = clustering_metrics([2, 2, 0, 0, 1, 1], [0, 0, 1, 1, 2, 2])
    for key in ("acc", "nmi", "ami", "ari", "fmi", "purity", "v_measure"):
        assert m[key] == pytest.approx(1.0), key


def test_contingency_matrix_counts():
    table = contingency_matrix([1, 1, 7, 7, 7], ["x", "y", "y", "y", "y"]).toarray()
    np.testing.assert_array_equal(table, [[1, 1], [0, 3]])


@pytest.mark.parametrize("seed", range(4))
def test_agrees_with_sklearn_on_random_labelings(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(100, 2000))
    true = rng.integers(0, int(rng.integers(2, 40)), n)
    pred = np.where(rng.random(n) < 0.6, true, rng.integers(0, int(rng.integers(2, 60)), n))
    m = clustering_metrics(pred, true)
    reference = {
        "nmi": skm.normalized_mutual_info_score(true, pred),
        "ami": skm.adjusted_mutual_info_score(true, pred),
        "ari": skm.adjusted_rand_score(true, pred),
        "fmi": skm.fowlkes_mallows_score(true, pred),
        "homogeneity": skm.homogeneity_score(true, pred),
        "completeness": skm.completeness_score(true, pred),
        "v_measure": skm.v_measure_score(true, pred),
    }
    for key, value in reference.items():
        assert m[key] == pytest.approx(value, abs=1e-9), key
    table = skm.cluster.contingency_matrix(pred, true)
    rows, cols = linear_sum_assignment(table, maximize=True)
    assert m["acc"] == pytest.approx(table[rows, cols].sum() / n)


@pytest.mark.parametrize("shape", [(30, 50), (60, 20)])
def test_sparse_matching_equals_dense_hungarian(monkeypatch, shape):
    rng = np.random.default_rng(1)
    true = rng.integers(0, shape[1], 3000)
    pred = np.where(rng.random(3000) < 0.5, true % shape[0], rng.integers(0, shape[0], 3000))
    dense = clustering_accuracy(pred, true)
    monkeypatch.setattr(cm, "_DENSE_ASSIGNMENT_MAX", 0)
    assert clustering_accuracy(pred, true) == pytest.approx(dense)


def test_expected_mutual_information_matches_sklearn():
    rng = np.random.default_rng(2)
    for n_pred, n_true, n in [(5, 7, 200), (40, 30, 5000), (300, 200, 20000)]:
        pred = rng.integers(0, n_pred, n)
        true = rng.integers(0, n_true, n)
        table = skm.cluster.contingency_matrix(pred, true, sparse=True)
        ours = expected_mutual_information(np.bincount(pred), np.bincount(true))
        assert ours == pytest.approx(sklearn_emi(table, n), rel=1e-7)


def test_internal_metrics_agree_with_sklearn():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    labels = rng.integers(0, 5, 400)
    x[labels == 1] += 3
    m = clustering_metrics(labels, embeddings=x, silhouette_sample=1000)
    assert m["silhouette"] == pytest.approx(skm.silhouette_score(x, labels), rel=1e-5)
    assert m["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(x, labels), rel=1e-5)
    assert m["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(x, labels), rel=1e-5)
    sampled = clustering_metrics(labels, embeddings=x, silhouette_sample=200, seed=1)
    assert sampled["silhouette"] != m["silhouette"]
    assert sampled["calinski_harabasz"] == pytest.approx(m["calinski_harabasz"])


def test_bad_inputs_name_the_problem():
    with pytest.raises(ValueError, match="true has 3 entries but there are 4 points"):
        clustering_metrics([0, 1, 0, 1], [0, 1, 1])
    with pytest.raises(ValueError, match="true has a single class"):
        clustering_metrics([0, 1, 0, 1], [2, 2, 2, 2])
    with pytest.raises(ValueError, match="pred has a single cluster"):
        clustering_metrics([0, 0, 0], embeddings=np.ones((3, 2)))
    with pytest.raises(ValueError, match="pred must be 1-D"):
        clustering_metrics(np.zeros((2, 2), dtype=int))
    with pytest.raises(ValueError, match="embeddings row 1 contains inf"):
        clustering_metrics([0, 1], embeddings=np.array([[0.0], [np.inf]]))


@pytest.mark.slow
def test_a_million_points_and_ten_thousand_clusters():
    rng = np.random.default_rng(0)
    n, k = 1_000_000, 10_000
    true = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.7, true, rng.integers(0, k, n))
    tracemalloc.start()
    start = time.perf_counter()
    m = clustering_metrics(pred, true)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert m["n_clusters"] == k and 0.6 < m["acc"] < 0.8
    assert seconds < 120 and peak < 4 * 2**30
