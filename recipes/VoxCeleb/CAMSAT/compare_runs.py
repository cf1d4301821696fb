#!/usr/bin/env python3
"""Compare one system across finished runs of ``train.py`` on the same trials.

Runs that differ in a setting of an earlier stage (the stage-1 crops, the corpus
draw of a development split, ...) score the same trial list. This script reads
each run's saved scores of one system, checks that the runs scored the same
trials, and bootstraps them on the same resamples of the test speakers: every
run's EER and minDCF with its 95 % interval, and its paired difference to the
first run (``*``: the interval excludes 0).

    python compare_runs.py results/dev_stage1/default results/dev_stage1/nolocal \
        --system=stage1 --trials=all_pairs --out=results/dev_stage1/comparison.md

Authors
 * camsat contributors 2026
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from camsat_lobes.bootstrap import bootstrap_intervals, format_difference, format_interval

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import STAGE1, TRIAL_LISTS, read_trial_list, trial_speakers  # noqa: E402


def read_run(run, system=STAGE1, trials="all_pairs"):
    """Return one run's trials ``(label, enrol, test)`` and a system's scores on them.

    Arguments
    ---------
    run : str or path
        Output folder of a finished run (the main seed's round 1 is read).
    system : str
        The system whose scores are read (``stage1``: the stage-1 embeddings).
    trials : str
        The trial list: ``voxceleb`` or ``all_pairs``.

    Returns
    -------
    tuple
        ``(rows, scores)``: the trial rows and the (N,) scores in their order.

    Example
    -------
    >>> read_run("no/such/run")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no/such/run has no scores of system 'stage1' on the all_pairs trials ...
    """
    run = Path(run)
    scores_file = run / "round1" / "systems" / system / f"scores_{trials}.txt"
    if not scores_file.exists():
        raise FileNotFoundError(
            f"{run} has no scores of system {system!r} on the {trials} trials "
            f"({scores_file} is missing): run its verify stage first"
        )
    rows = read_trial_list(run / "save" / "data", trials)
    scores = np.loadtxt(scores_file, ndmin=1)
    if len(scores) != len(rows):
        raise ValueError(
            f"{scores_file} has {len(scores)} scores for {len(rows)} trials: "
            "run the verify stage of this run again"
        )
    return rows, scores


def compare_runs(runs, system=STAGE1, trials="all_pairs", n_resamples=1000, seed=1234):
    """Bootstrap one system's scores of several runs, paired with the first run.

    Arguments
    ---------
    runs : sequence of str or path
        Output folders of finished runs on the same trial list; the first is the
        reference.
    system : str
        The system compared.
    trials : str
        The trial list: ``voxceleb`` or ``all_pairs``.
    n_resamples : int
        Bootstrap resamples of the test speakers.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        :func:`camsat_lobes.bootstrap.bootstrap_intervals`'s result, keyed by run folder.

    Example
    -------
    >>> compare_runs(["only/one"])
    Traceback (most recent call last):
    ...
    ValueError: compare at least two runs, got 1
    """
    if len(runs) < 2:
        raise ValueError(f"compare at least two runs, got {len(runs)}")
    names = [str(run) for run in runs]
    if len(set(names)) < len(names):
        raise ValueError(f"a run is named twice in {names}")
    rows, first = read_run(runs[0], system, trials)
    scores = {names[0]: first}
    for name, run in zip(names[1:], runs[1:]):
        other_rows, other = read_run(run, system, trials)
        if other_rows != rows:
            raise ValueError(
                f"{run} scored other {trials} trials than {runs[0]}: "
                "compare runs prepared from the same corpus and split"
            )
        scores[name] = other
    return bootstrap_intervals(
        scores,
        *trial_speakers(Path(runs[0]) / "save" / "data", rows),
        reference=names[0],
        n_resamples=n_resamples,
        seed=seed,
    )


def format_comparison(result, runs):
    """Format :func:`compare_runs`'s result as a markdown table, one row per run.

    Arguments
    ---------
    result : dict
        What :func:`compare_runs` returned.
    runs : sequence of str or path
        The runs, in the order given to :func:`compare_runs`.

    Returns
    -------
    str
        The table.

    Example
    -------
    >>> entry = {"EER": 20.0, "EER_low": 15.0, "EER_high": 25.0,
    ...          "minDCF": 0.9, "minDCF_low": 0.8, "minDCF_high": 0.95}
    >>> difference = {"EER": 1.0, "EER_low": 0.2, "EER_high": 2.0, "EER_significant": True,
    ...               "minDCF": 0.0, "minDCF_low": -0.1, "minDCF_high": 0.1,
    ...               "minDCF_significant": False}
    >>> result = {"a": entry, "b": entry, "differences": {"b": difference}}
    >>> print(format_comparison(result, ["a", "b"]).splitlines()[-1])
    | b | 20.0 [15.0, 25.0] | 0.900 [0.800, 0.950] | +1.0 [+0.2, +2.0] * | +0.000 [-0.100, +0.100] |
    """
    lines = [
        "| run | EER (%) [95 % CI] | minDCF [95 % CI] | EER − first run | minDCF − first run |",
        "|---|---|---|---|---|",
    ]
    for run in map(str, runs):
        entry = result[run]
        cells = [
            format_interval(entry["EER"], entry["EER_low"], entry["EER_high"]),
            format_interval(entry["minDCF"], entry["minDCF_low"], entry["minDCF_high"], 3),
        ]
        difference = result["differences"].get(run, {})
        for metric, digits in (("EER", 1), ("minDCF", 3)):
            cells.append(
                format_difference(
                    difference.get(metric),
                    difference.get(f"{metric}_low"),
                    difference.get(f"{metric}_high"),
                    difference.get(f"{metric}_significant"),
                    digits,
                )
            )
        lines.append(f"| {run} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    """Command line: print the comparison; ``--out`` also writes it (markdown and JSON).

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        :func:`compare_runs`'s result.

    Example
    -------
    >>> main(["--help"])
    Traceback (most recent call last):
    ...
    SystemExit: 0
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="output folders; the first is the reference")
    parser.add_argument("--system", default=STAGE1)
    parser.add_argument("--trials", default="all_pairs", choices=sorted(TRIAL_LISTS))
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--out", help="also write the table here (and the result as .json)")
    args = parser.parse_args(argv)
    result = compare_runs(args.runs, args.system, args.trials, args.n_resamples)
    speakers = result["n_speakers"]
    table = (
        f"System `{args.system}`, {args.trials} trials; 95 % intervals over "
        f"{args.n_resamples} resamples of the {speakers} test speakers, paired with "
        f"the first run (* : the interval excludes 0).\n\n" + format_comparison(result, args.runs)
    )
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table + "\n")
        out.with_suffix(".json").write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
