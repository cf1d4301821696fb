#!/usr/bin/env python3
"""The paper's studies over many pseudo-label sets, as one command.

Many pseudo-label sets are made from the same stage-1 embeddings (clustering
methods x numbers of clusters x input normalisations x method settings, and the
true labels with a fraction flipped), and a speaker network is trained on each set
with every chosen loss and regularisation (none, i-mix, l-mix). Two studies read
the results:

- **correlations**: the Pearson correlation of each clustering metric with the EER,
  with 95 % intervals from a bootstrap over the pseudo-label sets, drawn as the
  paper's four heatmaps (all sets; classical vs deep methods; L2 vs std inputs;
  ACC above vs below 50 %), one column per regularisation;
- **by loss**: every set's EER with its interval (bootstrap over test speakers)
  for every loss, the margin-loss comparison.

    python analysis.py hparams/analysis.yaml                 # the correlation grid
    python analysis.py hparams/analysis.yaml --grid=margins  # six losses x three label sets
    python analysis.py hparams/analysis.yaml --grid=quick    # a small grid for a first look
    python analysis.py hparams/analysis.yaml --grid=margins --seeds=[1234,1235,1236]

``hparams/analysis.yaml`` names the grid and the chain's own hyperparameter file
(``base_hparams``); a command-line override goes to the file that defines its key.
The stages of ``train.py`` run with the grid as the list of systems (same folders,
same skipping and resuming), one pass per regularisation, and the tables and
heatmaps are written after every pass from the networks finished so far, so a
study stopped early still reports its finished columns. A pseudo-label set is
clustered once and shared by every loss and regularisation trained on it.

Outputs, under ``<output_folder>/analysis/``: ``records.csv`` (one row per trained
network), ``coefficients_<loss>.csv`` and ``heatmap_<variant>_<loss>.png``,
``eer_by_loss.md`` and ``summary.json`` (counts and wall times). With ``seeds``, each
seed's grid runs in ``<output_folder>/<seed>/`` and ``<output_folder>/analysis_over_seeds/``
gets ``eer_over_seeds.{md,json}``: every network's EER mean and std over the seeds, and
its difference to the set's first network averaged over the seeds on the same bootstrap
resamples of the test speakers, with its interval.

Authors
 * camsat contributors 2026
"""

import csv
import itertools
import json
import sys
import time
from pathlib import Path

import numpy as np
import speechbrain as sb
import yaml
from hyperpyyaml import load_hyperpyyaml, resolve_references
from ruamel.yaml import YAML

from camsat_lobes.bootstrap import format_interval, seed_averaged_differences
from camsat_lobes.correlation import (
    HEATMAPS,
    correlation_table,
    plot_correlation_heatmap,
    split_groups,
    write_coefficients_csv,
)

sys.path.insert(0, str(Path(__file__).resolve().parent))
from train import Chain, run  # noqa: E402
from train import load_hparams as load_chain_hparams  # noqa: E402

FRAGMENTS = Path(__file__).resolve().parents[3] / "hparams"
DEEP_METHODS = ("imsat", "camsat")
DEGRADED_METHODS = ("flipped",)
MIN_SETS_FOR_CORRELATION = 3  # a loss trained on fewer sets gets no coefficients or heatmaps
GRID_AXES = ("k_factors", "norms")  # every other key of a grid entry is a fragment setting


def clusterer(method, values):
    """Build one clusterer from its reusable fragment with ``values`` overridden."""
    with open(FRAGMENTS / "clustering" / f"{method}.yaml") as f:
        return load_hyperpyyaml(f, values)["clusterer"]


