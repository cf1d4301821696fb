"""Input checks shared by the clusterers and the metrics.

Every check raises a :class:`ValueError` (or :class:`TypeError` for a wrong
type) whose message names the argument, what is wrong with it and how to fix
it. Nothing is dropped or repaired silently.
"""

import numpy as np

__all__ = [
    "check_embeddings",
    "check_views",
    "check_labels",
    "check_n_clusters",
]


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

    Parameters
    ----------
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

    Parameters
    ----------
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

    Parameters
    ----------
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

    Parameters
    ----------
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
