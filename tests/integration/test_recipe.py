"""The recipe end to end: listing, stages, scoring, export, seeds, studies, comparisons.

The end-to-end run (``tiny_run``) uses the small MiniVox corpus and the debug flags of
``tests/recipes/VoxCeleb.csv``; the later tests reuse its prepared data, embeddings
and pseudo-labels.
"""

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from recipe_runs import (
    LISTING,
    RECIPE,
    REPO,
    copy_parts,
    epochs_logged,
    failed_recipe_log,
    listed_files,
    listed_recipes,
    read_column,
    recipe_command,
    run_recipe,
)

from camsat_lobes.comparison import compare_runs, prepare_corpus, score_corpus
from camsat_lobes.inference import CAMSATSpeakerRecognition
from camsat_lobes.scoring import CosineBackend


def test_every_recipe_yaml_is_listed():
    listed = {row["Hparam_file"] for row in listed_recipes()}
    found = {str(p.relative_to(REPO)) for p in REPO.glob("recipes/*/*/hparams/*.yaml")}
    assert found and found <= listed, f"add these to {LISTING.name}: {sorted(found - listed)}"
    for row in listed_recipes():
        for column in ("Script_file", "Hparam_file", "Readme_file"):
            assert (REPO / row[column]).exists(), row[column]


