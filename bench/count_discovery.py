"""What CAMSAT's discovery of the speaker count depends on, on synthetic speakers.

Draws synthetic speakers with explicit spreads (``bench/clustering.py``'s
generator with balanced speakers and views drawn next to the utterance noise),
fits CAMSAT and IMSAT from over-specified starts (2x and 4x the true count by
default) over a grid of spreads, marginal-entropy weights mu and seeds, and
reads the number of kept clusters (clusters that are the arg-max of at least one
point), ACC and NMI at several numbers of optimisation steps of each fit.

The speakers (every spread is an expected norm before the L2 normalisation, in
units of the between-speaker spread: each speaker centre is drawn uniformly on
the unit sphere, so two speakers lie about √2 apart)::

    utterance = centre(speaker) + offset(speaker, session) + noise(utterance)
    view      = utterance + perturbation(view)         then every vector is L2-normalised

* ``--dim``: embedding dimension; ``--speakers``: true count; ``--utterances``:
  utterances per speaker (every speaker has exactly this many, spread evenly over
  its ``--sessions`` sessions);
* ``--session-spread``: norm of a session offset; ``--utterance-spread``: norm of
  an utterance's own noise (both relative to the between-speaker spread); the
  speaker's own spread is their root sum of squares;
* ``--view-ratio``: norm of a view's perturbation relative to the utterance
  spread (``--views`` views per utterance). The table and figure also give it
  against the speaker's own spread (view / own).

Each seed draws new speakers and initialises the head anew. The methods are the
recipe's CAMSAT fragment (``hparams/clustering/camsat.yaml``) with the loss
weights of ``bench/cluster_count.py``'s ``--methods``; IMSAT does not use the
views, so it is fitted once per draw of speakers and reported for every view
ratio. ``--steps`` are checkpoints in optimisation steps (an epoch is
``round(N / batch_size)`` steps): one fit runs to the largest and is read at
each (the trainer has no schedule, so the head after s steps is the same as in a
fit stopped there).

Outputs under ``--out``, named by ``--name``: ``<name>.csv`` (one line per fit and
checkpoint, with the measured spreads and the loss terms of the last epoch
before the checkpoint), ``<name>.md`` (the tables) and ``<name>.png`` (clusters
kept / true count against view / own spread, one line per mu). ``--resume`` skips
the fits already in the CSV.

Usage::

    # view ratio x mu, 12 speakers x 32 utterances in 64 dimensions, 2x and 4x:
    python bench/count_discovery.py --view-ratio 0.1 0.5 1 2 --mu 1 2 4 --seeds 1 2
    # utterances per speaker and dimension at one view ratio:
    python bench/count_discovery.py --utterances 16 64 --dim 32 192 --view-ratio 1 --name dims
"""

import argparse
import csv
import itertools
import math
import time
from pathlib import Path

import numpy as np
import torch

from camsat_lobes.clustering.camsat import _number_of_batches

#: Columns of the CSV, one line per fit and checkpoint.
CSV_COLUMNS = (
    "dim",
    "speakers",
    "utterances",
    "sessions",
    "session_spread",
    "utterance_spread",
    "view_ratio",
    "view_own_ratio",
    "measured_view_own_ratio",
    "measured_session",
    "measured_utterance",
    "measured_view",
    "hidden",
    "method",
    "mu",
    "start_factor",
    "k_start",
    "seed",
    "steps",
    "epochs",
    "clusters_kept",
    "kept_ratio",
    "acc",
    "nmi",
    "conditional_entropy",
    "marginal_entropy",
    "vat",
    "augmentation",
    "symmetry",
    "seconds",
)
#: Columns that identify one fit (the checkpoints of a fit share them).
FIT_KEY = (
    "dim",
    "utterances",
    "sessions",
    "session_spread",
    "utterance_spread",
    "view_ratio",
    "hidden",
    "method",
    "mu",
    "start_factor",
    "seed",
)
#: Line colour of each mu in the figure (the recipe's 2 in red, IMSAT's 4 in blue).
MU_COLOURS = {
    1.0: "tab:green",
    1.5: "tab:olive",
    2.0: "tab:red",
    3.0: "tab:purple",
    4.0: "tab:blue",
}
#: Range of clusters kept / true count that counts as finding the count.
FOUND = (0.85, 1.15)