def pseudo_label_sets(study, n_speakers, seed):
    """One entry per pseudo-label set of the chosen grid: name -> method, norm, clusterer.

    A grid entry gives a method its numbers of clusters (multiples of the true count),
    its input normalisations, and lists of values of its fragment's own settings
    (e.g. ``mu`` or ``flip_fraction``); the sets are all their combinations.
    """
    sets = {}
    for method, entry in study["grids"][study["grid"]]["sets"].items():
        settings = {key: values for key, values in entry.items() if key not in GRID_AXES}
        for factor in entry["k_factors"]:
            k = max(2, round(factor * n_speakers))
            for norm in entry["norms"]:
                for chosen in _combinations(settings):
                    name = "_".join(
                        [f"{method}_k{k}_{norm}", *(f"{key}{v:g}" for key, v in chosen.items())]
                    )
                    values = {"n_clusters": k, "seed": seed, **chosen}
                    sets[name] = {
                        "method": method,
                        "embedding_norm": norm,
                        "clusterer": clusterer(method, values),
                    }
    return sets


def _combinations(settings):
    """Every combination of the listed setting values (one empty combination if none)."""
    return [dict(zip(settings, values)) for values in itertools.product(*settings.values())]


def grid_systems(study, n_speakers, seed):
    """One system per (pseudo-label set, loss, regularisation) of the chosen grid.

    The first system of a set clusters; the others take its labels (``labels_from``).
    """
    grid = study["grids"][study["grid"]]
    losses = {}
    for loss in grid["losses"]:
        with open(FRAGMENTS / "losses" / f"{loss}.yaml") as f:
            losses[loss] = load_hyperpyyaml(f)
    systems = {}
    for set_name, spec in pseudo_label_sets(study, n_speakers, seed).items():
        owner = None
        for regularisation in grid["regularisations"]:
            for loss in grid["losses"]:
                name = f"{set_name}_{loss}_{regularisation}"
                systems[name] = {
                    **spec,
                    "set": set_name,
                    "loss": loss,
                    "regularisation": regularisation,
                    "speaker_loss": losses[loss],
                    "speaker_mixup": study["regularisations"][regularisation],
                }
                if owner is not None:
                    systems[name]["labels_from"] = owner
                owner = owner or name
    return systems


def collect_records(round_folder, systems):
    """One record per finished network: clustering metrics, EER and the grid fields.

    The EER is that of the every-pair trial list when the run scored it (more trials),
    else that of the VoxCeleb-style list; its interval comes from ``intervals.json``.
    """
    intervals_file = round_folder / "intervals.json"
    intervals = json.loads(intervals_file.read_text()) if intervals_file.exists() else {}
    records, missing = [], []
    for name, spec in systems.items():
        folder = round_folder / "systems" / name
        if (folder / "collapsed.json").exists():
            print(f"{name}: left out, {json.loads((folder / 'collapsed.json').read_text())}")
            continue
        if not (folder / "verification.json").exists():
            missing.append(name)
            continue
        result = json.loads((folder / "verification.json").read_text())
        trial_list = "all_pairs" if "all_pairs" in result else "voxceleb"
        interval = intervals.get(trial_list, {}).get(name, {})
        records.append(
            {
                **json.loads((folder / "clustering_metrics.json").read_text()),
                "system": name,
                "set": spec["set"],
                "method": spec["method"],
                "family": _family(spec["method"]),
                "embedding_norm": spec["embedding_norm"],
                "loss": spec["loss"],
                "regularisation": spec["regularisation"],
                "trial_list": trial_list,
                "EER": result[trial_list]["EER"],
                "EER_low": interval.get("EER_low", float("nan")),
                "EER_high": interval.get("EER_high", float("nan")),
                "minDCF": result[trial_list]["minDCF"],
            }
        )
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        print(f"{len(missing)} networks not finished yet (rerun to resume): {shown}")
    return records


def _family(method):
    """classical, deep or degraded (the flipped true labels)."""
    if method in DEEP_METHODS:
        return "deep"
    return "degraded" if method in DEGRADED_METHODS else "classical"


