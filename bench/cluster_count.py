"""Count the clusters IMSAT and CAMSAT keep on the stage-1 embeddings of a run.

Reads the training embeddings, views and speaker labels of a finished recipe run
(``train.py`` up to the extract stage) and prints one table row per method and
marginal-entropy weight mu: clusters kept out of the initial K, NMI, ACC and purity
against the true speakers, with k-means at the true count as the reference.

Usage::

    python bench/cluster_count.py recipes/VoxCeleb/CAMSAT/results/camsat/1234
    python bench/cluster_count.py RUN --mu 1 2 4 --k-factor 2 --epochs 50
"""

import argparse
import csv
from pathlib import Path

import numpy as np
import torch

from camsat_lobes.clustering import CAMSAT, IMSAT, KMeansClusterer, LossWeights, clustering_metrics
from camsat_lobes.extract import normalize_embeddings


def load_run(run_folder, round_index=1):
    """L2-normalised embeddings, views and integer speaker labels of a run's round."""
    run = Path(run_folder)
    folder = run / f"round{round_index}" / "embeddings" / "train"
    ids = (folder / "ids.txt").read_text().split()
    x, views = np.load(folder / "embeddings.npy"), np.load(folder / "views.npy")
    with open(run / "save" / "data" / "train_utts.csv", newline="") as f:
        speaker = {row["ID"]: row["spk_id"] for row in csv.DictReader(f)}
    labels = np.unique([speaker[i] for i in ids], return_inverse=True)[1]
    return normalize_embeddings(x, "l2"), normalize_embeddings(views, "l2", reference=x), labels


def main():
    """Cluster a run's stage-1 embeddings with IMSAT and CAMSAT at several mu; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run_folder", help="output folder of a recipe run")
    parser.add_argument("--mu", type=float, nargs="+", default=[1.0, 2.0, 4.0])
    parser.add_argument("--k-factor", type=float, default=2.0, help="initial K / true count")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    x, views, labels = load_run(args.run_folder)
    n_speakers = int(labels.max() + 1)
    k_start = int(round(args.k_factor * n_speakers))
    print(f"{len(x)} utterances, {n_speakers} speakers, deep methods start at K={k_start}\n")
    print("| method | mu | K start | clusters kept | NMI | ACC | purity |")
    print("|---|---:|---:|---:|---:|---:|---:|")

    def row(name, mu, k, labels_found):
        """Print one table row for a clustering."""
        m = clustering_metrics(labels_found, labels)
        kept = len(np.unique(labels_found))
        print(
            f"| {name} | {mu} | {k} | {kept} | {m['nmi']:.3f} | {m['acc']:.3f} | "
            f"{m['purity']:.3f} |",
            flush=True,
        )

    row("k-means", "-", n_speakers, KMeansClusterer(n_speakers, seed=args.seed).fit(x).labels)
    for mu in args.mu:
        for name, model in (
            ("IMSAT", IMSAT(k_start, weights=LossWeights.imsat(mu=mu))),
            ("CAMSAT", CAMSAT(k_start, weights=LossWeights(mu=mu))),
        ):
            model.epochs, model.seed, model.progress = args.epochs, args.seed, False
            with_views = views if name == "CAMSAT" else None
            row(name, mu, k_start, model.fit(x, views=with_views).labels)


if __name__ == "__main__":
    main()
