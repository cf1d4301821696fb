"""Bad input is stopped with a clear error, or skipped and reported, before expensive stages."""

import json
import logging
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

import camsat_lobes.prepare as prepare_module
from camsat_lobes.audio_checks import check_audio_file
from camsat_lobes.clustering import (
    CAMSAT,
    IMSAT,
    AHCClusterer,
    GMMClusterer,
    KMeansClusterer,
    plot_history,
)
from camsat_lobes.clustering.camsat import _number_of_batches
from camsat_lobes.clustering.history import MIN_COUNT_SPAN, history_figure
from camsat_lobes.clustering.validation import check_batch_size, check_distinct_points
from camsat_lobes.logging_filters import (
    SPEECHBRAIN_TRAIN_LOGGER,
    TORCHVISION_WARNING,
    silence_torchvision_warning,
)
from camsat_lobes.minivox.config import PRESET_NAMES, MiniVoxConfig
from camsat_lobes.prepare import (
    preparation_differences,
    preparation_is_current,
    prepare_voxceleb,
)

RATE = 16000
TRIALS = """\
1 c/s1/u1.wav c/s2/u2.wav
0 c/s1/u1.wav d/s1/u1.wav
1 d/s1/u1.wav d/s2/u2.wav
0 d/s2/u2.wav c/s2/u2.wav
"""
C_TRIALS = "1 c/s1/u1.wav c/s2/u2.wav\n0 c/s1/u1.wav d/s1/u1.wav\n"


def tone(seconds=1.5, frequency=220.0, channels=1):
    t = np.arange(int(seconds * RATE)) / RATE
    signal = 0.1 * np.sin(2 * np.pi * frequency * t)
    return np.stack([signal] * channels, axis=1) if channels > 1 else signal


def write(root, relative, signal, subtype=None):
    path = root / "wav" / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, signal, RATE, subtype=subtype)
    return path


def make_corpus(root, speakers="abcd", trials=TRIALS):
    """Two utterances per speaker; with the default trials a, b train and c, d test."""
    for number, speaker in enumerate(speakers):
        write(root, f"{speaker}/s1/u1.wav", tone(frequency=150 + 40 * number))
        write(root, f"{speaker}/s2/u2.wav", tone(frequency=170 + 40 * number))
    if trials is not None:
        (root / "trials.txt").write_text(trials)
    return root


def rows(path):
    import csv

    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


@pytest.fixture
def corpus(tmp_path):
    return make_corpus(tmp_path / "corpus")


@pytest.fixture
def no_audio_checks(monkeypatch):
    """Fail if a test reaches the (expensive) audio checks."""

    def fail(*args, **kwargs):
        raise AssertionError("the audio files were checked")

    monkeypatch.setattr(prepare_module, "_check_files", fail)


# 1. Non-finite samples ------------------------------------------------------------------


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


def test_non_finite_check_reads_every_block(tmp_path, monkeypatch):
    import camsat_lobes.audio_checks as audio_checks

    monkeypatch.setattr(audio_checks, "FINITE_CHECK_BLOCK", 1000)
    signal = tone(3.0)
    signal[-1] = np.nan  # in the last block, after the silence probes' windows
    path = tmp_path / "late_nan.wav"
    sf.write(path, signal, RATE, subtype="FLOAT")
    check = check_audio_file(path, tmp_path / "converted.wav")
    assert not check.usable and check.problem.startswith("non-finite samples (1 NaN")


# 2. Preparation record: reruns notice a changed corpus ------------------------------------


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


# 3. Corpora that cannot give a verification experiment stop before the audio checks ------


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
    (root / "trials.txt").write_text(C_TRIALS)
    with pytest.raises(ValueError, match="once the trials on skipped files are dropped, holds no"):
        prepare_voxceleb(root, tmp_path / "out")


# 4. MiniVox presets -----------------------------------------------------------------------


def test_unknown_preset_lists_the_valid_names():
    with pytest.raises(ValueError, match="unknown MiniVox preset 'huge'; choose one of: tiny, "):
        MiniVoxConfig.preset("huge")
    with pytest.raises(ValueError, match="choose one of"):
        MiniVoxConfig.preset("from_dict")
    assert [MiniVoxConfig.preset(name) for name in PRESET_NAMES] == [
        MiniVoxConfig.tiny(),
        MiniVoxConfig.small(),
        MiniVoxConfig(),
        MiniVoxConfig.shifted(),
    ]


# 5. More clusters than distinct points ----------------------------------------------------

CLUSTERERS = {
    "kmeans": lambda k: KMeansClusterer(k, seed=0),
    "gmm": lambda k: GMMClusterer(k, seed=0),
    "ahc": lambda k: AHCClusterer(k, seed=0),
    "ahc_over_kmeans": lambda k: AHCClusterer(k, seed=0, max_points=20, n_preclusters=10),
}