def own_spread(session_spread, utterance_spread):
    """Give the expected distance of an utterance from its speaker centre (before normalisation).

    Arguments
    ---------
    session_spread : float
        Norm of a session offset.
    utterance_spread : float
        Norm of an utterance's own noise.

    Returns
    -------
    float
        Root sum of squares of the two.

    Example
    -------
    >>> own_spread(0.6, 0.8)
    1.0
    """
    return math.hypot(session_spread, utterance_spread)


def draw_speakers(
    dim=64,
    speakers=12,
    utterances=32,
    sessions=3,
    session_spread=0.6,
    utterance_spread=1.0,
    view_ratio=0.5,
    views=4,
    seed=0,
):
    """Draw synthetic speakers with the spreads asked for.

    ``bench/clustering.py``'s ``make_embeddings`` with every speaker at
    ``utterances`` utterances, centres of norm 1 and the views' perturbation added
    before the normalisation, so that all spreads share one scale. The embeddings
    do not depend on ``view_ratio`` (the views are drawn last).

    Arguments
    ---------
    dim : int
        Embedding dimension.
    speakers : int
        Number of speakers.
    utterances : int
        Utterances per speaker.
    sessions : int
        Sessions per speaker (utterances are spread evenly over them).
    session_spread : float
        Expected norm of a session offset (the between-speaker spread is 1).
    utterance_spread : float
        Expected norm of an utterance's own noise.
    view_ratio : float
        Expected norm of a view's perturbation / ``utterance_spread``.
    views : int
        Views per utterance.
    seed : int
        Seed of every draw.

    Returns
    -------
    tuple of numpy.ndarray
        Embeddings (N×dim), views (N×views×dim), speaker labels (N,) and session
        labels (N,, numbered within each speaker), N = speakers × utterances.

    Example
    -------
    >>> x, v, spk, ses = draw_speakers(dim=16, speakers=3, utterances=6, sessions=2)
    >>> x.shape, v.shape, np.bincount(spk).tolist(), ses[:6].tolist()
    ((18, 16), (18, 4, 16), [6, 6, 6], [0, 1, 0, 1, 0, 1])
    """
    from clustering import make_embeddings

    x, view_array, labels = make_embeddings(
        dim=dim,
        n_speakers=speakers,
        n_views=views,
        sessions=sessions,
        session_scale=session_spread,
        noise_scale=utterance_spread,
        view_scale=view_ratio * utterance_spread,
        seed=seed,
        utterances_per_speaker=utterances,
        speaker_scale=1.0,
        view_space="raw",
    )
    session = np.tile(np.arange(utterances) % sessions, speakers)
    return x, view_array, labels, session


