"""The embedding network of a model folder as one ONNX or TorchScript file.

:func:`export_portable` writes ``embedding_model.onnx`` (ONNX opset 18, run with
onnxruntime) or ``embedding_model.pt`` (TorchScript, ``torch.jit.load``), by default
into the model folder; :class:`~camsat_lobes.inference.runner.PortableEmbedder` runs such a file.

**Features.** The file computes the whole embedding: input ``wavs`` (batch, time)
float32 waveforms at the folder's sample rate (full scale 1.0), output ``embeddings``
(batch, dim). SpeechBrain's filter banks (STFT, mel filters, log), the sentence mean
normalisation and the network are inside: ONNX has an STFT operator since opset 17.
If that graph does not export or does not reproduce SpeechBrain's embeddings, the file
holds the normalisation and the network only (``--features outside``): its input is
then ``fbanks`` (batch, frames, n_mels), the output of the folder's ``compute_features``
module, which the caller computes (:class:`PortableEmbedder` does it with the folder).
Each file records which it holds (``features`` in its metadata and the README).

**Padding.** Both axes of the input are dynamic, but the file has no lengths input:
every row must be a whole recording, and the rows of one call equally long. Zero
padding would change an embedding (the filter-bank range, the normalisation mean, the
convolutions and the pooling would all see it), so recordings of other lengths go in
separate calls, each a batch of one or of equally long recordings;
:meth:`PortableEmbedder.encode_batch` groups a padded batch that way, as the SpeechBrain
interface does.

**Scoring** needs the folder: the training mean, the AS-norm cohort and the threshold
are in its ``scoring.ckpt``; the command line's ``verify`` and ``embed`` accept the
file in or beside its folder and take them from there.

Authors
 * camsat contributors 2026
"""

import contextlib
import json
import logging
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from speechbrain.dataio import dataio

from camsat_lobes.inference.export import write_readme
from camsat_lobes.inference.interface import CAMSATSpeakerRecognition, model_folder
from camsat_lobes.inference.runner import METADATA_KEY, PORTABLE_FORMATS, _checksums, _onnx_runner

__all__ = ["ONNX_OPSET", "EmbeddingGraph", "export_portable"]

ONNX_OPSET = 18
"""ONNX opset of the exported graphs (STFT needs 17 or later)."""

TOLERANCE = 1e-4
"""Largest embedding difference from SpeechBrain's accepted, relative to max(1, |embedding|)."""


class EmbeddingGraph(torch.nn.Module):
    """What a portable file computes: (filter banks,) normalisation, network.

    Every row of the input is a whole recording (relative lengths of one), as
    SpeechBrain's interface embeds each recording alone.

    Arguments
    ---------
    compute_features : torch.nn.Module or None
        SpeechBrain's feature extractor; ``None`` when the caller gives filter banks.
    mean_var_norm : torch.nn.Module
        The feature normaliser.
    embedding_model : torch.nn.Module
        The embedding network.

    Example
    -------
    >>> model = CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"})
    >>> graph = EmbeddingGraph(*(model.mods[n] for n in ("compute_features",
    ...     "mean_var_norm", "embedding_model")))
    >>> wavs = 0.1 * torch.randn(2, 8000)
    >>> torch.allclose(graph(wavs), model.encode_batch(wavs)[:, 0], atol=1e-6)
    True
    """

    def __init__(self, compute_features, mean_var_norm, embedding_model):
        super().__init__()
        self.compute_features = compute_features
        self.mean_var_norm = mean_var_norm
        self.embedding_model = embedding_model

    def forward(self, inputs):
        """Embed waveforms (batch, time), or filter banks (batch, frames, n_mels).

        Arguments
        ---------
        inputs : torch.Tensor
            Whole recordings of one length, or their filter banks.

        Returns
        -------
        torch.Tensor
            (batch, dim) embeddings.

        Example
        -------
        >>> model = CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"})
        >>> graph = EmbeddingGraph(None, model.mods.mean_var_norm, model.mods.embedding_model)
        >>> graph(torch.randn(3, 50, 80)).shape
        torch.Size([3, 8])
        """
        lengths = torch.ones(inputs.shape[0], device=inputs.device)
        feats = inputs if self.compute_features is None else self.compute_features(inputs)
        feats = self.mean_var_norm(feats, lengths)
        return self.embedding_model(feats, lengths).reshape(inputs.shape[0], -1)


