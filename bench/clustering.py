"""Benchmark the clustering lobes on synthetic speaker-like embeddings.

Prints markdown tables: the wall time of faiss k-means against scikit-learn
KMeans on the same data (same algorithm: Lloyd, random start, same number of
iterations), CAMSAT's seconds per epoch, and NMI / ACC / AMI / ARI / cluster
count of every method. With ``--metrics-scale`` it also times the metrics suite
on a million points and ten thousand clusters.

Synthetic data (``make_embeddings``): K speakers with centres drawn uniformly on
the unit sphere, log-normal numbers of utterances per speaker, a few sessions per
speaker (a shared offset, the "channel"), per-utterance noise, all L2-normalised;
the V views are perturbed copies of each embedding (fresh noise, renormalised),
as augmented audio would give.

Usage::

    python bench/clustering.py                        # 50k x 192, 500 speakers, 4 views
    python bench/clustering.py --n 10000 --clusters 100 --epochs 20 --hidden 512,512
    python bench/clustering.py --metrics-scale --skip-methods
"""

import argparse
import json
import logging
import pathlib
import resource
import time
import tracemalloc

import numpy as np
from sklearn.cluster import KMeans as SklearnKMeans

from camsat_lobes.clustering import (
    CAMSAT,
    IMSAT,
    AHCClusterer,
    GMMClusterer,
    KMeansClusterer,
    LossWeights,
    clustering_metrics,
    l2_normalize,
    plot_history,
    save_history,
)


def make_embeddings(
    n=50000,
    dim=192,
    n_speakers=500,
    n_views=4,
    sessions=3,
    session_scale=0.6,
    noise_scale=1.0,
    view_scale=0.6,
    seed=0,
    utterances_per_speaker=None,
    speaker_scale=1.0,
    view_space="point",
):
    """Speaker-like embeddings, their views and the speaker labels.

    Before the L2 normalisation an utterance is its speaker's centre (drawn
    uniformly on the sphere of radius ``speaker_scale``, so two speakers lie about
    ``speaker_scale`` × √2 apart), plus the offset of one of the speaker's
    ``sessions`` sessions (the "channel"), plus its own noise; offsets and noise
    are isotropic Gaussians whose expected norms are ``session_scale`` and
    ``noise_scale``. A view adds isotropic noise of expected norm ``view_scale``
    to the embedding and is L2-normalised again, as augmented audio would give.

    Arguments
    ---------
    n : int
        Number of embeddings, drawn from speakers of log-normal popularity and
        sessions uniformly at random (ignored when ``utterances_per_speaker`` is set).
    dim : int
        Embedding dimension.
    n_speakers : int
        Number of speakers.
    n_views : int
        Views of each embedding.
    sessions : int
        Sessions of each speaker.
    session_scale : float
        Expected norm of a session offset.
    noise_scale : float
        Expected norm of an utterance's own noise.
    view_scale : float
        Expected norm of a view's perturbation.
    seed : int
        Seed of every draw.
    utterances_per_speaker : int, optional
        Give every speaker exactly this many utterances, spread evenly over its
        sessions (N = n_speakers × utterances_per_speaker).
    speaker_scale : float
        Norm of the speaker centres (the between-speaker spread). After the L2
        normalisation only the ratios of the four scales matter.
    view_space : str
        ``"point"`` adds a view's perturbation to the normalised embedding (its
        scale is then in units of the unit sphere); ``"raw"`` adds it before the
        normalisation, next to the session offset and the utterance noise, so that
        ``view_scale`` is on the same scale as ``session_scale`` and ``noise_scale``.

    Returns
    -------
    tuple of numpy.ndarray
        Embeddings (N×dim), views (N×n_views×dim), integer speaker labels (N,).

    Example
    -------
    >>> x, views, labels = make_embeddings(dim=8, n_speakers=3, utterances_per_speaker=4)
    >>> x.shape, views.shape, np.bincount(labels).tolist()
    ((12, 8), (12, 4, 8), [4, 4, 4])
    """
    if view_space not in ("point", "raw"):
        raise ValueError(f"view_space={view_space!r} must be 'point' or 'raw'")
    rng = np.random.default_rng(seed)
    centres = speaker_scale * l2_normalize(rng.standard_normal((n_speakers, dim)))
    if utterances_per_speaker is None:
        weights = rng.lognormal(0.0, 0.5, n_speakers)
        labels = rng.choice(n_speakers, size=n, p=weights / weights.sum())
    else:
        labels = np.repeat(np.arange(n_speakers), utterances_per_speaker)
        n = labels.size
    session_offsets = rng.standard_normal((n_speakers, sessions, dim)) * session_scale / dim**0.5
    if utterances_per_speaker is None:
        session = rng.integers(0, sessions, n)
    else:
        session = np.tile(np.arange(utterances_per_speaker) % sessions, n_speakers)
    noise = rng.standard_normal((n, dim), dtype=np.float32) * noise_scale / dim**0.5
    raw = centres[labels] + session_offsets[labels, session] + noise
    x = l2_normalize(raw)
    base = x if view_space == "point" else raw
    views = np.empty((n, n_views, dim), dtype=np.float32)
    for v in range(n_views):
        perturbation = rng.standard_normal((n, dim), dtype=np.float32) * view_scale / dim**0.5
        views[:, v] = l2_normalize(base + perturbation)
    return x, views, labels


