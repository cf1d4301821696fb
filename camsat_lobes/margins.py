r"""Margin-softmax losses for training a speaker network on (pseudo-)labels.

Six losses share one interface, so a recipe swaps them by one line of
hyperparameters (``hparams/losses/*.yaml``):

==============  ===================================================  ==================
class           logit of the target class (others keep ``s cos``)    defaults
==============  ===================================================  ==================
Softmax         ``W x + b`` (no normalisation, no margin)            --
AAMSoftmax      ``s cos(theta + m)``                                 m=0.2, s=30
AMSoftmax       ``s (cos(theta) - m)``                               m=0.35, s=30
CosFace         ``s (cos(theta) - m)``                               m=0.35, s=64
AdaFace         ``s (cos(theta - m g) - m (1 + g))``, g from norms   m=0.4, s=64, h=0.333
OCSoftmax       softplus: own centre, nearest rival, mean of rest    alpha=20, 0.9, 0.2
==============  ===================================================  ==================

Every loss is an ``nn.Module`` built as ``Loss(embedding_dim, n_classes,
**hyperparameters)`` that owns its class weights (``weight``, shape
``(n_classes, embedding_dim)``). It sees the raw embeddings, so AdaFace can read
their norms (SpeechBrain's ECAPA ``Classifier`` normalises them away).

* ``loss(embeddings, labels)``: the scalar training loss. Embeddings are
  ``(B, D)`` or SpeechBrain's ``(B, 1, D)``; labels ``(B,)`` or ``(B, 1)`` integers.
  ``loss(embeddings, labels, partner_labels, mix_weight)`` gives the mixup loss
  ``w L(labels) + (1 - w) L(partner_labels)`` in one pass (:mod:`camsat_lobes.mixup`).
* ``loss.scores(embeddings)``: ``(B, n_classes)`` cosine scores, no labels needed.
* ``loss.set_epoch(epoch)``: margin warm-up. With ``warmup_epochs=W`` the margin
  is ``min(1, (epoch - 1) / W)`` times its value: 0 in epoch 1, full from epoch
  ``W + 1`` (epochs count from 1 as SpeechBrain's epoch counter does; fractional
  epochs give a per-step ramp).

Put the loss among the Brain's ``modules`` (it has parameters to optimise,
checkpoint and, under DDP, synchronise) and call ``set_epoch`` in
``on_stage_start``. Cosines and margins are computed in float32 with autocast
off, cosines are clamped before ``acos``/``sqrt``, so float16/bfloat16 training
and cosines at +-1 give finite losses and gradients.

Authors
 * camsat contributors 2026
"""

import logging
import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from speechbrain.nnet.losses import AdditiveAngularMargin, AngularMargin, LogSoftmaxWrapper
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "AAMSoftmax",
    "AMSoftmax",
    "AdaFace",
    "CosFace",
    "MarginSoftmax",
    "OCSoftmax",
    "Softmax",
    "SpeakerLoss",
]

_ACOS_EPS = 1e-6  # cosines are kept in [-1 + eps, 1 - eps] where acos or sqrt needs it


