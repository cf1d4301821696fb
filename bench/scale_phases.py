"""The timed phases of one size of the scale bench, each in a fresh process.

:func:`measure_size` runs, one after the other and each in a newly spawned interpreter
(so that each peak RSS, ``ru_maxrss``, belongs to one phase of one size):

1. **data** (:func:`scale_data.make_data`): the synthetic embeddings, views and manifest.
2. **k-means** (:func:`time_kmeans`): ``KMeansClusterer`` (faiss, spherical, ``niter``
   Lloyd iterations, as ``hparams/clustering/kmeans.yaml`` but at K clusters) on the
   embeddings; the seconds of ``fit`` (training, then the assignment of every point),
   its peak RSS and NMI / ACC / purity. On a GPU (faiss-gpu), the device memory faiss
   uses is polled (:class:`DeviceMemoryPoller`): faiss allocates outside torch's counters.
3. **cluster stage** (:func:`time_cluster_stage`): the recipe's own cluster stage,
   ``camsat_lobes.pipeline.cluster``, called as the recipe calls it
   (``run.stage("cluster")(run, 1)``, the yaml-wired partial with the recipe's
   ``embedding_norm`` and ``min_cluster_fraction``) over a :class:`~camsat_lobes.pipeline.Run`
   of the recipe yaml (default ``recipes/VoxCeleb/CAMSAT/hparams/camsat_voxceleb2.yaml``)
   whose only system is its ``camsat`` clusterer, overridden: K (``n_clusters``),
   epochs, hidden sizes, mini-batch, the seed and the true speaker count. The stage
   reads the folder, normalises the embeddings and the views, fits CAMSAT (VAT
   neighbours found with faiss), writes ``pseudo_labels.csv``,
   ``clustering_metrics.json`` and ``history.json``. The clusterer is wrapped
   (:class:`RecordedClusterer`) so that the time and peak memory of its ``fit`` are
   recorded inside the stage; nothing else of the stage is replaced.
"""

import json
import pathlib
import time

from asnorm import in_fresh_process, peak_rss_mib
from recorders import DeviceMemoryPoller, RecordedClusterer
from scale_data import SYSTEM, default_speakers, make_data

REPO = pathlib.Path(__file__).resolve().parents[1]
#: The recipe yaml whose cluster stage and CAMSAT system the bench runs (the paper's setup).
RECIPE_HPARAMS = REPO / "recipes" / "VoxCeleb" / "CAMSAT" / "hparams" / "camsat_voxceleb2.yaml"


