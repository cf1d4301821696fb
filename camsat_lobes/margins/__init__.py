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
  ``loss(embeddings, labels, reduction="none")`` gives the ``(B,)`` per-sample
  losses instead of their mean (for loss gating, :mod:`camsat_lobes.loss_gating`).
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

Modules: :mod:`~camsat_lobes.margins.base` (:class:`SpeakerLoss`, the shared
interface, and :class:`MarginSoftmax`, cross-entropy with a margin on the target
logit), :mod:`~camsat_lobes.margins.softmax` (:class:`Softmax`, :class:`AAMSoftmax`,
:class:`AMSoftmax`, :class:`CosFace`), :mod:`~camsat_lobes.margins.adaface` and
:mod:`~camsat_lobes.margins.ocsoftmax`.

Authors
 * camsat contributors 2026
"""

from camsat_lobes.margins.adaface import AdaFace
from camsat_lobes.margins.base import MarginSoftmax, SpeakerLoss
from camsat_lobes.margins.ocsoftmax import OCSoftmax
from camsat_lobes.margins.softmax import AAMSoftmax, AMSoftmax, CosFace, Softmax

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
