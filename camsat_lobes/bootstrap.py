"""Confidence intervals of EER and minDCF by bootstrap over test speakers, paired across systems.

Why speakers and not trials
---------------------------
The trials of a verification list are not independent draws: every trial of one
speaker shares that speaker's voice, recording conditions and enrolment audio, so
an easy or hard speaker moves all of its trials together. Resampling single trials
treats a list of 720 trials from 24 speakers as 720 independent observations and
gives intervals that are far too narrow. The unit that was sampled from the
population is the speaker, so the bootstrap resamples speakers with replacement and
keeps all of their trials.

A speaker drawn ``m`` times is taken as ``m`` distinct copies of that speaker. Its
target trials then appear ``m`` times (once per copy) and a non-target trial between
speakers ``a != b`` appears once per pair of copies, ``m_a * m_b`` times; trials of
speakers not drawn vanish. Instead of building every resampled list, each resample is
a vector of integer trial weights (:func:`speaker_bootstrap_weights`) and the weighted
metrics of :mod:`camsat_lobes.verification` evaluate a whole block of resamples with one
sort of the scores: integer weights give exactly the metrics of the repeated list.

Intervals are percentile intervals of the resampled values. A resample that draws
no speaker with a target trial (or fewer than two distinct speakers, so no
non-target trial) has no defined EER; it is dropped and counted.

Paired differences
------------------
Systems scored on the same trial list are compared on the *same* resamples: the
difference ``system - reference`` is computed resample by resample. Hard speakers
are hard for every system, so the speaker effect largely cancels in the difference
and its interval is much tighter than the two individual intervals suggest;
overlapping individual intervals do not mean that two systems are indistinguishable.
A difference is flagged significant when its interval excludes 0.

Authors
 * camsat contributors 2026
"""

import numpy as np

from camsat_lobes.verification import (
    _eer_from_rates,
    _min_dcf_from_rates,
    _rates,
    _sort_trials,
    compute_eer,
    compute_min_dcf,
)

__all__ = [
    "bootstrap_intervals",
    "format_difference",
    "format_interval",
    "percentile_interval",
    "seed_averaged_differences",
    "speaker_bootstrap_weights",
]

# Resamples x trials evaluated at once: bounds the memory of one block (16 MiB per
# float64 array) while keeping the work vectorised; larger blocks are no faster.
_CHUNK_ELEMENTS = 2**21

_ENTRY_ORDER = ("EER", "EER_low", "EER_high", "minDCF", "minDCF_low", "minDCF_high")
_RESERVED_KEYS = ("differences", "n_resamples", "confidence", "n_speakers", "dropped_resamples")


def _speaker_indices(enrol_speakers, test_speakers):
    """Index every trial's two speakers into the sorted set of test speakers."""
    enrol = np.asarray(enrol_speakers).ravel()
    test = np.asarray(test_speakers).ravel()
    if enrol.shape != test.shape or enrol.size == 0:
        raise ValueError(
            f"{enrol.size} enrolment and {test.size} test speakers: give one of each per trial"
        )
    speakers, inverse = np.unique(np.concatenate([enrol, test]), return_inverse=True)
    inverse = inverse.ravel()
    return inverse[: enrol.size], inverse[enrol.size :], speakers.size


def _speaker_counts(n_speakers, n_resamples, seed):
    """(B, S) number of times each of S speakers is drawn in each of B resamples."""
    if int(n_resamples) < 1:
        raise ValueError(f"n_resamples={n_resamples} must be at least 1")
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_speakers, size=(int(n_resamples), n_speakers))
    draws += np.arange(int(n_resamples))[:, None] * n_speakers
    counts = np.bincount(draws.ravel(), minlength=int(n_resamples) * n_speakers)
    return counts.reshape(int(n_resamples), n_speakers)


def _trial_weights(counts, enrol_idx, test_idx):
    """(B, N) weights: ``m_s`` for a target trial, ``m_a * m_b`` for a non-target trial."""
    table = np.c_[counts.astype(np.float64), np.ones(len(counts))]
    second = np.where(enrol_idx == test_idx, table.shape[1] - 1, test_idx)
    return np.take(table, enrol_idx, axis=1) * np.take(table, second, axis=1)


