"""The field's protocol on a tiny VoxCeleb-shaped corpus: VoxCeleb2 (m4a) trains, VoxCeleb1's
O, E and H lists are scored, MUSAN and RIRS_NOISES give the augmentation sets."""

import csv
import json
import shutil

import pytest
import soundfile as sf
import torch

import camsat_lobes.audio_checks.conversion as conversion
import camsat_lobes.prepare.corpus as prepare_corpus
from camsat_lobes.augment_sets import build_augmentation_sets
from camsat_lobes.encoders.augmentation import BackgroundNoise, RoomReverb
from camsat_lobes.prepare import preparation_differences, prepare_voxceleb

VOX1_SPEAKERS = {"id10270", "id10271", "id10272", "id10273"}
O_SPEAKERS = {"id10270", "id10271"}
VOX2_SPEAKERS = {"id00012", "id00029", "id00046", "id00063", "id00080"}


def rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def folders(root):
    return {"voxceleb1_folder": root / "vox1", "voxceleb2_folder": root / "vox2"}


@pytest.fixture(scope="module")
def prepared(voxceleb_fixture, tmp_path_factory):
    """The fixture prepared as the field does: VoxCeleb2 dev trains, O, E and H are scored."""
    save = tmp_path_factory.mktemp("prepared")
    return save, prepare_voxceleb(None, save, convert_workers=2, **folders(voxceleb_fixture))


def test_three_lists_are_written_and_indexed(prepared):
    save, paths = prepared
    assert paths["trial_lists"] == {name: str(save / f"trials_{name}.csv") for name in "OEH"}
    assert paths["trials_csv"] == str(save / "trials_O.csv")
    index = json.loads(open(paths["trial_lists_json"]).read())
    assert index == {
        "O": {"file": "trials_O.csv", "trials": 16, "targets": 8},
        "E": {"file": "trials_E.csv", "trials": 32, "targets": 16},
        "H": {"file": "trials_H.csv", "trials": 32, "targets": 16},
    }
    test = {row["ID"]: row for row in rows(paths["test_csv"])}
    assert {row["spk_id"] for row in test.values()} == VOX1_SPEAKERS
    for name in "OEH":
        trials = rows(paths["trial_lists"][name])
        assert list(trials[0]) == ["label", "enrol_id", "test_id"]
        assert all(row["enrol_id"] in test and row["test_id"] in test for row in trials)
    speakers = {test[row["enrol_id"]]["spk_id"] for row in rows(paths["trial_lists"]["O"])}
    assert speakers == O_SPEAKERS


def test_voxceleb2_m4a_is_converted_and_trains_alone(prepared, voxceleb_fixture):
    save, paths = prepared
    train = rows(paths["train_utts_csv"])
    assert {row["spk_id"] for row in train} == VOX2_SPEAKERS and len(train) == 20
    for row in train:
        assert row["wav"].startswith(str(save / "converted" / "voxceleb2")) and row["wav"].endswith(
            ".wav"
        )
        info = sf.info(row["wav"])
        assert (info.samplerate, info.channels) == (16000, 1)
    assert {row["spk_id"] for row in rows(paths["train_csv"])} == VOX2_SPEAKERS
    report = json.loads(open(paths["report_json"]).read())
    assert report["summary"]["converted_with_ffmpeg"] == 20 and report["files"] == []
    assert report["audio_roots"] == {
        "voxceleb1": str(voxceleb_fixture / "vox1" / "wav"),
        "voxceleb2": str(voxceleb_fixture / "vox2" / "dev" / "aac"),
    }
    assert preparation_differences(None, save, **folders(voxceleb_fixture)) == []


def test_conversions_are_not_redone(prepared, voxceleb_fixture, monkeypatch):
    save, _ = prepared
    (save / "preparation.json").unlink()  # the preparation runs again, the conversion does not
    calls = []
    real = conversion.convert_with_ffmpeg
    monkeypatch.setattr(
        conversion, "convert_with_ffmpeg", lambda *args: calls.append(args) or real(*args)
    )
    prepare_voxceleb(None, save, convert_workers=2, **folders(voxceleb_fixture))
    assert calls == [] and (save / "preparation.json").exists()


def test_a_training_speaker_in_a_list_is_refused_before_any_audio(
    voxceleb_fixture, tmp_path, monkeypatch
):
    vox2 = tmp_path / "vox2"
    shutil.copytree(voxceleb_fixture / "vox2", vox2)
    shutil.copytree(voxceleb_fixture / "vox1/wav/id10271", vox2 / "dev/aac/id10271")

    def fail(*args, **kwargs):
        raise AssertionError("the audio files were opened")

    monkeypatch.setattr(prepare_corpus, "_check_files", fail)
    monkeypatch.setattr(prepare_corpus, "_convert_files", fail)
    with pytest.raises(ValueError) as error:
        prepare_voxceleb(
            None,
            tmp_path / "out",
            voxceleb1_folder=voxceleb_fixture / "vox1",
            voxceleb2_folder=vox2,
        )
    message = str(error.value)
    assert message.startswith("the training set shares 1 speaker with trial list O")
    assert "veri_test2.txt): id10271." in message
    assert f"remove those speaker folders from {vox2 / 'dev' / 'aac'}" in message


