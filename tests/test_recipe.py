"""The recipe: listing, yaml hygiene, a tiny end-to-end run, resume after a kill, DDP.

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

import pytest
import torch

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


def run_recipe(command, cwd, timeout=900):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "OMP_NUM_THREADS": "2"}
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result


def test_every_recipe_yaml_is_listed():
    listed = {row["Hparam_file"] for row in listed_recipes()}
    found = {str(p.relative_to(REPO)) for p in REPO.glob("recipes/*/*/hparams/*.yaml")}
    assert found and found <= listed, f"add these to {LISTING.name}: {sorted(found - listed)}"
    for row in listed_recipes():
        for column in ("Script_file", "Hparam_file", "Readme_file"):
            assert (REPO / row[column]).exists(), row[column]


@pytest.mark.parametrize("row", listed_recipes(), ids=lambda row: Path(row["Hparam_file"]).name)
def test_every_yaml_variable_is_used(row):
    hparams_file = REPO / row["Hparam_file"]
    yaml_text = hparams_file.read_text()
    base = re.search(r"^base_hparams: (\S+)", yaml_text, flags=re.M)
    if base and row["Script_file"].endswith("train.py"):
        # A variant only sets values that its base file defines.
        base_keys = set(re.findall(r"^(\w+):", (hparams_file.parent / base[1]).read_text(), re.M))
        keys = set(re.findall(r"^(\w+):", yaml_text, flags=re.M)) - {"base_hparams"}
        assert keys <= base_keys, f"{hparams_file.name} sets unknown keys: {keys - base_keys}"
        return
    script = (REPO / row["Script_file"]).read_text()
    keys = re.findall(r"^([A-Za-z_][A-Za-z0-9_]*):", yaml_text, flags=re.M)
    unused = [
        key
        for key in keys
        if not key.startswith("__")
        and f'"{key}"' not in script
        and f"<{key}>" not in yaml_text
        and f"<{key}[" not in yaml_text
    ]
    assert not unused, f"{row['Hparam_file']} defines unused variables: {unused}"


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
    assert (tmp_path / "run").is_dir()


def test_end_to_end_writes_every_stage(tiny_run):
    _, out = tiny_run
    data = out / "save" / "data"
    for name in ("train_utts.csv", "train.csv", "test.csv", "trials.csv", "prepare_report.json"):
        assert (data / name).exists(), name
    round1 = out / "round1"
    assert list((round1 / "encoder").glob("**/CKPT*")), "no stage-1 checkpoint"
    train_emb = round1 / "embeddings" / "train"
    ids = (train_emb / "ids.txt").read_text().split()
    emb = torch.from_numpy(__import__("numpy").load(train_emb / "embeddings.npy"))
    views = __import__("numpy").load(train_emb / "views.npy")
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
    assert "| 1 | camsat |" in (report / "results.md").read_text()
    # Round 2 re-extracts with round 1's CAMSAT network, clusters and trains again.
    round2 = out / "round2"
    assert (round2 / "embeddings" / "train" / "embeddings.npy").exists()
    assert "| 2 | camsat |" in (report / "results.md").read_text()
    for system in systems:
        assert (round2 / "systems" / system / "verification.json").exists(), system


def test_rerun_skips_finished_stages(tiny_run):
    row, out = tiny_run
    before = (out / "round1" / "systems" / "camsat" / "pseudo_labels.csv").stat().st_mtime_ns
    result = run_recipe(recipe_command(row, out, "unused"), cwd=RECIPE)
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


def epochs_logged(train_log):
    return [int(m) for m in re.findall(r"^epoch: (\d+)", train_log.read_text(), flags=re.M)]


def test_killed_training_resumes_from_its_checkpoint(tiny_run, tmp_path):
    row, out = tiny_run
    run = copy_until_clustering(out, tmp_path / "run")
    command = recipe_command(
        row,
        run,
        "unused",
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


@pytest.mark.ddp
def test_torchrun_two_processes_matches_single_process_checkpoint(tiny_run, tmp_path):
    row, out = tiny_run
    run = copy_until_clustering(out, tmp_path / "ddp")
    flags = ["--first_stage=train", "--last_stage=train", "--true_labels_reference=False"]
    flags.append("--rounds=1")
    flags.append("--distributed_backend=gloo")
    command = recipe_command(row, run, "unused", *flags)
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