class SpeakerLoss(nn.Module):
    """Base of the speaker losses: class weights, input checks, warm-up, mixup.

    Subclasses define ``_prepare(embeddings)`` (per-batch quantities, computed once
    even for a mixed loss; by default the cosine scores) and
    ``_objective(prepared, labels)`` (the mean loss for one set of labels).

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings (``lin_neurons`` of SpeechBrain's ``ECAPA_TDNN``).
    n_classes : int
        Number of (pseudo-)classes, known after clustering.
    warmup_epochs : float
        Epochs over which the margin grows linearly from 0 to its value (0: none).

    Example
    -------
    >>> loss = AMSoftmax(embedding_dim=4, n_classes=3, warmup_epochs=2)
    >>> [loss.set_epoch(e) or loss.margin_factor for e in (1, 2, 3, 4)]
    [0.0, 0.5, 1.0, 1.0]
    """

    def __init__(self, embedding_dim, n_classes, warmup_epochs=0):
        super().__init__()
        for name, value in (("embedding_dim", embedding_dim), ("n_classes", n_classes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs={warmup_epochs} must be >= 0 (0 turns warm-up off)")
        self.embedding_dim = embedding_dim
        self.n_classes = n_classes
        self.warmup_epochs = warmup_epochs
        self.weight = nn.Parameter(torch.empty(n_classes, embedding_dim))
        nn.init.xavier_uniform_(self.weight)
        self._epoch_was_set = False
        self.margin_factor = 0.0 if warmup_epochs > 0 else 1.0

    def set_epoch(self, epoch):
        """Set the margin warm-up for ``epoch`` (counted from 1; may be fractional).

        Arguments
        ---------
        epoch : float
            Current epoch. The margin is ``min(1, (epoch - 1) / warmup_epochs)``
            times its full value.

        Example
        -------
        >>> loss = AAMSoftmax(4, 3, margin=0.2, warmup_epochs=4)
        >>> loss.set_epoch(3)
        >>> round(loss.margin_factor * loss.margin, 3)
        0.1
        """
        self._epoch_was_set = True
        if self.warmup_epochs == 0:
            self.margin_factor = 1.0
        else:
            self.margin_factor = min(1.0, max(0.0, (epoch - 1) / self.warmup_epochs))
        self._margin_changed()

    def _margin_changed(self):
        """Update whatever depends on ``margin_factor`` (nothing by default)."""

    def scores(self, embeddings):
        """Cosine similarity of each embedding with each class weight.

        Arguments
        ---------
        embeddings : torch.Tensor
            ``(B, D)`` or ``(B, 1, D)``.

        Returns
        -------
        torch.Tensor
            ``(B, n_classes)`` float32 cosines in [-1, 1].

        Example
        -------
        >>> loss = Softmax(2, 2)
        >>> with torch.no_grad():
        ...     _ = loss.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
        >>> loss.scores(torch.tensor([[2.0, 0.0]])).tolist()
        [[1.0, 0.0]]
        """
        return self._cosine(self._embeddings(embeddings))

    def forward(self, embeddings, labels, partner_labels=None, mix_weight=1.0):
        """Return the mean loss of a batch, or its mixup version.

        Arguments
        ---------
        embeddings : torch.Tensor
            ``(B, D)`` or ``(B, 1, D)`` embeddings (any float dtype).
        labels : torch.Tensor
            ``(B,)`` or ``(B, 1)`` integer classes in ``[0, n_classes)``.
        partner_labels : torch.Tensor, optional
            Classes of the mixing partners; the loss is then
            ``mix_weight * L(labels) + (1 - mix_weight) * L(partner_labels)``,
            with one cosine computation (and one AdaFace statistics update).
        mix_weight : float
            Weight of ``labels`` when ``partner_labels`` is given.

        Returns
        -------
        torch.Tensor
            Scalar float32 loss.

        Example
        -------
        >>> loss = AAMSoftmax(8, 5)
        >>> emb, labels = torch.randn(4, 1, 8), torch.tensor([[0], [1], [2], [3]])
        >>> loss(emb, labels).shape
        torch.Size([])
        >>> partner = labels.flip(0)
        >>> mixed = loss(emb, labels, partner, 0.7)
        >>> bool(torch.isclose(mixed, 0.7 * loss(emb, labels) + 0.3 * loss(emb, partner)))
        True
        """
        if self.training and self.warmup_epochs > 0 and not self._epoch_was_set:
            logger.warning(
                "%s has warmup_epochs=%s but set_epoch() was never called: the margin stays "
                "at 0. Call loss.set_epoch(epoch) in Brain.on_stage_start.",
                type(self).__name__,
                self.warmup_epochs,
            )
            self._epoch_was_set = True
        embeddings = self._embeddings(embeddings)
        labels = self._labels(labels, len(embeddings), "labels")
        prepared = self._prepare(embeddings)
        loss = self._objective(prepared, labels)
        if partner_labels is None:
            return loss
        partner_labels = self._labels(partner_labels, len(embeddings), "partner_labels")
        return mix_weight * loss + (1.0 - mix_weight) * self._objective(prepared, partner_labels)

    def _embeddings(self, embeddings):
        if embeddings.dim() == 3 and embeddings.shape[1] == 1:
            embeddings = embeddings.squeeze(1)
        if embeddings.dim() != 2:
            raise ValueError(
                f"embeddings of shape {tuple(embeddings.shape)}: expected (batch, dim) or "
                "(batch, 1, dim) as SpeechBrain's ECAPA_TDNN returns"
            )
        if embeddings.shape[1] != self.embedding_dim:
            raise ValueError(
                f"embeddings have {embeddings.shape[1]} dimensions but the loss was built with "
                f"embedding_dim={self.embedding_dim}: set embedding_dim to the encoder's output "
                "size (lin_neurons for ECAPA_TDNN)"
            )
        return embeddings

    def _labels(self, labels, batch_size, name):
        if labels.dim() == 2 and labels.shape[1] == 1:
            labels = labels.squeeze(1)
        if labels.dim() != 1 or len(labels) != batch_size:
            raise ValueError(
                f"{name} of shape {tuple(labels.shape)}: expected ({batch_size},) or "
                f"({batch_size}, 1), one class per embedding"
            )
        if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
            raise TypeError(f"{name} have dtype {labels.dtype}: give integer class indices")
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= self.n_classes:
            raise ValueError(
                f"{name} range from {low} to {high} but the loss has n_classes={self.n_classes}: "
                "build the loss with n_classes equal to the number of (pseudo-)classes"
            )
        return labels.long()

    def _cosine(self, embeddings):
        with torch.autocast(embeddings.device.type, enabled=False):
            x = F.normalize(embeddings.float(), dim=1)
            w = F.normalize(self.weight.float(), dim=1)
            return (x @ w.t()).clamp(-1.0, 1.0)

    def _prepare(self, embeddings):
        return self._cosine(embeddings)

    def _objective(self, prepared, labels):
        raise NotImplementedError


class MarginSoftmax(SpeakerLoss):
    """Cross-entropy on logits whose target entry carries a margin.

    Subclasses define ``_margin_logits(prepared, one_hot)``; the cross-entropy is
    SpeechBrain's ``LogSoftmaxWrapper``. :meth:`logits` exposes the logits.

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings.
    n_classes : int
        Number of (pseudo-)classes.
    warmup_epochs : float
        Epochs of linear margin warm-up (0: none).

    Example
    -------
    >>> loss = CosFace(4, 3)
    >>> isinstance(loss, MarginSoftmax), loss.logits(torch.randn(2, 4), torch.tensor([0, 2])).shape
    (True, torch.Size([2, 3]))
    """

    def __init__(self, embedding_dim, n_classes, warmup_epochs=0):
        super().__init__(embedding_dim, n_classes, warmup_epochs)
        self.cross_entropy = LogSoftmaxWrapper(nn.Identity())

    def logits(self, embeddings, labels):
        """Return the float32 logits, with the margin on each target entry.

        Arguments
        ---------
        embeddings : torch.Tensor
            ``(B, D)`` or ``(B, 1, D)``.
        labels : torch.Tensor
            ``(B,)`` or ``(B, 1)`` classes.

        Returns
        -------
        torch.Tensor
            ``(B, n_classes)`` logits.

        Example
        -------
        >>> loss = AMSoftmax(2, 2, margin=0.35, scale=30.0)
        >>> with torch.no_grad():
        ...     _ = loss.weight.copy_(torch.eye(2))
        >>> loss.logits(torch.tensor([[1.0, 0.0]]), torch.tensor([0])).tolist()
        [[19.5, 0.0]]
        """
        embeddings = self._embeddings(embeddings)
        labels = self._labels(labels, len(embeddings), "labels")
        return self._logits(self._prepare(embeddings), labels)

    def _logits(self, prepared, labels):
        one_hot = F.one_hot(labels, self.n_classes).float()
        return self._margin_logits(prepared, one_hot)

    def _objective(self, prepared, labels):
        logits = self._logits(prepared, labels)
        return self.cross_entropy(logits.unsqueeze(1), labels.unsqueeze(1))

    def _margin_logits(self, prepared, one_hot):
        raise NotImplementedError


class Softmax(MarginSoftmax):
    """Plain softmax cross-entropy on a linear layer, the baseline without normalisation.

    Logits are ``W x + b``; :meth:`scores` still returns cosines with the rows of
    ``W``. There is no margin, so :meth:`set_epoch` changes nothing.

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings.
    n_classes : int
        Number of (pseudo-)classes.
    bias : bool
        Learn a bias per class.

    Example
    -------
    >>> loss = Softmax(8, 5)
    >>> emb, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 3])
    >>> logits = emb @ loss.weight.t() + loss.bias
    >>> bool(torch.isclose(loss(emb, labels), F.cross_entropy(logits, labels)))
    True
    """

    def __init__(self, embedding_dim, n_classes, bias=True):
        super().__init__(embedding_dim, n_classes)
        self.bias = nn.Parameter(torch.zeros(n_classes)) if bias else None

    def _prepare(self, embeddings):
        with torch.autocast(embeddings.device.type, enabled=False):
            bias = None if self.bias is None else self.bias.float()
            return F.linear(embeddings.float(), self.weight.float(), bias)

    def _margin_logits(self, prepared, one_hot):
        return prepared


class AAMSoftmax(MarginSoftmax):
    """Additive angular margin softmax (ArcFace): target logit ``s cos(theta + m)``.

    Deng et al., "ArcFace: Additive Angular Margin Loss for Deep Face Recognition",
    CVPR 2019. The margin is SpeechBrain's ``AdditiveAngularMargin`` (float32,
    clamped cosines; past ``theta = pi - m`` the target logit continues as
    ``cos(theta) - m sin(m)`` so it keeps decreasing with the angle). Defaults are
    SpeechBrain's speaker-recognition values.

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings.
    n_classes : int
        Number of (pseudo-)classes.
    margin : float
        Angular margin ``m`` in radians.
    scale : float
        Scale ``s`` of the cosines.
    easy_margin : bool
        Apply the margin only where ``cos(theta) > 0`` (SpeechBrain's option).
    warmup_epochs : float
        Epochs of linear margin warm-up (0: none).

    Example
    -------
    >>> loss = AAMSoftmax(2, 2, margin=0.2, scale=30.0)
    >>> with torch.no_grad():
    ...     _ = loss.weight.copy_(torch.eye(2))
    >>> logits = loss.logits(torch.tensor([[1.0, 1.0]]), torch.tensor([0]))
    >>> [round(v, 3) for v in logits[0].tolist()]  # 30 cos(pi/4 + 0.2), 30 cos(pi/4)
    [16.576, 21.213]
    """

    def __init__(
        self, embedding_dim, n_classes, margin=0.2, scale=30.0, easy_margin=False, warmup_epochs=0
    ):
        super().__init__(embedding_dim, n_classes, warmup_epochs)
        self.margin, self.scale, self.easy_margin = margin, scale, easy_margin
        self._margin_changed()

    def _margin_changed(self):
        self.margin_fn = AdditiveAngularMargin(
            self.margin * self.margin_factor, self.scale, self.easy_margin
        )

    def _margin_logits(self, prepared, one_hot):
        return self.margin_fn(prepared, one_hot)


class AMSoftmax(MarginSoftmax):
    """Additive (cosine) margin softmax: target logit ``s (cos(theta) - m)``.

    Wang, Cheng, Liu and Liu, "Additive Margin Softmax for Face Verification",
    IEEE SPL 2018, used m=0.35 and s=30 (the defaults here). The same formula is
    CosFace (Wang et al., CVPR 2018), published with s=64: :class:`CosFace` is
    this class with those defaults. The margin is SpeechBrain's ``AngularMargin``.

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings.
    n_classes : int
        Number of (pseudo-)classes.
    margin : float
        Cosine margin ``m``.
    scale : float
        Scale ``s`` of the cosines.
    warmup_epochs : float
        Epochs of linear margin warm-up (0: none).

    Example
    -------
    >>> loss = AMSoftmax(2, 2)
    >>> with torch.no_grad():
    ...     _ = loss.weight.copy_(torch.eye(2))
    >>> loss.logits(torch.tensor([[0.0, 1.0]]), torch.tensor([1])).tolist()
    [[0.0, 19.5]]
    """

    def __init__(self, embedding_dim, n_classes, margin=0.35, scale=30.0, warmup_epochs=0):
        super().__init__(embedding_dim, n_classes, warmup_epochs)
        self.margin, self.scale = margin, scale
        self._margin_changed()

    def _margin_changed(self):
        self.margin_fn = AngularMargin(self.margin * self.margin_factor, self.scale)

    def _margin_logits(self, prepared, one_hot):
        return self.margin_fn(prepared, one_hot)


class CosFace(AMSoftmax):
    """CosFace (large margin cosine loss): :class:`AMSoftmax` with s=64.

    Wang et al., "CosFace: Large Margin Cosine Loss for Deep Face Recognition",
    CVPR 2018, trained with s=64 and m=0.35. The formula is AM-softmax's; only the
    published defaults differ.

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings.
    n_classes : int
        Number of (pseudo-)classes.
    margin : float
        Cosine margin ``m``.
    scale : float
        Scale ``s`` of the cosines.
    warmup_epochs : float
        Epochs of linear margin warm-up (0: none).

    Example
    -------
    >>> loss = CosFace(192, 10)
    >>> loss.margin, loss.scale
    (0.35, 64.0)
    """

    def __init__(self, embedding_dim, n_classes, margin=0.35, scale=64.0, warmup_epochs=0):
        super().__init__(embedding_dim, n_classes, margin, scale, warmup_epochs)


class AdaFace(MarginSoftmax):
    r"""AdaFace: a margin that adapts to the embedding norm (a proxy of quality).

    Kim, Jain and Liu, "AdaFace: Quality Adaptive Margin for Face Recognition",
    CVPR 2022. With ``n = clip(||x||, 0.001, 100)`` (detached) and running
    mean/std ``mu, sigma`` of ``n``, the normalised norm is
    ``g = clip(h (n - mu) / (sigma + 0.001), -1, 1)`` and the target logit is

    .. math:: s \left(\cos(\mathrm{clip}(\theta - m g, \epsilon, \pi - \epsilon))
              - (m + m g)\right)

    (angular part ``-m g``, additive part ``m + m g``). At the extremes of ``g``:

    * ``g = -1`` (norm well below the running mean: a low-quality sample):
      ``s cos(theta + m)``, ArcFace's angular margin;
    * ``g = 0`` (norm at the running mean): ``s (cos(theta) - m)``, CosFace's
      additive margin;
    * ``g = +1`` (norm well above the mean: a high-quality sample):
      ``s (cos(theta - m) - 2 m)``, a negative angular margin plus an additive
      ``2 m``.

    The target logit's gradient with respect to ``theta`` is scaled, relative
    to no margin, by ``sin(theta + m) / sin(theta) = cos m + sin m cot theta``
    at ``g = -1``, which falls as ``theta`` grows, and by ``cos m - sin m cot
    theta`` at ``g = +1``, which rises: low-norm samples put less weight on hard
    (large-angle) examples, which may be unrecognisable or mislabelled, and
    high-norm samples put more weight on them. Non-target logits are ``s cos``.

    ``mu`` and ``sigma`` are registered buffers (saved in ``state_dict`` and
    checkpoints), updated as EMAs of the batch mean/std of ``n`` with
    ``momentum`` before use, only in training mode; in eval mode they are frozen.
    Under ``torch.distributed`` the batch statistics are those of the global batch
    (one all-reduce of count, sum and sum of squares), so every process keeps the
    same buffers.

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings.
    n_classes : int
        Number of (pseudo-)classes.
    margin : float
        Margin ``m``.
    h : float
        Concentration ``h`` of the normalised norm.
    scale : float
        Scale ``s`` of the cosines.
    momentum : float
        EMA weight of the current batch's statistics.
    warmup_epochs : float
        Epochs of linear margin warm-up (0: none).

    Example
    -------
    >>> loss = AdaFace(8, 5)
    >>> loss.norm_mean.item(), loss.norm_std.item()
    (20.0, 100.0)
    >>> _ = loss(torch.randn(4, 8), torch.tensor([0, 1, 2, 3]))
    >>> loss.norm_mean.item() < 20.0  # moved towards the batch's mean norm
    True
    """

    norm_clip = (0.001, 100.0)
    eps = 1e-3

    def __init__(
        self,
        embedding_dim,
        n_classes,
        margin=0.4,
        h=0.333,
        scale=64.0,
        momentum=0.01,
        warmup_epochs=0,
    ):
        super().__init__(embedding_dim, n_classes, warmup_epochs)
        if not 0.0 < momentum <= 1.0:
            raise ValueError(f"momentum={momentum} must lie in (0, 1]")
        self.margin, self.h, self.scale, self.momentum = margin, h, scale, momentum
        self.register_buffer("norm_mean", torch.tensor(20.0))
        self.register_buffer("norm_std", torch.tensor(100.0))

    def _prepare(self, embeddings):
        with torch.autocast(embeddings.device.type, enabled=False):
            norms = embeddings.detach().float().norm(dim=1).clamp(*self.norm_clip)
        if self.training:
            self._update_statistics(norms)
        normalized = (norms - self.norm_mean) / (self.norm_std + self.eps)
        return self._cosine(embeddings), (normalized * self.h).clamp(-1.0, 1.0)

    @torch.no_grad()
    def _update_statistics(self, norms):
        stats = torch.stack([norms.new_tensor(len(norms)), norms.sum(), norms.square().sum()])
        stats = stats.double()
        if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            dist.all_reduce(stats)
        count, total, total_sq = stats
        mean = total / count
        var = (total_sq - count * mean**2).clamp(min=0.0) / (count - 1).clamp(min=1.0)
        self.norm_mean.lerp_(mean.to(self.norm_mean), self.momentum)
        self.norm_std.lerp_(var.sqrt().to(self.norm_std), self.momentum)

    def _margin_logits(self, prepared, one_hot):
        cosine, g = prepared
        margin = self.margin * self.margin_factor
        target = (cosine * one_hot).sum(dim=1).clamp(-1.0 + _ACOS_EPS, 1.0 - _ACOS_EPS)
        theta = (target.acos() - margin * g).clamp(self.eps, math.pi - self.eps)
        target_with_margin = theta.cos() - margin * (1.0 + g)
        logits = cosine + one_hot * (target_with_margin - target).unsqueeze(1)
        return self.scale * logits


class OCSoftmax(SpeakerLoss):
    r"""One-class softmax, extended from one centre to one centre per speaker.

    The published loss (Zhang, Jiang and Duan, "One-class Learning Towards
    Synthetic Voice Spoofing Detection", IEEE SPL 2021) has one learnable centre
    ``w`` and two classes; with ``c_i = cos(x_i, w)`` it is

    .. math:: \frac1B \sum_i \mathrm{softplus}(\alpha (m_+ - c_i)) [i \text{ target}]
              + \mathrm{softplus}(\alpha (c_i - m_-)) [i \text{ non-target}]

    Here every speaker ``k`` has a centre ``w_k``. With ``c_{ik} = cos(x_i, w_k)``,
    ``r_i = \arg\max_{k \ne y_i} c_{ik}`` the nearest other centre (the most
    similar rival speaker) and ``R_i`` the remaining ``K - 2`` centres,

    .. math:: L = \frac1B \sum_i \Big[\mathrm{softplus}(\alpha (m_+ - c_{i y_i}))
              + \mathrm{softplus}(\alpha (c_{i r_i} - m_-))
              + \frac{\lambda}{K - 2} \sum_{k \in R_i}
                \mathrm{softplus}(\alpha (c_{ik} - m_-))\Big]

    (the last term only when ``K > 2``; ``lambda = 1`` by default). Each sample
    pulls its own centre above ``m_+``, pushes its nearest rival below ``m_-``
    with the full weight of the published loss, and pushes the crowd of other
    centres below ``m_-`` with the weight of one more negative, their mean. No
    softmax couples the classes. With two centres the rival is the one other
    centre and the crowd is empty, so ``L`` is exactly the sum over the two
    centres of the published loss with that centre's speaker as the target
    class. With one centre only the target term remains (the published loss on
    a batch of targets only; nothing is pushed away).

    Why this form. A sum of the ``K - 1`` negative terms grows with ``K``: at
    initialisation (64 Gaussian 192-d embeddings, Xavier centres, ``alpha = 20``,
    ``m_- = 0.2``) each is about 0.05, so their sum is 0.43 at ``K = 10`` and 459
    at ``K = 10000``, against 18 for the target term, and the norm of the
    gradient with respect to the embeddings grows from 0.19 to 1.42: at the
    paper's scale the negatives swamp the target. Averaging over the negatives
    does not grow with ``K`` but dilutes a confusable speaker in the crowd. Take
    ``K = 10000`` and, for one sample, a rival centre at cosine 0.3 and 9,998
    others at random cosines around 0 (standard deviation 0.07, as for random
    directions in 192 dimensions). The published loss gives the rival a gradient
    ``alpha sigmoid(alpha (0.3 - m_-)) = 17.6`` per unit of cosine; the mean of
    the softplus terms gives it 0.002, the smooth maximum
    ``softplus(log mean_k exp(alpha (c_k - m_-)))`` 0.014 (a single rival has to
    exceed ``m_-`` by ``log(K - 1) / alpha = 0.46`` to count), and
    ``softplus(log sum_k exp(...))`` 0.27 while it spends 19.7 on the 9,998
    centres that already satisfy the margin (and its value grows as ``log K``).
    The nearest rival gets 17.6 here for every ``K``, and ``m_-`` keeps its
    published meaning. The rival alone is not enough: with half the labels
    wrong, pushing only the nearest centre let the embeddings gather in one
    narrow cone (the mean of the unit embeddings reached norm 0.99, every
    centre near cosine 0.45 with every sample) and the verification EER of
    ``bench/margins.py`` rose to 38 %. The crowd's mean restores a push away
    from all other centres whose size, like the rival's, does not depend on
    ``K``. EER % on that bench (200 classes, uniform label flips, 3 seeds; last
    column 2,000 classes of 10 samples, 2 seeds):

    =======================  =====  =====  =====  ===============
    negative term            0 %    30 %   50 %   2,000 classes
    =======================  =====  =====  =====  ===============
    sum (previous form)      12.7   15.4   18.2   6.9
    mean                     12.1   19.3   22.4   7.2
    log-mean-exp             12.1   17.8   20.3   5.7
    log-sum-exp              12.5   16.1   19.3   7.0
    nearest rival only       12.1   14.5   38.1   5.7
    nearest rival + crowd    12.5   14.5   19.8   5.8
    =======================  =====  =====  =====  ===============

    Standard deviations over seeds were 0.1-1.3. With flips to one of the 5
    nearest classes instead (as clustering errors are), at 30, 50 and 70 %: sum
    13.9, 15.5, 16.5; nearest rival + crowd 13.2, 14.5, 14.6. Heavy uniform
    noise is where the sum's much stronger crowd push (``K - 2 = 198`` times
    this one) helps: at 70 % uniform flips the sum gave 20.7 and this form 27.2.
    ``crowd_weight = 10`` trades one for the other: 12.4, 15.2, 18.3 and 20.6
    at 0, 30, 50 and 70 % uniform flips, 15.7 at 70 % nearest flips.
    At initialisation, in the setting above, the loss is 18.3 at ``K = 10`` and
    19.8 at ``K = 10000`` (the nearest of more random centres is closer) and the
    gradient norm 0.18 and 0.23.

    Warm-up moves ``m_+`` and ``m_-`` from their midpoint (no margin between
    target and non-target) to their values.

    Arguments
    ---------
    embedding_dim : int
        Size of the embeddings.
    n_classes : int
        Number of (pseudo-)classes.
    alpha : float
        Scale ``alpha`` of the softplus terms.
    m_pos : float
        Cosine a sample should exceed with its own centre.
    m_neg : float
        Cosine a sample should stay under with every other centre.
    crowd_weight : float
        Weight ``lambda`` of the crowd's mean (the formula above has 1: the crowd
        counts as one negative). A constant keeps the scale independent of
        ``K``; ``K - 2`` gives back the sum over all other centres.
    warmup_epochs : float
        Epochs of linear margin warm-up (0: none).

    Example
    -------
    >>> loss = OCSoftmax(2, 4)
    >>> with torch.no_grad():
    ...     _ = loss.weight.copy_(torch.tensor([[1, 0], [0.6, 0.8], [0, 1], [-1, 0]]))
    >>> x, label = torch.tensor([[1.0, 0.0]]), torch.tensor([0])  # cosines 1, 0.6, 0, -1
    >>> own = F.softplus(torch.tensor(20 * (0.9 - 1.0)))
    >>> rival = F.softplus(torch.tensor(20 * (0.6 - 0.2)))
    >>> crowd = F.softplus(20 * (torch.tensor([0.0, -1.0]) - 0.2)).mean()
    >>> bool(torch.isclose(loss(x, label), own + rival + crowd))
    True
    """

    def __init__(
        self,
        embedding_dim,
        n_classes,
        alpha=20.0,
        m_pos=0.9,
        m_neg=0.2,
        crowd_weight=1.0,
        warmup_epochs=0,
    ):
        super().__init__(embedding_dim, n_classes, warmup_epochs)
        if not m_neg <= m_pos:
            raise ValueError(f"m_neg={m_neg} must not exceed m_pos={m_pos}")
        if not crowd_weight >= 0:
            raise ValueError(f"crowd_weight={crowd_weight} must be >= 0")
        self.alpha, self.m_pos, self.m_neg = alpha, m_pos, m_neg
        self.crowd_weight = crowd_weight

    def current_margins(self):
        """Return ``(m_pos, m_neg)`` after warm-up.

        Returns
        -------
        tuple of float
            The cosine thresholds in use at the current epoch.

        Example
        -------
        >>> loss = OCSoftmax(4, 3, warmup_epochs=2)
        >>> loss.set_epoch(2)
        >>> [round(m, 3) for m in loss.current_margins()]
        [0.725, 0.375]
        """
        middle = (self.m_pos + self.m_neg) / 2
        return (
            middle + self.margin_factor * (self.m_pos - middle),
            middle + self.margin_factor * (self.m_neg - middle),
        )

    def _objective(self, cosine, labels):
        m_pos, m_neg = self.current_margins()
        own = cosine.gather(1, labels.unsqueeze(1)).squeeze(1)
        loss = F.softplus(self.alpha * (m_pos - own))
        if self.n_classes > 1:
            excluded = F.one_hot(labels, self.n_classes).bool()
            rival = cosine.masked_fill(excluded, float("-inf")).argmax(dim=1, keepdim=True)
            rival_cosine = cosine.gather(1, rival).squeeze(1)
            loss = loss + F.softplus(self.alpha * (rival_cosine - m_neg))
            if self.n_classes > 2:
                excluded = excluded.scatter(1, rival, True)
                crowd = F.softplus(self.alpha * (cosine - m_neg)).masked_fill(excluded, 0.0)
                loss = loss + self.crowd_weight * crowd.sum(dim=1) / (self.n_classes - 2)
        return loss.mean()
