"""A trained CAMSAT system as a SpeechBrain inference model, and its command line.

:func:`export_model` writes a self-contained model folder; the CAMSAT recipe's verify
stage writes one per trained system (``<output>/.../round<N>/systems/<system>/inference``).
The folder holds:

* ``hyperparams.yaml``: the feature extractor (``compute_features``), the feature
  normaliser (``mean_var_norm``) and the network (``embedding_model``) exactly as the
  recipe built them, the scoring statistics (``scoring``, a :class:`ScoringStatistics`),
  ``modules``, a SpeechBrain ``pretrainer`` naming the checkpoint files, and
  ``sample_rate``;
* ``embedding_model.ckpt``, ``mean_var_norm.ckpt`` and ``scoring.ckpt``: the trained
  parameters, the normaliser statistics and the scoring statistics (the training mean,
  the verification threshold and, with AS-norm, the cohort of training embeddings);
* ``README.md``: how to use it.

Load it with :class:`CAMSATSpeakerRecognition`, which scores as the recipe does (cosine
after subtracting the training mean, then AS-norm against the training cohort when the
system used it; nothing from the test utterances enters a score) and decides with the
threshold at the equal-error-rate operating point of the recipe's trial list::

    from camsat_lobes.inference import CAMSATSpeakerRecognition
    model = CAMSATSpeakerRecognition.from_hparams(source="path/to/inference")
    score, same_speaker = model.verify_files("a.wav", "b.wav")
    embeddings = model.encode_batch(wavs, wav_lens)  # (batch, 1, dim)

or from the command line::

    python -m camsat_lobes.inference verify path/to/inference a.wav b.wav
    python -m camsat_lobes.inference embed path/to/inference *.wav -o emb.npy

SpeechBrain's own ``SpeakerRecognition.from_hparams`` loads the same folder (it embeds
identically but scores with a plain cosine and its own default threshold).

Authors
 * camsat contributors 2026
"""

import argparse
import io
import json
import re
import sys
from pathlib import Path

import numpy as np
import torch
from ruamel.yaml import YAML
from speechbrain.dataio import audio_io
from speechbrain.inference.speaker import SpeakerRecognition
from speechbrain.utils.checkpoints import DEFAULT_SAVE_HOOKS, get_default_hook, torch_save
from speechbrain.utils.fetching import FetchConfig

from camsat_lobes.encoders.base import embed_unpadded
from camsat_lobes.scoring import CosineBackend

__all__ = [
    "CAMSATSpeakerRecognition",
    "ScoringStatistics",
    "export_model",
    "main",
    "model_folder",
]

HPARAMS_FILE = "hyperparams.yaml"
"""Name of the hyperparameters file of a model folder."""

EXPORTED_MODULES = ("compute_features", "mean_var_norm", "embedding_model")
"""The recipe modules an exported model is built from, in pipeline order."""

_HOW_TO_EXPORT = (
    "the CAMSAT recipe's verify stage writes one model folder per trained system, to "
    "<output>/.../round<N>/systems/<system>/inference (python train.py hparams/camsat.yaml "
    "--first_stage=verify --last_stage=verify); camsat_lobes.inference.export_model "
    "writes one from trained modules"
)

_README = """# CAMSAT speaker-verification model

Exported by `camsat_lobes.inference.export_model`: {summary}.

```python
from camsat_lobes.inference import CAMSATSpeakerRecognition
model = CAMSATSpeakerRecognition.from_hparams(source="{folder}")
score, same_speaker = model.verify_files("a.wav", "b.wav")  # recipe score, saved threshold
embeddings = model.encode_batch(wavs, wav_lens)  # (batch, 1, {dim}) at {sample_rate} Hz
```

Command line:

```
python -m camsat_lobes.inference verify {folder} a.wav b.wav
python -m camsat_lobes.inference embed {folder} FILES... -o emb.npy
```

`speechbrain.inference.speaker.SpeakerRecognition.from_hparams(source="{folder}")` loads
the folder too, but ignores the scoring statistics (plain cosine, SpeechBrain's threshold).
If the folder is moved, `CAMSATSpeakerRecognition` still finds its files; SpeechBrain's
class then needs `overrides={{"pretrained_path": "<new folder>"}}`.
"""


