"""Scoring protocol: cosine scores centred on training data, and adaptive s-norm that scales.

Every score uses training-side state only (``DESIGN.md``, "Scoring protocol"). The centring
mean is the mean of the *training* embeddings, embedded by the same network as the test
utterances, and the AS-norm cohort is those training embeddings. A trial's score depends
on its two embeddings and on that state alone, so adding test utterances never changes
the score of an existing trial.

AS-norm scores each side of a trial against the cohort (mean subtracted from both, rows
L2-normalised). The ``top_k`` highest cohort scores of a side give its mean ``mu`` and
standard deviation ``sigma``, and the trial score ``s`` becomes
``((s - mu_e) / sigma_e + (s - mu_t) / sigma_t) / 2``. Cohort scores are computed in
float32 with torch on blocks of (rows x cohort rows), merging a running top-k block by
block, so memory does not grow with (utterances x cohort): a VoxCeleb2-sized cohort
(1.09 M rows) needs a few GB, not hundreds. The float32 scores only *choose* the top-k
cohort rows (with a few spare candidates); the chosen scores are recomputed in float64,
so the statistics equal the full float64 computation. :meth:`CosineBackend.score_trials`
computes the statistics once per distinct utterance of a trial list, not once per trial.

An exported model (:mod:`camsat_lobes.inference`) keeps a backend's state with the
network, so inference scores exactly as the evaluation did.

Authors
 * camsat contributors 2026
"""

import operator

import numpy as np
import torch

__all__ = ["SCORE_NORMS", "CosineBackend", "cohort_statistics"]

SCORE_NORMS = (None, "as-norm")
"""Accepted values of ``score_norm``: plain centred cosine, or adaptive s-norm."""

_SIGMA_EPS = 1e-8  # added to every cohort standard deviation (a cohort of equal scores)
_PREPARE_ROWS = 8192  # rows centred and normalised at a time (bounds the float64 temporaries)
_RESCORE_PAIRS = 8192  # (row, cohort row) pairs rescored in float64 at a time
_SELECTION_MARGIN = 16  # float32 candidates beyond top_k, rescored in float64 before the cut


def _as_matrix(x, name):
    """Return ``x`` as a 2-D numeric numpy array, without copying an array (or memmap)."""
    x = np.asarray(x)
    if x.ndim != 2 or not np.issubdtype(x.dtype, np.number):
        raise ValueError(f"{name} must be a numeric (N, D) array, got shape {x.shape} {x.dtype}")
    return x


def _as_mean(mean, dim):
    """Return the centring mean as a finite float64 (D,) vector (zeros when ``None``)."""
    if mean is None:
        return np.zeros(dim)
    mean = np.asarray(mean, dtype=np.float64)
    if mean.shape != (dim,):
        raise ValueError(f"mean has shape {mean.shape} but the embeddings have dimension {dim}")
    if not np.isfinite(mean).all():
        raise ValueError("mean is not finite (NaN or inf)")
    return mean


def _check_top_k(top_k, cohort_rows):
    """Return ``top_k`` clipped to the cohort size, refusing cohorts or top-k below 2."""
    top_k = operator.index(top_k)
    if cohort_rows < 2:
        raise ValueError(f"AS-norm needs a cohort of at least 2 embeddings, got {cohort_rows}")
    if top_k < 2:
        raise ValueError(f"top_k={top_k}: AS-norm needs at least 2 cohort scores per side")
    return min(top_k, cohort_rows)


def _check_chunk(value, name):
    """Return a chunk size as a positive int."""
    value = operator.index(value)
    if value < 1:
        raise ValueError(f"{name}={value} must be at least 1")
    return value


def _row_name(name, row, labels=None):
    """Describe row ``row`` of array ``name`` for errors (``labels[row]`` when given)."""
    return f"row {row} of {name}" if labels is None else labels[row]


