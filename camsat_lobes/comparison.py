"""Comparing one system across finished runs, on their own trials or on another corpus.

Runs that differ in a setting of an earlier stage (the stage-1 crops, the speaker
networks' regime, ...) score the same trials. :func:`compare_runs` reads each run's
saved scores of one system (or has its exported model score another corpus, such as
the ``shifted`` MiniVox voices), checks that the runs scored the same trials, and
bootstraps them on the same resamples of the test speakers: every run's EER and minDCF
with its 95 % interval, and its paired difference to the first run.

Authors
 * camsat contributors 2026
"""

import csv
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from camsat_lobes.bootstrap import bootstrap_intervals, format_difference, format_interval
from camsat_lobes.encoders.data import load_segment
from camsat_lobes.inference import CAMSATSpeakerRecognition
from camsat_lobes.minivox import PRESET_NAMES, MiniVoxConfig, generate_minivox
from camsat_lobes.pipeline import STAGE1
from camsat_lobes.pipeline.trials import (
    read_trial_csv,
    trial_list_files,
    trial_speakers,
    write_all_pairs,
)
from camsat_lobes.prepare import preparation_is_current, prepare_voxceleb

__all__ = [
    "compare_runs",
    "format_comparison",
    "prepare_corpus",
    "prepared_trials",
    "read_run",
    "score_corpus",
]


def prepared_trials(data_folder, name):
    r"""Read the prepared trial list ``name`` of a data folder (``all_pairs``: every pair).

    Arguments
    ---------
    data_folder : str or path
        Prepared data (a run's ``save/data``, or a folder of :func:`prepare_corpus`).
    name : str
        The list's name, e.g. ``voxceleb`` or ``all_pairs``.

    Returns
    -------
    list of tuple
        ``(label, enrol_id, test_id)`` rows.

    Example
    -------
    >>> data = getfixture("tmp_path")
    >>> _ = (data / "trials.csv").write_text("label,enrol_id,test_id\n1,a1,a2\n")
    >>> prepared_trials(data, "voxceleb")
    [(1, 'a1', 'a2')]
    """
    lists = trial_list_files(data_folder, full_trials=name == "all_pairs")
    if name not in lists:
        raise ValueError(f"{data_folder} has no trial list {name!r}; it has {sorted(lists)}")
    return read_trial_csv(lists[name])


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
    rows = prepared_trials(run / "save" / "data", trials)
    scores = np.loadtxt(scores_file, ndmin=1)
    if len(scores) != len(rows):
        raise ValueError(
            f"{scores_file} has {len(scores)} scores for {len(rows)} trials: "
            "run the verify stage of this run again"
        )
    return rows, scores


def prepare_corpus(corpus, save_folder):
    """Prepare another corpus's test set and trial lists for scoring (once; reused after).

    Arguments
    ---------
    corpus : str or path
        A VoxCeleb-layout folder (``wav/<speaker>/<session>/<utt>.wav`` and
        ``trials.txt``), or the name of a MiniVox preset (generated when missing).
    save_folder : str or path
        Where the manifests go (``test.csv``, ``trials.csv`` and the every-pair list).

    Returns
    -------
    pathlib.Path
        ``save_folder``.

    Example
    -------
    >>> prepare_corpus("no/such/corpus", getfixture("tmp_path"))
    Traceback (most recent call last):
    ...
    FileNotFoundError: no/such/corpus is neither a corpus folder nor a MiniVox preset (...)
    """
    save_folder = Path(save_folder)
    if str(corpus) in PRESET_NAMES:
        corpus = generate_minivox(MiniVoxConfig.preset(str(corpus)))
    elif not Path(corpus).is_dir():
        raise FileNotFoundError(
            f"{corpus} is neither a corpus folder nor a MiniVox preset ({', '.join(PRESET_NAMES)})"
        )
    if not preparation_is_current(corpus, save_folder):
        prepare_voxceleb(corpus, save_folder)
    write_all_pairs(save_folder)
    return save_folder


