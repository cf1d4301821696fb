"""Clustering at the paper's scale: faiss k-means, a CAMSAT epoch and the recipe's cluster stage.

For each size N of ``--points`` (default 100,000 and 1,090,000 points, about VoxCeleb2
dev's 1,092,009 utterances) with K = ``--clusters`` (default 10,000, the paper's
starting count), three fresh child processes, one after the other, so that each peak
RSS (``ru_maxrss`` of a fresh interpreter) belongs to one phase of one size:

1. **data**: synthetic speaker-like embeddings from ``make_embeddings`` of
   ``bench/clustering.py`` (speaker centres on the unit sphere, sessions as shared
   offsets, per-utterance noise, V perturbed views; N / 182 speakers by default, about
   VoxCeleb2's 5,994 at 1.09 M), written as the recipe's extract stage lays them out:
   ``round1/embeddings/train/{embeddings.npy, views.npy, ids.txt}`` and
   ``save/data/train_utts.csv`` (columns ID, spk_id).
2. **k-means**: ``KMeansClusterer`` (faiss, spherical, ``--niter`` Lloyd iterations,
   as ``hparams/clustering/kmeans.yaml`` but at K clusters) on the loaded embeddings;
   wall time of ``fit``, peak RSS, and NMI / ACC / purity from ``clustering_metrics``.
3. **cluster stage**: the recipe's own ``Chain.cluster`` (``recipes/VoxCeleb/CAMSAT/
   train.py``), built with a minimal hyperparameter dict whose only system is
   ``camsat``, its clusterer made from ``hparams/clustering/camsat.yaml`` exactly as the
   recipe includes it (overridden: K, ``--epochs``, ``--hidden``, ``--batch-size``,
   the seed). The stage reads the folder, normalises the embeddings and the views,
   fits CAMSAT (VAT neighbours found with faiss), writes ``pseudo_labels.csv``,
   ``clustering_metrics.json`` and ``history.json``. The clusterer is wrapped so that
   the time and peak memory of its ``fit`` are recorded inside the stage; nothing else
   of the stage is replaced. The CAMSAT metrics are the ones the stage wrote, and
   ``pseudo_labels.csv`` is checked to hold N rows.

Columns: k-means seconds (``fit``: training, then the assignment of every point) and
peak RSS; CAMSAT seconds per epoch (the mean of the history's ``seconds``: the
mini-batches, the prediction of every point and, as in the recipe, the metrics against
the true labels), the whole ``fit`` (plus the neighbour search and the final
prediction), its peak RSS (the stage's process at the end of ``fit``, so including the
stage's own copies of the inputs) and, with ``--device cuda``,
``torch.cuda.max_memory_allocated`` during ``fit``; the stage's seconds (``Chain.cluster``
from reading the folder to the written files, ``fit`` included). Times are wall seconds;
the JSON also holds the CPU seconds (``time.process_time``, all threads) of k-means'
``fit``, CAMSAT's ``fit`` and the stage, which tell a slow machine from a busy one.

Memory: the views are N × V × D float32, 3.3 GB at 1.09 M × 4 × 192, and the stage holds
the raw views, their normalised copy and CAMSAT's own normalised copy at once (about
10 GB, more during the normalisations); the data child peaks near 8 GB while the
generator works in float64. Fine on a 24 GiB machine, one size at a time. CAMSAT's
``fit`` labels the points chunk by chunk and keeps the N × K probabilities only below
50 M entries (1.09 M × 10,000 would be 44 GB); the memory estimate below still skips a
size that would not fit rather than start it.

Time budget: before running a size, the bench estimates its seconds from the last size
it measured (the work inside the children linear in N, k-means per iteration and a
CAMSAT epoch alike; the children's start-up constant) and, when the estimate exceeds
``--time-budget`` (or what is left of ``--total-budget``), prints a row "skipped:
estimated X s > budget Y s" instead of running it. Peak memory is estimated the same
way (each phase's RSS above its post-import baseline, linear in N) and a size whose
estimate exceeds ``--memory-limit`` (default: the machine's available memory when the
size starts) is skipped too. The first size has no predecessor: unless ``--probe 0``, a
probe size (max(2K, smallest size / 10) points; at N = K faiss k-means would just copy
the points) is measured first and reported as its own row. The linear estimate is low
for the neighbour search, which is exact (quadratic) up to 100,000 points and an
inverted file above. The last lines state the size the budget reaches at the measured
rate.

``--device cuda`` runs the same phases with faiss on the GPU when faiss-gpu sees one
(k-means, and the VAT neighbour search inside CAMSAT) and CAMSAT on the GPU. Its defaults
(1 epoch, 20 k-means iterations, 420 s per size, 450 s in all) keep
``python bench/scale.py --device cuda --points 100000 1090000`` within 8 minutes on one
GPU: a size estimated not to fit is skipped and reported instead of started (a size that
has started is not interrupted, so the guarantee is as good as the linear estimate).

Usage::

    python bench/scale.py                                  # 100k and 1.09M points, K = 10,000
    python bench/scale.py --device cuda --points 100000 1090000
    python bench/scale.py --points 20000 --clusters 2000 --probe 0 --json scale.json
"""