def write_study(records, regularisations, out, n_resamples, seed):
    """Write the records, the coefficient CSVs, the four heatmaps per loss and the EER table."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "records.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=sorted({k for r in records for k in r}))
        writer.writeheader()
        writer.writerows(records)
    for loss in sorted({r["loss"] for r in records}):
        of_loss = [r for r in records if r["loss"] == loss]
        n_sets = len({r["set"] for r in of_loss})
        if n_sets < MIN_SETS_FOR_CORRELATION:
            print(
                f"{loss}: {n_sets} pseudo-label sets, too few for correlations with the EER "
                f"(at least {MIN_SETS_FOR_CORRELATION}); no coefficients or heatmaps"
            )
            continue
        tables = {}
        for variant, groups in HEATMAPS.items():
            tables[variant] = correlation_table(
                of_loss,
                groups=split_groups(groups, "regularisation", regularisations),
                min_records=MIN_SETS_FOR_CORRELATION,
                n_resamples=n_resamples,
                seed=seed,
            )
            plot_correlation_heatmap(
                tables[variant],
                out / f"heatmap_{variant}_{loss}.png",
                title=f"Pearson r with EER ({loss}; * : 95 % interval excludes 0)",
            )
        write_coefficients_csv(tables, out / f"coefficients_{loss}.csv")
    (out / "eer_by_loss.md").write_text(eer_by_loss(records))


def add_paired_differences(chain, records):
    """Add to every record its EER difference to its set's first network, with an interval.

    The first network of a set is that of the grid's first regularisation and first
    loss (e.g. AAM without mixup). The difference is paired: both networks are scored
    on the same bootstrap resamples of the test speakers, so a difference whose
    interval excludes 0 is significant (``dEER_significant``).
    """
    if not records:
        return
    trial_list = records[0]["trial_list"]
    trials = chain.trial_lists()[trial_list]
    by_set = {}
    for record in records:
        by_set.setdefault(record["set"], []).append(record)
    for members in by_set.values():
        systems = [r["system"] for r in members]
        result = chain.paired_bootstrap(1, systems, trial_list, trials, reference=systems[0])
        for record in members:
            d = result["differences"].get(record["system"])
            if d is not None:
                record.update(
                    compared_with=systems[0],
                    dEER=d["EER"],
                    dEER_low=d["EER_low"],
                    dEER_high=d["EER_high"],
                    dEER_significant=d["EER_significant"],
                )


def eer_by_loss(records):
    """Markdown table: one row per (pseudo-label set, regularisation), one column per loss.

    A cell is the EER with its interval and, for all but a set's first network, the
    paired difference to that network (starred where its interval excludes 0).
    """
    losses = sorted({r["loss"] for r in records})
    rows = {}
    for r in records:
        row = rows.setdefault((r["set"], r["regularisation"]), {})
        row[r["loss"]] = r
    lines = [
        "EER % [95 % interval, bootstrap over test speakers] on the "
        f"{records[0]['trial_list'] if records else ''} trial list; Δ: paired difference "
        "to the set's first network (* : its interval excludes 0)",
        "",
        "| pseudo-labels | clusters | ACC | regularisation | " + " | ".join(losses) + " |",
        "|---" * (4 + len(losses)) + "|",
    ]
    for (set_name, regularisation), by_loss in rows.items():
        first = next(iter(by_loss.values()))
        row = [set_name, str(first["n_clusters"]), f"{first['acc']:.3f}", regularisation]
        row += [_eer_cell(by_loss.get(loss)) for loss in losses]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _eer_cell(record):
    """EER [interval], and the paired difference when the record has one."""
    if record is None:
        return "–"
    text = format_interval(record["EER"], record["EER_low"], record["EER_high"])
    if "dEER" in record:
        difference = (record["dEER"], record["dEER_low"], record["dEER_high"])
        text += f"; Δ {format_interval(*difference, signed=True)}"
        text += "*" if record["dEER_significant"] else ""
    return text


def stage_seconds(round_folder):
    """Seconds recorded by every finished stage of the study's systems (all passes)."""
    return sum(
        json.loads(marker.read_text())["seconds"]
        for marker in (round_folder / "systems").rglob("done.json")
    )


