"""Clustering of speaker embeddings into pseudo-labels.

Every clusterer has ``fit(embeddings, views=None, true_labels=None) ->
ClusteringResult``:

- :class:`KMeansClusterer` (faiss), :class:`GMMClusterer` (scikit-learn),
  :class:`AHCClusterer` (scikit-learn, k-means + weighted merge above a size);
- :class:`LabelFlipClusterer`: the true labels with a fraction flipped, for studies
  that need pseudo-label sets of every quality;
- :class:`CAMSAT` and :class:`IMSAT` (an MLP head trained with VAT,
  information maximisation and augmentation-consistency terms; the ablations
  SupCon, Mixup and InfoNCE are switched on through :class:`LossWeights`).

:func:`clustering_metrics` scores labels (ACC, NMI, AMI, ARI, FMI, purity,
homogeneity, completeness, V-measure, silhouette, Calinski-Harabasz,
Davies-Bouldin); :func:`save_history` / :func:`plot_history` keep and draw the
per-epoch curves; :func:`write_pseudo_labels` / :func:`read_pseudo_labels`
handle ``pseudo_labels.csv`` (columns ID, cluster).

Authors
 * camsat contributors 2026
"""

from .augment import EmbeddingAugment
from .baselines import AHCClusterer, GMMClusterer, KMeansClusterer, weighted_linkage
from .camsat import CAMSAT, IMSAT, LossWeights
from .degraded import LabelFlipClusterer
from .geometry import cluster_means, l2_normalize, nearest_neighbours
from .heads import ClusteringHead
from .history import load_history, plot_history, save_history
from .metrics import (
    clustering_accuracy,
    clustering_metrics,
    contingency_matrix,
    expected_mutual_information,
)
from .pseudo_labels import read_pseudo_labels, write_pseudo_labels
from .result import ClusteringResult
from .validation import check_embeddings, check_labels, check_n_clusters, check_views

__all__ = [
    "AHCClusterer",
    "CAMSAT",
    "ClusteringHead",
    "ClusteringResult",
    "EmbeddingAugment",
    "GMMClusterer",
    "IMSAT",
    "KMeansClusterer",
    "LabelFlipClusterer",
    "LossWeights",
    "check_embeddings",
    "check_labels",
    "check_n_clusters",
    "check_views",
    "cluster_means",
    "clustering_accuracy",
    "clustering_metrics",
    "contingency_matrix",
    "expected_mutual_information",
    "l2_normalize",
    "load_history",
    "nearest_neighbours",
    "plot_history",
    "read_pseudo_labels",
    "save_history",
    "weighted_linkage",
    "write_pseudo_labels",
]
