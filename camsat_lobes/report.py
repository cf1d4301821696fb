"""The results report of a recipe run: one table row per (round, system), plus plots.

A run folder holds ``round<r>/systems/<system>/`` with ``clustering_metrics.json``,
``history.json`` and ``verification.json``, each stage folder a ``done.json`` with
its wall time. :func:`collect_results` reads them into rows and
:func:`write_report` writes ``results.md``, ``results.csv``, ``report.json`` and
``clustering_curves.png`` (one per round). Nothing here computes a metric: the
report shows only what the stages measured and saved.
"""

import csv
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)

__all__ = ["COLUMNS", "collect_results", "markdown_table", "write_report"]

COLUMNS = (
    "round",
    "system",
    "K initial",
    "K found",
    "ACC",
    "NMI",
    "AMI",
    "purity",
    "EER (%)",
    "minDCF",
    "cluster time (s)",
    "train time (s)",
    "verify time (s)",
)


def _read_json(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def collect_results(run_folder):
    """Read the saved outputs of a run into one dict per (round, system).

    Arguments
    ---------
    run_folder : str or path
        The recipe's ``output_folder``.

    Returns
    -------
    list of dict
        Rows keyed by :data:`COLUMNS`; a missing value (a stage not run, or a
        metric that does not apply such as clustering metrics of the stage-1
        system) is ``None``.

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> system = run / "round1" / "systems" / "camsat"
    >>> (system / "verify").mkdir(parents=True)
    >>> _ = (system / "verification.json").write_text('{"EER": 4.5, "minDCF": 0.3}')
    >>> _ = (system / "clustering_metrics.json").write_text('{"n_clusters": 12, "nmi": 0.9}')
    >>> row = collect_results(run)[0]
    >>> row["system"], row["K found"], row["NMI"], row["EER (%)"], row["ACC"]
    ('camsat', 12, 0.9, 4.5, None)
    """
    rows = []
    for round_folder in sorted(Path(run_folder).glob("round*"), key=lambda p: int(p.name[5:])):
        for system in sorted((round_folder / "systems").glob("*"), key=_system_order):
            metrics = _read_json(system / "clustering_metrics.json")
            scores = _read_json(system / "verification.json")
            rows.append(
                {
                    "round": int(round_folder.name[5:]),
                    "system": system.name,
                    "K initial": metrics.get("k_initial"),
                    "K found": metrics.get("n_clusters"),
                    "ACC": metrics.get("acc"),
                    "NMI": metrics.get("nmi"),
                    "AMI": metrics.get("ami"),
                    "purity": metrics.get("purity"),
                    "EER (%)": scores.get("EER"),
                    "minDCF": scores.get("minDCF"),
                    "cluster time (s)": _read_json(system / "done.json").get("seconds"),
                    "train time (s)": _read_json(system / "speaker" / "done.json").get("seconds"),
                    "verify time (s)": _read_json(system / "verify" / "done.json").get("seconds"),
                }
            )
    return rows


def _system_order(folder):
    """Sort key: the stage-1 embeddings first, the true-label upper bound last."""
    return {"stage1": 0, "true_labels": 2}.get(folder.name, 1), folder.name


def _format(value):
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def markdown_table(rows, columns=COLUMNS):
    """Format rows as a markdown table.

    Arguments
    ---------
    rows : list of dict
        Rows as returned by :func:`collect_results`.
    columns : sequence of str
        The columns to show, in order.

    Returns
    -------
    str
        The table, one line per row.

    Example
    -------
    >>> print(markdown_table([{"system": "kmeans", "EER (%)": 7.25}], ["system", "EER (%)"]))
    | system | EER (%) |
    |---|---|
    | kmeans | 7.250 |
    """
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_format(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


def write_report(run_folder, report_folder):
    """Write the results table (markdown, CSV, JSON) and the clustering curves of a run.

    Arguments
    ---------
    run_folder : str or path
        The recipe's ``output_folder``.
    report_folder : str or path
        Where to write ``results.md``, ``results.csv``, ``report.json`` and
        ``clustering_curves_round<r>.png``.

    Returns
    -------
    list of dict
        The rows of the table.

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> (run / "round1" / "systems" / "stage1").mkdir(parents=True)
    >>> _ = (run / "round1" / "systems" / "stage1" / "verification.json").write_text('{"EER": 9.0}')
    >>> rows = write_report(run, run / "report")
    >>> sorted(p.name for p in (run / "report").iterdir())
    ['report.json', 'results.csv', 'results.md']
    """
    from camsat_lobes.clustering import plot_history

    report_folder = Path(report_folder)
    report_folder.mkdir(parents=True, exist_ok=True)
    rows = collect_results(run_folder)
    (report_folder / "results.md").write_text(markdown_table(rows) + "\n")
    with open(report_folder / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    stage_times = {
        str(path.parent.relative_to(run_folder)): _read_json(path).get("seconds")
        for path in sorted(Path(run_folder).glob("**/done.json"))
    }
    (report_folder / "report.json").write_text(
        json.dumps({"results": rows, "stage_seconds": stage_times}, indent=2)
    )
    for round_folder in Path(run_folder).glob("round*"):
        histories = {
            system.name: history
            for system in sorted((round_folder / "systems").glob("*"))
            if (history := _read_json(system / "history.json"))
        }
        if histories:
            plot_history(histories, report_folder / f"clustering_curves_{round_folder.name}.png")
    logger.info("results:\n%s", markdown_table(rows))
    return rows
