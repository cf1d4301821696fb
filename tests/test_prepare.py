import csv
import json
import os

import numpy as np
import pytest
import soundfile as sf

import camsat_lobes.prepare as prepare_module
from camsat_lobes.prepare import prepare_voxceleb, read_trial_list, segment_rows

RATE = 16000


def tone(seconds, rate=RATE, channels=1, frequency=220.0):
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.1 * np.sin(2 * np.pi * frequency * t)
    return np.stack([signal] * channels, axis=1) if channels > 1 else signal


def write(root, relative, signal, rate=RATE):
    path = root / "wav" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, rate)
    return path


def write_bytes(root, relative, content):
    path = root / "wav" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


GOOD = {
    "spkA/s1/u1.wav": 2.5,
    "spkA/s2/u2.wav": 7.2,
    "spkB/s1/u1.wav": 1.5,
    "spkC/s1/u1.wav": 2.0,
    "spkC/s2/u1.wav": 2.0,
    "spkD/s1/u1.wav": 2.0,
    "spkD/s2/u1.wav": 2.0,
}
TRIALS = """\
1 spkC/s1/u1.wav spkC/s2/u1.wav
0 spkC/s1/u1.wav spkD/s1/u1.wav
1 spkC/s1/bad.wav spkC/s1/u1.wav
0 spkC/s1/bad.wav spkD/s1/u1.wav
1 spkD/s1/u1.wav spkD/s2/u1.wav
"""


@pytest.fixture
def corpus(tmp_path):
    """A VoxCeleb-layout folder with good files and one file of each bad kind."""
    root = tmp_path / "corpus"
    for relative, seconds in GOOD.items():
        write(root, relative, tone(seconds))
    write_bytes(root, "spkA/s1/corrupt.wav", b"RIFF\x00\x01not really a wave file" * 4)
    write(root, "spkA/s1/empty.wav", np.zeros(0))
    write(root, "spkA/s2/silent.wav", np.zeros(2 * RATE))
    write(root, "spkA/s2/short.wav", tone(0.5))
    write(root, "spkB/s1/rate8k.wav", tone(2.0, rate=8000), rate=8000)
    write(root, "spkB/s1/stereo.wav", tone(2.0, channels=2))
    write_bytes(root, "spkB/s2/talk.m4a", b"\x00\x00\x00\x20ftypM4A " + bytes(200))
    write_bytes(root, "spkB/s2/notes.txt", b"not audio")
    write(root, "spkA/loose.wav", tone(2.0))
    write(root, "spkC/s1/bad.wav", np.zeros(2 * RATE))
    (root / "trials.txt").write_text(TRIALS)
    return root


@pytest.fixture
def no_ffmpeg(monkeypatch):
    monkeypatch.setattr(prepare_module, "find_ffmpeg", lambda: None)


def read_rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_bad_files_get_the_expected_fate(corpus, tmp_path, no_ffmpeg):
    save = tmp_path / "prepared"
    paths = prepare_voxceleb(corpus, save)
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

    summary = report["summary"]
    assert summary["trials"] == 3 and summary["trials_dropped"] == 2
    assert summary["skipped"] == 7 and summary["converted"] == 2
    assert summary["audio_files"] == len(GOOD) + 9
    markdown = open(paths["report_md"]).read()
    assert "| spkB/s2/talk.m4a | m4a not supported" in markdown

    train = {row["ID"]: row for row in read_rows(paths["train_utts_csv"])}
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
    assert train["spkA--s2--u2"]["wav"] == str((corpus / "wav/spkA/s2/u2.wav").resolve())
    assert float(train["spkA--s2--u2"]["duration"]) == pytest.approx(7.2)
    assert train["spkA--s2--u2"]["session"] == "s2"

    test = {row["ID"]: row for row in read_rows(paths["test_csv"])}
    assert sorted(test) == ["spkC--s1--u1", "spkC--s2--u1", "spkD--s1--u1", "spkD--s2--u1"]
    assert {row["spk_id"] for row in test.values()}.isdisjoint(
        {row["spk_id"] for row in train.values()}
    )
    trials = [tuple(row.values()) for row in read_rows(paths["trials_csv"])]
    assert trials == [
        ("1", "spkC--s1--u1", "spkC--s2--u1"),
        ("0", "spkC--s1--u1", "spkD--s1--u1"),
        ("1", "spkD--s1--u1", "spkD--s2--u1"),
    ]


