"""The field's protocol run by the recipe, on a tiny corpus shaped like the downloads.

``camsat_voxceleb2.yaml`` with its listed debug flags trains on the VoxCeleb2-shaped m4a
files, scores the three VoxCeleb1-shaped lists (O, E, H) and augments with the
MUSAN/RIRS_NOISES-shaped folders; a training set sharing a speaker with a list stops
before anything trains.
"""

import json

import pytest
from recipe_runs import (
    failed_recipe_log,
    listed_files,
    listed_recipes,
    read_column,
    recipe_command,
    run_recipe,
)

ROW = next(r for r in listed_recipes() if r["Hparam_file"].endswith("camsat_voxceleb2.yaml"))


def protocol_command(output_folder, corpus, *extra):
    """The listed command, pointed at the fixture's VoxCeleb, MUSAN and RIR folders."""
    folders = [
        f"--voxceleb1_folder={corpus / 'vox1'}",
        f"--voxceleb2_folder={corpus / 'vox2'}",
        f"--musan_folder={corpus / 'musan'}",
        f"--rir_folder={corpus / 'RIRS_NOISES'}",
    ]
    command = recipe_command(ROW, output_folder, "", *folders, *extra)
    return [flag for flag in command if flag != "--data_folder="]


@pytest.mark.slow
def test_voxceleb2_trains_and_the_three_lists_are_scored(voxceleb_fixture, tmp_path):
    run = tmp_path / "protocol"
    run_recipe(protocol_command(run, voxceleb_fixture), timeout=3000)
    for name in listed_files(ROW):
        assert (run / name).exists(), name
    data = run / "save" / "data"
    lists = json.loads((data / "trial_lists.json").read_text())
    assert list(lists) == ["O", "E", "H"]
    trial_speakers = set(read_column(data / "test.csv", "spk_id"))
    train_speakers = set(read_column(data / "train_utts.csv", "spk_id"))
    assert train_speakers and not train_speakers & trial_speakers
    assert all(s.startswith("id0") for s in train_speakers)  # VoxCeleb2's ID style
    results = (run / "report" / "results.md").read_text()
    for name in ("O", "E", "H"):
        assert f"## Trials: {name}" in results
    assert "minDCF@0.05 [95 % CI]" in results
    options = json.loads((data / "augmentation" / "augmentation_options.json").read_text())
    assert options["kind"] == "musan_rir"
    assert options["musan_folder"] == str(voxceleb_fixture / "musan")
    noise_ids = set(read_column(data / "augmentation" / "noise.csv", "ID"))
    assert {i.split("_")[0] for i in noise_ids} == {"noise", "music"}  # MUSAN's parts in turn


def test_a_training_set_sharing_a_trial_speaker_is_refused(voxceleb_fixture, tmp_path):
    """VoxCeleb1 dev cannot train while E and H name every VoxCeleb1 speaker."""
    run = tmp_path / "shared"
    command = protocol_command(run, voxceleb_fixture, "--train_on=[voxceleb1,voxceleb2]")
    log = failed_recipe_log(command)
    assert "trains only when O alone is scored" in log or "id10" in log
    assert not (run / "round1").exists()
