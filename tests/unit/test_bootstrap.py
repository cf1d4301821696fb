import json
import warnings

import numpy as np
import pytest
from scipy.stats import norm

import camsat_lobes.bootstrap as bootstrap
from camsat_lobes.bootstrap import (
    bootstrap_intervals,
    format_interval,
    seed_averaged_differences,
    speaker_bootstrap_weights,
)
from camsat_lobes.verification import compute_eer, compute_min_dcf, error_rates

# Population model of the synthetic test sets: target scores 2 + u_s + e and non-target
# scores v_a + v_b + e, with speaker effects u, v and trial noise e. The variances add up
# to 1 on both sides, so over the whole population targets are N(2, 1) and non-targets
# N(0, 1): the population EER is Phi(-1) (equal rates at the threshold 1).
TRUE_EER = 100 * norm.cdf(-1.0)


def random_weighted_trials(seed, n=200, ties=False):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, size=n)
    scores = rng.normal(size=n) + 1.2 * labels
    if ties:
        scores = np.round(scores, 1)
    weights = rng.integers(0, 4, size=n)
    labels[:4] = [0, 1, 0, 1]
    weights[:4] = [1, 1, 0, 0]  # both classes keep some weight, and some weight is 0
    return scores, labels, weights


def synthetic_test_set(rng, n_speakers=30, targets_per_speaker=8):
    """One test set from the population model: target trials and all speaker pairs."""
    speakers = np.arange(n_speakers)
    target_effect = rng.normal(scale=np.sqrt(0.5), size=n_speakers)
    nontarget_effect = rng.normal(scale=np.sqrt(0.25), size=n_speakers)
    target_speaker = np.repeat(speakers, targets_per_speaker)
    first, second = np.triu_indices(n_speakers, k=1)
    enrol = np.r_[target_speaker, first]
    test = np.r_[target_speaker, second]
    labels = (enrol == test).astype(int)
    noise = rng.normal(scale=np.sqrt(0.5), size=labels.size)
    scores = np.where(
        labels == 1,
        2.0 + target_effect[enrol],
        nontarget_effect[enrol] + nontarget_effect[test],
    )
    return scores + noise, labels, enrol, test


# --- weighted metrics ---------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_integer_weights_equal_repeated_trials(seed, ties):
    scores, labels, weights = random_weighted_trials(seed, ties=ties)
    repeated_scores, repeated_labels = np.repeat(scores, weights), np.repeat(labels, weights)
    assert compute_eer(scores, labels, weights) == compute_eer(repeated_scores, repeated_labels)
    for p_target in (0.01, 0.05, 0.5, 0.9):
        for normalize in (True, False):
            weighted = compute_min_dcf(
                scores, labels, p_target=p_target, normalize=normalize, weights=weights
            )
            repeated = compute_min_dcf(
                repeated_scores, repeated_labels, p_target=p_target, normalize=normalize
            )
            assert weighted == repeated
    # The rates agree at every threshold of the repeated list.
    frr, far, thresholds = error_rates(scores, labels, weights)
    frr_rep, far_rep, thresholds_rep = error_rates(repeated_scores, repeated_labels)
    at = np.searchsorted(thresholds, thresholds_rep)
    assert np.array_equal(thresholds[at], thresholds_rep)
    assert np.array_equal(frr[at], frr_rep) and np.array_equal(far[at], far_rep)


def test_unit_weights_equal_no_weights():
    scores, labels, _ = random_weighted_trials(0, ties=True)
    ones = np.ones(labels.size)
    assert compute_eer(scores, labels, ones) == compute_eer(scores, labels)
    assert compute_min_dcf(scores, labels, weights=ones) == compute_min_dcf(scores, labels)
    for with_ones, without in zip(error_rates(scores, labels, ones), error_rates(scores, labels)):
        assert np.array_equal(with_ones, without)