def test_help_lists_the_recipe_keys_with_their_comments():
    result = subprocess.run(
        [sys.executable, str(RECIPE / "train.py"), "hparams/camsat.yaml", "--help"],
        cwd=RECIPE,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Recipe keys of hparams/camsat.yaml" in result.stdout
    assert "--seeds=null" in result.stdout and "--camsat_mu=2.0" in result.stdout
    assert "Weight of the marginal entropy" in result.stdout
    assert "--distributed_backend" in result.stdout  # SpeechBrain's own options follow


MINIVOX_ROWS = [r for r in listed_recipes()[1:] if "voxceleb2" not in r["Hparam_file"]]


@pytest.mark.slow
@pytest.mark.parametrize("row", MINIVOX_ROWS, ids=lambda row: Path(row["Hparam_file"]).name)
def test_other_listed_recipes_run(row, small_minivox, tmp_path):
    """The listed MiniVox recipes (the VoxCeleb one: test_voxceleb_recipe.py)."""
    run_recipe(recipe_command(row, tmp_path / "run", small_minivox), timeout=3000)
    for name in listed_files(row):
        assert (tmp_path / "run" / name).exists(), name


def test_end_to_end_writes_every_stage(tiny_run):
    row, out = tiny_run
    for name in listed_files(row):
        assert (out / name).exists(), name
    data = out / "save" / "data"
    for name in ("train_utts.csv", "train.csv", "test.csv", "trials.csv", "prepare_report.json"):
        assert (data / name).exists(), name
    round1 = out / "round1"
    assert list((round1 / "encoder").glob("**/CKPT*")), "no stage-1 checkpoint"
    train_emb = round1 / "embeddings" / "train"
    ids = (train_emb / "ids.txt").read_text().split()
    emb = torch.from_numpy(np.load(train_emb / "embeddings.npy"))
    views = np.load(train_emb / "views.npy")
    assert emb.shape[0] == len(ids) == views.shape[0] and views.shape[1] == 2
    systems = sorted(p.name for p in (round1 / "systems").iterdir())
    assert systems == ["camsat", "kmeans_true_k", "stage1", "true_labels"]
    for system in systems:
        result = json.loads((round1 / "systems" / system / "verification.json").read_text())
        assert 0.0 <= result["EER"] <= 100.0 and result["minDCF"] >= 0.0, system
        if system != "stage1":
            metrics = json.loads(
                (round1 / "systems" / system / "clustering_metrics.json").read_text()
            )
            assert 0.0 <= metrics["nmi"] <= 1.0 and 0.0 <= metrics["acc"] <= 1.0
            assert metrics["n_clusters"] >= 1
            assert list((round1 / "systems" / system / "speaker").glob("CKPT*"))
    truth = json.loads((round1 / "systems" / "true_labels" / "clustering_metrics.json").read_text())
    assert truth["nmi"] == pytest.approx(1.0) and truth["acc"] == pytest.approx(1.0)
    report = out / "report"
    for name in ("results.md", "results.csv", "report.json", "clustering_curves_round1.png"):
        assert (report / name).stat().st_size > 0, name
    results_md = (report / "results.md").read_text()
    assert "| 1 | camsat |" in results_md and "Scoring protocol" in results_md
    assert "## Trials: voxceleb" in results_md and "## Trials: all_pairs" in results_md
    intervals = json.loads((round1 / "intervals.json").read_text())
    for trial_list in ("voxceleb", "all_pairs"):
        for system in systems:
            own = intervals[trial_list][system]
            assert own["EER_low"] <= own["EER"] <= own["EER_high"], (trial_list, system)
        assert set(intervals[trial_list]["differences"]) == set(systems) - {"camsat"}
        assert set(intervals[trial_list]["stage1_differences"]) == set(systems) - {"stage1"}
    assert "EER − stage1 [95 % CI]" in results_md
    # Round 2 re-extracts with round 1's CAMSAT network, clusters and trains again.
    round2 = out / "round2"
    assert (round2 / "embeddings" / "train" / "embeddings.npy").exists()
    assert "| 2 | camsat |" in (report / "results.md").read_text()
    for system in systems:
        assert (round2 / "systems" / system / "verification.json").exists(), system


def test_every_stage_records_what_it_was_made_with(tiny_run):
    """Each stage's record names its settings and the records it read."""
    _, out = tiny_run
    record = json.loads((out / "round1" / "systems" / "camsat" / "done.json").read_text())
    assert record["options"]["system.clusterer.n_clusters"] == "12"
    assert set(record["inputs"]) == {"extract round1"}
    truth = out / "round1" / "systems" / "true_labels" / "speaker" / "done.json"
    train = json.loads(truth.read_text())
    assert train["options"]["system.speaker_epochs"] == "1"  # its own epochs (true_labels_epochs)
    assert {"prepare", "cluster true_labels round1", "encoder"} <= set(train["inputs"])
    assert not any(str(out) in text for text in train["options"].values())


def test_scores_use_training_statistics_only(tiny_run):
    """Every system is scored with its own network's training embeddings, never the test's."""
    _, out = tiny_run
    systems = out / "round1" / "systems"
    for system in ("camsat", "kmeans_true_k", "true_labels"):
        train = np.load(systems / system / "train_embeddings" / "embeddings.npy")
        test = np.load(systems / system / "test_embeddings" / "embeddings.npy")
        test_ids = (systems / system / "test_embeddings" / "ids.txt").read_text().split()
        with open(out / "save" / "data" / "trials.csv", newline="") as f:
            trials = [(row["enrol_id"], row["test_id"]) for row in csv.DictReader(f)]
        expected = CosineBackend.from_training(train).score_trials(test, test_ids, trials)
        saved = np.loadtxt(systems / system / "scores_voxceleb.txt")
        np.testing.assert_allclose(saved, expected, atol=1e-6)


def test_exported_model_scores_like_the_recipe(tiny_run):
    """SpeechBrain's interface loads a system's export and gives the recipe's trial score.

    Its threshold is chosen on training utterances, never on the test trials.
    """
    _, out = tiny_run
    folder = out / "round1" / "systems" / "camsat"
    model = CAMSATSpeakerRecognition.from_hparams(source=str(folder / "inference"))
    with open(out / "save" / "data" / "test.csv", newline="") as f:
        wav = {row["ID"]: row["wav"] for row in csv.DictReader(f)}
    with open(out / "save" / "data" / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    scores = np.loadtxt(folder / "scores_voxceleb.txt")
    exported = json.loads((folder / "verification.json").read_text())["exported_threshold"]
    assert (
        "training utterances" in exported["source"] and "test trials were not" in exported["source"]
    )
    threshold = json.loads((folder / "inference" / "threshold.json").read_text())
    assert threshold["threshold"] == pytest.approx(exported["value"])
    for index in (0, len(trials) - 1):
        score, decision = model.verify_files(
            wav[trials[index]["enrol_id"]], wav[trials[index]["test_id"]]
        )
        assert float(score) == pytest.approx(scores[index], abs=1e-4)
        assert bool(decision) == (scores[index] > exported["value"])


def test_seeds_rerun_the_random_stages(tiny_run, tmp_path, small_minivox):
    """--seeds adds a seed's clusterings, networks and scores beside the main seed's."""
    row, out = tiny_run
    run = copy_parts(out, tmp_path / "seeds", "save", "round1")
    main_seed = int(re.search(r"^seed: (\d+)", (out / "hyperparams.yaml").read_text(), re.M)[1])
    command = recipe_command(
        row, run, small_minivox, "--rounds=1", f"--seeds=[{main_seed},{main_seed + 1}]"
    )
    run_recipe(command)
    extra = run / f"seed{main_seed + 1}" / "round1" / "systems"
    assert sorted(p.name for p in extra.iterdir()) == ["camsat", "kmeans_true_k", "true_labels"]
    assert (run / f"seed{main_seed + 1}" / "round1" / "intervals.json").exists()
    results = (run / "report" / "results.md").read_text()
    assert "(2) |" in results  # camsat: mean ± std over the 2 seeds


@pytest.mark.slow
def test_study_seeds_share_the_first_seeds_stage1(small_minivox, tmp_path):
    """analysis.py --seeds: the other seeds cluster the first seed's stage-1 embeddings."""
    row = next(r for r in listed_recipes() if r["Script_file"].endswith("analysis.py"))
    run = tmp_path / "study"
    run_recipe(recipe_command(row, run, small_minivox, "--seeds=[7,8]"), timeout=1800)
    assert not (run / "seed7").exists() and not (run / "seed8" / "round1" / "encoder").exists()
    first, other = run / "round1" / "systems", run / "seed8" / "round1" / "systems"
    networks = {p.name for p in first.iterdir()} - {"stage1"}  # stage 1 is the first seed's
    assert {p.name for p in other.iterdir()} == networks
    labels = [
        (folder / "kmeans_k6_l2_aam_none" / "pseudo_labels.csv").read_text()
        for folder in (first, other)
    ]
    assert labels[0] != labels[1]  # the seed changes the clustering
    assert (run / "seed8" / "analysis" / "records.csv").exists()
    table = (run / "analysis_over_seeds" / "eer_over_seeds.md").read_text()
    assert "over 2 seeds" in table and "kmeans_k6_l2" in table


def test_collapsed_clustering_stops_before_training(tiny_run, tmp_path, small_minivox):
    """A clustering left with one cluster is an error naming the system and the knobs."""
    row, out = tiny_run
    run = copy_parts(out, tmp_path / "collapse", "save", "round1/embeddings", "round1/encoder")
    flags = ["--rounds=1", "--first_stage=cluster", "--last_stage=train", "--embedding_norm=l2"]
    # A negative weight rewards a low marginal entropy: the head collapses for sure.
    flags += ["--camsat_mu=-4.0", "--clustering_epochs=10", "--true_labels_reference=False"]
    log = failed_recipe_log(recipe_command(row, run, small_minivox, *flags))
    assert "system 'camsat' kept 1 cluster(s)" in log
    assert "camsat_mu" in log
    assert not (run / "round1" / "systems" / "camsat" / "speaker").exists()


def test_rerun_skips_finished_stages(tiny_run, small_minivox):
    row, out = tiny_run
    before = (out / "round1" / "systems" / "camsat" / "pseudo_labels.csv").stat().st_mtime_ns
    result = run_recipe(recipe_command(row, out, small_minivox))
    log = result.stdout + result.stderr
    assert "already done" in log and "other settings" not in log
    assert (
        out / "round1" / "systems" / "camsat" / "pseudo_labels.csv"
    ).stat().st_mtime_ns == before


@pytest.mark.slow
def test_development_split_reuses_a_finished_stage1(tiny_run, tmp_path, small_minivox):
    """A development run scores held-out training speakers; a second one reuses its stage 1."""
    row, _ = tiny_run
    dev = ["--development_speakers=2", "--n_speakers=4", "--n_clusters=8", "--rounds=1"]
    dev += ["--full_trials=False", "--main_system=true_labels"]
    first = tmp_path / "dev_a"
    run_recipe(recipe_command(row, first, small_minivox, *dev))
    data = first / "save" / "data"
    train_speakers = set(read_column(data / "train_utts.csv", "spk_id"))
    test_speakers = set(read_column(data / "test.csv", "spk_id"))
    assert len(test_speakers) == 2 and len(train_speakers) == 4
    assert not test_speakers & train_speakers
    second = tmp_path / "dev_b"
    flags = [*dev, f"--reuse_stage1_from={first}", "--true_labels_epochs=2"]
    log = run_recipe(recipe_command(row, second, small_minivox, *flags))
    assert "Reusing round1/encoder" in log.stdout + log.stderr
    encoder_log = Path("round1") / "encoder" / "train_log.txt"
    assert (second / encoder_log).read_text() == (first / encoder_log).read_text()
    for name in ("embeddings.npy", "views.npy"):
        a = np.load(first / "round1" / "embeddings" / "train" / name)
        assert np.array_equal(a, np.load(second / "round1" / "embeddings" / "train" / name))
    speaker_log = second / "round1" / "systems" / "true_labels" / "speaker" / "train_log.txt"
    assert epochs_logged(speaker_log) == [1, 2]
    results = (second / "report" / "results.md").read_text()
    assert "EER − true_labels" in results


def test_without_systems_only_stage1_is_scored(tiny_run, tmp_path, small_minivox):
    """--systems=null evaluates the stage-1 encoder alone, with the run's own scores."""
    row, out = tiny_run
    run = copy_parts(out, tmp_path / "stage1_only", "save", "round1/encoder", "round1/embeddings")
    flags = ["--rounds=1", "--systems=null", "--true_labels_reference=False"]
    run_recipe(recipe_command(row, run, small_minivox, *flags))
    assert [p.name for p in (run / "round1" / "systems").iterdir()] == ["stage1"]
    for name in ("scores_voxceleb.txt", "scores_all_pairs.txt"):
        scores = np.loadtxt(run / "round1" / "systems" / "stage1" / name)
        expected = np.loadtxt(out / "round1" / "systems" / "stage1" / name)
        assert np.array_equal(scores, expected), name
    assert "| stage1 |" in (run / "report" / "results.md").read_text()
    # compare_runs pairs the two runs' stage-1 scores: identical, so a difference of 0.
    compare = [sys.executable, str(RECIPE / "compare_runs.py"), str(out), str(run)]
    table = run_recipe([*compare, "--n_resamples=50"]).stdout
    assert f"| {run} |" in table and "+0.0 [+0.0, +0.0] |" in table
    trials = run / "save" / "data" / "trials_all_pairs.csv"
    header, *rows = trials.read_text().splitlines(keepends=True)
    trials.write_text(header + "".join(reversed(rows)))  # the same trials in another order
    result = subprocess.run(compare, cwd=RECIPE, capture_output=True, text=True)
    assert result.returncode != 0 and "scored other all_pairs trials" in result.stderr


def test_runs_are_scored_on_another_corpus(tiny_run, tmp_path, small_minivox, tiny_minivox):
    """Exported models score another corpus as the recipe scored its own trials."""
    _, out = tiny_run
    own = prepare_corpus(small_minivox, tmp_path / "own")
    for system in ("stage1", "camsat"):
        rows, scores = score_corpus(out, system, own)
        saved = np.loadtxt(out / "round1" / "systems" / system / "scores_all_pairs.txt")
        assert len(rows) == len(saved) and np.allclose(scores, saved, atol=1e-5), system
    other = prepare_corpus(tiny_minivox, tmp_path / "other")
    copy = copy_parts(out, tmp_path / "copy", "round1/systems/stage1/inference")
    result = compare_runs([out, copy], "stage1", n_resamples=20, corpus_folder=other)
    assert result["n_speakers"] == 2 and result["differences"][str(copy)]["EER"] == 0.0
    with pytest.raises(FileNotFoundError, match="neither a corpus folder nor a MiniVox preset"):
        prepare_corpus(tmp_path / "missing", tmp_path / "x")
