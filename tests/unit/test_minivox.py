import json
import os
import shutil
import time
import wave
from pathlib import Path

import numpy as np
import pytest

from camsat_lobes.minivox import MiniVoxConfig, default_root, generate_minivox
from camsat_lobes.minivox.config import PRESET_NAMES
from camsat_lobes.minivox.corpus import COMPLETE_MARKER, plan_corpus
from camsat_lobes.minivox.trials import make_trials


def corpus_files(root):
    """Map relative path -> bytes of every corpus file (the lock file aside)."""
    root = Path(root)
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != ".lock"
    }


def read_trials(root):
    lines = (Path(root) / "trials.txt").read_text().splitlines()
    return [(int(label), enrol, test) for label, enrol, test in (line.split() for line in lines)]


def test_tiny_layout(tiny_minivox):
    root = tiny_minivox
    assert root == default_root(MiniVoxConfig.tiny())
    wavs = sorted((root / "wav").glob("*/*/*.wav"))
    assert len(wavs) == 4 * 2 * 2
    for path in wavs:
        with wave.open(str(path)) as handle:
            assert handle.getframerate() == 16000
            assert handle.getnchannels() == 1
            assert handle.getsampwidth() == 2
            assert 0.5 < handle.getnframes() / 16000 < 5.0
            pcm = np.frombuffer(handle.readframes(handle.getnframes()), "<i2")
        assert 0 < np.abs(pcm).max() < 32767  # not silent, not clipped
    assert not list(root.rglob("*.tmp"))
    assert (root / COMPLETE_MARKER).read_text() == MiniVoxConfig.tiny().config_hash()


def test_tiny_metadata_matches_files(tiny_minivox):
    meta = json.loads((tiny_minivox / "metadata.json").read_text())
    assert meta["config"] == MiniVoxConfig.tiny().to_dict()
    splits = {name: info["split"] for name, info in meta["speakers"].items()}
    assert sorted(splits.values()) == ["test", "test", "train", "train"]
    listed = set()
    for speaker, info in meta["speakers"].items():
        assert pytest.approx(sum(info["voice_weights"].values()), abs=1e-3) == 1.0
        for session, entry in info["sessions"].items():
            channel = entry["channel"]
            assert 10.0 <= channel["snr_db"] <= 30.0
            assert 0.15 <= channel["rt60"]
            for utt, details in entry["utterances"].items():
                path = tiny_minivox / "wav" / speaker / session / utt
                with wave.open(str(path)) as handle:
                    assert details["duration"] == round(handle.getnframes() / 16000, 4)
                assert details["text"] and 0.85 <= details["speed"] <= 1.15
                listed.add(f"{speaker}/{session}/{utt}")
    on_disk = {p.relative_to(tiny_minivox / "wav").as_posix() for p in tiny_minivox.rglob("*.wav")}
    assert listed == on_disk
    assert meta["summary"]["utterances"] == len(on_disk)


def test_sessions_have_distinct_channels(tiny_minivox):
    meta = json.loads((tiny_minivox / "metadata.json").read_text())
    channels = [
        json.dumps(entry["channel"], sort_keys=True)
        for info in meta["speakers"].values()
        for entry in info["sessions"].values()
    ]
    assert len(set(channels)) == len(channels)


def test_trials_balanced_and_on_test_speakers(tiny_minivox):
    meta = json.loads((tiny_minivox / "metadata.json").read_text())
    trials = read_trials(tiny_minivox)
    labels = [label for label, _, _ in trials]
    assert labels.count(1) == labels.count(0) > 0
    cross = 0
    for label, enrol, test in trials:
        assert (tiny_minivox / "wav" / enrol).is_file() and (tiny_minivox / "wav" / test).is_file()
        (spk_a, sess_a, _), (spk_b, sess_b, _) = enrol.split("/"), test.split("/")
        assert meta["speakers"][spk_a]["split"] == meta["speakers"][spk_b]["split"] == "test"
        assert label == int(spk_a == spk_b)
        cross += label == 1 and sess_a != sess_b
    assert cross >= 0.8 * labels.count(1)
    assert len({(e, t) for _, e, t in trials} | {(t, e) for _, e, t in trials}) == 2 * len(trials)