class ScoringStatistics(torch.nn.Module):
    """The training-side state of the recipe's scoring, as a module SpeechBrain can load.

    Buffers: ``mean`` (D,), the mean training embedding subtracted from both sides of a
    trial; ``threshold`` (a scalar), the decision threshold (accept when the score is
    above it); ``cohort`` (C, D), the AS-norm cohort of training embeddings, with
    ``C = 0`` when the system scores without AS-norm. The constructor only sets the
    shapes (zeros); :meth:`from_backend` fills them from the recipe's backend and the
    Pretrainer from ``scoring.ckpt``.

    All the maths is :class:`camsat_lobes.scoring.CosineBackend`'s: :meth:`backend`
    rebuilds the recipe's backend from the buffers (kept until a buffer changes) and
    :meth:`score` calls it. The cohort is stored in float32, the precision in which the
    backend computes cohort scores (a float64 cohort is rounded once), so ``scoring.ckpt``
    takes ``C x D x 4`` bytes (0.8 GB for a 1.09 M x 192 VoxCeleb2 cohort).

    Arguments
    ---------
    embedding_dim : int
        Dimension D of the embeddings.
    cohort_size : int
        Number C of cohort embeddings; 0 for plain centred cosine scores.
    top_k : int
        Number of highest cohort scores per side used by AS-norm.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> train = rng.normal(size=(50, 8)).astype(np.float32)
    >>> backend = CosineBackend.from_training(train, score_norm="as-norm", top_k=10)
    >>> stats = ScoringStatistics.from_backend(backend, threshold=0.3)
    >>> stats
    ScoringStatistics(embedding_dim=8, cohort_size=50, top_k=10, threshold=0.3)
    >>> enrol, test = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    >>> scores = stats.score(torch.tensor(enrol), torch.tensor(test))
    >>> np.allclose(scores.numpy(), backend.score(enrol, test))
    True
    >>> restored = ScoringStatistics(8, cohort_size=50, top_k=10)
    >>> restored.load_state_dict(stats.state_dict())
    <All keys matched successfully>
    >>> torch.equal(restored.score(torch.tensor(enrol), torch.tensor(test)), scores)
    True
    """

    def __init__(self, embedding_dim, cohort_size=0, top_k=100):
        super().__init__()
        embedding_dim, cohort_size = int(embedding_dim), int(cohort_size)
        if embedding_dim < 1 or cohort_size < 0:
            raise ValueError(
                f"embedding_dim={embedding_dim} must be positive and "
                f"cohort_size={cohort_size} non-negative"
            )
        self.top_k = int(top_k)
        self.register_buffer("mean", torch.zeros(embedding_dim, dtype=torch.float64))
        self.register_buffer("threshold", torch.zeros((), dtype=torch.float64))
        self.register_buffer("cohort", torch.zeros(cohort_size, embedding_dim))
        self._cached_backend = None
        self._cached_key = None

    def extra_repr(self):
        """Describe the statistics (dimension, cohort size, top-k and threshold).

        Returns
        -------
        str
            The text shown between the parentheses of the module's repr.

        Example
        -------
        >>> ScoringStatistics(4).extra_repr()
        'embedding_dim=4, cohort_size=0, top_k=100, threshold=0.0'
        """
        return (
            f"embedding_dim={self.embedding_dim}, cohort_size={len(self.cohort)}, "
            f"top_k={self.top_k}, threshold={float(self.threshold)}"
        )

    @property
    def embedding_dim(self):
        """Dimension D of the embeddings these statistics score.

        Returns
        -------
        int
            Length of ``mean``.

        Example
        -------
        >>> ScoringStatistics(6).embedding_dim
        6
        """
        return int(self.mean.shape[0])

    @classmethod
    def from_backend(cls, backend, threshold):
        """Fill the statistics from the recipe's scoring backend and its threshold.

        Arguments
        ---------
        backend : camsat_lobes.scoring.CosineBackend
            The backend the recipe scored the trial list with (training mean and, with
            AS-norm, the training cohort and ``top_k``).
        threshold : float
            Decision threshold: a trial is accepted when its score is above it (the
            recipe uses the equal-error-rate operating point of its trial list).

        Returns
        -------
        ScoringStatistics
            Statistics whose :meth:`backend` scores exactly as ``backend`` (up to the
            float32 rounding of a float64 cohort).

        Example
        -------
        >>> backend = CosineBackend.from_training([[1.0, 0.0], [0.0, 1.0]])
        >>> stats = ScoringStatistics.from_backend(backend, threshold=0.5)
        >>> stats.mean.tolist(), stats.threshold.item(), stats.cohort.shape
        ([0.5, 0.5], 0.5, torch.Size([0, 2]))
        """
        threshold = float(threshold)
        if not np.isfinite(threshold):
            raise ValueError(f"threshold={threshold} is not finite")
        cohort = backend.cohort
        stats = cls(
            backend.embedding_dim,
            cohort_size=0 if cohort is None else len(cohort),
            top_k=backend.top_k,
        )
        with torch.no_grad():
            stats.mean.copy_(torch.from_numpy(np.asarray(backend.mean, dtype=np.float64)))
            stats.threshold.fill_(threshold)
            if cohort is not None:
                stats.cohort.copy_(torch.from_numpy(np.asarray(cohort, dtype=np.float32)))
        return stats

    def _state_key(self):
        """Identify the current buffer contents (storage, in-place version, device)."""
        return tuple(
            (t.data_ptr(), t._version, str(t.device)) for t in (self.mean, self.cohort)
        ) + (self.top_k,)

    def backend(self):
        """Build the recipe's scoring backend from the buffers.

        Returns
        -------
        camsat_lobes.scoring.CosineBackend
            Centred on ``mean``, with AS-norm on ``cohort`` (and ``top_k``) when the
            cohort is not empty. The same object is returned until a buffer changes, so
            the backend's prepared cohort is computed once.

        Example
        -------
        >>> ScoringStatistics(3).backend()
        CosineBackend(dim=3, score_norm=None, none)
        """
        key = self._state_key()
        if self._cached_backend is None or self._cached_key != key:
            mean = self.mean.detach().cpu().numpy()
            cohort = self.cohort.detach().cpu().numpy() if len(self.cohort) else None
            self._cached_backend = CosineBackend(mean, cohort=cohort, top_k=self.top_k)
            self._cached_key = key
        return self._cached_backend

    def score(self, emb1, emb2):
        """Score paired embeddings as the recipe does (the backend's ``score``).

        Arguments
        ---------
        emb1 : torch.Tensor
            Enrolment embeddings, (N, D) or SpeechBrain's (N, 1, D).
        emb2 : torch.Tensor
            Test embeddings paired row by row with ``emb1``, same shape.

        Returns
        -------
        torch.Tensor
            (N,) float64 scores, on the device of ``emb1``.

        Example
        -------
        >>> stats = ScoringStatistics.from_backend(CosineBackend([1.0, 1.0]), threshold=0.0)
        >>> stats.score(torch.tensor([[2.0, 1.0]]), torch.tensor([[0.0, 1.0]])).tolist()
        [-1.0]
        """
        if emb1.shape != emb2.shape:
            raise ValueError(f"emb1 {tuple(emb1.shape)} and emb2 {tuple(emb2.shape)} differ")
        rows1 = emb1.detach().reshape(emb1.shape[0], -1).cpu().numpy()
        rows2 = emb2.detach().reshape(emb2.shape[0], -1).cpu().numpy()
        scores = self.backend().score(rows1, rows2)
        return torch.from_numpy(np.asarray(scores, dtype=np.float64)).to(emb1.device)

    def forward(self, emb1, emb2):
        """Score paired embeddings, as :meth:`score` does.

        Arguments
        ---------
        emb1 : torch.Tensor
            Enrolment embeddings, (N, D) or (N, 1, D).
        emb2 : torch.Tensor
            Test embeddings, same shape.

        Returns
        -------
        torch.Tensor
            (N,) float64 scores.

        Example
        -------
        >>> stats = ScoringStatistics(2)
        >>> stats(torch.tensor([[1.0, 0.0]]), torch.tensor([[3.0, 0.0]])).tolist()
        [1.0]
        """
        return self.score(emb1, emb2)


