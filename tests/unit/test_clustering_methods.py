"""The clusterers: one interface, blobs recovered, bad input named, cluster-count discovery."""

import json

import numpy as np
import pytest
import torch

from camsat_lobes.clustering import (
    CAMSAT,
    IMSAT,
    AHCClusterer,
    GMMClusterer,
    KMeansClusterer,
    LossWeights,
    clustering_metrics,
    load_history,
    plot_history,
    save_history,
)


def sphere_blobs(n_clusters=10, per_cluster=80, dim=32, n_views=4, seed=0):
    """Well-separated blobs on the unit hypersphere, with noisier copies as views."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    x = centres[labels] + 0.25 * rng.normal(size=(labels.size, dim)) / np.sqrt(dim)
    views = x[:, None, :] + 0.15 * rng.normal(size=(labels.size, n_views, dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    views /= np.linalg.norm(views, axis=2, keepdims=True)
    return x.astype(np.float32), views.astype(np.float32), labels


BASELINES = {
    "kmeans": lambda k: KMeansClusterer(k, seed=0),
    "gmm": lambda k: GMMClusterer(k, seed=0),
    "ahc": lambda k: AHCClusterer(k, seed=0),
    "ahc_over_kmeans": lambda k: AHCClusterer(k, seed=0, max_points=200, n_preclusters=60),
}


@pytest.mark.parametrize("name", BASELINES)
def test_baselines_recover_separated_blobs(name):
    x, _, labels = sphere_blobs()
    result = BASELINES[name](10).fit(x)
    assert result.labels.shape == labels.shape
    assert result.n_clusters == 10
    assert clustering_metrics(result.labels, labels)["nmi"] > 0.95
    if result.centroids is not None:
        assert result.centroids.shape == (10, x.shape[1])
    if result.probabilities is not None:
        np.testing.assert_allclose(result.probabilities.sum(axis=1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("make", [*BASELINES.values(), lambda k: CAMSAT(k, epochs=1)])
def test_bad_inputs_are_named(make):
    x, _, _ = sphere_blobs(n_clusters=2, per_cluster=10)
    with_nan = x.copy()
    with_nan[3, 0] = np.nan
    with pytest.raises(ValueError, match="NaN|nan|finite"):
        make(2).fit(with_nan)
    with pytest.raises(ValueError, match="n_clusters=30"):
        make(30).fit(x)
    with pytest.raises(ValueError, match="2-D|shape"):
        make(2).fit(x[0])


def test_camsat_discovers_the_cluster_count_from_twice_too_many():
    """Started at 2x the true count, CAMSAT ends within 20 % of it and beats k-means' NMI."""
    x, views, labels = sphere_blobs()
    kmeans_nmi = clustering_metrics(KMeansClusterer(10, seed=0).fit(x).labels, labels)["nmi"]
    model = CAMSAT(
        20,
        seed=0,
        hidden_sizes=(128,),
        epochs=30,
        batch_size=200,
        weights=LossWeights(mu=1.0),
        progress=False,
    )
    result = model.fit(x, views=views, true_labels=labels)
    assert 8 <= result.n_clusters <= 12, result.n_clusters
    assert clustering_metrics(result.labels, labels)["nmi"] >= kmeans_nmi
    counts = [record["n_clusters"] for record in result.history]
    assert len(counts) == 30 and counts[-1] == result.n_clusters
    assert {"vat", "conditional_entropy", "augmentation", "symmetry", "nmi"} <= set(
        result.history[-1]
    )


def test_imsat_has_no_view_terms_and_ablations_add_theirs():
    x, views, labels = sphere_blobs(n_clusters=3, per_cluster=20)
    imsat = IMSAT(6, hidden_sizes=(16,), epochs=1, batch_size=30, progress=False).fit(x)
    assert "augmentation" not in imsat.history[0] and "symmetry" not in imsat.history[0]
    weights = LossWeights(supcon=1.0, mixup=1.0, infonce=1.0)
    model = CAMSAT(6, hidden_sizes=(16,), epochs=1, batch_size=30, weights=weights, progress=False)
    history = model.fit(x, views=views).history[0]
    assert {"supcon", "mixup", "infonce", "augmentation", "symmetry"} <= set(history)


def test_history_round_trip_and_curves(tmp_path):
    x, views, labels = sphere_blobs(n_clusters=3, per_cluster=20)
    model = CAMSAT(6, hidden_sizes=(16,), epochs=3, batch_size=30, progress=False)
    history = model.fit(x, views=views, true_labels=labels).history
    save_history(history, tmp_path / "history.json")
    loaded = load_history(tmp_path / "history.json")
    assert [r["n_clusters"] for r in loaded] == [r["n_clusters"] for r in history]
    assert json.loads((tmp_path / "history.json").read_text())
    png = plot_history({"CAMSAT": loaded}, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_step_uses_views_per_step_views_and_imsat_ignores_views():
    x, views, _ = sphere_blobs(n_clusters=3, per_cluster=20)
    model = CAMSAT(6, hidden_sizes=(16,), epochs=1, batch_size=30, views_per_step=2, progress=False)
    index = torch.arange(5)
    with torch.random.fork_rng():
        drawn = model._views_of(torch.from_numpy(views), index)
    assert drawn.shape == (5, 2, x.shape[1])
    for point, pair in zip(index, drawn):  # two different views of that very point
        rows = [int(np.flatnonzero((views[point] == v.numpy()).all(axis=1))[0]) for v in pair]
        assert rows[0] != rows[1]
    first, again = (model.fit(x, views=views).labels for _ in range(2))
    np.testing.assert_array_equal(first, again)  # the draws follow the seed
    with pytest.raises(ValueError, match="views_per_step=1"):
        CAMSAT(6, views_per_step=1)
    model.views_per_step = 1  # set after construction, as the benches do
    with pytest.raises(ValueError, match="views_per_step=1"):
        model.fit(x, views=views)
    imsat = IMSAT(6, hidden_sizes=(16,), epochs=2, batch_size=30, views_per_step=2, progress=False)
    np.testing.assert_array_equal(imsat.fit(x).labels, imsat.fit(x, views=views).labels)


def test_label_flip_moves_exactly_the_fraction_to_other_clusters():
    from camsat_lobes.clustering import LabelFlipClusterer

    true = np.repeat(np.arange(10), 30)
    x = np.zeros((true.size, 4))
    result = LabelFlipClusterer(0.3, seed=1).fit(x, true_labels=true)
    assert (result.labels != true).sum() == 90  # every chosen point lands elsewhere
    assert set(result.labels) <= set(range(10))
    again = LabelFlipClusterer(0.3, seed=1).fit(x, true_labels=true)
    assert (again.labels == result.labels).all()
    assert (LabelFlipClusterer(0.0).fit(x, true_labels=true).labels == true).all()
    metrics = clustering_metrics(result.labels, true)
    assert 0.6 < metrics["acc"] < 0.8  # about 1 - 0.3
    wider = LabelFlipClusterer(1.0, n_clusters=15, seed=1).fit(x, true_labels=true)
    assert (wider.labels != true).all() and wider.labels.max() <= 14
    with pytest.raises(ValueError, match="flip_fraction must be in"):
        LabelFlipClusterer(1.5)
    with pytest.raises(ValueError, match="at least the number of true classes"):
        LabelFlipClusterer(0.1, n_clusters=5).fit(x, true_labels=true)
    with pytest.raises(ValueError, match="true_labels has 300 entries but there are 10 points"):
        LabelFlipClusterer(0.1).fit(x[:10], true_labels=true)
