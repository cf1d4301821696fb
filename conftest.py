"""Names the examples of the package (``camsat_lobes.inference``) use under ``--doctest-modules``.

``model_dir``: a model folder written by ``export_model`` from a tiny randomly
initialised ECAPA (8-dimensional embeddings, plain centred cosine, threshold 0.2),
built once per test session. Examples read it; those that change a folder copy it.
``portable_dir``: a copy of it holding ``embedding_model.pt`` (``export_portable``).
"""

import shutil

import numpy as np
import pytest
import torch

NODES = {
    "compute_features": "!new:speechbrain.lobes.features.Fbank\n  n_mels: 80\n",
    "mean_var_norm": "!new:speechbrain.processing.features.InputNormalization\n"
    "  norm_type: sentence\n  std_norm: false\n",
    "embedding_model": "!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
    "  input_size: 80\n  channels: [16, 16, 16, 16, 48]\n  lin_neurons: 8\n",
}


@pytest.fixture(scope="session")
def _tiny_model_dir(tmp_path_factory):
    """Export the tiny model the examples load."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    from speechbrain.processing.features import InputNormalization

    from camsat_lobes.inference import export_model
    from camsat_lobes.scoring import CosineBackend

    torch.manual_seed(0)
    modules = {
        "compute_features": Fbank(n_mels=80),
        "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
        "embedding_model": ECAPA_TDNN(80, channels=[16, 16, 16, 16, 48], lin_neurons=8),
    }
    train = np.random.default_rng(0).normal(size=(10, 8)).astype(np.float32)
    return export_model(
        tmp_path_factory.mktemp("doctest_model") / "inference",
        NODES,
        modules,
        CosineBackend.from_training(train),
        threshold=0.2,
        check=False,
        threshold_source="EER point of 40 trials among training utterances (example)",
    )


@pytest.fixture(scope="session")
def _tiny_portable_dir(_tiny_model_dir, tmp_path_factory):
    """Copy the tiny model folder and export its TorchScript network into it."""
    from camsat_lobes.inference import export_portable

    folder = shutil.copytree(_tiny_model_dir, tmp_path_factory.mktemp("doctest_portable") / "m")
    export_portable(folder, "torchscript")
    return folder


@pytest.fixture(autouse=True)
def _inference_doctest_names(request, doctest_namespace):
    """Give each doctest of this package the folders its examples name (built once)."""
    test = getattr(request.node, "dtest", None)
    if test is None:
        return
    source = "".join(example.source for example in test.examples)
    for name in ("model_dir", "portable_dir"):
        if name in source:
            doctest_namespace[name] = request.getfixturevalue(f"_tiny_{name}")