def export_portable(source, fmt="onnx", output=None, features="auto"):
    """Export the embedding network of a model folder as an ONNX or TorchScript file.

    The exported file is checked: on two probe batches (two recordings of 1 s, one of
    1.37 s) it must give SpeechBrain's embeddings to 1e-4 (relative to the largest
    value, when above 1). The folder's README is rewritten to describe it.

    Arguments
    ---------
    source : str or pathlib.Path
        A model folder written by :func:`~camsat_lobes.inference.export_model`.
    fmt : str
        ``"onnx"`` or ``"torchscript"``.
    output : str or pathlib.Path, optional
        The file to write; default ``embedding_model.onnx`` / ``.pt`` in the folder.
    features : str
        ``"inside"`` (waveforms in), ``"outside"`` (filter banks in) or ``"auto"``:
        inside when that exports and checks, else outside.

    Returns
    -------
    pathlib.Path
        The written file.

    Example
    -------
    >>> import shutil
    >>> from camsat_lobes.inference import PortableEmbedder, read_portable_metadata
    >>> folder = shutil.copytree(model_dir, getfixture("tmp_path") / "model")
    >>> path = export_portable(folder, "torchscript")
    >>> path.name, read_portable_metadata(path)["features"]
    ('embedding_model.pt', 'inside')
    >>> embedder = PortableEmbedder(path)
    >>> embedder.embed(0.1 * torch.randn(1, 16000)).shape
    torch.Size([1, 8])
    """
    if fmt not in PORTABLE_FORMATS:
        raise ValueError(f"format {fmt!r} is not one of {sorted(PORTABLE_FORMATS)}")
    if features not in ("auto", "inside", "outside"):
        raise ValueError(f"features={features!r} is not 'auto', 'inside' or 'outside'")
    folder = model_folder(source)
    output = Path(output or folder / f"embedding_model{PORTABLE_FORMATS[fmt]}").absolute()
    if output.suffix != PORTABLE_FORMATS[fmt]:
        raise ValueError(f"a {fmt} file must end with {PORTABLE_FORMATS[fmt]}: {output}")
    try:
        _export_checked(folder, fmt, output, features)
    except BaseException:
        output.unlink(missing_ok=True)  # never leave an unchecked file
        raise
    write_readme(folder)
    return output


def _export_checked(folder, fmt, output, features):
    """Write and check the file (features inside first unless ``features`` says outside)."""
    model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    mods = model.mods
    probes = _probes(model.sample_rate)
    metadata = {
        "format": fmt,
        "features": "inside",
        "input": "wavs",
        "sample_rate": model.sample_rate,
        "embedding_dim": int(mods.scoring.embedding_dim),
        "model_folder": os.path.relpath(folder, output.parent),
        "checkpoints": _checksums(folder),
        "torch": torch.__version__,
        "opset": ONNX_OPSET if fmt == "onnx" else None,
    }
    if features != "outside":
        graph = EmbeddingGraph(mods.compute_features, mods.mean_var_norm, mods.embedding_model)
        try:
            _write(graph, fmt, output, probes[0], metadata)
            _check(output, fmt, graph, probes, None)
        except Exception as err:  # any exporter failure: fall back to features outside
            if features == "inside":
                raise ValueError(
                    f"the feature extraction of {folder} does not export to {fmt} "
                    f"({type(err).__name__}: {err}); try --features outside"
                ) from err
            reason = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
            metadata["features_outside_because"] = reason
            features = "outside"
    if features == "outside":
        metadata.update(features="outside", input="fbanks")
        graph = EmbeddingGraph(None, mods.mean_var_norm, mods.embedding_model)
        with torch.no_grad():
            example = mods.compute_features(probes[0])
        _write(graph, fmt, output, example, metadata)
        _check(output, fmt, graph, probes, mods.compute_features)


