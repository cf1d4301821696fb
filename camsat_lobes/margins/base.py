"""The interface every speaker loss shares, and cross-entropy with a margin.

:class:`SpeakerLoss` owns the class weights (``weight``, ``(n_classes,
embedding_dim)``) and does what is the same for every loss: it checks the shapes,
dtypes and ranges of embeddings and labels, computes the float32 cosines with
autocast off, follows the margin warm-up (:meth:`SpeakerLoss.set_epoch`), and
turns one loss into its mixup form ``w L(labels) + (1 - w) L(partner_labels)``
or into per-sample losses (``reduction="none"``). A loss fills in three hooks:
``_prepare(embeddings)`` (per-batch quantities, computed once even for a mixed
loss), ``_objective(prepared, labels)`` (the mean loss) and
``_per_sample(prepared, labels)`` (the ``(B,)`` losses whose mean it is).

:class:`MarginSoftmax` is the cross-entropy over logits whose target entry carries
a margin (SpeechBrain's ``LogSoftmaxWrapper``); its subclasses only say how the
margin enters the logits (``_margin_logits``): :mod:`camsat_lobes.margins.softmax`
and :mod:`camsat_lobes.margins.adaface`.

Authors
 * camsat contributors 2026
"""

import logging

import torch
import torch.nn.functional as F
from speechbrain.nnet.losses import LogSoftmaxWrapper
from torch import nn

logger = logging.getLogger(__name__)


class SpeakerLoss(nn.Module):
    """Base of the speaker losses: class weights, input checks, warm-up, mixup.

    Subclasses define ``_prepare(embeddings)`` (per-batch quantities, computed once
    even for a mixed loss; by default the cosine scores),
    ``_objective(prepared, labels)`` (the mean loss for one set of labels) and
    ``_per_sample(prepared, labels)`` (the ``(B,)`` losses whose mean it is).

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
    >>> from camsat_lobes.margins import AMSoftmax
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
        self.reset_parameters()
        self._epoch_was_set = False
        self.margin_factor = 0.0 if warmup_epochs > 0 else 1.0

    def reset_parameters(self):
        """Draw the class weights again (Xavier-uniform) from torch's global generator.

        Example
        -------
        >>> from camsat_lobes.margins import AAMSoftmax
        >>> loss = AAMSoftmax(embedding_dim=4, n_classes=3)
        >>> _ = torch.manual_seed(0)
        >>> loss.reset_parameters()
        >>> first = loss.weight.detach().clone()
        >>> _ = torch.manual_seed(0)
        >>> loss.reset_parameters()
        >>> torch.equal(loss.weight, first)
        True
        """
        nn.init.xavier_uniform_(self.weight)

    def set_epoch(self, epoch):
        """Set the margin warm-up for ``epoch`` (counted from 1; may be fractional).

        Arguments
        ---------
        epoch : float
            Current epoch. The margin is ``min(1, (epoch - 1) / warmup_epochs)``
            times its full value.

        Example
        -------
        >>> from camsat_lobes.margins import AAMSoftmax
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
        >>> from camsat_lobes.margins import Softmax
        >>> loss = Softmax(2, 2)
        >>> with torch.no_grad():
        ...     _ = loss.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 3.0]]))
        >>> loss.scores(torch.tensor([[2.0, 0.0]])).tolist()
        [[1.0, 0.0]]
        """
        return self._cosine(self._embeddings(embeddings))

    def forward(self, embeddings, labels, partner_labels=None, mix_weight=1.0, reduction="mean"):
        """Return the mean loss of a batch (or its mixup version), or the per-sample losses.

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
        reduction : str
            ``"mean"`` (default): the scalar mean loss; ``"none"``: the ``(B,)``
            loss of each sample, whose mean is the ``"mean"`` loss (up to
            rounding; the ``"mean"`` path is unchanged by this option).

        Returns
        -------
        torch.Tensor
            Scalar float32 loss, or ``(B,)`` float32 losses with ``reduction="none"``.

        Example
        -------
        >>> from camsat_lobes.margins import AAMSoftmax
        >>> loss = AAMSoftmax(8, 5)
        >>> emb, labels = torch.randn(4, 1, 8), torch.tensor([[0], [1], [2], [3]])
        >>> loss(emb, labels).shape
        torch.Size([])
        >>> partner = labels.flip(0)
        >>> mixed = loss(emb, labels, partner, 0.7)
        >>> bool(torch.isclose(mixed, 0.7 * loss(emb, labels) + 0.3 * loss(emb, partner)))
        True
        >>> per_sample = loss(emb, labels, reduction="none")
        >>> per_sample.shape, bool(torch.isclose(per_sample.mean(), loss(emb, labels)))
        (torch.Size([4]), True)
        """
        if reduction not in ("mean", "none"):
            raise ValueError(
                f"reduction={reduction!r}; use 'mean' (the batch loss) or 'none' (one loss "
                "per sample)"
            )
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
        objective = self._objective if reduction == "mean" else self._per_sample
        loss = objective(prepared, labels)
        if partner_labels is None:
            return loss
        partner_labels = self._labels(partner_labels, len(embeddings), "partner_labels")
        return mix_weight * loss + (1.0 - mix_weight) * objective(prepared, partner_labels)

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

    def _per_sample(self, prepared, labels):
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
    >>> from camsat_lobes.margins import CosFace
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
        >>> from camsat_lobes.margins import AMSoftmax
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

    def _per_sample(self, prepared, labels):
        return F.cross_entropy(self._logits(prepared, labels), labels, reduction="none")

    def _margin_logits(self, prepared, one_hot):
        raise NotImplementedError
