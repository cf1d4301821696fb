"""Shared machinery of the self-supervised encoders: crops, schedules, loop, encoder.

Any SpeechBrain embedding lobe (ECAPA-TDNN, x-vector TDNN, ResNet) is trained
without labels on random crops of the training utterances, by one of the methods in
:mod:`camsat_lobes.encoders.dino` and :mod:`camsat_lobes.encoders.simclr`. This
module holds what they share, in the order a training run meets it:

* the data: :func:`ssl_dataset` cuts fresh random crops (:func:`random_crops`) of
  every utterance at each access, and keeps only the audio columns of the manifest,
  so speaker labels are never read;
* the schedules: :func:`learning_rate` (linear warm-up, then cosine decay) and
  :func:`cosine_schedule`, which DINO also uses for the teacher momentum;
* the training loop: :class:`SSLBrain` augments every crop with its own channel,
  embeds it and follows the schedules; a method's Brain adds its forward pass and
  loss;
* the encoder: :class:`SSLEncoder` holds the networks and the settings, builds the
  Brain, trains (resuming from checkpoints) and embeds.

Authors
 * camsat contributors 2026
"""

import math
import pathlib

import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.data_pipeline import provides, takes
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

from camsat_lobes.checkpoints import CompleteCheckpointer
from camsat_lobes.distributed import DistributedBrain
from camsat_lobes.encoders.augmentation import augment_independently, build_augmenter
from camsat_lobes.encoders.base import Encoder, embed_unpadded, relative_lengths
from camsat_lobes.encoders.data import load_segment, read_audio_columns

__all__ = [
    "SSLBrain",
    "SSLEncoder",
    "cosine_schedule",
    "learning_rate",
    "random_crops",
    "random_crop_batch",
    "ssl_dataset",
]


# ----------------------------------------------------------------------------- data


def random_crops(signal, n_crops, crop_samples):
    """Cut ``n_crops`` random segments of ``crop_samples`` samples from a signal.

    Signals shorter than a crop are repeated until they fill it.

    Arguments
    ---------
    signal : torch.Tensor
        One waveform, shape ``(time,)``.
    n_crops : int
        Number of crops.
    crop_samples : int
        Length of each crop in samples.

    Returns
    -------
    torch.Tensor
        Shape ``(n_crops, crop_samples)``.

    Example
    -------
    >>> random_crops(torch.arange(10.0), 3, 4).shape
    torch.Size([3, 4])
    >>> random_crops(torch.ones(3), 2, 7).tolist()  # short signals are repeated
    [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    """
    if signal.numel() == 0:
        raise ValueError("Cannot crop an empty signal.")
    if signal.numel() < crop_samples:
        signal = signal.repeat(math.ceil(crop_samples / signal.numel()))
    starts = torch.randint(0, signal.numel() - crop_samples + 1, (n_crops,))
    return torch.stack([signal[s : s + crop_samples] for s in starts.tolist()])


def random_crop_batch(wavs, lens, crop_samples):
    """Cut one random crop of ``crop_samples`` samples from each waveform of a padded batch.

    Only a waveform's own samples are cropped (its padding never is); a waveform
    shorter than the crop is repeated until it fills it (see :func:`random_crops`),
    so every crop is full length.

    Arguments
    ---------
    wavs : torch.Tensor
        (B, T) zero-padded waveforms.
    lens : torch.Tensor
        (B,) relative lengths in (0, 1].
    crop_samples : int
        Length of the crops in samples.

    Returns
    -------
    crops : torch.Tensor
        (B, crop_samples) crops.
    crop_lens : torch.Tensor
        (B,) relative lengths, all 1.

    Example
    -------
    >>> wavs = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 0.0, 0.0]])
    >>> crops, crop_lens = random_crop_batch(wavs, torch.tensor([1.0, 0.5]), 3)
    >>> crops.shape, crop_lens.tolist()
    (torch.Size([2, 3]), [1.0, 1.0])
    >>> crops[1].tolist() in ([5.0, 6.0, 5.0], [6.0, 5.0, 6.0])  # the padding is never cut
    True
    """
    samples = (lens * wavs.shape[1]).round().long().clamp(1, wavs.shape[1]).tolist()
    crops = [random_crops(wav[:n], 1, crop_samples)[0] for wav, n in zip(wavs, samples)]
    return torch.stack(crops), torch.ones(len(crops), device=wavs.device)


