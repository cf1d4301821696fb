"""Time and peak memory of AS-norm scoring at VoxCeleb scale (``CosineBackend.score_trials``).

For each cohort size, one fresh child process builds synthetic inputs (a VoxCeleb1-O-like
trial list and a VoxCeleb2-like training cohort), records its peak RSS after just holding
them ("inputs RSS"), then builds ``CosineBackend.from_training(cohort, "as-norm")`` and
times ``score_trials`` on the trial list, and records its peak RSS again. Each size runs
in its own process (``ru_maxrss`` of a fresh interpreter), so a larger size cannot mask a
smaller one; the parent stays small and imports neither torch nor the package. The peak
includes the cohort as given (float32) and its centred, normalised float32 copy.

A check row compares, on a size where the exact computation fits, the chunked scores
(top-k chosen in float32, rescored in float64) with full-matrix float64 ones
(:func:`exact_as_norm`): the maximum absolute difference must stay at or below 1e-5.

Synthetic embeddings (``speaker_embeddings``): speaker centres drawn on the unit sphere,
per-utterance noise and an offset shared by all utterances (the direction that centring
on the training mean removes), float32. Test and cohort speakers are disjoint. Half the
trials are target trials (two different utterances of one speaker).

Usage::

    python bench/asnorm.py                               # cohorts of 100k and 1.09M rows
    python bench/asnorm.py --cohorts 100000 --threads 1
    python bench/asnorm.py --cohorts 1090000 --top-k 300 --skip-check
"""

import argparse
import concurrent.futures
import json
import multiprocessing
import resource
import time

import numpy as np


def peak_rss_mib():
    """Peak resident set size of this process so far, in MiB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def speaker_embeddings(n, dim, n_speakers, seed, chunk=8192):
    """Float32 speaker-like embeddings and their speaker labels, filled chunk by chunk."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_speakers, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    offset = np.full(dim, 0.5 / dim**0.5)  # shared by every utterance, of any speaker
    labels = rng.integers(0, n_speakers, n)
    x = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * 0.8 / dim**0.5
        x[start:stop] = centres[labels[start:stop]] + offset + noise
    return x, labels


def make_trials(labels, n_trials, seed):
    """Half target, half non-target (enrol, test) row pairs over utterances with ``labels``."""
    rng = np.random.default_rng(seed)
    order = np.argsort(labels, kind="stable")
    counts = np.bincount(labels)
    starts = np.cumsum(counts) - counts
    if counts.min() < 2:
        raise ValueError("every test speaker needs at least 2 utterances: use fewer speakers")
    n_target = n_trials // 2
    enrol = rng.integers(0, len(labels), n_trials)
    speaker = labels[enrol[:n_target]]
    pick = rng.integers(0, counts[speaker] - 1)  # another utterance of the same speaker
    rank = np.empty(len(labels), dtype=np.int64)
    rank[order] = np.arange(len(labels))
    own = rank[enrol[:n_target]] - starts[speaker]
    pick = pick + (pick >= own)
    test = np.empty(n_trials, dtype=np.int64)
    test[:n_target] = order[starts[speaker] + pick]
    test[n_target:] = rng.integers(0, len(labels), n_trials - n_target)
    same = labels[test[n_target:]] == labels[enrol[n_target:]]
    while same.any():
        test[n_target:][same] = rng.integers(0, len(labels), same.sum())
        same = labels[test[n_target:]] == labels[enrol[n_target:]]
    return enrol, test


def make_test_set(n_utterances, n_trials, dim, n_speakers, seed):
    """Test embeddings, their ids and the (enrol_id, test_id) trial list."""
    emb, labels = speaker_embeddings(n_utterances, dim, n_speakers, seed)
    ids = [f"spk{label:03d}/utt{i:05d}" for i, label in enumerate(labels)]
    enrol, test = make_trials(labels, n_trials, seed + 1)
    trials = [(ids[e], ids[t]) for e, t in zip(enrol.tolist(), test.tolist())]
    n_used = len(np.unique(np.concatenate([enrol, test])))
    return emb, ids, trials, n_used


def measure(settings, cohort_rows):
    """In a fresh process: peak RSS holding the inputs, then time and peak RSS of scoring."""
    import torch

    from camsat_lobes.scoring import CosineBackend

    torch.set_num_threads(settings["threads"])
    imports_rss = peak_rss_mib()
    emb, ids, trials, n_used = make_test_set(
        settings["utterances"],
        settings["trials"],
        settings["dim"],
        settings["test_speakers"],
        settings["seed"],
    )
    cohort, _ = speaker_embeddings(
        cohort_rows, settings["dim"], settings["train_speakers"], settings["seed"] + 100
    )
    inputs_rss = peak_rss_mib()
    start = time.perf_counter()
    backend = CosineBackend.from_training(cohort, "as-norm", top_k=settings["top_k"])
    scores = backend.score_trials(emb, ids, trials)
    seconds = time.perf_counter() - start
    if not np.isfinite(scores).all():
        raise RuntimeError("non-finite scores")
    return {
        "cohort_rows": cohort_rows,
        "trials": len(trials),
        "utterances": n_used,
        "imports_rss": imports_rss,
        "inputs_rss": inputs_rss,
        "peak_rss": peak_rss_mib(),
        "seconds": seconds,
    }


