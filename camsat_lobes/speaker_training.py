"""Training a speaker-embedding network on pseudo-labels (stage 3 of the chain).

The network (ECAPA-TDNN by default) learns from segments whose class is the
cluster of the utterance they were cut from. The class weights live in the margin
loss (:mod:`camsat_lobes.margins`), so the loss is swapped by one line of
hyperparameters and AdaFace can see the feature norms. Optional i-mix / l-mix
regularisation (:mod:`camsat_lobes.mixup`) and margin warm-up come from the
hyperparameters as well, and so does loss gating (:mod:`camsat_lobes.loss_gating`),
which trains on the samples whose loss is low enough only.

Authors
 * camsat contributors 2026
"""

import csv
import logging

import numpy as np
import speechbrain as sb
import torch
from speechbrain.dataio.dataio import read_audio
from speechbrain.dataio.dataset import DynamicItemDataset

from camsat_lobes.distributed import DistributedBrain
from camsat_lobes.encoders.base import embed_unpadded
from camsat_lobes.encoders.ssl import random_crop_batch
from camsat_lobes.seeding import seed_part

logger = logging.getLogger(__name__)

__all__ = ["SpeakerBrain", "pseudo_label_datasets"]


def pseudo_label_datasets(segments_csv, pseudo_labels_csv, valid_fraction=0.05, seed=1234):
    r"""Build the training and validation sets of segments labelled by their utterance's cluster.

    Arguments
    ---------
    segments_csv : str or path
        Segment manifest (``train.csv`` from :func:`camsat_lobes.prepare.prepare_voxceleb`)
        with columns ID, duration, wav, start, stop, utt_id.
    pseudo_labels_csv : str or path
        ``pseudo_labels.csv`` with columns ID (utterance) and cluster. Cluster -1
        marks an utterance left out by the clusterer: none of its segments is in
        either set. Every utterance of ``segments_csv`` must have a row.
    valid_fraction : float
        Fraction of the kept utterances held out (all their segments) to watch the
        pseudo-label classification error.
    seed : int
        Seed of the held-out draw.

    Returns
    -------
    train_data : DynamicItemDataset
    valid_data : DynamicItemDataset
        Items ``id``, ``sig`` (the segment's waveform) and ``label`` (a long tensor).
    n_classes : int
        Number of classes: the largest kept cluster index plus one (the clusters
        are expected to be numbered 0..K-1; -1 is no class).

    Example
    -------
    >>> import tempfile, pathlib, soundfile
    >>> tmp = pathlib.Path(tempfile.mkdtemp())
    >>> soundfile.write(tmp / "a.wav", np.zeros(32000, dtype="float32"), 16000)
    >>> _ = (tmp / "seg.csv").write_text(
    ...     "ID,duration,wav,start,stop,spk_id,utt_id\n"
    ...     f"u1_0_16000,1.0,{tmp / 'a.wav'},0,16000,s1,u1\n"
    ...     f"u2_0_16000,1.0,{tmp / 'a.wav'},16000,32000,s2,u2\n")
    >>> _ = (tmp / "labels.csv").write_text("ID,cluster\nu1,0\nu2,3\n")
    >>> train, valid, n = pseudo_label_datasets(tmp / "seg.csv", tmp / "labels.csv", 0.0)
    >>> n, len(train), train[0]["label"].item(), train[0]["sig"].shape
    (4, 2, 0, torch.Size([16000]))
    >>> _ = (tmp / "labels.csv").write_text("ID,cluster\nu1,-1\nu2,1\n")  # u1 left out
    >>> train, valid, n = pseudo_label_datasets(tmp / "seg.csv", tmp / "labels.csv", 0.0)
    >>> n, len(train), train[0]["id"]
    (2, 1, 'u2_0_16000')
    """
    with open(pseudo_labels_csv, newline="") as f:
        cluster_of = {row["ID"]: int(row["cluster"]) for row in csv.DictReader(f)}
    if not cluster_of:
        raise ValueError(f"{pseudo_labels_csv} holds no pseudo-labels")
    data = DynamicItemDataset.from_csv(str(segments_csv))
    missing = sorted({data.data[key]["utt_id"] for key in data.data_ids} - cluster_of.keys())
    if missing:
        raise ValueError(
            f"{len(missing)} utterances of {segments_csv} have no pseudo-label in "
            f"{pseudo_labels_csv} (first: {missing[0]}); re-run the clustering stage"
        )
    bad = next((utt for utt, cluster in cluster_of.items() if cluster < -1), None)
    if bad is not None:
        raise ValueError(
            f"{pseudo_labels_csv}: utterance {bad} has cluster {cluster_of[bad]}; cluster ids "
            "are >= 0 and -1 marks an utterance left out"
        )
    kept = {utt for utt, cluster in cluster_of.items() if cluster >= 0}
    if not kept:
        raise ValueError(
            f"every utterance of {pseudo_labels_csv} has cluster -1 (left out): there is "
            "nothing to train on; relax the clusterer's hygiene (size range, confidence)"
        )

    @sb.utils.data_pipeline.takes("wav", "start", "stop")
    @sb.utils.data_pipeline.provides("sig")
    def audio_pipeline(wav, start, stop):
        """Load the segment's samples."""
        return read_audio({"file": wav, "start": int(start), "stop": int(stop)})

    @sb.utils.data_pipeline.takes("utt_id")
    @sb.utils.data_pipeline.provides("label")
    def label_pipeline(utt_id):
        """Class of the segment: the cluster of its utterance."""
        return torch.LongTensor([cluster_of[utt_id]])

    sb.dataio.dataset.add_dynamic_item([data], audio_pipeline)
    sb.dataio.dataset.add_dynamic_item([data], label_pipeline)
    sb.dataio.dataset.set_output_keys([data], ["id", "sig", "label"])

    utterances = sorted({data.data[key]["utt_id"] for key in data.data_ids} & kept)
    rng = np.random.default_rng(seed)
    n_valid = int(round(valid_fraction * len(utterances)))
    if valid_fraction > 0 and len(utterances) > 1:
        n_valid = min(max(n_valid, 1), len(utterances) - 1)  # keep both sets non-empty
    held_out = (
        set(rng.choice(utterances, size=n_valid, replace=False).tolist()) if n_valid else set()
    )
    train_data = data.filtered_sorted(
        key_test={"utt_id": lambda u: u in kept and u not in held_out}
    )
    valid_data = data.filtered_sorted(key_test={"utt_id": lambda u: u in held_out})
    return train_data, valid_data, max(cluster_of[u] for u in kept) + 1