class CAMSATSpeakerRecognition(SpeakerRecognition):
    """SpeechBrain speaker-verification interface that scores as the CAMSAT recipe.

    Modules (from the model folder's ``hyperparams.yaml``): ``compute_features``,
    ``mean_var_norm``, ``embedding_model`` and ``scoring`` (a :class:`ScoringStatistics`).
    Differences from SpeechBrain's ``SpeakerRecognition``:

    * :meth:`encode_batch` embeds each utterance of a padded batch at its true length
      (:func:`camsat_lobes.encoders.base.embed_unpadded`), so an utterance gets the
      same embedding alone and in any batch, as in the recipe;
    * :meth:`verify_batch` scores with the recipe's backend (training mean subtracted,
      AS-norm against the training cohort when the system used it) and decides with
      the saved threshold; ``verify_files`` (inherited) therefore returns the recipe's
      score too;
    * :meth:`from_hparams` loads a local model folder offline, in place by default.

    The scoring statistics stay on the CPU (the backend computes there) whatever the
    device of the network.

    Arguments
    ---------
    *args : tuple
        Forwarded to ``speechbrain.inference.interfaces.Pretrained`` (``modules``,
        ``hparams``, ``run_opts``, ``freeze_params``).
    **kwargs : dict
        Forwarded likewise.

    Example
    -------
    >>> import soundfile as sf
    >>> folder = getfixture("tmp_path") / "model"
    >>> _ = _demo_export(folder)
    >>> model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    >>> rng = np.random.default_rng(0)
    >>> sf.write(folder.parent / "a.wav", 0.1 * rng.normal(size=16000), 16000)
    >>> sf.write(folder.parent / "b.wav", 0.1 * rng.normal(size=12000), 16000)
    >>> score, same = model.verify_files(folder.parent / "a.wav", folder.parent / "b.wav")
    >>> score.shape, bool(same) == bool(score > model.threshold)
    (torch.Size([1]), True)
    """

    MODULES_NEEDED = ["compute_features", "mean_var_norm", "embedding_model", "scoring"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        missing = [name for name in self.MODULES_NEEDED if name not in self.mods]
        if missing:
            raise ValueError(
                f"the model's modules lack {missing}: this interface needs a folder written "
                f"by camsat_lobes.inference.export_model ({_HOW_TO_EXPORT})"
            )
        self.mods.scoring.cpu()

    @classmethod
    def from_hparams(cls, source, hparams_file=HPARAMS_FILE, savedir=None, **kwargs):
        """Load a model folder written by :func:`export_model`, without network access.

        The files are used where they are: with ``savedir=None`` (the default) nothing
        is copied or linked; with a ``savedir``, SpeechBrain symlinks the files into it.
        The checkpoint paths are taken relative to ``source``, so a moved or copied
        folder loads too.

        Arguments
        ---------
        source : str or pathlib.Path
            The model folder (a local directory).
        hparams_file : str
            Name of the hyperparameters file in ``source``.
        savedir : str or pathlib.Path, optional
            Where SpeechBrain should collect (symlink) the files; ``None`` uses them
            in place.
        **kwargs : dict
            Forwarded to ``speechbrain.inference.interfaces.pretrained_from_hparams``
            (``run_opts``, ``overrides``, ``fetch_config``, ``local_strategy``...).

        Returns
        -------
        CAMSATSpeakerRecognition
            The loaded model, in eval mode with frozen parameters.

        Example
        -------
        >>> missing = getfixture("tmp_path") / "nowhere"
        >>> CAMSATSpeakerRecognition.from_hparams(missing)
        Traceback (most recent call last):
        ...
        FileNotFoundError: model folder ... does not exist: the CAMSAT recipe's verify stage ...
        """
        folder = model_folder(source, hparams_file)
        text = (folder / hparams_file).read_text(encoding="utf-8")
        overrides = dict(kwargs.pop("overrides", None) or {})
        if re.search(r"^pretrained_path\s*:", text, flags=re.MULTILINE):
            overrides.setdefault("pretrained_path", str(folder))
        kwargs.setdefault("fetch_config", FetchConfig(allow_network=False))
        try:
            return super().from_hparams(
                source=str(folder),
                hparams_file=hparams_file,
                savedir=savedir,
                overrides=overrides,
                **kwargs,
            )
        except FileNotFoundError as err:
            raise FileNotFoundError(
                f"model folder {folder} is incomplete ({err}); {_HOW_TO_EXPORT}"
            ) from err

    @property
    def threshold(self):
        """The saved decision threshold (accept when the score is above it).

        Returns
        -------
        float
            The threshold of the ``scoring`` module.

        Example
        -------
        >>> folder = _demo_export(getfixture("tmp_path"), threshold=0.25)
        >>> CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"}).threshold
        0.25
        """
        return float(self.mods.scoring.threshold)

    @property
    def sample_rate(self):
        """Sampling rate (Hz) the model expects; ``load_audio`` resamples to it.

        Returns
        -------
        int
            The ``sample_rate`` of the model's ``audio_normalizer``.

        Example
        -------
        >>> folder = _demo_export(getfixture("tmp_path"))
        >>> CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"}).sample_rate
        16000
        """
        return int(self.audio_normalizer.sample_rate)

    def load_audio(self, path, savedir=None):
        """Load an audio file as a mono waveform at the model's sampling rate.

        Other sampling rates are resampled and several channels averaged (SpeechBrain's
        ``audio_normalizer``). Local files are read directly; ``http(s)://`` addresses
        go through SpeechBrain's fetching.

        Arguments
        ---------
        path : str or pathlib.Path
            The audio file.
        savedir : str, optional
            Where a downloaded file is kept (addresses only).

        Returns
        -------
        torch.Tensor
            (time,) waveform on the model's device.

        Example
        -------
        >>> import soundfile as sf
        >>> folder = _demo_export(getfixture("tmp_path"))
        >>> model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
        >>> sf.write(folder / "x.wav", np.zeros(8000), 8000)
        >>> model.load_audio(folder / "x.wav").shape
        torch.Size([16000])
        >>> model.load_audio(folder / "none.wav")
        Traceback (most recent call last):
        ...
        FileNotFoundError: audio file .../none.wav does not exist
        """
        if str(path).startswith(("http://", "https://")):
            return super().load_audio(str(path), savedir=savedir)
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"audio file {path} does not exist")
        try:
            signal, rate = audio_io.load(str(path), channels_first=False)
        except Exception as err:
            raise ValueError(f"cannot read audio file {path}: {err}") from err
        return self.audio_normalizer(signal.to(self.device), rate)

    def encode_batch(self, wavs, wav_lens=None, normalize=False):
        """Embed a batch of waveforms; each utterance is embedded at its true length.

        Arguments
        ---------
        wavs : torch.Tensor
            (batch, time) zero-padded waveforms, or one (time,) waveform, at
            :attr:`sample_rate`.
        wav_lens : torch.Tensor, optional
            (batch,) lengths relative to ``time`` (SpeechBrain convention); ``None``
            means every waveform fills the tensor.
        normalize : bool
            Must be ``False``: these models have no embedding normaliser (the training
            mean is subtracted when scoring, in :meth:`verify_batch`).

        Returns
        -------
        torch.Tensor
            (batch, 1, dim) embeddings, as SpeechBrain's ``encode_batch``; a row does not
            depend on the other rows of the batch.

        Example
        -------
        >>> folder = _demo_export(getfixture("tmp_path"))
        >>> model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
        >>> wavs = 0.1 * torch.randn(2, 16000)
        >>> wavs[1, 12000:] = 0.0
        >>> batch = model.encode_batch(wavs, torch.tensor([1.0, 0.75]))
        >>> batch.shape
        torch.Size([2, 1, 8])
        >>> torch.allclose(batch[1], model.encode_batch(wavs[1, :12000])[0], atol=1e-5)
        True
        """
        if normalize:
            raise ValueError(
                "normalize=True is not supported: the model has no embedding normaliser; "
                "verify_batch subtracts the training mean when scoring"
            )
        if wavs.dim() == 1:
            wavs = wavs.unsqueeze(0)
        wavs = wavs.to(self.device).float()
        if wav_lens is not None:
            wav_lens = wav_lens.to(self.device)

        def embed(group, group_lens):
            """Embed waveforms of one length: features, normalisation, network."""
            feats = self.mods.compute_features(group)
            feats = self.mods.mean_var_norm(feats, group_lens)
            return self.mods.embedding_model(feats, group_lens).reshape(len(group), 1, -1)

        return embed_unpadded(embed, wavs, wav_lens)

    def verify_batch(self, wavs1, wavs2, wav1_lens=None, wav2_lens=None, threshold=None):
        """Score pairs of waveforms as the recipe does and decide with the threshold.

        Arguments
        ---------
        wavs1 : torch.Tensor
            (batch, time) enrolment waveforms at :attr:`sample_rate`.
        wavs2 : torch.Tensor
            (batch, time) test waveforms, paired row by row with ``wavs1``.
        wav1_lens : torch.Tensor, optional
            (batch,) relative lengths of ``wavs1``.
        wav2_lens : torch.Tensor, optional
            (batch,) relative lengths of ``wavs2``.
        threshold : float, optional
            Decision threshold; ``None`` uses the saved one (:attr:`threshold`).

        Returns
        -------
        score : torch.Tensor
            (batch, 1) float64 scores: cosine after subtracting the training mean, then
            AS-norm when the model has a cohort.
        decision : torch.Tensor
            (batch, 1) booleans, ``True`` (same speaker) when the score is above the
            threshold.

        Example
        -------
        >>> folder = _demo_export(getfixture("tmp_path"), threshold=0.1)
        >>> model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
        >>> wavs = 0.1 * torch.randn(2, 16000)
        >>> score, decision = model.verify_batch(wavs, wavs.flip(0))
        >>> score.shape, torch.equal(decision, score > 0.1)
        (torch.Size([2, 1]), True)
        >>> bool(model.verify_batch(wavs, wavs, threshold=0.999)[1].all())
        True
        """
        emb1 = self.encode_batch(wavs1, wav1_lens)
        emb2 = self.encode_batch(wavs2, wav2_lens)
        scores = self.mods.scoring.score(emb1, emb2).unsqueeze(1)
        threshold = self.threshold if threshold is None else float(threshold)
        return scores, scores > threshold


