"""Running the recipe as a user does: its listed commands, with their debug flags."""

import csv
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LISTING = REPO / "tests" / "recipes" / "VoxCeleb.csv"
RECIPE = REPO / "recipes" / "VoxCeleb" / "CAMSAT"


def listed_recipes():
    with open(LISTING, newline="") as f:
        return list(csv.DictReader(f))


def listed_files(row):
    """The files a listing row's ``test_debug_checks`` expects in the output folder."""
    match = re.search(r"file_exists=\[([^\]]*)\]", row["test_debug_checks"])
    return match[1].split(",") if match else []


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


def run_recipe(command, cwd=RECIPE, timeout=900):
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


def read_column(path, column):
    with open(path, newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


def epochs_logged(train_log):
    return [int(m) for m in re.findall(r"^epoch: (\d+)", train_log.read_text(), flags=re.M)]


def copy_parts(out, destination, *parts):
    """Copy parts (folders or files) of a finished run folder into a new one."""
    destination.mkdir(parents=True, exist_ok=True)
    for part in parts:
        if (out / part).is_dir():
            shutil.copytree(out / part, destination / part)
        else:
            shutil.copy2(out / part, destination / part)
    return destination


def copy_until_clustering(out, destination):
    """A run folder holding everything before the speaker-training stage."""
    copy_parts(out, destination, "save", "round1/encoder", "round1/embeddings")
    systems = destination / "round1" / "systems"
    for system in ("camsat", "kmeans_true_k", "true_labels"):
        source = out / "round1" / "systems" / system
        (systems / system).mkdir(parents=True)
        for name in ("pseudo_labels.csv", "clustering_metrics.json", "history.json", "done.json"):
            shutil.copy(source / name, systems / system / name)
    return destination
