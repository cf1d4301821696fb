"""ONNX and TorchScript exports give the SpeechBrain interface's embeddings and scores."""

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from speechbrain.lobes.features import Fbank
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
from speechbrain.processing.features import InputNormalization

from camsat_lobes.inference import (
    CAMSATSpeakerRecognition,
    PortableEmbedder,
    export_model,
    export_portable,
    main,
    read_portable_metadata,
)
from camsat_lobes.scoring import CosineBackend

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TOLERANCE = 1e-4
DIM = 8
NODES = {
    "compute_features": "!new:speechbrain.lobes.features.Fbank\n  n_mels: 80\n",
    "mean_var_norm": "!new:speechbrain.processing.features.InputNormalization\n"
    "  norm_type: sentence\n  std_norm: false\n",
    "embedding_model": "!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
    f"  input_size: 80\n  channels: [16, 16, 16, 16, 48]\n  lin_neurons: {DIM}\n",
}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """A tiny exported model (AS-norm), with its ONNX and TorchScript networks."""
    torch.manual_seed(0)
    modules = {
        "compute_features": Fbank(n_mels=80),
        "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
        "embedding_model": ECAPA_TDNN(80, channels=[16, 16, 16, 16, 48], lin_neurons=DIM),
    }
    train = np.random.default_rng(0).normal(size=(30, DIM)).astype(np.float32)
    backend = CosineBackend.from_training(train, score_norm="as-norm", top_k=5)
    folder = tmp_path_factory.mktemp("portable") / "inference"
    export_model(folder, NODES, modules, backend, 0.1, threshold_source="a test threshold")
    for fmt in ("onnx", "torchscript"):
        export_portable(folder, fmt)
    return folder


@pytest.fixture(scope="module")
def model(folder):
    return CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})


@pytest.fixture(scope="module")
def utterances(tiny_minivox):
    """Real test-speaker utterances of several lengths (the tiny MiniVox corpus)."""
    paths = sorted(Path(tiny_minivox, "wav").rglob("*.wav"))[:4]
    assert len(paths) == 4
    return paths


def reference(model, wav):
    with torch.no_grad():
        return model.encode_batch(wav)[:, 0].numpy()


FILES = {"onnx": "embedding_model.onnx", "torchscript": "embedding_model.pt"}


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_batch_of_one_at_every_length(folder, model, utterances, fmt):
    embedder = PortableEmbedder(folder / FILES[fmt])
    lengths = set()
    for path in utterances:
        wav = model.load_audio(path)
        lengths.add(len(wav))
        got = embedder.embed(wav.unsqueeze(0)).numpy()
        np.testing.assert_allclose(got, reference(model, wav), atol=TOLERANCE)
    assert len(lengths) > 1  # the time axis is dynamic


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_batches_of_equal_lengths_and_padded_batches(folder, model, utterances, fmt):
    embedder = PortableEmbedder(folder / FILES[fmt])
    wavs = [model.load_audio(p) for p in utterances]
    shortest = min(len(w) for w in wavs)
    for size in (2, 3):
        crops = torch.stack([w[:shortest] for w in wavs[:size]])
        np.testing.assert_allclose(
            embedder.embed(crops).numpy(), reference(model, crops), atol=TOLERANCE
        )
    longest = max(len(w) for w in wavs)
    padded = torch.zeros(len(wavs), longest)
    for row, wav in enumerate(wavs):
        padded[row, : len(wav)] = wav
    lens = torch.tensor([len(w) / longest for w in wavs])
    with torch.no_grad():
        expected = model.encode_batch(padded, lens).numpy()
    np.testing.assert_allclose(
        embedder.encode_batch(padded, lens).numpy(), expected, atol=TOLERANCE
    )