@pytest.mark.parametrize("ties", [False, True])
def test_batch_of_weights_equals_loop_over_rows(ties):
    scores, labels, _ = random_weighted_trials(3, ties=ties)
    rng = np.random.default_rng(1)
    weights = rng.random((7, labels.size)) * (rng.random((7, labels.size)) < 0.7)
    weights[-1] = rng.integers(0, 3, size=labels.size)
    eer = compute_eer(scores, labels, weights)
    dcf = compute_min_dcf(scores, labels, p_target=0.05, weights=weights)
    frr, far, thresholds = error_rates(scores, labels, weights)
    assert eer.shape == dcf.shape == (7,)
    assert frr.shape == far.shape == (7, thresholds.size)
    for row, w in enumerate(weights):
        assert eer[row] == compute_eer(scores, labels, w)
        assert dcf[row] == compute_min_dcf(scores, labels, p_target=0.05, weights=w)
        frr_row, far_row, _ = error_rates(scores, labels, w)
        assert np.array_equal(frr[row], frr_row) and np.array_equal(far[row], far_row)


def test_weightings_without_targets_or_nontargets_give_nan():
    scores, labels = np.array([0.9, 0.8, 0.3, 0.2]), np.array([1, 1, 0, 0])
    weights = np.array([[1, 1, 1, 1], [0, 0, 1, 1], [1, 0, 0, 0], [0, 0, 0, 0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        eer = compute_eer(scores, labels, weights)
        dcf = compute_min_dcf(scores, labels, weights=weights)
        frr, far, _ = error_rates(scores, labels, weights)
    assert eer[0] == 0.0 and dcf[0] == 0.0
    assert np.isnan(eer[1:]).all() and np.isnan(dcf[1:]).all()
    assert np.isnan(frr[[1, 3]]).all() and np.isnan(far[2:]).all()
    assert np.isnan(compute_eer(scores, labels, [0, 0, 1, 1]))


@pytest.mark.parametrize(
    "weights, message",
    [
        ([1, 1, 1], "shape"),
        (np.ones((2, 2, 4)), "shape"),
        ([1, -1, 1, 1], "non-negative"),
        ([1, np.nan, 1, 1], "finite"),
    ],
)
def test_bad_weights_are_named(weights, message):
    with pytest.raises(ValueError, match=message):
        compute_eer([0.9, 0.8, 0.3, 0.2], [1, 1, 0, 0], weights)


# --- speaker resampling -------------------------------------------------------------


def test_speaker_weights_count_copies_of_speakers():
    n_speakers = 6
    first, second = np.triu_indices(n_speakers, k=1)
    enrol = np.r_[np.arange(n_speakers), first].astype(str)
    test = np.r_[np.arange(n_speakers), second].astype(str)
    weights = speaker_bootstrap_weights(enrol, test, n_resamples=50, seed=3)
    assert weights.shape == (50, enrol.size)
    drawn = weights[:, :n_speakers]  # one target trial per speaker: its weight is m_s
    assert (drawn.sum(axis=1) == n_speakers).all()
    assert np.array_equal(weights[:, n_speakers:], drawn[:, first] * drawn[:, second])
    assert np.array_equal(weights, speaker_bootstrap_weights(enrol, test, 50, seed=3))
    assert not np.array_equal(weights, speaker_bootstrap_weights(enrol, test, 50, seed=4))


def test_intervals_are_percentiles_of_the_weighted_resamples(monkeypatch):
    scores, labels, enrol, test = synthetic_test_set(np.random.default_rng(5))
    result = bootstrap_intervals({"a": scores}, labels, enrol, test, n_resamples=100, seed=7)
    weights = speaker_bootstrap_weights(enrol, test, n_resamples=100, seed=7)
    eer = 100 * compute_eer(scores, labels, weights)
    dcf = compute_min_dcf(scores, labels, p_target=0.01, weights=weights)
    assert result["a"]["EER"] == 100 * compute_eer(scores, labels)
    assert result["a"]["minDCF"] == compute_min_dcf(scores, labels)
    assert [result["a"]["EER_low"], result["a"]["EER_high"]] == pytest.approx(
        np.quantile(eer, [0.025, 0.975]), abs=1e-12
    )
    assert [result["a"]["minDCF_low"], result["a"]["minDCF_high"]] == pytest.approx(
        np.quantile(dcf, [0.025, 0.975]), abs=1e-12
    )
    # Splitting the resamples into many small blocks changes nothing.
    monkeypatch.setattr(bootstrap, "_CHUNK_ELEMENTS", 3 * labels.size)
    chunked = bootstrap_intervals({"a": scores}, labels, enrol, test, n_resamples=100, seed=7)
    assert chunked == result


def test_intervals_cover_the_population_eer():
    rng = np.random.default_rng(2024)
    n_sets, covered, widths = 100, 0, []
    for index in range(n_sets):
        scores, labels, enrol, test = synthetic_test_set(rng)
        result = bootstrap_intervals(
            {"system": scores}, labels, enrol, test, n_resamples=200, seed=index
        )["system"]
        covered += result["EER_low"] <= TRUE_EER <= result["EER_high"]
        widths.append(result["EER_high"] - result["EER_low"])
    assert 0.85 <= covered / n_sets <= 1.0
    assert 3.0 < np.mean(widths) < 20.0  # an interval, not a point nor everything


def test_same_seed_same_intervals_other_seed_other_intervals():
    scores, labels, enrol, test = synthetic_test_set(np.random.default_rng(0))
    systems = {"a": scores, "b": scores + 0.3 * labels}
    first = bootstrap_intervals(systems, labels, enrol, test, "a", n_resamples=100, seed=1)
    again = bootstrap_intervals(systems, labels, enrol, test, "a", n_resamples=100, seed=1)
    other = bootstrap_intervals(systems, labels, enrol, test, "a", n_resamples=100, seed=2)
    assert first == again
    assert first["a"]["EER"] == other["a"]["EER"]
    assert (first["a"]["EER_low"], first["a"]["EER_high"]) != (
        other["a"]["EER_low"],
        other["a"]["EER_high"],
    )


def test_paired_differences():
    rng = np.random.default_rng(11)
    scores, labels, enrol, test = synthetic_test_set(rng, n_speakers=40)
    systems = {
        "base": scores,
        "noisy": scores + rng.normal(scale=0.15, size=scores.size),
        "better": scores + 1.5 * labels,
        "identical": scores.copy(),
    }
    result = bootstrap_intervals(systems, labels, enrol, test, reference="base", n_resamples=300)
    json.dumps(result)  # plain floats, ints, bools and strings
    differences = result["differences"]
    assert set(differences) == {"noisy", "better", "identical"}

    better = differences["better"]
    assert better["reference"] == "base"
    assert better["EER"] < 0 and better["EER_high"] < 0 and better["EER_significant"] is True
    assert better["minDCF_high"] < 0 and better["minDCF_significant"] is True

    identical = differences["identical"]
    for metric in ("EER", "minDCF"):
        assert identical[metric] == identical[f"{metric}_low"] == identical[f"{metric}_high"] == 0
        assert identical[f"{metric}_significant"] is False

    # Pairing: the noisy copy moves with the base system on every resample, so its
    # difference is far tighter than either interval (independent intervals would
    # combine to about sqrt(2) times one width).
    noisy = differences["noisy"]
    assert noisy["EER_low"] <= noisy["EER"] <= noisy["EER_high"]
    assert noisy["EER_significant"] is False
    base_width = result["base"]["EER_high"] - result["base"]["EER_low"]
    assert noisy["EER_high"] - noisy["EER_low"] < 0.5 * base_width


def test_resamples_without_targets_are_dropped_and_counted():
    # Three speakers, only speaker 0 has target trials: a third of the resamples draw
    # no speaker 0 (no target) or only speaker 0 (no non-target).
    enrol = np.array([0, 0, 0, 0, 1])
    test = np.array([0, 0, 1, 2, 2])
    labels = (enrol == test).astype(int)
    scores = np.array([0.9, 0.4, 0.5, 0.1, 0.3])
    result = bootstrap_intervals({"a": scores}, labels, enrol, test, n_resamples=300, seed=0)
    weights = speaker_bootstrap_weights(enrol, test, n_resamples=300, seed=0)
    no_class = ((weights * labels).sum(axis=1) == 0) | ((weights * (1 - labels)).sum(axis=1) == 0)
    assert result["dropped_resamples"] == int(no_class.sum())
    assert 60 < result["dropped_resamples"] < 140
    assert result["n_resamples"] == 300 and result["n_speakers"] == 3
    assert np.isfinite([result["a"]["EER_low"], result["a"]["EER_high"]]).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"reference": "missing"}, "reference"),
        ({"confidence": 1.0}, "confidence"),
        ({"p_target": 0.0}, "p_target"),
        ({"n_resamples": 0}, "n_resamples"),
    ],
)
def test_bad_arguments_are_named(kwargs, message):
    scores, labels, enrol, test = synthetic_test_set(np.random.default_rng(0), n_speakers=5)
    with pytest.raises(ValueError, match=message):
        bootstrap_intervals({"a": scores}, labels, enrol, test, **kwargs)


