"""Named, nested random streams, so each part of the corpus depends only on its own seed.

Every random draw of the generator comes from ``rng_for(seed, purpose, *ids)``: the
stream of one utterance is keyed by (seed, purpose, speaker, session, utterance) and
never by the order in which things are generated. This is what makes the corpus
byte-identical whatever the number of worker processes, and lets a resumed run
produce exactly the files an uninterrupted run would have.

Authors
 * camsat contributors 2026
"""

import zlib

import numpy as np

__all__ = ["rng_for"]


def rng_for(seed, purpose, *ids):
    """Return a generator for one named purpose and one tuple of integer ids.

    Arguments
    ---------
    seed : int
        The corpus seed.
    purpose : str
        What the stream is for (``"voice"``, ``"channel"``, ``"noise"``, ...); distinct
        purposes give independent streams for the same ids.
    *ids : int
        Non-negative integers locating the item (speaker, session, utterance indices).

    Returns
    -------
    numpy.random.Generator
        A PCG64 generator seeded from all of the above.

    Example
    -------
    >>> a = rng_for(7, "noise", 1, 2).integers(1000)
    >>> b = rng_for(7, "noise", 1, 2).integers(1000)
    >>> c = rng_for(7, "noise", 1, 3).integers(1000)
    >>> bool(a == b), bool(a == c)
    (True, False)
    """
    if any(int(i) < 0 for i in ids):
        raise ValueError(f"rng_for ids must be non-negative integers, got {ids!r}")
    tag = zlib.crc32(purpose.encode("utf-8"))
    return np.random.default_rng(np.random.SeedSequence([int(seed), tag, *map(int, ids)]))
