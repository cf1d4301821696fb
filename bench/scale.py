"""Clustering at the paper's scale: faiss k-means, a CAMSAT epoch and the recipe's cluster stage.

For each size N of ``--points`` (default 100,000 and 1,090,000 points, about VoxCeleb2
dev's 1,092,009 utterances) with K = ``--clusters`` (default 10,000, the paper's
starting count), three fresh child processes, one after the other, so that each peak
RSS (``ru_maxrss`` of a fresh interpreter) belongs to one phase of one size
(``bench/scale_phases.py``):

1. **data** (``bench/scale_data.py``): synthetic speaker-like embeddings from
   ``make_embeddings`` of ``bench/clustering.py`` (speaker centres on the unit sphere,
   sessions as shared offsets, per-utterance noise, V perturbed views; N / 182 speakers
   by default, about VoxCeleb2's 5,994 at 1.09 M), written where the recipe's layout
   (``camsat_lobes.pipeline.RunLayout``) puts them: ``round1/embeddings/train/{embeddings.npy,
   views.npy, ids.txt}`` and ``save/data/train_utts.csv`` (columns ID, spk_id).
2. **k-means**: ``KMeansClusterer`` (faiss, spherical, ``--niter`` Lloyd iterations,
   as ``hparams/clustering/kmeans.yaml`` but at K clusters) on the loaded embeddings;
   wall time of ``fit``, peak RSS, and NMI / ACC / purity from ``clustering_metrics``.
3. **cluster stage**: the recipe's own stage, ``camsat_lobes.pipeline.cluster``, called
   as the recipe calls it (``run.stage("cluster")(run, 1)``) over a
   ``camsat_lobes.pipeline.Run`` of ``--recipe`` (default
   ``recipes/VoxCeleb/CAMSAT/hparams/camsat_voxceleb2.yaml``) whose only system is its
   ``camsat`` clusterer (``hparams/clustering/camsat.yaml`` as the recipe includes it),
   overridden: K, ``--epochs``, ``--hidden``, ``--batch-size``, the seed and the
   speaker count. The stage reads the folder, normalises the embeddings and the views,
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
stage's own copies of the inputs and the objects the recipe yaml builds) and, with
``--device cuda``, ``torch.cuda.max_memory_allocated`` during ``fit``; the stage's
seconds (from reading the folder to the written files, ``fit`` included). Times are
wall seconds; the JSON also holds the CPU seconds (``time.process_time``, all threads)
of k-means' ``fit``, CAMSAT's ``fit`` and the stage, which tell a slow machine from a
busy one, and, with faiss on a GPU, the device memory k-means used (polled: faiss
allocates outside torch's counters).

Memory: the views are N × V × D float32, 3.3 GB at 1.09 M × 4 × 192, and the stage holds
the raw views, their normalised copy and CAMSAT's own normalised copy at once (about
10 GB, more during the normalisations); the data child peaks near 8 GB while the
generator works in float64. Fine on a 24 GiB machine, one size at a time. CAMSAT's
``fit`` labels the points chunk by chunk and keeps the N × K probabilities only below
50 M entries (1.09 M × 10,000 would be 44 GB); the memory estimate below still skips a
size that would not fit rather than start it.

Time budget (``bench/scale_budget.py``): before running a size, the bench estimates its
seconds from the last size it measured (the work inside the children linear in N,
k-means per iteration and a CAMSAT epoch alike; the children's start-up constant) and,
when the estimate exceeds ``--time-budget`` (or what is left of ``--total-budget``),
prints a row "skipped: estimated X s > budget Y s" instead of running it. Peak memory is
estimated the same way (each phase's RSS above its baseline, linear in N) and a size
whose estimate exceeds ``--memory-limit`` (default: the machine's available memory when
the size starts) is skipped too. The first size has no predecessor: unless ``--probe
0``, a probe size (max(2K, smallest size / 10) points; at N = K faiss k-means would just
copy the points) is measured first and reported as its own row. The linear estimate is
low for the neighbour search, which is exact (quadratic) up to 100,000 points and an
inverted file above. The last lines state the size the budget reaches at the measured
rate.

``--device cuda`` runs the same phases with faiss on the GPU when faiss-gpu sees one
(k-means, and the VAT neighbour search inside CAMSAT) and CAMSAT on the GPU. Its defaults
(1 epoch, 20 k-means iterations, 420 s per size, 450 s in all) keep
``python bench/scale.py --device cuda --points 100000 1090000`` within 8 minutes on one
GPU: a size estimated not to fit is skipped and reported instead of started (a size that
has started is not interrupted, so the guarantee is as good as the linear estimate).
``bench/gpu_check.py`` runs these phases at 1.09 M with the GPU's network steps.

Usage::

    python bench/scale.py                                  # 100k and 1.09M points, K = 10,000
    python bench/scale.py --device cuda --points 100000 1090000
    python bench/scale.py --points 20000 --clusters 2000 --probe 0 --json scale.json
    python bench/scale.py --points 2000 --clusters 50 --dim 16 --hidden 64,64 --probe 0
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from scale_budget import probe_size, reachable_points, run_sizes  # noqa: E402
from scale_phases import RECIPE_HPARAMS  # noqa: E402

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
    parser.add_argument(
        "--recipe",
        default=str(RECIPE_HPARAMS),
        help="recipe yaml whose cluster stage and camsat system run (default: the paper's setup)",
    )
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
        "stage's process at the end of fit. stage s: the recipe's cluster stage from "
        "reading the folder to pseudo_labels.csv, fit included. NMI / ACC / purity from "
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
