"""Exported CAMSAT models: SpeechBrain loading, recipe-identical scores, command line."""

import io
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from ruamel.yaml import YAML
from speechbrain.inference.speaker import SpeakerRecognition
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from camsat_lobes.inference import (
    CAMSATSpeakerRecognition,
    ScoringStatistics,
    export_model,
    main,
)
from camsat_lobes.scoring import CosineBackend

SAMPLE_RATE = 16000
CHANNELS = [16, 16, 16, 16, 48]
DIM = 8
THRESHOLD = 0.05
SOURCE = "EER point of 40 trials among held-out training utterances"
CPU = {"device": "cpu"}

NODES = {
    "compute_features": "!new:speechbrain.lobes.features.Fbank\n  n_mels: 80\n",
    "mean_var_norm": (
        "!new:speechbrain.processing.features.InputNormalization\n"
        "  norm_type: sentence\n  std_norm: false\n"
    ),
    "embedding_model": (
        "!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
        f"  input_size: 80\n  channels: {CHANNELS}\n  lin_neurons: {DIM}\n"
    ),
}


def tiny_modules(seed=0):
    torch.manual_seed(seed)
    modules = {
        "compute_features": Fbank(n_mels=80),
        "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
        "embedding_model": ECAPA_TDNN(80, channels=CHANNELS, lin_neurons=DIM),
    }
    for module in modules.values():
        module.eval()
    return modules


def recipe_embedding(modules, path):
    """Embed one file alone, as the recipe does: features -> mean_var_norm -> network."""
    wav, rate = sf.read(path, dtype="float32")
    assert rate == SAMPLE_RATE
    wavs, lens = torch.from_numpy(wav).unsqueeze(0), torch.ones(1)
    with torch.no_grad():
        feats = modules["mean_var_norm"](modules["compute_features"](wavs), lens)
        return modules["embedding_model"](feats, lens).reshape(1, DIM).numpy()


@pytest.fixture(scope="module")
def wav_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("audio")
    rng = np.random.default_rng(1)
    paths = []
    for name, seconds in (("a.wav", 1.3), ("b.wav", 0.8)):
        t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
        wav = 0.3 * np.sin(2 * np.pi * 220 * t * (1 + t)) + 0.05 * rng.normal(size=t.shape)
        sf.write(folder / name, wav, SAMPLE_RATE)
        paths.append(folder / name)
    return paths


@pytest.fixture(scope="module", params=[None, "as-norm"], ids=["cosine", "as-norm"])
def exported(request, tmp_path_factory):
    """A tiny random ECAPA exported with a backend from random "training" embeddings."""
    modules = tiny_modules()
    train = np.random.default_rng(2).normal(size=(40, DIM)).astype(np.float32)
    backend = CosineBackend.from_training(train, score_norm=request.param, top_k=10)
    folder = tmp_path_factory.mktemp("export") / "inference"
    export_model(folder, NODES, modules, backend, THRESHOLD, threshold_source=SOURCE)
    model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts=CPU)
    return folder, modules, backend, model


def recipe_score(modules, backend, path_a, path_b):
    return float(
        backend.score(recipe_embedding(modules, path_a), recipe_embedding(modules, path_b))[0]
    )


def test_export_writes_the_folder(exported):
    folder, _, backend, model = exported
    assert sorted(p.name for p in folder.iterdir()) == [
        "README.md",
        "embedding_model.ckpt",
        "hyperparams.yaml",
        "mean_var_norm.ckpt",
        "scoring.ckpt",
        "threshold.json",
    ]
    scoring = model.mods.scoring
    assert isinstance(scoring, ScoringStatistics)
    assert np.array_equal(scoring.mean.numpy(), backend.mean)
    assert scoring.threshold.item() == pytest.approx(THRESHOLD)
    cohort_rows = 0 if backend.cohort is None else len(backend.cohort)
    assert scoring.cohort.shape == (cohort_rows, DIM)
    if cohort_rows:
        assert np.array_equal(scoring.cohort.numpy(), backend.cohort)
        assert scoring.top_k == backend.top_k
    assert "CAMSATSpeakerRecognition.from_hparams" in (folder / "README.md").read_text()


def test_threshold_and_its_source_are_recorded(exported):
    folder = exported[0]
    record = json.loads((folder / "threshold.json").read_text())
    assert record == {"threshold": pytest.approx(THRESHOLD), "source": SOURCE}
    hparams = YAML().load((folder / "hyperparams.yaml").read_text())
    assert hparams["threshold_source"] == SOURCE
    assert SOURCE in (folder / "README.md").read_text()


