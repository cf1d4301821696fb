"""Studies over many pseudo-label sets: the grids of ``analysis.py`` and their tables.

A grid (``recipes/VoxCeleb/CAMSAT/hparams/analysis.yaml``) makes many pseudo-label sets
from the same stage-1 embeddings (clustering methods x numbers of clusters x input
normalisations x method settings, and the true labels with a fraction flipped) and
trains a speaker network on each with every chosen loss and regularisation. Two
studies read the results:

- **correlations**: the Pearson correlation of each clustering metric with the EER,
  with 95 % intervals from a bootstrap over the pseudo-label sets, drawn as the
  paper's four heatmaps (all sets; classical vs deep methods and both; L2 vs std inputs;
  ACC above vs below 50 %), one column per regularisation;
- **by loss**: every set's EER with its interval (bootstrap over test speakers) for
  every loss, with its paired difference to the set's first network.

:func:`run_grid` runs a grid through the recipe's stages (one pass per
regularisation, tables written after each), :func:`seed_averaged_table` gathers
several seeds.

Authors
 * camsat contributors 2026
"""

import csv
import itertools
import json
import time
from pathlib import Path

import numpy as np
import speechbrain as sb
from hyperpyyaml import load_hyperpyyaml

from camsat_lobes.bootstrap import format_interval, seed_averaged_differences
from camsat_lobes.correlation import (
    HEATMAPS,
    correlation_table,
    plot_correlation_heatmap,
    split_groups,
    write_coefficients_csv,
)
from camsat_lobes.pipeline import Run, run_stages
from camsat_lobes.pipeline.trials import trial_speakers
from camsat_lobes.pipeline.verification import paired_bootstrap, saved_scores, trial_lists

__all__ = [
    "collect_records",
    "eer_by_loss",
    "grid_systems",
    "run_grid",
    "seed_averaged_table",
    "write_study",
]

DEEP_METHODS = ("imsat", "camsat")
DEGRADED_METHODS = ("flipped",)
MIN_SETS_FOR_CORRELATION = 3  # a loss trained on fewer sets gets no coefficients or heatmaps
GRID_AXES = ("k_factors", "norms")  # every other key of a grid entry is a fragment setting


def clusterer(fragments, method, values):
    """Build one clusterer from its fragment (``<fragments>/clustering/<method>.yaml``).

    Arguments
    ---------
    fragments : str or pathlib.Path
        The folder of the reusable yaml fragments (``hparams/``).
    method : str
        The fragment's name, e.g. ``kmeans``.
    values : dict
        The fragment's keys to override (``n_clusters``, ``seed``, its own settings).

    Returns
    -------
    object
        The fragment's ``clusterer``.
    """
    with open(Path(fragments) / "clustering" / f"{method}.yaml") as f:
        return load_hyperpyyaml(f, values)["clusterer"]


def pseudo_label_sets(study, n_speakers, seed, fragments):
    """Return one entry per pseudo-label set of the chosen grid: name -> method, norm, clusterer.

    A grid entry gives a method its numbers of clusters (multiples of the true count;
    none for a method that sets no count), its input normalisations, and lists of values
    of its fragment's own settings (e.g. ``mu`` or ``flip_fraction``); the sets are all
    their combinations.

    Arguments
    ---------
    study : dict
        The loaded ``analysis.yaml`` (its ``grid`` names the grid).
    n_speakers : int
        The true number of training speakers.
    seed : int
        The clusterers' seed.
    fragments : str or pathlib.Path
        The folder of the reusable yaml fragments.

    Returns
    -------
    dict
        Set name -> ``method``, ``embedding_norm``, ``clusterer`` and ``options``.
    """
    sets = {}
    for method, entry in study["grids"][study["grid"]]["sets"].items():
        settings = {key: values for key, values in entry.items() if key not in GRID_AXES}
        # A method without k_factors sets no number of clusters (e.g. threshold AHC).
        counts = [max(2, round(f * n_speakers)) for f in entry.get("k_factors", [None]) if f]
        for k in counts or [None]:
            for norm in entry["norms"]:
                for chosen in _combinations(settings):
                    name = "_".join(
                        [
                            method if k is None else f"{method}_k{k}",
                            norm,
                            *(f"{key}{v:g}" for key, v in chosen.items()),
                        ]
                    )
                    values = {"seed": seed, **chosen}
                    if k is not None:
                        values["n_clusters"] = k
                    sets[name] = {
                        "method": method,
                        "embedding_norm": norm,
                        "clusterer": clusterer(fragments, method, values),
                        "options": {"method": method, "embedding_norm": norm, **values},
                    }
    return sets


