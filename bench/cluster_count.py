"""Count the clusters IMSAT and CAMSAT keep on a run's stage-1 embeddings or synthetic ones.

Reads the training embeddings, views and speaker labels of a finished recipe run
(``train.py`` up to the extract stage), or draws synthetic speaker-like
embeddings with ``--synthetic POINTS SPEAKERS`` (``bench/clustering.py``'s
generator: sessions as offsets, 4 views; many utterances per speaker, as in the
paper's VoxCeleb2 setting), and fits every chosen method at every
marginal-entropy weight mu, every initial K (a factor of the true speaker count)
and every seed. It prints one markdown row per (method, mu, start): clusters kept
out of the initial K, NMI, ACC and purity against the true speakers as mean ± std
over the seeds, with k-means at the true count (same seeds) as the reference row.

Every method is the recipe's CAMSAT fragment (``hparams/clustering/camsat.yaml``,
so its defaults are what is measured) with some loss weights overridden: ``imsat``
(VAT + information maximisation), ``camsat_nosym`` (IMSAT + L_aug),
``camsat_noaug`` (IMSAT + L_symmetry), ``camsat`` (both, on the run's augmented
views) and the ablations ``camsat_supcon``, ``camsat_mixup``, ``camsat_infonce``.
Outputs under ``--out``: ``cluster_count.md`` (the table), ``cluster_count.csv``
(one line per fit) and ``cluster_count_curves.png`` (number of non-empty clusters
per epoch, mean over seeds, one panel per start).

Usage::

    python bench/cluster_count.py recipes/VoxCeleb/CAMSAT/results/camsat/1234
    # the ablation table at one start:
    python bench/cluster_count.py RUN --starts 2 --methods imsat camsat_nosym camsat_noaug \
        camsat camsat_supcon camsat_mixup camsat_infonce
    # the count against mu, one seed:
    python bench/cluster_count.py RUN --methods imsat camsat --mu 1 2 4 --starts 2 --seeds 1234
    # synthetic speakers with 100 utterances each, the IMSAT reference's 50 epochs:
    python bench/cluster_count.py --synthetic 10000 100 --epochs 50
"""

import argparse
import csv
import time
from pathlib import Path

import numpy as np
import torch
from hyperpyyaml import load_hyperpyyaml

from camsat_lobes.clustering import KMeansClusterer, clustering_metrics
from camsat_lobes.extract import normalize_embeddings

#: The recipe's CAMSAT fragment; every method is it with some loss weights overridden.
CAMSAT_HPARAMS = Path(__file__).resolve().parents[1] / "hparams" / "clustering" / "camsat.yaml"
#: Table name, plot colour and loss-weight overrides of each method accepted by ``--methods``.
METHODS = {
    "imsat": ("IMSAT", "tab:blue", {"augmentation": 0.0, "symmetry": 0.0}),
    "camsat_nosym": ("IMSAT + L_aug", "tab:orange", {"symmetry": 0.0}),
    "camsat_noaug": ("IMSAT + L_symmetry", "tab:olive", {"augmentation": 0.0}),
    "camsat": ("CAMSAT", "tab:red", {}),
    "camsat_supcon": ("CAMSAT + SupCon", "tab:purple", {"supcon": 1.0}),
    "camsat_mixup": ("CAMSAT + Mixup", "tab:brown", {"mixup": 1.0}),
    "camsat_infonce": ("CAMSAT + InfoNCE", "tab:green", {"infonce": 1.0}),
}
#: Columns of the CSV file, one line per fit.
CSV_COLUMNS = (
    "method",
    "mu",
    "start_factor",
    "k_start",
    "seed",
    "epochs",
    "clusters_kept",
    "nmi",
    "acc",
    "purity",
    "seconds",
)


def load_run(run_folder, round_index=1, norm="l2"):
    """Load the normalised embeddings, views and speaker labels of a run's round.

    Arguments
    ---------
    run_folder : str or pathlib.Path
        Output folder of a recipe run (holds ``round<i>/embeddings/train`` and
        ``save/data/train_utts.csv``).
    round_index : int
        Which round's training embeddings to read.
    norm : str
        The recipe's ``embedding_norm`` (``l2`` or ``center``, see
        :func:`camsat_lobes.extract.normalize_embeddings`).

    Returns
    -------
    tuple of numpy.ndarray
        Embeddings (N×D), views (N×V×D), integer speaker labels (N,).
    """
    run = Path(run_folder)
    folder = run / f"round{round_index}" / "embeddings" / "train"
    ids = (folder / "ids.txt").read_text().split()
    x, views = np.load(folder / "embeddings.npy"), np.load(folder / "views.npy")
    with open(run / "save" / "data" / "train_utts.csv", newline="") as f:
        speaker = {row["ID"]: row["spk_id"] for row in csv.DictReader(f)}
    labels = np.unique([speaker[i] for i in ids], return_inverse=True)[1]
    return normalize_embeddings(x, norm), normalize_embeddings(views, norm, reference=x), labels


