"""The results report of a recipe run: one table row per (round, system), plus plots.

A run folder holds ``round<r>/systems/<system>/`` with ``clustering_metrics.json``,
``history.json`` and ``verification.json`` (EER and minDCF on every trial list),
``round<r>/intervals.json`` (bootstrap intervals over test speakers, paired across
systems), each stage folder a ``done.json`` with its wall time, and, for the extra
seeds of a ``--seeds`` run, the same tree under ``seed<s>/``.
:func:`collect_results` reads them into rows and :func:`write_report` writes
``results.md``, ``results.csv``, ``report.json`` and ``clustering_curves_round<r>.png``.
Nothing here computes a metric: the report shows only what the stages measured and
saved, and the mean and standard deviation over seeds.

Authors
 * camsat contributors 2026
"""

import csv
import json
import logging
import statistics
from pathlib import Path

from camsat_lobes.bootstrap import format_difference, format_interval

logger = logging.getLogger(__name__)

__all__ = [
    "COLUMNS",
    "collect_results",
    "markdown_table",
    "seed_differences_table",
    "trial_list_table",
    "write_report",
]

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
METRICS = ("EER", "minDCF")
# Paired differences in ``intervals.json``: row column -> key (against the main system,
# and against the stage-1 embeddings).
DIFFERENCES = {"diff": "differences", "vs stage1": "stage1_differences"}


def _read_json(path):
    path = Path(path)
    return json.loads(path.read_text()) if path.exists() else {}


def _round_folders(folder):
    return sorted(Path(folder).glob("round*"), key=lambda p: int(p.name[5:]))


