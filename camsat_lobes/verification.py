"""Verification metrics: EER and minDCF over (optionally weighted) trials.

Both metrics share one pass over the sorted scores, so a list of millions of trials
costs one ``argsort``. The operating points are those of
``speechbrain.utils.metric_stats``: for every distinct score ``u`` a trial is
rejected when its score is ``<= u``. The EER is ``(FAR + FRR) / 2`` at the point
where the two rates are closest, and the minimum detection cost is taken over the
same points, so the values equal SpeechBrain's (tested) at a fraction of the cost.

The metrics also take per-trial weights, one weighting (N,) or B of them at once
(B, N): a trial then counts as many times as its weight, still with one sort. This
is how :mod:`camsat_lobes.bootstrap` evaluates speaker resamples of a trial list.

Authors
 * camsat contributors 2026
"""

import numpy as np

__all__ = [
    "compute_eer",
    "compute_min_dcf",
    "eer_threshold",
    "error_rates",
]


def _as_trial_arrays(scores, labels):
    scores = np.asarray(scores, dtype=np.float64).ravel()
    labels = np.asarray(labels).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels: give one label per trial")
    if not np.isfinite(scores).all():
        bad = int(np.flatnonzero(~np.isfinite(scores))[0])
        raise ValueError(f"score of trial {bad} is {scores[bad]}: scores must be finite")
    if not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 1 (target) or 0 (non-target)")
    labels = labels.astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("the trial list needs both target (1) and non-target (0) trials")
    return scores, labels


def _as_weights(weights, n_trials):
    """Check per-trial weights: ``None``, (N,) or (B, N), finite and non-negative."""
    if weights is None:
        return None
    weights = np.asarray(weights, dtype=np.float64)
    if weights.ndim not in (1, 2) or weights.shape[-1] != n_trials:
        raise ValueError(
            f"weights of shape {weights.shape} for {n_trials} trials: give ({n_trials},) "
            f"or (B, {n_trials})"
        )
    if not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be finite and non-negative")
    return weights


def _sort_trials(scores, labels):
    """Sort a checked trial list once.

    Returns, in ascending score order, the positions of the target trials and of the
    non-target trials, the number of target and of non-target trials at or below
    every distinct score, and the distinct scores (the M thresholds).
    """
    scores, labels = _as_trial_arrays(scores, labels)
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last_of_tie = np.r_[sorted_scores[1:] != sorted_scores[:-1], True]
    return (
        order[sorted_labels],
        order[~sorted_labels],
        np.cumsum(sorted_labels)[last_of_tie],
        np.cumsum(~sorted_labels)[last_of_tie],
        sorted_scores[last_of_tie],
    )


def _cumulative_weight(weights, positions, count_at_or_below):
    """Weight of the first ``count_at_or_below`` trials of ``positions``, per threshold."""
    selected = np.take(weights, positions, axis=-1)
    cumulative = np.zeros(selected.shape[:-1] + (selected.shape[-1] + 1,))
    np.cumsum(selected, axis=-1, out=cumulative[..., 1:])
    return np.take(cumulative, count_at_or_below, axis=-1)


def _rates(sorted_trials, weights=None):
    """FRR and FAR at every threshold of a trial list sorted by :func:`_sort_trials`.

    ``weights`` is ``None`` or checked (N,) or (B, N) weights in the original trial
    order. Also returns ``reached``: whether any weight lies at or below each
    threshold. The thresholds below the first weighted trial reject nothing (FRR 0,
    FAR 1), an operating point that the unweighted list does not have, so the
    metrics skip them. Rows with no target or no non-target weight get NaN rates.
    Only target (non-target) weights are summed for the FRR (FAR): the sums equal
    those of the full list with the other class weighted 0, exactly.
    """
    targets, nontargets, targets_at_or_below, nontargets_at_or_below, _ = sorted_trials
    if weights is None:
        frr = targets_at_or_below / targets.size
        far = 1.0 - nontargets_at_or_below / nontargets.size
        return frr, far, np.ones(frr.shape, dtype=bool)
    target_weight = _cumulative_weight(weights, targets, targets_at_or_below)
    nontarget_weight = _cumulative_weight(weights, nontargets, nontargets_at_or_below)
    with np.errstate(divide="ignore", invalid="ignore"):
        frr = target_weight / target_weight[..., -1:]
        far = 1.0 - nontarget_weight / nontarget_weight[..., -1:]
    return frr, far, (target_weight + nontarget_weight) > 0


def _undefined(frr, far):
    """Rows of rates without target or non-target weight (their last rates are NaN)."""
    return np.isnan(frr[..., -1]) | np.isnan(far[..., -1])


def _eer_from_rates(frr, far, reached):
    """EER of each row of rates, over the thresholds in ``reached``; NaN for NaN rows."""
    gap = np.where(reached, np.abs(far - frr), np.inf)
    closest = np.expand_dims(np.argmin(gap, axis=-1), -1)
    eer = (np.take_along_axis(far, closest, -1) + np.take_along_axis(frr, closest, -1)) / 2
    return np.where(_undefined(frr, far), np.nan, eer[..., 0])


def _min_dcf_from_rates(frr, far, reached, p_target, c_miss, c_fa, normalize):
    """Minimum detection cost of each row of rates, over ``reached``; NaN for NaN rows."""
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target={p_target} must lie strictly between 0 and 1")
    cost = c_miss * frr * p_target + c_fa * far * (1.0 - p_target)
    min_cost = np.where(reached, cost, np.inf).min(axis=-1)
    min_cost = np.where(_undefined(frr, far), np.nan, min_cost)
    if normalize:
        min_cost = min_cost / min(c_miss * p_target, c_fa * (1.0 - p_target))
    return min_cost


