"""Loss terms of CAMSAT, IMSAT and the ablations, one function per term.

Notation: a batch of B points x_i, the head f (logits) and p_i = softmax(f(x_i))
over K clusters; p̂_i is p_i detached from the graph (a fixed target); V views
x_i^v of each point with predictions p_i^v. Entropies are in nats,
KL(p ‖ q) = Σ_k p_k log(p_k / q_k), and every loss is averaged over the batch.
Random draws (VAT start, Mixup pairing and weights) use torch's global
generator, which the trainer seeds.

Authors
 * camsat contributors 2026
"""

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

__all__ = [
    "entropy",
    "frozen_batch_norm_statistics",
    "conditional_entropy",
    "marginal_entropy",
    "information_maximization_loss",
    "kl_divergence",
    "vat_loss",
    "augmentation_loss",
    "symmetry_loss",
    "contrastive_loss",
    "supcon_loss",
    "infonce_loss",
    "mixup_loss",
]

_TINY = 1e-12


def entropy(p, dim=-1):
    """Shannon entropy H(p) = −Σ_k p_k log p_k along ``dim`` (nats).

    Arguments
    ---------
    p : torch.Tensor
        Probabilities (non-negative, summing to one along ``dim``).
    dim : int
        Axis of the distribution.

    Returns
    -------
    torch.Tensor
        Entropies, ``dim`` removed.

    Example
    -------
    >>> round(entropy(torch.tensor([0.5, 0.5])).item(), 4)
    0.6931
    """
    return -(p * torch.log(p.clamp_min(_TINY))).sum(dim=dim)


def conditional_entropy(p):
    """H(Y|X) = (1/B) Σ_i H(p_i): low when every prediction is confident.

    Arguments
    ---------
    p : torch.Tensor
        (B, K) cluster probabilities.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> conditional_entropy(torch.eye(3)).item()
    0.0
    """
    return entropy(p).mean()


def marginal_entropy(p):
    """H(Y) = H((1/B) Σ_i p_i): high when the batch uses all clusters evenly.

    Arguments
    ---------
    p : torch.Tensor
        (B, K) cluster probabilities.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> round(marginal_entropy(torch.eye(4)).item(), 4)  # log 4
    1.3863
    """
    return entropy(p.mean(dim=0))


def information_maximization_loss(p, mu=2.0):
    """Information maximisation term H(Y|X) − μ·H(Y).

    With μ = 1 this is minus the mutual information between points and
    clusters. μ > 1 favours balanced clusters more strongly; it also pushes
    toward using all K clusters, which works against discovering a smaller
    count (see :class:`~camsat_lobes.clustering.camsat.CAMSAT`).

    Arguments
    ---------
    p : torch.Tensor
        (B, K) cluster probabilities.
    mu : float
        Weight of the marginal entropy.

    Returns
    -------
    torch.Tensor
        Scalar.

    Example
    -------
    >>> round(information_maximization_loss(torch.eye(2), mu=4.0).item(), 4)  # -4 log 2
    -2.7726
    """
    return conditional_entropy(p) - mu * marginal_entropy(p)


def kl_divergence(target, logits):
    """Mean over the batch of KL(target ‖ softmax(logits)).

    Arguments
    ---------
    target : torch.Tensor
        (..., K) target probabilities (usually detached).
    logits : torch.Tensor
        (..., K) logits of the prediction.

    Returns
    -------
    torch.Tensor
        Scalar: the KL summed over K and averaged over all leading axes.

    Example
    -------
    >>> p = torch.tensor([[0.5, 0.5]])
    >>> kl_divergence(p, torch.zeros(1, 2)).item()
    0.0
    """
    log_q = F.log_softmax(logits, dim=-1)
    kl = (target * (torch.log(target.clamp_min(_TINY)) - log_q)).sum(dim=-1)
    return kl.mean()


def _unit(d):
    """Scale each row of ``d`` (flattened past the first axis) to unit norm."""
    norm = d.flatten(1).norm(dim=1).clamp_min(_TINY)
    return d / norm.view(-1, *([1] * (d.dim() - 1)))


