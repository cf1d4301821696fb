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

    A coefficient that cannot be computed is NaN, and its reason is kept in
    ``notes`` (and logged once per group): a group with fewer than ``min_records``
    records, a constant or missing ``target`` in the group, or a constant or
    missing metric.

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
        Fewest records (with finite values) a coefficient is computed from.

    Returns
    -------
    dict
        ``{"groups": [...], "metrics": [...], "r": (M, G) array, "n": [records per
        group], "notes": (M, G) array of str}``; a note is empty where ``r`` is a number.

    Example
    -------
    >>> records = [{"acc": a, "nmi": a / 2, "EER": 10 - 5 * a} for a in (0.2, 0.5, 0.9)]
    >>> table = correlation_table(records, ["acc", "nmi"], groups={"all": lambda r: True})
    >>> table["r"].round(3).tolist(), table["n"]
    ([[-1.0], [-1.0]], [3])
    >>> flat = [{"acc": a, "EER": 0.0} for a in (0.2, 0.5, 0.9)]
    >>> correlation_table(flat, ["acc"], groups={"all": lambda r: True})["notes"].tolist()
    [['EER constant']]
    """
    groups = DEFAULT_GROUPS if groups is None else groups
    r = np.full((len(metrics), len(groups)), np.nan)
    notes = np.full((len(metrics), len(groups)), "", dtype=object)
    counts = []
    for g, (name, test) in enumerate(groups.items()):
        members = [rec for rec in records if test(rec)]
        counts.append(len(members))
        y = np.array([rec.get(target, np.nan) for rec in members], dtype=float)
        problem = _target_problem(y, target, min_records)
        if problem:
            notes[:, g] = problem
            logger.warning("correlation group %r: no coefficient (%s)", name, problem)
            continue
        for m, metric in enumerate(metrics):
            x = np.array([rec.get(metric, np.nan) for rec in members], dtype=float)
            keep = np.isfinite(x) & np.isfinite(y)
            if keep.sum() < min_records:
                notes[m, g] = f"{metric} missing"
            elif x[keep].std() == 0 or y[keep].std() == 0:
                notes[m, g] = f"{metric} constant"
            else:
                r[m, g] = np.corrcoef(x[keep], y[keep])[0, 1]
    return {"groups": list(groups), "metrics": list(metrics), "r": r, "n": counts, "notes": notes}


def _target_problem(y, target, min_records):
    """Say why no metric of a group can be correlated with the target (empty: none)."""
    finite = y[np.isfinite(y)]
    if len(y) < min_records:
        return f"{len(y)} sets < {min_records}"
    if len(finite) < min_records:
        return f"{target} missing"
    if finite.std() == 0:
        return f"{target} constant"
    return ""


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
    ['metric,all (n=5)', 'acc,-0.9000']
    """
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["metric", *(f"{g} (n={n})" for g, n in zip(table["groups"], table["n"]))])
        notes = table.get("notes", np.full(np.shape(table["r"]), ""))
        for metric, row, reasons in zip(table["metrics"], table["r"], notes):
            writer.writerow([metric, *(_cell(v, why, 4) for v, why in zip(row, reasons))])


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
    notes = table.get("notes", np.full(r.shape, ""))
    for (m, g), value in np.ndenumerate(r):
        text = _cell(value, notes[m][g], 2)
        ax.text(g, m, text, ha="center", va="center", fontsize=8 if len(text) > 5 else None)
    fig.colorbar(image, ax=ax, label="Pearson r")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cell(value, reason, digits):
    """Format a coefficient with ``digits`` decimals, or give the reason it is missing."""
    return (reason or "n/a") if np.isnan(value) else f"{value:.{digits}f}"