def measured_spreads(x, views, labels, sessions):
    """Estimate the spreads of drawn embeddings from pairwise distances.

    With independent isotropic parts, two utterances of one session lie
    √2·utterance apart, two of one speaker and different sessions
    √2·√(session² + utterance²) apart, two of different speakers
    √2·√(between² + session² + utterance²) apart, and a view lies ``view`` from its
    utterance; solving for the four spreads gives unbiased estimates before the
    normalisation and, after it, the spreads in units of the unit sphere (their
    ratios are those asked for while the spreads stay well below 1).

    Arguments
    ---------
    x : numpy.ndarray
        Embeddings (N×D).
    views : numpy.ndarray
        Views (N×V×D).
    labels : numpy.ndarray
        Speaker of each embedding.
    sessions : numpy.ndarray
        Session of each embedding within its speaker.

    Returns
    -------
    dict
        ``between``, ``session``, ``utterance``, ``view`` and ``own`` (the root
        sum of squares of session and utterance).

    Example
    -------
    >>> x, v, spk, ses = draw_speakers(dim=256, speakers=20, utterances=20, sessions=4)
    >>> s = measured_spreads(x, v, spk, ses)
    >>> round(s["view"] / s["utterance"], 1), round(s["session"] / s["between"], 1)
    (0.5, 0.6)
    """
    x = np.asarray(x, dtype=np.float64)
    squared = np.maximum((x * x).sum(1)[:, None] + (x * x).sum(1)[None, :] - 2.0 * x @ x.T, 0.0)
    pair = ~np.eye(len(x), dtype=bool)
    same_speaker = labels[:, None] == labels[None, :]
    same_session = same_speaker & (sessions[:, None] == sessions[None, :])
    within_session = squared[pair & same_session].mean() / 2.0
    within_speaker = squared[pair & same_speaker & ~same_session].mean() / 2.0
    across = squared[~same_speaker].mean() / 2.0
    view = np.sqrt(((views - x[:, None, :]) ** 2).sum(-1).mean())
    return {
        "between": float(np.sqrt(max(across - within_speaker, 0.0))),
        "session": float(np.sqrt(max(within_speaker - within_session, 0.0))),
        "utterance": float(np.sqrt(within_session)),
        "view": float(view),
        "own": float(np.sqrt(within_speaker)),
    }


def checkpoint_epochs(steps, n_points, batch_size):
    """Convert checkpoints in optimisation steps into epochs (rounded up).

    Arguments
    ---------
    steps : sequence of int
        Checkpoints in steps.
    n_points : int
        Points per epoch.
    batch_size : int
        The trainer's batch size.

    Returns
    -------
    list of tuple
        ``(epochs, steps actually run)`` for each checkpoint, sorted, duplicates removed.

    Example
    -------
    >>> checkpoint_epochs([50, 100, 300], 384, 250)
    [(25, 50), (50, 100), (150, 300)]
    """
    per_epoch = _number_of_batches(n_points, batch_size)
    epochs = sorted({max(1, math.ceil(s / per_epoch)) for s in steps})
    return [(e, e * per_epoch) for e in epochs]


def make_model(method, k_start, mu, epochs, seed, hidden):
    """Build one method from the recipe's CAMSAT fragment.

    Arguments
    ---------
    method : str
        ``imsat`` or ``camsat`` (or any other key of ``bench/cluster_count.py``'s methods).
    k_start : int
        Initial number of clusters.
    mu : float
        Weight of the marginal entropy.
    epochs : int
        Training epochs.
    seed : int
        Seed of the fit.
    hidden : tuple of int or None
        Hidden widths of the head; the fragment's (1200, 1200) when None.

    Returns
    -------
    tuple
        The model and whether its fit takes the views.

    Example
    -------
    >>> model, uses_views = make_model("camsat", 24, 2.0, 3, 0, (16,))
    >>> model.hidden_sizes, model.weights.augmentation, uses_views
    ((16,), 1.0, True)
    """
    from cluster_count import make_model as fragment_model

    model, uses_views = fragment_model(method, k_start, mu, epochs, seed)
    if hidden is not None:
        model.hidden_sizes = tuple(hidden)
    model.device = "cpu"
    return model, uses_views


def fit_rows(model, x, views, labels, checkpoints, base):
    """Fit one model and return one CSV row per checkpoint.

    Arguments
    ---------
    model : camsat_lobes.clustering.CAMSAT
        The clusterer, its ``epochs`` set to the last checkpoint.
    x : numpy.ndarray
        Embeddings.
    views : numpy.ndarray or None
        Views, or None for a method that does not use them.
    labels : numpy.ndarray
        True speakers.
    checkpoints : list of tuple
        ``(epochs, steps)`` of each checkpoint (from :func:`checkpoint_epochs`).
    base : dict
        The columns shared by every row of the fit.

    Returns
    -------
    list of dict
        One row per checkpoint.
    """
    start = time.perf_counter()
    result = model.fit(x, views=views, true_labels=labels)
    seconds = time.perf_counter() - start
    n_speakers = int(labels.max() + 1)
    rows = []
    for epochs, steps in checkpoints:
        record = result.history[epochs - 1]
        rows.append(
            {
                **base,
                "steps": steps,
                "epochs": epochs,
                "clusters_kept": record["n_clusters"],
                "kept_ratio": record["n_clusters"] / n_speakers,
                "acc": record["acc"],
                "nmi": record["nmi"],
                **{
                    term: record.get(term, "")
                    for term in (
                        "conditional_entropy",
                        "marginal_entropy",
                        "vat",
                        "augmentation",
                        "symmetry",
                    )
                },
                "seconds": seconds,
            }
        )
    return rows


