"""The interface every stage-1 encoder follows.

A stage-1 encoder turns raw 16 kHz waveforms into fixed-size utterance embeddings
that are later clustered into pseudo-speakers. All encoders (self-supervised ECAPA,
i-vectors, pretrained SpeechBrain models) share one small interface so that a recipe
can swap them with one line of hyperparameters:

* ``encoder.fit(train_manifest, save_folder, augmentation_sets=None, run_opts=None, seed=None)``
  trains the encoder without labels, or loads it when ``save_folder`` already holds
  a finished training; an interrupted training resumes from its checkpoints.
* ``encoder.embed(wavs, wav_lens)`` returns a ``(batch, embedding_dim)`` tensor. An
  utterance's embedding does not depend on the batch it comes in: the encoders embed
  through :func:`embed_unpadded`, so zero padding never reaches a network.
* ``encoder.embedding_dim`` and ``encoder.sample_rate`` describe the output and the
  expected input.

Authors
 * camsat contributors 2026
"""

import logging

import torch

logger = logging.getLogger(__name__)


class Encoder(torch.nn.Module):
    """Base class of the stage-1 encoders.

    Subclasses implement :meth:`fit`, :meth:`embed` and :attr:`embedding_dim`.
    Training never reads speaker labels: ``fit`` only uses the waveform columns of
    the manifest (``ID``, ``wav``, ``start``, ``stop``, ``duration``).

    Arguments
    ---------
    sample_rate : int
        Sampling rate (Hz) of the waveforms given to :meth:`embed`.

    Example
    -------
    >>> class MeanEnergy(Encoder):
    ...     embedding_dim = 1
    ...     def embed(self, wavs, wav_lens=None):
    ...         return wavs.pow(2).mean(dim=1, keepdim=True)
    >>> MeanEnergy().embed(torch.ones(2, 100)).shape
    torch.Size([2, 1])
    """

    def __init__(self, sample_rate=16000):
        super().__init__()
        self.sample_rate = int(sample_rate)

    @property
    def device(self):
        """The device the encoder's tensors live on (``cpu`` when it has none).

        Example
        -------
        >>> Encoder().device
        device(type='cpu')
        """
        for tensor in self.state_dict().values():
            return tensor.device
        return torch.device("cpu")

    def fit(self, train_manifest, save_folder, augmentation_sets=None, run_opts=None, seed=None):
        """Train the encoder on unlabelled audio (or load the finished training).

        The default implementation has nothing to train and returns ``self``.

        Arguments
        ---------
        train_manifest : str or pathlib.Path
            CSV with one row per training utterance (``ID, duration, wav, start,
            stop, ...``); label columns are ignored.
        save_folder : str or pathlib.Path
            Folder for checkpoints and trained parameters.
        augmentation_sets : dict, optional
            Paths of the offline augmentation CSVs (``noise_csv``, ``rir_csv``,
            ``babble_csv``); ``None`` uses synthetic noise only.
        run_opts : dict, optional
            SpeechBrain run options (``device``, ``distributed_launch``, ...).
        seed : int, optional
            Seed of the training's random draws, so that a run resumed from a
            checkpoint draws what an uninterrupted one would.

        Returns
        -------
        Encoder
            ``self``, trained.

        Example
        -------
        >>> encoder = Encoder()
        >>> encoder.fit("train_utts.csv", "save") is encoder
        True
        """
        return self

    @property
    def embedding_dim(self):
        """Size of the embeddings returned by :meth:`embed` (found once, by embedding silence).

        Example
        -------
        >>> class Halves(Encoder):
        ...     def embed(self, wavs, wav_lens=None):
        ...         return wavs.reshape(wavs.shape[0], 2, -1).mean(dim=2)
        >>> Halves().embedding_dim
        2
        """
        if getattr(self, "_probed_dim", None) is None:
            probe = torch.zeros(2, self.sample_rate, device=self.device)
            self._probed_dim = int(self.embed(probe).shape[1])
        return self._probed_dim

    def embed(self, wavs, wav_lens=None):
        """Embed a batch of waveforms.

        Implementations pass their computation through :func:`embed_unpadded`, so
        that an utterance's embedding does not depend on the rest of the batch.

        Arguments
        ---------
        wavs : torch.Tensor
            Waveforms, shape ``(batch, time)``, at :attr:`sample_rate`.
        wav_lens : torch.Tensor, optional
            Relative lengths in ``(0, 1]`` (SpeechBrain convention); ``None`` means
            every waveform fills the whole tensor.

        Returns
        -------
        torch.Tensor
            Embeddings, shape ``(batch, embedding_dim)``, on the encoder's device.
        """
        raise NotImplementedError

    def forward(self, wavs, wav_lens=None):
        """Embed, as :meth:`embed` does, so that the encoder can be used as a module.

        Example
        -------
        >>> class Peak(Encoder):
        ...     embedding_dim = 1
        ...     def embed(self, wavs, wav_lens=None):
        ...         return wavs.abs().amax(dim=1, keepdim=True)
        >>> Peak()(torch.tensor([[0.5, -2.0]])).tolist()
        [[2.0]]
        """
        return self.embed(wavs, wav_lens)