def synthetic_data(n_points, n_speakers):
    """Draw the synthetic speaker-like embeddings of ``bench/clustering.py`` (seed 0).

    Arguments
    ---------
    n_points : int
        Number of embeddings.
    n_speakers : int
        Number of speakers drawn (one that draws no embedding is left out of the labels).

    Returns
    -------
    tuple of numpy.ndarray
        Embeddings (N×192), 4 views (N×4×192), integer speaker labels (N,).

    Example
    -------
    >>> x, views, labels = synthetic_data(200, 10)
    >>> x.shape, views.shape, bool(labels.max() < 10)
    ((200, 192), (200, 4, 192), True)
    """
    from clustering import make_embeddings

    x, views, labels = make_embeddings(n_points, n_speakers=n_speakers)
    return x, views, np.unique(labels, return_inverse=True)[1]


def initial_counts(starts, n_speakers, n_points):
    """Give the initial K of each start factor, capped at the number of points (a fit's limit).

    Arguments
    ---------
    starts : sequence of float
        Start factors (initial K / true count).
    n_speakers : int
        True number of speakers.
    n_points : int
        Number of embeddings.

    Returns
    -------
    dict
        Start factor → initial K.
    """
    counts = {}
    for factor in starts:
        counts[factor] = min(int(round(factor * n_speakers)), n_points)
        if counts[factor] < round(factor * n_speakers):
            print(
                f"start {factor:g}x asks for more clusters than the {n_points} points: "
                f"capped at K={n_points} ({n_points / n_speakers:.2f}x)",
                flush=True,
            )
    return counts


def start_label(factor, k_start, n_speakers):
    """Describe a start for the table and the plot, saying when its K was capped.

    Arguments
    ---------
    factor : float
        Start factor asked for.
    k_start : int
        Initial K used.
    n_speakers : int
        True number of speakers.

    Returns
    -------
    str
        E.g. ``"240 (2x)"`` or ``"604 (8x asked, capped at N = 5.03x)"``.
    """
    if k_start == int(round(factor * n_speakers)):
        return f"{k_start} ({factor:g}x)"
    return f"{k_start} ({factor:g}x asked, capped at N = {k_start / n_speakers:.2f}x)"