def _key(row):
    """Return the identity of the fit a row belongs to (as strings, as the CSV holds them).

    Arguments
    ---------
    row : dict
        A row of the CSV or one about to be written.

    Returns
    -------
    tuple of str
        The values of :data:`FIT_KEY`.
    """
    return tuple(_text(row[name]) for name in FIT_KEY)


def _text(value):
    """Write a value as text, numbers in one form (so 2.0, 2 and "2.0" match).

    Arguments
    ---------
    value : object
        A number or a string.

    Returns
    -------
    str
        The text.
    """
    try:
        return format(float(value), "g")
    except ValueError:
        return str(value)


def run_grid(args, csv_path):
    """Fit every method, mu, start and seed on every draw of the grid; append rows to the CSV.

    Arguments
    ---------
    args : argparse.Namespace
        The options.
    csv_path : pathlib.Path
        CSV file (rows of fits already there are kept and skipped with ``--resume``).

    Returns
    -------
    list of dict
        Every row of the CSV, as strings.
    """
    done = set()
    if args.resume and csv_path.exists():
        with open(csv_path, newline="") as handle:
            done = {_key(row) for row in csv.DictReader(handle)}
    else:
        with open(csv_path, "w", newline="") as handle:
            csv.DictWriter(handle, fieldnames=CSV_COLUMNS).writeheader()
    hidden = "x".join(map(str, args.hidden)) if args.hidden else "fragment"
    grid = itertools.product(args.dim, args.utterances, args.seeds)
    for dim, utterances, seed in grid:
        imsat_rows = {}
        for view_ratio in args.view_ratio:
            x, views, labels, sessions = draw_speakers(
                dim,
                args.speakers,
                utterances,
                args.sessions,
                args.session_spread,
                args.utterance_spread,
                view_ratio,
                args.views,
                seed,
            )
            spreads = measured_spreads(x, views, labels, sessions)
            checkpoints = checkpoint_epochs(args.steps, len(x), args.batch_size)
            own = own_spread(args.session_spread, args.utterance_spread)
            draw = {
                "dim": dim,
                "speakers": args.speakers,
                "utterances": utterances,
                "sessions": args.sessions,
                "session_spread": args.session_spread,
                "utterance_spread": args.utterance_spread,
                "view_ratio": view_ratio,
                "view_own_ratio": round(view_ratio * args.utterance_spread / own, 4),
                "measured_view_own_ratio": round(spreads["view"] / spreads["own"], 4),
                "measured_session": round(spreads["session"] / spreads["between"], 4),
                "measured_utterance": round(spreads["utterance"] / spreads["between"], 4),
                "measured_view": round(spreads["view"] / spreads["utterance"], 4),
                "hidden": hidden,
            }
            for mu, factor, method in itertools.product(args.mu, args.starts, args.methods):
                k_start = int(round(factor * args.speakers))
                fit = {
                    **draw,
                    "method": method,
                    "mu": mu,
                    "start_factor": factor,
                    "k_start": k_start,
                    "seed": seed,
                }
                key = _key(fit)
                if method == "imsat" and (mu, factor) in imsat_rows:
                    rows = [{**r, **draw} for r in imsat_rows[(mu, factor)]]
                elif key in done:
                    continue
                else:
                    model, uses_views = make_model(
                        method, k_start, mu, checkpoints[-1][0], seed, args.hidden
                    )
                    model.batch_size = args.batch_size
                    rows = fit_rows(
                        model, x, views if uses_views else None, labels, checkpoints, fit
                    )
                    if method == "imsat":
                        imsat_rows[(mu, factor)] = rows
                if key in done:
                    continue
                with open(csv_path, "a", newline="") as handle:
                    csv.DictWriter(handle, fieldnames=CSV_COLUMNS).writerows(rows)
                done.add(key)
                last = rows[-1]
                print(
                    f"  D={dim} U={utterances} view/utt={view_ratio:g} {method} mu={mu:g} "
                    f"K={k_start} seed={seed}: kept "
                    + " ".join(f"{r['clusters_kept']}@{r['steps']}" for r in rows)
                    + f" (ACC {last['acc']:.3f}, {last['seconds']:.0f} s)",
                    flush=True,
                )
    with open(csv_path, newline="") as handle:
        return list(csv.DictReader(handle))


