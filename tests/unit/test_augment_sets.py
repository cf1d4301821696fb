import csv
import os

import numpy as np
import pytest
import soundfile as sf
import torch
from speechbrain.augment.time_domain import AddNoise, AddReverb

from camsat_lobes.augment_sets import NOISE_COLOURS, build_augmentation_sets, coloured_noise

RATE = 16000


@pytest.fixture
def babble_sources(tmp_path):
    paths = []
    for index, frequency in enumerate([180.0, 240.0, 310.0]):
        t = np.arange(RATE) / RATE
        path = tmp_path / "speech" / f"talker{index}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.2 * np.sin(2 * np.pi * frequency * t) * (1 + np.sin(6 * t)), RATE)
        paths.append(str(path))
    return paths


def build(folder, sources, seed=1234):
    return build_augmentation_sets(
        folder,
        babble_sources=sources,
        seed=seed,
        num_noises=len(NOISE_COLOURS),
        num_rirs=2,
        num_babble=2,
        noise_duration=1.0,
    )


def rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def test_sets_are_listed_and_readable(tmp_path, babble_sources):
    sets = build(tmp_path / "aug", babble_sources)
    counts = {"noise_csv": len(NOISE_COLOURS), "rir_csv": 2, "babble_csv": 2}
    for key, count in counts.items():
        listed = rows(sets[key])
        assert len(listed) == count
        assert list(listed[0]) == ["ID", "duration", "wav", "wav_format", "wav_opts"]
        for row in listed:
            signal, rate = sf.read(row["wav"])
            assert rate == RATE and signal.ndim == 1 and np.isfinite(signal).all()
            assert float(row["duration"]) == pytest.approx(len(signal) / RATE, abs=1e-4)
            assert np.abs(signal).max() > 0
    assert [row["ID"].split("_")[0] for row in rows(sets["noise_csv"])] == list(NOISE_COLOURS)


def test_speechbrain_augmenters_read_the_csvs(tmp_path, babble_sources):
    sets = build(tmp_path / "aug", babble_sources)
    torch.manual_seed(0)
    clean = 0.1 * torch.randn(2, RATE)
    lengths = torch.ones(2)
    for key in ("noise_csv", "babble_csv"):
        noisy = AddNoise(csv_file=sets[key], snr_low=0, snr_high=5)(clean, lengths)
        assert noisy.shape == clean.shape and torch.isfinite(noisy).all()
        assert (noisy - clean).abs().mean() > 0.01
    reverberant = AddReverb(csv_file=sets["rir_csv"])(clean)
    assert reverberant.shape == clean.shape and torch.isfinite(reverberant).all()
    assert (reverberant - clean).abs().mean() > 0.01


def test_rirs_decay(tmp_path, babble_sources):
    sets = build(tmp_path / "aug", babble_sources)
    for row in rows(sets["rir_csv"]):
        rir, _ = sf.read(row["wav"])
        peak = int(np.abs(rir).argmax())
        tail = rir[peak:]
        tenth = max(1, len(tail) // 10)
        assert np.sum(tail[-tenth:] ** 2) < 1e-3 * np.sum(tail[:tenth] ** 2)


def test_noise_colours_have_their_spectral_slopes():
    rng = np.random.default_rng(0)
    slopes = {}
    for colour in ("brown", "pink", "white", "blue"):
        power = np.abs(np.fft.rfft(coloured_noise(colour, 4 * RATE, rng))) ** 2
        frequencies = np.fft.rfftfreq(4 * RATE, 1 / RATE)
        keep = (frequencies > 50) & (frequencies < 7000)
        slopes[colour] = np.polyfit(np.log(frequencies[keep]), np.log(power[keep]), 1)[0]
    assert slopes["brown"] == pytest.approx(-2, abs=0.2)
    assert slopes["pink"] == pytest.approx(-1, abs=0.2)
    assert slopes["white"] == pytest.approx(0, abs=0.2)
    assert slopes["blue"] == pytest.approx(1, abs=0.2)
    band = np.abs(np.fft.rfft(coloured_noise("band", 4 * RATE, rng))) ** 2
    assert (band < 1e-8 * band.max()).mean() > 0.3


def test_skip_when_done_and_seeded(tmp_path, babble_sources):
    first = build(tmp_path / "aug", babble_sources)
    stamps = {key: os.stat(path).st_mtime_ns for key, path in first.items()}
    assert build(tmp_path / "aug", babble_sources) == first
    assert stamps == {key: os.stat(path).st_mtime_ns for key, path in first.items()}

    again = build(tmp_path / "again", babble_sources)
    for key in first:
        for one, two in zip(rows(first[key]), rows(again[key])):
            assert np.array_equal(sf.read(one["wav"])[0], sf.read(two["wav"])[0])
    build(tmp_path / "aug", babble_sources, seed=99)
    assert stamps["noise_csv"] != os.stat(first["noise_csv"]).st_mtime_ns
    other_noise = sf.read(rows(first["noise_csv"])[0]["wav"])[0]
    assert not np.array_equal(other_noise, sf.read(rows(again["noise_csv"])[0]["wav"])[0])


def test_babble_needs_two_sources(tmp_path, babble_sources):
    with pytest.raises(ValueError, match="at least 2 source utterances"):
        build(tmp_path / "aug", babble_sources[:1])


def test_unusable_babble_source_is_named(tmp_path, babble_sources):
    silent = tmp_path / "silent.wav"
    sf.write(silent, np.zeros(RATE), RATE)
    with pytest.raises(ValueError, match="silent.wav is empty or silent"):
        build(tmp_path / "aug", [str(silent), str(silent)])


def musan_and_rirs(root, parts=("noise", "music", "speech"), rir_parts=("simulated", "real")):
    """A MUSAN root and a RIRS_NOISES root holding only the given parts, one short file each."""
    t = np.arange(RATE) / RATE
    for part in parts:
        path = root / "musan" / part / "src" / f"{part}-0000.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, 0.1 * np.sin(2 * np.pi * 200 * t), RATE)
    (root / "musan").mkdir(exist_ok=True)
    folders = {
        "simulated": "RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav",
        "real": "RIRS_NOISES/real_rirs_isotropic_noises/air_rir.wav",
    }
    for part in rir_parts:
        path = root / folders[part]
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, np.exp(-40 * t[:2000]), RATE)
    (root / "RIRS_NOISES").mkdir(exist_ok=True)
    return root / "musan", root / "RIRS_NOISES"


