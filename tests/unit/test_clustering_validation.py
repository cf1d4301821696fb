"""Clusterers refuse what they cannot do: more clusters than distinct points, batches of one."""

import numpy as np
import pytest
import torch

from camsat_lobes.clustering import CAMSAT, IMSAT, AHCClusterer, GMMClusterer, KMeansClusterer
from camsat_lobes.clustering.camsat import _number_of_batches
from camsat_lobes.clustering.validation import check_batch_size, check_distinct_points

CLUSTERERS = {
    "kmeans": lambda k: KMeansClusterer(k, seed=0),
    "gmm": lambda k: GMMClusterer(k, seed=0),
    "ahc": lambda k: AHCClusterer(k, seed=0),
    "ahc_over_kmeans": lambda k: AHCClusterer(k, seed=0, max_points=20, n_preclusters=10),
}


def groups(n_distinct, n_points=40, dim=3):
    """``n_points`` points: ``n_distinct`` random points, each repeated as often."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(n_distinct, dim)).astype(np.float32)
    return np.repeat(centres, n_points // n_distinct, axis=0)


@pytest.mark.parametrize("name", CLUSTERERS)
def test_more_clusters_than_distinct_points_is_an_error(name):
    with pytest.raises(ValueError, match=r"only 1 distinct point \(of 40\) for n_clusters=4"):
        CLUSTERERS[name](4).fit(groups(1))
    with pytest.raises(ValueError, match=r"only 2 distinct points \(of 40\) for n_clusters=3"):
        CLUSTERERS[name](3).fit(groups(2))


@pytest.mark.parametrize("name", CLUSTERERS)
def test_as_many_clusters_as_distinct_points_keeps_copies_together(name):
    x = groups(3, n_points=42)
    labels = CLUSTERERS[name](3).fit(x).labels
    assert len(set(labels)) == 3
    for start in range(0, 42, 14):
        assert len(set(labels[start : start + 14])) == 1


def test_points_identical_after_normalisation_count_once():
    x = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [0.0, 1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="L2-normalised embeddings hold only 2 distinct"):
        KMeansClusterer(3).fit(x)
    assert KMeansClusterer(3, spherical=False).fit(x).labels.shape == (4,)


def test_distinct_points_check_treats_signed_zeros_as_equal():
    x = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="only 2 distinct points"):
        check_distinct_points(x, 3)
    assert check_distinct_points(np.eye(5, dtype=np.float32), 5) == 5


@pytest.mark.parametrize("method", [CAMSAT, IMSAT])
def test_batch_size_one_is_refused_at_construction(method):
    with pytest.raises(ValueError, match="batch_size=1: mini-batches need at least 2 points"):
        method(4, batch_size=1)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        method(4, batch_size=2.5)


def test_batch_size_set_after_construction_is_checked_at_fit():
    model = CAMSAT(2, hidden_sizes=(8,), epochs=1, batch_size=4, progress=False)
    model.batch_size = 0
    with pytest.raises(ValueError, match="batch_size=0"):
        model.fit(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))


@pytest.mark.parametrize("n_points", [3, 7])
def test_a_trailing_batch_of_one_point_never_happens(n_points):
    x = np.random.default_rng(0).normal(size=(n_points, 4)).astype(np.float32)
    model = IMSAT(2, hidden_sizes=(8,), epochs=2, batch_size=2, progress=False)
    assert model.fit(x).labels.shape == (n_points,)


def test_batches_always_hold_two_points_or_more():
    for n_points in range(2, 60):
        for batch_size in range(2, 12):
            parts = torch.tensor_split(
                torch.arange(n_points), _number_of_batches(n_points, batch_size)
            )
            assert min(len(part) for part in parts) >= 2, (n_points, batch_size)
    assert check_batch_size(np.int64(8)) == 8