def _mean_std(values, digits):
    """Format numbers as mean ± sample standard deviation (the value alone for one).

    Arguments
    ---------
    values : sequence of float
        The numbers, one per seed.
    digits : int
        Decimals to show.

    Returns
    -------
    str
        E.g. ``"1.02 ± 0.05"``.
    """
    values = np.asarray(values, dtype=float)
    if values.size == 1:
        return f"{values[0]:.{digits}f}"
    return f"{values.mean():.{digits}f} ± {values.std(ddof=1):.{digits}f}"


def _groups(rows, columns):
    """Group rows by the values of ``columns``, in order of first appearance.

    Arguments
    ---------
    rows : list of dict
        CSV rows.
    columns : sequence of str
        The columns to group by.

    Returns
    -------
    dict
        Tuple of values → list of rows.
    """
    groups = {}
    for row in rows:
        groups.setdefault(tuple(row[c] for c in columns), []).append(row)
    return groups


def summary_tables(rows):
    """Build the markdown tables: every setting at its last checkpoint, then against steps.

    Arguments
    ---------
    rows : list of dict
        CSV rows (strings).

    Returns
    -------
    list of str
        Markdown lines.
    """
    setting = ("dim", "utterances", "hidden", "view_ratio", "method", "mu", "start_factor")
    last_step = {}
    for row in rows:
        key = tuple(row[c] for c in setting)
        last_step[key] = max(last_step.get(key, 0), int(row["steps"]))
    lines = [
        "Clusters kept / true count, ACC and NMI at each setting's last checkpoint "
        f"(mean ± sample std over seeds; found: seeds within {FOUND[0]:g}-{FOUND[1]:g}x). "
        "exp H(Y) / true: the number of clusters the marginal entropy of the last epoch "
        "sees (exp of the batch-mean H(Y)) over the true count; exp H(Y|X): the number of "
        "outputs a point's probability is spread over.",
        "",
        "| D | utt./spk | head | view/utt. | view/own (measured) | method | mu | start "
        "| steps | seeds | kept / true | found | exp H(Y) / true | exp H(Y\\|X) | ACC | NMI |",
        "|---:|---:|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for key, group in _groups(rows, setting).items():
        group = [r for r in group if int(r["steps"]) == last_step[key]]
        dim, utterances, hidden, view_ratio, method, mu, factor = key
        ratios = [float(r["kept_ratio"]) for r in group]
        found = sum(FOUND[0] <= r <= FOUND[1] for r in ratios)
        soft = [math.exp(float(r["marginal_entropy"])) / float(r["speakers"]) for r in group]
        spread = [math.exp(float(r["conditional_entropy"])) for r in group]
        own = (
            f"{float(group[0]['view_own_ratio']):.2f} "
            f"({np.mean([float(r['measured_view_own_ratio']) for r in group]):.2f})"
        )
        lines.append(
            f"| {dim} | {utterances} | {hidden} | {view_ratio} | {own} | {method} | {mu} "
            f"| {factor}x | {last_step[key]} | {len(group)} | {_mean_std(ratios, 2)} "
            f"| {found}/{len(group)} | {_mean_std(soft, 2)} | {_mean_std(spread, 2)} "
            f"| {_mean_std([float(r['acc']) for r in group], 3)} "
            f"| {_mean_std([float(r['nmi']) for r in group], 3)} |"
        )
    steps = sorted({int(r["steps"]) for r in rows})
    lines += [
        "",
        "Clusters kept / true count against optimisation steps (mean ± sample std over seeds).",
        "",
        "| D | utt./spk | head | view/utt. | method | mu | start | "
        + " | ".join(f"{s} steps" for s in steps)
        + " |",
        "|---:|---:|---|---:|---|---:|---:|" + "---:|" * len(steps),
    ]
    for key, group in _groups(rows, setting).items():
        dim, utterances, hidden, view_ratio, method, mu, factor = key
        cells = []
        for s in steps:
            at = [float(r["kept_ratio"]) for r in group if int(r["steps"]) == s]
            cells.append(_mean_std(at, 2) if at else "-")
        lines.append(
            f"| {dim} | {utterances} | {hidden} | {view_ratio} | {method} | {mu} | {factor}x | "
            + " | ".join(cells)
            + " |"
        )
    return lines


def plot_ratio(rows, path):
    """Draw clusters kept / true count against view / own spread, one line per mu.

    One panel per (dimension, utterances per speaker, method); colour tells mu,
    line style the start; points are the mean over seeds at the last checkpoint,
    bars span the seeds' minimum to maximum; the grey band is ±15 % of the true count.

    Arguments
    ---------
    rows : list of dict
        CSV rows (strings).
    path : pathlib.Path
        PNG file to write.
    """
    from matplotlib.figure import Figure

    panels = list(_groups(rows, ("dim", "utterances", "hidden", "method")))
    mus = sorted({float(r["mu"]) for r in rows})
    starts = sorted({float(r["start_factor"]) for r in rows})
    colours = {mu: MU_COLOURS.get(mu, "tab:grey") for mu in mus}
    styles = dict(zip(starts, ("-o", "--s", ":^", "-.v")))
    columns = min(len(panels), 4)
    lines_of_panels = math.ceil(len(panels) / columns)
    fig = Figure(figsize=(4.6 * columns, 3.8 * lines_of_panels + 0.8))
    axes = np.atleast_1d(fig.subplots(lines_of_panels, columns, squeeze=False).ravel())
    for ax, panel in zip(axes, panels):
        dim, utterances, hidden, method = panel
        chosen = [r for r in rows if (r["dim"], r["utterances"], r["hidden"], r["method"]) == panel]
        last = max(int(r["steps"]) for r in chosen)
        chosen = [r for r in chosen if int(r["steps"]) == last]
        for mu, factor in itertools.product(mus, starts):
            line = [
                r for r in chosen if float(r["mu"]) == mu and float(r["start_factor"]) == factor
            ]
            if not line:
                continue
            by_ratio = _groups(line, ("view_own_ratio",))
            ratio = np.array([float(k[0]) for k in by_ratio])
            values = [np.array([float(r["kept_ratio"]) for r in g]) for g in by_ratio.values()]
            order = np.argsort(ratio)
            mean = np.array([v.mean() for v in values])[order]
            low = mean - np.array([v.min() for v in values])[order]
            high = np.array([v.max() for v in values])[order] - mean
            ax.errorbar(
                ratio[order],
                mean,
                yerr=[low, high],
                fmt=styles[factor],
                color=colours[mu],
                capsize=2,
                label=f"mu={mu:g}, start {factor:g}x",
            )
        ax.axhspan(FOUND[0], FOUND[1], color="grey", alpha=0.2, linewidth=0)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_ylim(0, max(starts) * 1.05)
        ax.set_title(f"{method}, D={dim}, {utterances} utt./spk, head {hidden}", fontsize=9)
        ax.set_xlabel("view spread / speaker's own spread")
        ax.set_ylabel(f"clusters kept / true count ({last} steps)")
        ax.grid(alpha=0.3)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 6), fontsize=8)
    fig.tight_layout(rect=(0, 0.5 / (3.8 * lines_of_panels + 0.8), 1, 1))
    fig.savefig(path, dpi=110)