def test_trials_mostly_cross_session_at_scale():
    utts = [
        (f"s{s}", f"s{s}k{k}", f"s{s}/k{k}/{u}.wav")
        for s in range(6)
        for k in range(3)
        for u in range(3)
    ]
    trials = make_trials(utts, np.random.default_rng(0), cross_session_fraction=0.8)
    targets = [(e, t) for label, e, t in trials if label == 1]
    cross = [1 for e, t in targets if e.split("/")[1] != t.split("/")[1]]
    assert len(targets) == len(trials) / 2
    assert len(cross) == 6 * 27  # every cross-session pair is kept
    assert len(cross) / len(targets) >= 0.8


def test_plan_keeps_speakers_disjoint_and_deterministic():
    plan = plan_corpus(MiniVoxConfig())
    names = [s.name for s in plan]
    assert len(set(names)) == len(names) == 144
    assert [s.split for s in plan].count("test") == 24
    assert plan_corpus(MiniVoxConfig()) == plan
    other = plan_corpus(MiniVoxConfig(seed=1))
    assert other[0].voice != plan[0].voice


def test_same_seed_gives_identical_bytes_and_cache(tiny_minivox, tmp_path):
    # A fresh in-process run (1 worker) must equal the cached run (made by a worker pool).
    fresh = generate_minivox(MiniVoxConfig.tiny(), tmp_path / "fresh", num_workers=1)
    assert corpus_files(fresh) == corpus_files(tiny_minivox)
    stamps = {p: p.stat().st_mtime_ns for p in fresh.rglob("*.wav")}
    start = time.perf_counter()
    assert generate_minivox(MiniVoxConfig.tiny(), fresh) == fresh
    assert time.perf_counter() - start < 0.5
    assert {p: p.stat().st_mtime_ns for p in fresh.rglob("*.wav")} == stamps


def test_resume_after_interruption(tiny_minivox, tmp_path):
    root = tmp_path / "resumed"
    shutil.copytree(tiny_minivox, root)
    # What an interrupted run leaves: no marker or metadata, missing files, a stale temp file.
    for name in (COMPLETE_MARKER, "metadata.json", "trials.txt"):
        (root / name).unlink()
    wavs = sorted((root / "wav").rglob("*.wav"))
    wavs[1].unlink()
    shutil.rmtree(wavs[-1].parent)
    wavs[0].with_name("00002.wav.tmp").write_bytes(b"half a file")
    kept = wavs[2].stat().st_mtime_ns
    assert generate_minivox(MiniVoxConfig.tiny(), root, num_workers=1) == root
    assert wavs[2].stat().st_mtime_ns == kept  # finished files are not redone
    assert corpus_files(root) == corpus_files(tiny_minivox)


def test_refuses_foreign_folders(tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not a MiniVox folder"):
        generate_minivox(MiniVoxConfig.tiny(), busy)
    other = tmp_path / "other"
    other.mkdir()
    (other / COMPLETE_MARKER).write_text("0123456789ab")
    with pytest.raises(ValueError, match="another config"):
        generate_minivox(MiniVoxConfig.tiny(), other)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"num_test_speakers": 1}, "at least 2 test speakers"),
        ({"snr_db_range": (30.0, 10.0)}, "low <= high"),
        ({"lowpass_hz_range": (3000.0, 9000.0)}, "Nyquist"),
        ({"train_sessions": (0, 2)}, "must be > 0"),
    ],
)
def test_config_rejects_bad_values(overrides, message):
    with pytest.raises(ValueError, match=message):
        MiniVoxConfig(**overrides)


def test_config_hash_names_cache_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("CAMSAT_CACHE", os.fspath(tmp_path))
    config = MiniVoxConfig.small()
    assert default_root(config) == tmp_path / "minivox" / config.config_hash()
    assert MiniVoxConfig.small().config_hash() == config.config_hash()
    assert MiniVoxConfig.small(seed=7).config_hash() != config.config_hash()


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown MiniVox preset 'huge'; choose one of: tiny, "):
        MiniVoxConfig.preset("huge")
    with pytest.raises(ValueError, match="choose one of"):
        MiniVoxConfig.preset("from_dict")
    assert [MiniVoxConfig.preset(name) for name in PRESET_NAMES] == [
        MiniVoxConfig.tiny(),
        MiniVoxConfig.small(),
        MiniVoxConfig(),
        MiniVoxConfig.voxceleb2_ratios(),
        MiniVoxConfig.shifted(),
    ]
