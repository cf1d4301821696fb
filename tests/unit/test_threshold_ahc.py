import pathlib

import faiss
import numpy as np
import pytest
from hyperpyyaml import load_hyperpyyaml

from camsat_lobes.clustering import (
    ThresholdAHCClusterer,
    clustering_metrics,
    own_cluster_posterior,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
FRAGMENT = REPO / "hparams" / "clustering" / "threshold_ahc.yaml"
NO_HYGIENE = {"min_size": 1, "max_size": None, "min_confidence": 0.0}


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """faiss' OpenMP threads spin on a busy machine: tiny k-means runs far faster on one."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def orthogonal_directions(n, dim, seed=0):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(dim, dim)))
    return q[:, :n].T


def blobs(sizes, dim=16, spread=0.05, seed=0):
    """Tight clusters around orthogonal directions, and the cluster of each point."""
    rng = np.random.default_rng(seed)
    centres = orthogonal_directions(len(sizes), dim, seed)
    true = np.repeat(np.arange(len(sizes)), sizes)
    x = centres[true] + spread * rng.normal(size=(true.size, dim))
    return x.astype(np.float32), true


def test_well_separated_clusters_are_found_and_all_kept():
    x, true = blobs([20] * 5)
    result = ThresholdAHCClusterer(0.5, min_size=5, max_size=50).fit(x)
    metrics = clustering_metrics(result.labels, true)
    assert result.n_clusters == 5
    assert metrics["kept_fraction"] == 1.0
    assert metrics["acc"] == 1.0 and metrics["nmi"] == pytest.approx(1.0)
    assert result.centroids.shape == (5, 16)


def test_no_cluster_count_is_set():
    assert ThresholdAHCClusterer(0.5).n_clusters is None


def test_raising_the_threshold_gives_more_clusters():
    # 4 groups of 2 sub-groups: the sub-groups of a group are at cosine about 0.8,
    # the groups at cosine about 0.
    rng = np.random.default_rng(1)
    groups = orthogonal_directions(4, 32, seed=1)
    offsets = 0.5 * orthogonal_directions(8, 32, seed=2)
    centres = (groups[:, None, :] + offsets.reshape(4, 2, 32)).reshape(8, 32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sub = np.repeat(np.arange(8), 10)
    x = (centres[sub] + 0.02 * rng.normal(size=(80, 32))).astype(np.float32)
    counts = [
        ThresholdAHCClusterer(t, **NO_HYGIENE).fit(x).n_clusters for t in (0.2, 0.5, 0.9, 0.999)
    ]
    assert counts[:3] == [4, 4, 8]
    assert counts[3] > 8
    assert counts == sorted(counts)
    fine = ThresholdAHCClusterer(0.9, **NO_HYGIENE).fit(x)
    assert clustering_metrics(fine.labels, sub)["acc"] == 1.0


def test_size_filter_drops_exactly_the_too_small_and_too_large_clusters():
    sizes = [3, 10, 20, 60]
    x, true = blobs(sizes)
    result = ThresholdAHCClusterer(0.5, min_size=5, max_size=50, min_confidence=0.0).fit(x)
    dropped = result.labels == -1
    assert np.array_equal(dropped, np.isin(true, [0, 3]))
    assert result.n_clusters == 2
    assert clustering_metrics(result.labels, true)["acc"] == 1.0
    kept_sizes = sorted(np.bincount(result.labels[~dropped]).tolist())
    assert kept_sizes == [10, 20]


def test_confidence_filter_drops_the_points_between_two_clusters():
    rng = np.random.default_rng(4)
    a, b = orthogonal_directions(2, 16, seed=4)
    b = 0.5 * a + np.sqrt(0.75) * b  # cos(a, b) = 0.5: the clusters stay apart at 0.7
    middle = (a + b) / np.linalg.norm(a + b)  # cos 0.87 with both
    clean = np.concatenate(
        [a + 0.02 * rng.normal(size=(20, 16)), b + 0.02 * rng.normal(size=(20, 16))]
    )
    ambiguous = middle + 0.01 * rng.normal(size=(3, 16))
    x = np.concatenate([clean, ambiguous]).astype(np.float32)
    true = np.repeat([0, 1, 2], [20, 20, 3])

    unfiltered = ThresholdAHCClusterer(0.7, min_size=1, max_size=None, min_confidence=0.0).fit(x)
    assert unfiltered.n_clusters == 2 and (unfiltered.labels >= 0).all()  # they joined a side

    result = ThresholdAHCClusterer(0.7, min_size=1, max_size=None, min_confidence=0.9).fit(x)
    assert np.array_equal(result.labels == -1, true == 2)
    assert result.n_clusters == 2


def test_precluster_path_for_large_inputs_finds_the_clusters():
    x, true = blobs([40] * 5, seed=6)
    result = ThresholdAHCClusterer(0.5, min_size=5, max_points=50, samples_per_precluster=4).fit(x)
    metrics = clustering_metrics(result.labels, true)
    assert metrics["kept_fraction"] == 1.0 and metrics["acc"] == 1.0


def test_everything_left_out_is_an_error_with_the_counts():
    x, _ = blobs([5] * 3)
    with pytest.raises(ValueError, match="every point was left out: .* 3 clusters from 15"):
        ThresholdAHCClusterer(0.5, min_size=8).fit(x)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"threshold": 1.5}, "threshold=1.5 is a cosine similarity and must lie in"),
        ({"threshold": 0.5, "linkage": "ward"}, "linkage='ward'"),
        ({"threshold": 0.5, "min_size": 0}, "min_size=0"),
        ({"threshold": 0.5, "min_size": 8, "max_size": 4}, "max_size=4 is below min_size=8"),
        ({"threshold": 0.5, "min_confidence": 1.0}, "min_confidence=1.0"),
        ({"threshold": 0.5, "temperature": 0.0}, "temperature=0.0"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ThresholdAHCClusterer(**kwargs)


def test_posterior_is_a_cosine_softmax():
    centres = np.eye(3)
    points = np.array([[1.0, 0.0, 0.0], [np.sqrt(0.5), np.sqrt(0.5), 0.0]])
    posterior = own_cluster_posterior(points, centres, np.array([0, 1]), temperature=0.1)
    logits = points @ centres.T / 0.1
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(posterior, expected[[0, 1], [0, 1]])
    assert posterior[1] == pytest.approx(1 / (2 + np.exp(-np.sqrt(0.5) / 0.1)))  # a tie


def test_yaml_fragment_loads():
    loaded = load_hyperpyyaml(FRAGMENT.read_text())
    clusterer = loaded["clusterer"]
    assert isinstance(clusterer, ThresholdAHCClusterer)
    assert (clusterer.threshold, clusterer.min_size, clusterer.max_size) == (0.8, 8, 50)
    assert clusterer.min_confidence == 0.9 and clusterer.normalize is False
    assert clusterer.n_clusters is None
