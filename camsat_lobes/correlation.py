"""Which clustering metric predicts the EER? Pearson correlations over many pseudo-label sets.

Each record describes one pseudo-label set and the speaker network trained on it:
its clustering metrics, the EER, and descriptive fields (method, family, input
normalisation). :func:`correlation_table` correlates every metric with the EER
inside groups of records (all systems, classical vs deep methods and both, L2 vs std
scaling, ACC above vs below 50 %: the paper's four heatmaps, :data:`HEATMAPS`),
optionally split further by a field such as the regularisation
(:func:`split_groups`) and with percentile intervals from a bootstrap over the
records. :func:`plot_correlation_heatmap` draws a table as the paper's heatmap and
:func:`write_coefficients_csv` lists every coefficient with its interval.

Authors
 * camsat contributors 2026
"""

import csv
import logging

import numpy as np

from camsat_lobes.bootstrap import percentile_interval

logger = logging.getLogger(__name__)

__all__ = [
    "DEFAULT_GROUPS",
    "HEATMAPS",
    "METRICS",
    "correlation_table",
    "plot_correlation_heatmap",
    "split_groups",
    "write_coefficients_csv",
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

#: Fewest sets a coefficient's bootstrap interval is computed from: resampling fewer
#: pairs repeats the same few points, and the percentile interval means nothing.
MIN_SETS_FOR_INTERVAL = 8

#: The paper's four heatmaps, each a split of the pseudo-label sets into groups.
HEATMAPS = {
    "all": {"all": lambda r: True},
    "family": {
        "classical": lambda r: r["family"] == "classical",
        "deep": lambda r: r["family"] == "deep",
        # both families: the pseudo-labels a clustering made, without the flipped true labels
        "clusterings": lambda r: r["family"] in ("classical", "deep"),
    },
    "normalisation": {
        "L2": lambda r: r["embedding_norm"] == "l2",
        "std": lambda r: r["embedding_norm"] == "std",
    },
    "accuracy": {
        "ACC>=50%": lambda r: r["acc"] >= 0.5,
        "ACC<50%": lambda r: r["acc"] < 0.5,
    },
}

#: Every group of the four heatmaps side by side.
DEFAULT_GROUPS = {name: test for groups in HEATMAPS.values() for name, test in groups.items()}


def split_groups(groups, field, values):
    """Split every group by the value of one field (e.g. the regularisation).

    Arguments
    ---------
    groups : dict of str -> callable
        Group name to a test on a record.
    field : str
        The record field to split on.
    values : sequence
        Its values, one column per value inside each group.

    Returns
    -------
    dict of str -> callable
        ``"<group> | <value>"`` to the test of the group and the value.

    Example
    -------
    >>> split = split_groups(HEATMAPS["all"], "mix", ["none", "i-mix"])
    >>> list(split), split["all | i-mix"]({"mix": "i-mix"})
    (['all | none', 'all | i-mix'], True)
    """
    return {
        f"{name} | {value}": (lambda r, test=test, value=value: test(r) and r[field] == value)
        for name, test in groups.items()
        for value in values
    }


def correlation_table(
    records,
    metrics=METRICS,
    target="EER",
    groups=None,
    min_records=3,
    n_resamples=0,
    confidence=0.95,
    seed=1234,
):
    """Pearson correlation of each metric with ``target`` inside each group of records.

    A coefficient that cannot be computed is NaN, and its reason is kept in
    ``notes`` (and logged once per group): a group with fewer than ``min_records``
    records, a constant or missing ``target`` in the group, or a constant or
    missing metric. With ``n_resamples``, every coefficient also gets a percentile
    interval from a bootstrap over the records of its group (the pseudo-label sets).

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
    n_resamples : int
        Bootstrap resamples of each group's records for the intervals (0: none).
    confidence : float
        Coverage of the percentile intervals.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        ``{"groups": [...], "metrics": [...], "r": (M, G) array, "n": [records per
        group], "notes": (M, G) array of str}``; a note is empty where ``r`` is a number.
        With ``n_resamples``, also ``"low"`` and ``"high"``: (M, G) interval bounds
        (NaN for a group of fewer than :data:`MIN_SETS_FOR_INTERVAL` sets, or where
        fewer than half the resamples give a coefficient).

    Example
    -------
    >>> records = [{"acc": a, "nmi": a / 2, "EER": 10 - 5 * a} for a in (0.2, 0.5, 0.9)]
    >>> table = correlation_table(records, ["acc", "nmi"], groups={"all": lambda r: True})
    >>> table["r"].round(3).tolist(), table["n"]
    ([[-1.0], [-1.0]], [3])
    >>> noise = [1, -1, 0, 1, -1, 0, 1, -1, 0, 1]
    >>> noisy = [{"acc": a / 10, "EER": 10 - a / 2 + e} for a, e in zip(range(10), noise)]
    >>> table = correlation_table(noisy, ["acc"], groups={"all": lambda r: True}, n_resamples=200)
    >>> bool(table["low"][0, 0] <= table["r"][0, 0] <= table["high"][0, 0])
    True
    >>> flat = [{"acc": a, "EER": 0.0} for a in (0.2, 0.5, 0.9)]
    >>> correlation_table(flat, ["acc"], groups={"all": lambda r: True})["notes"].tolist()
    [['EER constant']]
    """
    groups = DEFAULT_GROUPS if groups is None else groups
    r = np.full((len(metrics), len(groups)), np.nan)
    low, high = np.full_like(r, np.nan), np.full_like(r, np.nan)
    notes = np.full((len(metrics), len(groups)), "", dtype=object)
    rng = np.random.default_rng(seed)
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
                if n_resamples and keep.sum() >= MIN_SETS_FOR_INTERVAL:
                    resampled = _bootstrap_pearson(x[keep], y[keep], n_resamples, rng)
                    low[m, g], high[m, g] = _finite_percentile_interval(resampled, confidence)
    table = {"groups": list(groups), "metrics": list(metrics), "r": r, "n": counts, "notes": notes}
    if n_resamples:
        table.update(low=low, high=high, confidence=confidence, n_resamples=n_resamples)
    return table


def _bootstrap_pearson(x, y, n_resamples, rng):
    """Pearson r of ``n_resamples`` resamples (with replacement) of the pairs (x, y).

    A resample in which x or y is constant gives NaN.
    """
    idx = rng.integers(0, len(x), size=(n_resamples, len(x)))
    xs = x[idx] - x[idx].mean(axis=1, keepdims=True)
    ys = y[idx] - y[idx].mean(axis=1, keepdims=True)
    norms = np.sqrt((xs**2).sum(axis=1) * (ys**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, (xs * ys).sum(axis=1) / norms, np.nan)


def _finite_percentile_interval(values, confidence):
    """Percentile interval of the finite values (NaN when fewer than half are finite)."""
    finite = values[np.isfinite(values)]
    if len(finite) < len(values) / 2:
        return np.nan, np.nan
    return percentile_interval(finite, confidence)


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


def write_coefficients_csv(tables, path):
    """Write every coefficient with its interval, one row per (heatmap, group, metric).

    Arguments
    ---------
    tables : dict of str -> dict
        Heatmap name to its table from :func:`correlation_table` (with intervals).
    path : str or path
        The CSV file to write: columns heatmap, group, metric, n, r, low, high, note
        (the note says why a coefficient is missing; ``significant`` is whether the
        interval excludes 0).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> records = [{"acc": a, "EER": 10 - 5 * a + e} for a, e in zip([.1, .4, .9], [1, -1, 0])]
    >>> table = correlation_table(records, ["acc"], groups={"all": lambda r: True}, n_resamples=50)
    >>> path = Path(tempfile.mkdtemp()) / "coefficients.csv"
    >>> write_coefficients_csv({"all": table}, path)
    >>> path.read_text().splitlines()[0]
    'heatmap,group,metric,n,r,low,high,significant,note'
    """
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(
            ["heatmap", "group", "metric", "n", "r", "low", "high", "significant", "note"]
        )
        for heatmap, table in tables.items():
            low = table.get("low", np.full(np.shape(table["r"]), np.nan))
            high = table.get("high", np.full(np.shape(table["r"]), np.nan))
            for (m, g), value in np.ndenumerate(table["r"]):
                lo, hi = low[m, g], high[m, g]
                significant = bool(lo > 0 or hi < 0) if np.isfinite([lo, hi]).all() else ""
                writer.writerow(
                    [
                        heatmap,
                        table["groups"][g],
                        table["metrics"][m],
                        table["n"][g],
                        *(_number(v) for v in (value, lo, hi)),
                        significant,
                        table["notes"][m][g],
                    ]
                )


def _number(value):
    """Four decimals, or an empty cell for NaN."""
    return "" if np.isnan(value) else f"{value:.4f}"


def plot_correlation_heatmap(table, path, title="Pearson correlation with EER"):
    """Draw a correlation table as a heatmap PNG (blue negative, red positive).

    With intervals in the table, a coefficient whose interval excludes 0 is starred.

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
        figsize=(max(1.2 * len(table["groups"]) + 3, 6.5), 0.45 * len(table["metrics"]) + 2)
    )
    image = ax.imshow(r, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto")
    ax.set_xticks(range(len(table["groups"])))
    ax.set_xticklabels([f"{g}\n(n={n})" for g, n in zip(table["groups"], table["n"])])
    ax.set_yticks(range(len(table["metrics"])))
    ax.set_yticklabels(table["metrics"])
    notes = table.get("notes", np.full(r.shape, ""))
    low, high = table.get("low"), table.get("high")
    for (m, g), value in np.ndenumerate(r):
        text = _cell(value, notes[m][g], 2)
        if low is not None and (low[m, g] > 0 or high[m, g] < 0):
            text += "*"  # the interval excludes 0
        # a note (why there is no coefficient) in a smaller font
        ax.text(g, m, text, ha="center", va="center", fontsize=8 if len(text) > 6 else None)
    fig.colorbar(image, ax=ax, label="Pearson r")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _cell(value, reason, digits):
    """Format a coefficient with ``digits`` decimals, or give the reason it is missing."""
    return (reason or "n/a") if np.isnan(value) else f"{value:.{digits}f}"