def speaker_bootstrap_weights(enrol_speakers, test_speakers, n_resamples=1000, seed=1234):
    """(B, N) trial weights from B resamples of the test speakers with replacement.

    The speakers are those appearing on either side of a trial. A speaker drawn
    ``m`` times contributes its trials ``m`` times: a non-target trial between
    speakers ``a != b`` gets weight ``m_a * m_b``, a target trial (same speaker on
    both sides) gets ``m_s``. Deterministic for a seed.

    Arguments
    ---------
    enrol_speakers : array_like
        (N,) speaker of the enrolment side of every trial (strings or integers).
    test_speakers : array_like
        (N,) speaker of the test side of every trial.
    n_resamples : int
        Number B of bootstrap resamples.
    seed : int
        Seed of the random generator.

    Returns
    -------
    numpy.ndarray
        (B, N) float64 array of non-negative integer weights, for the ``weights``
        argument of :func:`camsat_lobes.verification.compute_eer` and
        :func:`camsat_lobes.verification.compute_min_dcf`.

    Example
    -------
    >>> enrol, test = ["a", "a", "b", "a"], ["a", "b", "b", "c"]
    >>> weights = speaker_bootstrap_weights(enrol, test, n_resamples=3, seed=0)
    >>> weights.shape
    (3, 4)
    >>> bool((weights == speaker_bootstrap_weights(enrol, test, n_resamples=3, seed=0)).all())
    True
    """
    enrol_idx, test_idx, n_speakers = _speaker_indices(enrol_speakers, test_speakers)
    counts = _speaker_counts(n_speakers, n_resamples, seed)
    return _trial_weights(counts, enrol_idx, test_idx)


def percentile_interval(values, confidence=0.95):
    """Percentile interval of bootstrap values: from the lower to the upper tail quantile.

    Arguments
    ---------
    values : array_like
        The statistic on every resample.
    confidence : float
        Coverage of the interval (0.95: the 2.5th to the 97.5th percentile).

    Returns
    -------
    tuple of float
        ``(low, high)``.

    Example
    -------
    >>> percentile_interval(np.arange(101), confidence=0.5)
    (25.0, 75.0)
    """
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(values, [tail, 1.0 - tail])
    return float(low), float(high)


