import numpy as np
import pytest
import torch
from speechbrain.utils.metric_stats import EER, minDCF

from camsat_lobes.verification import (
    compute_eer,
    compute_min_dcf,
    error_rates,
)


def random_trials(seed, n=300, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    labels[:2] = [0, 1]
    scores = rng.normal(size=n) + 1.2 * labels
    if ties:
        scores = np.round(scores, 1)
    return scores, labels


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_speechbrain(seed, ties):
    scores, labels = random_trials(seed, ties=ties)
    pos = torch.tensor(scores[labels == 1])
    neg = torch.tensor(scores[labels == 0])
    sb_eer, _ = EER(pos, neg)
    sb_dcf, _ = minDCF(pos, neg, p_target=0.05)
    assert compute_eer(scores, labels) == pytest.approx(sb_eer, abs=1e-6)
    assert compute_min_dcf(scores, labels, p_target=0.05, normalize=False) == pytest.approx(
        sb_dcf, abs=1e-6
    )


def test_perfect_and_inverted_systems():
    labels = np.array([1, 1, 0, 0])
    assert compute_eer([0.9, 0.8, 0.1, 0.2], labels) == 0.0
    assert compute_eer([0.1, 0.2, 0.9, 0.8], labels) == 1.0
    assert compute_min_dcf([0.9, 0.8, 0.1, 0.2], labels) == 0.0
    # A useless system costs exactly the trivial system after normalisation.
    assert compute_min_dcf([0.5] * 4, labels, p_target=0.01) == pytest.approx(1.0)


def test_rates_are_monotone():
    scores, labels = random_trials(7, n=1000)
    frr, far, thresholds = error_rates(scores, labels)
    assert np.all(np.diff(thresholds) > 0)
    assert np.all(np.diff(frr) >= 0) and np.all(np.diff(far) <= 0)
    assert frr[-1] == 1.0 and far[-1] == 0.0


@pytest.mark.parametrize(
    "scores, labels, message",
    [
        ([0.1, 0.2], [1], "2 scores but 1 labels"),
        ([0.1, np.nan], [1, 0], "trial 1"),
        ([0.1, 0.2], [1, 1], "both target"),
        ([0.1, 0.2], [1, 2], "labels must be"),
    ],
)
def test_bad_input_is_named(scores, labels, message):
    with pytest.raises(ValueError, match=message):
        compute_eer(scores, labels)