import argparse
import importlib.util
import json
import math
import os
import pathlib
import shutil
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
REPO = BENCH.parent
RECIPE_SCRIPT = REPO / "recipes" / "VoxCeleb" / "CAMSAT" / "train.py"
CAMSAT_HPARAMS = REPO / "hparams" / "clustering" / "camsat.yaml"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from asnorm import in_fresh_process, peak_rss_mib  # noqa: E402

#: Utterances per speaker of the default speaker count (VoxCeleb2 dev: 1,092,009 / 5,994).
UTTERANCES_PER_SPEAKER = 182
#: The system the stage runs (its folder under ``round1/systems``).
SYSTEM = "camsat"
#: Row keys, in table order.
COLUMNS = (
    "points",
    "clusters",
    "speakers",
    "status",
    "data_s",
    "kmeans_s",
    "kmeans_iterations",
    "kmeans_gpu",
    "kmeans_peak_rss_mib",
    "kmeans_nmi",
    "kmeans_acc",
    "kmeans_purity",
    "camsat_epoch_s",
    "camsat_fit_s",
    "camsat_peak_rss_mib",
    "camsat_cuda_max_mib",
    "camsat_clusters",
    "camsat_nmi",
    "camsat_acc",
    "camsat_purity",
    "stage_s",
    "pseudo_label_rows",
    "work_s",
    "size_s",
    "estimate_s",
)
#: Markdown header of each column shown in the table (``work_s`` and ``size_s`` are JSON only).
HEADERS = {
    "points": "points",
    "clusters": "K",
    "speakers": "speakers",
    "data_s": "data s",
    "kmeans_s": "k-means s",
    "kmeans_peak_rss_mib": "k-means peak RSS MiB",
    "kmeans_nmi": "k-means NMI / ACC / purity",
    "camsat_epoch_s": "CAMSAT s/epoch",
    "camsat_fit_s": "CAMSAT fit s",
    "camsat_peak_rss_mib": "CAMSAT peak RSS MiB",
    "camsat_cuda_max_mib": "CAMSAT CUDA max alloc MiB",
    "camsat_clusters": "CAMSAT clusters",
    "camsat_nmi": "CAMSAT NMI / ACC / purity",
    "stage_s": "stage s",
    "pseudo_label_rows": "pseudo_labels.csv rows",
    "status": "status",
}


def default_speakers(n_points):
    """Speaker count of a size: one speaker per 182 points (5,994 at 1.09 M), at least 2.

    Arguments
    ---------
    n_points : int
        Number of points.

    Returns
    -------
    int
        The number of synthetic speakers.

    Example
    -------
    >>> default_speakers(1_090_000), default_speakers(100)
    (5989, 2)
    """
    return max(2, round(n_points / UTTERANCES_PER_SPEAKER))