def model_folder(source, hparams_file=HPARAMS_FILE):
    r"""Check that ``source`` is a model folder and return its absolute path.

    Arguments
    ---------
    source : str or pathlib.Path
        The folder to check.
    hparams_file : str
        Name of the hyperparameters file it must hold.

    Returns
    -------
    pathlib.Path
        The absolute path of the folder.

    Example
    -------
    >>> folder = getfixture("tmp_path")
    >>> model_folder(folder)
    Traceback (most recent call last):
    ...
    FileNotFoundError: model folder ... has no hyperparams.yaml: the CAMSAT recipe's verify ...
    >>> _ = (folder / "hyperparams.yaml").write_text("modules: {}\n")
    >>> model_folder(folder) == folder.absolute()
    True
    """
    folder = Path(source).expanduser().absolute()
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist: {_HOW_TO_EXPORT}")
    if not (folder / hparams_file).is_file():
        raise FileNotFoundError(f"model folder {folder} has no {hparams_file}: {_HOW_TO_EXPORT}")
    return folder


def _node_text(name, node_text):
    """Return ``name: <node>`` YAML text for one resolved module node.

    ``node_text`` is the node alone (``!new:pkg.Class`` and its arguments) or a mapping
    holding it under one key (such as ``name: !new:pkg.Class ...``); any indentation.
    """
    if not isinstance(node_text, str):
        raise TypeError(f"the YAML node of {name} must be a string, got {type(node_text)}")
    node = YAML().load(node_text)
    tag = getattr(getattr(node, "tag", None), "value", None)
    if tag is None and isinstance(node, dict):
        if name in node:
            node = node[name]
        elif len(node) == 1:
            node = next(iter(node.values()))
        tag = getattr(getattr(node, "tag", None), "value", None)
    if tag is None or not tag.startswith("!new:"):
        raise ValueError(
            f"the YAML node of {name} must build the module with a !new: tag, got:\n{node_text}"
        )
    _drop_comments(node)
    stream = io.StringIO()
    YAML().dump({name: node}, stream)
    text = stream.getvalue()
    if re.search(r"!(ref|copy)\b", text):
        raise ValueError(
            f"the YAML node of {name} still holds !ref or !copy references: give it "
            f"resolved (hyperpyyaml.resolve_references), got:\n{node_text}"
        )
    return text


