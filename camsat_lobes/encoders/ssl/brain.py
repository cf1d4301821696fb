"""The training loop shared by the self-supervised encoders.

:class:`SSLBrain` augments every crop with its own channel draw, turns it into
normalised filter banks, embeds it, and sets the learning rate of every step from
the schedule; each epoch ends with a checkpoint. A method's Brain
(:mod:`camsat_lobes.encoders.dino`, :mod:`camsat_lobes.encoders.simclr`) adds its
forward pass and loss.

Authors
 * camsat contributors 2026
"""

import speechbrain as sb
import torch

from camsat_lobes.distributed import DistributedBrain
from camsat_lobes.encoders.augmentation import augment_independently
from camsat_lobes.seeding import seed_part


class SSLBrain(DistributedBrain):
    """Shared training loop of the self-supervised encoders.

    Every crop gets its own channel draw (augmented in batches), is turned into filter
    banks, normalised per utterance and embedded. The learning rate follows a
    linear warm-up then a cosine decay over all steps. Each epoch ends with a
    checkpoint. Subclasses define ``compute_forward`` and ``compute_objectives``.

    Expected ``hparams``: ``augmenter``, ``lr_schedule``, ``n_epochs``,
    ``steps_per_epoch``, ``train_logger`` (optional: ``average_last``, ``seed``); modules
    ``compute_features``, ``mean_var_norm``, ``embedding_model`` and ``head``.
    :meth:`SSLEncoder.make_brain` builds it.

    Example
    -------
    >>> from speechbrain.lobes.models.Xvector import Xvector
    >>> from camsat_lobes.encoders.ssl import SSLEncoder
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
        """Filter banks, per-utterance normalisation and the embedding lobe.

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``.
        lengths : torch.Tensor
            Relative lengths.
        model : torch.nn.Module
            Embedding lobe called as ``model(features, lengths)``.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, dim)``.
        """
        return self.embed_features(self.features(wavs, lengths), lengths, model)

    def features(self, wavs, lengths):
        """Filter banks with per-utterance normalisation, shape ``(batch, frames, n_mels)``.

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``.
        lengths : torch.Tensor
            Relative lengths.

        Returns
        -------
        torch.Tensor
            The normalised features.
        """
        return self.modules.mean_var_norm(self.modules.compute_features(wavs), lengths)

    def embed_features(self, feats, lengths, model):
        """Embed normalised features with ``model``, shape ``(batch, dim)``.

        Arguments
        ---------
        feats : torch.Tensor
            Shape ``(batch, frames, n_mels)``.
        lengths : torch.Tensor
            Relative lengths.
        model : torch.nn.Module
            Embedding lobe called as ``model(features, lengths)``.

        Returns
        -------
        torch.Tensor
            The embeddings.
        """
        return model(feats, lengths).reshape(feats.shape[0], -1)

    @property
    def progress(self):
        """Fraction of the training done (0 at the first step, 1 at the last)."""
        total = self.hparams.n_epochs * self.hparams.steps_per_epoch
        done = (self.current_epoch - 1) * self.hparams.steps_per_epoch + self.step
        return min(done / max(total, 1), 1.0)

    def on_stage_start(self, stage, epoch=None):
        """Remember the epoch for the schedules and seed its draws (with a ``seed``).

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage that starts.
        epoch : int, optional
            Its epoch (counted from 1).
        """
        self.current_epoch = epoch or 1
        seed = getattr(self.hparams, "seed", None)
        if stage == sb.Stage.TRAIN and seed is not None:
            seed_part(seed, "epoch", self.current_epoch)

    def on_fit_batch_start(self, batch, should_step):
        """Set the learning rate of this step (``hparams.lr_schedule(progress)``).

        Arguments
        ---------
        batch : speechbrain.dataio.batch.PaddedBatch
            The batch (not used).
        should_step : bool
            Whether the optimiser steps after this batch (not used).
        """
        lr = self.hparams.lr_schedule(self.progress)
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
        """Log the epoch's loss and keep the latest checkpoint.

        Arguments
        ---------
        stage : speechbrain.Stage
            The stage that ends; only the training stage logs and saves.
        stage_loss : float
            Its mean loss.
        epoch : int, optional
            Its epoch.
        """
        if stage != sb.Stage.TRAIN:
            return
        lr = self.optimizer.param_groups[0]["lr"]
        self.hparams.train_logger.log_stats(
            stats_meta={"epoch": epoch, "lr": lr}, train_stats={"loss": stage_loss}
        )
        # The epoch is complete: SpeechBrain would save its last step count and, on
        # resuming, count the next epoch's steps from there (pushing the schedules ahead).
        self.step = 0
        self.checkpointer.save_and_keep_only(
            meta={"loss": stage_loss, "epoch": epoch},
            num_to_keep=getattr(self.hparams, "average_last", 1),
        )