def probe_size(points, n_clusters):
    """Points of the probe that times the first size: max(2K, smallest size / 10).

    Arguments
    ---------
    points : sequence of int
        The sizes asked for.
    n_clusters : int
        K (CAMSAT and k-means need at least K points, k-means more to iterate).

    Returns
    -------
    int
        The probe size, 0 when it would not be smaller than the smallest size.

    Example
    -------
    >>> probe_size([100_000, 1_090_000], 10_000), probe_size([15_000], 10_000)
    (20000, 0)
    """
    probe = max(2 * n_clusters, min(points) // 10)
    return probe if probe < min(points) else 0


def estimate_seconds(row, n_points):
    """Seconds a size should take, from a measured row: its work scaled by N, start-up kept.

    Arguments
    ---------
    row : dict
        A measured row (``points``, ``work_s``: seconds of work inside the children,
        ``size_s``: wall seconds of the whole size).
    n_points : int
        The size to estimate.

    Returns
    -------
    float
        ``(size_s - work_s) + work_s * n_points / points``.

    Example
    -------
    >>> estimate_seconds({"points": 1000, "work_s": 10.0, "size_s": 12.0}, 10_000)
    102.0
    """
    overhead = max(row["size_s"] - row["work_s"], 0.0)
    return overhead + row["work_s"] * n_points / row["points"]


def reachable_points(row, budget_s):
    """Largest size a budget reaches at the rate of a measured row (the linear estimate).

    Arguments
    ---------
    row : dict
        A measured row (see :func:`estimate_seconds`).
    budget_s : float
        Seconds available for one size.

    Returns
    -------
    int
        Points N with ``estimate_seconds(row, N) <= budget_s`` (0 when none).

    Example
    -------
    >>> reachable_points({"points": 1000, "work_s": 10.0, "size_s": 12.0}, 102.0)
    10000
    """
    overhead = max(row["size_s"] - row["work_s"], 0.0)
    rate = row["work_s"] / row["points"]
    return max(0, math.floor((budget_s - overhead) / rate + 1e-9)) if rate > 0 else 0


#: (baseline, peak) RSS keys of each phase of a row, for the memory estimate.
PHASE_RSS = (
    ("data_imports_rss_mib", "data_peak_rss_mib"),
    ("kmeans_imports_rss_mib", "kmeans_peak_rss_mib"),
    ("stage_imports_rss_mib", "stage_peak_rss_mib"),
)


def estimate_peak_mib(row, n_points):
    """Peak RSS a size should reach: each phase's RSS above its baseline scaled by N.

    Arguments
    ---------
    row : dict
        A measured row, with the ``*_imports_rss_mib`` and ``*_peak_rss_mib`` of its phases.
    n_points : int
        The size to estimate.

    Returns
    -------
    float
        The largest phase estimate, ``baseline + (peak - baseline) * n_points / points``.

    Example
    -------
    >>> row = {"points": 1000, "data_imports_rss_mib": 100.0, "data_peak_rss_mib": 150.0,
    ...        "kmeans_imports_rss_mib": 100.0, "kmeans_peak_rss_mib": 120.0,
    ...        "stage_imports_rss_mib": 300.0, "stage_peak_rss_mib": 400.0}
    >>> estimate_peak_mib(row, 10_000)
    1300.0
    """
    return max(
        row[base] + (row[peak] - row[base]) * n_points / row["points"]
        for base, peak in PHASE_RSS
        if base in row and peak in row
    )


def available_memory_mib():
    """Memory available to a new process now (``MemAvailable``), in MiB.

    Returns
    -------
    float
        MemAvailable from ``/proc/meminfo``; the physical memory where that file is
        missing; infinity when neither can be read.

    Example
    -------
    >>> available_memory_mib() > 0
    True
    """
    try:
        with open("/proc/meminfo") as stream:
            for line in stream:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20
    except (ValueError, OSError, AttributeError):
        return math.inf


def layout(folder):
    """Paths of the recipe's layout inside a size's folder.

    Arguments
    ---------
    folder : str or pathlib.Path
        The size's folder (the stage's ``output_folder``).

    Returns
    -------
    dict
        ``embeddings`` (the extract stage's ``round1/embeddings/train`` folder),
        ``manifest`` (``save/data/train_utts.csv``), ``labels`` (the true labels as
        ``labels.npy``, for k-means) and ``system`` (the folder the stage writes).

    Example
    -------
    >>> sorted(layout("/tmp/x"))
    ['embeddings', 'labels', 'manifest', 'system']
    """
    folder = pathlib.Path(folder)
    return {
        "embeddings": folder / "round1" / "embeddings" / "train",
        "manifest": folder / "save" / "data" / "train_utts.csv",
        "labels": folder / "labels.npy",
        "system": folder / "round1" / "systems" / SYSTEM,
    }


def make_data(settings, n_points, folder):
    """Generate a size's embeddings and views and write them as the extract stage does.

    Arguments
    ---------
    settings : dict
        The bench's options (``dim``, ``views``, ``speakers``, ``seed``).
    n_points : int
        Number of points N.
    folder : str or pathlib.Path
        The size's folder.

    Returns
    -------
    dict
        ``data_s`` (generation and writing), ``data_imports_rss_mib`` (after the
        imports), ``data_peak_rss_mib``, ``speakers`` and ``work_s``.

    Example
    -------
    >>> settings = {"dim": 8, "views": 2, "speakers": None, "seed": 0}
    >>> out = make_data(settings, 50, getfixture("tmp_path"))
    >>> out["speakers"], (getfixture("tmp_path") / "labels.npy").is_file()
    (2, True)
    """
    import numpy as np
    from clustering import make_embeddings

    from camsat_lobes.extract import EMBEDDINGS_FILE, IDS_FILE, VIEWS_FILE

    imports_rss = peak_rss_mib()
    start = time.perf_counter()
    speakers = settings["speakers"] or default_speakers(n_points)
    x, views, labels = make_embeddings(
        n_points, settings["dim"], speakers, settings["views"], seed=settings["seed"]
    )
    paths = layout(folder)
    paths["embeddings"].mkdir(parents=True, exist_ok=True)
    paths["manifest"].parent.mkdir(parents=True, exist_ok=True)
    np.save(paths["embeddings"] / EMBEDDINGS_FILE, x)
    np.save(paths["embeddings"] / VIEWS_FILE, views)
    np.save(paths["labels"], labels)
    ids = [f"utt{i:07d}" for i in range(n_points)]
    (paths["embeddings"] / IDS_FILE).write_text("".join(f"{utt}\n" for utt in ids))
    paths["manifest"].write_text(
        "ID,spk_id\n"
        + "".join(f"{utt},spk{label:05d}\n" for utt, label in zip(ids, labels.tolist()))
    )
    seconds = time.perf_counter() - start
    return {
        "data_s": seconds,
        "data_imports_rss_mib": imports_rss,
        "data_peak_rss_mib": peak_rss_mib(),
        "speakers": speakers,
        "work_s": seconds,
    }


def time_kmeans(settings, folder):
    """Fit faiss k-means on a size's embeddings; time, peak RSS and metrics.

    Arguments
    ---------
    settings : dict
        The bench's options (``clusters``, ``niter``, ``seed``, ``device``).
    folder : str or pathlib.Path
        A folder written by :func:`make_data`.

    Returns
    -------
    dict
        ``kmeans_s`` (``fit``), ``kmeans_cpu_s`` (its CPU seconds), ``kmeans_iterations``,
        ``kmeans_gpu``,
        ``kmeans_imports_rss_mib`` (after the imports), ``kmeans_inputs_rss_mib`` (after
        loading), ``kmeans_peak_rss_mib`` (after ``fit``),
        ``kmeans_nmi`` / ``kmeans_acc`` / ``kmeans_purity``, ``kmeans_metrics_s`` and
        ``work_s``.

    Example
    -------
    >>> settings = {"dim": 8, "views": 2, "speakers": 3, "seed": 0}
    >>> _ = make_data(settings, 60, getfixture("tmp_path"))
    >>> settings.update(clusters=3, niter=5, device="cpu")
    >>> out = time_kmeans(settings, getfixture("tmp_path"))
    >>> out["kmeans_iterations"], 0 <= out["kmeans_nmi"] <= 1
    (5, True)
    """
    import numpy as np

    from camsat_lobes.clustering import KMeansClusterer, clustering_metrics
    from camsat_lobes.clustering.geometry import faiss_gpu_available
    from camsat_lobes.extract import EMBEDDINGS_FILE

    imports_rss = peak_rss_mib()
    start = time.perf_counter()
    paths = layout(folder)
    x = np.load(paths["embeddings"] / EMBEDDINGS_FILE)
    labels = np.load(paths["labels"])
    inputs_rss = peak_rss_mib()
    use_gpu = settings["device"] == "cuda" and faiss_gpu_available()
    clusterer = KMeansClusterer(
        settings["clusters"],
        seed=settings["seed"],
        niter=settings["niter"],
        spherical=True,
        max_points_per_centroid=256,
        use_gpu=use_gpu,
    )
    fit_start, fit_cpu = time.perf_counter(), time.process_time()
    result = clusterer.fit(x)
    fit_s, fit_cpu = time.perf_counter() - fit_start, time.process_time() - fit_cpu
    peak = peak_rss_mib()
    metrics_start = time.perf_counter()
    metrics = clustering_metrics(result.labels, labels)
    return {
        "kmeans_s": fit_s,
        "kmeans_cpu_s": fit_cpu,
        "kmeans_iterations": settings["niter"],
        "kmeans_gpu": bool(use_gpu),
        "kmeans_imports_rss_mib": imports_rss,
        "kmeans_inputs_rss_mib": inputs_rss,
        "kmeans_peak_rss_mib": peak,
        "kmeans_nmi": metrics["nmi"],
        "kmeans_acc": metrics["acc"],
        "kmeans_purity": metrics["purity"],
        "kmeans_metrics_s": time.perf_counter() - metrics_start,
        "work_s": time.perf_counter() - start,
    }


class RecordedClusterer:
    """A clusterer whose ``fit`` records its wall time and peak memory; it changes nothing else.

    Arguments
    ---------
    clusterer : object
        Any clusterer with ``n_clusters`` and ``fit(embeddings, views, true_labels)``.
    device : str
        ``"cuda"`` also records ``torch.cuda.max_memory_allocated`` during ``fit``.

    Example
    -------
    >>> import numpy as np
    >>> from camsat_lobes.clustering import KMeansClusterer
    >>> recorded = RecordedClusterer(KMeansClusterer(2))
    >>> x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    >>> recorded.fit(x).labels.shape, recorded.n_clusters, sorted(recorded.record)[:2]
    ((20,), 2, ['cpu_s', 'cuda_max_mib'])
    """

    def __init__(self, clusterer, device="cpu"):
        self.clusterer = clusterer
        self.device = device
        self.record = {}
        self.result = None

    @property
    def n_clusters(self):
        """K of the wrapped clusterer (the stage records it as ``k_initial``)."""
        return self.clusterer.n_clusters

    def fit(self, embeddings, views=None, true_labels=None):
        """Fit the wrapped clusterer and record the seconds and peak memory of the call.

        Arguments
        ---------
        embeddings : array_like
            N×D embeddings.
        views : array_like, optional
            N×V×D views.
        true_labels : array_like, optional
            True labels (the recipe passes them for the per-epoch history).

        Returns
        -------
        ClusteringResult
            The wrapped clusterer's result.
        """
        cuda = self.device == "cuda"
        if cuda:
            import torch

            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        rss_before = peak_rss_mib()
        start, cpu = time.perf_counter(), time.process_time()
        self.result = self.clusterer.fit(embeddings, views=views, true_labels=true_labels)
        if cuda:
            torch.cuda.synchronize()
        self.record = {
            "fit_s": time.perf_counter() - start,
            "cpu_s": time.process_time() - cpu,
            "rss_before_mib": rss_before,
            "peak_rss_mib": peak_rss_mib(),
            "cuda_max_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        }
        return self.result


def load_recipe():
    """Import the recipe script (``recipes/VoxCeleb/CAMSAT/train.py``) as a module.

    Returns
    -------
    module
        The recipe, with its ``Chain``.

    Example
    -------
    >>> hasattr(load_recipe().Chain, "cluster")
    True
    """
    spec = importlib.util.spec_from_file_location("camsat_recipe_train", RECIPE_SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def camsat_clusterer(settings):
    """CAMSAT made from ``hparams/clustering/camsat.yaml``, as the recipe includes it.

    Arguments
    ---------
    settings : dict
        The bench's options (``clusters``, ``epochs``, ``hidden``, ``batch_size``,
        ``seed``, ``device``).

    Returns
    -------
    CAMSAT
        The clusterer, on ``settings["device"]``, without a progress bar.

    Example
    -------
    >>> settings = {"clusters": 7, "epochs": 1, "hidden": "16,16", "batch_size": 50,
    ...             "seed": 0, "device": "cpu"}
    >>> model = camsat_clusterer(settings)
    >>> model.n_clusters, model.hidden_sizes, model.weights.augmentation
    (7, (16, 16), 1.0)
    """
    from hyperpyyaml import load_hyperpyyaml

    overrides = {
        "n_clusters": settings["clusters"],
        "seed": settings["seed"],
        "epochs": settings["epochs"],
        "hidden_sizes": [int(h) for h in str(settings["hidden"]).split(",") if h],
        "batch_size": settings["batch_size"],
    }
    with open(CAMSAT_HPARAMS) as stream:
        clusterer = load_hyperpyyaml(stream, overrides)["clusterer"]
    clusterer.device = settings["device"]
    clusterer.progress = False
    return clusterer


def time_cluster_stage(settings, folder):
    """Run the recipe's cluster stage (``Chain.cluster``) on a size's folder with CAMSAT.

    Arguments
    ---------
    settings : dict
        The bench's options (see :func:`camsat_clusterer`; ``speakers`` too).
    folder : str or pathlib.Path
        A folder written by :func:`make_data`; the stage writes into it.

    Returns
    -------
    dict
        ``stage_s``, ``stage_cpu_s``, ``camsat_fit_s``, ``camsat_fit_cpu_s``,
        ``camsat_epoch_s``, ``camsat_rss_before_mib``,
        ``camsat_peak_rss_mib``, ``camsat_cuda_max_mib``, ``camsat_clusters``,
        ``camsat_nmi`` / ``camsat_acc`` / ``camsat_purity``, ``stage_imports_rss_mib``,
        ``stage_peak_rss_mib`` (end of the stage), ``pseudo_label_rows`` and ``work_s``.

    Raises
    ------
    RuntimeError
        When ``pseudo_labels.csv`` does not hold one row per point.

    Example
    -------
    >>> settings = {"dim": 8, "views": 2, "speakers": 3, "seed": 0}
    >>> _ = make_data(settings, 60, getfixture("tmp_path"))
    >>> settings.update(clusters=6, epochs=1, hidden="16", batch_size=20, device="cpu")
    >>> out = time_cluster_stage(settings, getfixture("tmp_path"))
    >>> out["pseudo_label_rows"], out["camsat_epoch_s"] > 0
    (60, True)
    """
    import numpy as np

    recipe = load_recipe()
    if settings["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda but torch sees no GPU")
    imports_rss = peak_rss_mib()
    start = time.perf_counter()
    folder = pathlib.Path(folder)
    clusterer = RecordedClusterer(camsat_clusterer(settings), settings["device"])
    n_points = int(np.load(layout(folder)["labels"], mmap_mode="r").shape[0])
    hparams = {
        "output_folder": str(folder),
        "save_folder": str(folder / "save"),
        "seed": settings["seed"],
        "systems": {SYSTEM: {"clusterer": clusterer}},
        "true_labels_reference": False,
        "embedding_norm": "l2",
        "n_speakers": settings["speakers"] or default_speakers(n_points),
        "min_cluster_fraction": 0.1,
    }
    chain = recipe.Chain(hparams, run_opts={})
    stage_start, stage_cpu = time.perf_counter(), time.process_time()
    chain.cluster(1)
    stage_s, stage_cpu = time.perf_counter() - stage_start, time.process_time() - stage_cpu
    system = layout(folder)["system"]
    with open(system / "pseudo_labels.csv") as stream:
        rows = sum(1 for _ in stream) - 1
    if rows != n_points:
        raise RuntimeError(f"pseudo_labels.csv holds {rows} rows for {n_points} points")
    metrics = json.loads((system / "clustering_metrics.json").read_text())
    history = clusterer.result.history
    return {
        "stage_s": stage_s,
        "stage_cpu_s": stage_cpu,
        "camsat_fit_s": clusterer.record["fit_s"],
        "camsat_fit_cpu_s": clusterer.record["cpu_s"],
        "camsat_epoch_s": float(np.mean([epoch["seconds"] for epoch in history])),
        "camsat_rss_before_mib": clusterer.record["rss_before_mib"],
        "camsat_peak_rss_mib": clusterer.record["peak_rss_mib"],
        "camsat_cuda_max_mib": clusterer.record["cuda_max_mib"],
        "camsat_clusters": metrics["n_clusters"],
        "camsat_nmi": metrics["nmi"],
        "camsat_acc": metrics["acc"],
        "camsat_purity": metrics["purity"],
        "stage_imports_rss_mib": imports_rss,
        "stage_peak_rss_mib": peak_rss_mib(),
        "pseudo_label_rows": rows,
        "pseudo_labels": str(system / "pseudo_labels.csv"),
        "work_s": time.perf_counter() - start,
    }


def measure_size(settings, n_points, folder, fresh=True, verbose=True):
    """Measure one size: data, k-means and the cluster stage, each in a fresh process.

    Arguments
    ---------
    settings : dict
        The bench's options.
    n_points : int
        Number of points N.
    folder : str or pathlib.Path
        Empty folder for the size's files.
    fresh : bool
        One fresh process per phase (peak RSS per phase); False runs the phases in
        this process (quick, but the RSS columns are then this process's running peak).
    verbose : bool
        Print a line when a phase is done.

    Returns
    -------
    dict
        A row: every key of :data:`COLUMNS` that applies, plus the phases' extras.

    Example
    -------
    >>> settings = {"dim": 8, "views": 2, "speakers": 3, "seed": 0, "clusters": 4,
    ...             "niter": 5, "device": "cpu", "epochs": 1, "hidden": "16",
    ...             "batch_size": 20}
    >>> row = measure_size(settings, 60, getfixture("tmp_path"), fresh=False, verbose=False)
    >>> row["status"], row["pseudo_label_rows"]
    ('measured', 60)
    """
    run = in_fresh_process if fresh else (lambda function, *args: function(*args))
    row = {"points": n_points, "clusters": settings["clusters"], "status": "measured"}
    start = time.perf_counter()
    work = 0.0
    for name, function, args in (
        ("data", make_data, (settings, n_points, str(folder))),
        ("k-means", time_kmeans, (settings, str(folder))),
        ("cluster stage", time_cluster_stage, (settings, str(folder))),
    ):
        try:
            out = run(function, *args)
        except Exception as error:  # reported in the row, never dropped
            row["status"] = f"failed in {name}: {type(error).__name__}: {error}"
            break
        work += out.pop("work_s")
        row.update(out)
        if verbose:
            elapsed = time.perf_counter() - start
            print(f"  {n_points:,} points: {name} done ({elapsed:.0f} s)", flush=True)
    row["work_s"] = work
    row["size_s"] = time.perf_counter() - start
    return row


def run_sizes(settings, fresh=True, verbose=True):
    """Measure the probe and every size of ``settings["points"]``, skipping those over budget.

    Arguments
    ---------
    settings : dict
        The bench's options (``points``, ``probe``, ``time_budget``, ``total_budget``,
        ``memory_limit`` (GiB, None: the available memory), ``workdir``, ``keep`` and
        the phases' options).
    fresh : bool
        See :func:`measure_size`.
    verbose : bool
        Print a line per size and per phase as they finish.

    Returns
    -------
    list of dict
        One row per size, in order (the probe first when there is one); a skipped size
        has status ``"skipped: estimated X s > budget Y s"`` (or names the memory estimate).

    Example
    -------
    >>> settings = {"dim": 8, "views": 2, "speakers": 3, "seed": 0, "clusters": 4,
    ...             "niter": 5, "device": "cpu", "epochs": 1, "hidden": "16",
    ...             "batch_size": 20, "points": [60, 10**6], "probe": 0,
    ...             "time_budget": 1e-3, "total_budget": None, "memory_limit": None,
    ...             "workdir": str(getfixture("tmp_path")), "keep": False}
    >>> [row["status"][:8] for row in run_sizes(settings, fresh=False, verbose=False)]
    ['measured', 'skipped:']
    """
    workdir = pathlib.Path(settings["workdir"])
    sizes = [(n, False) for n in settings["points"]]
    if settings["probe"]:
        sizes.insert(0, (settings["probe"], True))
    started = time.perf_counter()
    rows, last = [], None
    for n_points, is_probe in sizes:
        budget = settings["time_budget"]
        if settings["total_budget"] is not None:
            budget = min(budget, settings["total_budget"] - (time.perf_counter() - started))
        estimate = None if last is None else estimate_seconds(last, n_points)
        peak = None if last is None else estimate_peak_mib(last, n_points)
        memory = settings["memory_limit"]
        memory = available_memory_mib() if memory is None else memory * 1024
        reasons = []
        if estimate is not None and estimate > budget:
            reasons.append(f"estimated {estimate:.0f} s > budget {budget:.0f} s")
        if peak is not None and peak > memory:
            reasons.append(f"estimated peak RSS {peak:,.0f} MiB > {memory:,.0f} MiB available")
        if reasons:
            rows.append(
                {
                    "points": n_points,
                    "clusters": settings["clusters"],
                    "speakers": settings["speakers"] or default_speakers(n_points),
                    "status": "skipped: " + "; ".join(reasons),
                    "estimate_s": estimate,
                    "estimate_peak_mib": peak,
                }
            )
            if verbose:
                print(f"{n_points:,} points: {rows[-1]['status']}", flush=True)
            continue
        if verbose:
            print(f"{n_points:,} points{' (probe)' if is_probe else ''}: running", flush=True)
        folder = workdir / f"points{n_points}{'_probe' if is_probe else ''}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        row = measure_size(settings, n_points, folder, fresh=fresh, verbose=verbose)
        row["estimate_s"] = estimate
        row["estimate_peak_mib"] = peak
        if is_probe and row["status"] == "measured":
            row["status"] = "measured (probe)"
        if row["status"].startswith("measured"):
            last = row
        if not settings["keep"]:
            shutil.rmtree(folder, ignore_errors=True)
            row.pop("pseudo_labels", None)
        rows.append(row)
        if verbose:
            print(f"{n_points:,} points: {row['status']} in {row['size_s']:.0f} s", flush=True)
    return rows


def _number(value, digits=0):
    """Format a table cell: the number with thousands separators, ``-`` when absent."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.{digits}f}"


def _metrics_cell(row, prefix):
    """Format NMI / ACC / purity of one method, ``-`` when not measured."""
    values = [row.get(f"{prefix}_{name}") for name in ("nmi", "acc", "purity")]
    if any(v is None for v in values):
        return "-"
    return " / ".join(f"{v:.3f}" for v in values)


def markdown_table(rows):
    """Format the rows as a markdown table.

    Arguments
    ---------
    rows : list of dict
        Rows of :func:`run_sizes`.

    Returns
    -------
    str
        Header, separator and one line per row.

    Example
    -------
    >>> print(markdown_table([{"points": 10, "clusters": 2, "status": "skipped"}])[:20])
    | points | K | speak
    """
    shown = [key for key in HEADERS if key in COLUMNS]
    lines = [
        "| " + " | ".join(HEADERS[key] for key in shown) + " |",
        "|" + "|".join("---" if key == "status" else "---:" for key in shown) + "|",
    ]
    for row in rows:
        cells = []
        for key in shown:
            if key in ("kmeans_nmi", "camsat_nmi"):
                cells.append(_metrics_cell(row, key.split("_")[0]))
            elif key == "kmeans_s" and row.get("kmeans_s") is not None:
                where = "GPU" if row.get("kmeans_gpu") else "CPU"
                cells.append(f"{row['kmeans_s']:,.1f} ({row['kmeans_iterations']} it, {where})")
            elif key in ("camsat_epoch_s", "camsat_fit_s", "stage_s", "data_s"):
                cells.append(_number(row.get(key), 1))
            else:
                cells.append(_number(row.get(key)) if key != "status" else row[key])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def parse_args(argv=None):
    """Read the command line and fill the device-dependent defaults.

    Arguments
    ---------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The options.

    Example
    -------
    >>> args = parse_args(["--device", "cuda"])
    >>> args.time_budget, args.total_budget, args.probe
    (420.0, 450.0, 20000)
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, nargs="+", default=[100_000, 1_090_000])
    parser.add_argument("--clusters", type=int, default=10_000, help="K (the paper: 10,000)")
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--views", type=int, default=4)
    parser.add_argument(
        "--speakers", type=int, default=None, help="default: points / 182 (5,989 at 1.09 M)"
    )
    parser.add_argument("--epochs", type=int, default=1, help="CAMSAT epochs")
    parser.add_argument("--niter", type=int, default=20, help="k-means iterations")
    parser.add_argument("--hidden", default="1200,1200", help="CAMSAT hidden sizes")
    parser.add_argument("--batch-size", type=int, default=250, help="CAMSAT mini-batch")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--time-budget", type=float, default=None, help="seconds per size (cpu 600, cuda 420)"
    )
    parser.add_argument(
        "--total-budget",
        type=float,
        default=None,
        help="seconds for the whole run (cpu: none, cuda 450)",
    )
    parser.add_argument(
        "--probe",
        type=int,
        default=None,
        help="points of the size measured first to estimate the first size "
        "(default max(2K, smallest / 10); 0: none)",
    )
    parser.add_argument(
        "--memory-limit",
        type=float,
        default=None,
        help="GiB a size may reach (estimated); default: the available memory",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="default: a fresh temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep each size's files")
    parser.add_argument(
        "--in-process",
        action="store_true",
        help="run the phases in this process (tests; peak RSS then not per size)",
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    if args.time_budget is None:
        args.time_budget = 420.0 if args.device == "cuda" else 600.0
    if args.total_budget is None and args.device == "cuda":
        args.total_budget = 450.0
    if args.probe is None:
        args.probe = probe_size(args.points, args.clusters)
    return args


def main(argv=None):
    """Run every size, print the table and what the budget reaches; return the rows.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    list of dict
        The rows of :func:`run_sizes`.
    """
    args = parse_args(argv)
    settings = vars(args)
    temporary = None
    if settings["workdir"] is None:
        temporary = tempfile.mkdtemp(prefix="camsat_scale_")
        settings["workdir"] = temporary
    print("Settings:", json.dumps(settings), flush=True)
    start = time.perf_counter()
    try:
        rows = run_sizes(settings, fresh=not args.in_process)
    finally:
        if temporary is not None and not args.keep:
            shutil.rmtree(temporary, ignore_errors=True)
    wall = time.perf_counter() - start
    measured = [row for row in rows if row["status"].startswith("measured")]
    reach = reachable_points(measured[-1], args.time_budget) if measured else None

    print(
        f"\n## Clustering at scale, {args.dim}-d, {args.views} views, device {args.device}: "
        f"k-means {args.niter} iterations, CAMSAT {args.epochs} epoch(s), hidden "
        f"{args.hidden}, batch {args.batch_size}\n"
    )
    print(markdown_table(rows))
    print(
        "\nk-means s: KMeansClusterer.fit (faiss, spherical). CAMSAT: fit inside the "
        "recipe's cluster stage (s/epoch includes the prediction of every point and the "
        "per-epoch metrics; fit adds the VAT neighbour search); its peak RSS is the "
        "stage's process at the end of fit. stage s: Chain.cluster from reading the "
        "folder to pseudo_labels.csv, fit included. NMI / ACC / purity from "
        "clustering_metrics against the synthetic speakers."
    )
    if args.in_process:
        print("In-process run: the RSS columns are this process's running peak.")
    if measured:
        last = measured[-1]
        sizes = ", ".join(f"{row['points']:,}" for row in measured)
        print(
            f"\nWithin {args.time_budget:.0f} s per size on this machine: measured "
            f"{sizes} points; at the rate of the "
            f"{last['points']:,}-point size (linear in N) the budget reaches about "
            f"{reach:,} points."
        )
    print(f"Total wall time: {wall:.0f} s")
    if args.json:
        pathlib.Path(args.json).write_text(
            json.dumps(
                {"settings": settings, "rows": rows, "reachable_points": reach, "wall_s": wall},
                indent=2,
            )
        )
    return rows


if __name__ == "__main__":
    main()
