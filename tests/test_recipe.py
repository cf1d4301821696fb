"""The recipe: listing, a tiny end-to-end run, scoring, export, seeds, resume after a kill, DDP.

The end-to-end run uses the small MiniVox corpus and the debug flags of
``tests/recipes/VoxCeleb.csv``; the later tests reuse its prepared data,
embeddings and pseudo-labels.
"""

import csv
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from camsat_lobes.inference import CAMSATSpeakerRecognition
from camsat_lobes.scoring import CosineBackend

REPO = Path(__file__).resolve().parents[1]
LISTING = REPO / "tests" / "recipes" / "VoxCeleb.csv"
RECIPE = REPO / "recipes" / "VoxCeleb" / "CAMSAT"


def listed_recipes():
    with open(LISTING, newline="") as f:
        return list(csv.DictReader(f))


def recipe_command(row, output_folder, data_folder, *extra):
    """The listed command with its debug flags; ``extra`` flags replace listed ones."""
    flags = [*row["test_debug_flags"].split(), f"--output_folder={output_folder}"]
    flags += [f"--data_folder={data_folder}", *extra]
    by_name = {flag.split("=")[0]: flag for flag in flags}
    return [sys.executable, str(REPO / row["Script_file"]), str(REPO / row["Hparam_file"])] + list(
        by_name.values()
    )


def recipe_env():
    return {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}