def test_onnx_graph_has_dynamic_axes_and_features_inside(folder):
    path = folder / "embedding_model.onnx"
    proto = onnx.load(str(path))
    (wavs,) = proto.graph.input
    assert wavs.name == "wavs"
    assert [d.dim_param for d in wavs.type.tensor_type.shape.dim] == ["batch", "time"]
    assert any(node.op_type == "STFT" for node in proto.graph.node) or any(
        node.op_type == "STFT" for f in proto.functions for node in f.node
    )
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    out = session.run(None, {"wavs": np.zeros((3, 12345), np.float32)})[0]
    assert out.shape == (3, DIM)
    meta = read_portable_metadata(path)
    assert meta["features"] == "inside" and meta["model_folder"] == "."
    readme = (folder / "README.md").read_text()
    assert "`embedding_model.onnx`: ONNX (opset 18) embedding network" in readme
    assert "`embedding_model.pt`: TorchScript embedding network" in readme
    assert "no padding" in readme


def test_features_outside(folder, model, utterances, tmp_path):
    path = export_portable(folder, "torchscript", tmp_path / "net.pt", features="outside")
    meta = read_portable_metadata(path)
    assert meta["features"] == "outside" and meta["input"] == "fbanks"
    embedder = PortableEmbedder(path)
    wav = model.load_audio(utterances[0])
    got = embedder.embed(wav.unsqueeze(0)).numpy()
    np.testing.assert_allclose(got, reference(model, wav), atol=TOLERANCE)


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_cli_verify_and_embed_with_the_exported_file(folder, utterances, fmt, capsys, tmp_path):
    pair = [str(utterances[0]), str(utterances[2])]
    assert main(["verify", str(folder), *pair]) == 0
    with_folder = capsys.readouterr().out
    assert main(["verify", str(folder / FILES[fmt]), *pair]) == 0
    assert capsys.readouterr().out == with_folder

    files = [str(p) for p in utterances]
    assert main(["embed", str(folder), *files, "-o", str(tmp_path / "a.npy")]) == 0
    assert main(["embed", str(folder / FILES[fmt]), *files, "-o", str(tmp_path / "b.npy")]) == 0
    capsys.readouterr()
    np.testing.assert_allclose(
        np.load(tmp_path / "b.npy"), np.load(tmp_path / "a.npy"), atol=TOLERANCE
    )


def test_cli_export_beside_the_folder(folder, utterances, capsys, tmp_path):
    out = tmp_path / "deploy" / "speaker.pt"
    assert main(["export", "--format", "torchscript", str(folder), "-o", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote {out}\n"
    meta = read_portable_metadata(out)
    assert (out.parent / meta["model_folder"]).resolve() == folder.resolve()
    pair = [str(utterances[1]), str(utterances[3])]
    assert main(["verify", str(out), *pair]) == 0
    assert main(["verify", str(folder), *pair]) == 0
    first, second = capsys.readouterr().out.split("threshold chosen as: a test threshold\n")[:2]
    assert first == second


def test_refusals_name_the_file(folder, utterances, capsys, tmp_path):
    copy = shutil.copytree(folder, tmp_path / "copy")
    pair = [str(utterances[0]), str(utterances[1])]
    # A file exported from other checkpoints than the folder now holds.
    state = torch.load(copy / "embedding_model.ckpt")
    state = {k: v + 0.01 if v.is_floating_point() else v for k, v in state.items()}
    torch.save(state, copy / "embedding_model.ckpt")
    assert main(["verify", str(copy / "embedding_model.pt"), *pair]) == 1
    err = capsys.readouterr().err
    assert f"{copy / 'embedding_model.pt'} was exported from other checkpoints" in err
    assert "embedding_model.ckpt" in err and "export it again" in err
    # A damaged file.
    damaged = copy / "embedding_model.onnx"
    damaged.write_bytes(damaged.read_bytes()[:500])
    assert main(["verify", str(damaged), *pair]) == 1
    assert f"exported model file {damaged} is damaged" in capsys.readouterr().err
    # A file away from its folder.
    lost = tmp_path / "elsewhere" / "net.pt"
    lost.parent.mkdir()
    shutil.copy(folder / "embedding_model.pt", lost)
    assert main(["embed", str(lost), pair[0], "-o", str(tmp_path / "x.npy")]) == 1
    assert f"the model folder of {lost} is missing" in capsys.readouterr().err
    json.dumps(read_portable_metadata(lost))  # still readable on its own