def time_kmeans(settings, paths):
    """Fit faiss k-means on a size's embeddings; time, peak RSS and metrics.

    Arguments
    ---------
    settings : dict
        The bench's options (``clusters``, ``niter``, ``seed``, ``device``).
    paths : dict
        The size's paths (:func:`scale_data.size_paths`), written by ``make_data``.

    Returns
    -------
    dict
        ``kmeans_s`` (``fit``), ``kmeans_cpu_s`` (its CPU seconds), ``kmeans_iterations``,
        ``kmeans_gpu``, ``kmeans_device_peak_mib`` (GPU memory faiss used, polled; None on
        the CPU), ``kmeans_imports_rss_mib`` (after the imports), ``kmeans_inputs_rss_mib``
        (after loading), ``kmeans_peak_rss_mib`` (after ``fit``), ``kmeans_nmi`` /
        ``kmeans_acc`` / ``kmeans_purity``, ``kmeans_metrics_s`` and ``work_s``.

    Example
    -------
    >>> from scale_data import size_paths
    >>> paths = size_paths(getfixture("tmp_path"))
    >>> settings = {"dim": 8, "views": 2, "speakers": 3, "seed": 0}
    >>> _ = make_data(settings, 60, paths)
    >>> settings.update(clusters=3, niter=5, device="cpu")
    >>> out = time_kmeans(settings, paths)
    >>> out["kmeans_iterations"], 0 <= out["kmeans_nmi"] <= 1, out["kmeans_device_peak_mib"]
    (5, True, None)
    """
    import contextlib

    import numpy as np

    from camsat_lobes.clustering import KMeansClusterer, clustering_metrics
    from camsat_lobes.clustering.geometry import faiss_gpu_available
    from camsat_lobes.extract import EMBEDDINGS_FILE

    use_gpu = settings["device"] == "cuda" and faiss_gpu_available()
    poller = DeviceMemoryPoller() if use_gpu else None
    if use_gpu:
        poller.used_bytes()  # the CUDA context belongs to the imports, not to the fit
    imports_rss = peak_rss_mib()
    start = time.perf_counter()
    x = np.load(pathlib.Path(paths["embeddings"]) / EMBEDDINGS_FILE)
    labels = np.load(paths["labels"])
    inputs_rss = peak_rss_mib()
    clusterer = KMeansClusterer(
        settings["clusters"],
        seed=settings["seed"],
        niter=settings["niter"],
        spherical=True,
        max_points_per_centroid=256,
        use_gpu=use_gpu,
    )
    fit_start, fit_cpu = time.perf_counter(), time.process_time()
    with poller if use_gpu else contextlib.nullcontext():
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
        "kmeans_device_peak_mib": poller.peak_mib if use_gpu else None,
        "kmeans_imports_rss_mib": imports_rss,
        "kmeans_inputs_rss_mib": inputs_rss,
        "kmeans_peak_rss_mib": peak,
        "kmeans_nmi": metrics["nmi"],
        "kmeans_acc": metrics["acc"],
        "kmeans_purity": metrics["purity"],
        "kmeans_metrics_s": time.perf_counter() - metrics_start,
        "work_s": time.perf_counter() - start,
    }


def camsat_run(settings, paths, n_speakers):
    """Build the recipe's :class:`~camsat_lobes.pipeline.Run` of a size, CAMSAT its only system.

    Arguments
    ---------
    settings : dict
        The bench's options (``clusters``, ``epochs``, ``hidden``, ``batch_size``,
        ``seed``, ``device``; ``recipe``: the yaml, default :data:`RECIPE_HPARAMS`).
    paths : dict
        The size's paths (:func:`scale_data.size_paths`).
    n_speakers : int
        The true speaker count (the recipe's ``n_speakers``).

    Returns
    -------
    camsat_lobes.pipeline.Run
        The run; its only system, ``camsat``, is the recipe's CAMSAT clusterer (on
        ``settings["device"]``, without a progress bar) wrapped in :class:`RecordedClusterer`.

    Example
    -------
    >>> from scale_data import size_paths
    >>> settings = {"clusters": 7, "epochs": 1, "hidden": "16,16", "batch_size": 50,
    ...             "seed": 0, "device": "cpu"}
    >>> run = camsat_run(settings, size_paths(getfixture("tmp_path")), 3)
    >>> model = run.systems["camsat"]["clusterer"].clusterer
    >>> run.labelled_systems(), model.n_clusters, model.hidden_sizes, model.epochs
    (['camsat'], 7, (16, 16), 1)
    """
    from camsat_lobes.pipeline import RecipeHparams, Run

    overrides = {
        "output_folder": paths["output_folder"],
        "seed": settings["seed"],
        "n_clusters": settings["clusters"],
        "clustering_epochs": settings["epochs"],
        "n_speakers": n_speakers,
        "true_labels_reference": False,
        "systems": {
            SYSTEM: {
                "hidden_sizes": [int(h) for h in str(settings["hidden"]).split(",") if h],
                "batch_size": settings["batch_size"],
            }
        },
    }
    run = Run(RecipeHparams(settings.get("recipe") or RECIPE_HPARAMS, overrides))
    entry = dict(run.systems[SYSTEM])
    clusterer = entry["clusterer"]
    clusterer.device = settings["device"]
    clusterer.progress = False
    entry["clusterer"] = RecordedClusterer(clusterer, settings["device"])
    run.use_systems({SYSTEM: entry})
    return run


