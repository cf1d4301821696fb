"""The rows and the markdown table of the GPU check (``bench/gpu_check.py``).

One row per phase: the network steps as :func:`training_steps.speaker_step` and
:func:`training_steps.dino_step` return them, and two rows per size of the scale bench
(faiss k-means, a CAMSAT epoch), each with seconds per step, the warm-up, the phase's
seconds, peak GPU memory, peak RSS and a status (measured, skipped, failed).
"""

import math

#: The table's headers, in order.
HEADERS = (
    "phase",
    "setting",
    "batch",
    "steps",
    "s/step",
    "warm-up s",
    "phase s",
    "peak GPU MiB",
    "peak RSS MiB",
    "status",
)


def network_row(phase, settings, out):
    """Format a network phase's result as a row of the check's table.

    Arguments
    ---------
    phase : str
        ``speaker`` or ``dino``.
    settings : dict
        The check's options.
    out : dict
        The phase's result (the keys of :func:`training_steps.speaker_step`), or a
        ``status`` alone (skipped, failed).

    Returns
    -------
    dict
        ``phase``, ``setting``, ``status`` (``measured`` unless ``out`` says) and the
        result's keys.
    """
    options = settings[phase]
    width = "x".join(str(c) for c in options["channels"][-2:])
    if phase == "speaker":
        setting = (
            f"ECAPA-TDNN {width}, AAM over {options['n_classes']:,} classes, "
            f"{options['seconds']:g} s crops"
        )
    else:
        setting = (
            f"ECAPA-TDNN {width}, {options['n_prototypes']:,} prototypes, 2 x "
            f"{options['global_seconds']:g} s + {options['n_local']} x "
            f"{options['local_seconds']:g} s crops"
        )
    row = {"phase": f"{phase} step", "setting": setting, "status": "measured", **out}
    if out.get("out_of_memory_batches"):
        tried = ", ".join(str(b) for b in out["out_of_memory_batches"])
        row["status"] = f"measured (out of GPU memory at batch {tried})"
    return row


def clustering_rows(settings, scale_rows):
    """Turn the scale bench's rows into the check's k-means and CAMSAT rows.

    Arguments
    ---------
    settings : dict
        The check's options.
    scale_rows : list of dict
        Rows of :func:`scale_budget.run_sizes`.

    Returns
    -------
    list of dict
        Two rows per size (k-means, then CAMSAT).
    """
    rows = []
    for row in scale_rows:
        size = f"{row['points']:,} x {settings['clustering']['dim']}, K {row['clusters']:,}"
        where = "GPU" if row.get("kmeans_gpu") else "CPU"
        status = row["status"]
        if settings["device"] == "cuda" and row.get("kmeans_gpu") is False:
            status += "; faiss on the CPU (no faiss-gpu)"
        niter = settings["camsat"]["niter"]
        kmeans = {"phase": "faiss k-means", "setting": f"{size}, {where}", "status": status}
        if row.get("kmeans_s") is not None:
            kmeans.update(
                steps=niter,
                step_s=row["kmeans_s"] / niter,
                phase_s=row["kmeans_s"],
                gpu_max_mib=row.get("kmeans_device_peak_mib"),
                peak_rss_mib=row["kmeans_peak_rss_mib"],
            )
        batch = settings["camsat"]["batch_size"]
        camsat = {"phase": "CAMSAT epoch", "setting": size, "batch": batch, "status": status}
        if row.get("camsat_epoch_s") is not None:
            steps = math.ceil(row["points"] / batch)
            camsat.update(
                steps=steps,
                step_s=row["camsat_epoch_s"] / steps,
                phase_s=row["camsat_epoch_s"],
                gpu_max_mib=row.get("camsat_cuda_max_mib"),
                peak_rss_mib=row["camsat_peak_rss_mib"],
            )
        rows += [kmeans, camsat]
    return rows


def skip_status(estimate, left):
    """Say that a phase would not fit the budget.

    Arguments
    ---------
    estimate : float
        The phase's estimated seconds.
    left : float
        Seconds left of the budget.

    Returns
    -------
    str
        The row's status.

    Example
    -------
    >>> skip_status(75.0, 12.3)
    'skipped: estimated 75 s > 12 s left of the budget'
    """
    return f"skipped: estimated {estimate:.0f} s > {left:.0f} s left of the budget"


def _cell(value, digits=1):
    """Format a table cell: ``-`` when absent, thousands separators, ``digits`` decimals."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}" if value >= 0.1 else f"{value:.4f}"
    return str(value)


def table(rows):
    """Format the check's rows as a markdown table.

    Arguments
    ---------
    rows : list of dict
        Rows of :func:`network_row` and :func:`clustering_rows`.

    Returns
    -------
    str
        The table.

    Example
    -------
    >>> print(table([{"phase": "DINO step", "setting": "tiny", "step_s": 0.01234,
    ...               "status": "measured"}]).splitlines()[2])
    | DINO step | tiny | - | - | 0.0123 | - | - | - | - | measured |
    """
    keys = ("batch", "steps", "step_s", "warmup_s", "phase_s", "gpu_max_mib", "peak_rss_mib")
    lines = ["| " + " | ".join(HEADERS) + " |", "|---|---|" + "---:|" * len(keys) + "---|"]
    for row in rows:
        cells = [row["phase"], row["setting"]]
        cells += [_cell(row.get(k), 0 if k.endswith("mib") else 3) for k in keys]
        status = " ".join(row["status"].split()).replace("|", "/")  # one line, no cell break
        lines.append("| " + " | ".join(cells + [status]) + " |")
    return "\n".join(lines)
