"""The CAMSAT recipe's chain of stages, as a library.

::

    prepare  -> manifests and trial lists (MiniVox is generated when no data folder is set)
    encoder  -> the stage-1 encoder (self-supervised ECAPA, i-vector or a pretrained model)
    extract  -> embeddings of every training utterance and its augmented views
    cluster  -> pseudo-labels of every system (CAMSAT and the reference systems)
    train    -> a speaker network per system, trained on its pseudo-labels
    verify   -> EER and minDCF of every system on every trial list, exported models
    report   -> results tables (markdown, CSV, JSON) and plots

Each stage is one function taking a :class:`Run` (hyperparameters, layout, records),
in its own module: :mod:`.preparation`, :mod:`.encoding`, :mod:`.clustering`,
:mod:`.speakers`, :mod:`.verification`. The recipe yaml binds each to its settings
(its ``stages``) and :func:`run_stages` runs a range of them. Every stage writes files,
records what it was made with (:class:`StageRecord`), is skipped when that record is
current, and resumes after a crash.

Authors
 * camsat contributors 2026
"""

import logging
import shutil

from speechbrain.utils.distributed import run_on_main

from camsat_lobes.report import write_report

from .hparams import RecipeHparams, recipe_keys_help
from .layout import STAGE1, TRUE_LABELS, RunLayout
from .records import RunLock, RunLockedError, StageRecord
from .run import Run
from .speakers import system_hparams

__all__ = [
    "STAGE1",
    "STAGES",
    "TRUE_LABELS",
    "RecipeHparams",
    "Run",
    "RunLayout",
    "RunLock",
    "RunLockedError",
    "StageRecord",
    "recipe_keys_help",
    "report",
    "run_stages",
    "set_aside_stale",
]

logger = logging.getLogger(__name__)

STAGES = ("prepare", "encoder", "extract", "cluster", "train", "verify", "report")


def run_stages(run, first_stage="prepare", last_stage="verify"):
    """Run the stages from ``first_stage`` to ``last_stage`` for every round (not the report).

    Each stage is the recipe's ``stages`` entry of that name, with its settings bound.
    Preparation and the stage-1 encoder belong to the main seed; another seed starts at
    its own clusterings. Right after preparation the speaker and cluster counts are
    checked against the data, and every finished stage whose settings changed is set
    aside (see :func:`set_aside_stale`). A round after the first waits for the previous
    round's network of the main system.

    Arguments
    ---------
    run : Run
        The run.
    first_stage, last_stage : str
        Names from :data:`STAGES`.

    Example
    -------
    >>> run_stages(None, "prepare", "cook")
    Traceback (most recent call last):
    ...
    ValueError: unknown stage 'cook': choose among prepare, encoder, extract, ...
    """
    for stage in (first_stage, last_stage):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: choose among {', '.join(STAGES)}")
    selected = STAGES[STAGES.index(first_stage) : STAGES.index(last_stage) + 1]
    if run.is_main and "prepare" in selected:
        run.stage("prepare")(run)
    if run.layout.manifest("train_utts").exists():
        run.stage("check_counts")(run)  # loads the recipe again with the data's counts
    if run.is_main:
        run_on_main(run.stage("reuse_stage1"), args=[run])
    run_on_main(set_aside_stale, args=[run])
    for round_index in range(1, run.hparams["rounds"] + 1):
        if round_index > 1:
            previous = run.record("train", round_index - 1, run.hparams["main_system"])
            if previous.state()[0] != "current":
                logger.info("round %d waits for %s (not done)", round_index, previous.name)
                break
        if "encoder" in selected and round_index == 1 and run.is_main:
            run.stage("encoder")(run)
        if "extract" in selected and (run.is_main or round_index > 1):
            run.stage("extract")(run, round_index)
        if "cluster" in selected:
            run.stage("cluster")(run, round_index)
        if "train" in selected:
            for system in run.trained_systems(round_index):
                system_hparams(run, round_index, system)["stages"]["train"](
                    run, round_index, system
                )
        if "verify" in selected:
            run.stage("verify")(run, round_index)


def set_aside_stale(run):
    r"""Set aside every finished stage of this seed whose settings changed, in every round.

    A stage done with other settings than this run's would otherwise stay beside
    outputs made with the new ones (and ``hyperparams.yaml`` would claim settings it
    was not made with). Each is moved to ``<folder>.stale<n>`` with a warning naming
    what changed; the stages of the selected range then run again.

    Arguments
    ---------
    run : Run
        The run.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "recipe.yaml").write_text(
    ...     f"seed: 1\noutput_folder: {folder}/run\nrounds: 1\nsystems: null\n"
    ...     "true_labels_reference: False\nmain_system: camsat\n"
    ... )
    >>> set_aside_stale(Run(RecipeHparams(folder / "recipe.yaml")))  # nothing done yet
    """
    records = [run.record("encoder")] if run.is_main else []
    for round_index in range(1, run.hparams["rounds"] + 1):
        if run.is_main or round_index > 1:
            records.append(run.record("extract", round_index))
        for system in run.labelled_systems():
            records += [
                run.record("cluster", round_index, system),
                run.record("train", round_index, system),
            ]
        records += [run.record("verify", round_index, s) for s in run.scored_systems(round_index)]
    for record in records:
        state, changed = record.state()
        if state == "stale" and record.folder.exists():
            record.set_aside(changed)


def report(run):
    r"""Write a fresh report of the run: tables, plots, every seed and round.

    Arguments
    ---------
    run : Run
        The run (its main seed).

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> _ = (folder / "recipe.yaml").write_text(f"seed: 1\noutput_folder: {folder}/run\n")
    >>> report(Run(RecipeHparams(folder / "recipe.yaml")))
    >>> sorted(p.name for p in (folder / "run" / "report").iterdir())
    ['report.json', 'results.csv', 'results.md']
    """

    def work():
        """Write the report from what the stages wrote."""
        shutil.rmtree(run.layout.report, ignore_errors=True)
        write_report(run.layout.root, run.layout.report)

    run_on_main(work)