def score_corpus(run, system, data_folder, trials="all_pairs"):
    """Score a prepared corpus's trials with one system's exported model from a finished run.

    The model embeds every test utterance alone and scores as the recipe does, with the
    run's training statistics (mean, AS-norm cohort); nothing of the corpus's test
    utterances enters a score.

    Arguments
    ---------
    run : str or path
        Output folder of a finished run (its main seed's round-1 model is used).
    system : str
        The system whose model scores (``stage1``: the stage-1 encoder).
    data_folder : str or path
        A folder written by :func:`prepare_corpus`.
    trials : str
        The trial list: ``voxceleb`` or ``all_pairs``.

    Returns
    -------
    tuple
        ``(rows, scores)``: the trial rows and the (N,) scores in their order.

    Example
    -------
    >>> score_corpus("no/such/run", "stage1", "no/such/corpus")
    Traceback (most recent call last):
    ...
    FileNotFoundError: no/such/run has no exported model of system 'stage1' (...): run its ...
    """
    folder = Path(run) / "round1" / "systems" / system / "inference"
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{run} has no exported model of system {system!r} ({folder} is missing): "
            "run its verify stage first"
        )
    model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    rows = prepared_trials(data_folder, trials)
    with open(Path(data_folder) / "test.csv", newline="") as f:
        utterances = {row["ID"]: row for row in csv.DictReader(f)}
    embeddings = {}
    for utterance in tqdm(sorted({u for _, e, t in rows for u in (e, t)}), desc=f"embed {run}"):
        row = utterances[utterance]
        signal = load_segment(row["wav"], int(row["start"]), int(row["stop"]))
        embeddings[utterance] = model.encode_batch(signal[None])[0, 0]
    enrol = torch.stack([embeddings[e] for _, e, _ in rows])
    test = torch.stack([embeddings[t] for _, _, t in rows])
    return rows, model.mods.scoring.score(enrol, test).numpy()


def split_run(run, system=STAGE1):
    """Split a run argument ``<folder>[#<system>]`` into its folder and the system it names.

    Arguments
    ---------
    run : str or path
        An output folder, optionally followed by ``#`` and a system of that run.
    system : str
        The system when the argument names none.

    Returns
    -------
    tuple
        ``(folder, system)``.

    Example
    -------
    >>> split_run("results/a#true_labels"), split_run("results/a", "camsat")
    ((PosixPath('results/a'), 'true_labels'), (PosixPath('results/a'), 'camsat'))
    """
    folder, _, named = str(run).partition("#")
    return Path(folder), named or system


def compare_runs(
    runs, system=STAGE1, trials="all_pairs", n_resamples=1000, seed=1234, corpus_folder=None
):
    """Bootstrap one system's scores of several runs, paired with the first run.

    Arguments
    ---------
    runs : sequence of str or path
        Output folders of finished runs on the same trial list; the first is the
        reference. ``<folder>#<system>`` takes that run's ``<system>`` instead (e.g. a
        run's network against its own stage-1 embeddings).
    system : str
        The system compared.
    trials : str
        The trial list: ``voxceleb`` or ``all_pairs``.
    n_resamples : int
        Bootstrap resamples of the test speakers.
    seed : int
        Seed of the resampling.
    corpus_folder : str or path, optional
        A corpus prepared by :func:`prepare_corpus`: the runs' exported models score
        its trials (:func:`score_corpus`) instead of their own saved scores being read.

    Returns
    -------
    dict
        :func:`camsat_lobes.bootstrap.bootstrap_intervals`'s result, keyed by run argument.

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

    def scores_of(run):
        """Trials and scores of one run argument: saved, or scored on the corpus."""
        folder, run_system = split_run(run, system)
        if corpus_folder is None:
            return read_run(folder, run_system, trials)
        return score_corpus(folder, run_system, corpus_folder, trials)

    rows, first = scores_of(runs[0])
    scores = {names[0]: first}
    for name, run in zip(names[1:], runs[1:]):
        other_rows, other = scores_of(run)
        if other_rows != rows:
            raise ValueError(
                f"{run} scored other {trials} trials than {runs[0]}: "
                "compare runs prepared from the same corpus and split"
            )
        scores[name] = other
    data_folder = corpus_folder or split_run(runs[0])[0] / "save" / "data"
    return bootstrap_intervals(
        scores,
        *trial_speakers(data_folder, rows),
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
