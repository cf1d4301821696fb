"""Segments of train.csv, the development speakers' draw and their trials."""

import audio_corpus
import pytest
from audio_corpus import RATE, rows

from camsat_lobes.prepare import (
    development_speaker_draw,
    development_trials,
    prepare_voxceleb,
    segment_rows,
)

# Fixtures shared by the preparation tests (audio_corpus.py).
bad_files_corpus = audio_corpus.bad_files_corpus
no_ffmpeg = audio_corpus.no_ffmpeg


def test_segments_cover_each_utterance(bad_files_corpus, tmp_path, no_ffmpeg):
    seg = 2.0
    paths = prepare_voxceleb(bad_files_corpus, tmp_path / "prepared", seg_duration=seg)
    utterances = {row["ID"]: row for row in rows(paths["train_utts_csv"])}
    segments = rows(paths["train_csv"])
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


def test_segment_length_must_be_positive():
    with pytest.raises(ValueError, match="seg_duration=0 must be positive"):
        segment_rows({"ID": "a", "wav": "/a.wav", "start": 0, "stop": 10, "spk_id": "a"}, 0)


def test_development_draw_is_fixed_and_checked():
    speakers = [f"id{i:05d}" for i in range(5994)]
    assert development_speaker_draw(speakers, 50) == development_speaker_draw(speakers[::-1], 50)
    with pytest.raises(ValueError, match="development_speakers=3: .* 4 training speakers"):
        development_speaker_draw(["a", "b", "c", "d"], 3)


def _speaker_rows(sizes):
    return [{"ID": f"{s}-{u}", "spk_id": s} for s, size in sizes.items() for u in range(size)]


def test_development_trials_are_every_pair_of_a_small_split():
    test = _speaker_rows({"a": 3, "b": 2})
    trials = development_trials(test)
    assert len(trials) == 10 and sum(label for label, _, _ in trials) == 4
    assert development_trials(test, max_trials=10) == trials


@pytest.mark.parametrize("sizes", [{f"s{i}": 40 for i in range(30)}, {"big": 300, "small": 1}])
def test_development_trials_of_a_large_split_are_a_fixed_balanced_draw(sizes):
    test = _speaker_rows(sizes)
    speaker = {row["ID"]: row["spk_id"] for row in test}
    position = {row["ID"]: i for i, row in enumerate(test)}
    trials = development_trials(test, max_trials=2000)
    pairs = [(enrol, other) for _, enrol, other in trials]
    assert len(set(pairs)) == len(trials)
    assert all(position[enrol] < position[other] for enrol, other in pairs)
    assert all(label == int(speaker[e] == speaker[t]) for label, e, t in trials)
    targets = sum(label for label, _, _ in trials)
    non_targets_there = (len(test) ** 2 - sum(n * n for n in sizes.values())) // 2
    assert targets == 1000 and len(trials) - targets == min(1000, non_targets_there)
    assert development_trials(test, max_trials=2000) == trials


def test_development_trials_keep_every_target_when_there_are_few():
    test = _speaker_rows({f"s{i}": 3 for i in range(200)})  # 600 targets, 179,100 pairs
    trials = development_trials(test, max_trials=5000)
    assert len(trials) == 5000 and sum(label for label, _, _ in trials) == 600
    with pytest.raises(ValueError, match="max_trials=1 must be at least 2"):
        development_trials(test, max_trials=1)