def _drop_comments(node):
    """Remove the comments ruamel keeps with ``node`` (they describe the source file)."""
    comments = getattr(node, "ca", None)
    if comments is not None:
        comments.comment = None
        comments.items.clear()
        comments.end = None
    if isinstance(node, dict):
        for value in node.values():
            _drop_comments(value)
    elif isinstance(node, list):
        for value in node:
            _drop_comments(value)


def _unwrap(module):
    """Return the module inside a DDP or DataParallel wrapper or a ``torch.compile`` one."""
    wrappers = (torch.nn.parallel.DistributedDataParallel, torch.nn.DataParallel)
    if isinstance(module, wrappers):
        module = module.module
    return getattr(module, "_orig_mod", module)


def _save_checkpoint(module, path):
    """Save ``module`` in the format its SpeechBrain transfer hook reads back.

    The registered save hook is called unwrapped: SpeechBrain wraps it to run on the
    main process and broadcast, which would wait for the other processes when the
    export itself runs on the main process only.
    """
    hook = get_default_hook(module, DEFAULT_SAVE_HOOKS)
    hook = getattr(hook, "__wrapped__", hook)
    if hook is None or hook is torch_save:
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
        torch.save(state, path)
    else:
        hook(module, path)


def _hparams_text(folder, nodes, stats, sample_rate, checkpointed):
    """Compose the text of an exported ``hyperparams.yaml``."""
    loadables = "".join(f"    {name}: !ref <{name}>\n" for name in checkpointed)
    paths = "".join(f"    {name}: !ref <pretrained_path>/{name}.ckpt\n" for name in checkpointed)
    modules = "".join(f"  {name}: !ref <{name}>\n" for name in (*EXPORTED_MODULES, "scoring"))
    return (
        "# CAMSAT speaker-verification model written by camsat_lobes.inference.export_model.\n"
        "# Load: camsat_lobes.inference.CAMSATSpeakerRecognition.from_hparams(source=<folder>)\n"
        "# (speechbrain.inference.speaker.SpeakerRecognition loads it too, without `scoring`).\n"
        "\n"
        f"sample_rate: {int(sample_rate)}\n"
        "# Folder of the checkpoints (CAMSATSpeakerRecognition sets it to where it loads from).\n"
        f"pretrained_path: {json.dumps(str(folder))}\n"
        "\n" + "\n".join(nodes[name] for name in EXPORTED_MODULES) + "\n"
        "# Training mean, threshold and AS-norm cohort (cohort_size 0: no AS-norm).\n"
        "scoring: !new:camsat_lobes.inference.ScoringStatistics\n"
        f"  embedding_dim: {stats.embedding_dim}\n"
        f"  cohort_size: {len(stats.cohort)}\n"
        f"  top_k: {stats.top_k}\n"
        "\n"
        "audio_normalizer: !new:speechbrain.dataio.preprocess.AudioNormalizer\n"
        "  sample_rate: !ref <sample_rate>\n"
        "\n"
        f"modules:\n{modules}"
        "\n"
        "pretrainer: !new:speechbrain.utils.parameter_transfer.Pretrainer\n"
        f"  loadables:\n{loadables}"
        f"  paths:\n{paths}"
    )