def exact_as_norm(enrol, test, cohort, top_k, mean):
    """AS-norm scores from the full float64 trials x cohort matrices (small sizes only)."""
    from camsat_lobes.verification import cosine_score

    def unit(x):
        """Rows centred on the mean and L2-normalised."""
        x = np.asarray(x, dtype=np.float64) - mean
        return x / np.linalg.norm(x, axis=1, keepdims=True)

    def statistics(side):
        """Mean and std of a side's top-k cohort scores."""
        best = -np.partition(-(unit(side) @ unit(cohort).T), top_k - 1, axis=1)[:, :top_k]
        return best.mean(axis=1), best.std(axis=1) + 1e-8

    raw = cosine_score(enrol, test, mean=mean)
    (mu_e, sigma_e), (mu_t, sigma_t) = statistics(enrol), statistics(test)
    return 0.5 * ((raw - mu_e) / sigma_e + (raw - mu_t) / sigma_t)


def check(settings):
    """In a fresh process: max |chunked - exact float64| AS-norm score on a small size."""
    import torch

    from camsat_lobes.scoring import CosineBackend

    torch.set_num_threads(settings["threads"])
    n_utterances = max(2 * settings["test_speakers"], settings["check_trials"] // 8)
    emb, ids, trials, n_used = make_test_set(
        n_utterances,
        settings["check_trials"],
        settings["dim"],
        settings["test_speakers"],
        settings["seed"],
    )
    cohort, _ = speaker_embeddings(
        settings["check_cohort"], settings["dim"], settings["train_speakers"], settings["seed"]
    )
    backend = CosineBackend.from_training(cohort, "as-norm", top_k=settings["top_k"])
    # small chunks, so the check crosses several row and cohort blocks
    backend.rows_per_chunk, backend.cohort_per_chunk = 100, 3000
    chunked = backend.score_trials(emb, ids, trials)
    index = {utt: i for i, utt in enumerate(ids)}
    enrol = emb[[index[e] for e, _ in trials]].astype(np.float64)
    test = emb[[index[t] for _, t in trials]].astype(np.float64)
    mean = cohort.mean(axis=0, dtype=np.float64)
    exact = exact_as_norm(enrol, test, cohort, settings["top_k"], mean)
    return {
        "trials": len(trials),
        "utterances": n_used,
        "cohort_rows": settings["check_cohort"],
        "max_abs_diff": float(np.abs(chunked - exact).max()),
        "score_range": float(exact.max() - exact.min()),
    }


def in_fresh_process(function, *args):
    """Run ``function(*args)`` in a newly spawned interpreter and return its result."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=context) as pool:
        return pool.submit(function, *args).result()


def main():
    """Parse the options, run every cohort size and the check, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cohorts", type=int, nargs="+", default=[100000, 1090000])
    parser.add_argument("--trials", type=int, default=37720, help="VoxCeleb1-O: 37,720")
    parser.add_argument("--utterances", type=int, default=4708, help="VoxCeleb1-O: 4,708")
    parser.add_argument("--test-speakers", type=int, default=40)
    parser.add_argument("--train-speakers", type=int, default=5994, help="VoxCeleb2 dev: 5,994")
    parser.add_argument("--dim", type=int, default=192)
    parser.add_argument("--top-k", type=int, default=100, help="the recipe's cohort_top_k")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument("--check-trials", type=int, default=2000)
    parser.add_argument("--check-cohort", type=int, default=20000)
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    settings = vars(args)
    print("Settings:", json.dumps(settings), flush=True)

    rows = []
    for cohort_rows in args.cohorts:
        rows.append(in_fresh_process(measure, settings, cohort_rows))
        print(f"done cohort {cohort_rows}: {rows[-1]['seconds']:.1f} s", flush=True)
    if rows:
        print(
            f"\n## AS-norm score_trials, {args.dim}-d float32 embeddings, top_k {args.top_k}, "
            f"{args.threads} torch threads\n"
        )
        print(
            "| cohort rows | trials | utterances scored | imports RSS (MiB) | inputs RSS (MiB) "
            "| peak RSS (MiB) | score_trials (s) |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|")
        for r in rows:
            print(
                f"| {r['cohort_rows']:,} | {r['trials']:,} | {r['utterances']:,} "
                f"| {r['imports_rss']:.0f} | {r['inputs_rss']:.0f} | {r['peak_rss']:.0f} "
                f"| {r['seconds']:.1f} |"
            )
        print(
            "\nPeak RSS of each fresh child: after importing torch and the package (imports), "
            "after also building the test set and the float32 cohort (inputs), and after "
            "scoring (peak). score_trials (s) includes from_training and the one-off "
            "centring and normalisation of the cohort."
        )
    if not args.skip_check:
        result = in_fresh_process(check, settings)
        verdict = "yes" if result["max_abs_diff"] <= 1e-5 else "**NO**"
        print("\n## Check: score_trials against full-matrix float64 (exact_as_norm)\n")
        print("| trials | utterances | cohort rows | max abs difference | <= 1e-5 | score range |")
        print("|---:|---:|---:|---:|:---:|---:|")
        print(
            f"| {result['trials']:,} | {result['utterances']:,} | {result['cohort_rows']:,} "
            f"| {result['max_abs_diff']:.2e} | {verdict} | {result['score_range']:.1f} |"
        )
        if result["max_abs_diff"] > 1e-5:
            raise SystemExit("the chunked scores differ from the exact ones by more than 1e-5")


if __name__ == "__main__":
    main()
