"""Softmax losses with a fixed margin on the target logit, and the plain softmax.

* :class:`Softmax`: ``W x + b``, no normalisation and no margin (the baseline);
* :class:`AAMSoftmax` (ArcFace): ``s cos(theta + m)``, an angular margin;
* :class:`AMSoftmax`: ``s (cos(theta) - m)``, a cosine margin;
* :class:`CosFace`: the AM-softmax formula with CosFace's published scale (s=64).

The margins are SpeechBrain's ``AdditiveAngularMargin`` and ``AngularMargin``; the
cross-entropy, the checks and the warm-up come from
:class:`~camsat_lobes.margins.base.MarginSoftmax`.

Authors
 * camsat contributors 2026
"""

import torch
import torch.nn.functional as F
from speechbrain.nnet.losses import AdditiveAngularMargin, AngularMargin
from torch import nn

from camsat_lobes.margins.base import MarginSoftmax


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
