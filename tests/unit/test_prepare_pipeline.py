"""prepare_voxceleb on one VoxCeleb-layout folder: each file's fate, reruns, errors, splits."""

import json
import os
import re
import subprocess

import audio_corpus
import numpy as np
import pytest
import soundfile as sf
from audio_corpus import GOOD, RATE, TRIALS, make_corpus, rows, tone, write

import camsat_lobes.audio_checks as audio_checks
import camsat_lobes.prepare.corpus as prepare_corpus
from camsat_lobes.prepare import development_speaker_draw, preparation_differences, prepare_voxceleb

# Fixtures shared by the preparation tests (audio_corpus.py).
bad_files_corpus = audio_corpus.bad_files_corpus
corpus = audio_corpus.corpus
no_audio_checks = audio_corpus.no_audio_checks
no_ffmpeg = audio_corpus.no_ffmpeg

FILE_KEYS = ("train_utts_csv", "train_csv", "test_csv", "trials_csv", "report_json", "report_md")


def test_bad_files_get_the_expected_fate(bad_files_corpus, tmp_path, no_ffmpeg):
    save = tmp_path / "prepared"
    paths = prepare_voxceleb(bad_files_corpus, save)
    report = json.loads(open(paths["report_json"]).read())
    actions = {entry["file"]: entry["action"] for entry in report["files"]}
    converted = save / "converted" / "spkB" / "s1"
    assert actions == {
        "spkA/loose.wav": "skipped",
        "spkA/s1/corrupt.wav": "skipped",
        "spkA/s1/empty.wav": "skipped",
        "spkA/s2/short.wav": "skipped",
        "spkA/s2/silent.wav": "skipped",
        "spkB/s1/rate8k.wav": f"converted to 16000 Hz mono: {converted / 'rate8k.wav'}",
        "spkB/s1/stereo.wav": f"converted to 16000 Hz mono: {converted / 'stereo.wav'}",
        "spkB/s2/notes.txt": "ignored",
        "spkB/s2/talk.m4a": "skipped",
        "spkC/s1/bad.wav": "skipped; 2 trials dropped",
    }
    problems = {entry["file"]: entry["problem"] for entry in report["files"]}
    assert problems["spkA/loose.wav"].startswith("not in the <speaker>/<session>/<utterance>")
    assert problems["spkA/s1/corrupt.wav"].startswith("unreadable (")
    assert problems["spkA/s1/empty.wav"] == "empty (0 samples)"
    assert problems["spkA/s2/short.wav"] == "too short (0.50 s < min_duration 1 s)"
    assert problems["spkA/s2/silent.wav"].startswith("silent (RMS 0")
    assert problems["spkB/s1/rate8k.wav"] == "sample rate 8000 Hz"
    assert problems["spkB/s1/stereo.wav"] == "2 channels"
    assert problems["spkB/s2/talk.m4a"].startswith("m4a not supported: convert to wav with ffmpeg")
    assert "pip install imageio-ffmpeg" in problems["spkB/s2/talk.m4a"]

    summary = report["summary"]
    assert summary["trials"] == 3 and summary["trials_dropped"] == 2
    assert summary["skipped"] == 7 and summary["converted"] == 2
    assert summary["audio_files"] == len(GOOD) + 9
    assert "converted_with_ffmpeg" not in summary
    markdown = open(paths["report_md"]).read()
    assert "| spkB/s2/talk.m4a | m4a not supported" in markdown

    train = {row["ID"]: row for row in rows(paths["train_utts_csv"])}
    assert sorted(train) == [
        "spkA--s1--u1",
        "spkA--s2--u2",
        "spkB--s1--rate8k",
        "spkB--s1--stereo",
        "spkB--s1--u1",
    ]
    assert train["spkB--s1--rate8k"]["wav"] == str(converted / "rate8k.wav")
    assert int(train["spkB--s1--rate8k"]["stop"]) == 2 * RATE
    assert sf.info(train["spkB--s1--stereo"]["wav"]).channels == 1
    assert train["spkA--s2--u2"]["wav"] == str((bad_files_corpus / "wav/spkA/s2/u2.wav").resolve())
    assert float(train["spkA--s2--u2"]["duration"]) == pytest.approx(7.2)
    assert train["spkA--s2--u2"]["session"] == "s2"

    test = {row["ID"]: row for row in rows(paths["test_csv"])}
    assert sorted(test) == ["spkC--s1--u1", "spkC--s2--u1", "spkD--s1--u1", "spkD--s2--u1"]
    assert {row["spk_id"] for row in test.values()}.isdisjoint(
        {row["spk_id"] for row in train.values()}
    )
    trials = [tuple(row.values()) for row in rows(paths["trials_csv"])]
    assert trials == [
        ("1", "spkC--s1--u1", "spkC--s2--u1"),
        ("0", "spkC--s1--u1", "spkD--s1--u1"),
        ("1", "spkD--s1--u1", "spkD--s2--u1"),
    ]


