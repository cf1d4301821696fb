"""One-class softmax, extended from one centre to one centre per speaker.

Each sample pulls its own centre above ``m_pos``, pushes its nearest rival below
``m_neg`` and the crowd of the other centres below ``m_neg`` with the weight of one
more negative; no softmax couples the classes (see :class:`OCSoftmax`).

Authors
 * camsat contributors 2026
"""

import torch.nn.functional as F

from camsat_lobes.margins.base import SpeakerLoss


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
    pulls its own centre above ``m_+``, pushes its nearest rival (the most
    confusable speaker) below ``m_-`` with the full weight of the published loss,
    and pushes the crowd of other centres below ``m_-`` with the weight of one more
    negative, their mean. No softmax couples the classes, and neither negative
    term grows with ``K``, so ``alpha``, ``m_+`` and ``m_-`` keep their published
    meaning at any number of speakers (a sum over the ``K - 1`` negatives would
    swamp the target term at thousands of classes). With two centres ``L`` is
    exactly the published loss summed over the two choices of target class; with
    one centre only the target term remains.

    Use it as any loss of this module (``hparams/losses/ocsoftmax.yaml``): built with
    the embedding size and the number of classes, put among the Brain's modules;
    :meth:`scores` gives the cosines with the centres. Warm-up moves ``m_+`` and
    ``m_-`` from their midpoint (no margin between target and non-target) to their
    values.

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
    >>> import torch
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
        return self._per_sample(cosine, labels).mean()

    def _per_sample(self, cosine, labels):
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
        return loss
