"""How the corpus is given: one folder, or VoxCeleb1 and VoxCeleb2 apart; errors name the fix."""

import audio_corpus
import pytest
from audio_corpus import tone, write

from camsat_lobes.prepare import prepare_voxceleb
from camsat_lobes.prepare.sources import corpora_to_train

# Fixtures shared by the preparation tests (audio_corpus.py).
corpus = audio_corpus.corpus


def voxceleb(root, lists=("veri_test2.txt",)):
    """A VoxCeleb1 root with one wav file and empty list files, and a bare VoxCeleb2 root."""
    write(root / "vox1", "id10270/abc/00001.wav", tone())
    for name in lists:
        (root / "vox1" / name).write_text("")
    (root / "vox2").mkdir()
    return root / "vox1", root / "vox2"


def test_the_two_ways_do_not_mix(tmp_path, corpus):
    vox1, _ = voxceleb(tmp_path)
    with pytest.raises(ValueError, match="either data_folder .* not both"):
        prepare_voxceleb(corpus, tmp_path / "out", voxceleb1_folder=vox1)
    with pytest.raises(ValueError, match="no corpus given"):
        prepare_voxceleb(None, tmp_path / "out")
    with pytest.raises(ValueError, match="train_on applies to voxceleb1_folder"):
        prepare_voxceleb(corpus, tmp_path / "out", train_on="voxceleb2")
    with pytest.raises(ValueError, match="trial_lists applies to voxceleb1_folder"):
        prepare_voxceleb(corpus, tmp_path / "out", trial_lists={"O": "veri_test2.txt"})
    with pytest.raises(ValueError, match="trial_file applies to one data_folder"):
        prepare_voxceleb(None, tmp_path / "out", voxceleb1_folder=vox1, trial_file="x.txt")


def test_train_on_names_corpora():
    assert corpora_to_train("voxceleb1") == ("voxceleb1",)
    for wrong in ("vox2", [], ["voxceleb2", "librispeech"]):
        with pytest.raises(ValueError, match="name one or both of voxceleb1, voxceleb2"):
            corpora_to_train(wrong)


def test_missing_folders_say_what_they_must_hold(tmp_path):
    vox1, vox2 = voxceleb(tmp_path)
    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="voxceleb1_folder .*nowhere does not exist"):
        prepare_voxceleb(None, out, voxceleb1_folder=tmp_path / "nowhere", voxceleb2_folder=vox2)
    with pytest.raises(FileNotFoundError, match="has no wav/ folder: VoxCeleb1 keeps its audio"):
        prepare_voxceleb(None, out, voxceleb1_folder=vox2, voxceleb2_folder=vox2)
    with pytest.raises(FileNotFoundError, match="neither dev/wav/ nor dev/aac/"):
        prepare_voxceleb(None, out, voxceleb1_folder=vox1, voxceleb2_folder=vox2)
    with pytest.raises(ValueError, match="no voxceleb2_folder was given"):
        prepare_voxceleb(None, out, voxceleb1_folder=vox1)
    with pytest.raises(ValueError, match="voxceleb1_folder is needed"):
        prepare_voxceleb(None, out, voxceleb2_folder=vox2)


def test_missing_trial_lists_are_named(tmp_path):
    vox1, vox2 = voxceleb(tmp_path)
    (vox2 / "dev" / "aac").mkdir(parents=True)
    with pytest.raises(FileNotFoundError) as error:
        prepare_voxceleb(None, tmp_path / "out", voxceleb1_folder=vox1, voxceleb2_folder=vox2)
    message = str(error.value)
    assert f"E: {vox1 / 'list_test_all2.txt'}" in message
    assert f"H: {vox1 / 'list_test_hard2.txt'}" in message
    assert "trial_lists={'O': 'veri_test2.txt'}" in message
    assert not (tmp_path / "out").exists()