def _probes(sample_rate):
    """Two probe batches: two 1 s recordings, one 1.37 s recording."""
    rng = np.random.default_rng(0)
    sizes = ((2, sample_rate), (1, int(1.37 * sample_rate)))
    return [torch.from_numpy(rng.normal(scale=0.1, size=s).astype(np.float32)) for s in sizes]


@contextlib.contextmanager
def _traceable_masks(graph):
    """Let SpeechBrain's padding masks follow a symbolic batch size while exporting.

    ``length_to_mask`` sizes its mask with ``len(lengths)``, a Python int that the
    exporters freeze to the example's batch size; the replacement broadcasts instead
    (same values) in the modules of ``graph`` that call it.
    """
    original = dataio.length_to_mask

    def length_to_mask(length, max_len=None, dtype=None, device=None):
        """SpeechBrain's ``length_to_mask`` sized by broadcasting, not by ``len()``."""
        if max_len is None:
            return original(length, max_len, dtype, device)
        positions = torch.arange(max_len, device=length.device, dtype=length.dtype)
        mask = positions.unsqueeze(0) < length.unsqueeze(1)
        return mask.to(dtype=dtype or length.dtype, device=device or length.device)

    namespaces = {type(m).__module__ for m in graph.modules()}
    patched = [
        sys.modules[name]
        for name in namespaces
        if vars(sys.modules[name]).get("length_to_mask") is original
    ]
    for module in patched:
        module.length_to_mask = length_to_mask
    try:
        yield
    finally:
        for module in patched:
            module.length_to_mask = original


def _write(graph, fmt, output, example, metadata=None):
    """Export ``graph`` (traced on ``example``) to ``output``, with its metadata."""
    graph.eval()
    text = json.dumps(metadata or {})
    output.parent.mkdir(parents=True, exist_ok=True)
    with _traceable_masks(graph), warnings.catch_warnings(), _quiet_exporter():
        warnings.simplefilter("ignore")
        if fmt == "torchscript":
            with torch.no_grad():
                traced = torch.jit.trace(graph, (example,), check_trace=False)
            torch.jit.save(traced, str(output), _extra_files={f"{METADATA_KEY}.json": text})
            return
        axes = {0: torch.export.Dim("batch"), 1: torch.export.Dim.AUTO}
        program = torch.onnx.export(
            graph,
            (example,),
            input_names=["wavs" if graph.compute_features is not None else "fbanks"],
            output_names=["embeddings"],
            dynamic_shapes=(axes,),
            opset_version=ONNX_OPSET,
            verbose=False,
        )
    shape = program.model.graph.inputs[0].shape
    program.rename_axes({shape[1]: "time" if graph.compute_features is not None else "frames"})
    program.model.metadata_props[METADATA_KEY] = text
    program.save(str(output), external_data=False)


@contextlib.contextmanager
def _quiet_exporter():
    """Silence the ONNX exporter's notes on operators of absent packages (torchvision)."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _check(output, fmt, graph, probes, compute_features):
    """Raise ``ValueError`` unless the file reproduces ``graph`` on the probe batches."""
    if fmt == "onnx":
        import onnxruntime

        shape = [d if isinstance(d, str) else None for d in _onnx_input_shape(output)]
        if None in shape:
            raise ValueError(f"the ONNX graph fixed an input axis: {shape}")
        run = _onnx_runner(onnxruntime, output, "wavs" if compute_features is None else "fbanks")
    else:
        run = torch.jit.load(str(output), map_location="cpu")
    with torch.no_grad():
        for wavs in probes:
            inputs = wavs if compute_features is None else compute_features(wavs)
            expected, got = graph(inputs), run(inputs)
            error = float((expected - got).abs().max()) / max(1.0, float(expected.abs().max()))
            if not error <= TOLERANCE:
                raise ValueError(
                    f"the {fmt} file gives other embeddings than SpeechBrain on a "
                    f"{tuple(inputs.shape)} input (relative difference {error:.2g})"
                )


def _onnx_input_shape(path):
    """Return the dimensions (int or symbol name) of an ONNX file's first input."""
    import onnx

    dims = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim
    return [d.dim_param if d.HasField("dim_param") else d.dim_value for d in dims]