def parse_args():
    """Read the command line.

    Returns
    -------
    argparse.Namespace
        The options (``starts`` and ``seeds`` also answer to the older
        ``--k-factor`` and ``--seed``).
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run_folder", nargs="?", help="output folder of a recipe run")
    parser.add_argument(
        "--synthetic",
        type=int,
        nargs=2,
        metavar=("POINTS", "SPEAKERS"),
        help="fit synthetic speaker-like embeddings instead of a run's",
    )
    parser.add_argument(
        "--methods", nargs="+", choices=sorted(METHODS), default=["imsat", "camsat", "camsat_nosym"]
    )
    parser.add_argument(
        "--starts",
        "--k-factor",
        dest="starts",
        type=float,
        nargs="+",
        default=[2.0, 4.0, 8.0],
        help="initial K as factors of the true speaker count",
    )
    parser.add_argument(
        "--seeds", "--seed", dest="seeds", type=int, nargs="+", default=[1234, 1235, 1236]
    )
    parser.add_argument(
        "--mu", type=float, nargs="+", default=None, help="default: the fragment's mu"
    )
    parser.add_argument(
        "--epochs",
        type=int,
        default=300,
        help="about 600 steps on the default MiniVox's 604 utterances; the counts are flat by then",
    )
    parser.add_argument(
        "--norm",
        choices=["l2", "center"],
        default="l2",
        help="normalisation of a run's embeddings (the recipe's embedding_norm)",
    )
    parser.add_argument("--out", default="results/cluster_count", help="folder for the outputs")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if (args.run_folder is None) == (args.synthetic is None):
        parser.error("give either a run folder or --synthetic POINTS SPEAKERS")
    if args.mu is None:
        with open(CAMSAT_HPARAMS) as handle:
            args.mu = [load_hyperpyyaml(handle)["mu"]]
    return args


def make_model(method, k_start, mu, epochs, seed):
    """Build the clusterer of one method from the recipe's CAMSAT fragment.

    Arguments
    ---------
    method : str
        A key of :data:`METHODS`.
    k_start : int
        Initial number of clusters (head outputs).
    mu : float
        Weight of the marginal entropy.
    epochs : int
        Training epochs.
    seed : int
        Seed of the fit.

    Returns
    -------
    tuple
        The model and whether its fit takes the run's views.

    Example
    -------
    >>> model, uses_views = make_model("imsat", 20, 2.0, 3, 0)
    >>> model.n_clusters, model.weights.mu, model.weights.symmetry, uses_views
    (20, 2.0, 0.0, False)
    """
    overrides = {"n_clusters": k_start, "mu": mu, "epochs": epochs, "seed": seed}
    with open(CAMSAT_HPARAMS) as handle:
        model = load_hyperpyyaml(handle, {**overrides, **METHODS[method][2]})["clusterer"]
    model.progress = False
    return model, model.weights.needs_views


def score(found, labels):
    """Score a clustering against the true speakers.

    Arguments
    ---------
    found : numpy.ndarray
        Cluster of each point.
    labels : numpy.ndarray
        True speaker of each point.

    Returns
    -------
    dict
        ``clusters_kept`` (non-empty clusters), ``nmi``, ``acc`` and ``purity``.
    """
    metrics = clustering_metrics(found, labels)
    return {
        "clusters_kept": int(np.unique(found).size),
        **{name: float(metrics[name]) for name in ("nmi", "acc", "purity")},
    }


def run_grid(x, views, labels, args, k_starts, csv_path):
    """Fit k-means and every (method, mu, start, seed); append each fit to the CSV.

    Arguments
    ---------
    x : numpy.ndarray
        Embeddings (N×D).
    views : numpy.ndarray
        Augmented views (N×V×D).
    labels : numpy.ndarray
        True speaker of each point.
    args : argparse.Namespace
        The options.
    k_starts : dict
        Start factor → initial K (from :func:`initial_counts`).
    csv_path : pathlib.Path
        CSV file to write, one line per fit (written as the fits finish).

    Returns
    -------
    tuple
        The per-fit rows (list of dict) and the per-epoch cluster counts,
        ``{(method, mu, start_factor): [counts of each seed]}``.
    """
    n_speakers = int(labels.max() + 1)
    rows, curves = [], {}
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=CSV_COLUMNS)
        writer.writeheader()

        def record(row):
            """Keep one fit's numbers, write them out and report progress."""
            rows.append(row)
            writer.writerow(row)
            handle.flush()
            print(
                f"  {row['method']} mu={row['mu']} K={row['k_start']} seed={row['seed']}: "
                f"{row['clusters_kept']} kept, NMI {row['nmi']:.3f}, {row['seconds']:.0f} s",
                flush=True,
            )

        for seed in args.seeds:
            start = time.perf_counter()
            found = KMeansClusterer(n_speakers, seed=seed).fit(x).labels
            record(
                {
                    "method": "k-means",
                    "mu": "",
                    "start_factor": 1.0,
                    "k_start": n_speakers,
                    "seed": seed,
                    "epochs": "",
                    **score(found, labels),
                    "seconds": time.perf_counter() - start,
                }
            )
            for mu in args.mu:
                for factor in args.starts:
                    k_start = k_starts[factor]
                    for method in args.methods:
                        model, uses_views = make_model(method, k_start, mu, args.epochs, seed)
                        start = time.perf_counter()
                        result = model.fit(x, views=views if uses_views else None)
                        key = (method, mu, factor)
                        curves.setdefault(key, []).append([r["n_clusters"] for r in result.history])
                        record(
                            {
                                "method": method,
                                "mu": mu,
                                "start_factor": factor,
                                "k_start": k_start,
                                "seed": seed,
                                "epochs": args.epochs,
                                **score(result.labels, labels),
                                "seconds": time.perf_counter() - start,
                            }
                        )
    return rows, curves


