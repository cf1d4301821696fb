"""A balanced verification trial list in the VoxCeleb format.

Target trials pair two utterances of one test speaker: every cross-session pair is
kept, and same-session pairs are added only up to ``1 - cross_session_fraction`` of
the targets, so that most target trials must bridge two channels, as on VoxCeleb.
As many non-target trials (two different test speakers) are drawn without
repetition; if there are fewer possible non-target pairs, the targets are
subsampled instead, so the list is always balanced.

Authors
 * camsat contributors 2026
"""

import itertools

__all__ = ["make_trials", "write_trials"]


def make_trials(utterances, rng, cross_session_fraction=0.8):
    """Return a balanced list of ``(label, enrol, test)`` trials.

    Arguments
    ---------
    utterances : list of tuple
        ``(speaker, session, path)`` of every test utterance.
    rng : numpy.random.Generator
        Source of the sampling.
    cross_session_fraction : float
        Smallest fraction of target trials whose utterances come from two sessions.

    Returns
    -------
    list of tuple
        ``(1 or 0, enrol_path, test_path)``, sorted by enrolment then test path.

    Example
    -------
    >>> import numpy as np
    >>> utts = [(s, f"{s}{k}", f"{s}/{s}{k}/{u}.wav") for s in "ab" for k in "xy" for u in "12"]
    >>> trials = make_trials(utts, np.random.default_rng(0))
    >>> sum(t[0] for t in trials), len(trials)
    (10, 20)
    """
    targets_cross, targets_same, nontargets = [], [], []
    for first, second in itertools.combinations(utterances, 2):
        if first[0] != second[0]:
            nontargets.append((first[2], second[2]))
        elif first[1] != second[1]:
            targets_cross.append((first[2], second[2]))
        else:
            targets_same.append((first[2], second[2]))
    if not (targets_cross or targets_same) or not nontargets:
        raise ValueError(
            f"cannot make trials from {len(utterances)} test utterances: need two speakers "
            "and at least one speaker with two utterances"
        )
    num_same = len(targets_same)
    if cross_session_fraction < 1.0 and targets_cross:
        num_same = min(num_same, int(len(targets_cross) * (1 / cross_session_fraction - 1)))
    elif targets_cross:
        num_same = 0
    targets = targets_cross + _sample(targets_same, num_same, rng)
    count = min(len(targets), len(nontargets))
    trials = [(1, *pair) for pair in _sample(targets, count, rng)]
    trials += [(0, *pair) for pair in _sample(nontargets, count, rng)]
    trials = [(label, *(pair if rng.random() < 0.5 else pair[::-1])) for label, *pair in trials]
    return sorted(trials, key=lambda trial: (trial[1], trial[2]))


def _sample(items, count, rng):
    """Return ``count`` items drawn without repetition, in their original order."""
    if count >= len(items):
        return list(items)
    chosen = sorted(rng.choice(len(items), size=count, replace=False))
    return [items[i] for i in chosen]


def write_trials(path, trials):
    r"""Write trials as VoxCeleb lines ``label enrol test``.

    Example
    -------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "trials.txt"
    >>> write_trials(path, [(1, "a/x/1.wav", "a/y/2.wav")])
    >>> path.read_text()
    '1 a/x/1.wav a/y/2.wav\n'
    """
    with open(path, "w", encoding="utf-8") as handle:
        handle.writelines(f"{label} {enrol} {test}\n" for label, enrol, test in trials)
