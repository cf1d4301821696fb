"""Self-supervised speaker encoders: DINO and SimCLR over SpeechBrain embedding lobes.

Any SpeechBrain embedding lobe (ECAPA-TDNN, x-vector TDNN, ResNet) is trained
without labels on random crops of the training utterances:

* **DINO** (self-distillation): a student network and an exponential-moving-average
  teacher see independently augmented global and local crops of one utterance;
  the student learns to predict the teacher's centred and sharpened distribution
  over learnable prototypes.
* **SimCLR** (contrastive): two independently augmented crops of one utterance are
  positives, the other crops of the batch negatives (NT-Xent). Optionally, once the
  embeddings are meaningful, the nearest neighbour of a crop in a queue of crops
  from *other* utterances serves as an extra positive, which brings different
  utterances of the same (presumed) speaker together.

The data pipeline (:func:`ssl_dataset`) keeps only the audio columns of the
manifest, so speaker labels are never read.
"""

import copy
import logging
import math
import pathlib

import speechbrain as sb
import torch
import torch.nn.functional as F
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.data_pipeline import provides, takes
from speechbrain.utils.epoch_loop import EpochCounter
from speechbrain.utils.train_logger import FileTrainLogger

from camsat_lobes.checkpoints import CompleteCheckpointer
from camsat_lobes.clustering.losses import contrastive_loss
from camsat_lobes.distributed import DistributedBrain
from camsat_lobes.encoders.augmentation import augment_independently, build_augmenter
from camsat_lobes.encoders.base import Encoder, relative_lengths
from camsat_lobes.encoders.data import load_segment, read_audio_columns

logger = logging.getLogger(__name__)

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
        signal = load_segment(wav, start, stop)
        yield random_crops(signal, n_global, global_samples)
        if n_local > 0:
            yield random_crops(signal, n_local, local_samples)

    keys = ["id", "index", "global_crops"] + (["local_crops"] if n_local > 0 else [])
    return DynamicItemDataset(data, dynamic_items=[crops_pipeline], output_keys=keys)


# ---------------------------------------------------------------------------- heads


class DINOHead(torch.nn.Module):
    """DINO projection head: MLP, L2-normalised bottleneck, cosine prototypes.

    Arguments
    ---------
    input_size : int
        Embedding size.
    n_prototypes : int
        Number of output prototypes (soft pseudo-classes).
    hidden_size : int
        Width of the hidden layers.
    bottleneck_size : int
        Size of the normalised bottleneck.
    n_layers : int
        Number of linear layers of the MLP (at least 1).

    Example
    -------
    >>> head = DINOHead(16, n_prototypes=32, hidden_size=24, bottleneck_size=8)
    >>> head(torch.randn(5, 16)).shape
    torch.Size([5, 32])
    """

    def __init__(
        self, input_size, n_prototypes=1024, hidden_size=512, bottleneck_size=128, n_layers=3
    ):
        super().__init__()
        layers, size = [], input_size
        for _ in range(n_layers - 1):
            layers += [torch.nn.Linear(size, hidden_size), torch.nn.GELU()]
            size = hidden_size
        layers.append(torch.nn.Linear(size, bottleneck_size))
        self.mlp = torch.nn.Sequential(*layers)
        self.prototypes = torch.nn.Parameter(torch.randn(n_prototypes, bottleneck_size) * 0.02)

    def forward(self, embeddings):
        """Return prototype scores (cosines), shape ``(batch, n_prototypes)``."""
        z = F.normalize(self.mlp(embeddings), dim=-1)
        return z @ F.normalize(self.prototypes, dim=-1).t()


class ProjectionHead(torch.nn.Module):
    """SimCLR projection head (Linear-BatchNorm-ReLU blocks then Linear).

    Arguments
    ---------
    input_size : int
        Embedding size.
    hidden_size : int
        Width of the hidden layers.
    output_size : int
        Size of the projection.
    n_layers : int
        Number of linear layers (1 gives a plain linear projection).

    Example
    -------
    >>> ProjectionHead(16, 32, 8)(torch.randn(4, 16)).shape
    torch.Size([4, 8])
    """

    def __init__(self, input_size, hidden_size=512, output_size=128, n_layers=2):
        super().__init__()
        layers, size = [], input_size
        for _ in range(n_layers - 1):
            layers += [
                torch.nn.Linear(size, hidden_size),
                torch.nn.BatchNorm1d(hidden_size),
                torch.nn.ReLU(),
            ]
            size = hidden_size
        layers.append(torch.nn.Linear(size, output_size))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, embeddings):
        """Return projections, shape ``(batch, output_size)``."""
        return self.mlp(embeddings)