def test_labels_must_agree_with_speakers():
    with pytest.raises(ValueError, match="trial 1 is labelled 1"):
        bootstrap_intervals({"a": [0.9, 0.8, 0.1]}, [1, 1, 0], [0, 0, 1], [0, 1, 0])


def test_format_interval():
    assert format_interval(21.1, 17.8, 23.9) == "21.1 [17.8, 23.9]"
    assert format_interval(-1.234, -3.0, 0.5, digits=2, signed=True) == "-1.23 [-3.00, +0.50]"
    assert format_interval(0.31, 0.25, 0.42, digits=3) == "0.310 [0.250, 0.420]"


def test_more_references_share_the_resamples_of_one_call():
    rng = np.random.default_rng(5)
    scores, labels, enrol, test = synthetic_test_set(rng, n_speakers=30)
    systems = {"base": scores, "better": scores + labels, "other": scores + 0.5 * labels}
    both = bootstrap_intervals(
        systems, labels, enrol, test, "base", n_resamples=200, also_paired_with=["other", "absent"]
    )
    alone = bootstrap_intervals(systems, labels, enrol, test, "other", n_resamples=200)
    assert both["other_differences"] == alone["differences"]
    assert both["differences"]["better"]["reference"] == "base"
    assert "absent_differences" not in both