def bootstrap_intervals(
    scores_by_system,
    labels,
    enrol_speakers,
    test_speakers,
    reference=None,
    n_resamples=1000,
    confidence=0.95,
    p_target=0.01,
    seed=1234,
    also_paired_with=(),
):
    """EER (%) and minDCF of every system with percentile intervals, paired across systems.

    All systems are evaluated on the same B resamples of the test speakers (see
    :func:`speaker_bootstrap_weights`). When ``reference`` names one of the systems,
    the difference ``system - reference`` of every other system is computed resample
    by resample, with its interval and whether that interval excludes 0.

    Arguments
    ---------
    scores_by_system : dict
        System name -> (N,) scores, all on the same trial list.
    labels : array_like
        (N,) 1 for target trials, 0 for non-target trials; must agree with the
        speakers (1 exactly when enrolment and test speaker are the same).
    enrol_speakers : array_like
        (N,) speaker of the enrolment side of every trial.
    test_speakers : array_like
        (N,) speaker of the test side of every trial.
    reference : str, optional
        Name of the system that the others are compared with.
    n_resamples : int
        Number of bootstrap resamples B.
    confidence : float
        Coverage of the percentile intervals (0.95: from the 2.5th to the 97.5th
        percentile).
    p_target : float
        Target prior of the (normalised) minimum detection cost.
    seed : int
        Seed of the resampling; the same seed gives the same intervals.
    also_paired_with : sequence of str
        More systems that every other one is compared with on the same resamples;
        their differences go to ``"<name>_differences"`` (same entries as
        ``differences``). Names absent from ``scores_by_system`` are skipped.

    Returns
    -------
    dict
        JSON-serialisable (plain floats, ints and bools)::

            {system: {"EER", "EER_low", "EER_high", "minDCF", "minDCF_low", "minDCF_high"},
             "differences": {system: {"reference", "EER", "EER_low", "EER_high",
                                      "EER_significant", "minDCF", "minDCF_low",
                                      "minDCF_high", "minDCF_significant"}},
             "n_resamples", "confidence", "n_speakers", "dropped_resamples"}

        ``EER`` and ``minDCF`` are the values on all trials (EER in %),
        ``*_low``/``*_high`` the interval bounds over the kept resamples,
        ``differences`` is empty without ``reference``, and ``dropped_resamples``
        counts the resamples without target or non-target trials, which are left out.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> speakers = np.arange(20)
    >>> enrol, test = np.meshgrid(speakers, speakers, indexing="ij")
    >>> enrol, test = enrol.ravel(), test.ravel()
    >>> labels = (enrol == test).astype(int)
    >>> base = rng.normal(size=labels.size) + 2 * labels
    >>> systems = {"base": base, "better": base + 1.5 * labels, "same": base.copy()}
    >>> out = bootstrap_intervals(systems, labels, enrol, test, reference="base", n_resamples=200)
    >>> out["base"]["EER_low"] <= out["base"]["EER"] <= out["base"]["EER_high"]
    True
    >>> out["differences"]["better"]["EER_significant"], out["differences"]["same"]["EER_high"]
    (True, 0.0)
    """
    if not isinstance(scores_by_system, dict) or not scores_by_system:
        raise ValueError("scores_by_system must be a non-empty dict: system name -> scores")
    clashes = [name for name in scores_by_system if name in _RESERVED_KEYS]
    if clashes:
        raise ValueError(f"system names {clashes} clash with keys of the result")
    if reference is not None and reference not in scores_by_system:
        raise ValueError(f"reference {reference!r} is not one of {list(scores_by_system)}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence={confidence} must lie strictly between 0 and 1")
    labels = np.asarray(labels).ravel()
    resampled, n_speakers, n_resamples, n_kept = _resampled_metrics(
        scores_by_system, labels, enrol_speakers, test_speakers, n_resamples, p_target, seed
    )

    result = {}
    for name, scores in scores_by_system.items():
        entry = {
            "EER": 100.0 * compute_eer(scores, labels),
            "minDCF": compute_min_dcf(scores, labels, p_target=p_target),
        }
        for metric in ("EER", "minDCF"):
            entry[f"{metric}_low"], entry[f"{metric}_high"] = percentile_interval(
                resampled[name][metric], confidence
            )
        result[name] = {key: entry[key] for key in _ENTRY_ORDER}

    result["differences"] = (
        {} if reference is None else _paired_differences(result, resampled, reference, confidence)
    )
    for other in also_paired_with:
        if other in scores_by_system:
            result[f"{other}_differences"] = _paired_differences(
                result, resampled, other, confidence
            )
    result["n_resamples"] = int(n_resamples)
    result["confidence"] = float(confidence)
    result["n_speakers"] = int(n_speakers)
    result["dropped_resamples"] = int(n_resamples - n_kept)
    return result