def _check_export(folder, modules, sample_rate):
    """Load the exported folder on the CPU and compare its embeddings with ``modules``'."""
    try:
        model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    except Exception as err:
        raise ValueError(
            f"the model exported to {folder} does not load ({type(err).__name__}: {err}); "
            "check that the YAML nodes build the trained modules"
        ) from err
    exported = model.mods.embedding_model.state_dict()
    given = _unwrap(modules["embedding_model"]).state_dict()
    if set(exported) != set(given):
        raise ValueError(
            "the embedding_model YAML node builds a network with other parameters than the "
            f"trained one: only in the node {sorted(set(exported) - set(given))[:5]}, only "
            f"in the trained network {sorted(set(given) - set(exported))[:5]}"
        )
    probe = torch.from_numpy(
        np.random.default_rng(0).normal(scale=0.1, size=(1, int(sample_rate))).astype(np.float32)
    )
    mods = {name: _unwrap(modules[name]) for name in EXPORTED_MODULES}
    training = {name: module.training for name, module in mods.items()}
    try:
        for module in mods.values():
            module.eval()
        device = next(
            (t.device for m in mods.values() for t in m.state_dict().values()),
            torch.device("cpu"),
        )
        with torch.no_grad():
            wavs, lens = probe.to(device), torch.ones(1, device=device)
            feats = mods["mean_var_norm"](mods["compute_features"](wavs), lens)
            expected = mods["embedding_model"](feats, lens).reshape(1, -1).float().cpu()
            got = model.encode_batch(probe).reshape(1, -1)
    finally:
        for name, module in mods.items():
            module.train(training[name])
    similarity = torch.nn.functional.cosine_similarity(expected, got).item()
    if not similarity > 0.999:
        raise ValueError(
            f"the model exported to {folder} does not reproduce the trained modules' "
            f"embeddings (cosine {similarity:.4f}): check the YAML nodes"
        )


