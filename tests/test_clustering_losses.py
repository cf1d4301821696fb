"""Loss terms: known values, VAT direction, gradients reaching the head."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from camsat_lobes.clustering import ClusteringHead
from camsat_lobes.clustering.losses import (
    augmentation_loss,
    conditional_entropy,
    contrastive_loss,
    entropy,
    frozen_batch_norm_statistics,
    infonce_loss,
    information_maximization_loss,
    kl_divergence,
    marginal_entropy,
    mixup_loss,
    supcon_loss,
    symmetry_loss,
    vat_loss,
)


def test_entropies_of_known_distributions():
    k = 5
    uniform = torch.full((3, k), 1 / k)
    one_hot = torch.eye(k)
    assert entropy(uniform[0]).item() == pytest.approx(math.log(k))
    assert entropy(one_hot).tolist() == [0.0] * k
    assert conditional_entropy(one_hot).item() == 0.0
    assert marginal_entropy(one_hot).item() == pytest.approx(math.log(k))
    # Uniform predictions: each is uncertain, and so is their mean.
    assert conditional_entropy(uniform).item() == pytest.approx(math.log(k))
    assert marginal_entropy(uniform).item() == pytest.approx(math.log(k))
    # All points confidently in cluster 0: no uncertainty, no balance.
    collapsed = torch.eye(k)[[0, 0, 0]]
    assert marginal_entropy(collapsed).item() == pytest.approx(0.0, abs=1e-6)
    p = torch.tensor([[0.2, 0.8], [0.6, 0.4]])
    h_rows = [
        -(0.2 * math.log(0.2) + 0.8 * math.log(0.8)),
        -(0.6 * math.log(0.6) + 0.4 * math.log(0.4)),
    ]
    h_mean = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6))  # mean prediction (0.4, 0.6)
    assert conditional_entropy(p).item() == pytest.approx(sum(h_rows) / 2)
    assert marginal_entropy(p).item() == pytest.approx(h_mean)
    mu = 3.0
    assert information_maximization_loss(p, mu).item() == pytest.approx(
        sum(h_rows) / 2 - mu * h_mean
    )


def test_kl_and_view_terms_known_values():
    target = torch.tensor([[0.25, 0.75]])
    logits = torch.log(torch.tensor([[0.5, 0.5]]))
    expected = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert kl_divergence(target, logits).item() == pytest.approx(expected, rel=1e-6)
    assert augmentation_loss(target, logits[:, None].expand(1, 3, 2)).item() == pytest.approx(
        expected, rel=1e-6
    )
    views = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])  # two views that disagree completely
    assert symmetry_loss(views).item() == pytest.approx(math.log(2))  # JSD of disjoint = log 2
    q = torch.tensor([[[0.3, 0.7], [0.6, 0.4], [0.5, 0.5]]])
    mixture = q.mean(dim=1)
    jsd = sum((q[0, v] * torch.log(q[0, v] / mixture[0])).sum().item() for v in range(3)) / 3
    assert symmetry_loss(q).item() == pytest.approx(jsd, rel=1e-5)


def test_contrastive_loss_matches_a_direct_implementation():
    torch.manual_seed(0)
    features = torch.randn(4, 3, 5)
    labels = torch.tensor([0, 1, 0, 2])
    tau = 0.3
    z = F.normalize(features.reshape(12, 5), dim=1).numpy()
    anchor_labels = labels.repeat_interleave(3).numpy()
    total = 0.0
    for a in range(12):
        others = [b for b in range(12) if b != a]
        log_denominator = np.log(sum(np.exp(z[a] @ z[b] / tau) for b in others))
        positives = [b for b in others if anchor_labels[b] == anchor_labels[a]]
        total += -np.mean([z[a] @ z[p] / tau - log_denominator for p in positives])
    assert contrastive_loss(features, labels, tau).item() == pytest.approx(total / 12, rel=1e-4)
    target = F.one_hot(labels, 3).float()
    assert supcon_loss(features, target, tau).item() == pytest.approx(total / 12, rel=1e-4)
    assert infonce_loss(features, tau).item() == pytest.approx(
        contrastive_loss(features, torch.arange(4), tau).item()
    )


def test_vat_direction_increases_the_divergence_more_than_random():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    x = torch.randn(64, 8)
    target = F.softmax(head(x), dim=1).detach()
    eps = torch.full((64,), 0.5)
    adversarial = vat_loss(head, x, target, eps, xi=1e-3, power_iterations=2).item()
    random_losses = []
    for _ in range(20):
        d = F.normalize(torch.randn_like(x), dim=1)
        random_losses.append(kl_divergence(target, head(x + 0.5 * d)).item())
    assert adversarial > 2 * np.mean(random_losses)


def test_vat_does_not_move_batch_norm_statistics():
    head = ClusteringHead(4, 3, hidden_sizes=(8,))
    x = torch.randn(16, 4)
    target = F.softmax(head(x), 1).detach()  # the clean pass does update the statistics
    before = head.body[1].running_mean.clone()
    vat_loss(head, x, target, torch.ones(16), xi=10.0)
    assert torch.equal(before, head.body[1].running_mean)
    with frozen_batch_norm_statistics(head):
        head(x + 100)
    assert torch.equal(before, head.body[1].running_mean)


def _first_layer_grad(head, loss):
    head.zero_grad()
    loss.backward()
    return head.body[0].weight.grad.abs().sum().item()


@pytest.mark.parametrize(
    "term",
    ["information", "vat", "augmentation", "symmetry", "supcon", "infonce", "mixup"],
)
def test_every_term_reaches_the_head(term):
    torch.manual_seed(1)
    head = ClusteringHead(6, 4, hidden_sizes=(16,))
    x = torch.randn(12, 6)
    views = x[:, None] + 0.3 * torch.randn(12, 3, 6)
    hidden = head.features(x)
    p = F.softmax(head.classifier(hidden), dim=1)
    target = p.detach()
    view_hidden = head.features(views.reshape(36, 6))
    view_logits = head.classifier(view_hidden).view(12, 3, 4)
    features = torch.cat([hidden[:, None], view_hidden.view(12, 3, -1)], dim=1)
    loss = {
        "information": lambda: information_maximization_loss(p, 4.0),
        "vat": lambda: vat_loss(head, x, target, torch.full((12,), 0.5)),
        "augmentation": lambda: augmentation_loss(target, view_logits),
        "symmetry": lambda: symmetry_loss(F.softmax(view_logits, -1)),
        "supcon": lambda: supcon_loss(features, target),
        "infonce": lambda: infonce_loss(features),
        "mixup": lambda: mixup_loss(head, x, target),
    }[term]()
    assert torch.isfinite(loss)
    assert _first_layer_grad(head, loss) > 0
