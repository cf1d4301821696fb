"""Input checks shared by the clusterers and the metrics.

Every check raises a :class:`ValueError` (or :class:`TypeError` for a wrong
type) whose message names the argument, what is wrong with it and how to fix
it. Nothing is dropped or repaired silently.

Authors
 * camsat contributors 2026
"""

import numpy as np

__all__ = [
    "check_embeddings",
    "check_views",
    "check_labels",
    "check_n_clusters",
    "check_distinct_points",
    "check_batch_size",
    "check_views_per_step",
]

#: Rows hashed at a time when counting distinct points (bounds the memory used).
_HASH_BLOCK_ROWS = 65536


def _first_bad_row(array):
    """Return ``(row, kind)`` for the first row holding NaN or inf, else ``None``."""
    flat = array.reshape(array.shape[0], -1)
    finite = np.isfinite(flat).all(axis=1)
    if finite.all():
        return None
    row = int(np.flatnonzero(~finite)[0])
    kind = "NaN" if np.isnan(flat[row]).any() else "inf"
    return row, kind


def check_embeddings(embeddings, name="embeddings"):
    """Check an N×D matrix of embeddings and return it as C-contiguous float32.

    Arguments
    ---------
    embeddings : array_like
        Real-valued matrix, one row per point.
    name : str
        Name used in error messages (for example the file it came from).

    Returns
    -------
    numpy.ndarray
        The embeddings as a C-contiguous float32 array (a copy only when needed).

    Raises
    ------
    TypeError
        When the array is not of a floating-point type.
    ValueError
        When it is not 2-D, is empty, or a row contains NaN or inf.

    Example
    -------
    >>> check_embeddings(np.ones((3, 2))).dtype
    dtype('float32')
    >>> check_embeddings(np.array([[0.0, 1.0], [np.nan, 0.0]]))
    Traceback (most recent call last):
    ...
    ValueError: embeddings row 1 contains NaN; remove or repair that row before clustering
    """
    array = np.asarray(embeddings)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array, got dtype {array.dtype}; "
            "convert it with .astype(np.float32)"
        )
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (N points × D dimensions), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    bad = _first_bad_row(array)
    if bad is not None:
        raise ValueError(
            f"{name} row {bad[0]} contains {bad[1]}; remove or repair that row before clustering"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def check_views(views, n_points, dim, name="views"):
    """Check an N×V×D array of augmented views and return it as float32.

    Arguments
    ---------
    views : array_like
        Views of each point: ``views[i, v]`` is view ``v`` of point ``i``.
    n_points : int
        Expected N (the number of embeddings).
    dim : int
        Expected D (the embedding dimension).
    name : str
        Name used in error messages.

    Returns
    -------
    numpy.ndarray
        C-contiguous float32 array of shape (N, V, D).

    Raises
    ------
    TypeError
        When the array is not of a floating-point type.
    ValueError
        When the shape does not match or an entry is NaN or inf.

    Example
    -------
    >>> check_views(np.zeros((4, 2, 3)), n_points=4, dim=3).shape
    (4, 2, 3)
    >>> check_views(np.zeros((4, 3)), n_points=4, dim=3)
    Traceback (most recent call last):
    ...
    ValueError: views must be 3-D (N points × V views × D dimensions), got shape (4, 3)
    """
    array = np.asarray(views)
    if not np.issubdtype(array.dtype, np.floating):
        raise TypeError(
            f"{name} must be a floating-point array, got dtype {array.dtype}; "
            "convert it with .astype(np.float32)"
        )
    if array.ndim != 3:
        raise ValueError(
            f"{name} must be 3-D (N points × V views × D dimensions), got shape {array.shape}"
        )
    if array.shape[0] != n_points or array.shape[2] != dim:
        raise ValueError(
            f"{name} has shape {array.shape} but the embeddings are {n_points}×{dim}; "
            f"expected ({n_points}, V, {dim}) in the same point order"
        )
    if array.shape[1] == 0:
        raise ValueError(f"{name} holds no view (shape {array.shape})")
    bad = _first_bad_row(array)
    if bad is not None:
        raise ValueError(
            f"{name} of point {bad[0]} contain {bad[1]}; remove or repair that point before "
            "clustering"
        )
    return np.ascontiguousarray(array, dtype=np.float32)


def check_labels(labels, n_points=None, name="labels", min_classes=1):
    """Check a 1-D array of labels (integers or strings) and return it as an array.

    Arguments
    ---------
    labels : array_like
        One label per point.
    n_points : int, optional
        Expected length.
    name : str
        Name used in error messages.
    min_classes : int
        Fewest distinct labels accepted (2 where a single class makes the result
        meaningless).

    Returns
    -------
    numpy.ndarray
        The labels as a 1-D array.

    Raises
    ------
    ValueError
        On a wrong shape or length, NaN labels or too few classes.

    Example
    -------
    >>> check_labels([0, 1, 1], n_points=3)
    array([0, 1, 1])
    >>> check_labels([0, 0, 0], min_classes=2, name="true")
    Traceback (most recent call last):
    ...
    ValueError: true has a single class (0); at least 2 distinct labels are needed
    """
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per point), got shape {array.shape}")
    if array.dtype == object or array.dtype.kind not in "iubfUS":
        raise TypeError(
            f"{name} must hold integers or strings, got dtype {array.dtype}; "
            "convert with np.asarray(labels, dtype=str) or .astype(np.int64)"
        )
    if n_points is not None and array.shape[0] != n_points:
        raise ValueError(
            f"{name} has {array.shape[0]} entries but there are {n_points} points; "
            "give exactly one label per point, in the same order"
        )
    if array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            raise ValueError(
                f"{name} entry {int(bad[0])} is {array[bad[0]]}; labels must be finite"
            )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty")
    if min_classes > 1:
        classes = np.unique(array)
        if classes.size < min_classes:
            which = "a single class" if classes.size == 1 else f"{classes.size} classes"
            raise ValueError(
                f"{name} has {which} ({', '.join(map(str, classes[:5]))}); "
                f"at least {min_classes} distinct labels are needed"
            )
    return array


