"""Which sizes of the scale bench fit the time and memory budgets, and running those that do.

Before running a size, :func:`run_sizes` estimates its seconds from the last size it
measured (the work inside the phases linear in N, k-means per iteration and a CAMSAT
epoch alike; the phases' start-up constant, :func:`estimate_seconds`) and, when the
estimate exceeds the time budget of a size (or what is left of the whole run's), reports
a row "skipped: estimated X s > budget Y s" instead of running it. Peak memory is
estimated the same way (each phase's RSS above its post-import baseline, linear in N,
:func:`estimate_peak_mib`) and a size whose estimate exceeds the memory limit (default:
the memory available when the size starts) is skipped too. The first size has no
predecessor: a probe size (:func:`probe_size`) is measured first, unless switched off.
"""

import math
import os
import pathlib
import shutil
import time

from scale_data import default_speakers
from scale_phases import measure_size

#: (baseline, peak) RSS keys of each phase of a row, for the memory estimate.
PHASE_RSS = (
    ("data_imports_rss_mib", "data_peak_rss_mib"),
    ("kmeans_imports_rss_mib", "kmeans_peak_rss_mib"),
    ("stage_imports_rss_mib", "stage_peak_rss_mib"),
)


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
        A measured row (``points``, ``work_s``: seconds of work inside the phases,
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


def skip_reasons(settings, last, n_points, budget):
    """Say why a size would not fit, from the last measured row (empty when it fits).

    Arguments
    ---------
    settings : dict
        The bench's options (``memory_limit``: GiB, None for the available memory).
    last : dict or None
        The last measured row (None: nothing to estimate from, the size runs).
    n_points : int
        The size.
    budget : float
        Seconds left for it.

    Returns
    -------
    reasons : list of str
        ``"estimated X s > budget Y s"`` and/or the memory estimate against the limit.
    estimate : float or None
        Estimated seconds.
    peak : float or None
        Estimated peak RSS (MiB).

    Example
    -------
    >>> last = {"points": 10, "work_s": 1.0, "size_s": 1.0, "data_imports_rss_mib": 1.0,
    ...         "data_peak_rss_mib": 2.0}
    >>> skip_reasons({"memory_limit": 1.0}, last, 100, 5.0)[0]
    ['estimated 10 s > budget 5 s']
    """
    if last is None:
        return [], None, None
    estimate = estimate_seconds(last, n_points)
    peak = estimate_peak_mib(last, n_points)
    memory = settings["memory_limit"]
    memory = available_memory_mib() if memory is None else memory * 1024
    reasons = []
    if estimate > budget:
        reasons.append(f"estimated {estimate:.0f} s > budget {budget:.0f} s")
    if peak > memory:
        reasons.append(f"estimated peak RSS {peak:,.0f} MiB > {memory:,.0f} MiB available")
    return reasons, estimate, peak


def run_sizes(settings, fresh=True, verbose=True):
    """Measure the probe and every size of ``settings["points"]``, skipping those over budget.

    Arguments
    ---------
    settings : dict
        The bench's options (``points``, ``probe``, ``time_budget``, ``total_budget``,
        ``memory_limit`` (GiB, None: the available memory), ``workdir``, ``keep`` and
        the phases' options).
    fresh : bool
        See :func:`scale_phases.measure_size`.
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
        reasons, estimate, peak = skip_reasons(settings, last, n_points, budget)
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