# --------------------------------------------------------------------------- losses


class DINOLoss(torch.nn.Module):
    """Cross-entropy between sharpened teacher and student prototype distributions.

    The teacher scores are centred by a running mean (``center``, averaged over all
    processes in distributed training) and sharpened by a low temperature, which
    together prevent collapse.

    Arguments
    ---------
    n_prototypes : int
        Size of the prototype distributions.
    student_temperature : float
        Softmax temperature of the student.
    teacher_temperature : float
        Softmax temperature of the teacher (lower: sharper).
    center_momentum : float
        Momentum of the running centre.

    Example
    -------
    >>> loss_fn = DINOLoss(8)
    >>> student = [torch.randn(4, 8) for _ in range(3)]
    >>> teacher = [torch.randn(4, 8) for _ in range(2)]
    >>> float(loss_fn(student, teacher)) > 0
    True
    """

    def __init__(
        self, n_prototypes, student_temperature=0.1, teacher_temperature=0.04, center_momentum=0.9
    ):
        super().__init__()
        self.student_temperature = student_temperature
        self.teacher_temperature = teacher_temperature
        self.center_momentum = center_momentum
        self.register_buffer("center", torch.zeros(1, n_prototypes))

    def forward(self, student_scores, teacher_scores):
        """Average loss over all (teacher crop, other student crop) pairs.

        Arguments
        ---------
        student_scores : list of torch.Tensor
            One ``(batch, n_prototypes)`` tensor per crop; the first
            ``len(teacher_scores)`` crops are the ones the teacher saw.
        teacher_scores : list of torch.Tensor
            One tensor per global crop.

        Returns
        -------
        torch.Tensor
            Scalar loss.
        """
        teacher_probs = [
            F.softmax((t.detach() - self.center) / self.teacher_temperature, dim=-1)
            for t in teacher_scores
        ]
        student_logp = [F.log_softmax(s / self.student_temperature, dim=-1) for s in student_scores]
        total, n_terms = 0.0, 0
        for i, probs in enumerate(teacher_probs):
            for j, logp in enumerate(student_logp):
                if i == j:
                    continue
                total = total + torch.sum(-probs * logp, dim=-1).mean()
                n_terms += 1
        self.update_center(torch.cat([t.detach() for t in teacher_scores]))
        return total / max(n_terms, 1)

    @torch.no_grad()
    def update_center(self, teacher_scores):
        """Move the centre towards the mean teacher score of this batch."""
        batch_sum = teacher_scores.sum(dim=0, keepdim=True)
        count = torch.tensor(float(teacher_scores.shape[0]), device=teacher_scores.device)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(batch_sum)
            torch.distributed.all_reduce(count)
        self.center.mul_(self.center_momentum).add_(
            batch_sum / count, alpha=1 - self.center_momentum
        )


def nt_xent(anchors, positives, temperature=0.1):
    """Symmetric NT-Xent loss: row ``i`` of both inputs is a positive pair.

    Every other row of either input is a negative.

    Arguments
    ---------
    anchors, positives : torch.Tensor
        Shape ``(batch, dim)``; need not be normalised.
    temperature : float
        Softmax temperature on cosine similarities.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> z = torch.randn(6, 4)
    >>> bool(nt_xent(z, z) < nt_xent(z, torch.randn(6, 4)))
    True
    """
    # The two-view case of the supervised contrastive loss, each pair its own class.
    pairs = torch.stack([anchors, positives], dim=1)
    return contrastive_loss(pairs, torch.arange(len(pairs), device=pairs.device), temperature)


# --------------------------------------------------------------------------- brains


def cosine_schedule(progress, start, end):
    """Cosine interpolation from ``start`` (progress 0) to ``end`` (progress 1).

    Example
    -------
    >>> [cosine_schedule(p, 1.0, 0.0) for p in (0.0, 0.5, 1.0)]
    [1.0, 0.5, 0.0]
    """
    progress = min(max(progress, 0.0), 1.0)
    return end + (start - end) * 0.5 * (1 + math.cos(math.pi * progress))


