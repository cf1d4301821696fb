"""Training, test and development splits, and the fixed-length segments of ``train.csv``.

Authors
 * camsat contributors 2026
"""

import itertools

import numpy as np

from camsat_lobes.files import write_csv
from camsat_lobes.prepare.trials import _resolve_trials, _write_trials

__all__ = ["development_speaker_draw", "development_trials", "segment_rows"]

UTTERANCE_COLUMNS = ["ID", "duration", "wav", "start", "stop", "spk_id", "session"]
SEGMENT_COLUMNS = ["ID", "duration", "wav", "start", "stop", "spk_id", "utt_id"]
DEVELOPMENT_SEED = 2024  # the fixed draw of the speakers (and trials) of a development split
# Every pair of a development split's utterances up to this many trials (about
# VoxCeleb1-E's 580,000); beyond it, a fixed draw of this many, half of them targets.
MAX_DEVELOPMENT_TRIALS = 600_000


def segment_rows(utterance, seg_duration=3.0, sample_rate=16000):
    """Cut one utterance row into consecutive segments of ``seg_duration`` seconds.

    As in SpeechBrain's VoxCeleb recipe, an utterance gives
    ``floor(duration / seg_duration)`` segments from its start and the remainder
    shorter than one segment is left out; an utterance shorter than one segment
    gives a single segment covering all of it.

    Arguments
    ---------
    utterance : dict
        A row of ``train_utts.csv`` (ID, wav, start, stop, spk_id).
    seg_duration : float
        Segment length in seconds.
    sample_rate : int
        Sample rate of the audio.

    Returns
    -------
    list of dict
        Rows of ``train.csv`` (ID, duration, wav, start, stop, spk_id, utt_id); the
        segment ID is ``<utterance ID>_<start s>_<stop s>``.

    Example
    -------
    >>> row = {"ID": "a--s1--u1", "wav": "/x.wav", "start": 0, "stop": 112000, "spk_id": "a"}
    >>> [(s["ID"], s["start"], s["stop"]) for s in segment_rows(row, 3.0, 16000)]
    [('a--s1--u1_0_3', 0, 48000), ('a--s1--u1_3_6', 48000, 96000)]
    """
    start, stop = int(utterance["start"]), int(utterance["stop"])
    length = int(round(seg_duration * sample_rate))
    if length <= 0:
        raise ValueError(f"seg_duration={seg_duration} must be positive")
    rows = []
    for index in range(max(1, (stop - start) // length)):
        seg_start = start + index * length
        seg_stop = min(seg_start + length, stop)
        begin, end = (seg_start - start) / sample_rate, (seg_stop - start) / sample_rate
        rows.append(
            {
                "ID": f"{utterance['ID']}_{begin:g}_{end:g}",
                "duration": round((seg_stop - seg_start) / sample_rate, 4),
                "wav": utterance["wav"],
                "start": seg_start,
                "stop": seg_stop,
                "spk_id": utterance["spk_id"],
                "utt_id": utterance["ID"],
            }
        )
    return rows


def _split_sets(utterances, train_speakers, trial_lists, seg_duration, sample_rate):
    """Split the usable utterances into training and test sets, and each list's trials.

    Arguments
    ---------
    utterances : dict
        Utterance ID -> manifest row, of every usable file.
    train_speakers : set of str
        The speakers whose utterances train.
    trial_lists : dict
        List name -> trials ``(label, enrol path, test path)``.
    seg_duration : float
        Segment length of ``train.csv``.
    sample_rate : int
        Sample rate of the audio.

    Returns
    -------
    dict
        ``train`` (utterance rows), ``segments`` (rows of ``train.csv``), ``test``
        (utterance rows of the files of every list's kept trials), ``trials`` (list name
        -> kept trials as ``(label, enrol ID, test ID)``) and ``dropped`` (list name ->
        trials on unusable files).
    """
    train = [row for row in utterances.values() if row["spk_id"] in train_speakers]
    kept, dropped = {}, {}
    for name, trials in trial_lists.items():
        kept[name], dropped[name] = _resolve_trials(trials, utterances)
    test_ids = sorted(
        {utt_id for trials in kept.values() for _, *pair in trials for utt_id in pair}
    )
    return {
        "train": train,
        "segments": _segments(train, seg_duration, sample_rate),
        "test": [utterances[utt_id] for utt_id in test_ids],
        "trials": kept,
        "dropped": dropped,
    }


def _segments(train, seg_duration, sample_rate):
    """Return the rows of ``train.csv``: every training utterance cut into segments."""
    return [segment for row in train for segment in segment_rows(row, seg_duration, sample_rate)]


def development_speaker_draw(speakers, n_speakers):
    """Return the ``n_speakers`` held out of ``speakers`` for a development split.

    The draw is fixed (a seeded permutation of the sorted speaker names), so every
    run on one corpus holds out the same speakers.

    Arguments
    ---------
    speakers : iterable of str
        The training speakers.
    n_speakers : int
        How many to hold out; at least 2, and at least 2 must stay for training.

    Returns
    -------
    list of str
        The held-out speakers, sorted.

    Example
    -------
    >>> development_speaker_draw([f"id{i:02d}" for i in range(10)], 3)
    ['id02', 'id03', 'id05']
    """
    speakers = sorted(set(speakers))
    if not 2 <= n_speakers <= len(speakers) - 2:
        raise ValueError(
            f"development_speakers={n_speakers}: a development split needs at least 2 "
            f"held-out speakers and 2 left for training, and there are {len(speakers)} "
            "training speakers"
        )
    order = np.random.default_rng(DEVELOPMENT_SEED).permutation(len(speakers))
    return sorted(speakers[i] for i in order[:n_speakers])


def _development_split(split, n_speakers, seg_duration, sample_rate, list_name):
    """Hold ``n_speakers`` training speakers out as the test set, scored on their pairs.

    The trial lists of the corpus are replaced by one list, ``list_name``, of the
    held-out speakers' pairs (:func:`development_trials`).
    """
    held_out = set(development_speaker_draw((row["spk_id"] for row in split["train"]), n_speakers))
    train = [row for row in split["train"] if row["spk_id"] not in held_out]
    test = sorted((row for row in split["train"] if row["spk_id"] in held_out), key=_by_id)
    return {
        "train": train,
        "segments": _segments(train, seg_duration, sample_rate),
        "test": test,
        "trials": {list_name: development_trials(test)},
        "dropped": {list_name: []},
    }


def development_trials(test, max_trials=MAX_DEVELOPMENT_TRIALS):
    """Return the trials of a development split: every pair, or a fixed draw of pairs.

    Up to ``max_trials`` pairs, every pair of the utterances is a trial. A larger split
    (VoxCeleb2's speakers hold about 180 utterances each, so 100 held-out speakers
    make 160 million pairs) gets a fixed draw of ``max_trials`` distinct pairs, half
    of them target pairs (all of them when there are fewer), drawn uniformly among
    the pairs of their kind.

    Arguments
    ---------
    test : list of dict
        The held-out utterances (rows with ``ID`` and ``spk_id``), in trial order.
    max_trials : int
        The most trials; at least 2.

    Returns
    -------
    list of tuple
        ``(label, enrol ID, test ID)`` rows, in the order of the pairs in ``test``.

    Example
    -------
    >>> rows = [{"ID": f"{s}{u}", "spk_id": s} for s in "abc" for u in range(20)]
    >>> len(development_trials(rows))  # 60 utterances: every one of 1,770 pairs
    1770
    >>> drawn = development_trials(rows, max_trials=100)
    >>> len(drawn), sum(label for label, _, _ in drawn)
    (100, 50)
    >>> drawn == development_trials(rows, max_trials=100)
    True
    """
    if max_trials < 2:
        raise ValueError(f"max_trials={max_trials} must be at least 2 (a target and a non-target)")
    if len(test) * (len(test) - 1) // 2 <= max_trials:
        return [
            (int(a["spk_id"] == b["spk_id"]), a["ID"], b["ID"])
            for a, b in itertools.combinations(test, 2)
        ]
    speakers = np.array([row["spk_id"] for row in test])
    members = [np.flatnonzero(speakers == name).tolist() for name in np.unique(speakers)]
    rng = np.random.default_rng(DEVELOPMENT_SEED)
    targets = _target_pairs(members, max_trials // 2, rng)
    non_targets = _non_target_pairs(speakers, members, max_trials - len(targets), rng)
    pairs = sorted(targets | non_targets)
    return [(int(speakers[a] == speakers[b]), test[a]["ID"], test[b]["ID"]) for a, b in pairs]


def _target_pairs(members, most, rng):
    """Return up to ``most`` distinct same-speaker index pairs ``(a, b)``, ``a < b``.

    ``members`` lists each speaker's utterance indices.
    """
    counts = np.array([len(m) for m in members])
    sizes = counts * (counts - 1) // 2
    if sizes.sum() <= most:
        return {(a, b) for m in members for a, b in itertools.combinations(m, 2)}
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    flat = np.concatenate(members)
    drawn = {}  # in draw order, so that the first ``most`` are a uniform draw
    while len(drawn) < most:
        groups = rng.choice(len(members), size=most, p=sizes / sizes.sum())
        first = rng.integers(counts[groups])
        second = rng.integers(counts[groups] - 1)
        second += second >= first  # another utterance of the same speaker
        a, b = flat[starts[groups] + first], flat[starts[groups] + second]
        drawn.update(dict.fromkeys(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist())))
    return set(list(drawn)[:most])


def _non_target_pairs(speakers, members, count, rng):
    """Return ``count`` distinct different-speaker index pairs ``(a, b)``, ``a < b`` (or all).

    ``speakers`` names the speaker of each utterance; ``members`` lists each speaker's
    utterance indices.
    """
    sizes = np.array([len(m) for m in members])
    available = (int(sizes.sum()) ** 2 - int((sizes**2).sum())) // 2
    if available <= 2 * count:  # few of them: list them all and draw among them
        every = [
            (min(a, b), max(a, b))
            for one, other in itertools.combinations(members, 2)
            for a in one
            for b in other
        ]
        return {every[i] for i in rng.permutation(len(every))[:count]}
    drawn = {}  # in draw order, so that the first ``count`` are a uniform draw
    while len(drawn) < count:
        a, b = rng.integers(len(speakers), size=(2, 2 * count))
        keep = speakers[a] != speakers[b]
        a, b = a[keep], b[keep]
        drawn.update(dict.fromkeys(zip(np.minimum(a, b).tolist(), np.maximum(a, b).tolist())))
    return set(list(drawn)[:count])


def _by_id(row):
    """Sort key of a manifest row: its ID."""
    return row["ID"]


def _write_manifests(paths, split, trial_files):
    """Write ``train_utts.csv``, ``train.csv``, ``test.csv`` and one CSV per trial list.

    ``trial_files`` maps each list name of ``split["trials"]`` to its CSV path.
    """
    write_csv(paths["train_utts_csv"], UTTERANCE_COLUMNS, split["train"])
    write_csv(paths["train_csv"], SEGMENT_COLUMNS, split["segments"])
    write_csv(paths["test_csv"], UTTERANCE_COLUMNS, split["test"])
    for name, trials in split["trials"].items():
        _write_trials(trial_files[name], trials)