def collect_results(run_folder):
    """Read the saved outputs of a run into one dict per (round, system).

    Arguments
    ---------
    run_folder : str or path
        The recipe's ``output_folder``.

    Returns
    -------
    list of dict
        Rows keyed by :data:`COLUMNS` (``EER (%)`` and ``minDCF`` are those of the
        corpus's own trial list), plus, for every trial list ``L`` of
        ``verification.json``, ``EER L``, ``minDCF L``, their intervals
        (``... low``, ``... high``), the paired differences to the reference system
        (``EER L diff`` with ``low``, ``high``, ``significant``) and to the stage-1
        embeddings (``EER L vs stage1``, the same four), and the mean and
        standard deviation over seeds (``EER L seeds mean``, ``... std``, ``... n``).
        A missing value (a stage not run, or a metric that does not apply such as
        clustering metrics of the stage-1 system) is ``None``.

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
    run_folder = Path(run_folder)
    seed_runs = sorted(run_folder.glob("seed*"))
    rows = []
    for round_folder in _round_folders(run_folder):
        intervals = _read_json(round_folder / "intervals.json")
        for system in sorted(_system_folders(round_folder), key=_system_order):
            metrics = _read_json(system / "clustering_metrics.json")
            scores = _read_json(system / "verification.json")
            row = {
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
            seed_scores = [scores] + [
                _read_json(seed / round_folder.name / "systems" / system.name / "verification.json")
                for seed in seed_runs
            ]
            for trial_list in _trial_lists(scores):
                row.update(_trial_list_columns(trial_list, system.name, intervals, seed_scores))
            rows.append(row)
    return rows


def _trial_lists(scores):
    """Names of the trial lists a ``verification.json`` holds."""
    return [key for key, value in scores.items() if isinstance(value, dict) and "EER" in value]


def _metrics(scores):
    """Return the metrics of one trial list: EER, minDCF, and minDCF at other priors."""
    return [*METRICS, *sorted(k for k in scores if k.startswith("minDCF@"))]


def _trial_list_columns(trial_list, system, intervals, seed_scores):
    """Columns of one trial list: value, interval, paired difference, seeds."""
    columns = {}
    bootstrap = intervals.get(trial_list, {})
    own = bootstrap.get(system, {})
    for metric in _metrics(seed_scores[0][trial_list]):
        name = f"{metric} {trial_list}"
        columns[name] = seed_scores[0][trial_list][metric]
        columns[f"{name} low"] = own.get(f"{metric}_low")
        columns[f"{name} high"] = own.get(f"{metric}_high")
        for kind, key in DIFFERENCES.items():
            difference = bootstrap.get(key, {}).get(system, {})
            columns[f"{name} {kind}"] = difference.get(metric)
            columns[f"{name} {kind} low"] = difference.get(f"{metric}_low")
            columns[f"{name} {kind} high"] = difference.get(f"{metric}_high")
            columns[f"{name} {kind} significant"] = difference.get(f"{metric}_significant")
        values = [s[trial_list][metric] for s in seed_scores if metric in s.get(trial_list, {})]
        columns[f"{name} seeds n"] = len(values)
        columns[f"{name} seeds mean"] = statistics.fmean(values)
        columns[f"{name} seeds std"] = statistics.stdev(values) if len(values) > 1 else None
    return columns


def _system_folders(round_folder):
    """Return the system folders of a round (not those set aside as stale)."""
    return [p for p in (round_folder / "systems").glob("*") if ".stale" not in p.name]


def _system_order(folder):
    """Sort key: the stage-1 embeddings first, the true-label upper bound last."""
    return {"stage1": 0, "true_labels": 2}.get(folder.name, 1), folder.name


def _format(value):
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


def _interval(row, name, digits):
    """``value [low, high]`` of a column, or the value alone without an interval."""
    value = row.get(name)
    if value is None:
        return "–"
    if row.get(f"{name} low") is None:
        return f"{value:.{digits}f}"
    return format_interval(value, row[f"{name} low"], row[f"{name} high"], digits)


def _difference(row, name, digits, kind="diff"):
    """Format a paired difference of a column of a row (see :func:`format_difference`)."""
    prefix = f"{name} {kind}"
    return format_difference(
        row.get(prefix),
        row.get(f"{prefix} low"),
        row.get(f"{prefix} high"),
        row.get(f"{prefix} significant"),
        digits,
    )


def _seeds(row, name, digits):
    """``mean ± std (n)`` over seeds."""
    n = row.get(f"{name} seeds n")
    if not n:
        return "–"
    std = row.get(f"{name} seeds std")
    spread = f" ± {std:.{digits}f}" if std is not None else ""
    return f"{row[f'{name} seeds mean']:.{digits}f}{spread} ({n})"


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


def trial_list_table(rows, trial_list, reference):
    """Markdown table of one trial list: intervals, paired differences, seeds.

    Arguments
    ---------
    rows : list of dict
        Rows as returned by :func:`collect_results`.
    trial_list : str
        Name of the trial list (a key of ``verification.json``).
    reference : str or None
        The system the differences are taken against.

    Returns
    -------
    str
        The table.

    Example
    -------
    >>> row = {"round": 1, "system": "camsat", "EER all": 20.0, "EER all low": 17.0,
    ...        "EER all high": 23.0, "EER all seeds n": 1, "EER all seeds mean": 20.0}
    >>> print(trial_list_table([row], "all", "camsat").splitlines()[2])
    | 1 | camsat | – | – | – | – | 20.0 [17.0, 23.0] | – | – | – | – | 20.0 (1) | – |
    """
    versus = f" − {reference}" if reference else " difference"
    suffix = f" {trial_list}"
    priors = sorted(
        {key[: -len(suffix)] for row in rows for key in row if key.startswith("minDCF@")}
        & {key[: -len(suffix)] for row in rows for key in row if key.endswith(suffix)}
    )
    header = [
        "round",
        "system",
        "K initial",
        "K found",
        "ACC",
        "NMI",
        "EER (%) [95 % CI]",
        "minDCF [95 % CI]",
        *(f"{prior} [95 % CI]" for prior in priors),
        f"EER{versus} [95 % CI]",
        f"minDCF{versus} [95 % CI]",
        "EER − stage1 [95 % CI]",
        "EER seeds mean ± std (n)",
        "minDCF seeds mean ± std (n)",
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        eer, dcf = f"EER {trial_list}", f"minDCF {trial_list}"
        cells = [_format(row.get(key)) for key in ("round", "system", "K initial", "K found")]
        cells += [_format(row.get("ACC")), _format(row.get("NMI"))]
        cells += [_interval(row, eer, 1), _interval(row, dcf, 3)]
        cells += [_interval(row, f"{prior}{suffix}", 3) for prior in priors]
        cells += [_difference(row, eer, 1), _difference(row, dcf, 3)]
        cells += [_difference(row, eer, 1, "vs stage1")]
        cells += [_seeds(row, eer, 1), _seeds(row, dcf, 3)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _results_markdown(run_folder, rows):
    """Write out ``results.md``: the protocol, then one table per trial list."""
    first = next(iter(_round_folders(run_folder)), None)
    intervals = _read_json(first / "intervals.json") if first else {}
    verification = next(
        (
            _read_json(folder / "verification.json")
            for folder in sorted(Path(run_folder).glob("round*/systems/*"))
            if (folder / "verification.json").exists()
        ),
        {},
    )
    seeds = ["main"] + [p.name for p in sorted(Path(run_folder).glob("seed*"))]
    lines = ["# Results", ""]
    if verification.get("protocol"):
        lines += [f"**Scoring protocol** (every row): {verification['protocol']}.", ""]
    trial_lists = _trial_lists(verification)
    if not trial_lists:
        return "\n".join(lines + [markdown_table(rows), ""])
    for trial_list in trial_lists:
        bootstrap = intervals.get(trial_list, {})
        reference = next((d["reference"] for d in bootstrap.get("differences", {}).values()), None)
        counts = verification[trial_list]
        lines += [f"## Trials: {trial_list}", ""]
        lines.append(
            f"{counts.get('trials', '?')} trials, {counts.get('target_trials', '?')} targets."
        )
        if bootstrap:
            lines.append(
                f"Intervals: {100 * bootstrap['confidence']:.0f} % percentile intervals over "
                f"{bootstrap['n_resamples']} resamples of the {bootstrap['n_speakers']} test "
                "speakers (each resampled speaker keeps all its trials), paired across "
                "systems; * marks a difference whose interval excludes 0 (significant)."
            )
        lines.append(
            f"Seeds: {len(seeds)} run(s) ({', '.join(seeds)}); values before the "
            "seed columns are the main seed's."
        )
        lines += ["", trial_list_table(rows, trial_list, reference), ""]
        if len(seeds) > 1 and reference:
            lines += [seed_differences_table(run_folder, trial_list, reference), ""]
        if len(seeds) > 1 and bootstrap.get("stage1_differences"):
            lines += [
                seed_differences_table(run_folder, trial_list, "stage1", "stage1_differences"),
                "",
            ]
    return "\n".join(lines)


def seed_differences_table(run_folder, trial_list, reference, key="differences"):
    """Markdown table of every seed's paired EER difference to the reference (round 1).

    Arguments
    ---------
    run_folder : str or path
        The recipe's ``output_folder`` (the main seed), with ``seed<s>/`` beside it.
    trial_list : str
        Name of the trial list.
    reference : str
        The system the differences are taken against.
    key : str
        Where ``intervals.json`` holds them (``stage1_differences``: against stage 1).

    Returns
    -------
    str
        One row per system, one column per seed: ``+d [low, high]``, ``*`` when the
        paired interval excludes 0.

    Example
    -------
    >>> import tempfile
    >>> run = Path(tempfile.mkdtemp())
    >>> (run / "round1").mkdir()
    >>> d = {"EER": 2.0, "EER_low": 0.5, "EER_high": 3.5, "EER_significant": True}
    >>> _ = (run / "round1" / "intervals.json").write_text(
    ...     json.dumps({"all": {"differences": {"kmeans": d}}}))
    >>> print(seed_differences_table(run, "all", "camsat").splitlines()[-1])
    | kmeans | +2.0 [+0.5, +3.5] * |
    """
    run_folder = Path(run_folder)
    folders = {"main": run_folder} | {p.name: p for p in sorted(run_folder.glob("seed*"))}
    differences = {
        name: _read_json(folder / "round1" / "intervals.json").get(trial_list, {})
        for name, folder in folders.items()
    }
    systems = sorted({s for d in differences.values() for s in d.get(key, {})})
    lines = [
        f"Round 1, EER − {reference} (points) per seed, paired intervals:",
        "",
        "| system | " + " | ".join(folders) + " |",
        "|---|" + "---|" * len(folders),
    ]
    for system in systems:
        cells = []
        for name in folders:
            entry = differences[name].get(key, {}).get(system, {})
            cells.append(
                format_difference(
                    entry.get("EER"),
                    entry.get("EER_low"),
                    entry.get("EER_high"),
                    entry.get("EER_significant"),
                    1,
                )
            )
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_report(run_folder, report_folder):
    """Write the results tables (markdown, CSV, JSON) and the clustering curves of a run.

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

    run_folder, report_folder = Path(run_folder), Path(report_folder)
    report_folder.mkdir(parents=True, exist_ok=True)
    rows = collect_results(run_folder)
    (report_folder / "results.md").write_text(_results_markdown(run_folder, rows))
    fields = list(dict.fromkeys([*COLUMNS, *(key for row in rows for key in row)]))
    with open(report_folder / "results.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    stage_times = {
        str(path.parent.relative_to(run_folder)): _read_json(path).get("seconds")
        for path in sorted(run_folder.glob("**/done.json"))
        if ".stale" not in str(path)
    }
    (report_folder / "report.json").write_text(
        json.dumps({"results": rows, "stage_seconds": stage_times}, indent=2)
    )
    for round_folder in _round_folders(run_folder):
        histories = {
            system.name: history
            for system in sorted(_system_folders(round_folder))
            if (history := _read_json(system / "history.json"))
        }
        if histories:
            plot_history(histories, report_folder / f"clustering_curves_{round_folder.name}.png")
    logger.info("results:\n%s", (report_folder / "results.md").read_text())
    return rows
