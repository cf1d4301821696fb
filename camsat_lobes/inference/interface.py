"""Load an exported CAMSAT model and score as the recipe: the SpeechBrain interface.

:class:`CAMSATSpeakerRecognition` loads a model folder written by
:func:`camsat_lobes.inference.export_model`; :class:`ScoringStatistics` is the module
that carries the recipe's scoring state (training mean, threshold, AS-norm cohort) in
that folder; :func:`model_folder` (from :mod:`camsat_lobes.inference.checks`) checks
that a path is such a folder.

Authors
 * camsat contributors 2026
"""

import re
from pathlib import Path

import numpy as np
import torch
from speechbrain.dataio import audio_io
from speechbrain.inference.speaker import SpeakerRecognition
from speechbrain.utils.fetching import FetchConfig

from camsat_lobes.encoders.base import embed_unpadded
from camsat_lobes.inference.checks import (
    HOW_TO_EXPORT,
    HPARAMS_FILE,
    diagnose_model_folder,
    model_folder,
)
from camsat_lobes.scoring import CosineBackend

__all__ = ["CAMSATSpeakerRecognition", "HPARAMS_FILE", "ScoringStatistics", "model_folder"]


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
            Decision threshold: a trial is accepted when its score is above it.

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
        """Score paired embeddings as the recipe does (the backend's ``score``); ``forward``.

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

    forward = score


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
    ``model_dir`` is a model folder written by :func:`~camsat_lobes.inference.export_model`
    (a tiny random network):

    >>> import soundfile as sf
    >>> model = CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"})
    >>> audio, rng = getfixture("tmp_path"), np.random.default_rng(0)
    >>> sf.write(audio / "a.wav", 0.1 * rng.normal(size=16000), 16000)
    >>> sf.write(audio / "b.wav", 0.1 * rng.normal(size=12000), 16000)
    >>> score, same = model.verify_files(audio / "a.wav", audio / "b.wav")
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
                f"by camsat_lobes.inference.export_model ({HOW_TO_EXPORT})"
            )
        self.mods.scoring.cpu()

    @classmethod
    def from_hparams(cls, source, hparams_file=HPARAMS_FILE, savedir=None, **kwargs):
        """Load a model folder written by :func:`export_model`, without network access.

        The files are used where they are: with ``savedir=None`` (the default) nothing
        is copied or linked; with a ``savedir``, SpeechBrain symlinks the files into it.
        The checkpoint paths are taken relative to ``source``, so a moved or copied
        folder loads too. A folder that does not load because a file is damaged (a
        truncated checkpoint, unparsable YAML) raises ``ValueError`` naming the file.

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
        try:
            text = (folder / hparams_file).read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise ValueError(f"{folder / hparams_file} is damaged: not UTF-8 text") from err
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
                f"model folder {folder} is incomplete ({err}); {HOW_TO_EXPORT}"
            ) from err
        except Exception as err:  # name the damaged file rather than show torch's traceback
            problem = diagnose_model_folder(folder, hparams_file)
            if problem:
                raise ValueError(f"{problem}; {HOW_TO_EXPORT}") from err
            if isinstance(err, (OSError, ValueError)):
                raise
            raise ValueError(
                f"model folder {folder} does not load ({type(err).__name__}: {err})"
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
        >>> CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"}).threshold
        0.2
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
        >>> model = CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"})
        >>> model.sample_rate
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
        >>> model = CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"})
        >>> folder = getfixture("tmp_path")
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
        >>> model = CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"})
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
        >>> model = CAMSATSpeakerRecognition.from_hparams(model_dir, run_opts={"device": "cpu"})
        >>> wavs = 0.1 * torch.randn(2, 16000)
        >>> score, decision = model.verify_batch(wavs, wavs.flip(0))
        >>> score.shape, torch.equal(decision, score > 0.2)
        (torch.Size([2, 1]), True)
        >>> bool(model.verify_batch(wavs, wavs, threshold=0.999)[1].all())
        True
        """
        emb1 = self.encode_batch(wavs1, wav1_lens)
        emb2 = self.encode_batch(wavs2, wav2_lens)
        scores = self.mods.scoring.score(emb1, emb2).unsqueeze(1)
        threshold = self.threshold if threshold is None else float(threshold)
        return scores, scores > threshold
