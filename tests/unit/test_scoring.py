import numpy as np
import pytest

from camsat_lobes.scoring import CosineBackend, cohort_statistics


def speaker_embeddings(n, dim=16, speakers=5, seed=0, offset=0.0):
    """Speaker-like float32 embeddings: random centres plus noise, plus a constant offset."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(speakers, dim))
    labels = rng.integers(0, speakers, n)
    x = centres[labels] + 0.7 * rng.normal(size=(n, dim)) + offset
    return x.astype(np.float32)


def exact_statistics(embeddings, cohort, top_k, mean):
    """Full float64 score matrix and np.partition: the reference for the chunked version."""
    x = np.asarray(embeddings, dtype=np.float64) - mean
    c = np.asarray(cohort, dtype=np.float64) - mean
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    c /= np.linalg.norm(c, axis=1, keepdims=True)
    top_k = min(top_k, len(c))
    best = -np.partition(-(x @ c.T), top_k - 1, axis=1)[:, :top_k]
    return best.mean(axis=1), best.std(axis=1) + 1e-8


def trial_list(ids, n_trials, seed=0):
    rng = np.random.default_rng(seed)
    pairs = rng.choice(len(ids), size=(n_trials, 2))
    return [(ids[a], ids[b]) for a, b in pairs]


@pytest.mark.parametrize(
    "rows_per_chunk, cohort_per_chunk, top_k",
    [(7, 23, 13), (64, 1000, 37), (1, 5, 3), (300, 50, 51)],
)
def test_chunked_cohort_statistics_match_exact(rows_per_chunk, cohort_per_chunk, top_k):
    # 53 rows and 211 cohort rows: no chunk size or top_k divides them
    embeddings = speaker_embeddings(53, seed=1)
    cohort = speaker_embeddings(211, seed=2)
    mean = cohort.mean(axis=0, dtype=np.float64)
    mu, sigma = cohort_statistics(
        embeddings,
        cohort,
        top_k=top_k,
        mean=mean,
        rows_per_chunk=rows_per_chunk,
        cohort_per_chunk=cohort_per_chunk,
    )
    exact_mu, exact_sigma = exact_statistics(embeddings, cohort, top_k, mean)
    assert mu.shape == sigma.shape == (53,)
    np.testing.assert_allclose(mu, exact_mu, rtol=0, atol=1e-5)
    np.testing.assert_allclose(sigma, exact_sigma, rtol=0, atol=1e-5)


def test_statistics_equal_float64_through_every_chunking(monkeypatch):
    import camsat_lobes.scoring as scoring

    # small preparation and float64 rescoring chunks too; duplicated cohort rows make ties
    monkeypatch.setattr(scoring, "_PREPARE_ROWS", 17)
    monkeypatch.setattr(scoring, "_RESCORE_PAIRS", 50)
    embeddings = speaker_embeddings(45, seed=33)
    cohort = speaker_embeddings(180, seed=34)
    cohort = np.concatenate([cohort, cohort[::3]])
    mean = cohort.mean(axis=0, dtype=np.float64)
    mu, sigma = cohort_statistics(
        embeddings, cohort, top_k=21, mean=mean, rows_per_chunk=10, cohort_per_chunk=33
    )
    exact_mu, exact_sigma = exact_statistics(embeddings, cohort, 21, mean)
    np.testing.assert_allclose(mu, exact_mu, rtol=0, atol=1e-10)
    np.testing.assert_allclose(sigma, exact_sigma, rtol=0, atol=1e-10)
    cohort[40, 1] = np.nan
    with pytest.raises(ValueError, match="row 40 of cohort"):
        cohort_statistics(embeddings, cohort)
    with pytest.raises(ValueError, match="row 40 of train_embeddings"):
        CosineBackend.from_training(cohort)


def test_top_k_is_clipped_to_the_cohort():
    embeddings, cohort = speaker_embeddings(4, seed=3), speaker_embeddings(9, seed=4)
    mu, sigma = cohort_statistics(embeddings, cohort, top_k=100, cohort_per_chunk=4)
    exact_mu, exact_sigma = exact_statistics(embeddings, cohort, 9, np.zeros(16))
    np.testing.assert_allclose(mu, exact_mu, atol=1e-5)
    np.testing.assert_allclose(sigma, exact_sigma, atol=1e-5)


def cosine_score(enrol, test, mean=0.0):
    """Reference: cosine of paired rows after subtracting ``mean``, in float64."""
    enrol = np.asarray(enrol, dtype=np.float64) - mean
    test = np.asarray(test, dtype=np.float64) - mean
    norms = np.linalg.norm(enrol, axis=1) * np.linalg.norm(test, axis=1)
    return np.einsum("nd,nd->n", enrol, test) / norms


def test_scores_are_cosines_after_subtracting_the_mean():
    enrol = np.array([[3.0, 1.0], [1.0, 3.0]])
    test = np.array([[3.0, 1.0], [3.0, 1.0]])
    assert CosineBackend(np.zeros(2)).score(enrol, test)[0] == pytest.approx(1.0)
    # Removing the shared offset (2, 2) turns the second pair into opposite vectors.
    assert CosineBackend([2.0, 2.0]).score(enrol, test)[1] == pytest.approx(-1.0)
    with pytest.raises(ValueError, match="row 0 of enrol is all zeros"):
        CosineBackend(np.zeros(2)).score([[0.0, 0.0]], [[1.0, 0.0]])


def test_as_norm_score_matches_the_full_matrix_computation():
    train = speaker_embeddings(300, seed=5)
    enrol, test = speaker_embeddings(40, seed=6), speaker_embeddings(40, seed=7)
    backend = CosineBackend.from_training(train, score_norm="as-norm", top_k=25)
    backend.rows_per_chunk, backend.cohort_per_chunk = 16, 70
    mean = train.mean(axis=0, dtype=np.float64)
    raw = cosine_score(enrol, test, mean=mean)
    mu_e, sigma_e = exact_statistics(enrol, train, 25, mean)
    mu_t, sigma_t = exact_statistics(test, train, 25, mean)
    expected = 0.5 * ((raw - mu_e) / sigma_e + (raw - mu_t) / sigma_t)
    np.testing.assert_allclose(backend.score(enrol, test), expected, rtol=0, atol=1e-5)


def test_snorm_removes_a_per_speaker_bias():
    # Speaker "hub" scores high against everything; s-norm must pull its trials down.
    rng = np.random.default_rng(0)
    cohort = rng.normal(size=(100, 16))
    hub = cohort.mean(axis=0) * 10 + rng.normal(size=16) * 0.1
    others = rng.normal(size=(20, 16))
    enrol = np.vstack([np.repeat(hub[None], 20, 0), others])
    test = np.vstack([others, others[::-1]])
    raw = cosine_score(enrol, test)
    normed = CosineBackend(mean=np.zeros(16), cohort=cohort, top_k=20).score(enrol, test)
    assert np.isfinite(normed).all()
    hub_rank_raw = np.argsort(np.argsort(-raw))[:20].mean()
    hub_rank_norm = np.argsort(np.argsort(-normed))[:20].mean()
    assert hub_rank_norm >= hub_rank_raw


def test_plain_score_is_centred_cosine_on_the_training_mean():
    train = speaker_embeddings(100, seed=8)
    enrol, test = speaker_embeddings(10, seed=9), speaker_embeddings(10, seed=10)
    backend = CosineBackend.from_training(train)
    expected = cosine_score(enrol, test, mean=train.mean(axis=0, dtype=np.float64))
    np.testing.assert_allclose(backend.score(enrol, test), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("score_norm", [None, "as-norm"])
def test_score_trials_matches_paired_score(score_norm):
    train = speaker_embeddings(200, seed=11)
    emb = speaker_embeddings(30, seed=12)
    ids = [f"utt{i}" for i in range(30)]
    trials = trial_list(ids, 80, seed=13)
    backend = CosineBackend.from_training(train, score_norm=score_norm, top_k=20)
    index = {utt: i for i, utt in enumerate(ids)}
    enrol = emb[[index[e] for e, _ in trials]]
    test = emb[[index[t] for _, t in trials]]
    np.testing.assert_allclose(
        backend.score_trials(emb, ids, trials), backend.score(enrol, test), rtol=0, atol=1e-6
    )


@pytest.mark.parametrize("score_norm", [None, "as-norm"])
def test_adding_test_utterances_never_changes_a_score(score_norm):
    train = speaker_embeddings(250, seed=14)
    emb = speaker_embeddings(40, seed=15)
    ids = [f"utt{i}" for i in range(40)]
    trials = trial_list(ids, 120, seed=16)
    backend = CosineBackend.from_training(train, score_norm=score_norm, top_k=30)
    before = backend.score_trials(emb, ids, trials)

    # far-away utterances would move a mean or a cohort computed from test data
    extra = np.concatenate(
        [speaker_embeddings(25, seed=17, offset=50.0), speaker_embeddings(25, seed=18)]
    )
    extra_ids = [f"extra{i}" for i in range(len(extra))]
    after = backend.score_trials(np.concatenate([emb, extra]), ids + extra_ids, trials)
    np.testing.assert_array_equal(after, before)

    # also when the new utterances come first and take part in other trials
    more_trials = trial_list(extra_ids, 30, seed=19) + trials
    shuffled = backend.score_trials(
        np.concatenate([extra, emb]), extra_ids + ids, more_trials[::-1]
    )[::-1][30:]
    np.testing.assert_allclose(shuffled, before, rtol=0, atol=1e-6)


@pytest.mark.parametrize("score_norm", [None, "as-norm"])
def test_from_training_depends_on_the_training_matrix_only(score_norm):
    train = speaker_embeddings(150, seed=20)
    emb = speaker_embeddings(20, seed=21)
    ids = [f"utt{i}" for i in range(20)]
    trials = trial_list(ids, 40, seed=22)
    scores = CosineBackend.from_training(train, score_norm, top_k=10).score_trials(emb, ids, trials)
    again = CosineBackend.from_training(train.copy(), score_norm, top_k=10).score_trials(
        emb, ids, trials
    )
    np.testing.assert_array_equal(again, scores)
    other = CosineBackend.from_training(train + 3.0 * train[:1], score_norm, top_k=10)
    assert np.abs(other.score_trials(emb, ids, trials) - scores).max() > 1e-3


def test_unknown_or_duplicate_ids_are_refused():
    backend = CosineBackend.from_training(speaker_embeddings(20, seed=26))
    emb = speaker_embeddings(3, seed=27)
    with pytest.raises(ValueError, match="'nobody'"):
        backend.score_trials(emb, ["a", "b", "c"], [("a", "b"), ("c", "nobody")])
    with pytest.raises(ValueError, match="appears twice"):
        backend.score_trials(emb, ["a", "b", "a"], [("a", "b")])
    with pytest.raises(ValueError, match="pairs"):
        backend.score_trials(emb, ["a", "b", "c"], [("1", "a", "b")])


def test_cohort_too_small_is_refused():
    train = speaker_embeddings(5, seed=28)
    with pytest.raises(ValueError, match="at least 2"):
        CosineBackend.from_training(train[:1], score_norm="as-norm")
    with pytest.raises(ValueError, match="at least 2"):
        cohort_statistics(train, train[:1])
    with pytest.raises(ValueError, match="top_k"):
        CosineBackend.from_training(train, score_norm="as-norm", top_k=1)
    with pytest.raises(ValueError, match="score_norm"):
        CosineBackend.from_training(train, score_norm="s-norm")


@pytest.mark.parametrize("bad", [np.nan, np.inf, "zero", "mean"])
def test_bad_rows_are_named(bad):
    train = speaker_embeddings(30, seed=29)
    mean = train.mean(axis=0).astype(np.float64)  # exactly representable in float32
    backend = CosineBackend(mean, cohort=train, top_k=5)
    emb = speaker_embeddings(4, seed=30)
    if bad == "zero":
        emb[2] = 0.0
    elif bad == "mean":
        emb[2] = mean
    else:
        emb[2, 3] = bad
    with pytest.raises(ValueError, match="row 2 of test"):
        backend.score(emb[[0, 1, 3, 3]], emb)
    with pytest.raises(ValueError, match="'c'"):
        backend.score_trials(emb, ["a", "b", "c", "d"], [("a", "b"), ("d", "c")])
    with pytest.raises(ValueError, match="row 2 of embeddings"):
        cohort_statistics(emb, train, mean=mean)
    with pytest.raises(ValueError, match="row 2 of cohort"):
        cohort_statistics(train, emb, top_k=2, mean=mean)


def test_non_finite_training_rows_are_named():
    train = speaker_embeddings(30, seed=31)
    train[7, 0] = np.nan
    with pytest.raises(ValueError, match="row 7 of train_embeddings"):
        CosineBackend.from_training(train)


def test_dimension_mismatch_is_refused():
    backend = CosineBackend.from_training(speaker_embeddings(10, seed=32))
    with pytest.raises(ValueError, match="dimension"):
        backend.score(np.ones((2, 8)), np.ones((2, 8)))
    with pytest.raises(ValueError, match="dimension"):
        cohort_statistics(np.ones((2, 8)), np.ones((5, 4)))