def _combinations(settings):
    """Return every combination of the listed setting values (one empty combination if none)."""
    return [dict(zip(settings, values)) for values in itertools.product(*settings.values())]


def grid_systems(study, n_speakers, seed, fragments):
    """Return one system per (pseudo-label set, loss gate, regularisation, loss) of a grid.

    The first system of a set clusters; the others take its labels (``labels_from``).
    A system names its margin loss, regularisation and loss gate (``speaker_loss_name``,
    ``speaker_regularisation``, ``speaker_loss_gate``: keys of the recipe yaml), so its
    speaker network is built by the recipe yaml like any other. A grid without
    ``loss_gates`` trains without gating.

    Arguments
    ---------
    study : dict
        The loaded ``analysis.yaml``.
    n_speakers : int
        The true number of training speakers.
    seed : int
        The clusterers' seed.
    fragments : str or pathlib.Path
        The folder of the reusable yaml fragments.

    Returns
    -------
    dict
        System name -> entry for :meth:`camsat_lobes.pipeline.Run.use_systems`.
    """
    grid = study["grids"][study["grid"]]
    systems = {}
    for set_name, spec in pseudo_label_sets(study, n_speakers, seed, fragments).items():
        owner = None
        trainings = itertools.product(
            grid.get("loss_gates", ["none"]), grid["regularisations"], grid["losses"]
        )
        for gate, regularisation, loss in trainings:
            name = f"{set_name}_{loss}_{regularisation}"
            name += "" if gate == "none" else f"_gate{gate}"
            systems[name] = {
                **spec,
                "set": set_name,
                "loss": loss,
                "regularisation": regularisation,
                "loss_gate": gate,
                "speaker_loss_name": loss,
                "speaker_regularisation": regularisation,
                "speaker_loss_gate": gate,
                "options": {
                    **spec["options"],
                    "loss": loss,
                    "regularisation": regularisation,
                    **({} if gate == "none" else {"loss_gate": gate}),
                },
            }
            if owner is not None:
                systems[name]["labels_from"] = owner
            owner = owner or name
    return systems


def _training(spec):
    """Return how a system's network was regularised: its mixup, and its loss gate if any."""
    gate = spec.get("loss_gate", "none")
    return spec["regularisation"] + ("" if gate == "none" else f" + gate {gate}")


def _family(method):
    """Return the family of a method: classical, deep or degraded (the flipped true labels)."""
    if method in DEEP_METHODS:
        return "deep"
    return "degraded" if method in DEGRADED_METHODS else "classical"