def load_hparams(study_file, overrides, seed=None):
    """Load the study settings and the chain hyperparameters, each with its overrides.

    With ``seed``, the chain runs with that seed in ``<output_folder>/<seed>``. Also
    returns the chain's resolved yaml text (exported models are rebuilt from it).
    """
    overrides = yaml.safe_load(overrides) or {}
    with open(study_file) as f:
        keys = set(YAML().load(f))  # round-trip loading keeps the !ref and !new tags unresolved
    study_overrides = {k: v for k, v in overrides.items() if k in keys}
    with open(study_file) as f:
        study = load_hyperpyyaml(f, study_overrides)
    chain_overrides = {
        **study["grids"][study["grid"]].get("chain_overrides", {}),
        **{k: v for k, v in overrides.items() if k not in keys},
    }
    chain_overrides.update(output_folder=study["output_folder"], true_labels_reference=False)
    if seed is not None:
        chain_overrides.update(seed=seed, output_folder=f"{study['output_folder']}/{seed}")
    base_file = Path(study_file).parent / study["base_hparams"]
    hparams = load_chain_hparams(base_file, chain_overrides)
    with open(base_file) as f:
        resolved = resolve_references(f, chain_overrides).getvalue()
    return study, hparams, resolved


def run_grid(study_file, overrides, run_opts, seed=None):
    """Run the grid through the chain, one pass per regularisation, writing the study after each.

    Returns the last pass's chain and the records of the finished networks.
    """
    study, hparams, resolved = load_hparams(study_file, overrides, seed)
    sb.create_experiment_directory(hparams["output_folder"], study_file, overrides)
    systems = grid_systems(study, hparams["n_speakers"], hparams["seed"])
    regularisations = study["grids"][study["grid"]]["regularisations"]
    out = Path(hparams["output_folder"]) / "analysis"
    round_folder = Path(hparams["output_folder"]) / "round1"
    start = time.time()
    for regularisation in regularisations:
        hparams["systems"] = {
            name: spec for name, spec in systems.items() if spec["regularisation"] == regularisation
        }
        chain = Chain(hparams, run_opts, skip_collapsed=True)
        chain.resolved_hparams_file = Path(hparams["output_folder"]) / "chain_hyperparams.yaml"
        chain.resolved_hparams_file.write_text(resolved)
        run(chain, "prepare", "verify")
        records = collect_records(round_folder, systems)
        add_paired_differences(chain, records)
        write_study(records, regularisations, out, study["n_resamples"], hparams["seed"])
        summary = {
            "grid": study["grid"],
            "seed": hparams["seed"],
            "pseudo_label_sets": len({spec["set"] for spec in systems.values()}),
            "networks": len(systems),
            "networks_finished": len(records),
            "seconds_this_run": round(time.time() - start),
            "seconds_all_stages": round(stage_seconds(round_folder)),
        }
        (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"{regularisation} done: {json.dumps(summary)}; tables and heatmaps in {out}")
    return chain, records


