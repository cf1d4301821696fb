"""Segments of train.csv and the development speakers' draw."""

import audio_corpus
import pytest
from audio_corpus import RATE, rows

from camsat_lobes.prepare import development_speaker_draw, prepare_voxceleb, segment_rows

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