def time_kmeans(x, k, niter, seed):
    """Seconds for faiss and scikit-learn Lloyd k-means (random start, fixed iterations)."""
    start = time.perf_counter()
    KMeansClusterer(k, seed=seed, niter=niter, spherical=False).fit(x)
    faiss_s = time.perf_counter() - start
    start = time.perf_counter()
    SklearnKMeans(
        k, init="random", n_init=1, max_iter=niter, tol=0.0, algorithm="lloyd", random_state=seed
    ).fit(x)
    sklearn_s = time.perf_counter() - start
    return faiss_s, sklearn_s


def metrics_at_scale(n=1_000_000, k=10_000, dim=192, seed=0):
    """Time and peak traced memory of the metrics suite at n points, k clusters."""
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    pred = np.where(rng.random(n) < 0.7, true, rng.integers(0, k, n))
    embeddings = rng.standard_normal((n, dim), dtype=np.float32)
    rows = []
    for name, kwargs in (
        ("external (true and predicted labels)", {"true": true}),
        ("internal (embeddings; silhouette on 10k)", {"embeddings": embeddings}),
    ):
        tracemalloc.start()
        start = time.perf_counter()
        clustering_metrics(pred, **kwargs)
        seconds = time.perf_counter() - start
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append((name, seconds, peak))
    return rows


METHOD_NAMES = {
    "imsat": "IMSAT",
    "camsat": "CAMSAT",
    "supcon": "CAMSAT + SupCon",
    "mixup": "CAMSAT + Mixup",
    "infonce": "CAMSAT + InfoNCE",
    "kmeans": "k-means",
    "gmm": "GMM",
    "ahc": "AHC",
}


def main():
    """Print the tables the command line asks for."""
    args = _parse_args()
    logging.basicConfig(level=logging.WARNING)
    print("Settings:", json.dumps(vars(args)))
    if not args.skip_methods:
        _compare_methods(args)
    if args.metrics_scale:
        _print_metrics_at_scale(args)