def _centred_rows(x, mean, name, labels=None, offset=0):
    """Return float64 ``x - mean`` and its (N, 1) row norms, naming any unusable row."""
    centred = np.array(x, dtype=np.float64)  # always a copy: modified in place below
    squares = np.einsum("ij,ij->i", centred, centred)
    if not (np.isfinite(squares).all() and squares.all()):
        finite = np.isfinite(centred).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise ValueError(f"{_row_name(name, bad + offset, labels)} is not finite (NaN or inf)")
        if not squares.all():
            bad = int(np.flatnonzero(squares == 0)[0])
            raise ValueError(f"{_row_name(name, bad + offset, labels)} is all zeros")
        bad = int(np.flatnonzero(~np.isfinite(squares))[0])
        raise ValueError(f"{_row_name(name, bad + offset, labels)} has values too large to score")
    centred -= mean
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))[:, None]
    if not norms.all():
        bad = int(np.flatnonzero(norms[:, 0] == 0)[0])
        raise ValueError(
            f"{_row_name(name, bad + offset, labels)} equals the centring mean: "
            "its cosine score is undefined"
        )
    return centred, norms


def _centred_unit_rows(x, mean, name, labels=None, offset=0):
    """Subtract ``mean`` from the float64 rows of ``x`` and L2-normalise them, naming bad rows."""
    centred, norms = _centred_rows(x, mean, name, labels, offset)
    centred /= norms
    return centred


def _unit_tensor(x, mean, name):
    """Centre and L2-normalise the rows of ``x`` into a float32 torch tensor, chunk by chunk."""
    out = torch.empty(x.shape, dtype=torch.float32)
    view = out.numpy()  # shares memory with ``out``
    for start in range(0, len(x), _PREPARE_ROWS):
        stop = min(start + _PREPARE_ROWS, len(x))
        centred, norms = _centred_rows(x[start:stop], mean, name, offset=start)
        np.divide(centred, norms, out=view[start:stop], casting="same_kind")
    return out


