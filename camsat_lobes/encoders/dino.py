"""DINO self-distillation for speaker encoders.

A student network and an exponential-moving-average teacher see independently
augmented global and local crops of one utterance; the student learns to predict
the teacher's centred and sharpened distribution over learnable prototypes.

Read top to bottom: the projection head (:class:`DINOHead`), the loss with its
running centre (:class:`DINOLoss`), the training step with the teacher update
(:class:`DINOBrain`) and the encoder to build from hparams (:class:`DINOEncoder`).
The crops, schedules and training loop are shared with SimCLR
(:mod:`camsat_lobes.encoders.ssl`).

Authors
 * camsat contributors 2026
"""

import copy

import torch
import torch.nn.functional as F

from camsat_lobes.encoders.augmentation import augment_independently
from camsat_lobes.encoders.ssl import SSLBrain, SSLEncoder, cosine_schedule, ssl_dataset

__all__ = ["DINOBrain", "DINOEncoder", "DINOHead", "DINOLoss"]


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


class DINOBrain(SSLBrain):
    """DINO self-distillation: student on all crops, EMA teacher on global crops.

    A :class:`~camsat_lobes.encoders.ssl.SSLBrain` with extra ``hparams``:
    ``dino_loss`` (:class:`DINOLoss`), ``teacher_momentum``
    (start of the cosine schedule towards 1), ``teacher_temperatures`` (start, end and
    warm-up epochs of the teacher temperature); extra modules ``teacher_model`` and
    ``teacher_head`` (frozen, updated as moving averages of the student).

    Example
    -------
    >>> import speechbrain as sb
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
        feats = self.features(wavs, lengths)  # the student and the teacher see the same crops
        student_embeddings = self.embed_features(feats, lengths, self.modules.embedding_model)
        student = [self.modules.head(student_embeddings)]
        if hasattr(batch, "local_crops"):
            local = self.embed_crops(batch.local_crops.data, self.modules.embedding_model, True)
            student.append(self.modules.head(torch.cat(local)))
        with torch.no_grad():
            teacher = self.modules.teacher_head(
                self.embed_features(feats, lengths, self.modules.teacher_model)
            )
        student = [chunk for scores in student for chunk in scores.split(batch_size)]
        return student, list(teacher.split(batch_size))

    def on_fit_start(self):
        """Move the loss's running centre (a hyperparameter, not a module) to the device too."""
        super().on_fit_start()
        self.hparams.dino_loss.to(self.device)

    def on_stage_start(self, stage, epoch=None):
        """Set the epoch's teacher temperature (linear warm-up), then as the base class."""
        super().on_stage_start(stage, epoch)
        start, end, warmup = getattr(self.hparams, "teacher_temperatures", (None, None, 0))
        if warmup > 0:
            done = min((self.current_epoch - 1) / warmup, 1.0)
            self.hparams.dino_loss.teacher_temperature = start + (end - start) * done

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
    warmup_teacher_temperature : float, optional
        Teacher temperature of the first epoch, raised linearly to
        ``teacher_temperature`` over ``teacher_temperature_warmup_epochs`` (DINO
        recipes warm it from 0.04 to 0.07); default: no warm-up.
    teacher_temperature_warmup_epochs : int
        Epochs of that warm-up.
    teacher_momentum : float
        Initial EMA momentum of the teacher (rises to 1 by the end).
    embed_with_teacher : bool
        Whether :meth:`embed` uses the teacher (usually the better network).
    **kwargs
        The arguments of :class:`~camsat_lobes.encoders.ssl.SSLEncoder`.

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
        warmup_teacher_temperature=None,
        teacher_temperature_warmup_epochs=0,
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
        start = warmup_teacher_temperature
        if start is None:
            start = teacher_temperature
        warmup = int(teacher_temperature_warmup_epochs)
        self.teacher_temperatures = (start, teacher_temperature, warmup)

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
        """DINO loss (with its centre), teacher momentum and teacher-temperature warm-up."""
        return {
            "dino_loss": self.dino_loss,
            "teacher_momentum": self.teacher_momentum,
            "teacher_temperatures": self.teacher_temperatures,
        }

    @property
    def inference_model(self):
        """The teacher, or the student when ``embed_with_teacher`` is false."""
        return self.teacher_model if self.embed_with_teacher else self.embedding_model