def seed_averaged_table(runs, n_resamples):
    """Every set's networks over several seeds: EER mean and std, and the seed-averaged difference.

    ``runs`` maps a seed to its (chain, records). A set's networks are compared with its
    first network (e.g. AAM-softmax) by :func:`seed_averaged_differences`: per speaker
    resample, the difference averaged over the seeds. Returns the rows (JSON-ready) and
    the markdown table.
    """
    chains = {seed: chain for seed, (chain, _) in runs.items()}
    first_chain = next(iter(chains.values()))
    trial_list = next(iter(runs.values()))[1][0]["trial_list"]
    trials = first_chain.trial_lists()[trial_list]
    for seed, chain in chains.items():
        if chain.trial_lists()[trial_list] != trials:
            raise ValueError(f"seed {seed} scored another {trial_list} trial list than the others")
    labels, enrol, test = first_chain.trial_speakers(trials)
    by_set = {}
    for seed, (_, records) in runs.items():
        for record in records:
            key = (record["set"], record["regularisation"])
            seeds_of = by_set.setdefault(key, {}).setdefault(record["system"], {})
            seeds_of[seed] = record
    rows = []
    for (set_name, regularisation), by_system in by_set.items():
        complete = [name for name, seeds in by_system.items() if set(seeds) == set(runs)]
        if not complete:
            continue
        scores = {
            seed: chain.saved_scores(1, complete, trial_list) for seed, chain in chains.items()
        }
        differences = seed_averaged_differences(
            scores, labels, enrol, test, complete[0], n_resamples=n_resamples
        )
        for name in complete:
            eers = [by_system[name][seed]["EER"] for seed in runs]
            record = by_system[name][next(iter(runs))]
            rows.append(
                {
                    "set": set_name,
                    "regularisation": regularisation,
                    "loss": record["loss"],
                    "system": name,
                    "seeds": list(runs),
                    "EER_mean": float(np.mean(eers)),
                    "EER_std": float(np.std(eers, ddof=1)) if len(eers) > 1 else 0.0,
                    "n_clusters_mean": float(
                        np.mean([by_system[name][seed]["n_clusters"] for seed in runs])
                    ),
                    "compared_with": complete[0],
                    **{f"d{key}": value for key, value in differences.get(name, {}).items()},
                }
            )
    return rows, _seed_table_markdown(rows, trial_list, len(runs))


def _seed_table_markdown(rows, trial_list, n_seeds):
    """One row per (set, regularisation), one column per loss: mean ± std and the difference."""
    losses = list(dict.fromkeys(r["loss"] for r in rows))
    by_row = {}
    for r in rows:
        row = by_row.setdefault((r["set"], r["regularisation"]), {})
        row[r["loss"]] = r
    lines = [
        f"EER % over {n_seeds} seeds (mean ± std) on the {trial_list} trial list; Δ: "
        "difference to the set's first network averaged over the seeds, with its 95 % "
        "interval from a bootstrap over test speakers (* : the interval excludes 0)",
        "",
        "| pseudo-labels | clusters | regularisation | " + " | ".join(losses) + " |",
        "|---" * (3 + len(losses)) + "|",
    ]
    for (set_name, regularisation), by_loss in by_row.items():
        first = next(iter(by_loss.values()))
        cells = [set_name, f"{first['n_clusters_mean']:.0f}", regularisation]
        for loss in losses:
            r = by_loss.get(loss)
            if r is None:
                cells.append("–")
                continue
            cell = f"{r['EER_mean']:.1f} ± {r['EER_std']:.1f}"
            if "dEER" in r:
                cell += "; Δ " + format_interval(
                    r["dEER"], r["dEER_low"], r["dEER_high"], signed=True
                )
                cell += "*" if r["dEER_significant"] else ""
            cells.append(cell)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv):
    """Run the grid, once per seed when ``seeds`` lists them, then the table over the seeds."""
    study_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    study = load_hparams(study_file, overrides)[0]
    if not study["seeds"]:
        run_grid(study_file, overrides, run_opts)
        return
    runs = {seed: run_grid(study_file, overrides, run_opts, seed) for seed in study["seeds"]}
    rows, table = seed_averaged_table(runs, study["n_resamples"])
    out = Path(study["output_folder"]) / "analysis_over_seeds"
    out.mkdir(parents=True, exist_ok=True)
    (out / "eer_over_seeds.json").write_text(json.dumps(rows, indent=2))
    (out / "eer_over_seeds.md").write_text(table)
    print(table)
    print(f"over {len(runs)} seeds: {out}")


if __name__ == "__main__":
    main(sys.argv[1:])