def _parse_args():
    """Read the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=50000)
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--clusters", type=int, default=500, help="true number of speakers")
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument("--view-scale", type=float, default=0.6)
    parser.add_argument(
        "--start-factor",
        type=float,
        default=2.0,
        help="deep methods start with this × the true count",
    )
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--hidden", default="1200,1200")
    parser.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--augmentation-weight", type=float, default=1.0)
    parser.add_argument("--symmetry-weight", type=float, default=1.0)
    parser.add_argument("--mu", type=float, default=2.0)
    parser.add_argument(
        "--views-per-step", type=int, default=2, help="views of each point per step (0: all)"
    )
    parser.add_argument("--niter", type=int, default=20, help="k-means iterations")
    parser.add_argument("--gmm-iter", type=int, default=30)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--methods", default="kmeans,gmm,ahc,imsat,camsat,supcon,mixup,infonce")
    parser.add_argument("--skip-methods", action="store_true")
    parser.add_argument(
        "--metrics-scale",
        action="store_true",
        help="also time the metrics on 1M points x 10k clusters",
    )
    parser.add_argument(
        "--out", default="results/bench_clustering", help="folder for histories and curves"
    )
    return parser.parse_args()


def _compare_methods(args):
    """Time k-means, fit every method of ``--methods`` and print both tables."""
    x, views, labels = make_embeddings(
        args.n,
        args.dim,
        args.clusters,
        args.views,
        view_scale=args.view_scale,
        seed=args.seed,
    )
    _print_kmeans_times(x, args)
    rows, histories = _fit_methods(x, views, labels, args)
    if histories:
        plot_history(
            histories,
            pathlib.Path(args.out) / "curves.png",
            title=f"{args.n} x {args.dim}, {args.clusters} speakers",
        )
    _print_clustering_table(rows, args)


def _print_kmeans_times(x, args):
    """Print the wall time of faiss and scikit-learn k-means on the same data."""
    k = args.clusters
    faiss_s, sklearn_s = time_kmeans(x, k, args.niter, args.seed)
    print(f"\n## k-means wall time, {args.n} x {args.dim}, k={k}, {args.niter} iterations\n")
    print("| faiss (s) | scikit-learn (s) | scikit-learn / faiss |")
    print("|---:|---:|---:|")
    print(f"| {faiss_s:.2f} | {sklearn_s:.2f} | {sklearn_s / faiss_s:.1f}x |")


def _deep_methods(args, k_start):
    """Return the builders of the deep methods, by key, starting from ``k_start`` clusters."""
    camsat_weights = {
        "augmentation": args.augmentation_weight,
        "symmetry": args.symmetry_weight,
        "mu": args.mu,
    }
    return {
        "imsat": lambda: IMSAT(k_start, weights=LossWeights.imsat(mu=args.mu)),
        "camsat": lambda: CAMSAT(k_start, weights=LossWeights(**camsat_weights)),
        "supcon": lambda: CAMSAT(k_start, weights=LossWeights(supcon=1.0, **camsat_weights)),
        "mixup": lambda: CAMSAT(k_start, weights=LossWeights(mixup=1.0, **camsat_weights)),
        "infonce": lambda: CAMSAT(k_start, weights=LossWeights(infonce=1.0, **camsat_weights)),
    }


def _shallow_methods(args, k):
    """Return the builders of the classical clusterers, by key, for ``k`` clusters."""
    return {
        "kmeans": lambda: KMeansClusterer(k, seed=args.seed, niter=args.niter),
        "gmm": lambda: GMMClusterer(k, seed=args.seed, max_iter=args.gmm_iter),
        "ahc": lambda: AHCClusterer(k, seed=args.seed),
    }


def _fit_methods(x, views, labels, args):
    """Fit every method of ``--methods``; return the table rows and the training histories."""
    k = args.clusters
    k_start = int(round(args.start_factor * k))
    hidden = tuple(int(h) for h in args.hidden.split(",") if h)
    deep, shallow = _deep_methods(args, k_start), _shallow_methods(args, k)
    out = pathlib.Path(args.out)
    rows, histories = [], {}
    for key in args.methods.split(","):
        is_deep = key in deep
        model = _trained_as_asked(deep[key](), hidden, args) if is_deep else shallow[key]()
        start = time.perf_counter()
        result = model.fit(x, views=views, true_labels=labels if is_deep else None)
        seconds = time.perf_counter() - start
        m = clustering_metrics(result.labels, labels)
        per_epoch = np.mean([r["seconds"] for r in result.history]) if result.history else None
        start_k = k_start if is_deep else k
        name = METHOD_NAMES[key]
        rows.append((name, start_k, result.n_clusters, m, seconds, per_epoch))
        if result.history:
            histories[name] = result.history
            save_history(result.history, out / f"history_{key}.json")
        print(
            f"done {name}: {result.n_clusters} clusters, NMI {m['nmi']:.3f}, {seconds:.0f} s",
            flush=True,
        )
    return rows, histories


def _trained_as_asked(model, hidden, args):
    """Set a deep model's hidden sizes, epochs, seed and batch size from the command line."""
    model.hidden_sizes, model.epochs, model.seed = hidden, args.epochs, args.seed
    model.batch_size, model.progress = args.batch_size, False
    model.views_per_step = args.views_per_step or None
    return model


def _print_clustering_table(rows, args):
    """Print NMI, ACC, AMI, ARI, cluster counts and times of every method."""
    print(
        f"\n## Clustering, {args.n} x {args.dim}, {args.clusters} true clusters, "
        f"{args.views} views, {args.epochs} epochs of the deep methods\n"
    )
    print("| method | K start | clusters found | NMI | ACC | AMI | ARI | total s | s/epoch |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name, start_k, found, m, seconds, per_epoch in rows:
        epoch_cell = f"{per_epoch:.1f}" if per_epoch is not None else "-"
        print(
            f"| {name} | {start_k} | {found} | {m['nmi']:.3f} | {m['acc']:.3f} | "
            f"{m['ami']:.3f} | {m['ari']:.3f} | {seconds:.0f} | {epoch_cell} |"
        )


def _print_metrics_at_scale(args):
    """Print the time and memory of the metrics suite on a million points."""
    print("\n## Metrics suite, 1,000,000 points x 10,000 clusters\n")
    print("| metrics | seconds | peak traced memory (MiB) |")
    print("|---|---:|---:|")
    for name, seconds, peak in metrics_at_scale(dim=args.dim, seed=args.seed):
        print(f"| {name} | {seconds:.1f} | {peak:.0f} |")
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nProcess peak RSS: {rss:.0f} MiB (includes the 1M x {args.dim} float32 embeddings)")


if __name__ == "__main__":
    main()