def test_one_folder_lists_its_trials_in_trial_lists_json(corpus, tmp_path):
    paths = prepare_voxceleb(corpus, tmp_path / "out")
    assert paths["trial_lists"] == {"voxceleb": str(tmp_path / "out" / "trials.csv")}
    assert json.loads(open(paths["trial_lists_json"]).read()) == {
        "voxceleb": {"file": "trials.csv", "trials": 4, "targets": 2}
    }


def test_m4a_in_a_folder_is_converted_or_reported_with_ffmpegs_reason(tmp_path):
    ffmpeg = audio_checks.find_ffmpeg()
    if ffmpeg is None:
        pytest.skip("no ffmpeg: pip install imageio-ffmpeg")
    root = make_corpus(tmp_path / "corpus")
    source = write(tmp_path / "source", "x/y/z.wav", tone(2.0))
    target = root / "wav" / "a" / "s3" / "u3.m4a"
    target.parent.mkdir(parents=True)
    encode = [ffmpeg, "-nostdin", "-loglevel", "error", "-i", str(source), "-c:a", "aac"]
    subprocess.run([*encode, str(target)], check=True)
    (root / "wav" / "b" / "s3").mkdir()
    (root / "wav" / "b" / "s3" / "broken.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(64))
    paths = prepare_voxceleb(root, tmp_path / "out", convert_workers=2)
    report = json.loads(open(paths["report_json"]).read())
    assert report["summary"]["converted_with_ffmpeg"] == 1
    (entry,) = report["files"]
    assert entry["file"] == "b/s3/broken.m4a" and entry["action"] == "skipped"
    assert entry["problem"].startswith("unreadable (ffmpeg failed: ") and len(entry["problem"]) > 30
    train = {row["ID"]: row for row in rows(paths["train_utts_csv"])}
    assert train["a--s3--u3"]["wav"] == str(tmp_path / "out" / "converted" / "a/s3/u3.wav")


def test_skips_when_done_and_redoes_when_options_change(
    bad_files_corpus, tmp_path, no_ffmpeg, monkeypatch
):
    save = tmp_path / "prepared"
    paths = prepare_voxceleb(bad_files_corpus, save)
    stamps = {key: os.stat(paths[key]).st_mtime_ns for key in FILE_KEYS}

    def fail(*args, **kwargs):
        raise AssertionError("the audio was checked again")

    monkeypatch.setattr(prepare_corpus, "_check_files", fail)
    assert prepare_voxceleb(bad_files_corpus, save) == paths
    assert stamps == {key: os.stat(paths[key]).st_mtime_ns for key in FILE_KEYS}
    monkeypatch.undo()
    monkeypatch.setattr(audio_checks, "find_ffmpeg", lambda: None)
    before = len(rows(paths["train_csv"]))
    prepare_voxceleb(bad_files_corpus, save, seg_duration=1.0)
    assert len(rows(paths["train_csv"])) > before


def test_parallel_checks_give_the_same_manifests(bad_files_corpus, tmp_path, no_ffmpeg):
    serial = prepare_voxceleb(bad_files_corpus, tmp_path / "serial")
    parallel = prepare_voxceleb(bad_files_corpus, tmp_path / "parallel", num_workers=2)
    for key in ("train_utts_csv", "test_csv", "trials_csv"):
        strip = [{k: v for k, v in row.items() if k != "wav"} for row in rows(serial[key])]
        other = [{k: v for k, v in row.items() if k != "wav"} for row in rows(parallel[key])]
        assert strip == other


def test_clear_errors(tmp_path, bad_files_corpus, no_ffmpeg):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_voxceleb(tmp_path / "nowhere", tmp_path / "out")
    (tmp_path / "bare").mkdir()
    with pytest.raises(FileNotFoundError, match="has no wav/ folder"):
        prepare_voxceleb(tmp_path / "bare", tmp_path / "out")
    (tmp_path / "bare" / "wav" / "spk").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="no audio files in"):
        prepare_voxceleb(tmp_path / "bare", tmp_path / "out")
    foreign = tmp_path / "foreign.txt"
    foreign.write_text("1 id1/a/1.wav id1/b/2.wav\n0 id1/a/1.wav id2/a/1.wav\n")
    with pytest.raises(FileNotFoundError, match="none of the 3 files named in"):
        prepare_voxceleb(bad_files_corpus, tmp_path / "out", trial_file=foreign)
    with pytest.raises(FileNotFoundError, match="trial file .* does not exist"):
        prepare_voxceleb(bad_files_corpus, tmp_path / "out", trial_file=tmp_path / "absent.txt")
    with pytest.raises(ValueError, match="needs save_folder"):
        prepare_voxceleb(bad_files_corpus)