def test_voxceleb1_dev_trains_with_o_alone(voxceleb_fixture, tmp_path):
    paths = prepare_voxceleb(
        None,
        tmp_path / "out",
        voxceleb1_folder=voxceleb_fixture / "vox1",
        voxceleb2_folder=voxceleb_fixture / "vox2",
        train_on=["voxceleb1", "voxceleb2"],
        trial_lists={"O": "veri_test2.txt"},
        convert_workers=2,
    )
    train = {row["spk_id"] for row in rows(paths["train_utts_csv"])}
    assert train == VOX2_SPEAKERS | (VOX1_SPEAKERS - O_SPEAKERS)
    assert {row["spk_id"] for row in rows(paths["test_csv"])} == O_SPEAKERS
    assert list(json.loads(open(paths["trial_lists_json"]).read())) == ["O"]
    with pytest.raises(ValueError, match="VoxCeleb1 dev trains only when O alone is scored"):
        prepare_voxceleb(
            None, tmp_path / "e", voxceleb1_folder=voxceleb_fixture / "vox1", train_on="voxceleb1"
        )


def test_a_trial_on_a_file_absent_from_voxceleb1_is_named(voxceleb_fixture, tmp_path):
    lists = tmp_path / "veri_test2.txt"
    lists.write_text(
        (voxceleb_fixture / "vox1/veri_test2.txt").read_text()
        + ("1 id10270/nEL73lFBSZu/00001.wav id10270/gone/00009.wav\n")
    )
    with pytest.raises(ValueError, match=r"1 of the 9 files named in .* id10270/gone/00009.wav"):
        prepare_voxceleb(
            None,
            tmp_path / "out",
            voxceleb1_folder=voxceleb_fixture / "vox1",
            voxceleb2_folder=voxceleb_fixture / "vox2",
            trial_lists={"O": lists},
        )


def test_development_split_of_voxceleb2(voxceleb_fixture, tmp_path):
    paths = prepare_voxceleb(
        None,
        tmp_path / "out",
        development_speakers=2,
        convert_workers=2,
        **folders(voxceleb_fixture),
    )
    assert paths["trial_lists"] == {"development": str(tmp_path / "out/trials_development.csv")}
    test = {row["spk_id"] for row in rows(paths["test_csv"])}
    train = {row["spk_id"] for row in rows(paths["train_utts_csv"])}
    assert len(test) == 2 and test | train == VOX2_SPEAKERS and not test & train
    assert len(rows(paths["trials_csv"])) == 8 * 7 // 2


def test_musan_and_rirs_noises_give_the_three_csvs(voxceleb_fixture, tmp_path):
    sets = build_augmentation_sets(
        tmp_path / "aug",
        kind="musan_rir",
        musan_folder=voxceleb_fixture / "musan",
        rir_folder=voxceleb_fixture / "RIRS_NOISES",
        num_noises=4,
        num_babble=2,
        noise_duration=2.0,
    )
    noise, rirs, babble = (rows(sets[key]) for key in ("noise_csv", "rir_csv", "babble_csv"))
    assert [row["ID"] for row in noise] == ["noise_0000", "music_0001", "noise_0002", "music_0003"]
    assert len(babble) == 2 and all(float(row["duration"]) == 2.0 for row in noise + babble)
    assert len(rirs) == 10  # 8 simulated and the 2 real ones of rir_list, not the noise
    for row in rirs:
        signal, rate = sf.read(row["wav"])
        assert rate == 16000 and signal.ndim == 1 and abs(signal).max() == pytest.approx(1.0)
    waves = 0.1 * torch.randn(2, 16000)
    for bank in (BackgroundNoise(sets["noise_csv"]), BackgroundNoise(sets["babble_csv"])):
        assert (bank(waves) - waves).abs().mean() > 0.001
    assert RoomReverb(sets["rir_csv"])(waves).shape == waves.shape


def test_a_speaker_in_both_training_corpora_is_refused(voxceleb_fixture, tmp_path, monkeypatch):
    vox2 = tmp_path / "vox2"
    shutil.copytree(voxceleb_fixture / "vox2", vox2)
    shutil.copytree(voxceleb_fixture / "vox1/wav/id10272", vox2 / "dev/aac/id10272")
    monkeypatch.setattr(prepare_corpus, "_convert_files", None)  # never reached
    with pytest.raises(ValueError, match=r"1 speaker folder is in both .*: id10272; VoxCeleb1"):
        prepare_voxceleb(
            None,
            tmp_path / "out",
            voxceleb1_folder=voxceleb_fixture / "vox1",
            voxceleb2_folder=vox2,
            train_on=["voxceleb1", "voxceleb2"],
            trial_lists={"O": "veri_test2.txt"},
        )
