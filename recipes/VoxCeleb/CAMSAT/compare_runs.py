#!/usr/bin/env python3
"""Compare one system across finished runs of ``train.py`` on the same trials.

The command line of :mod:`camsat_lobes.comparison`.

Runs that differ in a setting of an earlier stage (the stage-1 crops, the corpus
draw of a development split, ...) score the same trial list. This script reads
each run's saved scores of one system, checks that the runs scored the same
trials, and bootstraps them on the same resamples of the test speakers: every
run's EER and minDCF with its 95 % interval, and its paired difference to the
first run (``*``: the interval excludes 0).

    python compare_runs.py results/dev_stage1/default results/dev_stage1/nolocal \
        --system=stage1 --trials=all_pairs --out=results/dev_stage1/comparison.md

A run argument may name another system of its run after a ``#``, so that a run's
network is paired with its own stage-1 embeddings on the same resamples:

    python compare_runs.py results/dev_stage2/e20 results/dev_stage2/e20#true_labels

With ``--corpus`` the runs are scored on another corpus instead (a VoxCeleb-layout
folder, or a MiniVox preset name such as ``shifted``, generated when missing): each
run's exported model of the system (``round1/systems/<system>/inference``) embeds the
corpus's test utterances and scores its trials as the recipe does, with the run's own
training statistics. This tells whether a setting chosen on MiniVox still helps on
voices drawn otherwise:

    python compare_runs.py results/dev_stage2/e20 results/dev_stage2/crop2 \
        --system=true_labels --corpus=shifted

Authors
 * camsat contributors 2026
"""

import argparse
import json
from pathlib import Path

from camsat_lobes.comparison import compare_runs, format_comparison, prepare_corpus
from camsat_lobes.minivox import PRESET_NAMES
from camsat_lobes.pipeline import STAGE1


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
    parser.add_argument(
        "runs",
        nargs="+",
        help="output folders, each optionally followed by #<system> (that run's system "
        "instead of --system); the first is the reference",
    )
    parser.add_argument("--system", default=STAGE1)
    parser.add_argument("--trials", default="all_pairs", help="trial list: voxceleb or all_pairs")
    parser.add_argument("--n_resamples", type=int, default=1000)
    parser.add_argument("--out", help="also write the table here (and the result as .json)")
    parser.add_argument(
        "--corpus",
        help="score the runs' exported models on this corpus instead: a VoxCeleb-layout "
        f"folder or a MiniVox preset ({', '.join(PRESET_NAMES)})",
    )
    parser.add_argument(
        "--corpus_save",
        help="where the corpus's manifests go (default: results/corpora/<corpus name>)",
    )
    args = parser.parse_args(argv)
    corpus_folder = None
    if args.corpus:
        save = args.corpus_save or Path("results") / "corpora" / Path(args.corpus).name
        corpus_folder = prepare_corpus(args.corpus, save)
    result = compare_runs(
        args.runs, args.system, args.trials, args.n_resamples, corpus_folder=corpus_folder
    )
    speakers = result["n_speakers"]
    where = f" of the corpus {args.corpus}" if args.corpus else ""
    table = (
        f"System `{args.system}` (or the one named after a run's #), "
        f"{args.trials} trials{where}; 95 % intervals over "
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