def test_verify_files_gives_the_recipe_score(exported, wav_files):
    folder, modules, backend, model = exported
    score, decision = model.verify_files(*wav_files)
    expected = recipe_score(modules, backend, *wav_files)
    assert score.shape == decision.shape == (1,)
    assert score.item() == pytest.approx(expected, abs=1e-4)
    assert bool(decision) == (score.item() > THRESHOLD)
    # A given threshold overrides the saved one, on both sides of the score.
    wavs = [model.load_audio(p).unsqueeze(0) for p in wav_files]
    assert bool(model.verify_batch(*wavs, threshold=expected - 0.01)[1])
    assert not bool(model.verify_batch(*wavs, threshold=expected + 0.01)[1])


def test_encode_batch_is_batch_independent(exported, wav_files):
    _, modules, _, model = exported
    wavs = [model.load_audio(p) for p in wav_files]
    longest = max(len(w) for w in wavs)
    batch = torch.zeros(len(wavs), longest)
    for row, wav in enumerate(wavs):
        batch[row, : len(wav)] = wav
    lens = torch.tensor([len(w) / longest for w in wavs])
    emb = model.encode_batch(batch, lens)
    assert emb.shape == (2, 1, DIM)
    for row, path in enumerate(wav_files):
        alone = recipe_embedding(modules, path)
        np.testing.assert_allclose(emb[row].numpy(), alone, atol=1e-4)
    # verify_batch on the padded batches scores each pair as verify_files does.
    scores, _ = model.verify_batch(batch, batch.flip(0), lens, lens.flip(0))
    assert scores.shape == (2, 1)
    single, _ = model.verify_files(*wav_files)
    assert scores[0, 0].item() == pytest.approx(single.item(), abs=1e-6)


def run_cli(args, subprocess_run, capsys):
    """Run the command line in a subprocess (``python -m``) or in this process."""
    if subprocess_run:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        command = [sys.executable, "-m", "camsat_lobes.inference", *args]
        return subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    assert main(args) == 0
    return capsys.readouterr().out


def test_cli_verify_and_embed(exported, wav_files, tmp_path, capsys):
    folder, modules, backend, model = exported
    # The subprocess (slow start) runs for the AS-norm model; the cosine one runs in-process.
    in_subprocess = model.mods.scoring.cohort.shape[0] > 0
    out = run_cli(["verify", str(folder), *map(str, wav_files)], in_subprocess, capsys)
    match = re.fullmatch(
        r"score (-?\d+\.\d{4}) -> (same speaker|different speakers) \(threshold (\S+)\)\n"
        r"threshold chosen as: (.+)\n",
        out,
    )
    assert match, out
    expected = recipe_score(modules, backend, *wav_files)
    assert float(match[1]) == pytest.approx(expected, abs=1e-4)
    assert match[2] == ("same speaker" if expected > THRESHOLD else "different speakers")
    assert float(match[3]) == pytest.approx(THRESHOLD)
    assert match[4] == SOURCE

    output = tmp_path / "emb.npy"
    files = [str(wav_files[1]), str(wav_files[0])]
    out = run_cli(["embed", str(folder), *files, "-o", str(output)], in_subprocess, capsys)
    assert "wrote 2 x 8 embeddings" in out
    emb = np.load(output)
    assert emb.dtype == np.float32 and emb.shape == (2, DIM)
    assert (tmp_path / "emb.ids.txt").read_text().splitlines() == files
    for row, path in enumerate(files):
        np.testing.assert_allclose(emb[row : row + 1], recipe_embedding(modules, path), atol=1e-4)