def _rescore(unit_rows, indices, exact_cohort):
    """Float64 scores of each unit row against its selected cohort rows ``indices`` (r, k)."""
    scores = np.empty(indices.shape)
    step = max(1, _RESCORE_PAIRS // indices.shape[1])
    for start in range(0, len(indices), step):
        selected = indices[start : start + step]
        unique, inverse = np.unique(selected.ravel(), return_inverse=True)
        block = unit_rows[start : start + step] @ exact_cohort(unique).T
        scores[start : start + step] = np.take_along_axis(
            block, inverse.reshape(selected.shape), axis=1
        )
    return scores


def _top_k_statistics(queries, n, cohort, exact_cohort, top_k, rows_per_chunk, cohort_per_chunk):
    """Mean and std of each query's ``top_k`` cohort scores: chosen in float32, then float64.

    ``queries(start, stop)`` gives float64 unit rows, ``cohort`` is the float32 unit cohort
    tensor and ``exact_cohort(indices)`` the float64 unit rows of the cohort at ``indices``.
    The float32 block scores only choose ``top_k + _SELECTION_MARGIN`` candidates; their
    scores are recomputed in float64 and the ``top_k`` highest kept, so neither float32
    rounding nor near-ties at the k-th score change the statistics.
    """
    n_cohort = cohort.shape[0]
    select = min(top_k + _SELECTION_MARGIN, n_cohort)
    mu, sigma = np.empty(n), np.empty(n)
    block_size = min(rows_per_chunk, n) * min(cohort_per_chunk, n_cohort)
    buffer = torch.empty(block_size, dtype=torch.float32)  # reused by every block
    with torch.no_grad():
        for start in range(0, n, rows_per_chunk):
            stop = min(start + rows_per_chunk, n)
            unit_rows = queries(start, stop)
            chunk = torch.from_numpy(unit_rows.astype(np.float32))
            best_values = best_indices = None
            for c_start in range(0, n_cohort, cohort_per_chunk):
                cohort_chunk = cohort[c_start : c_start + cohort_per_chunk]
                scores = buffer[: len(chunk) * len(cohort_chunk)].view(len(chunk), -1)
                torch.mm(chunk, cohort_chunk.T, out=scores)
                k = min(select, scores.shape[1])
                values, indices = torch.topk(scores, k, dim=1, sorted=False)
                indices += c_start
                if best_values is not None:
                    values = torch.cat((best_values, values), dim=1)
                    indices = torch.cat((best_indices, indices), dim=1)
                    k = min(select, values.shape[1])
                    keep = torch.topk(values, k, dim=1, sorted=False).indices
                    values, indices = values.gather(1, keep), indices.gather(1, keep)
                best_values, best_indices = values, indices
            best = _rescore(unit_rows, best_indices.numpy(), exact_cohort)
            if select > top_k:
                best = -np.partition(-best, top_k - 1, axis=1)[:, :top_k]
            mu[start:stop] = best.mean(axis=1)
            sigma[start:stop] = best.std(axis=1)
    return mu, sigma + _SIGMA_EPS


def cohort_statistics(
    embeddings, cohort, top_k=100, mean=None, rows_per_chunk=1024, cohort_per_chunk=65536
):
    """Mean and standard deviation of each row's ``top_k`` highest cosine scores on a cohort.

    ``mean`` is subtracted from both sides and the rows are L2-normalised; the cosine
    scores are then computed in float32 on blocks of ``rows_per_chunk`` rows x
    ``cohort_per_chunk`` cohort rows, keeping a running top-k per row (``top_k`` plus
    16 spare candidates). The scores of the candidates are recomputed in float64 from
    the inputs and the ``top_k`` highest give the statistics, so they match a full
    float64 computation. Peak memory is ``O(rows_per_chunk * (cohort_per_chunk +
    top_k))`` plus a float32 copy of the cohort, whatever ``N x C``.

    Arguments
    ---------
    embeddings : array_like
        (N, D) embeddings (one side of the trials).
    cohort : array_like
        (C, D) cohort embeddings (training utterances), at least 2 rows; a memmap works.
    top_k : int
        Number of highest cohort scores per row; clipped to ``C``, at least 2.
    mean : array_like, optional
        (D,) vector subtracted from the embeddings and the cohort (the training mean).
    rows_per_chunk : int
        Rows scored against the cohort at a time.
    cohort_per_chunk : int
        Cohort rows per block.

    Returns
    -------
    mu : numpy.ndarray
        (N,) float64 mean of each row's ``top_k`` highest cohort scores.
    sigma : numpy.ndarray
        (N,) float64 standard deviation (``ddof=0``) of those scores, plus 1e-8.

    Example
    -------
    >>> cohort = [[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]
    >>> mu, sigma = cohort_statistics([[1.0, 0.0]], cohort, top_k=2)
    >>> mu.round(6).tolist(), sigma.round(6).tolist()
    ([0.5], [0.5])
    """
    embeddings, cohort = _as_matrix(embeddings, "embeddings"), _as_matrix(cohort, "cohort")
    if embeddings.shape[1] != cohort.shape[1]:
        raise ValueError(
            f"embeddings have dimension {embeddings.shape[1]} but the cohort {cohort.shape[1]}"
        )
    top_k = _check_top_k(top_k, len(cohort))
    rows_per_chunk = _check_chunk(rows_per_chunk, "rows_per_chunk")
    cohort_per_chunk = _check_chunk(cohort_per_chunk, "cohort_per_chunk")
    mean = _as_mean(mean, cohort.shape[1])
    cohort_rows = _unit_tensor(cohort, mean, "cohort")
    return _top_k_statistics(
        lambda start, stop: _centred_unit_rows(
            embeddings[start:stop], mean, "embeddings", offset=start
        ),
        len(embeddings),
        cohort_rows,
        lambda indices: _centred_unit_rows(cohort[indices], mean, "cohort"),
        top_k,
        rows_per_chunk,
        cohort_per_chunk,
    )


class CosineBackend:
    """Cosine scoring centred on the training mean, optionally with AS-norm on a cohort.

    Nothing computed from test utterances ever enters a score: a trial's score depends
    only on its two embeddings and on this backend's training-side state (``mean`` and
    ``cohort``). Build it with :meth:`from_training`, score with :meth:`score_trials`
    (or :meth:`score` for paired rows).

    The cohort is centred, normalised and converted to float32 once, on the first
    AS-norm score, and kept (``C x D x 4`` bytes: 0.8 GB for 1.09 M x 192); the array
    given as ``cohort`` must not be modified afterwards. ``rows_per_chunk`` and
    ``cohort_per_chunk`` (class attributes, settable per instance) size the blocks of
    :func:`cohort_statistics`.

    Arguments
    ---------
    mean : array_like
        (D,) centring mean: the mean of the training embeddings.
    cohort : array_like, optional
        (C, D) cohort of training embeddings for AS-norm (at least 2 rows); ``None``
        gives plain centred cosine scores. A memmap is used in place.
    top_k : int
        Number of highest cohort scores per side (clipped to ``C``, at least 2).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> train = rng.normal(size=(200, 8))
    >>> backend = CosineBackend.from_training(train, score_norm="as-norm", top_k=20)
    >>> backend.score_norm, backend.top_k, backend.embedding_dim
    ('as-norm', 20, 8)
    >>> test = rng.normal(size=(3, 8))
    >>> backend.score_trials(test, ["a", "b", "c"], [("a", "b"), ("a", "c")]).shape
    (2,)
    """

    rows_per_chunk = 1024
    cohort_per_chunk = 65536

    def __init__(self, mean, cohort=None, top_k=100):
        mean = np.asarray(mean, dtype=np.float64)
        if mean.ndim != 1:
            raise ValueError(f"mean must be a (D,) vector, got shape {mean.shape}")
        self.mean = _as_mean(mean, len(mean))
        self.top_k = operator.index(top_k)
        if cohort is not None:
            cohort = _as_matrix(cohort, "cohort")
            if cohort.shape[1] != len(mean):
                raise ValueError(f"cohort has dimension {cohort.shape[1]} but the mean {len(mean)}")
            _check_top_k(self.top_k, len(cohort))
        self.cohort = cohort
        self._cohort_rows = None

    @classmethod
    def from_training(cls, train_embeddings, score_norm=None, top_k=100):
        """Build the backend from the training embeddings alone.

        Arguments
        ---------
        train_embeddings : array_like
            (N, D) embeddings of the training utterances, from the network that also
            embeds the test utterances.
        score_norm : str, optional
            ``None`` for centred cosine scores, ``"as-norm"`` to use the training
            embeddings as the AS-norm cohort.
        top_k : int
            Number of highest cohort scores per side for AS-norm.

        Returns
        -------
        CosineBackend
            Centred on the float64 mean of ``train_embeddings``; its cohort is
            ``train_embeddings`` itself (not copied) with ``"as-norm"``.

        Example
        -------
        >>> backend = CosineBackend.from_training([[1.0, 0.0], [0.0, 1.0]])
        >>> backend.mean.tolist(), backend.score_norm
        ([0.5, 0.5], None)
        """
        if score_norm not in SCORE_NORMS:
            raise ValueError(f"score_norm={score_norm!r}: choose one of {SCORE_NORMS}")
        train = _as_matrix(train_embeddings, "train_embeddings")
        if len(train) == 0:
            raise ValueError("train_embeddings is empty")
        mean = train.mean(axis=0, dtype=np.float64)
        if not np.isfinite(mean).all():
            for start in range(0, len(train), _PREPARE_ROWS):
                finite = np.isfinite(train[start : start + _PREPARE_ROWS]).all(axis=1)
                if not finite.all():
                    bad = start + int(np.flatnonzero(~finite)[0])
                    raise ValueError(f"row {bad} of train_embeddings is not finite (NaN or inf)")
            raise ValueError("the mean of train_embeddings overflows")
        return cls(mean, cohort=train if score_norm == "as-norm" else None, top_k=top_k)

    @property
    def score_norm(self):
        """``"as-norm"`` when a cohort is set, else ``None``.

        Returns
        -------
        str or None
            The score normalisation applied by :meth:`score`.

        Example
        -------
        >>> CosineBackend([0.0, 0.0]).score_norm is None
        True
        """
        return None if self.cohort is None else "as-norm"

    @property
    def embedding_dim(self):
        """Dimension D of the embeddings this backend scores.

        Returns
        -------
        int
            Length of the centring mean.

        Example
        -------
        >>> CosineBackend([0.0, 0.0, 0.0]).embedding_dim
        3
        """
        return len(self.mean)

    def __repr__(self):
        cohort = "none" if self.cohort is None else f"{len(self.cohort)} rows, top_k={self.top_k}"
        return f"CosineBackend(dim={self.embedding_dim}, score_norm={self.score_norm}, {cohort})"

    def _check_dim(self, x, name):
        """Refuse embeddings whose dimension differs from the backend's."""
        if x.shape[1] != self.embedding_dim:
            raise ValueError(
                f"{name} have dimension {x.shape[1]} but this backend {self.embedding_dim}"
            )

    def _statistics(self, unit_rows):
        """Cohort statistics of already centred, unit-norm float64 rows."""
        if self._cohort_rows is None:
            self._cohort_rows = _unit_tensor(self.cohort, self.mean, "cohort")
        top_k = _check_top_k(self.top_k, len(self.cohort))
        return _top_k_statistics(
            lambda start, stop: unit_rows[start:stop],
            len(unit_rows),
            self._cohort_rows,
            lambda indices: _centred_unit_rows(self.cohort[indices], self.mean, "cohort"),
            top_k,
            _check_chunk(self.rows_per_chunk, "rows_per_chunk"),
            _check_chunk(self.cohort_per_chunk, "cohort_per_chunk"),
        )

    def _normalise(self, scores, unit_rows, enrol_rows, test_rows):
        """Apply AS-norm to ``scores`` given the unit rows and each side's row in them."""
        if self.cohort is None:
            return scores
        mu, sigma = self._statistics(unit_rows)
        return 0.5 * (
            (scores - mu[enrol_rows]) / sigma[enrol_rows]
            + (scores - mu[test_rows]) / sigma[test_rows]
        )

    def score(self, enrol, test):
        """Score paired rows: centred cosine, then AS-norm if a cohort is set.

        Arguments
        ---------
        enrol : array_like
            (N, D) enrolment embeddings.
        test : array_like
            (N, D) test embeddings, paired row by row with ``enrol``.

        Returns
        -------
        numpy.ndarray
            (N,) float64 scores.

        Example
        -------
        >>> backend = CosineBackend([1.0, 1.0])
        >>> backend.score([[2.0, 1.0], [2.0, 1.0]], [[3.0, 1.0], [0.0, 1.0]]).round(6).tolist()
        [1.0, -1.0]
        """
        enrol, test = _as_matrix(enrol, "enrol"), _as_matrix(test, "test")
        if enrol.shape != test.shape:
            raise ValueError(f"enrol {enrol.shape} and test {test.shape} must have the same shape")
        self._check_dim(enrol, "enrol")
        unit_enrol = _centred_unit_rows(enrol, self.mean, "enrol")
        unit_test = _centred_unit_rows(test, self.mean, "test")
        scores = np.einsum("nd,nd->n", unit_enrol, unit_test)
        n = len(scores)
        return self._normalise(
            scores, np.concatenate((unit_enrol, unit_test)), np.arange(n), np.arange(n, 2 * n)
        )

    def score_trials(self, embeddings, ids, trials):
        """Score a trial list, with AS-norm statistics computed once per distinct utterance.

        Only the rows named by the trials are read, so rows of other utterances (or
        more utterances appended later) have no effect on the scores.

        Arguments
        ---------
        embeddings : array_like
            (U, D) embeddings of the utterances named by ``ids``.
        ids : list of str
            U distinct utterance ids, one per row of ``embeddings``.
        trials : iterable of (str, str)
            ``(enrol_id, test_id)`` pairs.

        Returns
        -------
        numpy.ndarray
            (T,) float64 scores, in the order of ``trials``.

        Example
        -------
        >>> backend = CosineBackend([0.0, 0.0])
        >>> emb = [[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]]
        >>> backend.score_trials(emb, ["a", "b", "c"], [("a", "c"), ("a", "b")]).tolist()
        [1.0, 0.0]
        """
        embeddings = _as_matrix(embeddings, "embeddings")
        self._check_dim(embeddings, "embeddings")
        ids = list(ids)
        if len(ids) != len(embeddings):
            raise ValueError(f"{len(ids)} ids for {len(embeddings)} embeddings")
        index = {}
        for row, utt in enumerate(ids):
            if index.setdefault(utt, row) != row:
                raise ValueError(f"utterance id {utt!r} appears twice in ids")
        enrol_rows, test_rows = [], []
        for number, trial in enumerate(trials):
            if isinstance(trial, str) or len(trial) != 2:
                raise ValueError(f"trial {number} is {trial!r}: give (enrol_id, test_id) pairs")
            for utt, side in zip(trial, (enrol_rows, test_rows)):
                if utt not in index:
                    raise ValueError(f"trial {number} names unknown utterance {utt!r}")
                side.append(index[utt])
        if not enrol_rows:
            raise ValueError("the trial list is empty")
        used, inverse = np.unique(np.array(enrol_rows + test_rows), return_inverse=True)
        labels = [f"utterance {ids[row]!r} (row {row} of embeddings)" for row in used]
        unit = _centred_unit_rows(embeddings[used], self.mean, "embeddings", labels)
        n = len(enrol_rows)
        enrol_rows, test_rows = inverse[:n], inverse[n:]
        scores = np.einsum("nd,nd->n", unit[enrol_rows], unit[test_rows])
        return self._normalise(scores, unit, enrol_rows, test_rows)