def build_recorded(folder, musan, rirs, **options):
    return build_augmentation_sets(
        folder, kind="musan_rir", musan_folder=musan, rir_folder=rirs, **options
    )


def test_missing_musan_or_rir_folders_say_what_they_must_hold(tmp_path):
    musan, rirs = musan_and_rirs(tmp_path / "a", parts=("noise", "speech"))
    with pytest.raises(FileNotFoundError, match=r"musan/music is missing: musan_folder must be"):
        build_recorded(tmp_path / "aug", musan, rirs)
    with pytest.raises(FileNotFoundError, match="musan_folder .*nowhere does not exist"):
        build_recorded(tmp_path / "aug", tmp_path / "nowhere", rirs)
    musan, rirs = musan_and_rirs(tmp_path / "b", rir_parts=("simulated",))
    with pytest.raises(FileNotFoundError, match="real_rirs_isotropic_noises missing: rir_folder"):
        build_recorded(tmp_path / "aug", musan, rirs)
    (musan / "music" / "src" / "music-0000.wav").unlink()
    with pytest.raises(FileNotFoundError, match="music holds no wav file"):
        build_recorded(tmp_path / "aug", musan, rirs)
    with pytest.raises(ValueError, match="needs musan_folder"):
        build_augmentation_sets(tmp_path / "aug", kind="musan_rir", rir_folder=rirs)
    with pytest.raises(ValueError, match="read with kind='musan_rir' only"):
        build_augmentation_sets(tmp_path / "aug", musan_folder=musan)
    with pytest.raises(ValueError, match="kind='musan' is not one of"):
        build_augmentation_sets(tmp_path / "aug", kind="musan")


def test_recorded_sets_are_seeded_and_skipped_when_done(tmp_path, babble_sources, caplog):
    musan, rirs = musan_and_rirs(tmp_path)
    options = {"num_noises": 3, "num_babble": 2, "noise_duration": 0.5}
    with caplog.at_level("WARNING"):
        first = build_recorded(
            tmp_path / "one", musan, rirs, babble_sources=babble_sources, **options
        )
    assert "babble_sources are not used" in caplog.text
    second = build_recorded(tmp_path / "two", musan, rirs, **options)
    for key in ("noise_csv", "rir_csv", "babble_csv"):
        one, two = rows(first[key]), rows(second[key])
        assert [row["ID"] for row in one] == [row["ID"] for row in two]
        for a, b in zip(one, two):
            assert np.array_equal(sf.read(a["wav"])[0], sf.read(b["wav"])[0])
    stamp = os.stat(first["noise_csv"]).st_mtime_ns
    assert build_recorded(tmp_path / "one", musan, rirs, **options) == first
    assert os.stat(first["noise_csv"]).st_mtime_ns == stamp
    assert [float(row["duration"]) for row in rows(first["noise_csv"])] == [0.5] * 3