def relative_lengths(wavs, wav_lens=None):
    """Return relative lengths on the device of ``wavs`` (all ones when absent).

    Arguments
    ---------
    wavs : torch.Tensor
        Batch of waveforms, shape ``(batch, time)``.
    wav_lens : torch.Tensor, optional
        Relative lengths.

    Returns
    -------
    torch.Tensor
        Relative lengths, shape ``(batch,)``.

    Example
    -------
    >>> relative_lengths(torch.zeros(3, 10)).tolist()
    [1.0, 1.0, 1.0]
    """
    if wav_lens is None:
        return torch.ones(wavs.shape[0], device=wavs.device)
    return wav_lens.to(wavs.device, torch.float32)


def embed_unpadded(embed_fn, wavs, wav_lens=None):
    """Embed a zero-padded batch so that no padding sample reaches ``embed_fn``.

    The rows are grouped by their true length in samples (relative length times the
    padded length, rounded). ``embed_fn`` is called once per group, on the group's
    rows cut to that length with relative lengths of one, and the embeddings are put
    back in the order of the rows. A row's embedding is therefore the one it gets
    when embedded alone, whatever the other rows of the batch are. Rows of equal
    length still share one call (e.g. utterances cut to a common maximum duration);
    a batch without padding is a single call.

    Arguments
    ---------
    embed_fn : callable
        ``embed_fn(wavs, wav_lens) -> (batch, dim)`` tensor; it is given unpadded
        waveforms ``(group, length)`` and ``wav_lens`` all ones.
    wavs : torch.Tensor
        Zero-padded waveforms, shape ``(batch, time)``.
    wav_lens : torch.Tensor, optional
        Relative lengths in ``(0, 1]`` (SpeechBrain convention); ``None`` means every
        waveform fills the whole tensor.

    Returns
    -------
    torch.Tensor
        Embeddings, shape ``(batch, dim)``, in the order of the rows of ``wavs``, on
        the device and with the dtype ``embed_fn`` returns.

    Example
    -------
    >>> def padded_mean(wavs, wav_lens):  # sees the padding: depends on the batch
    ...     return wavs.mean(dim=1, keepdim=True)
    >>> wavs = torch.tensor([[2.0, 2.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0], [4.0, 4.0, 0.0, 0.0]])
    >>> lengths = torch.tensor([0.5, 1.0, 0.5])
    >>> padded_mean(wavs, lengths).flatten().tolist()
    [1.0, 1.0, 2.0]
    >>> embed_unpadded(padded_mean, wavs, lengths).flatten().tolist()
    [2.0, 1.0, 4.0]
    """
    batch, n_samples = wavs.shape
    if wav_lens is None or batch == 0:
        return embed_fn(wavs, torch.ones(batch, device=wavs.device))
    relative = wav_lens.detach().to("cpu", torch.float64).reshape(batch)
    absolute = (relative * n_samples).round().long().clamp(1, n_samples)
    lengths = torch.unique(absolute).tolist()
    if lengths == [n_samples]:
        return embed_fn(wavs, torch.ones(batch, device=wavs.device))
    embeddings = None
    for length in lengths:
        rows = torch.nonzero(absolute == length).flatten()
        group = wavs[rows.to(wavs.device), :length]
        out = embed_fn(group, torch.ones(len(rows), device=wavs.device))
        if embeddings is None:
            embeddings = out.new_empty((batch, *out.shape[1:]))
        embeddings[rows.to(out.device)] = out
    return embeddings
