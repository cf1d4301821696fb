"""Clustering of speaker embeddings into pseudo-labels.

Every clusterer has ``fit(embeddings, views=None, true_labels=None) ->
ClusteringResult``:

- :class:`KMeansClusterer` (faiss), :class:`GMMClusterer` (scikit-learn),
  :class:`AHCClusterer` (scikit-learn, k-means + weighted merge above a size);
- the field's pseudo-label pipelines: :class:`OverclusterMergeClusterer`
  (sslsv, wavlm_ssl_sv: k-means into many centroids, Ward AHC of the centroids)
  and :class:`ThresholdAHCClusterer` (Hyperion: cosine AHC stopped by a
  threshold, then size and confidence filters that leave points out, label -1);
- :class:`LabelFlipClusterer`: the true labels with a fraction flipped, for studies
  that need pseudo-label sets of every quality;
- :class:`CAMSAT` and :class:`IMSAT` (an MLP head trained with VAT,
  information maximisation and augmentation-consistency terms; the ablations
  SupCon, Mixup and InfoNCE are switched on through :class:`LossWeights`).

:func:`clustering_metrics` scores labels (ACC, NMI, AMI, ARI, FMI, purity,
homogeneity, completeness, V-measure, silhouette, Calinski-Harabasz,
Davies-Bouldin); :func:`save_history` / :func:`plot_history` keep and draw the
per-epoch curves; :func:`write_pseudo_labels` / :func:`read_pseudo_labels`
handle ``pseudo_labels.csv`` (columns ID, cluster). Label -1 means "left out"
everywhere: no cluster, not scored, not trained on.

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
from .overcluster import OverclusterMergeClusterer
from .pseudo_labels import read_pseudo_labels, write_pseudo_labels
from .result import ClusteringResult
from .threshold_ahc import ThresholdAHCClusterer, own_cluster_posterior
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
    "OverclusterMergeClusterer",
    "ThresholdAHCClusterer",
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
    "own_cluster_posterior",
    "plot_history",
    "read_pseudo_labels",
    "save_history",
    "weighted_linkage",
    "write_pseudo_labels",
]