def check_n_clusters(n_clusters, n_points, name="n_clusters"):
    """Check a requested number of clusters against the number of points.

    Arguments
    ---------
    n_clusters : int
        Requested number of clusters.
    n_points : int
        Number of points to cluster.
    name : str
        Name used in error messages.

    Returns
    -------
    int
        ``n_clusters`` as a Python int.

    Raises
    ------
    ValueError
        When it is below 2 or above the number of points.

    Example
    -------
    >>> check_n_clusters(3, 10)
    3
    >>> check_n_clusters(20, 10)
    Traceback (most recent call last):
    ...
    ValueError: n_clusters=20 but only 10 points were given; ask for at most 10 clusters ...
    """
    if isinstance(n_clusters, bool) or not isinstance(n_clusters, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {n_clusters!r}")
    n_clusters = int(n_clusters)
    if n_clusters < 2:
        raise ValueError(f"{name}={n_clusters}: at least 2 clusters are needed")
    if n_clusters > n_points:
        raise ValueError(
            f"{name}={n_clusters} but only {n_points} points were given; "
            f"ask for at most {n_points} clusters or give more points"
        )
    return n_clusters


def _distinct_rows_lower_bound(array):
    """Return a lower bound on the number of distinct rows, exact unless two hashes collide.

    Each row is hashed from the bits of its float32 values with wrapping integer
    arithmetic, so equal rows always get equal hashes (no rounding can split them) and
    a collision can only lower the count.
    """
    rows = np.ascontiguousarray(array, dtype=np.float32).reshape(array.shape[0], -1)
    weights = np.random.default_rng(0).integers(1, 2**63, size=rows.shape[1], dtype=np.uint64)
    weights |= np.uint64(1)  # odd multipliers: every bit of a value moves its row's hash
    hashes = np.empty(rows.shape[0], dtype=np.uint64)
    for start in range(0, rows.shape[0], _HASH_BLOCK_ROWS):
        block = rows[start : start + _HASH_BLOCK_ROWS] + np.float32(0.0)  # -0.0 becomes 0.0
        bits = block.view(np.uint32).astype(np.uint64)
        hashes[start : start + _HASH_BLOCK_ROWS] = (bits * weights).sum(axis=1, dtype=np.uint64)
    return int(np.unique(hashes).size)


def check_distinct_points(embeddings, n_clusters, name="embeddings"):
    """Check that the points hold at least ``n_clusters`` distinct rows.

    Identical points always share a cluster, so ``n_clusters`` clusters need at least
    as many distinct points; asking for more would leave clusters empty (k-means,
    GMM) or split identical points arbitrarily (AHC). Many identical embeddings
    usually mean a collapsed encoder or duplicated rows. The count costs one pass of
    integer hashing (exact counting only runs when the hashes show too few).

    Arguments
    ---------
    embeddings : numpy.ndarray
        N×D float array, as it will be clustered (after any normalisation).
    n_clusters : int
        Requested number of clusters.
    name : str
        Name used in error messages.

    Returns
    -------
    int
        ``n_clusters``, unchanged.

    Raises
    ------
    ValueError
        When there are fewer distinct points than ``n_clusters``; the message says
        how many distinct points there are.

    Example
    -------
    >>> x = np.repeat(np.eye(3, dtype=np.float32), 5, axis=0)
    >>> check_distinct_points(x, 3)
    3
    >>> check_distinct_points(x, 4)
    Traceback (most recent call last):
    ...
    ValueError: embeddings hold only 3 distinct points (of 15) for n_clusters=4; ...
    """
    array = np.asarray(embeddings)
    if _distinct_rows_lower_bound(array) >= n_clusters:
        return n_clusters
    distinct = int(np.unique(array.reshape(array.shape[0], -1), axis=0).shape[0])
    if distinct < n_clusters:
        points = "point" if distinct == 1 else "points"
        raise ValueError(
            f"{name} hold only {distinct} distinct {points} (of {array.shape[0]}) for "
            f"n_clusters={n_clusters}; identical points always share a cluster, so ask for "
            f"at most {distinct} clusters. Many identical embeddings usually mean a collapsed "
            "encoder or duplicated rows: check the embeddings before clustering them"
        )
    return n_clusters


def check_batch_size(batch_size, name="batch_size"):
    """Check a mini-batch size of a clustering head: an integer of at least 2.

    A batch of one point breaks BatchNorm in training mode and makes the per-batch
    marginal entropy equal to the conditional one, so the information term of
    IMSAT/CAMSAT stops spreading points over clusters.

    Arguments
    ---------
    batch_size : int
        Points per mini-batch.
    name : str
        Name used in error messages.

    Returns
    -------
    int
        ``batch_size`` as a Python int.

    Raises
    ------
    TypeError
        When it is not an integer.
    ValueError
        When it is below 2.

    Example
    -------
    >>> check_batch_size(250)
    250
    >>> check_batch_size(1)
    Traceback (most recent call last):
    ...
    ValueError: batch_size=1: mini-batches need at least 2 points ...
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {batch_size!r}")
    batch_size = int(batch_size)
    if batch_size < 2:
        raise ValueError(
            f"{name}={batch_size}: mini-batches need at least 2 points (BatchNorm statistics "
            "and the per-batch marginal entropy are undefined on one point); use "
            f"{name} >= 2, typically a few hundred"
        )
    return batch_size


def check_views_per_step(views_per_step):
    """Check how many views of each point a CAMSAT step uses: None (all) or at least 2.

    L_symmetry compares the views of a point with their mixture, so a step needs two.

    Arguments
    ---------
    views_per_step : int or None
        Views per point and step; None uses every view.

    Returns
    -------
    int or None
        The value, unchanged.

    Raises
    ------
    ValueError
        When it is below 2.

    Example
    -------
    >>> check_views_per_step(2), check_views_per_step(None)
    (2, None)
    >>> check_views_per_step(1)
    Traceback (most recent call last):
    ...
    ValueError: views_per_step=1 must be at least 2 (or None for every view)
    """
    if views_per_step is not None and views_per_step < 2:
        raise ValueError(
            f"views_per_step={views_per_step} must be at least 2 (or None for every view)"
        )
    return views_per_step
