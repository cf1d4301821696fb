import pathlib

import faiss
import numpy as np
import pytest
from hyperpyyaml import load_hyperpyyaml

from camsat_lobes.clustering import (
    KMeansClusterer,
    OverclusterMergeClusterer,
    clustering_metrics,
)

REPO = pathlib.Path(__file__).resolve().parents[2]
FRAGMENT = REPO / "hparams" / "clustering" / "overcluster_merge.yaml"


@pytest.fixture(autouse=True)
def one_faiss_thread():
    """faiss' OpenMP threads spin on a busy machine: tiny k-means runs far faster on one."""
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(threads)


def speakers(n_speakers=6, per_speaker=40, dim=16, spread=0.15, seed=0):
    """Unit-norm embeddings around random speaker directions, and the speaker of each."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_speakers, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    true = np.repeat(np.arange(n_speakers), per_speaker)
    x = centres[true] + spread * rng.normal(size=(true.size, dim)) / np.sqrt(dim)
    return x.astype(np.float32), true


def test_well_separated_speakers_are_found():
    x, true = speakers()
    result = OverclusterMergeClusterer(6, n_preclusters=30, seed=1).fit(x)
    metrics = clustering_metrics(result.labels, true)
    assert result.n_clusters == 6
    assert metrics["acc"] == 1.0 and metrics["nmi"] == pytest.approx(1.0)
    assert result.centroids.shape == (6, 16)


def test_each_point_takes_the_merged_label_of_its_precluster():
    x, _ = speakers()
    pre = KMeansClusterer(30, seed=1).fit(x).labels
    labels = OverclusterMergeClusterer(6, n_preclusters=30, seed=1).fit(x).labels
    for cell in np.unique(pre):
        assert np.unique(labels[pre == cell]).size == 1


def test_merge_joins_the_sessions_that_kmeans_at_the_speaker_count_splits():
    # Each speaker has two sessions: two tight sub-clusters close to each other. k-means
    # at the speaker count splits some speakers across sessions and merges others; the
    # pre-clusters are session-pure and Ward merges the sessions back.
    rng = np.random.default_rng(3)
    n_speakers, dim = 8, 32
    centres = rng.normal(size=(n_speakers, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    sessions = centres[:, None, :] + 0.35 * rng.normal(size=(n_speakers, 2, dim)) / np.sqrt(dim)
    true = np.repeat(np.arange(n_speakers), 2 * 25)
    session_of = np.repeat(np.arange(2 * n_speakers), 25)
    x = sessions.reshape(-1, dim)[session_of] + 0.05 * rng.normal(size=(true.size, dim))
    x = x.astype(np.float32)
    kmeans = KMeansClusterer(n_speakers, seed=0).fit(x)
    merged = OverclusterMergeClusterer(n_speakers, n_preclusters=48, seed=0).fit(x)
    assert clustering_metrics(kmeans.labels, true)["acc"] < 0.9
    assert clustering_metrics(merged.labels, true)["acc"] == 1.0


def test_as_many_preclusters_as_clusters_is_plain_kmeans():
    x, _ = speakers(seed=2)
    kmeans = KMeansClusterer(6, seed=4).fit(x).labels
    merged = OverclusterMergeClusterer(6, n_preclusters=6, seed=4).fit(x).labels
    assert clustering_metrics(merged, kmeans)["ari"] == pytest.approx(1.0)


def test_weighted_merge_also_finds_the_speakers():
    x, true = speakers(seed=5)
    result = OverclusterMergeClusterer(6, n_preclusters=30, weighted=True, linkage="ward").fit(x)
    assert clustering_metrics(result.labels, true)["acc"] == 1.0


def test_fewer_preclusters_than_clusters_is_an_error():
    x, _ = speakers()
    with pytest.raises(ValueError, match="n_preclusters=4 is below n_clusters=6"):
        OverclusterMergeClusterer(6, n_preclusters=4).fit(x)


def test_more_preclusters_than_points_is_an_error():
    x, _ = speakers(per_speaker=5)
    with pytest.raises(ValueError, match="n_preclusters=100 but only 30 points"):
        OverclusterMergeClusterer(6, n_preclusters=100).fit(x)


def test_unknown_linkage_is_an_error():
    with pytest.raises(ValueError, match="linkage='median'"):
        OverclusterMergeClusterer(6, n_preclusters=30, linkage="median")


def test_yaml_fragment_scales_the_preclusters_with_the_clusters(tmp_path):
    loaded = load_hyperpyyaml(FRAGMENT.read_text())
    clusterer = loaded["clusterer"]
    assert isinstance(clusterer, OverclusterMergeClusterer)
    assert (clusterer.n_clusters, clusterer.n_preclusters) == (500, 3333)
    assert clusterer.normalize is False and clusterer.linkage == "ward"
    # As a recipe includes it: overriding n_clusters moves n_preclusters with it.
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"system: !include:{FRAGMENT}\n    n_clusters: 30\n    seed: 7\n")
    system = load_hyperpyyaml(recipe.read_text())["system"]
    assert (system["clusterer"].n_clusters, system["clusterer"].n_preclusters) == (30, 200)
    assert system["clusterer"].seed == 7