class SpeakerBrain(DistributedBrain):
    """Speaker-embedding network trained on (pseudo-)labels with a margin loss.

    Modules: ``compute_features`` (e.g. Fbank), ``mean_var_norm``,
    ``embedding_model`` and ``speaker_loss`` (a :mod:`camsat_lobes.margins` loss
    that owns the class weights). Optional hyperparameters: ``train_crop_seconds``
    (train on one random crop of that length per segment and epoch, at a fresh
    position every time), ``wav_augment`` (a SpeechBrain ``Augmenter``), ``mixup``
    (an i-mix or l-mix component of :mod:`camsat_lobes.mixup`), ``lr_annealing``,
    ``epoch_counter``, ``seed`` (each training epoch then reseeds the global
    generators from the seed and the epoch number, so the crops, augmentations and
    mixing partners of an epoch are the same whether the run was resumed or not)
    and ``loss_gate`` (a :class:`~camsat_lobes.loss_gating.LossGate`: after its
    warm-up the training loss is the mean over the samples it keeps, and the share
    kept in each epoch is logged with the train stats as ``kept_fraction``; it
    cannot be combined with ``mixup``, whose loss mixes two samples' targets).

    Once trained it is also an embedding extractor: :meth:`embed` maps a batch of
    waveforms to embeddings, so it can serve as the encoder of the next round.

    Example
    -------
    >>> from speechbrain.lobes.features import Fbank
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> from camsat_lobes.margins import AAMSoftmax
    >>> modules = {
    ...     "compute_features": Fbank(n_mels=20),
    ...     "mean_var_norm": sb.processing.features.InputNormalization(norm_type="sentence"),
    ...     "embedding_model": ECAPA_TDNN(20, channels=[16, 16, 16, 16, 48], lin_neurons=8),
    ...     "speaker_loss": AAMSoftmax(embedding_dim=8, n_classes=3),
    ... }
    >>> brain = SpeakerBrain(modules, torch.optim.Adam)
    >>> brain.embed(torch.randn(2, 16000), torch.ones(2)).shape
    torch.Size([2, 8])
    """

    sample_rate = 16000

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        hparams = getattr(self, "hparams", None)
        gate = getattr(hparams, "loss_gate", None)
        if gate is not None and getattr(hparams, "mixup", None) is not None:
            raise ValueError(
                "loss_gate and mixup are both set: a mixed sample's loss mixes two samples' "
                "targets, so the gate cannot tell a wrong label from a hard mix; set one of "
                "them to null"
            )

    @property
    def speaker_loss(self):
        """The margin loss itself (unwrapped when DDP wraps it)."""
        loss = self.modules.speaker_loss
        return getattr(loss, "module", loss)

    @property
    def embedding_dim(self):
        """Size of the embeddings the network produces."""
        return self.speaker_loss.embedding_dim

    def _features(self, wavs, lens):
        feats = self.modules.compute_features(wavs)
        return self.modules.mean_var_norm(feats, lens)

    @torch.no_grad()
    def embed(self, wavs, wav_lens):
        """Embed a batch of waveforms (eval mode, no augmentation).

        Padding never reaches the network (see
        :func:`~camsat_lobes.encoders.base.embed_unpadded`), so an utterance gets the
        same embedding alone as in any batch.

        Arguments
        ---------
        wavs : torch.Tensor
            (B, T) zero-padded waveforms at 16 kHz.
        wav_lens : torch.Tensor
            (B,) relative lengths in (0, 1].

        Returns
        -------
        torch.Tensor
            (B, D) embeddings.

        Example
        -------
        >>> brain = _demo_brain()  # the class example's tiny network
        >>> wavs = torch.randn(2, 16000)
        >>> wavs[1, 9000:] = 0.0
        >>> batched = brain.embed(wavs, torch.tensor([1.0, 9000 / 16000]))
        >>> alone = brain.embed(wavs[1:, :9000], torch.ones(1))
        >>> torch.allclose(batched[1:], alone, atol=1e-5)
        True
        """
        self.modules.eval()
        return embed_unpadded(self._embed_batch, wavs.to(self.device), wav_lens)

    @torch.no_grad()
    def imprint_class_weights(self, dataset, batch_size=32):
        """Point every class weight at the mean direction of its training embeddings.

        A new margin loss starts from random class weights, so its first steps send
        large gradients into a network that already embeds speakers (started from the
        stage-1 encoder) and pull its embeddings towards arbitrary directions. Imprinted
        weights (each class's mean unit-norm embedding under the current network, the
        row's norm kept) start the loss where the network already is. Classes without a
        segment in ``dataset`` keep their random weights.

        Arguments
        ---------
        dataset : speechbrain.dataio.dataset.DynamicItemDataset
            Items with ``sig`` (waveform) and ``label`` (class index), e.g. the
            training set of :func:`pseudo_label_datasets`.
        batch_size : int
            Segments per forward pass.

        Returns
        -------
        int
            Number of classes whose weights were imprinted.

        Example
        -------
        >>> from speechbrain.dataio.dataset import DynamicItemDataset
        >>> brain = _demo_brain()  # the class example's tiny network
        >>> items = {
        ...     f"u{i}": {"sig": torch.randn(8000), "label": torch.LongTensor([i % 2])}
        ...     for i in range(4)
        ... }
        >>> data = DynamicItemDataset(items, output_keys=["sig", "label"])
        >>> brain.imprint_class_weights(data)
        2
        >>> unit = torch.nn.functional.normalize
        >>> class0_wavs = torch.stack([items["u0"]["sig"], items["u2"]["sig"]])
        >>> class0 = brain.embed(class0_wavs, torch.ones(2))
        >>> mean_direction = unit(unit(class0, dim=1).sum(dim=0), dim=0)
        >>> torch.allclose(unit(brain.speaker_loss.weight[0], dim=0), mean_direction, atol=1e-5)
        True
        """
        loss = self.speaker_loss
        sums = torch.zeros(loss.weight.shape, dtype=torch.float32, device=self.device)
        loader = sb.dataio.dataloader.make_dataloader(dataset, batch_size=batch_size)
        for batch in loader:
            wavs, lens = batch.sig
            embeddings = torch.nn.functional.normalize(self.embed(wavs, lens).float(), dim=1)
            labels = batch.label.data.reshape(-1).to(self.device)
            sums.index_add_(0, labels, embeddings)
        seen = sums.norm(dim=1) > 0
        norms = loss.weight.data[seen].norm(dim=1, keepdim=True)
        directions = torch.nn.functional.normalize(sums[seen], dim=1)
        loss.weight.data[seen] = (directions * norms).to(loss.weight.dtype)
        return int(seen.sum())

    def _embed_batch(self, wavs, wav_lens):
        """Compute features and embeddings of a batch taken as it is."""
        wav_lens = wav_lens.to(self.device)
        emb = self.modules.embedding_model(self._features(wavs, wav_lens), wav_lens)
        return emb.squeeze(1)

    def compute_forward(self, batch, stage):
        """Crop and augment (training only), compute features, mix if asked, embed."""
        batch = batch.to(self.device)
        wavs, lens = batch.sig
        labels = batch.label.data.squeeze(-1)
        crop_seconds = getattr(self.hparams, "train_crop_seconds", None)
        if stage == sb.Stage.TRAIN and crop_seconds:
            wavs, lens = random_crop_batch(wavs, lens, int(round(crop_seconds * self.sample_rate)))
        augment = getattr(self.hparams, "wav_augment", None)
        if stage == sb.Stage.TRAIN and augment is not None:
            wavs, lens = augment(wavs, lens)
            labels = augment.replicate_labels(labels)
        feats = self._features(wavs, lens)
        mixup = getattr(self.hparams, "mixup", None)
        if stage == sb.Stage.TRAIN and mixup is not None:
            embeddings, mixed = mixup.forward_mixed(
                self.modules.embedding_model, feats, lens, labels
            )
            return embeddings, mixed
        return self.modules.embedding_model(feats, lens), labels

    def compute_objectives(self, predictions, batch, stage):
        """Margin loss on the (possibly mixed or gated) targets; track the classification error."""
        embeddings, targets = predictions
        if stage == sb.Stage.TRAIN and getattr(self.hparams, "mixup", None) is not None:
            return targets.loss(self.modules.speaker_loss, embeddings)
        gate = getattr(self.hparams, "loss_gate", None)
        if stage == sb.Stage.TRAIN and gate is not None:
            losses = self.modules.speaker_loss(embeddings, targets, reduction="none")
            keep = gate(losses)
            # No sample kept: a zero loss that still reaches every parameter's graph.
            return losses[keep].mean() if keep.any() else losses.sum() * 0.0
        loss = self.modules.speaker_loss(embeddings, targets)
        if stage != sb.Stage.TRAIN:
            predicted = self.speaker_loss.scores(embeddings).argmax(dim=-1)
            self.errors.append((predicted != targets).float().mean().item())
        return loss

    def on_stage_start(self, stage, epoch=None):
        """Seed the epoch's draws, set the margin warm-up and reset the error tracker."""
        self.errors = []
        if stage == sb.Stage.TRAIN and epoch is not None:
            seed = getattr(self.hparams, "seed", None)
            if seed is not None:
                seed_part(seed, "epoch", epoch)
            self.speaker_loss.set_epoch(epoch)
            gate = getattr(self.hparams, "loss_gate", None)
            if gate is not None:
                gate.set_epoch(epoch)

    def on_stage_end(self, stage, stage_loss, epoch=None):
        """Log the epoch, anneal the learning rate and checkpoint after validation."""
        if stage == sb.Stage.TRAIN:
            self.train_loss = stage_loss
            gate = getattr(self.hparams, "loss_gate", None)
            if gate is not None:
                self.train_kept_fraction = gate.kept_fraction
                logger.info(
                    "epoch %s: the loss gate kept %.3f of the samples", epoch, gate.kept_fraction
                )
            return
        stats = {"loss": stage_loss, "error": float(np.mean(self.errors)) if self.errors else 0.0}
        if stage == sb.Stage.VALID:
            annealing = getattr(self.hparams, "lr_annealing", None)
            lr = self.optimizer.param_groups[0]["lr"]
            if annealing is not None:
                _, lr = annealing(epoch)
                sb.nnet.schedulers.update_learning_rate(self.optimizer, lr)
            train_logger = getattr(self.hparams, "train_logger", None)
            if train_logger is not None:
                train_logger.log_stats(
                    stats_meta={"epoch": epoch, "lr": lr},
                    train_stats=self._train_stats(),
                    valid_stats=stats,
                )
            if self.checkpointer is not None:
                self.checkpointer.save_and_keep_only(meta=stats, min_keys=["loss"])

    def _train_stats(self):
        """Return the last training epoch's stats: its loss, and the share kept when gated."""
        stats = {"loss": self.train_loss}
        kept_fraction = getattr(self, "train_kept_fraction", None)
        if getattr(self.hparams, "loss_gate", None) is not None and kept_fraction is not None:
            stats["kept_fraction"] = kept_fraction
        return stats


def _demo_brain():
    """Return the tiny :class:`SpeakerBrain` of the class example (for the method examples)."""
    from speechbrain.lobes.features import Fbank
    from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

    from camsat_lobes.margins import AAMSoftmax

    modules = {
        "compute_features": Fbank(n_mels=20),
        "mean_var_norm": sb.processing.features.InputNormalization(norm_type="sentence"),
        "embedding_model": ECAPA_TDNN(20, channels=[16, 16, 16, 16, 48], lin_neurons=8),
        "speaker_loss": AAMSoftmax(embedding_dim=8, n_classes=3),
    }
    return SpeakerBrain(modules, torch.optim.Adam)