def collect_records(round_folder, systems):
    """Return one record per finished network: clustering metrics, EER and the grid fields.

    The EER is that of the every-pair trial list when the run scored it (more trials),
    else that of the corpus's first list; its interval, and its difference to the
    stage-1 embeddings paired on the same resamples, come from ``intervals.json``.

    Arguments
    ---------
    round_folder : pathlib.Path
        The grid's round folder (``<output_folder>/round1``).
    systems : dict
        The grid's systems (:func:`grid_systems`).

    Returns
    -------
    list of dict
        One record per network that finished (a collapsed clustering is left out).
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
        scored = [
            key for key, value in result.items() if isinstance(value, dict) and "EER" in value
        ]
        trial_list = "all_pairs" if "all_pairs" in scored else scored[0]
        interval = intervals.get(trial_list, {}).get(name, {})
        versus_stage1 = intervals.get(trial_list, {}).get("stage1_differences", {}).get(name, {})
        records.append(
            {
                **json.loads((folder / "clustering_metrics.json").read_text()),
                "system": name,
                "set": spec["set"],
                "method": spec["method"],
                "family": _family(spec["method"]),
                "embedding_norm": spec["embedding_norm"],
                "loss": spec["loss"],
                "regularisation": _training(spec),
                "trial_list": trial_list,
                "EER": result[trial_list]["EER"],
                "EER_low": interval.get("EER_low", float("nan")),
                "EER_high": interval.get("EER_high", float("nan")),
                "minDCF": result[trial_list]["minDCF"],
                "flip_fraction": spec.get("options", {}).get("flip_fraction"),
                **{
                    f"EER_vs_stage1{suffix}": versus_stage1.get(f"EER{suffix}")
                    for suffix in ("", "_low", "_high", "_significant")
                },
            }
        )
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        print(f"{len(missing)} networks not finished yet (rerun to resume): {shown}")
    return records


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
    if any(r.get("flip_fraction") is not None for r in records):
        (out / "label_noise.md").write_text(label_noise_table(records))


def label_noise_table(records):
    """Markdown table: networks on the true labels with a fraction flipped, against stage 1.

    The flipped sets come first, by flip fraction, then the clusterings of the grid for
    comparison (their ACC against the flipped labels' ACC); the closing sentence names
    the smallest flip fraction whose network is no longer significantly better than
    the stage-1 embeddings.

    Arguments
    ---------
    records : list of dict
        From :func:`collect_records` (one loss and regularisation: the grid's first).

    Returns
    -------
    str
        The table and the sentence.

    Example
    -------
    >>> def record(name, flip, acc, d, low, high):
    ...     return {"set": name, "flip_fraction": flip, "acc": acc, "n_clusters": 100,
    ...             "EER": 10 + d, "EER_low": 8 + d, "EER_high": 12 + d, "EER_vs_stage1": d,
    ...             "EER_vs_stage1_low": low, "EER_vs_stage1_high": high,
    ...             "EER_vs_stage1_significant": high < 0 or low > 0, "loss": "aam",
    ...             "regularisation": "none", "trial_list": "all_pairs"}
    >>> rows = [record("flip0", 0.0, 1.0, -5, -7, -3), record("flip3", 0.3, 0.7, 4, 1, 6),
    ...         record("flip5", 0.5, 0.5, 9, 6, 12), record("kmeans", None, 0.3, 0.2, -1, 1)]
    >>> print(label_noise_table(rows).splitlines()[-1])
    With 30 % of the true labels flipped the network is no longer significantly better than stage 1.
    """
    first = records[0]
    of_first = [
        r
        for r in records
        if (r["loss"], r["regularisation"]) == (first["loss"], first["regularisation"])
    ]
    flipped = sorted((r for r in of_first if r.get("flip_fraction") is not None), key=_flip)
    others = [r for r in of_first if r.get("flip_fraction") is None]
    lines = [
        f"EER % [95 % interval] on the {first['trial_list']} trial list, and its paired "
        "difference to the stage-1 embeddings (* : the interval excludes 0)",
        "",
        "| pseudo-labels | clusters | ACC | EER | EER − stage 1 |",
        "|---|---:|---:|---|---|",
    ]
    for r in flipped + others:
        name = (
            f"true labels, {100 * r['flip_fraction']:.0f} % flipped" if r in flipped else r["set"]
        )
        difference = format_interval(
            r["EER_vs_stage1"], r["EER_vs_stage1_low"], r["EER_vs_stage1_high"], signed=True
        )
        lines.append(
            f"| {name} | {r['n_clusters']} | {r['acc']:.3f} | "
            f"{format_interval(r['EER'], r['EER_low'], r['EER_high'])} | "
            f"{difference}{'*' if r['EER_vs_stage1_significant'] else ''} |"
        )
    stops = next((r for r in flipped if not _significantly_better(r)), None)
    lines.append("")
    if stops is None:
        lines.append("Every flipped set's network is significantly better than stage 1.")
    else:
        lines.append(
            f"With {100 * stops['flip_fraction']:.0f} % of the true labels flipped the network "
            "is no longer significantly better than stage 1."
        )
    return "\n".join(lines)


def _significantly_better(record):
    """Whether a network's EER is significantly below the stage-1 embeddings'."""
    return bool(record["EER_vs_stage1_significant"]) and record["EER_vs_stage1"] < 0


def _flip(record):
    """Sort key of a flipped set: its flip fraction."""
    return record["flip_fraction"]


def add_paired_differences(run, records):
    """Add to every record its EER difference to its set's first network, with an interval.

    The first network of a set is that of the grid's first regularisation and first
    loss (e.g. AAM without mixup). The difference is paired: both networks are scored
    on the same bootstrap resamples of the test speakers, so a difference whose
    interval excludes 0 is significant (``dEER_significant``).

    Arguments
    ---------
    run : camsat_lobes.pipeline.Run
        The grid's run.
    records : list of dict
        From :func:`collect_records`; updated in place.
    """
    if not records:
        return
    trial_list = records[0]["trial_list"]
    trials = trial_lists(run)[trial_list]
    by_set = {}
    for record in records:
        by_set.setdefault(record["set"], []).append(record)
    for members in by_set.values():
        systems = [r["system"] for r in members]
        result = paired_bootstrap(
            run,
            1,
            systems,
            trial_list,
            trials,
            n_resamples=run.hparams["n_resamples"],
            p_target=run.hparams["p_targets"][0],
            reference=systems[0],
        )
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


def run_grid(study, recipe, fragments, run_opts=None, main_seed=None):
    """Run a grid through the recipe's stages, one pass per regularisation.

    The study's tables and heatmaps are written after every pass from the networks
    finished so far, so a study stopped early still reports its finished columns
    (``<output_folder>/analysis``, or ``<output_folder>/seed<seed>/analysis`` for
    another seed).

    Arguments
    ---------
    study : dict
        The loaded ``analysis.yaml``.
    recipe : camsat_lobes.pipeline.RecipeHparams
        The recipe yaml (``base_hparams``) with the grid's overrides.
    fragments : str or pathlib.Path
        The folder of the reusable yaml fragments.
    run_opts : dict, optional
        SpeechBrain run options.
    main_seed : int, optional
        The run's main seed, when the recipe's seed is another one: the grid then
        clusters the main seed's stage-1 embeddings (prepared and trained already).

    Returns
    -------
    tuple
        ``(run, records)``: the grid's run and the records of its finished networks.
    """
    run = Run(recipe, run_opts, main_seed=main_seed, skip_collapsed=True)
    run.use_systems({})  # the grid's systems replace the recipe's (checked by run_stages)
    if run.is_main:
        run.stage("prepare")(run)
    run.stage("check_counts")(run)  # the grid's cluster counts are multiples of n_speakers
    systems = grid_systems(study, run.hparams["n_speakers"], run.hparams["seed"], fragments)
    regularisations = study["grids"][study["grid"]]["regularisations"]
    out = run.layout.seed_root / "analysis"
    start = time.time()
    records = []
    for regularisation in regularisations:
        run.use_systems(
            {
                name: spec
                for name, spec in systems.items()
                if spec["regularisation"] == regularisation
            }
        )
        run_stages(run, "encoder", "verify")
        records = collect_records(run.layout.round(1), systems)
        add_paired_differences(run, records)
        write_study(records, regularisations, out, study["n_resamples"], run.hparams["seed"])
        summary = {
            "grid": study["grid"],
            "seed": run.hparams["seed"],
            "pseudo_label_sets": len({spec["set"] for spec in systems.values()}),
            "networks": len(systems),
            "networks_finished": len(records),
            "seconds_this_run": round(time.time() - start),
            "seconds_all_stages": round(stage_seconds(run.layout.round(1))),
        }
        if sb.utils.distributed.if_main_process():
            (out / "summary.json").write_text(json.dumps(summary, indent=2))
        print(f"{regularisation} done: {json.dumps(summary)}; tables and heatmaps in {out}")
    return run, records


def seed_averaged_table(runs, n_resamples):
    """Every set's networks over several seeds: EER mean and std, and the seed-averaged difference.

    A set's networks are compared with its first network (e.g. AAM-softmax) by
    :func:`~camsat_lobes.bootstrap.seed_averaged_differences`: per speaker resample,
    the difference averaged over the seeds.

    Arguments
    ---------
    runs : dict
        Seed -> ``(run, records)`` from :func:`run_grid`.
    n_resamples : int
        Bootstrap resamples of the test speakers.

    Returns
    -------
    tuple
        ``(rows, markdown)``: JSON-ready rows and the markdown table.
    """
    first_run = next(iter(runs.values()))[0]
    trial_list = next(iter(runs.values()))[1][0]["trial_list"]
    trials = trial_lists(first_run)[trial_list]
    for seed, (run, _) in runs.items():
        if trial_lists(run)[trial_list] != trials:
            raise ValueError(f"seed {seed} scored another {trial_list} trial list than the others")
    labels, enrol, test = trial_speakers(first_run.layout.data, trials)
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
            seed: saved_scores(run, 1, complete, trial_list) for seed, (run, _) in runs.items()
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
