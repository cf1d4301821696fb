"""Schedules of self-supervised training, as functions of the fraction done.

:func:`learning_rate` warms the rate up linearly, then decays it along
:func:`cosine_schedule`, which DINO also follows for its teacher momentum.

Authors
 * camsat contributors 2026
"""

import math


def cosine_schedule(progress, start, end):
    """Cosine interpolation from ``start`` (progress 0) to ``end`` (progress 1).

    Arguments
    ---------
    progress : float
        Fraction of the way done (clipped to [0, 1]).
    start, end : float
        Values at progress 0 and 1.

    Returns
    -------
    float

    Example
    -------
    >>> [cosine_schedule(p, 1.0, 0.0) for p in (0.0, 0.5, 1.0)]
    [1.0, 0.5, 0.0]
    """
    progress = min(max(progress, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


def learning_rate(progress, peak, final, warmup_fraction):
    """Learning rate at a point of the training: linear warm-up, then cosine decay.

    During the first ``warmup_fraction`` of the training the rate rises linearly from
    ``peak / 1000`` to about ``peak``; it then falls from ``peak`` to ``final`` along
    :func:`cosine_schedule`.

    Arguments
    ---------
    progress : float
        Fraction of the training done (0 at the first step, 1 at the last).
    peak : float
        Rate at the end of the warm-up.
    final : float
        Rate at the end of the training.
    warmup_fraction : float
        Fraction of the training spent warming up (0 for none).

    Returns
    -------
    float

    Example
    -------
    >>> [round(learning_rate(p, 1.0, 0.0, 0.5), 3) for p in (0.0, 0.25, 0.5, 1.0)]
    [0.001, 0.501, 1.0, 0.0]
    """
    if progress < warmup_fraction:
        return peak * (progress / warmup_fraction + 1e-3)
    return cosine_schedule(
        (progress - warmup_fraction) / max(1 - warmup_fraction, 1e-8), peak, final
    )