def test_segments_cover_each_utterance(corpus, tmp_path, no_ffmpeg):
    seg = 2.0
    paths = prepare_voxceleb(corpus, tmp_path / "prepared", seg_duration=seg)
    utterances = {row["ID"]: row for row in read_rows(paths["train_utts_csv"])}
    segments = read_rows(paths["train_csv"])
    assert len({row["ID"] for row in segments}) == len(segments)
    for utt_id, utterance in utterances.items():
        mine = [row for row in segments if row["utt_id"] == utt_id]
        length, seg_samples = int(utterance["stop"]), int(seg * RATE)
        assert len(mine) == max(1, length // seg_samples)
        assert int(mine[0]["start"]) == 0
        for previous, current in zip(mine, mine[1:]):
            assert int(current["start"]) == int(previous["stop"])
        for row in mine:
            span = int(row["stop"]) - int(row["start"])
            assert span == min(seg_samples, length)
            assert float(row["duration"]) == pytest.approx(span / RATE)
            assert (row["wav"], row["spk_id"]) == (utterance["wav"], utterance["spk_id"])
        assert length - int(mine[-1]["stop"]) < seg_samples
    counts = {utt: sum(row["utt_id"] == utt for row in segments) for utt in utterances}
    assert counts["spkA--s2--u2"] == 3 and counts["spkB--s1--u1"] == 1


def test_segment_rows_of_a_short_utterance_cover_it_whole():
    row = {"ID": "a--s--u", "wav": "/a.wav", "start": 0, "stop": 24000, "spk_id": "a"}
    assert [(s["ID"], s["start"], s["stop"]) for s in segment_rows(row, 3.0)] == [
        ("a--s--u_0_1.5", 0, 24000)
    ]


def test_skips_when_done_and_redoes_when_options_change(corpus, tmp_path, no_ffmpeg, monkeypatch):
    save = tmp_path / "prepared"
    paths = prepare_voxceleb(corpus, save)
    stamps = {key: os.stat(path).st_mtime_ns for key, path in paths.items()}

    def fail(*args, **kwargs):
        raise AssertionError("the audio was checked again")

    monkeypatch.setattr(prepare_module, "_check_files", fail)
    assert prepare_voxceleb(corpus, save) == paths
    assert stamps == {key: os.stat(path).st_mtime_ns for key, path in paths.items()}
    monkeypatch.undo()
    monkeypatch.setattr(prepare_module, "find_ffmpeg", lambda: None)
    before = len(read_rows(paths["train_csv"]))
    prepare_voxceleb(corpus, save, seg_duration=1.0)
    assert len(read_rows(paths["train_csv"])) > before


def test_parallel_checks_give_the_same_manifests(corpus, tmp_path, no_ffmpeg):
    serial = prepare_voxceleb(corpus, tmp_path / "serial")
    parallel = prepare_voxceleb(corpus, tmp_path / "parallel", num_workers=2)
    for key in ("train_utts_csv", "test_csv", "trials_csv"):
        strip = [{k: v for k, v in row.items() if k != "wav"} for row in read_rows(serial[key])]
        other = [{k: v for k, v in row.items() if k != "wav"} for row in read_rows(parallel[key])]
        assert strip == other


def test_clear_errors(tmp_path, corpus, no_ffmpeg):
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
        prepare_voxceleb(corpus, tmp_path / "out", trial_file=foreign)
    broken = tmp_path / "broken.txt"
    broken.write_text("1 spkC/s1/u1.wav spkC/s2/u1.wav\ntarget spkC/s1/u1.wav x.wav\n")
    with pytest.raises(ValueError, match="broken.txt, line 2"):
        read_trial_list(broken)
    with pytest.raises(FileNotFoundError, match="trial file .* does not exist"):
        prepare_voxceleb(corpus, tmp_path / "out", trial_file=tmp_path / "absent.txt")


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
    held_out = prepare_module.development_speaker_draw([f"s{i}" for i in range(6)], 2)
    test = list(csv.DictReader(open(paths["test_csv"])))
    train = list(csv.DictReader(open(paths["train_utts_csv"])))
    trials = list(csv.DictReader(open(paths["trials_csv"])))
    assert sorted({row["spk_id"] for row in test}) == held_out
    assert {row["spk_id"] for row in train} == {f"s{i}" for i in range(6)} - set(held_out)
    assert len(trials) == 6  # every pair of the 4 held-out utterances
    assert sum(int(row["label"]) for row in trials) == 2
    record = json.loads((tmp_path / "dev" / "preparation.json").read_text())
    assert record["options"]["development_speakers"] == 2
    assert prepare_module.preparation_differences(root, tmp_path / "dev") != []
    with pytest.raises(ValueError, match="development_speakers=5"):
        prepare_voxceleb(root, tmp_path / "too_many", development_speakers=5)