@contextmanager
def frozen_batch_norm_statistics(module):
    """Run forward passes in train mode without updating BatchNorm running statistics.

    Perturbed or mixed inputs are off the data distribution; letting them move
    the running mean and variance makes the evaluation-mode predictions drift
    away from the training-mode ones (on synthetic blobs this alone collapsed
    the predicted clusters). The batch statistics are still used.

    Arguments
    ---------
    module : object
        A torch module (anything else is left alone).

    Yields
    ------
    None
        Inside the block, BatchNorm layers have momentum 0.

    Example
    -------
    >>> bn = nn.BatchNorm1d(2)
    >>> with frozen_batch_norm_statistics(bn):
    ...     _ = bn(torch.randn(8, 2) + 5)
    >>> bn.running_mean.tolist()
    [0.0, 0.0]
    """
    layers = (
        [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
        if isinstance(module, nn.Module)
        else []
    )
    saved = [layer.momentum for layer in layers]
    for layer in layers:
        layer.momentum = 0.0
    try:
        yield
    finally:
        for layer, momentum in zip(layers, saved):
            layer.momentum = momentum


def vat_loss(head, x, target, eps, xi_fraction=0.1, power_iterations=1):
    """Virtual adversarial training: smoothness against the worst local perturbation.

    L_VAT = (1/B) Σ_i KL(p̂_i ‖ p(x_i + r_i)) with r_i = ε_i · d_i / ‖d_i‖,
    where d_i approximates the direction that most increases that KL: start
    from a random unit vector and, for each power iteration, replace it by the
    gradient of KL(p̂_i ‖ p(x_i + ξ_i·d_i)) with respect to d_i. The clean
    prediction p̂ is a fixed target; only the perturbed branch is trained, and
    the perturbed passes leave BatchNorm running statistics alone.

    The probe step is relative to each point's radius, ξ_i = ``xi_fraction``·ε_i,
    so the loss does not depend on the units of x: scaling x and ε by c (and the
    head's input by 1/c) gives the same loss. The power iteration estimates the
    top eigenvector of the Hessian of the KL at x_i, which a finite difference
    finds only while the probe stays in the region where the KL is quadratic,
    i.e. well inside the neighbourhood that ε_i describes. IMSAT's ξ = 10 in
    pixel units was of the order of the neighbour distance; on L2-normalised
    embeddings (10th-neighbour distance ≈ 0.5) the same absolute ξ reaches across
    clusters and the found direction is barely better than a random one. The
    default 0.1 sits in the middle of the range where the direction is good: on
    L2-normalised blobs (10 clusters in 32 dimensions, 10th-neighbour distance
    0.3, a briefly trained head; 4 seeds), the KL at radius ε along the found
    direction was 14-15 times that along a random direction for fractions from
    0.001 to 1, 12-13 times at 4, 7-8 times at 10 and 1.0-1.3 times with the
    absolute ξ = 10 (≈ 130·ε); at 1e-4 the step drowns in float32 round-off and
    the direction is noise.

    Arguments
    ---------
    head : callable
        Maps (B, D) inputs to (B, K) logits.
    x : torch.Tensor
        (B, D) inputs.
    target : torch.Tensor
        (B, K) detached clean probabilities p̂.
    eps : torch.Tensor or float
        (B,) perturbation radius ε_i of each point (in input units), or one
        radius for all.
    xi_fraction : float
        Finite-difference step of the power iteration as a fraction of each
        point's radius (ξ_i = xi_fraction·ε_i); must be positive.
    power_iterations : int
        Number of power iterations.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> head = torch.nn.Linear(3, 2)
    >>> x = torch.randn(4, 3)
    >>> target = torch.softmax(head(x), dim=1).detach()
    >>> vat_loss(head, x, target, eps=torch.full((4,), 0.1)).item() >= 0
    True
    """
    if not xi_fraction > 0:
        raise ValueError(f"xi_fraction={xi_fraction} must be positive (a fraction of eps)")
    per_point = (-1, *([1] * (x.dim() - 1)))
    radius = torch.as_tensor(eps, dtype=x.dtype, device=x.device).expand(x.shape[0])
    radius = radius.reshape(per_point)
    d = _unit(torch.randn_like(x))
    with frozen_batch_norm_statistics(head):
        for _ in range(power_iterations):
            d.requires_grad_(True)
            divergence = kl_divergence(target, head(x + xi_fraction * radius * d))
            (grad,) = torch.autograd.grad(divergence, d)
            d = _unit(grad.detach())
        return kl_divergence(target, head(x + radius * d))


def augmentation_loss(target, view_logits):
    """Agreement of every augmented view with the clean prediction.

    L_aug = (1/(B·V)) Σ_i Σ_v KL(p̂_i ‖ p_i^v): the forward KL from the detached
    clean prediction to each view's prediction (a cross-entropy against a soft
    target), so views learn to predict what the clean point predicts.

    Arguments
    ---------
    target : torch.Tensor
        (B, K) detached clean probabilities.
    view_logits : torch.Tensor
        (B, V, K) logits of the views.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> target = torch.tensor([[1.0, 0.0]])
    >>> round(augmentation_loss(target, torch.zeros(1, 3, 2)).item(), 4)  # log 2
    0.6931
    """
    return kl_divergence(target.unsqueeze(1).expand_as(view_logits), view_logits)


def symmetry_loss(view_probs):
    """Jensen-Shannon agreement between the views of each point (augmentation mix).

    With the mixture p̄_i = (1/V) Σ_v p_i^v of the views' predictions,
    L_symmetry = (1/(B·V)) Σ_i Σ_v KL(p_i^v ‖ p̄_i) = (1/B) Σ_i [H(p̄_i) −
    (1/V) Σ_v H(p_i^v)], the generalised Jensen-Shannon divergence. It is
    symmetric in the views, zero only when all views agree, and every view
    (and the mixture) carries gradient.

    Arguments
    ---------
    view_probs : torch.Tensor
        (B, V, K) probabilities of the views.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> agree = torch.tensor([[[0.9, 0.1], [0.9, 0.1]]])
    >>> symmetry_loss(agree).item() < 1e-6
    True
    """
    mixture = view_probs.mean(dim=1)
    return (entropy(mixture) - entropy(view_probs).mean(dim=1)).mean()


def contrastive_loss(features, labels, temperature=0.5):
    """Supervised contrastive loss over several views (shared by SupCon and InfoNCE).

    For the A = B·V anchors a (every view of every point), z_a the L2-normalised
    feature, P(a) the other anchors with the same label and
    s_ab = z_a·z_b / τ:

    L = (1/A) Σ_a −(1/|P(a)|) Σ_{p∈P(a)} log( exp(s_ap) / Σ_{b≠a} exp(s_ab) ).

    Arguments
    ---------
    features : torch.Tensor
        (B, V, F) features, V ≥ 2 (normalised here).
    labels : torch.Tensor
        (B,) integer label of each point (shared by its views).
    temperature : float
        τ.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> z = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    >>> aligned = contrastive_loss(z, torch.tensor([0, 1]), temperature=0.1).item()
    >>> mixed = torch.tensor([[[1.0, 0.0], [0.0, 1.0]], [[0.0, 1.0], [1.0, 0.0]]])
    >>> crossed = contrastive_loss(mixed, torch.tensor([0, 1]), temperature=0.1).item()
    >>> aligned < 0.01, aligned < crossed
    (True, True)
    """
    batch, n_views, _ = features.shape
    z = F.normalize(features.reshape(batch * n_views, -1), dim=1)
    anchor_labels = labels.repeat_interleave(n_views)
    logits = z @ z.T / temperature
    self_mask = torch.eye(batch * n_views, dtype=torch.bool, device=z.device)
    logits = logits.masked_fill(self_mask, float("-inf"))
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    positives = (anchor_labels[:, None] == anchor_labels[None, :]) & ~self_mask
    per_anchor = -(log_prob.masked_fill(~positives, 0.0)).sum(dim=1) / positives.sum(dim=1)
    return per_anchor.mean()


def supcon_loss(features, target, temperature=0.5):
    """SupCon ablation: contrast views with the current pseudo-labels as classes.

    :func:`contrastive_loss` with labels ŷ_i = argmax_k p̂_ik (the detached
    clean prediction): every view of every point in the same cluster is a
    positive, all other anchors in the batch are negatives.

    Arguments
    ---------
    features : torch.Tensor
        (B, V, F) head features of the clean point and its views.
    target : torch.Tensor
        (B, K) detached clean probabilities.
    temperature : float
        τ.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> z = torch.randn(4, 2, 8, requires_grad=True)
    >>> supcon_loss(z, torch.eye(2)[[0, 0, 1, 1]]).backward()
    >>> z.grad.abs().sum().item() > 0
    True
    """
    return contrastive_loss(features, target.argmax(dim=1), temperature)


def infonce_loss(features, temperature=0.5):
    """InfoNCE ablation: each point's views are its only positives.

    :func:`contrastive_loss` with labels = point index (the multi-view NT-Xent
    loss of SimCLR): the views of one point attract, all other points' views
    repel.

    Arguments
    ---------
    features : torch.Tensor
        (B, V, F) head features of the clean point and its views.
    temperature : float
        τ.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> z = torch.randn(4, 2, 8, requires_grad=True)
    >>> infonce_loss(z).backward()
    >>> z.grad.abs().sum().item() > 0
    True
    """
    return contrastive_loss(
        features, torch.arange(features.shape[0], device=features.device), temperature
    )


def mixup_loss(head, x, target, alpha=1.0):
    """Mixup ablation: the prediction of a mixed input matches the mixed targets.

    With a random pairing π of the batch and λ_i ~ Beta(α, α),
    x̃_i = λ_i x_i + (1 − λ_i) x_π(i) and t_i = λ_i p̂_i + (1 − λ_i) p̂_π(i):
    L_mixup = (1/B) Σ_i KL(t_i ‖ p(x̃_i)).

    Arguments
    ---------
    head : callable
        Maps (B, D) inputs to (B, K) logits.
    x : torch.Tensor
        (B, D) inputs.
    target : torch.Tensor
        (B, K) detached clean probabilities.
    alpha : float
        Beta distribution parameter.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> _ = torch.manual_seed(0)  # a KL near 0 can round below it for other draws
    >>> head = torch.nn.Linear(3, 2)
    >>> x = torch.randn(4, 3)
    >>> target = torch.softmax(head(x), dim=1).detach()
    >>> mixup_loss(head, x, target).item() > 0
    True
    """
    batch = x.shape[0]
    perm = torch.randperm(batch).to(x.device)
    beta = torch.distributions.Beta(torch.tensor(float(alpha)), torch.tensor(float(alpha)))
    lam = beta.sample((batch, 1)).to(x.device)
    mixed_x = lam * x + (1 - lam) * x[perm]
    mixed_target = lam * target + (1 - lam) * target[perm]
    with frozen_batch_norm_statistics(head):
        return kl_divergence(mixed_target, head(mixed_x))