def test_cli_help_documents_both_commands(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    assert "verify" in text and "embed" in text
    for command in ("verify", "embed"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        assert "MODEL_DIR" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    assert "--format" in capsys.readouterr().out


def test_plain_speechbrain_interface_loads_the_folder(exported, wav_files):
    folder, modules, _, _ = exported
    plain = SpeakerRecognition.from_hparams(source=str(folder), run_opts=CPU)
    emb = plain.encode_batch(plain.load_audio(str(wav_files[0])))
    np.testing.assert_allclose(
        emb.reshape(1, DIM).numpy(), recipe_embedding(modules, wav_files[0]), atol=1e-4
    )
    score, _ = plain.verify_files(str(wav_files[0]), str(wav_files[1]))
    cosine = torch.nn.functional.cosine_similarity(
        *(torch.from_numpy(recipe_embedding(modules, p)) for p in wav_files)
    )
    assert score.item() == pytest.approx(cosine.item(), abs=1e-4)


def test_moved_folder_and_savedir(exported, wav_files, tmp_path):
    folder, modules, backend, _ = exported
    moved = tmp_path / "elsewhere" / "model"
    shutil.copytree(folder, moved)
    # Make the original checkpoints unreadable through the written paths: hide the folder.
    hidden = folder.with_name(folder.name + "_hidden")
    folder.rename(hidden)
    try:
        model = CAMSATSpeakerRecognition.from_hparams(moved, run_opts=CPU)
        score, _ = model.verify_files(*wav_files)
    finally:
        hidden.rename(folder)
    assert score.item() == pytest.approx(recipe_score(modules, backend, *wav_files), abs=1e-4)

    savedir = tmp_path / "collected"
    model = CAMSATSpeakerRecognition.from_hparams(folder, savedir=savedir, run_opts=CPU)
    assert (savedir / "embedding_model.ckpt").is_symlink()
    assert model.verify_files(*wav_files)[0].item() == pytest.approx(score.item(), abs=1e-6)


def test_other_sample_rates_are_resampled(exported, tmp_path):
    _, _, _, model = exported
    path = tmp_path / "narrow.wav"
    sf.write(path, 0.1 * np.random.default_rng(3).normal(size=(8000, 2)), 8000)
    assert model.load_audio(path).shape == (SAMPLE_RATE,)


def test_recipe_style_keyed_nodes_are_accepted(tmp_path, wav_files):
    """The recipe dumps each node under its key with ruamel (``name: !new:...``)."""
    source = "".join(f"# about {name}\n{name}: {text}" for name, text in NODES.items())
    resolved = YAML().load(source)
    nodes = {}
    for name in NODES:
        stream = io.StringIO()
        YAML().dump({name: resolved[name]}, stream)
        nodes[name] = stream.getvalue()
    modules = tiny_modules(seed=5)
    backend = CosineBackend.from_training(np.random.default_rng(4).normal(size=(30, DIM)))
    folder = export_model(tmp_path / "model", nodes, modules, backend, threshold=0.1)
    assert "# about" not in (folder / "hyperparams.yaml").read_text()  # source comments dropped
    source = json.loads((folder / "threshold.json").read_text())["source"]
    assert source == "not stated when the model was exported"
    model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts=CPU)
    score, _ = model.verify_files(*wav_files)
    assert score.item() == pytest.approx(recipe_score(modules, backend, *wav_files), abs=1e-4)


def test_export_refuses_nodes_that_do_not_build_the_modules(tmp_path):
    backend = CosineBackend.from_training(np.random.default_rng(4).normal(size=(30, DIM)))
    other = dict(NODES, embedding_model=NODES["embedding_model"].replace("48]", "64]"))
    with pytest.raises(ValueError, match="does not load"):
        export_model(tmp_path / "a", other, tiny_modules(), backend, 0.1)
    unresolved = dict(
        NODES, compute_features="!new:speechbrain.lobes.features.Fbank\n  n_mels: !ref <n_mels>\n"
    )
    with pytest.raises(ValueError, match="!ref"):
        export_model(tmp_path / "b", unresolved, tiny_modules(), backend, 0.1)


def test_missing_model_and_audio_errors(exported, wav_files, tmp_path, capsys):
    missing = tmp_path / "no_model"
    with pytest.raises(FileNotFoundError, match="does not exist.*verify stage"):
        CAMSATSpeakerRecognition.from_hparams(missing)
    missing.mkdir()
    with pytest.raises(FileNotFoundError, match="has no hyperparams.yaml.*export_model"):
        CAMSATSpeakerRecognition.from_hparams(missing)

    folder = exported[0]
    assert main(["verify", str(tmp_path / "absent"), *map(str, wav_files)]) == 1
    assert "absent does not exist" in capsys.readouterr().err

    garbage = tmp_path / "garbage.wav"
    garbage.write_bytes(b"not audio at all")
    assert main(["verify", str(folder), str(wav_files[0]), str(garbage)]) == 1
    assert f"{garbage}: unreadable (" in capsys.readouterr().err
    assert main(["embed", str(folder), str(tmp_path / "gone.wav"), "-o", "x.npy"]) == 1
    assert f"{tmp_path / 'gone.wav'}: does not exist" in capsys.readouterr().err