def _resampled_metrics(
    scores_by_system, labels, enrol_speakers, test_speakers, n_resamples, p_target, seed
):
    """EER (%) and minDCF of every system on every kept speaker resample.

    Returns ``(resampled, n_speakers, n_resamples, n_kept)`` with ``resampled[name]``
    holding ``"EER"`` and ``"minDCF"`` arrays over the kept resamples.
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target={p_target} must lie strictly between 0 and 1")
    enrol_idx, test_idx, n_speakers = _speaker_indices(enrol_speakers, test_speakers)
    labels = np.asarray(labels).ravel()
    if labels.size != enrol_idx.size:
        raise ValueError(f"{labels.size} labels but {enrol_idx.size} trials with speakers")
    mismatch = np.flatnonzero(labels.astype(bool) != (enrol_idx == test_idx))
    if mismatch.size:
        raise ValueError(
            f"trial {int(mismatch[0])} is labelled {labels[mismatch[0]]} but its speakers say "
            "otherwise: a target trial (1) has the same speaker on both sides"
        )
    sorted_trials = {
        name: _sort_trials(scores, labels) for name, scores in scores_by_system.items()
    }

    counts = _speaker_counts(n_speakers, n_resamples, seed)
    n_resamples, n_trials = counts.shape[0], labels.size
    eer = {name: np.empty(n_resamples) for name in scores_by_system}
    min_dcf = {name: np.empty(n_resamples) for name in scores_by_system}
    chunk = max(1, _CHUNK_ELEMENTS // n_trials)
    for start in range(0, n_resamples, chunk):
        block = slice(start, start + chunk)
        weights = _trial_weights(counts[block], enrol_idx, test_idx)
        for name, trials in sorted_trials.items():
            frr, far, reached = _rates(trials, weights)
            eer[name][block] = _eer_from_rates(frr, far, reached)
            min_dcf[name][block] = _min_dcf_from_rates(frr, far, reached, p_target, 1.0, 1.0, True)
    kept = np.logical_and.reduce(
        [np.isfinite(eer[name]) & np.isfinite(min_dcf[name]) for name in scores_by_system]
    )
    if not kept.any():
        raise ValueError("no resample has both target and non-target trials: too few test speakers")
    resampled = {
        name: {"EER": 100.0 * eer[name][kept], "minDCF": min_dcf[name][kept]}
        for name in scores_by_system
    }

    return resampled, n_speakers, n_resamples, int(kept.sum())


def seed_averaged_differences(
    scores_by_seed,
    labels,
    enrol_speakers,
    test_speakers,
    reference,
    n_resamples=1000,
    confidence=0.95,
    p_target=0.01,
    seed=1234,
):
    """Differences to ``reference`` averaged over seeds, paired on the same speaker resamples.

    Every seed trained the same systems (e.g. six losses on one pseudo-label set) and
    scored them on the same trial list. On every bootstrap resample of the test
    speakers, each system's EER (and minDCF) minus the reference's is computed per
    seed and averaged over the seeds; the interval is the percentile interval of that
    average. The average removes much of the training noise, the pairing removes the
    speaker effect, and the spread over seeds is reported beside it (``*_seed_std``:
    the standard deviation of the per-seed differences on the full list).

    Arguments
    ---------
    scores_by_seed : dict
        Seed -> {system name -> (N,) scores}; every seed with the same systems.
    labels : array_like
        (N,) 1 for target trials, 0 for non-target trials.
    enrol_speakers : array_like
        (N,) speaker of the enrolment side of every trial.
    test_speakers : array_like
        (N,) speaker of the test side of every trial.
    reference : str
        The system the others are compared with.
    n_resamples : int
        Number of bootstrap resamples of the test speakers.
    confidence : float
        Coverage of the percentile intervals.
    p_target : float
        Target prior of the (normalised) minimum detection cost.
    seed : int
        Seed of the resampling.

    Returns
    -------
    dict
        System -> {"EER", "EER_low", "EER_high", "EER_significant", "EER_seed_std",
        and the same for minDCF}, for every system but the reference; ``EER`` is the
        mean over seeds of the difference on the full list (in % points).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> enrol, test = np.meshgrid(np.arange(20), np.arange(20), indexing="ij")
    >>> enrol, test = enrol.ravel(), test.ravel()
    >>> labels = (enrol == test).astype(int)
    >>> def run(shift):
    ...     base = rng.normal(size=labels.size) + 2 * labels
    ...     return {"base": base, "better": base + shift * labels}
    >>> runs = {1: run(1.5), 2: run(1.0)}
    >>> out = seed_averaged_differences(runs, labels, enrol, test, "base", n_resamples=200)
    >>> out["better"]["EER"] < 0, out["better"]["EER_significant"]
    (True, True)
    """
    systems = set(next(iter(scores_by_seed.values())))
    if reference not in systems:
        raise ValueError(f"reference {reference!r} is not one of {sorted(systems)}")
    uneven = {s: sorted(v) for s, v in scores_by_seed.items() if set(v) != systems}
    if uneven:
        raise ValueError(f"every seed must score the systems {sorted(systems)}; got {uneven}")
    labels = np.asarray(labels).ravel()
    flat = {
        (s, name): scores
        for s, by_name in scores_by_seed.items()
        for name, scores in by_name.items()
    }
    resampled, *_ = _resampled_metrics(
        flat, labels, enrol_speakers, test_speakers, n_resamples, p_target, seed
    )
    full = {
        key: {
            "EER": 100.0 * compute_eer(scores, labels),
            "minDCF": compute_min_dcf(scores, labels, p_target=p_target),
        }
        for key, scores in flat.items()
    }
    differences = {}
    for name in sorted(systems - {reference}):
        entry = {}
        for metric in ("EER", "minDCF"):
            per_seed = [full[s, name][metric] - full[s, reference][metric] for s in scores_by_seed]
            averaged = np.mean(
                [
                    resampled[s, name][metric] - resampled[s, reference][metric]
                    for s in scores_by_seed
                ],
                axis=0,
            )
            low, high = percentile_interval(averaged, confidence)
            entry[metric] = float(np.mean(per_seed))
            entry[f"{metric}_low"], entry[f"{metric}_high"] = low, high
            entry[f"{metric}_significant"] = bool(low > 0.0 or high < 0.0)
            entry[f"{metric}_seed_std"] = (
                float(np.std(per_seed, ddof=1)) if len(per_seed) > 1 else 0.0
            )
        differences[name] = entry
    return differences


def _paired_differences(result, resampled, reference, confidence):
    """Every other system minus ``reference``, with its interval over the same resamples."""
    differences = {}
    for name in resampled:
        if name == reference:
            continue
        entry = {"reference": reference}
        for metric in ("EER", "minDCF"):
            entry[metric] = float(result[name][metric] - result[reference][metric])
            low, high = percentile_interval(
                resampled[name][metric] - resampled[reference][metric], confidence
            )
            entry[f"{metric}_low"], entry[f"{metric}_high"] = low, high
            entry[f"{metric}_significant"] = bool(low > 0.0 or high < 0.0)
        differences[name] = entry
    return differences


def format_interval(value, low, high, digits=1, signed=False):
    """Format a value with its interval, as in ``21.1 [17.8, 23.9]``.

    Arguments
    ---------
    value : float
        The point estimate.
    low : float
        Lower bound of the interval.
    high : float
        Upper bound of the interval.
    digits : int
        Digits after the decimal point.
    signed : bool
        Write an explicit ``+`` on positive numbers, for differences.

    Returns
    -------
    str
        ``"value [low, high]"``, or ``"value [no interval]"`` when a bound is missing
        (None or not finite).

    Example
    -------
    >>> format_interval(21.13, 17.77, 23.91)
    '21.1 [17.8, 23.9]'
    >>> format_interval(5.0, 1.25, 8.8, digits=2, signed=True)
    '+5.00 [+1.25, +8.80]'
    >>> format_interval(21.9, float("nan"), float("nan"))
    '21.9 [no interval]'
    """
    spec = f"{'+' if signed else ''}.{int(digits)}f"
    if low is None or high is None or not np.isfinite([low, high]).all():
        return f"{value:{spec}} [no interval]"
    return f"{value:{spec}} [{low:{spec}}, {high:{spec}}]"


def format_difference(value, low, high, significant, digits=1):
    """Format a paired difference with its interval and a star when it is significant.

    Arguments
    ---------
    value : float or None
        The difference; ``None`` (no difference computed) gives ``"–"``.
    low : float
        Lower bound of its interval.
    high : float
        Upper bound of its interval.
    significant : bool
        Whether the interval excludes 0 (a `` *`` is appended).
    digits : int
        Digits after the decimal point.

    Returns
    -------
    str
        ``"+d [low, high]"``, then `` *`` when significant.

    Example
    -------
    >>> format_difference(2.0, 0.5, 3.5, True)
    '+2.0 [+0.5, +3.5] *'
    >>> format_difference(-0.01, -0.1, 0.1, False, digits=3)
    '-0.010 [-0.100, +0.100]'
    >>> format_difference(None, None, None, None)
    '–'
    """
    if value is None:
        return "–"
    star = " *" if significant else ""
    return format_interval(value, low, high, digits, signed=True) + star
