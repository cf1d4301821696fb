"""Pseudo-label quality of clustering methods on a run's stage-1 embeddings, without training.

Reads the training embeddings and speakers of a finished recipe run (``train.py`` up
to the extract stage; a development split's run keeps the corpus's test speakers out)
and clusters them with every chosen method, each built from its fragment in
``hparams/clustering/``: k-means at the true count, over-cluster-then-merge, threshold
AHC at every ``--thresholds`` value, and CAMSAT from ``--starts`` times the true count.
It prints one markdown row per method: clusters, fraction of utterances kept, ACC, NMI
and purity on the kept utterances, and ``ACC x kept``, the fraction of all training
utterances both kept and in their speaker's cluster. That last number is how the
threshold of threshold AHC is chosen on training speakers (the highest wins).

Usage::

    python bench/pseudo_labels.py recipes/VoxCeleb/CAMSAT/results/ratios_dev/e10 \
        --thresholds 0.5 0.6 0.7 0.8 --out docs/results/pseudo_labels_development.md
"""

import argparse
import csv
import itertools
import time
from pathlib import Path

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from camsat_lobes.clustering import clustering_metrics
from camsat_lobes.extract import normalize_embeddings

FRAGMENTS = Path(__file__).resolve().parents[1] / "hparams" / "clustering"


def load_embeddings(run_folder, norm="l2"):
    """Load a run's normalised round-1 training embeddings, views and speaker labels.

    Arguments
    ---------
    run_folder : str or pathlib.Path
        Output folder of a recipe run.
    norm : str
        The recipe's ``embedding_norm``.

    Returns
    -------
    tuple
        Embeddings (N, D), views (N, V, D) and integer speaker labels (N,).
    """
    run = Path(run_folder)
    folder = run / "round1" / "embeddings" / "train"
    ids = (folder / "ids.txt").read_text().split()
    x, views = np.load(folder / "embeddings.npy"), np.load(folder / "views.npy")
    with open(run / "save" / "data" / "train_utts.csv", newline="") as f:
        speaker = {row["ID"]: row["spk_id"] for row in csv.DictReader(f)}
    labels = np.unique([speaker[i] for i in ids], return_inverse=True)[1]
    return normalize_embeddings(x, norm), normalize_embeddings(views, norm, reference=x), labels


def methods(n_speakers, thresholds, starts, seed, epochs, min_sizes=(8,), confidences=(0.9,)):
    """Return the clusterers to compare, name -> clusterer (built from their fragments).

    Arguments
    ---------
    n_speakers : int
        The true number of training speakers.
    thresholds : list of float
        Similarity thresholds of threshold AHC.
    starts : list of float
        CAMSAT's initial numbers of clusters, as multiples of ``n_speakers``.
    seed : int
        The clusterers' seed.
    epochs : int
        CAMSAT's epochs.
    min_sizes : sequence of int
        Smallest clusters threshold AHC keeps.
    confidences : sequence of float
        Lowest own-cluster posteriors threshold AHC keeps.

    Returns
    -------
    dict
        Name -> clusterer.
    """

    def fragment(name, **values):
        """Build the clusterer of one fragment with ``values`` overridden."""
        with open(FRAGMENTS / f"{name}.yaml") as stream:
            return load_hyperpyyaml(stream, {"seed": seed, **values})["clusterer"]

    chosen = {"kmeans (true count)": fragment("kmeans", n_clusters=n_speakers)}
    chosen["over-cluster then merge"] = fragment(
        "overcluster_merge", n_clusters=round(1.25 * n_speakers)
    )
    for threshold, min_size, confidence in itertools.product(thresholds, min_sizes, confidences):
        name = f"threshold AHC {threshold:g} (sizes >= {min_size}, posterior >= {confidence:g})"
        chosen[name] = fragment(
            "threshold_ahc", threshold=threshold, min_size=min_size, min_confidence=confidence
        )
    for start in starts:
        chosen[f"CAMSAT from {start:g}x"] = fragment(
            "camsat", n_clusters=round(start * n_speakers), epochs=epochs
        )
    return chosen


def main(argv=None):
    """Cluster a run's embeddings with every method and print the table.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", help="output folder of a run with round-1 embeddings")
    parser.add_argument("--thresholds", type=float, nargs="+", default=[0.6, 0.7, 0.8])
    parser.add_argument("--min_sizes", type=int, nargs="+", default=[8])
    parser.add_argument("--min_confidences", type=float, nargs="+", default=[0.9])
    parser.add_argument("--starts", type=float, nargs="*", default=[2.0])
    parser.add_argument("--epochs", type=int, default=100, help="CAMSAT's epochs")
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", help="also write the table here (and a .csv beside it)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    x, views, labels = load_embeddings(args.run)
    n_speakers = int(labels.max()) + 1
    rows = []
    chosen = methods(
        n_speakers,
        args.thresholds,
        args.starts,
        args.seed,
        args.epochs,
        args.min_sizes,
        args.min_confidences,
    )
    for name, clusterer in chosen.items():
        start = time.perf_counter()
        try:
            predicted = clusterer.fit(x, views=views, true_labels=labels).labels
        except ValueError as error:  # e.g. threshold AHC leaving every utterance out
            print(f"{name}: {error}")
            continue
        metrics = clustering_metrics(predicted, labels)
        kept = metrics.get("kept_fraction", 1.0)
        rows.append(
            {
                "method": name,
                "clusters": metrics["n_clusters"],
                "kept": kept,
                "acc": metrics["acc"],
                "nmi": metrics["nmi"],
                "purity": metrics["purity"],
                "acc_x_kept": metrics["acc"] * kept,
                "seconds": time.perf_counter() - start,
            }
        )
        print(rows[-1], flush=True)
    header = (
        f"Clusterings of {len(labels)} training utterances of {n_speakers} speakers "
        f"({args.run}); ACC, NMI and purity on the kept utterances.\n\n"
        "| method | clusters | kept | ACC | NMI | purity | ACC x kept | s |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    table = header + "".join(
        f"| {r['method']} | {r['clusters']} | {r['kept']:.3f} | {r['acc']:.3f} | {r['nmi']:.3f} "
        f"| {r['purity']:.3f} | {r['acc_x_kept']:.3f} | {r['seconds']:.0f} |\n"
        for r in rows
    )
    print(table)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(table)
        with open(out.with_suffix(".csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)


if __name__ == "__main__":
    main()