def time_cluster_stage(settings, paths):
    """Run the recipe's cluster stage on a size's folder with CAMSAT; time and memory.

    Arguments
    ---------
    settings : dict
        The bench's options (see :func:`camsat_run`; ``speakers`` too).
    paths : dict
        The size's paths, written by ``make_data``; the stage writes into its folder.

    Returns
    -------
    dict
        ``stage_s``, ``stage_cpu_s``, ``camsat_fit_s``, ``camsat_fit_cpu_s``,
        ``camsat_epoch_s``, ``camsat_rss_before_mib``, ``camsat_peak_rss_mib``,
        ``camsat_cuda_max_mib``, ``camsat_clusters``, ``camsat_nmi`` / ``camsat_acc`` /
        ``camsat_purity``, ``stage_imports_rss_mib`` (after the imports and the recipe's
        objects), ``stage_peak_rss_mib`` (end of the stage), ``pseudo_label_rows``,
        ``pseudo_labels`` (its path) and ``work_s``.

    Raises
    ------
    RuntimeError
        When ``--device cuda`` finds no GPU, or ``pseudo_labels.csv`` does not hold one
        row per point.

    Example
    -------
    >>> from scale_data import size_paths
    >>> paths = size_paths(getfixture("tmp_path"))
    >>> settings = {"dim": 8, "views": 2, "speakers": 3, "seed": 0}
    >>> _ = make_data(settings, 60, paths)
    >>> settings.update(clusters=6, epochs=1, hidden="16", batch_size=20, device="cpu")
    >>> out = time_cluster_stage(settings, paths)
    >>> out["pseudo_label_rows"], out["camsat_epoch_s"] > 0
    (60, True)
    """
    import numpy as np

    import camsat_lobes.pipeline  # noqa: F401  (the imports, before the baseline)

    if settings["device"] == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda but torch sees no GPU")
    start = time.perf_counter()
    n_points = int(np.load(paths["labels"], mmap_mode="r").shape[0])
    run = camsat_run(settings, paths, settings["speakers"] or default_speakers(n_points))
    imports_rss = peak_rss_mib()
    stage_start, stage_cpu = time.perf_counter(), time.process_time()
    run.stage("cluster")(run, 1)
    stage_s, stage_cpu = time.perf_counter() - stage_start, time.process_time() - stage_cpu
    system = run.layout.system(1, SYSTEM)
    with open(system / "pseudo_labels.csv") as stream:
        rows = sum(1 for _ in stream) - 1
    if rows != n_points:
        raise RuntimeError(f"pseudo_labels.csv holds {rows} rows for {n_points} points")
    metrics = json.loads((system / "clustering_metrics.json").read_text())
    clusterer = run.systems[SYSTEM]["clusterer"]
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
        A row: ``points``, ``clusters``, ``status`` (``"measured"`` or ``"failed in
        <phase>: ..."``), every phase's keys, ``work_s`` (seconds of work inside the
        phases) and ``size_s`` (wall seconds of the whole size).

    Example
    -------
    >>> settings = {"dim": 8, "views": 2, "speakers": 3, "seed": 0, "clusters": 4,
    ...             "niter": 5, "device": "cpu", "epochs": 1, "hidden": "16",
    ...             "batch_size": 20}
    >>> row = measure_size(settings, 60, getfixture("tmp_path"), fresh=False, verbose=False)
    >>> row["status"], row["pseudo_label_rows"]
    ('measured', 60)
    """
    from scale_data import size_paths

    run = in_fresh_process if fresh else (lambda function, *args: function(*args))
    row = {"points": n_points, "clusters": settings["clusters"], "status": "measured"}
    start = time.perf_counter()
    paths = size_paths(folder)
    work = 0.0
    for name, function, args in (
        ("data", make_data, (settings, n_points, paths)),
        ("k-means", time_kmeans, (settings, paths)),
        ("cluster stage", time_cluster_stage, (settings, paths)),
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