def run_recipe(command, cwd, timeout=900):
    result = subprocess.run(
        command, cwd=cwd, env=recipe_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def failed_recipe_log(command, timeout=900):
    """Run a recipe command that must fail; return its stdout and stderr together."""
    result = subprocess.run(
        command, cwd=RECIPE, env=recipe_env(), capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode != 0, result.stdout[-3000:]
    return result.stdout + result.stderr


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


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, small_minivox):
    """The first listed recipe run end to end on small MiniVox."""
    row = listed_recipes()[0]
    out = tmp_path_factory.mktemp("recipe") / "run"
    run_recipe(recipe_command(row, out, small_minivox), cwd=RECIPE)
    return row, out


@pytest.mark.slow
@pytest.mark.parametrize("row", listed_recipes()[1:], ids=lambda row: Path(row["Hparam_file"]).name)
def test_other_listed_recipes_run(row, small_minivox, tmp_path):
    run_recipe(recipe_command(row, tmp_path / "run", small_minivox), cwd=RECIPE, timeout=3000)
    for name in listed_files(row):
        assert (tmp_path / "run" / name).exists(), name


def listed_files(row):
    """The files a listing row's ``test_debug_checks`` expects in the output folder."""
    match = re.search(r"file_exists=\[([^\]]*)\]", row["test_debug_checks"])
    return match[1].split(",") if match else []


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
    """SpeechBrain's interface loads a system's export and gives the recipe's trial score."""
    _, out = tiny_run
    folder = out / "round1" / "systems" / "camsat"
    model = CAMSATSpeakerRecognition.from_hparams(source=str(folder / "inference"))
    with open(out / "save" / "data" / "test.csv", newline="") as f:
        wav = {row["ID"]: row["wav"] for row in csv.DictReader(f)}
    with open(out / "save" / "data" / "trials.csv", newline="") as f:
        trials = list(csv.DictReader(f))
    scores = np.loadtxt(folder / "scores_voxceleb.txt")
    threshold = json.loads((folder / "verification.json").read_text())["voxceleb"]["threshold"]
    for index in (0, len(trials) - 1):
        score, decision = model.verify_files(
            wav[trials[index]["enrol_id"]], wav[trials[index]["test_id"]]
        )
        assert float(score) == pytest.approx(scores[index], abs=1e-4)
        assert bool(decision) == (scores[index] > threshold)


def test_seeds_rerun_the_random_stages(tiny_run, tmp_path, small_minivox):
    """--seeds adds a seed's clusterings, networks and scores beside the main seed's."""
    row, out = tiny_run
    run = tmp_path / "seeds"
    shutil.copytree(out, run, ignore=shutil.ignore_patterns("round2", "report"))
    main_seed = int(re.search(r"^seed: (\d+)", (run / "hyperparams.yaml").read_text(), re.M)[1])
    command = recipe_command(
        row, run, small_minivox, "--rounds=1", f"--seeds=[{main_seed},{main_seed + 1}]"
    )
    run_recipe(command, cwd=RECIPE)
    extra = run / f"seed{main_seed + 1}" / "round1" / "systems"
    assert sorted(p.name for p in extra.iterdir()) == ["camsat", "kmeans_true_k", "true_labels"]
    assert (run / f"seed{main_seed + 1}" / "round1" / "intervals.json").exists()
    results = (run / "report" / "results.md").read_text()
    assert "(2) |" in results  # camsat: mean ± std over the 2 seeds


def test_collapsed_clustering_stops_before_training(tiny_run, tmp_path, small_minivox):
    """A clustering left with one cluster is an error naming the system and the knobs."""
    row, out = tiny_run
    run = tmp_path / "collapse"
    shutil.copytree(out / "save", run / "save")
    shutil.copytree(out / "round1" / "embeddings", run / "round1" / "embeddings")
    shutil.copytree(out / "round1" / "encoder", run / "round1" / "encoder")
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
    result = run_recipe(recipe_command(row, out, small_minivox), cwd=RECIPE)
    log = result.stdout + result.stderr
    assert "already done" in log
    assert (
        out / "round1" / "systems" / "camsat" / "pseudo_labels.csv"
    ).stat().st_mtime_ns == before


def copy_until_clustering(out, destination):
    """A run folder holding everything before the speaker-training stage."""
    shutil.copytree(out / "save", destination / "save")
    systems = destination / "round1" / "systems"
    for system in ("camsat", "kmeans_true_k", "true_labels"):
        source = out / "round1" / "systems" / system
        (systems / system).mkdir(parents=True)
        for name in ("pseudo_labels.csv", "clustering_metrics.json", "history.json", "done.json"):
            shutil.copy(source / name, systems / system / name)
    return destination


def read_column(path, column):
    with open(path, newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


def epochs_logged(train_log):
    return [int(m) for m in re.findall(r"^epoch: (\d+)", train_log.read_text(), flags=re.M)]


def test_changed_corpus_is_not_silently_reused(tiny_run, small_minivox, tmp_path):
    """A rerun on a corpus that lost a file stops: later stages used the old manifests."""
    row, out = tiny_run
    corpus = tmp_path / "corpus"
    shutil.copytree(small_minivox, corpus)
    next(iter(sorted((corpus / "wav").rglob("*.wav")))).unlink()
    run = tmp_path / "run"
    shutil.copytree(out / "save", run / "save")
    shutil.copytree(out / "round1" / "encoder", run / "round1" / "encoder")
    log = failed_recipe_log(recipe_command(row, run, corpus, "--rounds=1"))
    assert "changed since" in log
    assert "new --output_folder" in log


def test_killed_training_resumes_from_its_checkpoint(tiny_run, tmp_path, small_minivox):
    row, out = tiny_run
    run = copy_until_clustering(out, tmp_path / "run")
    command = recipe_command(
        row,
        run,
        small_minivox,
        "--first_stage=train",
        "--last_stage=train",
        "--speaker_epochs=3",
        "--true_labels_reference=False",
        "--rounds=1",
    )
    # The first system trained is the k-means reference: kill it once its first
    # checkpoint is complete.
    speaker = run / "round1" / "systems" / "kmeans_true_k" / "speaker"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        command,
        cwd=RECIPE,
        env=env,
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 600
    while (
        not list(speaker.glob("CKPT*/COMPLETE"))
        and process.poll() is None
        and time.time() < deadline
    ):
        time.sleep(0.2)
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
    stderr = process.communicate()[1]
    assert list(speaker.glob("CKPT*")), (
        "the run ended before its first checkpoint:\n" + stderr[-3000:]
    )
    assert not (speaker / "done.json").exists()
    first_epochs = epochs_logged(speaker / "train_log.txt")

    run_recipe(command, cwd=RECIPE)
    epochs = epochs_logged(speaker / "train_log.txt")
    assert epochs == sorted(set(epochs)) == [1, 2, 3], epochs
    assert epochs[: len(first_epochs)] == first_epochs
    assert (speaker / "done.json").exists()
    # The checkpoint holds the class weights: the resumed run does not imprint them again.
    assert "kmeans_true_k: resuming from its last checkpoint" in (run / "log.txt").read_text()


@pytest.mark.ddp
def test_torchrun_two_processes_matches_single_process_checkpoint(
    tiny_run, tmp_path, small_minivox
):
    row, out = tiny_run
    run = copy_until_clustering(out, tmp_path / "ddp")
    flags = ["--first_stage=train", "--last_stage=train", "--true_labels_reference=False"]
    flags.append("--rounds=1")
    flags.append("--distributed_backend=gloo")
    command = recipe_command(row, run, small_minivox, *flags)
    torchrun = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--master_port=29533",
    ]
    run_recipe(torchrun + command[1:], cwd=RECIPE)

    def checkpoint(root):
        ckpt = sorted((root / "round1" / "systems" / "camsat" / "speaker").glob("CKPT*"))[-1]
        return torch.load(ckpt / "embedding_model.ckpt", map_location="cpu")

    single, parallel = checkpoint(out), checkpoint(run)
    assert single.keys() == parallel.keys()
    assert all(single[k].shape == parallel[k].shape for k in single)
    assert not any(k.startswith("module.") for k in parallel)


def test_stage1_trained_on_other_filter_banks_is_not_silently_reused(
    tiny_run, small_minivox, tmp_path
):
    """Resuming a finished stage 1 with another frame rate stops and names the option."""
    row, out = tiny_run
    record = out / "round1" / "encoder" / "front_end.yaml"
    assert "hop_length: 20.0" in record.read_text()
    run = tmp_path / "run"
    shutil.copytree(out / "save", run / "save")
    shutil.copytree(out / "round1" / "encoder", run / "round1" / "encoder")
    flags = ["--feature_hop_ms=10.0", "--rounds=1"]
    log = failed_recipe_log(recipe_command(row, run, small_minivox, *flags))
    assert "trained on other filter banks" in log and "--feature_hop_ms" in log
    assert not (run / "round1" / "embeddings" / "done.json").exists()


def test_development_split_reuses_a_finished_stage1(tiny_run, tmp_path, small_minivox):
    """A development run scores held-out training speakers; a second one reuses its stage 1."""
    row, _ = tiny_run
    dev = ["--development_speakers=2", "--n_speakers=4", "--n_clusters=8", "--rounds=1"]
    dev += ["--full_trials=False", "--main_system=true_labels"]
    first = tmp_path / "dev_a"
    run_recipe(recipe_command(row, first, small_minivox, *dev), cwd=RECIPE)
    data = first / "save" / "data"
    train_speakers = set(read_column(data / "train_utts.csv", "spk_id"))
    test_speakers = set(read_column(data / "test.csv", "spk_id"))
    assert len(test_speakers) == 2 and len(train_speakers) == 4
    assert not test_speakers & train_speakers
    second = tmp_path / "dev_b"
    flags = [*dev, f"--reuse_stage1_from={first}", "--true_labels_epochs=2"]
    log = run_recipe(recipe_command(row, second, small_minivox, *flags), cwd=RECIPE)
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
    run = tmp_path / "stage1_only"
    for part in ("save", "round1/encoder", "round1/embeddings"):
        shutil.copytree(out / part, run / part)
    flags = ["--rounds=1", "--systems=null", "--true_labels_reference=False"]
    run_recipe(recipe_command(row, run, small_minivox, *flags), cwd=RECIPE)
    assert [p.name for p in (run / "round1" / "systems").iterdir()] == ["stage1"]
    for name in ("scores_voxceleb.txt", "scores_all_pairs.txt"):
        scores = np.loadtxt(run / "round1" / "systems" / "stage1" / name)
        expected = np.loadtxt(out / "round1" / "systems" / "stage1" / name)
        assert np.array_equal(scores, expected), name
    assert "| stage1 |" in (run / "report" / "results.md").read_text()
    # compare_runs pairs the two runs' stage-1 scores: identical, so a difference of 0.
    compare = [sys.executable, str(RECIPE / "compare_runs.py"), str(out), str(run)]
    table = run_recipe([*compare, "--n_resamples=50"], cwd=RECIPE).stdout
    assert f"| {run} |" in table and "+0.0 [+0.0, +0.0] |" in table
    trials = run / "save" / "data" / "trials_all_pairs.csv"
    header, *rows = trials.read_text().splitlines(keepends=True)
    trials.write_text(header + "".join(reversed(rows)))  # the same trials in another order
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(compare, cwd=RECIPE, env=env, capture_output=True, text=True)
    assert result.returncode != 0 and "scored other all_pairs trials" in result.stderr


def test_runs_are_scored_on_another_corpus(tiny_run, tmp_path, small_minivox, tiny_minivox):
    """compare_runs --corpus scores with the exported models as the recipe scored its own trials."""
    sys.path.insert(0, str(RECIPE))
    from compare_runs import compare_runs, prepare_corpus, score_corpus

    _, out = tiny_run
    own = prepare_corpus(small_minivox, tmp_path / "own")
    for system in ("stage1", "camsat"):
        rows, scores = score_corpus(out, system, own)
        saved = np.loadtxt(out / "round1" / "systems" / system / "scores_all_pairs.txt")
        assert len(rows) == len(saved) and np.allclose(scores, saved, atol=1e-5), system
    other = prepare_corpus(tiny_minivox, tmp_path / "other")
    copy = tmp_path / "copy"
    shutil.copytree(
        out / "round1" / "systems" / "stage1" / "inference",
        copy / "round1" / "systems" / "stage1" / "inference",
    )
    result = compare_runs([out, copy], "stage1", n_resamples=20, corpus_folder=other)
    assert result["n_speakers"] == 2 and result["differences"][str(copy)]["EER"] == 0.0
    with pytest.raises(FileNotFoundError, match="neither a corpus folder nor a MiniVox preset"):
        prepare_corpus(tmp_path / "missing", tmp_path / "x")
