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


def _sphere_blobs(n_clusters=10, per_cluster=50, dim=32, spread=0.25, seed=0):
    """L2-normalised blobs on the unit hypersphere (10th-neighbour distance about 0.3)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(n_clusters, dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    labels = np.repeat(np.arange(n_clusters), per_cluster)
    x = centres[labels] + spread * rng.normal(size=(labels.size, dim)) / np.sqrt(dim)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return torch.from_numpy(x.astype(np.float32))


def _vat_radius(x, neighbours=10, eps_scale=0.25):
    """CAMSAT's default radius: 0.25 × the distance to the 10th nearest neighbour."""
    distances = torch.cdist(x, x)
    return eps_scale * distances.sort(dim=1).values[:, neighbours]


def _briefly_trained_head(x, n_clusters=20, steps=50, seed=0):
    """A small BatchNorm head after a few full-batch steps of information maximisation."""
    torch.manual_seed(seed)
    head = ClusteringHead(x.shape[1], n_clusters, hidden_sizes=(64,))
    optimizer = torch.optim.Adam(head.parameters(), lr=2e-3)
    for _ in range(steps):
        loss = information_maximization_loss(F.softmax(head(x), dim=1), mu=4.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return head


def _random_direction_divergence(head, x, target, eps, draws=20):
    """Mean KL at radius eps along random unit directions (same BatchNorm handling)."""
    values = []
    with frozen_batch_norm_statistics(head), torch.no_grad():
        for _ in range(draws):
            d = F.normalize(torch.randn_like(x), dim=1)
            values.append(kl_divergence(target, head(x + eps[:, None] * d)).item())
    return float(np.mean(values))


@pytest.mark.parametrize("seed", [0, 1])
def test_vat_with_default_step_finds_a_direction_on_unit_norm_embeddings(seed):
    """On L2-normalised blobs, the defaults give a direction far better than a random one.

    An absolute probe step of 10 (IMSAT's value for pixels) is about 30 times this
    fixture's 10th-neighbour distance: its direction is little better than random.
    """
    x = _sphere_blobs(seed=seed)
    eps = _vat_radius(x)
    head = _briefly_trained_head(x, seed=seed).train()
    target = F.softmax(head(x), dim=1).detach()
    torch.manual_seed(seed)
    random_kl = _random_direction_divergence(head, x, target, eps)
    adversarial = [vat_loss(head, x, target, eps).item() for _ in range(3)]
    assert np.mean(adversarial) > 10 * random_kl, (adversarial, random_kl)
    too_far = vat_loss(head, x, target, eps, xi_fraction=10.0 / eps.median().item()).item()
    assert too_far < 0.5 * np.mean(adversarial)


def test_vat_is_invariant_to_the_scale_of_the_inputs():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    x = F.normalize(torch.randn(64, 8), dim=1)
    target = F.softmax(head(x), dim=1).detach()
    eps = torch.linspace(0.05, 0.2, 64)
    c = 40.0
    rescaled_head = torch.nn.Sequential(_Scale(1 / c), head)
    torch.manual_seed(1)
    unit = vat_loss(head, x, target, eps)
    torch.manual_seed(1)
    scaled = vat_loss(rescaled_head, c * x, target, c * eps)
    torch.testing.assert_close(scaled, unit, rtol=1e-3, atol=1e-7)


class _Scale(torch.nn.Module):
    def __init__(self, factor):
        super().__init__()
        self.factor = factor

    def forward(self, x):
        return self.factor * x


def test_vat_direction_beats_random_with_more_power_iterations():
    torch.manual_seed(0)
    head = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.Tanh(), torch.nn.Linear(32, 4))
    x = torch.randn(64, 8)
    target = F.softmax(head(x), dim=1).detach()
    eps = torch.full((64,), 0.5)
    adversarial = vat_loss(head, x, target, eps, power_iterations=2).item()
    random_losses = []
    for _ in range(20):
        d = F.normalize(torch.randn_like(x), dim=1)
        random_losses.append(kl_divergence(target, head(x + 0.5 * d)).item())
    assert adversarial > 2 * np.mean(random_losses)


def test_vat_accepts_one_radius_zero_radii_and_rejects_a_bad_step():
    torch.manual_seed(0)
    head = torch.nn.Linear(5, 3)
    x = torch.randn(6, 5)
    target = F.softmax(head(x), dim=1).detach()
    torch.manual_seed(1)
    shared = vat_loss(head, x, target, 0.3)
    torch.manual_seed(1)
    torch.testing.assert_close(shared, vat_loss(head, x, target, torch.full((6,), 0.3)))
    assert vat_loss(head, x, target, torch.zeros(6)).item() == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="xi_fraction"):
        vat_loss(head, x, target, 0.3, xi_fraction=0.0)


def test_vat_does_not_move_batch_norm_statistics():
    head = ClusteringHead(4, 3, hidden_sizes=(8,))
    x = torch.randn(16, 4)
    target = F.softmax(head(x), 1).detach()  # the clean pass does update the statistics
    before = head.body[1].running_mean.clone()
    vat_loss(head, x, target, torch.ones(16))
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
