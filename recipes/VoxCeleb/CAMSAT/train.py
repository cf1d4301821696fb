#!/usr/bin/env python3
"""Recipe for training speaker verification without speaker labels (CAMSAT pseudo-labels).

The chain: prepare -> encoder (self-supervised stage 1) -> extract (embeddings and
augmented views) -> cluster (CAMSAT and the reference systems) -> train (a speaker
network per system) -> verify (EER, minDCF, exported models) -> report. Each stage
records what it was made with, is skipped when done, and resumes after a crash; a
rerun with changed settings redoes the stages they affect.

To run the whole chain on MiniVox (generated offline on first use)::

    python train.py hparams/camsat.yaml

A range of stages, several seeds of the random stages, several processes::

    python train.py hparams/camsat.yaml --first_stage=cluster --last_stage=verify
    python train.py hparams/camsat.yaml --seeds=[1234,1235,1236]
    torchrun --nproc_per_node=2 train.py hparams/camsat.yaml --distributed_backend=gloo

``python train.py hparams/camsat.yaml --help`` lists the recipe's keys.

Authors
 * camsat contributors 2026
"""

import logging
import sys

import speechbrain as sb
import torch

from camsat_lobes.pipeline import (
    STAGES,
    RecipeHparams,
    Run,
    RunLock,
    recipe_keys_help,
    report,
    run_stages,
)

logger = logging.getLogger(__name__)


def describe_plan(hparams, first_stage, last_stage):
    """Return one line saying what the run trains and scores."""
    systems = list(hparams["systems"] or {})
    if hparams["true_labels_reference"]:
        systems.append("true labels ({} epochs)".format(hparams["true_labels_epochs"]))
    stages = ", ".join(hparams["stages"])
    rounds, main_system = hparams["rounds"], hparams["main_system"]
    seeds = hparams["seeds"] or [hparams["seed"]]
    return (
        f"stages {first_stage} to {last_stage} of {stages}; {rounds} round(s); systems: "
        f"{', '.join(systems) or 'none'} (the next round starts from {main_system!r}); "
        f"seeds: {seeds}"
    )


def run_seeds(run, first_stage, last_stage):
    """Run the random stages (cluster -> train -> verify) of every other seed.

    Every seed clusters the main seed's stage-1 embeddings; its clusterings and
    networks go to ``<output_folder>/seed<seed>/``.
    """
    hparams = run.hparams
    for seed in hparams["seeds"] or []:
        if seed == hparams["seed"]:
            continue
        logger.info("seed %d: cluster -> train -> verify on the same stage-1 encoder", seed)
        recipe = run.recipe.with_overrides(
            seed=seed, seeds=None, output_folder=str(run.layout.root)
        )
        first = max(first_stage, "extract", key=STAGES.index)
        last = min(last_stage, "verify", key=STAGES.index)
        if STAGES.index(first) <= STAGES.index(last):
            run_stages(Run(recipe, run.run_opts, main_seed=hparams["seed"]), first, last)


if __name__ == "__main__":
    argv = sys.argv[1:]
    if {"-h", "--help"} & set(argv):
        yaml_files = [arg for arg in argv if arg.endswith(".yaml")]
        print(recipe_keys_help(yaml_files[0] if yaml_files else "hparams/camsat.yaml"), "\n")

    # Command line, hyperparameters and experiment folder, the SpeechBrain way
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    run = Run(RecipeHparams(hparams_file, overrides), run_opts)
    hparams = run.hparams
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    torch.set_num_threads(hparams["num_threads"])
    first_stage, last_stage = hparams["first_stage"], hparams["last_stage"]
    logger.info(describe_plan(hparams, first_stage, last_stage))

    # One run per output folder: a second one started into it stops at once.
    lock = RunLock(run.layout.lock)
    if sb.utils.distributed.if_main_process():
        lock.acquire()
    try:
        run_stages(run, first_stage, last_stage)
        run_seeds(run, first_stage, last_stage)
        if last_stage == "report":
            report(run)
    finally:
        lock.release()
