"""Which clustering metric predicts the EER? Pearson correlations over many pseudo-label sets.

Each record describes one pseudo-label set and the speaker network trained on it:
its clustering metrics, the EER, and descriptive fields (method, family, input
normalisation). :func:`correlation_table` correlates every metric with the EER
inside groups of records (all systems, classical vs deep methods, L2 vs std
scaling, ACC above vs below 50 %), and :func:`plot_correlation_heatmap` draws the
table as the paper's heatmap.

Authors
 * camsat contributors 2026
"""

import csv
import logging

import numpy as np

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GROUPS",
    "METRICS",
    "correlation_table",
    "plot_correlation_heatmap",
    "write_correlation_csv",
]

METRICS = (
    "acc",
    "nmi",
    "ami",
    "ari",
    "fmi",
    "purity",
    "homogeneity",
    "completeness",
    "v_measure",
    "n_clusters",
    "silhouette",
    "calinski_harabasz",
    "davies_bouldin",
)

DEFAULT_GROUPS = {
    "all": lambda r: True,
    "classical": lambda r: r["family"] == "classical",
    "deep": lambda r: r["family"] == "deep",
    "L2": lambda r: r["embedding_norm"] == "l2",
    "std": lambda r: r["embedding_norm"] == "std",
    "ACC>=50%": lambda r: r["acc"] >= 0.5,
    "ACC<50%": lambda r: r["acc"] < 0.5,
}


def correlation_table(records, metrics=METRICS, target="EER", groups=None, min_records=3):
    """Pearson correlation of each metric with ``target`` inside each group of records.

    Arguments
    ---------
    records : list of dict
        One dict per pseudo-label set with the metric values, the target and the
        fields the group tests read.
    metrics : sequence of str
        Metric names (keys of the records).
    target : str
        The value the metrics are correlated with.
    groups : dict of str -> callable, optional
        Group name to a test on a record; :data:`DEFAULT_GROUPS` by default.
    min_records : int
        Groups with fewer records (or a constant metric) get NaN rather than a
        meaningless coefficient.

    Returns
    -------
    dict
        ``{"groups": [...], "metrics": [...], "r": (M, G) array, "n": [records per group]}``.

    Example
    -------
    >>> records = [{"acc": a, "nmi": a / 2, "EER": 10 - 5 * a} for a in (0.2, 0.5, 0.9)]
    >>> table = correlation_table(records, ["acc", "nmi"], groups={"all": lambda r: True})
    >>> table["r"].round(3).tolist(), table["n"]
    ([[-1.0], [-1.0]], [3])
    """
    groups = DEFAULT_GROUPS if groups is None else groups
    r = np.full((len(metrics), len(groups)), np.nan)
    counts = []
    for g, test in enumerate(groups.values()):
        members = [rec for rec in records if test(rec)]
        counts.append(len(members))
        if len(members) < min_records:
            continue
        y = np.array([rec[target] for rec in members], dtype=float)
        for m, metric in enumerate(metrics):
            x = np.array([rec.get(metric, np.nan) for rec in members], dtype=float)
            keep = np.isfinite(x) & np.isfinite(y)
            if keep.sum() >= min_records and x[keep].std() > 0 and y[keep].std() > 0:
                r[m, g] = np.corrcoef(x[keep], y[keep])[0, 1]
    return {"groups": list(groups), "metrics": list(metrics), "r": r, "n": counts}


def write_correlation_csv(table, path):
    """Write a correlation table as CSV (one row per metric, one column per group).

    Arguments
    ---------
    table : dict
        As returned by :func:`correlation_table`.
    path : str or path
        The CSV file to write.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> table = {"groups": ["all"], "metrics": ["acc"], "r": np.array([[-0.9]]), "n": [5]}
    >>> path = Path(tempfile.mkdtemp()) / "r.csv"
    >>> write_correlation_csv(table, path)
    >>> path.read_text().splitlines()
    ['metric,all (n=5)', 'acc,-0.9']
    """
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", *(f"{g} (n={n})" for g, n in zip(table["groups"], table["n"]))])
        for metric, row in zip(table["metrics"], table["r"]):
            writer.writerow([metric, *(round(float(v), 4) for v in row)])


def plot_correlation_heatmap(table, path, title="Pearson correlation with EER"):
    """Draw a correlation table as a heatmap PNG (blue negative, red positive).

    Arguments
    ---------
    table : dict
        As returned by :func:`correlation_table`.
    path : str or path
        The PNG file to write.
    title : str
        The figure title.

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> table = {"groups": ["all"], "metrics": ["acc"], "r": np.array([[-0.9]]), "n": [5]}
    >>> path = Path(tempfile.mkdtemp()) / "heatmap.png"
    >>> plot_correlation_heatmap(table, path)
    >>> path.stat().st_size > 0
    True
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = np.asarray(table["r"], dtype=float)
    fig, ax = plt.subplots(
        figsize=(1.2 * len(table["groups"]) + 3, 0.45 * len(table["metrics"]) + 2)
    )
    image = ax.imshow(r, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(table["groups"])))
    ax.set_xticklabels([f"{g}\n(n={n})" for g, n in zip(table["groups"], table["n"])])
    ax.set_yticks(range(len(table["metrics"])))
    ax.set_yticklabels(table["metrics"])
    for (m, g), value in np.ndenumerate(r):
        ax.text(g, m, "–" if np.isnan(value) else f"{value:.2f}", ha="center", va="center")
    fig.colorbar(image, ax=ax, label="Pearson r")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