def export_model(folder, yaml_nodes, modules, backend, threshold, sample_rate=16000, check=True):
    r"""Write a trained system as a model folder SpeechBrain's inference interface loads.

    Files: ``hyperparams.yaml`` (self-contained: the three resolved module nodes,
    ``scoring``, ``audio_normalizer``, ``modules``, ``pretrainer`` and ``sample_rate``),
    ``embedding_model.ckpt``, ``mean_var_norm.ckpt`` and ``scoring.ckpt`` (written as
    SpeechBrain's Pretrainer reads them; ``compute_features.ckpt`` too if the feature
    extractor has parameters, e.g. a learnable filterbank), and ``README.md``. Load the folder with
    :class:`CAMSATSpeakerRecognition` (recipe scoring) or SpeechBrain's
    ``SpeakerRecognition`` (plain cosine). Existing files of these names are replaced.

    Arguments
    ---------
    folder : str or pathlib.Path
        The model folder (created if needed).
    yaml_nodes : dict
        Resolved YAML text (``hyperpyyaml.resolve_references`` output, no ``!ref``)
        of the node that built each of ``compute_features``, ``mean_var_norm`` and
        ``embedding_model``: the node alone (``"!new:pkg.Class\n  arg: 1\n"``) or
        under its key (``"embedding_model: !new:pkg.Class\n  arg: 1\n"``).
    modules : dict
        The trained ``compute_features``, ``mean_var_norm`` and ``embedding_model``
        modules (others are ignored; DDP wrappers are removed).
    backend : camsat_lobes.scoring.CosineBackend
        The backend the recipe scored with (training mean, cohort when AS-norm).
    threshold : float
        Decision threshold (accept when the score is above it).
    sample_rate : int
        Sampling rate (Hz) the modules expect.
    check : bool
        Load the written folder on the CPU and check that it embeds a probe waveform as
        ``modules`` do (and builds a network with the same parameter names); raises
        ``ValueError`` otherwise.

    Returns
    -------
    pathlib.Path
        The absolute path of ``folder``.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> from speechbrain.processing.features import InputNormalization
    >>> nodes = {
    ...     "compute_features": "!new:speechbrain.lobes.features.Fbank\n  n_mels: 80\n",
    ...     "mean_var_norm": "!new:speechbrain.processing.features.InputNormalization\n"
    ...     "  norm_type: sentence\n  std_norm: false\n",
    ...     "embedding_model": "!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
    ...     "  input_size: 80\n  channels: [16, 16, 16, 16, 48]\n  lin_neurons: 8\n",
    ... }
    >>> modules = {
    ...     "compute_features": Fbank(n_mels=80),
    ...     "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
    ...     "embedding_model": ECAPA_TDNN(80, channels=[16, 16, 16, 16, 48], lin_neurons=8),
    ... }
    >>> train = np.random.default_rng(0).normal(size=(20, 8)).astype(np.float32)
    >>> backend = CosineBackend.from_training(train, score_norm="as-norm", top_k=5)
    >>> folder = export_model(getfixture("tmp_path") / "m", nodes, modules, backend, 0.2)
    >>> sorted(p.name for p in folder.iterdir())  # doctest: +NORMALIZE_WHITESPACE
    ['README.md', 'embedding_model.ckpt', 'hyperparams.yaml', 'mean_var_norm.ckpt',
     'scoring.ckpt']
    >>> model = CAMSATSpeakerRecognition.from_hparams(folder, run_opts={"device": "cpu"})
    >>> model.mods.scoring
    ScoringStatistics(embedding_dim=8, cohort_size=20, top_k=5, threshold=0.2)
    """
    folder = Path(folder).expanduser().absolute()
    missing = [name for name in EXPORTED_MODULES if name not in yaml_nodes or name not in modules]
    if missing:
        raise ValueError(
            f"yaml_nodes and modules must both give {list(EXPORTED_MODULES)}: {missing} missing"
        )
    nodes = {name: _node_text(name, yaml_nodes[name]) for name in EXPORTED_MODULES}
    stats = ScoringStatistics.from_backend(backend, threshold)
    folder.mkdir(parents=True, exist_ok=True)

    checkpointed = []
    for name in EXPORTED_MODULES:
        module = _unwrap(modules[name])
        if name == "compute_features" and not any(True for _ in module.parameters()):
            continue  # fixed features (buffers only): the YAML node rebuilds them
        _save_checkpoint(module, folder / f"{name}.ckpt")
        checkpointed.append(name)
    _save_checkpoint(stats, folder / "scoring.ckpt")
    checkpointed.append("scoring")

    text = _hparams_text(folder, nodes, stats, sample_rate, checkpointed)
    (folder / HPARAMS_FILE).write_text(text, encoding="utf-8")
    summary = (
        f"{stats.embedding_dim}-dimensional embeddings, "
        + (
            f"AS-norm on a cohort of {len(stats.cohort)} training embeddings (top {stats.top_k})"
            if len(stats.cohort)
            else "cosine centred on the training mean"
        )
        + f", threshold {float(threshold):.4f}"
    )
    readme = _README.format(
        folder=folder, summary=summary, dim=stats.embedding_dim, sample_rate=int(sample_rate)
    )
    (folder / "README.md").write_text(readme, encoding="utf-8")
    if check:
        _check_export(folder, modules, sample_rate)
    return folder


