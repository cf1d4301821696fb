"""Per-epoch training history: save as JSON and CSV, plot paper-style curves."""

import csv
import json
import logging
import math
import pathlib

__all__ = ["save_history", "load_history", "plot_history"]

logger = logging.getLogger(__name__)

_PANELS = (("acc", "ACC"), ("ami", "AMI"), ("nmi", "NMI"), ("n_clusters", "Number of clusters"))


def save_history(history, path):
    """Write a per-epoch history as JSON (``path``) and CSV (same name, ``.csv``).

    Parameters
    ----------
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

    Parameters
    ----------
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


def plot_history(histories, path, title=None):
    """Draw ACC, AMI, NMI and cluster count over epochs, one line per method.

    Parameters
    ----------
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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(2, 2, figsize=(10, 7), sharex=True)
    for ax, (key, label) in zip(axes.ravel(), _PANELS):
        for name, history in histories.items():
            points = [
                (record.get("epoch", i + 1), record[key])
                for i, record in enumerate(history)
                if record.get(key) is not None and not math.isnan(float(record[key]))
            ]
            if points:
                ax.plot(*zip(*points), marker="o", markersize=3, label=name)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
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
    fig.savefig(path, dpi=120)
    plt.close(fig)
    logger.info("clustering curves written to %s", path)
    return path
