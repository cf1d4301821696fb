"""Per-epoch training history: save as JSON and CSV, plot paper-style curves.

Authors
 * camsat contributors 2026
"""

import csv
import json
import logging
import math
import pathlib

__all__ = ["save_history", "load_history", "history_figure", "plot_history"]

logger = logging.getLogger(__name__)

_PANELS = (("acc", "ACC"), ("ami", "AMI"), ("nmi", "NMI"), ("n_clusters", "Number of clusters"))
#: Smallest range of the cluster-count axis, so a constant count is not drawn on a
#: fraction-of-a-cluster scale.
MIN_COUNT_SPAN = 4
#: Space around the [0, 1] range of the metric panels, so points at 0 or 1 show whole.
METRIC_MARGIN = 0.02


def save_history(history, path):
    """Write a per-epoch history as JSON (``path``) and CSV (same name, ``.csv``).

    Arguments
    ---------
    history : list of dict
        One record per epoch (as in ``ClusteringResult.history``).
    path : str or pathlib.Path
        JSON file to write; the CSV goes next to it. Parent folders are made.

    Returns
    -------
    tuple of pathlib.Path
        The JSON and CSV paths.

    Example
    -------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> json_path, csv_path = save_history([{"epoch": 1, "n_clusters": 4}], f"{folder}/h.json")
    >>> csv_path.read_text().splitlines()
    ['epoch,n_clusters', '1,4']
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(list(history), indent=1))
    columns = []
    for record in history:
        columns += [key for key in record if key not in columns]
    csv_path = path.with_suffix(".csv")
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(history)
    return path, csv_path


def load_history(path):
    """Read a history written by :func:`save_history` (the JSON file).

    Arguments
    ---------
    path : str or pathlib.Path
        The JSON file.

    Returns
    -------
    list of dict
        The per-epoch records.

    Example
    -------
    >>> import tempfile
    >>> path = save_history([{"epoch": 1}], tempfile.mkdtemp() + "/h.json")[0]
    >>> load_history(path)
    [{'epoch': 1}]
    """
    path = pathlib.Path(path)
    try:
        history = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise ValueError(f"cannot read the clustering history {path}: {error}") from error
    if not isinstance(history, list):
        raise ValueError(f"{path} does not hold a list of per-epoch records")
    return history


def history_figure(histories, title=None):
    """Draw ACC, AMI, NMI and cluster count over epochs, one line per method.

    Epoch ticks (and cluster-count ticks) are whole numbers. The metric panels show
    the [0, 1] range of the scores (plus :data:`METRIC_MARGIN`), widened only to
    show a value outside it (a slightly negative AMI), so a flat curve near 0 reads
    as near 0 instead of filling the panel on a 1e-16 scale. The cluster-count panel
    spans at least :data:`MIN_COUNT_SPAN` clusters.

    Arguments
    ---------
    histories : dict
        Method name → per-epoch history (list of dicts with ``epoch`` and any of
        ``acc``, ``ami``, ``nmi``, ``n_clusters``). Methods without labels
        simply miss from the metric panels.
    title : str, optional
        Figure title.

    Returns
    -------
    matplotlib.figure.Figure
        The figure, not attached to pyplot (no need to close it); its axes are
        ``fig.axes`` in the order ACC, AMI, NMI, number of clusters.

    Example
    -------
    >>> history = [{"epoch": e, "ami": 1e-17 * e, "n_clusters": 9} for e in (1, 2)]
    >>> fig = history_figure({"IMSAT": history})
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['ACC', 'AMI', 'NMI', 'Number of clusters']
    >>> tuple(float(v) for v in fig.axes[1].get_ylim())
    (-0.02, 1.02)
    >>> all(float(tick).is_integer() for tick in fig.axes[3].get_xticks())
    True
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(10, 7))
    axes = fig.subplots(2, 2, sharex=True)
    for ax, (key, label) in zip(axes.ravel(), _PANELS):
        values = []
        for name, history in histories.items():
            points = [
                (record.get("epoch", i + 1), float(record[key]))
                for i, record in enumerate(history)
                if record.get(key) is not None and not math.isnan(float(record[key]))
            ]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=name)
                values += [value for _, value in points]
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if key == "n_clusters":
            ax.yaxis.set_major_locator(MaxNLocator(integer=True))
            if values and max(values) - min(values) < MIN_COUNT_SPAN:
                middle = (max(values) + min(values)) / 2
                ax.set_ylim(middle - MIN_COUNT_SPAN / 2, middle + MIN_COUNT_SPAN / 2)
        else:
            low, high = min([0.0, *values]), max([1.0, *values])
            ax.set_ylim(low - METRIC_MARGIN, high + METRIC_MARGIN)
        if not ax.lines:
            ax.text(0.5, 0.5, f"no {label}", ha="center", va="center", transform=ax.transAxes)
    for ax in axes[1]:
        ax.set_xlabel("Epoch")
    handles, labels = axes[1, 1].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6))
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06 if handles else 0, 1, 1))
    return fig


def plot_history(histories, path, title=None):
    """Draw the curves of :func:`history_figure` into a PNG file.

    Arguments
    ---------
    histories : dict
        Method name → per-epoch history (list of dicts with ``epoch`` and any of
        ``acc``, ``ami``, ``nmi``, ``n_clusters``). Methods without labels
        simply miss from the metric panels.
    path : str or pathlib.Path
        PNG file to write (parent folders are made).
    title : str, optional
        Figure title.

    Returns
    -------
    pathlib.Path
        The PNG path.

    Example
    -------
    >>> import tempfile
    >>> history = [{"epoch": e, "acc": 0.5, "nmi": 0.6, "ami": 0.55, "n_clusters": 9}
    ...            for e in (1, 2)]
    >>> plot_history({"CAMSAT": history}, tempfile.mkdtemp() + "/curves.png").suffix
    '.png'
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    history_figure(histories, title).savefig(path, dpi=120)
    logger.info("clustering curves written to %s", path)
    return path