def parse_args(argv=None):
    """Read the command line.

    Arguments
    ---------
    argv : list of str, optional
        The arguments (``sys.argv[1:]`` when None).

    Returns
    -------
    argparse.Namespace
        The options.
    """
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    data = parser.add_argument_group("synthetic speakers")
    data.add_argument("--dim", type=int, nargs="+", default=[64], help="embedding dimension(s)")
    data.add_argument("--speakers", type=int, default=12, help="true number of speakers")
    data.add_argument(
        "--utterances", type=int, nargs="+", default=[32], help="utterances per speaker"
    )
    data.add_argument("--sessions", type=int, default=3, help="sessions per speaker")
    data.add_argument(
        "--session-spread",
        type=float,
        default=0.6,
        help="norm of a session offset, relative to the between-speaker spread (centre norm 1)",
    )
    data.add_argument(
        "--utterance-spread",
        type=float,
        default=1.0,
        help="norm of an utterance's own noise, relative to the between-speaker spread",
    )
    data.add_argument(
        "--view-ratio",
        type=float,
        nargs="+",
        default=[0.1, 0.5, 1.0, 2.0],
        help="norm of a view's perturbation / the utterance spread",
    )
    data.add_argument("--views", type=int, default=4, help="views per utterance")
    fits = parser.add_argument_group("fits")
    fits.add_argument("--methods", nargs="+", default=["imsat", "camsat"])
    fits.add_argument("--mu", type=float, nargs="+", default=[2.0], help="marginal-entropy weight")
    fits.add_argument(
        "--starts", type=float, nargs="+", default=[2.0, 4.0], help="initial K / true count"
    )
    fits.add_argument(
        "--seeds", type=int, nargs="+", default=[1, 2], help="each draws speakers and a head"
    )
    fits.add_argument(
        "--steps",
        type=int,
        nargs="+",
        default=[50, 100, 300],
        help="checkpoints in optimisation steps (one fit runs to the largest)",
    )
    fits.add_argument(
        "--hidden",
        type=int,
        nargs="*",
        default=None,
        help="hidden widths of the head (default: the fragment's 1200 1200)",
    )
    fits.add_argument("--batch-size", type=int, default=250)
    parser.add_argument("--out", default="results/count_discovery", help="output folder")
    parser.add_argument("--name", default="count_discovery", help="stem of the output files")
    parser.add_argument("--resume", action="store_true", help="skip the fits already in the CSV")
    parser.add_argument(
        "--tables-from",
        nargs="+",
        metavar="CSV",
        help="fit nothing: write the tables and the figure of these CSVs (rows in order)",
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    return parser.parse_args(argv)


def main():
    """Run the grid; print and write the tables, the CSV and the figure."""
    args = parse_args()
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    if args.tables_from:
        rows = []
        for path in args.tables_from:
            with open(path, newline="") as handle:
                rows += list(csv.DictReader(handle))
        settings = "Rows of " + ", ".join(f"`{Path(p).name}`" for p in args.tables_from)
    else:
        rows = run_grid(args, out / f"{args.name}.csv")
        settings = (
            f"{args.speakers} speakers, {args.sessions} sessions each, session spread "
            f"{args.session_spread:g}, utterance spread {args.utterance_spread:g} "
            f"(between-speaker spread 1), {args.views} views"
        )
    table = summary_tables(rows)
    print("\n" + settings + "\n\n" + "\n".join(table))
    (out / f"{args.name}.md").write_text(settings + "\n\n" + "\n".join(table) + "\n")
    plot_ratio(rows, out / f"{args.name}.png")
    written = ".md and .png" if args.tables_from else ".csv, .md and .png"
    print(f"\nwrote {out}/{args.name}{written} in {time.perf_counter() - began:.0f} s")


if __name__ == "__main__":
    main()
