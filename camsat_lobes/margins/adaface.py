"""AdaFace: a margin that adapts to the embedding norm, a proxy of the sample's quality.

The margin moves between ArcFace's angular margin (low-norm samples) and a negative
angular plus a larger additive margin (high-norm samples), the norm being judged
against running statistics kept as buffers (``norm_mean``, ``norm_std``) and shared
across processes under ``torch.distributed``.

Authors
 * camsat contributors 2026
"""

import math

import torch
import torch.distributed as dist

from camsat_lobes.margins.base import MarginSoftmax

_ACOS_EPS = 1e-6  # cosines are kept in [-1 + eps, 1 - eps] where acos or sqrt needs it


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