def mean_std(values, digits):
    """Format values as mean ± sample standard deviation (the mean alone for one value).

    Arguments
    ---------
    values : sequence of float
        The numbers, one per seed.
    digits : int
        Decimals to show.

    Returns
    -------
    str
        E.g. ``"0.812 ± 0.004"``.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def summary_table(rows, args, k_starts, n_speakers):
    """Build the markdown table: k-means first, then each (mu, start) with its methods.

    Arguments
    ---------
    rows : list of dict
        The per-fit rows of :func:`run_grid`.
    args : argparse.Namespace
        The options (their order sets the row order).
    k_starts : dict
        Start factor → initial K.
    n_speakers : int
        True number of speakers.

    Returns
    -------
    list of str
        The table lines.
    """
    lines = [
        "| method | mu | K start | seeds | clusters kept | NMI | ACC | purity |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]

    def add(name, mu, k_start, group):
        """Add the line of one group of fits (one per seed)."""
        cells = [
            mean_std([r[key] for r in group], 1 if key == "clusters_kept" else 3)
            for key in ("clusters_kept", "nmi", "acc", "purity")
        ]
        lines.append(f"| {name} | {mu} | {k_start} | {len(group)} | " + " | ".join(cells) + " |")

    add("k-means", "-", n_speakers, [r for r in rows if r["method"] == "k-means"])
    for mu in args.mu:
        for factor in args.starts:
            label = start_label(factor, k_starts[factor], n_speakers)
            for method in args.methods:
                group = [
                    r
                    for r in rows
                    if r["method"] == method and r["mu"] == mu and r["start_factor"] == factor
                ]
                if group:
                    add(METHODS[method][0], mu, label, group)
    return lines


def plot_curves(curves, args, k_starts, n_speakers, path):
    """Draw the non-empty cluster count per epoch, mean over seeds, one panel per start.

    Colour tells the method, line style the mu (when several are given); the band
    spans the seeds' minimum to maximum. The true count is a dashed black line.

    Arguments
    ---------
    curves : dict
        ``{(method, mu, start_factor): [per-epoch counts of each seed]}``.
    args : argparse.Namespace
        The options.
    k_starts : dict
        Start factor → initial K.
    n_speakers : int
        True number of speakers.
    path : pathlib.Path
        PNG file to write.
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    styles = ("-", "--", ":", "-.")
    fig = Figure(figsize=(4.8 * len(args.starts), 4.6))
    axes = np.atleast_1d(fig.subplots(1, len(args.starts), squeeze=False)[0])
    for ax, factor in zip(axes, args.starts):
        k_start = k_starts[factor]
        for i, mu in enumerate(args.mu):
            for method in args.methods:
                runs = curves.get((method, mu, factor))
                if not runs:
                    continue
                counts = np.asarray(runs, dtype=float)
                epochs = np.arange(1, counts.shape[1] + 1)
                name, colour, _ = METHODS[method]
                label = name if len(args.mu) == 1 else f"{name}, mu={mu:g}"
                ax.plot(
                    epochs, counts.mean(axis=0), styles[i % len(styles)], color=colour, label=label
                )
                if len(counts) > 1:
                    ax.fill_between(
                        epochs,
                        counts.min(axis=0),
                        counts.max(axis=0),
                        color=colour,
                        alpha=0.15,
                        linewidth=0,
                    )
        ax.axhline(
            n_speakers,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"true count ({n_speakers})",
        )
        ax.set_ylim(0, max(k_start, n_speakers) * 1.05)
        ax.set_title(f"start K = {start_label(factor, k_start, n_speakers)}", fontsize=10)
        ax.set_xlabel("Epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("Non-empty clusters (mean over seeds)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels))
    fig.suptitle(f"Clusters kept per epoch, {len(args.seeds)} seed(s); band: min to max over seeds")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=120)


def main():
    """Run the grid on a run's or synthetic embeddings; print and write the table, CSV and PNG."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()

    if args.synthetic:
        x, views, labels = synthetic_data(*args.synthetic)
        source = f"synthetic ({args.synthetic[0]} points, {args.synthetic[1]} speakers, seed 0)"
    else:
        x, views, labels = load_run(args.run_folder, norm=args.norm)
        source = f"`{args.run_folder}`, embedding_norm {args.norm}"
    n_speakers = int(labels.max() + 1)
    heading = (
        f"{len(x)} utterances, {n_speakers} speakers, {views.shape[1]} views; "
        f"{args.epochs} epochs; seeds {' '.join(map(str, args.seeds))}; "
        f"mean ± sample std over seeds"
    )
    print(heading, flush=True)

    k_starts = initial_counts(args.starts, n_speakers, len(x))
    rows, curves = run_grid(x, views, labels, args, k_starts, out / "cluster_count.csv")
    table = summary_table(rows, args, k_starts, n_speakers)
    print("\n" + "\n".join(table))
    (out / "cluster_count.md").write_text(
        f"Data: {source}\n\n{heading}\n\n" + "\n".join(table) + "\n"
    )
    if curves:
        plot_curves(curves, args, k_starts, n_speakers, out / "cluster_count_curves.png")
    print(
        f"\nwrote {out}/cluster_count.md, .csv and _curves.png in "
        f"{time.perf_counter() - began:.0f} s"
    )


if __name__ == "__main__":
    main()