class SSLBrain(DistributedBrain):
    """Shared training loop of the self-supervised encoders.

    Crops are augmented one by one (a fresh channel per crop), turned into filter
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
    >>> brain = SimCLREncoder(network, ProjectionHead(12, 16, 8)).make_brain(
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
        feats = self.modules.compute_features(wavs)
        feats = self.modules.mean_var_norm(feats, lengths)
        return model(feats, lengths).reshape(wavs.shape[0], -1)

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
        """Set the learning rate of this step (warm-up then cosine decay)."""
        warmup = self.hparams.warmup_fraction
        progress = self.progress
        if progress < warmup:
            lr = self.hparams.lr * (progress / warmup + 1e-3)
        else:
            lr = cosine_schedule(
                (progress - warmup) / max(1 - warmup, 1e-8), self.hparams.lr, self.hparams.final_lr
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


class DINOBrain(SSLBrain):
    """DINO self-distillation: student on all crops, EMA teacher on global crops.

    Extra ``hparams``: ``dino_loss`` (:class:`DINOLoss`), ``teacher_momentum``
    (start of the cosine schedule towards 1); extra modules ``teacher_model`` and
    ``teacher_head`` (frozen, updated as moving averages of the student).

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> network = ECAPA_TDNN(80, lin_neurons=8, channels=[8, 8, 8, 8, 24], attention_channels=8)
    >>> encoder = DINOEncoder(network, DINOHead(8, 16, 8, 4), n_local=2)
    >>> brain = encoder.make_brain(getfixture("tmp_path"), run_opts={"device": "cpu"})
    >>> batch = PaddedBatch([{"id": f"u{i}", "index": i, "global_crops": torch.randn(2, 3200),
    ...                       "local_crops": torch.randn(2, 1600)} for i in range(3)])
    >>> brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    >>> student, teacher = brain.compute_forward(batch, sb.Stage.TRAIN)
    >>> len(student), len(teacher), tuple(student[0].shape)
    (4, 2, (3, 16))
    """

    def compute_forward(self, batch, stage):
        """Embed all crops with the student and the global crops with the teacher."""
        global_crops = batch.global_crops.data
        batch_size, n_global, n_samples = global_crops.shape
        wavs = global_crops.transpose(0, 1).reshape(-1, n_samples).to(self.device)
        lengths = torch.ones(wavs.shape[0], device=self.device)
        wavs, lengths = augment_independently(self.hparams.augmenter, wavs, lengths)
        student_embeddings = self.embed_waveforms(wavs, lengths, self.modules.embedding_model)
        student = [self.modules.head(student_embeddings)]
        if hasattr(batch, "local_crops"):
            local = self.embed_crops(batch.local_crops.data, self.modules.embedding_model, True)
            student.append(self.modules.head(torch.cat(local)))
        with torch.no_grad():
            teacher = self.modules.teacher_head(
                self.embed_waveforms(wavs, lengths, self.modules.teacher_model)
            )
        student = [chunk for scores in student for chunk in scores.split(batch_size)]
        return student, list(teacher.split(batch_size))

    def compute_objectives(self, predictions, batch, stage):
        """DINO loss between teacher and student distributions."""
        student, teacher = predictions
        return self.hparams.dino_loss(student, teacher)

    def on_fit_batch_end(self, batch, outputs, loss, should_step):
        """Move the teacher towards the student (cosine momentum schedule)."""
        if not should_step:
            return
        momentum = cosine_schedule(self.progress, self.hparams.teacher_momentum, 1.0)
        with torch.no_grad():
            for student, teacher in (
                (self.modules.embedding_model, self.modules.teacher_model),
                (self.modules.head, self.modules.teacher_head),
            ):
                for p_s, p_t in zip(student.parameters(), teacher.parameters()):
                    p_t.mul_(momentum).add_(p_s.detach(), alpha=1 - momentum)


class SimCLRBrain(SSLBrain):
    """SimCLR: NT-Xent between two augmented crops of each utterance.

    Extra ``hparams``: ``temperature``; ``nn_weight`` and ``nn_start_epoch`` for
    nearest-neighbour positives from a queue of ``queue_size`` crops of other
    utterances (``nn_weight: 0`` disables them).

    Example
    -------
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain.lobes.models.Xvector import Xvector
    >>> network = Xvector(tdnn_channels=[8, 8, 8, 8, 16], lin_neurons=12, in_channels=80)
    >>> encoder = SimCLREncoder(network, ProjectionHead(12, 16, 8))
    >>> brain = encoder.make_brain(getfixture("tmp_path"), run_opts={"device": "cpu"})
    >>> batch = PaddedBatch([{"id": f"u{i}", "index": i, "global_crops": torch.randn(2, 3200)}
    ...                      for i in range(4)])
    >>> brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    >>> outputs = brain.compute_forward(batch, sb.Stage.TRAIN)
    >>> float(brain.compute_objectives(outputs, batch, sb.Stage.TRAIN)) > 0
    True
    """

    def compute_forward(self, batch, stage):
        """Project both crops of every utterance."""
        first, second = self.embed_crops(
            batch.global_crops.data[:, :2], self.modules.embedding_model, True
        )
        both = self.modules.head(torch.cat([first, second]))
        return both.chunk(2)

    def compute_objectives(self, predictions, batch, stage):
        """NT-Xent, plus the nearest-neighbour term once it is switched on."""
        first, second = predictions
        temperature = self.hparams.temperature
        loss = nt_xent(first, second, temperature)
        weight = self.hparams.nn_weight
        index = batch.index.to(self.device)
        if weight > 0:
            neighbours = self.nearest_in_queue(first.detach(), index)
            if neighbours is not None and self.current_epoch >= self.hparams.nn_start_epoch:
                loss = (1 - weight) * loss + weight * nt_xent(neighbours, second, temperature)
            self.enqueue(second.detach(), index)
        return loss

    def nearest_in_queue(self, queries, index):
        """Nearest queued projection from another utterance for every query."""
        queue = getattr(self, "queue", None)
        if queue is None or queue.shape[0] < queries.shape[0]:
            return None
        sims = F.normalize(queries, dim=-1) @ queue.t()
        sims = sims.masked_fill(index.unsqueeze(1) == self.queue_index.unsqueeze(0), float("-inf"))
        return queue[sims.argmax(dim=1)]

    def enqueue(self, projections, index):
        """Add projections to the first-in first-out queue."""
        projections = F.normalize(projections, dim=-1)
        if getattr(self, "queue", None) is None:
            self.queue, self.queue_index = projections, index
        else:
            self.queue = torch.cat([projections, self.queue])[: self.hparams.queue_size]
            self.queue_index = torch.cat([index, self.queue_index])[: self.hparams.queue_size]


# ------------------------------------------------------------------------- encoders


class SSLEncoder(Encoder):
    """Self-supervised stage-1 encoder (base of :class:`DINOEncoder`, :class:`SimCLREncoder`).

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
    >>> encoder = SimCLREncoder(network, torch.nn.Identity())
    >>> isinstance(encoder, SSLEncoder), encoder.embedding_dim
    (True, 10)
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

    # -- pieces the subclasses fill in

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

        Arguments
        ---------
        wavs : torch.Tensor
            Shape ``(batch, time)``.
        wav_lens : torch.Tensor, optional
            Relative lengths.

        Returns
        -------
        torch.Tensor
            Shape ``(batch, embedding_dim)``.
        """
        self.eval()
        wavs = wavs.to(self.device).float()
        lengths = relative_lengths(wavs, wav_lens)
        feats = self.compute_features(wavs)
        feats = self.mean_var_norm(feats, lengths)
        return self.inference_model(feats, lengths).reshape(wavs.shape[0], -1)


class DINOEncoder(SSLEncoder):
    """DINO-trained encoder (student and EMA teacher; the teacher embeds).

    Arguments
    ---------
    embedding_model : torch.nn.Module
        Embedding lobe (the student; the teacher is a copy of it).
    head : DINOHead
        Student head (the teacher's is a copy).
    n_local : int
        Short crops per utterance (seen by the student only).
    local_seconds : float
        Length of the short crops.
    student_temperature, teacher_temperature, center_momentum : float
        See :class:`DINOLoss`.
    teacher_momentum : float
        Initial EMA momentum of the teacher (rises to 1 by the end).
    embed_with_teacher : bool
        Whether :meth:`embed` uses the teacher (usually the better network).
    **kwargs
        The arguments of :class:`SSLEncoder`.

    Example
    -------
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> model = ECAPA_TDNN(80, lin_neurons=16, channels=[8, 8, 8, 8, 24], attention_channels=8)
    >>> encoder = DINOEncoder(model, DINOHead(16, 32, 16, 8))
    >>> encoder.embed(torch.randn(2, 8000)).shape
    torch.Size([2, 16])
    """

    brain_class = DINOBrain

    def __init__(
        self,
        embedding_model,
        head,
        n_local=4,
        local_seconds=1.0,
        student_temperature=0.1,
        teacher_temperature=0.04,
        center_momentum=0.9,
        teacher_momentum=0.996,
        embed_with_teacher=True,
        **kwargs,
    ):
        super().__init__(embedding_model, head, **kwargs)
        if not isinstance(getattr(head, "prototypes", None), torch.Tensor):
            raise TypeError(
                f"DINOEncoder needs a head with a `prototypes` tensor (e.g. DINOHead), got "
                f"{type(head).__name__}."
            )
        self.teacher_model = copy.deepcopy(embedding_model)
        self.teacher_head = copy.deepcopy(head)
        for param in list(self.teacher_model.parameters()) + list(self.teacher_head.parameters()):
            param.requires_grad_(False)
        self.dino_loss = DINOLoss(
            head.prototypes.shape[0], student_temperature, teacher_temperature, center_momentum
        )
        self.n_local = int(n_local)
        self.local_seconds = local_seconds
        self.teacher_momentum = teacher_momentum
        self.embed_with_teacher = embed_with_teacher

    def dataset(self, train_manifest):
        """Global and local crops of each utterance."""
        return ssl_dataset(
            train_manifest,
            self.sample_rate,
            2,
            self.global_seconds,
            self.n_local,
            self.local_seconds,
        )

    def brain_modules(self):
        """Student, head, teacher and teacher head."""
        return {
            **super().brain_modules(),
            "teacher_model": self.teacher_model,
            "teacher_head": self.teacher_head,
        }

    def brain_hparams(self):
        """DINO loss (with its centre) and teacher momentum."""
        return {"dino_loss": self.dino_loss, "teacher_momentum": self.teacher_momentum}

    @property
    def inference_model(self):
        """The teacher, or the student when ``embed_with_teacher`` is false."""
        return self.teacher_model if self.embed_with_teacher else self.embedding_model


class SimCLREncoder(SSLEncoder):
    """SimCLR-trained encoder (NT-Xent, optional nearest-neighbour positives).

    Arguments
    ---------
    embedding_model : torch.nn.Module
        Embedding lobe.
    head : torch.nn.Module
        Projection head (``torch.nn.Identity()`` for none).
    temperature : float
        NT-Xent temperature.
    nn_weight : float
        Weight of the nearest-neighbour positive term (0 disables it).
    nn_start_epoch : int
        First epoch using nearest-neighbour positives.
    queue_size : int
        Number of past projections searched for neighbours.
    **kwargs
        The arguments of :class:`SSLEncoder`.

    Example
    -------
    >>> from speechbrain.lobes.models.Xvector import Xvector
    >>> model = Xvector(tdnn_channels=[8, 8, 8, 8, 16], lin_neurons=12, in_channels=80)
    >>> encoder = SimCLREncoder(model, ProjectionHead(12, 16, 8))
    >>> encoder.embed(torch.randn(3, 8000)).shape
    torch.Size([3, 12])
    """

    brain_class = SimCLRBrain

    def __init__(
        self,
        embedding_model,
        head,
        temperature=0.1,
        nn_weight=0.0,
        nn_start_epoch=1,
        queue_size=1024,
        **kwargs,
    ):
        super().__init__(embedding_model, head, **kwargs)
        self.temperature = temperature
        self.nn_weight = nn_weight
        self.nn_start_epoch = nn_start_epoch
        self.queue_size = queue_size

    def brain_hparams(self):
        """Temperature and nearest-neighbour settings."""
        return {
            "temperature": self.temperature,
            "nn_weight": self.nn_weight,
            "nn_start_epoch": self.nn_start_epoch,
            "queue_size": self.queue_size,
        }
