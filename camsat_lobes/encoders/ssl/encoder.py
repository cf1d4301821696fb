"""The base of the self-supervised stage-1 encoders: networks, settings, training.

:class:`SSLEncoder` holds the networks and the settings, builds the Brain
(:class:`~camsat_lobes.encoders.ssl.brain.SSLBrain` or a method's subclass) with its
augmenter, checkpointer and schedules, trains it (resuming from the checkpoints,
optionally averaging the last epochs) and embeds waveforms batch-independently.

Authors
 * camsat contributors 2026
"""

import functools
import pathlib

import speechbrain as sb
import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.utils.checkpoints import average_checkpoints
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

from camsat_lobes.checkpoints import CompleteCheckpointer
from camsat_lobes.encoders.augmentation import build_augmenter
from camsat_lobes.encoders.base import Encoder, embed_unpadded, relative_lengths
from camsat_lobes.encoders.ssl.brain import SSLBrain
from camsat_lobes.encoders.ssl.crops import ssl_dataset
from camsat_lobes.encoders.ssl.schedules import learning_rate
from camsat_lobes.seeding import seed_part


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
    opt_class : callable, optional
        ``opt_class(parameters)`` makes the optimiser (a yaml ``!name:`` partial,
        e.g. ``torch.optim.AdamW`` with its rate); default AdamW with ``lr`` and
        ``weight_decay``.
    lr_schedule : callable, optional
        ``lr_schedule(progress)`` gives the learning rate at a fraction of the training
        (e.g. a partial of :func:`learning_rate`); default :func:`learning_rate` from
        ``lr`` to ``final_lr`` with ``warmup_fraction`` of warm-up.
    lr, final_lr : float
        Peak and final learning rates of the defaults.
    weight_decay : float
        Decoupled weight decay of the default optimiser.
    warmup_fraction : float
        Fraction of the steps spent warming the learning rate up (default schedule).
    average_last : int
        Average the networks of the last this many epochs once training ends (1: keep
        the last epoch's), as DINO recipes average their last checkpoints.
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
        opt_class=None,
        lr_schedule=None,
        lr=1e-3,
        final_lr=1e-5,
        weight_decay=1e-4,
        warmup_fraction=0.05,
        average_last=1,
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
        if opt_class is None:
            opt_class = functools.partial(torch.optim.AdamW, lr=lr, weight_decay=weight_decay)
        if lr_schedule is None:
            lr_schedule = functools.partial(
                learning_rate, peak=lr, final=final_lr, warmup_fraction=warmup_fraction
            )
        self.opt_class = opt_class
        self.lr_schedule = lr_schedule
        if int(average_last) < 1:
            raise ValueError(f"average_last={average_last} must be at least 1")
        self.average_last = int(average_last)
        self.global_seconds = global_seconds
        self.augmentation = dict(augmentation or {})
        self.num_workers = num_workers
        self.ckpt_interval_minutes = ckpt_interval_minutes

    # -- pieces the methods fill in

    def dataset(self, train_manifest):
        """Training dataset of crops (see :func:`ssl_dataset`).

        Arguments
        ---------
        train_manifest : str or pathlib.Path
            Training manifest; only its audio columns are read.

        Returns
        -------
        speechbrain.dataio.dataset.DynamicItemDataset
            Two global crops of every utterance.
        """
        return ssl_dataset(train_manifest, self.sample_rate, 2, self.global_seconds)

    def brain_modules(self):
        """Modules handed to the Brain (all are checkpointed).

        Returns
        -------
        dict
            ``compute_features``, ``mean_var_norm``, ``embedding_model`` and ``head``.
        """
        return {
            "compute_features": self.compute_features,
            "mean_var_norm": self.mean_var_norm,
            "embedding_model": self.embedding_model,
            "head": self.head,
        }

    def brain_hparams(self):
        """Method-specific hyperparameters handed to the Brain.

        Returns
        -------
        dict
            Empty here; a method adds its own.
        """
        return {}

    @property
    def inference_model(self):
        """The network used by :meth:`embed`."""
        return self.embedding_model

    # -- interface

    def make_brain(self, save_folder, augmentation_sets=None, run_opts=None, seed=None):
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
        seed : int, optional
            Seed of each epoch's draws (with the epoch number).

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
            "lr_schedule": self.lr_schedule,
            "n_epochs": self.n_epochs,
            "average_last": self.average_last,
            "steps_per_epoch": 1,
            "epoch_counter": counter,
            "train_logger": FileTrainLogger(save_folder / "train_log.txt"),
            "seed": seed,
        }
        hparams.update(self.brain_hparams())
        return self.brain_class(
            modules=modules,
            opt_class=self.opt_class,
            hparams=hparams,
            run_opts=options,
            checkpointer=CompleteCheckpointer(save_folder / "save", recoverables=recoverables),
        )

    def fit(self, train_manifest, save_folder, augmentation_sets=None, run_opts=None, seed=None):
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
        seed : int, optional
            Seed of the training's draws (data order, crops, augmentations), and with
            the epoch number of each epoch's, so a resumed training draws as an
            uninterrupted one.

        Returns
        -------
        SSLEncoder
            ``self``, holding the trained weights.
        """
        if seed is not None:
            seed_part(seed)
        dataset = self.dataset(train_manifest)
        if len(dataset) < 2:
            raise ValueError(
                f"Self-supervised training needs at least 2 utterances; {train_manifest} has "
                f"{len(dataset)}."
            )
        brain = self.make_brain(save_folder, augmentation_sets, run_opts, seed)
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
        if self.average_last > 1:
            self._average_last_epochs(brain)
        self.eval()
        return self

    def _average_last_epochs(self, brain):
        """Replace the networks by the average of their last ``average_last`` epochs."""
        checkpoints = brain.checkpointer.find_checkpoints(max_num_checkpoints=self.average_last)
        for name, module in brain.modules.items():
            if any(True for _ in module.parameters()):
                module.load_state_dict(average_checkpoints(checkpoints, name))

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