def _demo_export(folder, cohort_size=0, threshold=0.2, seed=0):
    """Export a tiny randomly initialised model (8-dimensional ECAPA) for examples."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    from speechbrain.processing.features import InputNormalization

    torch.manual_seed(seed)
    channels = [16, 16, 16, 16, 48]
    nodes = {
        "compute_features": "!new:speechbrain.lobes.features.Fbank\n  n_mels: 80\n",
        "mean_var_norm": "!new:speechbrain.processing.features.InputNormalization\n"
        "  norm_type: sentence\n  std_norm: false\n",
        "embedding_model": "!new:speechbrain.lobes.models.ECAPA_TDNN.ECAPA_TDNN\n"
        f"  input_size: 80\n  channels: {channels}\n  lin_neurons: 8\n",
    }
    modules = {
        "compute_features": Fbank(n_mels=80),
        "mean_var_norm": InputNormalization(norm_type="sentence", std_norm=False),
        "embedding_model": ECAPA_TDNN(80, channels=channels, lin_neurons=8),
    }
    train = np.random.default_rng(seed).normal(size=(max(cohort_size, 10), 8)).astype(np.float32)
    backend = CosineBackend.from_training(
        train, score_norm="as-norm" if cohort_size else None, top_k=5
    )
    return export_model(folder, nodes, modules, backend, threshold, check=False)


def _parser():
    """Build the argument parser of the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m camsat_lobes.inference",
        description=(
            "Use a CAMSAT model folder (written by the recipe's verify stage or by\n"
            "camsat_lobes.inference.export_model) to verify a pair of recordings or to embed\n"
            "recordings. Audio at another sampling rate is resampled to the model's; several\n"
            "channels are averaged. Run 'COMMAND --help' for the options of a command."
        ),
        epilog=(
            "examples:\n"
            "  python -m camsat_lobes.inference verify MODEL_DIR a.wav b.wav\n"
            "  python -m camsat_lobes.inference embed MODEL_DIR *.wav -o emb.npy"
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    verify = commands.add_parser(
        "verify",
        help="score two recordings and decide whether they share a speaker",
        description=(
            "Score two recordings as the recipe does (cosine after subtracting the "
            "training mean, AS-norm when the model has a cohort) and print the score and "
            "the decision: same speaker when the score is above the threshold."
        ),
    )
    verify.add_argument("model_dir", metavar="MODEL_DIR", help="the model folder")
    verify.add_argument("enrol", metavar="A", help="first (enrolment) recording")
    verify.add_argument("test", metavar="B", help="second (test) recording")
    verify.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="decision threshold (default: the one saved with the model)",
    )

    embed = commands.add_parser(
        "embed",
        help="embed recordings into an (N, D) float32 .npy array",
        description=(
            "Embed each recording (alone, at its full length) and write an (N, D) "
            "float32 array, one row per file in the order given, plus a text file "
            "listing the files in row order (OUTPUT with .ids.txt instead of .npy)."
        ),
    )
    embed.add_argument("model_dir", metavar="MODEL_DIR", help="the model folder")
    embed.add_argument("files", metavar="FILE", nargs="+", help="recordings to embed")
    embed.add_argument(
        "-o", "--output", required=True, metavar="OUTPUT", help="the .npy file to write"
    )
    for command in (verify, embed):
        command.add_argument(
            "--device", default="cpu", help="torch device to run on (default: cpu)"
        )
    return parser


def _load_checked(model, path):
    """Load ``path`` with the model, noting a resampling on stderr."""
    path = Path(path)
    if path.is_file():
        try:
            rate = audio_io.info(str(path)).sample_rate
        except Exception:
            rate = None  # load_audio names the file when it cannot read it
        if rate is not None and rate != model.sample_rate:
            print(
                f"note: {path} is sampled at {rate} Hz; resampled to {model.sample_rate} Hz",
                file=sys.stderr,
            )
    return model.load_audio(path)


def main(argv=None):
    """Run the command line (``python -m camsat_lobes.inference --help``).

    ``verify MODEL_DIR A B`` prints ``score S -> same speaker (threshold T)`` (or
    ``different speakers``); ``embed MODEL_DIR FILES... -o emb.npy`` writes the
    embeddings and ``emb.ids.txt``. Errors (missing model folder, unreadable audio)
    are printed on stderr, naming the file.

    Arguments
    ---------
    argv : list of str, optional
        The arguments; ``None`` reads ``sys.argv``.

    Returns
    -------
    int
        Exit status: 0 on success, 1 on an error.

    Example
    -------
    >>> import contextlib
    >>> folder = _demo_export(getfixture("tmp_path") / "model")
    >>> import soundfile as sf
    >>> wav = folder / "a.wav"
    >>> sf.write(wav, 0.1 * np.random.default_rng(0).normal(size=8000), 16000)
    >>> main(["verify", str(folder), str(wav), str(wav)])
    score 1.0000 -> same speaker (threshold 0.2000)
    0
    >>> with contextlib.redirect_stderr(sys.stdout):
    ...     main(["verify", str(folder / "nowhere"), str(wav), str(wav)])
    error: model folder .../nowhere does not exist: the CAMSAT recipe's verify stage ...
    1
    """
    args = _parser().parse_args(argv)
    try:
        model = CAMSATSpeakerRecognition.from_hparams(
            args.model_dir, run_opts={"device": args.device}
        )
        if args.command == "verify":
            wavs = [_load_checked(model, path) for path in (args.enrol, args.test)]
            score, decision = model.verify_batch(
                wavs[0].unsqueeze(0), wavs[1].unsqueeze(0), threshold=args.threshold
            )
            threshold = model.threshold if args.threshold is None else args.threshold
            verdict = "same speaker" if bool(decision[0, 0]) else "different speakers"
            print(f"score {score[0, 0].item():.4f} -> {verdict} (threshold {threshold:.4f})")
        else:
            output = Path(args.output)
            if output.suffix != ".npy":
                output = output.with_name(output.name + ".npy")
            rows = []
            with torch.no_grad():
                for path in args.files:
                    wav = _load_checked(model, path)
                    rows.append(model.encode_batch(wav).reshape(-1).float().cpu().numpy())
            embeddings = np.stack(rows).astype(np.float32)
            ids = output.with_suffix(".ids.txt")
            output.parent.mkdir(parents=True, exist_ok=True)
            np.save(output, embeddings)
            ids.write_text("".join(f"{path}\n" for path in args.files), encoding="utf-8")
            print(
                f"wrote {embeddings.shape[0]} x {embeddings.shape[1]} embeddings to {output} "
                f"(files in row order: {ids})"
            )
    except (OSError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    from camsat_lobes.inference import main as _main  # the importable module's classes

    sys.exit(_main())
