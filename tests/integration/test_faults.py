"""A run that survives faults: resumes give the same results, one run per folder,
changed settings redo what they affect, and counts are checked against the data."""

import os
import signal
import subprocess
import time

import numpy as np
import pytest
from recipe_runs import (
    RECIPE,
    copy_parts,
    copy_until_clustering,
    epochs_logged,
    failed_recipe_log,
    recipe_command,
    recipe_env,
    run_recipe,
)

from camsat_lobes.pipeline import STAGES, RunLock


def results_of(run):
    return (run / "report" / "results.md").read_text()


def test_a_run_resumed_after_stage1_gives_the_same_results(tiny_run, tmp_path, small_minivox):
    """Clusterings and networks do not depend on what ran before them in the process."""
    row, out = tiny_run
    run = copy_parts(out, tmp_path / "resumed", "save", "round1/encoder", "round1/embeddings")
    run_recipe(recipe_command(row, run, small_minivox))
    assert results_of(run) == results_of(out)


@pytest.mark.slow
def test_stopping_after_every_stage_gives_the_same_results(tiny_run, tmp_path, small_minivox):
    row, out = tiny_run
    run = tmp_path / "stepwise"
    for stage in STAGES:
        run_recipe(recipe_command(row, run, small_minivox, f"--last_stage={stage}"))
    assert results_of(run) == results_of(out)


def kill_once_checkpointed(command, speaker):
    """Start a run and kill -9 it once its network in ``speaker`` saved a checkpoint."""
    process = subprocess.Popen(
        command,
        cwd=RECIPE,
        env=recipe_env(),
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
    return process.communicate()[1]


@pytest.mark.slow
def test_training_killed_and_resumed_trains_the_same_network(tiny_run, tmp_path, small_minivox):
    row, out = tiny_run
    flags = ["--speaker_epochs=3", "--true_labels_reference=False", "--rounds=1"]
    flags += ["--first_stage=train", "--last_stage=verify"]
    whole = copy_until_clustering(out, tmp_path / "whole")
    run_recipe(recipe_command(row, whole, small_minivox, *flags))
    killed = copy_until_clustering(out, tmp_path / "killed")
    command = recipe_command(row, killed, small_minivox, *flags)
    # The first system trained is the k-means reference: kill it once its first
    # checkpoint is complete.
    speaker = killed / "round1" / "systems" / "kmeans_true_k" / "speaker"
    stderr = kill_once_checkpointed(command, speaker)
    assert list(speaker.glob("CKPT*")), "the run ended before its first checkpoint:\n" + stderr
    assert not (speaker / "done.json").exists()
    first_epochs = epochs_logged(speaker / "train_log.txt")
    run_recipe(command)
    epochs = epochs_logged(speaker / "train_log.txt")
    # A kill between an epoch's log line and its checkpoint logs that epoch again on
    # resume (SpeechBrain logs an epoch before it saves it); no epoch is skipped.
    assert sorted(set(epochs)) == [1, 2, 3] and epochs[-1] == 3, epochs
    assert epochs == sorted(epochs), epochs
    assert epochs[: len(first_epochs)] == first_epochs
    assert "kmeans_true_k: resuming from its last checkpoint" in (killed / "log.txt").read_text()
    for system in ("kmeans_true_k", "camsat"):
        for trials in ("voxceleb", "all_pairs"):
            name = f"round1/systems/{system}/scores_{trials}.txt"
            assert np.array_equal(np.loadtxt(killed / name), np.loadtxt(whole / name)), name


def test_a_second_run_into_a_locked_folder_stops_at_once(tiny_run, tmp_path, small_minivox):
    row, out = tiny_run
    run = tmp_path / "locked"
    with RunLock(run / "run.lock"):
        log = failed_recipe_log(recipe_command(row, run, small_minivox), timeout=300)
    assert f"{run} is being written by process {os.getpid()}" in log
    assert not (run / "save" / "data").exists()


def test_a_changed_setting_redoes_its_stage_and_the_ones_after(tiny_run, tmp_path, small_minivox):
    """Its earlier outputs are kept aside; hyperparams.yaml states what the outputs hold."""
    row, out = tiny_run
    run = copy_parts(out, tmp_path / "changed", "save", "round1", "hyperparams.yaml")
    flags = ["--n_clusters=8", "--rounds=1", "--last_stage=cluster"]
    log = run_recipe(recipe_command(row, run, small_minivox, *flags))
    log = log.stdout + log.stderr
    assert "cluster camsat round1: done with other settings" in log
    assert "system.clusterer.n_clusters" in log
    systems = run / "round1" / "systems"
    assert (systems / "camsat.stale1" / "speaker").exists()  # kept, not deleted
    assert not (systems / "camsat" / "speaker").exists()  # training waits for its turn
    assert (systems / "kmeans_true_k" / "speaker" / "done.json").exists()  # untouched
    assert "n_clusters: 8" in (run / "hyperparams.yaml").read_text()


def test_a_speaker_count_other_than_the_datas_is_refused(tiny_run, tmp_path, small_minivox):
    row, out = tiny_run
    run = copy_parts(out, tmp_path / "count", "save")
    log = failed_recipe_log(recipe_command(row, run, small_minivox, "--n_speakers=5"))
    assert "n_speakers=5, but the prepared training set has 6 speakers" in log
    assert not (run / "round1").exists()


def test_more_clusters_than_utterances_are_refused_before_training(
    tiny_run, tmp_path, small_minivox
):
    row, out = tiny_run
    run = copy_parts(out, tmp_path / "too_many", "save")
    log = failed_recipe_log(recipe_command(row, run, small_minivox, "--n_clusters=1000"))
    assert "asks for n_clusters=1000 clusters, more than the 24 training utterances" in log
    assert not (run / "round1").exists()
