"""Run a portable network file (ONNX or TorchScript) written by ``export_portable``.

:class:`PortableEmbedder` embeds waveforms with an ``.onnx`` file (onnxruntime) or a
``.pt`` file (TorchScript) as SpeechBrain's interface does: each recording alone, at its
full length, never with padding. The file describes itself (:func:`read_portable_metadata`)
and names the model folder it was exported from (:func:`portable_model_folder`), whose
``scoring.ckpt`` holds the training mean, cohort and threshold that scores need; a file
exported from other checkpoints than the folder now holds is refused.

Authors
 * camsat contributors 2026
"""

import hashlib
import json
from pathlib import Path

import torch

from camsat_lobes.encoders.base import embed_unpadded
from camsat_lobes.inference.interface import HPARAMS_FILE, CAMSATSpeakerRecognition

__all__ = [
    "METADATA_KEY",
    "PORTABLE_FORMATS",
    "PORTABLE_SUFFIXES",
    "PortableEmbedder",
    "describe_portable",
    "portable_model_folder",
    "read_portable_metadata",
]

PORTABLE_FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
"""Format name -> file suffix."""

PORTABLE_SUFFIXES = frozenset(PORTABLE_FORMATS.values())
"""Suffixes of portable network files."""


METADATA_KEY = "camsat_lobes"
"""ONNX metadata key (``.json`` added: TorchScript extra file) of a file's description."""


