#!/usr/bin/env python3
"""Which clustering metric predicts the EER? The paper's correlation study as one command.

Many pseudo-label sets are made from the same stage-1 embeddings (clustering
methods x numbers of clusters x input normalisations), a speaker network is
trained on each with every chosen loss, and the Pearson correlation of each
clustering metric with the EER is drawn as heatmaps (all systems; classical vs
deep methods; L2 vs std scaling; ACC above vs below 50 %).

    python analysis.py hparams/analysis.yaml                # the full grid
    python analysis.py hparams/analysis.yaml --grid=quick   # a smaller grid for a first look

``hparams/analysis.yaml`` names the grid and the chain's own hyperparameter file
(``base_hparams``); a command-line override goes to the file that defines its key.
It runs the stages of ``train.py`` (same folders, same skipping and resuming) with
the grid as the list of systems, then writes ``analysis/correlations_<loss>.{csv,png}``
and ``analysis/records.csv`` under the output folder.

Authors
 * camsat contributors 2026
"""

import csv
import json
import sys
from pathlib import Path

import speechbrain as sb
import yaml
from hyperpyyaml import load_hyperpyyaml, resolve_references

from camsat_lobes.correlation import (
    correlation_table,
    plot_correlation_heatmap,
    write_correlation_csv,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import Chain, run  # noqa: E402
from train import load_hparams as load_chain_hparams  # noqa: E402

FRAGMENTS = Path(__file__).resolve().parents[3] / "hparams"
DEEP_METHODS = ("imsat", "camsat")


def clusterer(method, n_clusters, seed, overrides):
    """Build the clusterer of one grid point from its reusable fragment."""
    fragment = FRAGMENTS / "clustering" / f"{method}.yaml"
    with open(fragment) as f:
        values = {"n_clusters": n_clusters, "seed": seed, **overrides.get(method, {})}
        return load_hyperpyyaml(f, values)["clusterer"]


def grid_systems(study, n_speakers, seed):
    """One system per (method, K, normalisation, loss) of the chosen grid."""
    grid = study["grids"][study["grid"]]
    systems = {}
    for method in grid["methods"]:
        for factor in grid["k_factors"]:
            k = max(2, round(factor * n_speakers))
            for norm in grid["norms"]:
                for loss in grid["losses"]:
                    with open(FRAGMENTS / "losses" / f"{loss}.yaml") as f:
                        speaker_loss = load_hyperpyyaml(f)
                    systems[f"{method}_k{k}_{norm}_{loss}"] = {
                        "clusterer": clusterer(method, k, seed, study["method_overrides"]),
                        "embedding_norm": norm,
                        "speaker_loss": speaker_loss,
                        "method": method,
                        "loss": loss,
                    }
    return systems


def collect_records(chain):
    """One record per trained system: clustering metrics, EER and grid fields."""
    records = []
    for name, spec in chain.hparams["systems"].items():
        folder = chain.round_folder(1) / "systems" / name
        if (folder / "collapsed.json").exists():
            print(f"{name}: left out, {json.loads((folder / 'collapsed.json').read_text())}")
            continue
        metrics = json.loads((folder / "clustering_metrics.json").read_text())
        result = json.loads((folder / "verification.json").read_text())
        records.append(
            {
                **metrics,
                "system": name,
                "method": spec["method"],
                "loss": spec["loss"],
                "family": "deep" if spec["method"] in DEEP_METHODS else "classical",
                "embedding_norm": spec["embedding_norm"],
                "EER": result["EER"],
                "minDCF": result["minDCF"],
            }
        )
    return records


def load_hparams(study_file, overrides):
    """Load the study settings and the chain hyperparameters, each with its overrides.

    Also returns the chain's resolved yaml text (exported models are rebuilt from it).
    """
    overrides = yaml.safe_load(overrides) or {}
    with open(study_file) as f:
        keys = set(yaml.safe_load(f))
    study_overrides = {k: v for k, v in overrides.items() if k in keys}
    with open(study_file) as f:
        study = load_hyperpyyaml(f, study_overrides)
    chain_overrides = {k: v for k, v in overrides.items() if k not in keys}
    chain_overrides.update(output_folder=study["output_folder"], true_labels_reference=False)
    base_file = Path(study_file).parent / study["base_hparams"]
    hparams = load_chain_hparams(base_file, chain_overrides)
    with open(base_file) as f:
        resolved = resolve_references(f, chain_overrides).getvalue()
    return study, hparams, resolved


def main(argv):
    """Run the grid through the chain and draw the correlation heatmaps."""
    study_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    study, hparams, resolved = load_hparams(study_file, overrides)
    sb.create_experiment_directory(hparams["output_folder"], study_file, overrides)
    hparams["systems"] = grid_systems(study, hparams["n_speakers"], hparams["seed"])
    chain = Chain(hparams, run_opts, skip_collapsed=True)
    chain.resolved_hparams_file = Path(hparams["output_folder"]) / "chain_hyperparams.yaml"
    chain.resolved_hparams_file.write_text(resolved)
    run(chain, "prepare", "verify")

    out = Path(hparams["output_folder"]) / "analysis"
    out.mkdir(exist_ok=True)
    records = collect_records(chain)
    with open(out / "records.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in records for k in r}))
        writer.writeheader()
        writer.writerows(records)
    for loss in sorted({r["loss"] for r in records}):
        table = correlation_table([r for r in records if r["loss"] == loss])
        write_correlation_csv(table, out / f"correlations_{loss}.csv")
        plot_correlation_heatmap(
            table, out / f"correlations_{loss}.png", title=f"Pearson r with EER ({loss})"
        )
    print(f"{len(records)} systems; heatmaps and tables in {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