def ssl_dataset(
    manifest, sample_rate=16000, n_global=2, global_seconds=2.0, n_local=0, local_seconds=1.0
):
    r"""Dataset of random crops of each utterance for self-supervised training.

    Only the audio columns of the manifest are kept (see :func:`read_audio_columns`):
    speaker and session labels never enter the pipeline. Each access draws new crop
    positions.

    Arguments
    ---------
    manifest : str or pathlib.Path
        Training manifest (``train_utts.csv``).
    sample_rate : int
        Sampling rate of the audio (Hz).
    n_global : int
        Number of long ("global") crops per utterance.
    global_seconds : float
        Length of a global crop.
    n_local : int
        Number of short ("local") crops per utterance (0 for none).
    local_seconds : float
        Length of a local crop.

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset
        Items ``id``, ``index`` (row number), ``global_crops`` of shape
        ``(n_global, samples)`` and, when ``n_local > 0``, ``local_crops``.

    Example
    -------
    >>> import soundfile
    >>> folder = getfixture("tmp_path")
    >>> soundfile.write(str(folder / "a.wav"), torch.randn(24000).numpy() * 0.1, 16000)
    >>> _ = (folder / "m.csv").write_text(
    ...     f"ID,duration,wav,start,stop\nu1,1.5,{folder}/a.wav,0,24000\n")
    >>> item = ssl_dataset(folder / "m.csv", n_local=3)[0]
    >>> item["global_crops"].shape, item["local_crops"].shape
    (torch.Size([2, 32000]), torch.Size([3, 16000]))
    """
    data = read_audio_columns(manifest)
    global_samples = int(round(global_seconds * sample_rate))
    local_samples = int(round(local_seconds * sample_rate))

    @takes("wav", "start", "stop")
    @provides("global_crops", "local_crops")
    def crops_pipeline(wav, start, stop):
        """Load the segment and yield its global crops, then its local ones."""
        signal = load_segment(wav, start, stop)
        yield random_crops(signal, n_global, global_samples)
        if n_local > 0:
            yield random_crops(signal, n_local, local_samples)

    keys = ["id", "index", "global_crops"] + (["local_crops"] if n_local > 0 else [])
    return DynamicItemDataset(data, dynamic_items=[crops_pipeline], output_keys=keys)


# ------------------------------------------------------------------------ schedules