def read_portable_metadata(path):
    """Read the description a portable file carries: its format, features and model folder.

    Arguments
    ---------
    path : str or pathlib.Path
        An ``.onnx`` or ``.pt`` file written by :func:`export_portable`.

    Returns
    -------
    dict
        ``format``, ``features`` (``inside`` / ``outside``), ``input``, ``sample_rate``,
        ``embedding_dim``, ``model_folder`` (relative to the file's folder),
        ``checkpoints`` (SHA-256 of the folder's checkpoints it was exported from).

    Example
    -------
    >>> read_portable_metadata(getfixture("tmp_path") / "none.onnx")
    Traceback (most recent call last):
    ...
    FileNotFoundError: exported model file .../none.onnx does not exist
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"exported model file {path} does not exist")
    try:
        if path.suffix == ".onnx":
            import onnx

            proto = onnx.load(str(path), load_external_data=False)
            text = {p.key: p.value for p in proto.metadata_props}.get(METADATA_KEY)
        else:
            files = {f"{METADATA_KEY}.json": ""}
            torch.jit.load(str(path), map_location="cpu", _extra_files=files)
            text = files[f"{METADATA_KEY}.json"] or None
    except Exception as err:  # a decoder's error: the file is damaged or of another kind
        raise ValueError(
            f"exported model file {path} is damaged or not a {path.suffix} model "
            f"({type(err).__name__}: {str(err)[:200]})"
        ) from err
    if text is None:
        raise ValueError(
            f"{path} has no {METADATA_KEY} description: export it with "
            "python -m camsat_lobes.inference export"
        )
    try:
        return json.loads(text)
    except ValueError as err:
        raise ValueError(f"the {METADATA_KEY} description of {path} is damaged ({err})") from err


def portable_model_folder(path):
    """Return the model folder a portable file was exported from (in or beside it).

    Arguments
    ---------
    path : str or pathlib.Path
        An ``.onnx`` or ``.pt`` file written by :func:`export_portable`.

    Returns
    -------
    pathlib.Path
        The folder: where the file's metadata says, or the file's own folder.

    Example
    -------
    ``portable_dir`` is a model folder holding ``embedding_model.pt``:

    >>> portable_model_folder(portable_dir / "embedding_model.pt") == portable_dir
    True
    """
    path = Path(path).absolute()
    recorded = path.parent / read_portable_metadata(path)["model_folder"]
    for candidate in (recorded, path.parent):
        if (candidate / HPARAMS_FILE).is_file():
            return candidate.resolve()
    raise FileNotFoundError(
        f"the model folder of {path} is missing (recorded as {recorded}): keep the file "
        "in or beside the folder it was exported from, which holds its scoring statistics"
    )


def describe_portable(path):
    """Describe in one sentence what a portable file takes and gives (for a README).

    Arguments
    ---------
    path : str or pathlib.Path
        An ``.onnx`` or ``.pt`` file written by :func:`export_portable`.

    Returns
    -------
    str
        Its format, input, output and how to batch recordings of several lengths.

    Example
    -------
    >>> print(describe_portable(portable_dir / "embedding_model.pt"))
    TorchScript embedding network: input `wavs` (batch, time) float32 at 16000 Hz, ...
    """
    try:
        meta = read_portable_metadata(path)
    except (OSError, ValueError) as err:
        return f"unreadable portable network ({err})"
    kind = "ONNX (opset {opset})".format(**meta) if meta["format"] == "onnx" else "TorchScript"
    if meta["features"] == "inside":
        given = f"`wavs` (batch, time) float32 at {meta['sample_rate']} Hz, features inside"
    else:
        why = meta.get("features_outside_because")
        given = (
            "`fbanks` (batch, frames, n_mels), the output of this folder's compute_features "
            f"(filter banks computed outside{': they did not export, ' + why if why else ''})"
        )
    return (
        f"{kind} embedding network: input {given}; output `embeddings` (batch, "
        f"{meta['embedding_dim']}); no padding: each row a whole recording, the rows of a "
        "call equally long (other lengths: separate calls); scores need this folder's "
        "training mean, cohort and threshold"
    )


class PortableEmbedder:
    """Embed waveforms with a portable file, as SpeechBrain's interface does.

    Arguments
    ---------
    path : str or pathlib.Path
        An ``.onnx`` (needs ``onnxruntime``) or ``.pt`` file from :func:`export_portable`.
    compute_features : torch.nn.Module, optional
        The folder's feature extractor, for a file with features outside; loaded from
        the model folder when needed and not given.

    Example
    -------
    >>> embedder = PortableEmbedder(portable_dir / "embedding_model.pt")
    >>> wavs = 0.1 * torch.randn(2, 16000)
    >>> embedder.encode_batch(wavs, torch.tensor([1.0, 0.6])).shape
    torch.Size([2, 1, 8])
    """

    def __init__(self, path, compute_features=None):
        self.path = Path(path)
        self.metadata = read_portable_metadata(self.path)
        self.folder = portable_model_folder(self.path)
        now = _checksums(self.folder)
        changed = sorted(
            name
            for name in set(now) | set(self.metadata["checkpoints"])
            if self.metadata["checkpoints"].get(name) != now.get(name)
        )
        if changed:
            raise ValueError(
                f"{self.path} was exported from other checkpoints than those now in "
                f"{self.folder} ({', '.join(changed)}): export it again"
            )
        self.compute_features = None
        if self.metadata["features"] == "outside":
            if compute_features is None:
                model = CAMSATSpeakerRecognition.from_hparams(
                    self.folder, run_opts={"device": "cpu"}
                )
                compute_features = model.mods.compute_features
            self.compute_features = compute_features
        try:
            if self.metadata["format"] == "onnx":
                import onnxruntime

                self._run = _onnx_runner(onnxruntime, self.path, self.metadata["input"])
            else:
                self._run = torch.jit.load(str(self.path), map_location="cpu").eval()
        except Exception as err:  # the decoder's error: name the file
            raise ValueError(f"exported model file {self.path} does not load ({err})") from err

    def embed(self, wavs):
        """Embed whole recordings of one length.

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, time) waveforms at the model's sample rate, no padding.

        Returns
        -------
        torch.Tensor
            (batch, dim) float32 embeddings on the CPU.

        Example
        -------
        >>> embedder = PortableEmbedder(portable_dir / "embedding_model.pt")
        >>> embedder.embed(torch.zeros(3, 8000)).shape
        torch.Size([3, 8])
        """
        inputs = wavs.detach().float().cpu()
        with torch.no_grad():
            if self.compute_features is not None:
                inputs = self.compute_features.to("cpu")(inputs)
            return self._run(inputs).float()

    def encode_batch(self, wavs, wav_lens=None):
        """Embed a zero-padded batch, each row at its true length (padding never enters).

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, time) waveforms, or one (time,) waveform.
        wav_lens : torch.Tensor, optional
            (batch,) lengths relative to ``time``; ``None``: no padding.

        Returns
        -------
        torch.Tensor
            (batch, 1, dim) embeddings, as the SpeechBrain interface's ``encode_batch``.

        Example
        -------
        >>> embedder = PortableEmbedder(portable_dir / "embedding_model.pt")
        >>> embedder.encode_batch(torch.zeros(8000)).shape
        torch.Size([1, 1, 8])
        """
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        embed = lambda group, _lens: self.embed(group)  # noqa: E731
        return embed_unpadded(embed, wavs.cpu(), wav_lens).unsqueeze(1)


def _onnx_runner(onnxruntime, path, input_name):
    """Return a function that runs an ONNX file on CPU tensors."""
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return lambda inputs: torch.from_numpy(session.run(None, {input_name: inputs.numpy()})[0])


def _checksums(folder):
    """Return the SHA-256 of the checkpoints an embedding depends on."""
    names = ("compute_features.ckpt", "mean_var_norm.ckpt", "embedding_model.ckpt")
    return {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in names
        if (folder / name).is_file()
    }
