"""The inference command line refuses what it cannot judge, naming the file and the reason."""

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from camsat_lobes.inference import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

RATE = 16000


@pytest.fixture(scope="module")
def model_dir(_tiny_model_dir, tmp_path_factory):
    """A copy of the doctests' tiny model folder (root ``conftest.py``)."""
    return Path(shutil.copytree(_tiny_model_dir, tmp_path_factory.mktemp("cli") / "model"))


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """One file per case: speech-like, silent, short, tiny, NaN, noise, garbage."""
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(0)
    t = np.arange(int(1.2 * RATE)) / RATE
    speech = 0.3 * np.sin(2 * np.pi * 180 * t * (1 + t)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    nan = 0.1 * rng.normal(size=RATE)
    nan[100] = np.nan
    files = {
        "speech": speech,
        "other": np.roll(speech, 3000)[:RATE] * 0.5,
        "silence": np.zeros(RATE),
        "clip": speech[: RATE // 10],
        "tiny": speech[:100],
        "noise": 0.1 * rng.normal(size=RATE),
        "quiet": 1e-4 * rng.normal(size=RATE),
    }
    paths = {}
    for name, wav in files.items():
        paths[name] = folder / f"{name}.wav"
        sf.write(paths[name], wav, RATE, subtype="FLOAT")
    paths["nan"] = folder / "nan.wav"
    sf.write(paths["nan"], nan, RATE, subtype="FLOAT")
    paths["garbage"] = folder / "garbage.wav"
    paths["garbage"].write_bytes(b"RIFF but not really a wav file")
    return {name: str(path) for name, path in paths.items()}


def run(capsys, *args):
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    "case, reason",
    [
        ("silence", "no speech-level sound: 0.00 s of 20 ms frames at or above -50 dBFS"),
        ("quiet", "no speech-level sound"),
        ("clip", "too short (0.10 s, 1600 samples; the minimum is 0.5 s"),
        ("tiny", "too short (0.01 s, 100 samples; the minimum is 0.5 s"),
        ("nan", "non-finite samples (1 NaN, 0 inf of 16000)"),
        ("garbage", "unreadable ("),
    ],
)
def test_verify_refuses_a_bad_file_naming_it(model_dir, audio, capsys, case, reason):
    status, out, err = run(capsys, "verify", model_dir, audio["speech"], audio[case])
    assert status == 1
    assert out == ""  # no score
    assert f"error: {audio[case]}: {reason}" in err
    assert "Traceback" not in err


def test_verify_names_both_bad_files(model_dir, audio, capsys):
    status, out, err = run(capsys, "verify", model_dir, audio["silence"], audio["tiny"])
    assert status == 1 and out == ""
    assert f"{audio['silence']}: no speech-level sound" in err
    assert f"{audio['tiny']}: too short" in err


def test_verify_prints_score_and_threshold_source(model_dir, audio, capsys):
    status, out, err = run(capsys, "verify", model_dir, audio["speech"], audio["other"])
    assert status == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("score ") and lines[0].endswith("(threshold 0.2000)")
    assert (
        lines[1]
        == "threshold chosen as: EER point of 40 trials among training utterances (example)"
    )
    status, out, _ = run(
        capsys, "verify", model_dir, audio["speech"], audio["other"], "--threshold", "0.9"
    )
    assert out.splitlines()[1] == "threshold chosen as: given on the command line (--threshold)"


def test_white_noise_passes_the_energy_check(model_dir, audio, capsys):
    """Documented limitation: an energy check cannot tell noise from speech."""
    status, out, err = run(capsys, "verify", model_dir, audio["speech"], audio["noise"])
    assert status == 0, err
    assert out.startswith("score ")


def test_limits_are_options(model_dir, audio, capsys):
    clip = [model_dir, audio["speech"], audio["clip"], "--min-duration", "0.05"]
    status, _, err = run(capsys, "verify", *clip)
    assert status == 1
    assert "no speech-level sound: 0.10 s of 20 ms frames" in err
    status, _, err = run(capsys, "verify", *clip, "--min-speech", "0.05")
    assert status == 0, err
    status, _, err = run(capsys, "verify", model_dir, audio["speech"], audio["quiet"])
    assert status == 1
    status, _, err = run(
        capsys,
        "verify",
        model_dir,
        audio["speech"],
        audio["quiet"],
        "--speech-threshold",
        "-90",
    )
    assert status == 0, err
    status, _, err = run(
        capsys, "verify", model_dir, audio["speech"], audio["speech"], "--min-speech", "5"
    )
    assert status == 1
    assert "the minimum is 5 s" in err


def test_embed_writes_the_good_files_and_lists_the_bad(model_dir, audio, capsys, tmp_path):
    files = [audio["speech"], audio["silence"], audio["other"], audio["nan"], audio["tiny"]]
    output = tmp_path / "emb.npy"
    status, out, err = run(capsys, "embed", model_dir, *files, "-o", output)
    assert status == 1
    assert "wrote 2 x 8 embeddings" in out
    assert (tmp_path / "emb.ids.txt").read_text().splitlines() == [audio["speech"], audio["other"]]
    embeddings = np.load(output)
    assert embeddings.shape == (2, 8) and np.isfinite(embeddings).all()
    for name, reason in (("silence", "no speech-level"), ("nan", "non-finite"), ("tiny", "too")):
        assert f"error: {audio[name]}: {reason}" in err
    assert "error: 3 of 5 files refused; the others were written" in err

    alone = tmp_path / "alone.npy"
    assert run(capsys, "embed", model_dir, audio["other"], "-o", alone)[0] == 0
    np.testing.assert_allclose(np.load(alone)[0], embeddings[1], atol=1e-6)


def test_embed_with_only_bad_files_writes_nothing(model_dir, audio, capsys, tmp_path):
    status, out, err = run(capsys, "embed", model_dir, audio["silence"], "-o", tmp_path / "e")
    assert status == 1 and out == ""
    assert "error: 1 of 1 files refused; nothing was written" in err
    assert not (tmp_path / "e.npy").exists()


@pytest.mark.parametrize(
    "damage, message",
    [
        ("truncate embedding_model.ckpt", "embedding_model.ckpt is damaged or truncated"),
        ("truncate scoring.ckpt", "scoring.ckpt is damaged or truncated"),
        ("garble hyperparams.yaml", "hyperparams.yaml is damaged"),
        ("delete embedding_model.ckpt", "is incomplete"),
    ],
)
def test_damaged_model_folder_is_named(model_dir, audio, capsys, tmp_path, damage, message):
    folder = shutil.copytree(model_dir, tmp_path / "model")
    action, name = damage.split()
    path = folder / name
    if action == "truncate":
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif action == "garble":
        path.write_text(path.read_text().replace("modules:", "modules: [\n", 1))
    else:
        path.unlink()
    status, out, err = run(capsys, "verify", folder, audio["speech"], audio["other"])
    assert status == 1 and out == ""
    assert message in err
    assert str(folder) in err
    assert "Traceback" not in err


def test_help_documents_the_checks_and_their_limits(capsys):
    for command in ("verify", "embed"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        for option in ("--min-duration", "--speech-threshold", "--min-speech"):
            assert option in text
        assert "(default 0.5)" in text and "(default -50)" in text
        assert "cannot tell speech from noise" in text
        assert "white noise passes it" in text