def cosine_schedule(progress, start, end):
    """Cosine interpolation from ``start`` (progress 0) to ``end`` (progress 1).

    Arguments
    ---------
    progress : float
        Fraction of the way done (clipped to [0, 1]).
    start, end : float
        Values at progress 0 and 1.

    Returns
    -------
    float

    Example
    -------
    >>> [cosine_schedule(p, 1.0, 0.0) for p in (0.0, 0.5, 1.0)]
    [1.0, 0.5, 0.0]
    """
    progress = min(max(progress, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


def learning_rate(progress, peak, final, warmup_fraction):
    """Learning rate at a point of the training: linear warm-up, then cosine decay.

    During the first ``warmup_fraction`` of the training the rate rises linearly from
    ``peak / 1000`` to about ``peak``; it then falls from ``peak`` to ``final`` along
    :func:`cosine_schedule`.

    Arguments
    ---------
    progress : float
        Fraction of the training done (0 at the first step, 1 at the last).
    peak : float
        Rate at the end of the warm-up.
    final : float
        Rate at the end of the training.
    warmup_fraction : float
        Fraction of the training spent warming up (0 for none).

    Returns
    -------
    float

    Example
    -------
    >>> [round(learning_rate(p, 1.0, 0.0, 0.5), 3) for p in (0.0, 0.25, 0.5, 1.0)]
    [0.001, 0.501, 1.0, 0.0]
    """
    if progress < warmup_fraction:
        return peak * (progress / warmup_fraction + 1e-3)
    return cosine_schedule(
        (progress - warmup_fraction) / max(1 - warmup_fraction, 1e-8), peak, final
    )


# -------------------------------------------------------------------- training loop


class SSLBrain(DistributedBrain):
    """Shared training loop of the self-supervised encoders.

    Every crop gets its own channel draw (augmented in batches), is turned into filter
    banks, normalised per utterance and embedded. The learning rate follows a
    linear warm-up then a cosine decay over all steps. Each epoch ends with a
    checkpoint. Subclasses define ``compute_forward`` and ``compute_objectives``.

    Expected ``hparams``: ``augmenter``, ``lr``, ``final_lr``, ``warmup_fraction``,
    ``n_epochs``, ``steps_per_epoch``, ``train_logger``; modules ``compute_features``,
    ``mean_var_norm``, ``embedding_model`` and ``head``. :meth:`SSLEncoder.make_brain`
    builds it.

    Example
    -------
    >>> from speechbrain.lobes.models.Xvector import Xvector
    >>> network = Xvector(tdnn_channels=[8, 8, 8, 8, 16], lin_neurons=12, in_channels=80)
    >>> brain = SSLEncoder(network, torch.nn.Identity()).make_brain(
    ...     getfixture("tmp_path"), run_opts={"device": "cpu"})
    >>> lengths = torch.ones(3)
    >>> brain.embed_waveforms(torch.randn(3, 4000), lengths, brain.modules.embedding_model).shape
    torch.Size([3, 12])
    """

    def embed_crops(self, crops, model, augment):
        """Embed crops of shape ``(batch, n_crops, time)``, one tensor per crop index.

        Arguments
        ---------
        crops : torch.Tensor
            Shape ``(batch, n_crops, time)``.
        model : torch.nn.Module
            Embedding lobe called as ``model(features, lengths)``.
        augment : bool
            Whether to augment every crop independently first.

        Returns
        -------
        list of torch.Tensor
            ``n_crops`` tensors of shape ``(batch, dim)``.
        """
        batch, n_crops, n_samples = crops.shape
        wavs = crops.transpose(0, 1).reshape(batch * n_crops, n_samples).to(self.device)
        lengths = torch.ones(wavs.shape[0], device=self.device)
        if augment:
            wavs, lengths = augment_independently(self.hparams.augmenter, wavs, lengths)
        return list(self.embed_waveforms(wavs, lengths, model).chunk(n_crops))

    def embed_waveforms(self, wavs, lengths, model):
        """Filter banks, per-utterance normalisation and the embedding lobe."""
        return self.embed_features(self.features(wavs, lengths), lengths, model)

    def features(self, wavs, lengths):
        """Filter banks with per-utterance normalisation, shape ``(batch, frames, n_mels)``."""
        return self.modules.mean_var_norm(self.modules.compute_features(wavs), lengths)

    def embed_features(self, feats, lengths, model):
        """Embed normalised features with ``model``, shape ``(batch, dim)``."""
        return model(feats, lengths).reshape(feats.shape[0], -1)

    @property
    def progress(self):
        """Fraction of the training done (0 at the first step, 1 at the last)."""
        total = self.hparams.n_epochs * self.hparams.steps_per_epoch
        done = (self.current_epoch - 1) * self.hparams.steps_per_epoch + self.step
        return min(done / max(total, 1), 1.0)

    def on_stage_start(self, stage, epoch=None):
        """Remember the epoch for the schedules."""
        self.current_epoch = epoch or 1

    def on_fit_batch_start(self, batch, should_step):
        """Set the learning rate of this step (see :func:`learning_rate`)."""
        lr = learning_rate(
            self.progress, self.hparams.lr, self.hparams.final_lr, self.hparams.warmup_fraction
        )
        for group in self.optimizer.param_groups:
            group["lr"] = lr

    def init_optimizers(self):
        """Optimise the trainable parameters only (teachers are excluded)."""
        params = [p for p in self.modules.parameters() if p.requires_grad]
        self.optimizer = self.opt_class(params)
        self.optimizers_dict = {"opt_class": self.optimizer}
        if self.checkpointer is not None:
            self.checkpointer.add_recoverable("optimizer", self.optimizer)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log the epoch's loss and keep the latest checkpoint."""
        if stage != sb.Stage.TRAIN:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        self.hparams.train_logger.log_stats(
            stats_meta={"epoch": epoch, "lr": lr}, train_stats={"loss": stage_loss}
        )
        # The epoch is complete: SpeechBrain would save its last step count and, on
        # resuming, count the next epoch's steps from there (pushing the schedules ahead).
        self.step = 0
        self.checkpointer.save_and_keep_only(meta={"loss": stage_loss, "epoch": epoch})


# -------------------------------------------------------------------------- encoder


class SSLEncoder(Encoder):
    """Self-supervised stage-1 encoder: networks, settings, training and embedding.

    The base of :class:`~camsat_lobes.encoders.dino.DINOEncoder` and
    :class:`~camsat_lobes.encoders.simclr.SimCLREncoder`, which set ``brain_class``
    and fill in :meth:`dataset`, :meth:`brain_modules`, :meth:`brain_hparams` and
    :attr:`inference_model`.

    Arguments
    ---------
    embedding_model : torch.nn.Module
        SpeechBrain embedding lobe called as ``model(features, lengths)``
        (ECAPA_TDNN, Xvector, ResNet, ...).
    head : torch.nn.Module
        Projection head used for training only.
    compute_features : torch.nn.Module, optional
        Waveform to features (default: 80 log-mel filter banks).
    mean_var_norm : torch.nn.Module, optional
        Feature normalisation (default: per-utterance mean subtraction).
    n_epochs : int
        Training epochs (one pass over the utterances each).
    batch_size : int
        Utterances per step.
    lr, final_lr : float
        Peak and final learning rates (Adam with weight decay).
    weight_decay : float
        Decoupled weight decay.
    warmup_fraction : float
        Fraction of the steps spent warming the learning rate up.
    global_seconds : float
        Length of the main crops.
    augmentation : dict, optional
        Keyword arguments of :func:`~camsat_lobes.encoders.augmentation.build_augmenter`.
    num_workers : int
        Data-loading processes.
    ckpt_interval_minutes : float
        Minutes between intra-epoch checkpoints (0: end of epoch only).
    sample_rate : int
        Sampling rate (Hz).

    Example
    -------
    >>> from speechbrain.lobes.models.ResNet import ResNet
    >>> network = ResNet(channels=[4, 4, 8, 8], block_sizes=[1, 1, 1, 1], lin_neurons=10)
    >>> SSLEncoder(network, torch.nn.Identity()).embedding_dim
    10
    """

    brain_class = SSLBrain

    def __init__(
        self,
        embedding_model,
        head,
        compute_features=None,
        mean_var_norm=None,
        n_epochs=10,
        batch_size=32,
        lr=1e-3,
        final_lr=1e-5,
        weight_decay=1e-4,
        warmup_fraction=0.05,
        global_seconds=2.0,
        augmentation=None,
        num_workers=0,
        ckpt_interval_minutes=0.0,
        sample_rate=16000,
    ):
        super().__init__(sample_rate)
        if compute_features is None:
            compute_features = sb.lobes.features.Fbank(n_mels=80, sample_rate=sample_rate)
        if mean_var_norm is None:
            mean_var_norm = sb.processing.features.InputNormalization(
                norm_type="sentence", std_norm=False
            )
        self.compute_features = compute_features
        self.mean_var_norm = mean_var_norm
        self.embedding_model = embedding_model
        self.head = head
        self.n_epochs = int(n_epochs)
        self.batch_size = int(batch_size)
        self.lr = lr
        self.final_lr = final_lr
        self.weight_decay = weight_decay
        self.warmup_fraction = warmup_fraction
        self.global_seconds = global_seconds
        self.augmentation = dict(augmentation or {})
        self.num_workers = num_workers
        self.ckpt_interval_minutes = ckpt_interval_minutes

    # -- pieces the methods fill in

    def dataset(self, train_manifest):
        """Training dataset of crops (see :func:`ssl_dataset`)."""
        return ssl_dataset(train_manifest, self.sample_rate, 2, self.global_seconds)

    def brain_modules(self):
        """Modules handed to the Brain (all are checkpointed)."""
        return {
            "compute_features": self.compute_features,
            "mean_var_norm": self.mean_var_norm,
            "embedding_model": self.embedding_model,
            "head": self.head,
        }

    def brain_hparams(self):
        """Method-specific hyperparameters handed to the Brain."""
        return {}

    @property
    def inference_model(self):
        """The network used by :meth:`embed`."""
        return self.embedding_model

    # -- interface

    def make_brain(self, save_folder, augmentation_sets=None, run_opts=None):
        """Build the Brain that trains this encoder, with its checkpointer and epoch counter.

        Arguments
        ---------
        save_folder : str or pathlib.Path
            Checkpoints go to ``<save_folder>/save``, the log to
            ``<save_folder>/train_log.txt``.
        augmentation_sets : dict, optional
            Offline noise/RIR/babble CSVs for the augmenter.
        run_opts : dict, optional
            SpeechBrain run options (``device``, ``precision``, ...).

        Returns
        -------
        SSLBrain
            The Brain (its ``hparams.epoch_counter`` is the checkpointed counter).

        Example
        -------
        >>> from speechbrain.lobes.models.Xvector import Xvector
        >>> from camsat_lobes.encoders.simclr import ProjectionHead, SimCLREncoder
        >>> network = Xvector(tdnn_channels=[8, 8, 8, 8, 16], lin_neurons=12, in_channels=80)
        >>> encoder = SimCLREncoder(network, ProjectionHead(12, 16, 8), n_epochs=3)
        >>> brain = encoder.make_brain(getfixture("tmp_path"), run_opts={"device": "cpu"})
        >>> type(brain).__name__, brain.hparams.epoch_counter.limit
        ('SimCLRBrain', 3)
        """
        save_folder = pathlib.Path(save_folder)
        save_folder.mkdir(parents=True, exist_ok=True)
        counter = EpochCounter(self.n_epochs)
        modules = self.brain_modules()
        recoverables = dict(modules, counter=counter)
        recoverables.update(
            {k: v for k, v in self.brain_hparams().items() if isinstance(v, torch.nn.Module)}
        )
        options = {"ckpt_interval_minutes": self.ckpt_interval_minutes}
        options.update(run_opts or {})
        hparams = {
            "augmenter": build_augmenter(
                augmentation_sets, sample_rate=self.sample_rate, **self.augmentation
            ),
            "lr": self.lr,
            "final_lr": self.final_lr,
            "warmup_fraction": self.warmup_fraction,
            "n_epochs": self.n_epochs,
            "steps_per_epoch": 1,
            "epoch_counter": counter,
            "train_logger": FileTrainLogger(save_folder / "train_log.txt"),
        }
        hparams.update(self.brain_hparams())
        lr, weight_decay = self.lr, self.weight_decay

        def optimizer(params):
            """AdamW over ``params`` with this encoder's rate and weight decay."""
            return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)

        return self.brain_class(
            modules=modules,
            opt_class=optimizer,
            hparams=hparams,
            run_opts=options,
            checkpointer=CompleteCheckpointer(save_folder / "save", recoverables=recoverables),
        )

    def fit(self, train_manifest, save_folder, augmentation_sets=None, run_opts=None):
        """Train without labels, resuming from (or loading) the checkpoints in ``save_folder``.

        Arguments
        ---------
        train_manifest : str or pathlib.Path
            Training manifest; only its audio columns are read.
        save_folder : str or pathlib.Path
            Checkpoints go to ``<save_folder>/save``, the log to
            ``<save_folder>/train_log.txt``.
        augmentation_sets : dict, optional
            Offline noise/RIR/babble CSVs for the augmenter.
        run_opts : dict, optional
            SpeechBrain run options (``device``, ``precision``, ...).

        Returns
        -------
        SSLEncoder
            ``self``, holding the trained weights.
        """
        dataset = self.dataset(train_manifest)
        if len(dataset) < 2:
            raise ValueError(
                f"Self-supervised training needs at least 2 utterances; {train_manifest} has "
                f"{len(dataset)}."
            )
        brain = self.make_brain(save_folder, augmentation_sets, run_opts)
        loader = brain.make_dataloader(
            dataset,
            stage=sb.Stage.TRAIN,
            batch_size=min(self.batch_size, len(dataset)),
            shuffle=True,
            drop_last=True,
            num_workers=self.num_workers,
            collate_fn=PaddedBatch,
        )
        brain.hparams.steps_per_epoch = len(loader)
        counter = brain.hparams.epoch_counter
        brain.fit(counter, loader)
        if counter.current < counter.limit:
            raise RuntimeError(
                f"Training stopped at epoch {counter.current} of {counter.limit}; run fit "
                f"again to resume from {pathlib.Path(save_folder) / 'save'}."
            )
        self.eval()
        return self

    @torch.no_grad()
    def embed(self, wavs, wav_lens=None):
        """Embed waveforms with the trained network (eval mode, no gradients).

        Padding never reaches the network (see
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
        >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
        >>> model = ECAPA_TDNN(80, lin_neurons=16, channels=[8, 8, 8, 8, 24], attention_channels=8)
        >>> encoder = SSLEncoder(model, torch.nn.Identity())
        >>> wavs = torch.randn(2, 8000)
        >>> wavs[1, 5000:] = 0.0
        >>> batched = encoder.embed(wavs, torch.tensor([1.0, 5000 / 8000]))
        >>> alone = encoder.embed(wavs[1:, :5000])
        >>> torch.allclose(batched[1:], alone, atol=1e-5)
        True
        """
        self.eval()
        wavs = wavs.to(self.device).float()
        return embed_unpadded(self._embed_batch, wavs, wav_lens)

    def _embed_batch(self, wavs, wav_lens):
        """Compute features, normalise and embed a batch taken as it is."""
        lengths = relative_lengths(wavs, wav_lens)
        feats = self.compute_features(wavs)
        feats = self.mean_var_norm(feats, lengths)
        return self.inference_model(feats, lengths).reshape(wavs.shape[0], -1)
