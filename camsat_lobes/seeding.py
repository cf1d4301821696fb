"""Seeds derived from names, so each part of a run draws from its own random stream.

A run that trains several speaker networks in one process must not let one network's
randomness depend on what ran before it (stage 1, another system, or nothing at all
after a resume). Every part seeds the global generators from
``derive_seed(seed, part, ...)`` before it draws, so its draws depend only on the run's
seed and its own name.

Authors
 * camsat contributors 2026
"""

import zlib

import numpy as np
from speechbrain.utils.seed import seed_everything

__all__ = ["derive_seed", "seed_part"]


def derive_seed(seed, *keys):
    """Return a 31-bit seed derived from ``seed`` and a tuple of names or integers.

    Arguments
    ---------
    seed : int
        The run's seed.
    *keys : str or int
        What the seed is for, e.g. ``("speaker", "camsat", 1)``; strings are hashed
        (CRC-32), integers used as they are (non-negative).

    Returns
    -------
    int
        A seed in ``[0, 2**31)``; the same keys always give the same seed.

    Example
    -------
    >>> derive_seed(1234, "speaker", "camsat", 1) == derive_seed(1234, "speaker", "camsat", 1)
    True
    >>> derive_seed(1234, "speaker", "camsat", 1) == derive_seed(1234, "speaker", "kmeans", 1)
    False
    """
    words = [zlib.crc32(k.encode("utf-8")) if isinstance(k, str) else int(k) for k in keys]
    if any(w < 0 for w in words):
        raise ValueError(f"derive_seed keys must be strings or non-negative integers: {keys!r}")
    state = np.random.SeedSequence([int(seed), *words]).generate_state(1)[0]
    return int(state) & 0x7FFFFFFF


def seed_part(seed, *keys):
    """Seed Python's, NumPy's and torch's global generators for one named part of a run.

    Arguments
    ---------
    seed : int
        The run's seed.
    *keys : str or int
        The part's name (see :func:`derive_seed`).

    Returns
    -------
    int
        The derived seed that was set.

    Example
    -------
    >>> import torch
    >>> _ = seed_part(1234, "demo")
    >>> first = torch.rand(1)
    >>> _ = seed_part(1234, "demo")
    >>> bool(torch.rand(1) == first)
    True
    """
    return seed_everything(derive_seed(seed, *keys), verbose=False)