def test_all_files_bad_raises_after_writing_the_report(tmp_path, no_ffmpeg):
    root = tmp_path / "corpus"
    write(root, "a/s/silent.wav", np.zeros(RATE * 2))
    write(root, "b/s/short.wav", tone(0.2))
    write(root, "c/s/silent.wav", np.zeros(RATE * 2))
    write(root, "d/s/short.wav", tone(0.2))
    (root / "trials.txt").write_text(
        "1 c/s/silent.wav c/s/silent.wav\n0 c/s/silent.wav d/s/short.wav\n"
    )
    with pytest.raises(ValueError, match="no usable audio"):
        prepare_voxceleb(root, tmp_path / "out")
    report = json.loads((tmp_path / "out" / "prepare_report.json").read_text())
    assert [entry["action"] for entry in report["files"]] == ["skipped"] * 2 + [
        "skipped; 2 trials dropped",
        "skipped; 1 trial dropped",
    ]


def test_without_trial_list_preparation_stops(tmp_path):
    root = tmp_path / "corpus"
    write(root, "a/s/u.wav", tone(2.0))
    write(root, "b/s/u.wav", tone(2.0))
    with pytest.raises(ValueError, match=r"holds no trial list \(no trials.txt, and no trial_file"):
        prepare_voxceleb(root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_development_split_holds_training_speakers_out(tmp_path):
    """The held-out training speakers are the test set; the corpus's test speakers are unused."""
    root = tmp_path / "corpus"
    for speaker in range(6):
        for utterance in (1, 2):
            write(root, f"s{speaker}/a/u{utterance}.wav", tone(1.5))
    for relative in ("spkC/s1/u1.wav", "spkC/s2/u1.wav", "spkD/s1/u1.wav"):
        write(root, relative, tone(1.5))
    (root / "trials.txt").write_text(
        "1 spkC/s1/u1.wav spkC/s2/u1.wav\n0 spkC/s1/u1.wav spkD/s1/u1.wav\n"
    )
    paths = prepare_voxceleb(root, tmp_path / "dev", development_speakers=2)
    held_out = development_speaker_draw([f"s{i}" for i in range(6)], 2)
    test, train, trials = (rows(paths[key]) for key in ("test_csv", "train_utts_csv", "trials_csv"))
    assert sorted({row["spk_id"] for row in test}) == held_out
    assert {row["spk_id"] for row in train} == {f"s{i}" for i in range(6)} - set(held_out)
    assert len(trials) == 6  # every pair of the 4 held-out utterances
    assert sum(int(row["label"]) for row in trials) == 2
    record = json.loads((tmp_path / "dev" / "preparation.json").read_text())
    assert record["options"]["development_speakers"] == 2
    assert preparation_differences(root, tmp_path / "dev") != []
    with pytest.raises(ValueError, match="development_speakers=5"):
        prepare_voxceleb(root, tmp_path / "too_many", development_speakers=5)


def test_non_finite_float_wavs_are_skipped_and_reported(corpus, tmp_path):
    with_nan = tone()
    with_nan[1000] = np.nan
    write(corpus, "a/s1/nan.wav", with_nan, subtype="FLOAT")
    with_inf = tone()
    with_inf[[5, 6]] = [np.inf, -np.inf]
    write(corpus, "b/s1/inf.wav", with_inf, subtype="DOUBLE")
    stereo = tone(channels=2)
    stereo[-1, 1] = np.nan
    write(corpus, "b/s2/stereo_nan.wav", stereo, subtype="FLOAT")
    write(corpus, "a/s2/clean_float.wav", tone(), subtype="FLOAT")

    paths = prepare_voxceleb(corpus, tmp_path / "out")

    report = json.loads(open(paths["report_json"]).read())
    problems = {entry["file"]: (entry["problem"], entry["action"]) for entry in report["files"]}
    samples = len(tone())
    assert problems == {
        "a/s1/nan.wav": (f"non-finite samples (1 NaN, 0 inf of {samples})", "skipped"),
        "b/s1/inf.wav": (f"non-finite samples (0 NaN, 2 inf of {samples})", "skipped"),
        "b/s2/stereo_nan.wav": (f"non-finite samples (1 NaN, 0 inf of {2 * samples})", "skipped"),
    }
    assert report["summary"]["problems"] == {"non-finite samples": 3}
    markdown = open(paths["report_md"]).read()
    assert "| a/s1/nan.wav | non-finite samples (1 NaN, 0 inf of" in markdown
    assert "| b/s1/inf.wav | non-finite samples (0 NaN, 2 inf of" in markdown
    train_ids = {row["ID"] for row in rows(paths["train_utts_csv"])}
    assert "a--s2--clean_float" in train_ids
    assert not {"a--s1--nan", "b--s1--inf", "b--s2--stereo_nan"} & train_ids


# Corpora that cannot give a verification experiment stop before the audio checks ----------


def test_no_trial_list_names_the_folder_and_the_fix(tmp_path, no_audio_checks):
    root = make_corpus(tmp_path / "corpus", trials=None)
    with pytest.raises(ValueError) as error:
        prepare_voxceleb(root, tmp_path / "out")
    message = str(error.value)
    assert f"{root.resolve()} holds no trial list (no trials.txt" in message
    assert f"Put one at {root.resolve() / 'trials.txt'}" in message and "trial_file" in message


@pytest.mark.parametrize(
    "trials, lacking",
    [
        ("1 c/s1/u1.wav c/s2/u2.wav\n", "no non-target (label 0) trial (1 target, 0 non-target)"),
        ("0 c/s1/u1.wav d/s1/u1.wav\n", "no target (label 1) trial (0 target, 1 non-target)"),
        ("\n", "no target (label 1) and no non-target (label 0) trial"),
    ],
)
def test_trial_list_without_both_kinds_stops(tmp_path, no_audio_checks, trials, lacking):
    root = make_corpus(tmp_path / "corpus", trials=trials)
    with pytest.raises(ValueError, match=re.escape(f"trials.txt holds {lacking}")):
        prepare_voxceleb(root, tmp_path / "out")


def test_trial_on_a_file_absent_from_the_corpus_names_it(corpus, tmp_path, no_audio_checks):
    (corpus / "trials.txt").write_text(TRIALS + "1 c/s1/u1.wav c/s9/gone.wav\n")
    with pytest.raises(ValueError) as error:
        prepare_voxceleb(corpus, tmp_path / "out")
    message = str(error.value)
    assert "1 of the 5 files named in" in message and "c/s9/gone.wav" in message
    assert str(corpus.resolve() / "wav") in message


def test_many_absent_trial_files_are_counted(corpus, tmp_path, no_audio_checks):
    extra = "".join(f"0 c/s1/u1.wav c/s9/gone{index}.wav\n" for index in range(8))
    (corpus / "trials.txt").write_text(TRIALS + extra)
    with pytest.raises(ValueError, match=r"8 of the 12 files .*gone4.wav and 3 more"):
        prepare_voxceleb(corpus, tmp_path / "out")


def test_one_training_speaker_stops_before_the_audio_checks(tmp_path, no_audio_checks):
    root = make_corpus(tmp_path / "corpus", speakers="acd")
    with pytest.raises(ValueError) as error:
        prepare_voxceleb(root, tmp_path / "out")
    message = str(error.value)
    assert message.startswith(f"found 1 training speaker (a) in {root.resolve() / 'wav'}")
    assert "at least 2 are needed" in message and "it names 2 test speakers" in message


def test_no_training_speaker_stops(tmp_path, no_audio_checks):
    root = make_corpus(tmp_path / "corpus", speakers="cd")
    with pytest.raises(ValueError, match="found 0 training speakers in"):
        prepare_voxceleb(root, tmp_path / "out")


def test_training_speaker_lost_to_bad_audio_stops_after_the_report(corpus, tmp_path):
    for relative in ("b/s1/u1.wav", "b/s2/u2.wav"):
        write(corpus, relative, np.zeros(2 * RATE))
    save = tmp_path / "out"
    with pytest.raises(ValueError) as error:
        prepare_voxceleb(corpus, save)
    message = str(error.value)
    assert "found 1 training speaker (a) with usable audio" in message
    assert str(save / "prepare_report.md") in message
    assert (save / "prepare_report.md").exists() and not (save / "preparation.json").exists()


def test_trials_left_without_non_targets_after_bad_audio_stop(tmp_path):
    root = make_corpus(tmp_path / "corpus")
    write(root, "d/s1/u1.wav", np.zeros(2 * RATE))  # the only non-target trial names it
    (root / "trials.txt").write_text("1 c/s1/u1.wav c/s2/u2.wav\n0 c/s1/u1.wav d/s1/u1.wav\n")
    with pytest.raises(ValueError, match="once the trials on skipped files are dropped, holds no"):
        prepare_voxceleb(root, tmp_path / "out")