def _weighted_rates(scores, labels, weights):
    sorted_trials = _sort_trials(scores, labels)
    n_trials = sorted_trials[0].size + sorted_trials[1].size
    frr, far, reached = _rates(sorted_trials, _as_weights(weights, n_trials))
    return frr, far, reached, sorted_trials[-1]


def _as_result(values):
    """Turn a 0-d result into a plain float; a batch of B results stays an array."""
    return float(values) if np.ndim(values) == 0 else values


def error_rates(scores, labels, weights=None):
    """Return the false-rejection and false-acceptance rates at every distinct score.

    With ``weights``, a trial counts as many times as its weight: integer weights
    give exactly the rates of the list with every trial repeated that many times,
    and a weight of 0 removes the trial (its score stays a threshold).

    Arguments
    ---------
    scores : array_like
        One score per trial (higher means more likely the same speaker).
    labels : array_like
        One label per trial: 1 for a target trial, 0 for a non-target trial.
    weights : array_like, optional
        Non-negative weight of every trial, (N,), or (B, N) for B weightings at once.
        ``None`` counts every trial once.

    Returns
    -------
    frr : numpy.ndarray
        Fraction of target trials (of target weight) with a score ``<=`` each
        threshold: (M,), or (B, M) with (B, N) weights.
    far : numpy.ndarray
        Fraction of non-target trials (of non-target weight) with a score ``>``
        each threshold, shaped like ``frr``. A weighting whose target or non-target
        weights sum to 0 gets NaN rates in its row.
    thresholds : numpy.ndarray
        The M distinct scores, ascending.

    Example
    -------
    >>> frr, far, thr = error_rates([0.9, 0.2, 0.8, 0.1], [1, 0, 1, 0])
    >>> frr.tolist(), far.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 0.0, 0.0])
    >>> frr, far, thr = error_rates([0.9, 0.2, 0.8, 0.1], [1, 0, 1, 0], weights=[1, 0, 3, 1])
    >>> frr.tolist(), far.tolist()
    ([0.0, 0.0, 0.75, 1.0], [0.0, 0.0, 0.0, 0.0])
    """
    frr, far, _, thresholds = _weighted_rates(scores, labels, weights)
    return frr, far, thresholds


def compute_eer(scores, labels, weights=None):
    """Equal error rate of a list of trials, as a fraction.

    Arguments
    ---------
    scores : array_like
        One score per trial.
    labels : array_like
        1 for target trials, 0 for non-target trials.
    weights : array_like, optional
        Non-negative weight of every trial, (N,), or (B, N) for B weightings at once
        (see :func:`error_rates`). Only thresholds with some weight at or below them
        are operating points, so integer weights give exactly the EER of the list
        with every trial repeated that many times.

    Returns
    -------
    float or numpy.ndarray
        ``(FAR + FRR) / 2`` where the two rates are closest (0.05 means 5 %); a
        (B,) array with (B, N) weights. NaN for a weighting whose target or
        non-target weights sum to 0.

    Example
    -------
    >>> round(compute_eer([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0]), 4)
    0.3333
    >>> weights = [[1, 1, 1, 1, 1, 1], [1, 1, 0, 1, 1, 1], [0, 0, 0, 1, 1, 1]]
    >>> compute_eer([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0], weights).round(4)
    array([0.3333, 0.    ,    nan])
    """
    frr, far, reached, _ = _weighted_rates(scores, labels, weights)
    return _as_result(_eer_from_rates(frr, far, reached))


def eer_threshold(scores, labels):
    """Return the decision threshold at the equal-error operating point of a trial list.

    A trial is accepted (same speaker) when its score is above the threshold, so the
    rates at this threshold are those :func:`compute_eer` averages.

    Arguments
    ---------
    scores : array_like
        One score per trial.
    labels : array_like
        1 for target trials, 0 for non-target trials.

    Returns
    -------
    float
        The threshold: accept a trial when ``score > threshold``.

    Example
    -------
    >>> eer_threshold([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0])
    0.3
    """
    frr, far, thresholds = error_rates(scores, labels)
    return float(thresholds[np.argmin(np.abs(far - frr))])


def compute_min_dcf(
    scores, labels, p_target=0.01, c_miss=1.0, c_fa=1.0, normalize=True, weights=None
):
    """Minimum detection cost of a list of trials.

    Arguments
    ---------
    scores : array_like
        One score per trial.
    labels : array_like
        1 for target trials, 0 for non-target trials.
    p_target : float
        Prior probability of a target trial (0.01 and 0.05 are the VoxCeleb choices).
    c_miss : float
        Cost of a missed target.
    c_fa : float
        Cost of a false alarm.
    normalize : bool
        Divide by the cost of the best trivial system, ``min(c_miss * p_target,
        c_fa * (1 - p_target))``, as papers report it. ``False`` gives SpeechBrain's
        un-normalised value.
    weights : array_like, optional
        Non-negative weight of every trial, (N,), or (B, N) for B weightings at once,
        with the operating points of :func:`compute_eer`.

    Returns
    -------
    float or numpy.ndarray
        The minimum over thresholds of ``c_miss * FRR * p_target + c_fa * FAR * (1 - p_target)``;
        a (B,) array with (B, N) weights. NaN for a weighting whose target or
        non-target weights sum to 0.

    Example
    -------
    >>> scores, labels = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0]
    >>> round(compute_min_dcf(scores, labels, p_target=0.5), 4)
    0.3333
    >>> round(compute_min_dcf(scores, labels, p_target=0.5, weights=[1, 1, 1, 1, 2, 1]), 4)
    0.25
    """
    frr, far, reached, _ = _weighted_rates(scores, labels, weights)
    return _as_result(_min_dcf_from_rates(frr, far, reached, p_target, c_miss, c_fa, normalize))
