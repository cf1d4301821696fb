#!/usr/bin/env python3
"""The paper's studies over many pseudo-label sets, as one command.

Many pseudo-label sets are made from the same stage-1 embeddings and a speaker network
is trained on each with every chosen loss and regularisation; the correlation of each
clustering metric with the EER (the paper's heatmaps) and the EER by loss are written
under ``<output_folder>/analysis/`` (see :mod:`camsat_lobes.studies`)::

    python analysis.py hparams/analysis.yaml                 # the correlation grid
    python analysis.py hparams/analysis.yaml --grid=margins  # six losses x three label sets
    python analysis.py hparams/analysis.yaml --grid=quick    # a small grid for a first look
    python analysis.py hparams/analysis.yaml --grid=margins --seeds=[1234,1235,1236]

``hparams/analysis.yaml`` names the grid and the recipe yaml it runs (``base_hparams``);
a command-line override goes to the file that defines its key. With ``seeds``, the
first seed runs the grid in ``<output_folder>`` (stage 1 included) and every other seed
clusters the same stage-1 embeddings and trains its networks in
``<output_folder>/seed<seed>/``, as ``train.py --seeds`` does;
``<output_folder>/analysis_over_seeds/`` gets every network's EER mean and std and its
difference to its set's first network averaged over the seeds.

Authors
 * camsat contributors 2026
"""

import json
import sys
from pathlib import Path

import speechbrain as sb
import yaml
from hyperpyyaml import load_hyperpyyaml
from ruamel.yaml import YAML

from camsat_lobes.pipeline import RecipeHparams, RunLock
from camsat_lobes.studies import run_grid, seed_averaged_table

FRAGMENTS = Path(__file__).resolve().parents[3] / "hparams"


def load_study(study_file, overrides):
    """Load the study settings and the recipe it runs, each with its own overrides."""
    overrides = yaml.safe_load(overrides or "") or {}
    with open(study_file) as f:
        keys = set(YAML().load(f))  # round-trip loading keeps the !ref and !new tags unresolved
    with open(study_file) as f:
        study = load_hyperpyyaml(f, {k: v for k, v in overrides.items() if k in keys})
    recipe_overrides = {
        **study["grids"][study["grid"]].get("chain_overrides", {}),
        **{k: v for k, v in overrides.items() if k not in keys},
        "output_folder": study["output_folder"],
        "true_labels_reference": False,
    }
    return study, RecipeHparams(Path(study_file).parent / study["base_hparams"], recipe_overrides)


if __name__ == "__main__":
    study_file, run_opts, overrides = sb.parse_arguments(sys.argv[1:])
    sb.utils.distributed.ddp_init_group(run_opts)
    study, recipe = load_study(study_file, overrides)
    sb.create_experiment_directory(study["output_folder"], study_file, overrides)
    lock = RunLock(Path(study["output_folder"]) / "run.lock")
    if sb.utils.distributed.if_main_process():
        lock.acquire()
    try:
        if not study["seeds"]:
            run_grid(study, recipe, FRAGMENTS, run_opts)
            sys.exit()
        main_seed, *other_seeds = study["seeds"]
        runs = {
            main_seed: run_grid(study, recipe.with_overrides(seed=main_seed), FRAGMENTS, run_opts)
        }
        for seed in other_seeds:  # on the main seed's stage 1, in <output_folder>/seed<seed>
            seed_recipe = recipe.with_overrides(seed=seed)
            runs[seed] = run_grid(study, seed_recipe, FRAGMENTS, run_opts, main_seed=main_seed)
        rows, table = seed_averaged_table(runs, study["n_resamples"])
        out = Path(study["output_folder"]) / "analysis_over_seeds"
        out.mkdir(parents=True, exist_ok=True)
        (out / "eer_over_seeds.json").write_text(json.dumps(rows, indent=2))
        (out / "eer_over_seeds.md").write_text(table)
        print(table, f"\nover {len(runs)} seeds: {out}")
    finally:
        lock.release()
