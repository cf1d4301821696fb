"""Verification scoring and metrics: cosine scores, adaptive s-norm, EER and minDCF.

Both metrics share one pass over the sorted scores, so a list of millions of trials
costs one ``argsort``. The operating points are those of
``speechbrain.utils.metric_stats``: for every distinct score ``u`` a trial is
rejected when its score is ``<= u``. The EER is ``(FAR + FRR) / 2`` at the point
where the two rates are closest, and the minimum detection cost is taken over the
same points, so the values equal SpeechBrain's (tested) at a fraction of the cost.
"""

import numpy as np

__all__ = [
    "adaptive_snorm",
    "compute_eer",
    "compute_min_dcf",
    "cosine_score",
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


def error_rates(scores, labels):
    """Return the false-rejection and false-acceptance rates at every distinct score.

    Arguments
    ---------
    scores : array_like
        One score per trial (higher means more likely the same speaker).
    labels : array_like
        One label per trial: 1 for a target trial, 0 for a non-target trial.

    Returns
    -------
    frr : numpy.ndarray
        Fraction of target trials with a score ``<=`` each threshold.
    far : numpy.ndarray
        Fraction of non-target trials with a score ``>`` each threshold.
    thresholds : numpy.ndarray
        The distinct scores, ascending.

    Example
    -------
    >>> frr, far, thr = error_rates([0.9, 0.2, 0.8, 0.1], [1, 0, 1, 0])
    >>> frr.tolist(), far.tolist()
    ([0.0, 0.0, 0.5, 1.0], [0.5, 0.0, 0.0, 0.0])
    """
    scores, labels = _as_trial_arrays(scores, labels)
    order = np.argsort(scores, kind="stable")
    scores, labels = scores[order], labels[order]
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]
    targets_at_or_below = np.cumsum(labels)[last_of_tie]
    nontargets_at_or_below = np.cumsum(~labels)[last_of_tie]
    n_target, n_nontarget = labels.sum(), (~labels).sum()
    frr = targets_at_or_below / n_target
    far = 1.0 - nontargets_at_or_below / n_nontarget
    return frr, far, scores[last_of_tie]


def compute_eer(scores, labels):
    """Equal error rate of a list of trials, as a fraction.

    Arguments
    ---------
    scores : array_like
        One score per trial.
    labels : array_like
        1 for target trials, 0 for non-target trials.

    Returns
    -------
    float
        ``(FAR + FRR) / 2`` where the two rates are closest (0.05 means 5 %).

    Example
    -------
    >>> round(compute_eer([0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0]), 4)
    0.3333
    """
    frr, far, _ = error_rates(scores, labels)
    closest = np.argmin(np.abs(far - frr))
    return float((far[closest] + frr[closest]) / 2)


def compute_min_dcf(scores, labels, p_target=0.01, c_miss=1.0, c_fa=1.0, normalize=True):
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

    Returns
    -------
    float
        The minimum over thresholds of ``c_miss * FRR * p_target + c_fa * FAR * (1 - p_target)``.

    Example
    -------
    >>> scores, labels = [0.9, 0.8, 0.3, 0.7, 0.2, 0.1], [1, 1, 1, 0, 0, 0]
    >>> round(compute_min_dcf(scores, labels, p_target=0.5), 4)
    0.3333
    """
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target={p_target} must lie strictly between 0 and 1")
    frr, far, _ = error_rates(scores, labels)
    cost = c_miss * frr * p_target + c_fa * far * (1.0 - p_target)
    min_cost = float(cost.min())
    if normalize:
        min_cost /= min(c_miss * p_target, c_fa * (1.0 - p_target))
    return min_cost


def _unit_rows(x):
    x = np.asarray(x, dtype=np.float64)
    norms = np.linalg.norm(x, axis=-1, keepdims=True)
    if (norms == 0).any():
        raise ValueError("an embedding has zero norm: its cosine score is undefined")
    return x / norms


def cosine_score(enrol, test, mean=None):
    """Cosine similarity of paired embeddings, optionally after subtracting a mean.

    Arguments
    ---------
    enrol : array_like
        (N, D) enrolment embeddings.
    test : array_like
        (N, D) test embeddings, paired row by row with ``enrol``.
    mean : array_like, optional
        (D,) vector subtracted from both sides first, usually the mean training
        embedding (it removes the direction shared by all speakers).

    Returns
    -------
    numpy.ndarray
        (N,) cosine scores.

    Example
    -------
    >>> cosine_score([[1.0, 0.0], [1.0, 1.0]], [[2.0, 0.0], [-1.0, -1.0]]).round(6).tolist()
    [1.0, -1.0]
    """
    enrol, test = np.asarray(enrol, dtype=np.float64), np.asarray(test, dtype=np.float64)
    if enrol.shape != test.shape or enrol.ndim != 2:
        raise ValueError(f"enrol {enrol.shape} and test {test.shape} must both be (N, D)")
    if mean is not None:
        enrol, test = enrol - mean, test - mean
    return np.einsum("nd,nd->n", _unit_rows(enrol), _unit_rows(test))


def adaptive_snorm(scores, enrol, test, cohort, top_k=200, mean=None):
    """Adaptive symmetric score normalisation (AS-norm) with a cohort of embeddings.

    Each side of a trial is scored against the cohort; the ``top_k`` highest cohort
    scores give that side's mean and standard deviation, and the normalised score is
    ``((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2``.

    Arguments
    ---------
    scores : array_like
        (N,) raw cosine scores of the trials.
    enrol : array_like
        (N, D) enrolment embeddings of the trials.
    test : array_like
        (N, D) test embeddings of the trials.
    cohort : array_like
        (C, D) cohort embeddings, usually from the training set (one per speaker or
        per pseudo-class).
    top_k : int
        How many of the closest cohort scores define each side's statistics.
    mean : array_like, optional
        Mean subtracted from every embedding first, as in :func:`cosine_score`.

    Returns
    -------
    numpy.ndarray
        (N,) normalised scores.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> enrol, test = rng.normal(size=(4, 8)), rng.normal(size=(4, 8))
    >>> cohort = rng.normal(size=(50, 8))
    >>> adaptive_snorm(cosine_score(enrol, test), enrol, test, cohort, top_k=10).shape
    (4,)
    """
    cohort = np.asarray(cohort, dtype=np.float64)
    if mean is not None:
        enrol, test, cohort = np.asarray(enrol) - mean, np.asarray(test) - mean, cohort - mean
    top_k = min(top_k, len(cohort))
    if top_k < 2:
        raise ValueError("adaptive s-norm needs a cohort of at least 2 embeddings")
    cohort = _unit_rows(cohort)

    def side_statistics(side):
        best = -np.partition(-(_unit_rows(side) @ cohort.T), top_k - 1, axis=1)[:, :top_k]
        return best.mean(axis=1), best.std(axis=1) + 1e-8

    mu_e, sigma_e = side_statistics(enrol)
    mu_t, sigma_t = side_statistics(test)
    scores = np.asarray(scores, dtype=np.float64)
    return 0.5 * ((scores - mu_e) / sigma_e + (scores - mu_t) / sigma_t)
