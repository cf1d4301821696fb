"""The preparation record: reruns notice a changed corpus, option or trial list."""

import json
import os

import audio_corpus
import pytest
from audio_corpus import C_TRIALS, TRIALS, make_corpus, rows, tone, write

from camsat_lobes.prepare import preparation_differences, preparation_is_current, prepare_voxceleb

# Fixtures shared by the preparation tests (audio_corpus.py).
corpus = audio_corpus.corpus


def test_record_is_written_and_matches(corpus, tmp_path):
    save = tmp_path / "out"
    assert not preparation_is_current(corpus, save)
    prepare_voxceleb(corpus, save)
    record = json.loads((save / "preparation.json").read_text())
    assert record["options"]["data_folder"] == str(corpus.resolve())
    assert record["options"]["seg_duration"] == 3.0
    assert record["corpus"]["audio_files"] == 8
    assert preparation_differences(corpus, save) == []
    assert preparation_is_current(corpus, save, seg_duration=3.0, num_workers=4)
    assert preparation_is_current(corpus, save, convert_workers=2)
    assert not preparation_is_current(corpus, save, min_duration=0.5)


def test_added_file_is_noticed_and_prepared(corpus, tmp_path):
    save = tmp_path / "out"
    prepare_voxceleb(corpus, save)
    write(corpus, "a/s3/u3.wav", tone(2.0))
    assert preparation_differences(corpus, save) == [
        f"audio files under {corpus.resolve() / 'wav'}: 8 then, 9 now (files added or removed)"
    ]
    paths = prepare_voxceleb(corpus, save)
    assert "a--s3--u3" in {row["ID"] for row in rows(paths["train_utts_csv"])}
    assert preparation_is_current(corpus, save)


def test_removed_file_is_noticed_and_prepared(corpus, tmp_path):
    save = tmp_path / "out"
    prepare_voxceleb(corpus, save)
    (corpus / "wav" / "b" / "s2" / "u2.wav").unlink()
    assert not preparation_is_current(corpus, save)
    paths = prepare_voxceleb(corpus, save)
    assert "b--s2--u2" not in {row["ID"] for row in rows(paths["train_utts_csv"])}


def test_rewritten_file_is_noticed(corpus, tmp_path):
    save = tmp_path / "out"
    prepare_voxceleb(corpus, save)
    path = corpus / "wav" / "a" / "s1" / "u1.wav"
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    (difference,) = preparation_differences(corpus, save)
    assert "same number (8) but names, sizes or modification times differ" in difference


def test_other_data_folder_into_the_same_output_is_prepared_again(corpus, tmp_path):
    save = tmp_path / "out"
    prepare_voxceleb(corpus, save)
    other = make_corpus(tmp_path / "other", speakers="abcde")
    differences = preparation_differences(other, save)
    assert f"data_folder: '{corpus.resolve()}' then, '{other.resolve()}' now" in differences
    paths = prepare_voxceleb(other, save)
    train = rows(paths["train_utts_csv"])
    assert {row["spk_id"] for row in train} == {"a", "b", "e"}
    assert all(row["wav"].startswith(str(other.resolve())) for row in train)


def test_changed_trial_list_is_noticed(corpus, tmp_path):
    save = tmp_path / "out"
    prepare_voxceleb(corpus, save)
    (corpus / "trials.txt").write_text(C_TRIALS)
    assert preparation_differences(corpus, save) == [
        f"the content of the trial list {corpus.resolve() / 'trials.txt'}"
    ]


def test_missing_output_is_a_difference(corpus, tmp_path):
    save = tmp_path / "out"
    prepare_voxceleb(corpus, save)
    (save / "trial_lists.json").unlink()
    assert preparation_differences(corpus, save) == [
        f"output {save / 'trial_lists.json'} is missing"
    ]


def test_missing_folders_are_differences_not_errors(tmp_path, corpus):
    prepare_voxceleb(corpus, tmp_path / "out")
    (difference,) = preparation_differences(tmp_path / "nowhere", tmp_path / "out")
    assert "does not exist" in difference


def test_failed_rerun_leaves_no_stale_record(corpus, tmp_path):
    save = tmp_path / "out"
    prepare_voxceleb(corpus, save)
    (corpus / "trials.txt").write_text("1 c/s1/u1.wav c/s2/u2.wav\n")
    with pytest.raises(ValueError, match="no non-target"):
        prepare_voxceleb(corpus, save)
    assert not (save / "preparation.json").exists()
    (corpus / "trials.txt").write_text(TRIALS)
    assert not preparation_is_current(corpus, save)
