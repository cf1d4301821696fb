"""A pretrained SpeechBrain speaker encoder loaded from a local folder (never downloaded).

Authors
 * camsat contributors 2026
"""

import logging
import pathlib

import torch
from speechbrain.inference.classifiers import EncoderClassifier
from speechbrain.utils.fetching import FetchConfig

from camsat_lobes.encoders.base import Encoder, embed_unpadded, relative_lengths

logger = logging.getLogger(__name__)


class PretrainedEncoder(Encoder):
    """SpeechBrain ``EncoderClassifier`` from a local model folder.

    The folder holds what ``EncoderClassifier.from_hparams`` reads: a
    ``hyperparams.yaml`` defining ``compute_features``, ``mean_var_norm``,
    ``embedding_model``, ``modules`` and a ``pretrainer``, and the checkpoint files
    its pretrainer loads (at least ``embedding_model.ckpt``). Network access is
    disabled: a missing file raises an error instead of a download. Nothing is
    trained; :meth:`fit` only loads the model.

    Arguments
    ---------
    source : str or pathlib.Path
        Local model folder.
    hparams_file : str
        Name of the hyperparameter file in ``source``.
    savedir : str or pathlib.Path, optional
        Where SpeechBrain links the files (default: ``source`` itself).
    sample_rate : int
        Sampling rate the model expects (Hz).

    Example
    -------
    >>> encoder = PretrainedEncoder(getfixture("tmp_path") / "no_model_here")
    >>> encoder.fit("train_utts.csv", "save")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    FileNotFoundError: Pretrained encoder folder ... does not exist...
    """

    REQUIRED_FILES = ("embedding_model.ckpt",)

    def __init__(self, source, hparams_file="hyperparams.yaml", savedir=None, sample_rate=16000):
        super().__init__(sample_rate)
        self.source = pathlib.Path(source).expanduser()
        self.hparams_file = hparams_file
        self.savedir = pathlib.Path(savedir) if savedir is not None else self.source
        self.model = None

    def check_folder(self):
        """Raise a clear error when the folder lacks a file the model needs.

        Example
        -------
        >>> PretrainedEncoder(getfixture("tmp_path")).check_folder()  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        FileNotFoundError: Pretrained encoder folder ... lacks hyperparams.yaml, ...
        """
        if not self.source.is_dir():
            raise FileNotFoundError(
                f"Pretrained encoder folder {self.source} does not exist. Give a local folder "
                f"holding {self.hparams_file} and {', '.join(self.REQUIRED_FILES)} (models are "
                "never downloaded)."
            )
        missing = [
            name
            for name in (self.hparams_file, *self.REQUIRED_FILES)
            if not (self.source / name).is_file()
        ]
        if missing:
            present = sorted(path.name for path in self.source.iterdir())
            raise FileNotFoundError(
                f"Pretrained encoder folder {self.source} lacks {', '.join(missing)} "
                f"(it holds: {present or 'nothing'}). Copy the model files there; models are "
                "never downloaded."
            )

    def load(self, device=None):
        """Load the model from the folder (once).

        Arguments
        ---------
        device : str, optional
            Device for the model (default: CUDA when available, else CPU).

        Returns
        -------
        speechbrain.inference.classifiers.EncoderClassifier
            The loaded model.
        """
        if self.model is not None:
            if device is not None:
                self.model.device = device
                self.model.to(device)
            return self.model
        self.check_folder()
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            self.model = EncoderClassifier.from_hparams(
                source=str(self.source.resolve()),
                hparams_file=self.hparams_file,
                savedir=str(self.savedir),
                run_opts={"device": device},
                fetch_config=FetchConfig(allow_network=False),
            )
        except Exception as error:
            raise RuntimeError(
                f"Could not load the pretrained encoder from {self.source}: {error}. The folder "
                f"needs a {self.hparams_file} with compute_features, mean_var_norm, "
                "embedding_model, modules and a pretrainer, plus the checkpoint file of every "
                "pretrainer loadable (<name>.ckpt)."
            ) from error
        self.model.eval()
        return self.model

    def fit(self, train_manifest, save_folder, augmentation_sets=None, run_opts=None, seed=None):
        """Load the model (nothing is trained; the arguments are ignored but ``device``).

        Arguments
        ---------
        train_manifest : str or pathlib.Path
            Ignored.
        save_folder : str or pathlib.Path
            Ignored.
        augmentation_sets : dict, optional
            Ignored.
        run_opts : dict, optional
            ``device`` is used.
        seed : int, optional
            Ignored.

        Returns
        -------
        PretrainedEncoder
            ``self``.
        """
        self.load((run_opts or {}).get("device"))
        return self

    @property
    def device(self):
        """Device of the loaded model (CPU before loading)."""
        if self.model is None:
            return torch.device("cpu")
        return torch.device(self.model.device)

    @torch.no_grad()
    def embed(self, wavs, wav_lens=None):
        """Embed waveforms with the pretrained model (loaded on first use).

        Padding never reaches the model (see
        :func:`~camsat_lobes.encoders.base.embed_unpadded`), so an utterance gets the
        same embedding alone as in any batch.

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``, zero-padded.
        wav_lens : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, embedding_dim)``.

        Example
        -------
        >>> PretrainedEncoder(getfixture("tmp_path")).embed(torch.zeros(1, 100))
        Traceback (most recent call last):
        ...
        FileNotFoundError: Pretrained encoder folder ... lacks hyperparams.yaml, ...
        """
        model = self.load()
        return embed_unpadded(self._embed_batch, wavs.to(model.device).float(), wav_lens)

    def _embed_batch(self, wavs, wav_lens):
        """Run the model's ``encode_batch`` on a batch taken as it is."""
        embeddings = self.model.encode_batch(wavs, relative_lengths(wavs, wav_lens))
        return embeddings.reshape(wavs.shape[0], -1)