# --- differences averaged over training seeds ---------------------------------------


def test_one_seed_average_is_the_paired_difference():
    scores, labels, enrol, test = synthetic_test_set(np.random.default_rng(3))
    systems = {"ref": scores, "better": scores + 0.8 * labels}
    paired = bootstrap_intervals(systems, labels, enrol, test, reference="ref", n_resamples=300)
    averaged = seed_averaged_differences({1: systems}, labels, enrol, test, "ref", n_resamples=300)
    for key in ("EER", "EER_low", "EER_high", "EER_significant", "minDCF_low", "minDCF_high"):
        assert averaged["better"][key] == pytest.approx(paired["differences"]["better"][key])
    assert averaged["better"]["EER_seed_std"] == 0.0


def test_seed_average_lies_between_the_seeds_and_reports_their_spread():
    rng = np.random.default_rng(4)
    scores, labels, enrol, test = synthetic_test_set(rng)
    runs = {
        seed: {"ref": scores, "other": scores + shift * labels + rng.normal(size=labels.size)}
        for seed, shift in ((1, 0.2), (2, 1.2))
    }
    each = [
        seed_averaged_differences({s: runs[s]}, labels, enrol, test, "ref", n_resamples=200)
        for s in runs
    ]
    both = seed_averaged_differences(runs, labels, enrol, test, "ref", n_resamples=200)["other"]
    per_seed = [e["other"]["EER"] for e in each]
    assert both["EER"] == pytest.approx(np.mean(per_seed))
    assert both["EER_seed_std"] == pytest.approx(np.std(per_seed, ddof=1))
    assert both["EER_low"] <= both["EER"] <= both["EER_high"]


def test_seed_average_needs_the_same_systems_in_every_seed():
    scores, labels, enrol, test = synthetic_test_set(np.random.default_rng(5))
    runs = {1: {"ref": scores, "a": scores}, 2: {"ref": scores}}
    with pytest.raises(ValueError, match="every seed must score the systems"):
        seed_averaged_differences(runs, labels, enrol, test, "ref")
    with pytest.raises(ValueError, match="reference 'missing'"):
        seed_averaged_differences(runs, labels, enrol, test, "missing")