def groups(n_distinct, n_points=40, dim=3):
    """``n_points`` points: ``n_distinct`` random points, each repeated as often."""
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(n_distinct, dim)).astype(np.float32)
    return np.repeat(centres, n_points // n_distinct, axis=0)


@pytest.mark.parametrize("name", CLUSTERERS)
def test_more_clusters_than_distinct_points_is_an_error(name):
    with pytest.raises(ValueError, match=r"only 1 distinct point \(of 40\) for n_clusters=4"):
        CLUSTERERS[name](4).fit(groups(1))
    with pytest.raises(ValueError, match=r"only 2 distinct points \(of 40\) for n_clusters=3"):
        CLUSTERERS[name](3).fit(groups(2))


@pytest.mark.parametrize("name", CLUSTERERS)
def test_as_many_clusters_as_distinct_points_keeps_copies_together(name):
    x = groups(3, n_points=42)
    labels = CLUSTERERS[name](3).fit(x).labels
    assert len(set(labels)) == 3
    for start in range(0, 42, 14):
        assert len(set(labels[start : start + 14])) == 1


def test_points_identical_after_normalisation_count_once():
    x = np.array([[1.0, 2.0], [2.0, 4.0], [3.0, 6.0], [0.0, 1.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="L2-normalised embeddings hold only 2 distinct"):
        KMeansClusterer(3).fit(x)
    assert KMeansClusterer(3, spherical=False).fit(x).labels.shape == (4,)


def test_distinct_points_check_treats_signed_zeros_as_equal():
    x = np.array([[0.0, 1.0], [-0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    with pytest.raises(ValueError, match="only 2 distinct points"):
        check_distinct_points(x, 3)
    assert check_distinct_points(np.eye(5, dtype=np.float32), 5) == 5


# 6. CAMSAT / IMSAT batch size ---------------------------------------------------------------


@pytest.mark.parametrize("method", [CAMSAT, IMSAT])
def test_batch_size_one_is_refused_at_construction(method):
    with pytest.raises(ValueError, match="batch_size=1: mini-batches need at least 2 points"):
        method(4, batch_size=1)
    with pytest.raises(TypeError, match="batch_size must be an integer"):
        method(4, batch_size=2.5)


def test_batch_size_set_after_construction_is_checked_at_fit():
    model = CAMSAT(2, hidden_sizes=(8,), epochs=1, batch_size=4, progress=False)
    model.batch_size = 0
    with pytest.raises(ValueError, match="batch_size=0"):
        model.fit(np.random.default_rng(0).normal(size=(8, 3)).astype(np.float32))


@pytest.mark.parametrize("n_points", [3, 7])
def test_a_trailing_batch_of_one_point_never_happens(n_points):
    x = np.random.default_rng(0).normal(size=(n_points, 4)).astype(np.float32)
    model = IMSAT(2, hidden_sizes=(8,), epochs=2, batch_size=2, progress=False)
    assert model.fit(x).labels.shape == (n_points,)


def test_batches_always_hold_two_points_or_more():
    for n_points in range(2, 60):
        for batch_size in range(2, 12):
            parts = torch.tensor_split(
                torch.arange(n_points), _number_of_batches(n_points, batch_size)
            )
            assert min(len(part) for part in parts) >= 2, (n_points, batch_size)
    assert check_batch_size(np.int64(8)) == 8


# 7. Clustering curves -----------------------------------------------------------------------


def test_curves_have_integer_epochs_and_a_sane_metric_range(tmp_path):
    history = [
        {"epoch": epoch, "acc": 0.3, "ami": 1e-16 * epoch, "nmi": 0.1, "n_clusters": 9}
        for epoch in (1, 2, 3)
    ]
    fig = history_figure({"IMSAT": history}, title="flat")
    acc, ami, nmi, count = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["ACC", "AMI", "NMI", "Number of clusters"]
    for ax in (acc, ami, nmi):
        low, high = ax.get_ylim()
        assert low <= 0 and high >= 1 and high - low < 1.1
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [tick for tick in ax.get_xticks() if low <= tick <= high]
        assert ticks and all(float(tick).is_integer() for tick in ticks)
    low, high = count.get_ylim()
    assert high - low >= MIN_COUNT_SPAN and low <= 9 <= high
    assert all(float(tick).is_integer() for tick in count.get_yticks())
    assert plot_history({"IMSAT": history}, tmp_path / "curves.png").stat().st_size > 0


def test_negative_ami_stays_visible():
    history = [{"epoch": 1, "ami": -0.05}, {"epoch": 2, "ami": 0.4}]
    low, high = history_figure({"CAMSAT": history}).axes[1].get_ylim()
    assert low < -0.05 and high >= 1


# 8. SpeechBrain's torchvision warning ---------------------------------------------------------


def test_only_the_torchvision_warning_is_dropped(caplog):
    silence_torchvision_warning()
    logger = logging.getLogger(SPEECHBRAIN_TRAIN_LOGGER)
    with caplog.at_level(logging.WARNING):
        logger.warning(TORCHVISION_WARNING)
        logger.warning("another SpeechBrain warning")
    assert [record.getMessage() for record in caplog.records] == ["another SpeechBrain warning"]


def test_importing_speechbrain_train_logger_is_quiet_once_silenced():
    code = (
        "from camsat_lobes.logging_filters import silence_torchvision_warning\n"
        "silence_torchvision_warning()\n"
        "import speechbrain.utils.train_logger\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True
    )
    assert TORCHVISION_WARNING not in result.stderr + result.stdout
