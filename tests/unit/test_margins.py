import io
import math
import pathlib

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
from hyperpyyaml import load_hyperpyyaml
from speechbrain.utils.checkpoints import Checkpointer

from camsat_lobes.margins import (
    AAMSoftmax,
    AdaFace,
    AMSoftmax,
    CosFace,
    MarginSoftmax,
    OCSoftmax,
    Softmax,
    SpeakerLoss,
)

HPARAMS = pathlib.Path(__file__).resolve().parents[2] / "hparams" / "losses"
DIM, CLASSES, BATCH = 16, 7, 12
ALL_LOSSES = [AAMSoftmax, AMSoftmax, CosFace, AdaFace, OCSoftmax, Softmax]
MARGIN_SOFTMAXES = [AAMSoftmax, AMSoftmax, CosFace, AdaFace]


def batch(seed=0, scale=5.0):
    gen = torch.Generator().manual_seed(seed)
    emb = scale * torch.randn(BATCH, DIM, generator=gen)
    labels = torch.randint(0, CLASSES, (BATCH,), generator=gen)
    return emb, labels


def build(cls, seed=0, **kwargs):
    torch.manual_seed(seed)
    return cls(DIM, CLASSES, **kwargs)


def cosines(loss, emb):
    return F.normalize(emb, dim=1) @ F.normalize(loss.weight, dim=1).t()


@pytest.mark.parametrize("cls", MARGIN_SOFTMAXES)
def test_zero_margin_is_cross_entropy_on_scaled_cosines(cls):
    loss = build(cls, margin=0.0)
    emb, labels = batch()
    expected = F.cross_entropy(loss.scale * cosines(loss, emb), labels)
    torch.testing.assert_close(loss(emb, labels), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("cls", MARGIN_SOFTMAXES)
def test_margin_lowers_the_target_logit_only(cls):
    plain, with_margin = build(cls, margin=0.0), build(cls)
    emb, labels = batch(seed=1)
    emb = emb * torch.linspace(0.1, 30.0, BATCH).unsqueeze(1)  # spread the norms (AdaFace)
    before, after = plain.logits(emb, labels), with_margin.logits(emb, labels)
    target = F.one_hot(labels, CLASSES).bool()
    torch.testing.assert_close(after[~target], before[~target])
    assert (after[target] < before[target] - 1e-3).all()


def test_am_and_cosface_share_the_formula_with_their_published_defaults():
    am, cosface = build(AMSoftmax), build(CosFace)
    assert (am.margin, am.scale) == (0.35, 30.0)
    assert (cosface.margin, cosface.scale) == (0.35, 64.0)
    emb, labels = batch()
    rescaled = build(AMSoftmax, margin=0.35, scale=64.0)
    torch.testing.assert_close(rescaled.logits(emb, labels), cosface.logits(emb, labels))
    logits = am.logits(emb, labels)
    expected = 30.0 * (cosines(am, emb) - 0.35 * F.one_hot(labels, CLASSES))
    torch.testing.assert_close(logits, expected, rtol=1e-5, atol=1e-4)


def test_aam_target_logit_is_cos_of_angle_plus_margin():
    loss = build(AAMSoftmax, margin=0.2, scale=30.0)
    emb, labels = batch(seed=2)
    cos = cosines(loss, emb).gather(1, labels[:, None]).squeeze(1)
    target = loss.logits(emb, labels).gather(1, labels[:, None]).squeeze(1)
    torch.testing.assert_close(target, 30.0 * torch.cos(torch.acos(cos) + 0.2), atol=1e-3, rtol=0)


def test_softmax_is_plain_linear_cross_entropy():
    loss = build(Softmax)
    emb, labels = batch()
    expected = F.cross_entropy(F.linear(emb, loss.weight, loss.bias), labels)
    torch.testing.assert_close(loss(emb, labels), expected)
    no_bias = build(Softmax, bias=False)
    assert no_bias.bias is None
    torch.testing.assert_close(
        no_bias(emb, labels), F.cross_entropy(emb @ no_bias.weight.t(), labels)
    )


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_gradients_reach_embeddings_and_weights(cls):
    loss = build(cls)
    emb, labels = batch()
    emb.requires_grad_(True)
    loss(emb.unsqueeze(1), labels.unsqueeze(1)).backward()  # SpeechBrain's shapes
    for grad in (emb.grad, loss.weight.grad):
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_scores_are_cosines_without_labels(cls):
    loss = build(cls)
    emb, _ = batch()
    scores = loss.scores(emb.unsqueeze(1))
    assert scores.shape == (BATCH, CLASSES) and scores.dtype == torch.float32
    torch.testing.assert_close(scores, cosines(loss, emb))


def published_oc_softmax(emb, centre, is_target, alpha=20.0, m_pos=0.9, m_neg=0.2):
    """Two-class OC-softmax as published: one centre, targets vs the rest."""
    cos = F.normalize(emb, dim=1) @ F.normalize(centre, dim=0)
    margin_term = torch.where(is_target, m_pos - cos, cos - m_neg)
    return F.softplus(alpha * margin_term).mean()


def test_two_centre_oc_softmax_is_the_published_loss_summed_over_the_centres():
    torch.manual_seed(0)
    loss = OCSoftmax(DIM, 2)
    emb, labels = batch(seed=3)
    labels = labels % 2
    per_centre = [published_oc_softmax(emb, loss.weight[k], labels == k) for k in range(2)]
    torch.testing.assert_close(loss(emb, labels), torch.stack(per_centre).sum())


def test_one_centre_oc_softmax_keeps_only_the_target_term():
    """With one centre every sample is a target: the published loss on a batch of targets."""
    single = OCSoftmax(DIM, 1)
    emb, _ = batch(seed=3)
    zeros = torch.zeros(BATCH, dtype=torch.long)
    emb.requires_grad_(True)
    value = single(emb, zeros)
    torch.testing.assert_close(value, published_oc_softmax(emb, single.weight[0], zeros == 0))
    value.backward()
    assert torch.isfinite(emb.grad).all()


def test_oc_softmax_terms_are_own_centre_nearest_rival_and_mean_of_the_rest():
    def softplus(v):
        return math.log1p(math.exp(v))

    loss = build(OCSoftmax)
    emb, labels = batch(seed=9)
    cos = cosines(loss, emb).tolist()
    expected = []
    for i, label in enumerate(labels.tolist()):
        others = sorted(c for k, c in enumerate(cos[i]) if k != label)
        rival, rest = others[-1], others[:-1]
        expected.append(
            softplus(20 * (0.9 - cos[i][label]))
            + softplus(20 * (rival - 0.2))
            + sum(softplus(20 * (c - 0.2)) for c in rest) / len(rest)
        )
    assert loss(emb, labels).item() == pytest.approx(sum(expected) / len(expected), rel=1e-5)


def test_oc_softmax_crowd_weight_of_k_minus_two_is_the_sum_over_all_other_centres():
    loss = build(OCSoftmax, crowd_weight=CLASSES - 2)
    emb, labels = batch(seed=10)
    cos = cosines(loss, emb)
    target = F.one_hot(labels, CLASSES).bool()
    per_pair = F.softplus(20 * torch.where(target, 0.9 - cos, cos - 0.2))
    torch.testing.assert_close(loss(emb, labels), per_pair.sum(dim=1).mean())
    with pytest.raises(ValueError, match="crowd_weight"):
        OCSoftmax(DIM, CLASSES, crowd_weight=-1.0)


def _sample_with_centres(n_classes, rival_cosine, crowd_cosine, dim=192):
    """A unit sample on its own centre (class 0), one rival centre and a crowd of others."""
    torch.manual_seed(0)
    loss = OCSoftmax(dim, n_classes)
    x = F.normalize(torch.randn(dim), dim=0)
    with torch.no_grad():
        away = F.normalize(loss.weight - (loss.weight @ x)[:, None] * x, dim=1)  # unit, ⟂ x
        cosine = torch.full((n_classes,), crowd_cosine)
        cosine[0], cosine[1] = 1.0, rival_cosine
        weight = cosine[:, None] * x + (1 - cosine[:, None] ** 2).sqrt() * away
        loss.weight.copy_(weight)
    return loss, x, weight


@pytest.mark.parametrize("n_classes", [10, 10_000])
def test_oc_softmax_pushes_one_confusable_centre_as_the_published_loss_does(n_classes):
    """A rival at cosine 0.3 gets the two-class loss and gradient, however many other centres."""
    loss, x, weight = _sample_with_centres(n_classes, rival_cosine=0.3, crowd_cosine=0.0)
    emb = x[None].clone().requires_grad_(True)
    value = loss(emb, torch.tensor([0]))
    value.backward()
    own, rival, crowd = (F.softplus(torch.tensor(20 * v)) for v in (0.9 - 1.0, 0.3 - 0.2, -0.2))
    torch.testing.assert_close(value, own + rival + crowd)  # the crowd's mean is one term
    # d cos(x, w) / dw = x - cos w for unit x and w; the own centre, at cosine 1, gets nothing.
    rival_weight = 20 * torch.sigmoid(torch.tensor(2.0))
    torch.testing.assert_close(loss.weight.grad[1], rival_weight * (x - 0.3 * weight[1]))
    crowd_weight = 20 * torch.sigmoid(torch.tensor(-4.0)) / (n_classes - 2)
    torch.testing.assert_close(loss.weight.grad[2:], crowd_weight * x.expand(n_classes - 2, -1))
    expected = rival_weight * (weight[1] - 0.3 * x) + crowd_weight * weight[2:].sum(dim=0)
    torch.testing.assert_close(emb.grad[0], expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("n_classes", [10, 10_000])
def test_oc_softmax_crowd_pushes_as_hard_as_one_negative_whatever_its_size(n_classes):
    """All other centres inside the margin (a narrow cone): the crowd weighs as the rival does."""
    loss, x, _ = _sample_with_centres(n_classes, rival_cosine=0.46, crowd_cosine=0.45)
    loss(x[None], torch.tensor([0])).backward()
    grad_norms = loss.weight.grad.norm(dim=1)
    rival, crowd = grad_norms[1], grad_norms[2:].sum()
    assert 0.8 < (crowd / rival).item() < 1.05, (rival, crowd)
    assert rival.item() == pytest.approx(
        20 * torch.sigmoid(torch.tensor(20 * 0.26)).item() * math.sqrt(1 - 0.46**2), rel=1e-4
    )


def _oc_at_initialisation(n_classes, dim=192, batch_size=64):
    """Loss and embedding-gradient norm at initialisation; the same embeddings for every K."""
    gen = torch.Generator().manual_seed(0)
    emb = torch.randn(batch_size, dim, generator=gen).requires_grad_(True)
    labels = torch.randint(0, 10, (batch_size,), generator=gen)
    torch.manual_seed(1)
    loss = OCSoftmax(dim, n_classes)
    value = loss(emb, labels)
    value.backward()
    # The sum over all other centres, the form this loss replaces, for comparison.
    cos = cosines(loss, emb.detach())
    negatives = F.softplus(20 * (cos - 0.2)).masked_fill(F.one_hot(labels, n_classes).bool(), 0)
    own = F.softplus(20 * (0.9 - cos.gather(1, labels[:, None]).squeeze(1)))
    summed = (own + negatives.sum(dim=1)).mean()
    return value.item(), emb.grad.norm().item(), summed.item()


def test_oc_softmax_scale_does_not_grow_with_the_number_of_speakers():
    value_10, grad_10, summed_10 = _oc_at_initialisation(10)
    value_big, grad_big, summed_big = _oc_at_initialisation(10_000)
    assert 1 / 3 < value_big / value_10 < 3, (value_10, value_big)
    assert 1 / 3 < grad_big / grad_10 < 3, (grad_10, grad_big)
    assert summed_big / summed_10 > 10  # a sum over the other centres grows with K


def test_oc_softmax_pulls_own_centre_and_pushes_the_nearest_other():
    loss = build(OCSoftmax)
    emb, labels = batch(seed=4)
    emb.requires_grad_(True)
    loss(emb, labels).backward()
    centres = F.normalize(loss.weight.detach(), dim=1)
    cos = cosines(loss, emb.detach())
    nearest_other = cos.masked_fill(F.one_hot(labels, CLASSES).bool(), -2.0).argmax(dim=1)
    step = -emb.grad  # gradient descent direction
    assert (F.cosine_similarity(step, centres[labels]) > 0).float().mean() > 0.8
    assert (F.cosine_similarity(step, centres[nearest_other]) < 0).float().mean() > 0.8


def test_adaface_statistics_update_in_training_freeze_in_eval_and_survive_save_load(tmp_path):
    loss = build(AdaFace)
    emb, labels = batch(seed=5)
    norms = emb.norm(dim=1).clamp(0.001, 100.0)
    loss(emb, labels)
    torch.testing.assert_close(loss.norm_mean, 0.99 * torch.tensor(20.0) + 0.01 * norms.mean())
    torch.testing.assert_close(loss.norm_std, 0.99 * torch.tensor(100.0) + 0.01 * norms.std())

    loss.eval()
    frozen = (loss.norm_mean.clone(), loss.norm_std.clone())
    loss(emb * 3, labels)
    assert torch.equal(loss.norm_mean, frozen[0]) and torch.equal(loss.norm_std, frozen[1])

    buffer = io.BytesIO()
    torch.save(loss.state_dict(), buffer)
    buffer.seek(0)
    restored = build(AdaFace, seed=1)
    restored.load_state_dict(torch.load(buffer))
    assert torch.equal(restored.norm_mean, frozen[0]) and torch.equal(restored.norm_std, frozen[1])

    checkpointer = Checkpointer(tmp_path, recoverables={"speaker_loss": loss})
    checkpointer.save_checkpoint()
    fresh = build(AdaFace, seed=2)
    Checkpointer(tmp_path, recoverables={"speaker_loss": fresh}).recover_if_possible()
    assert torch.equal(fresh.norm_mean, frozen[0]) and torch.equal(fresh.weight, loss.weight)


def test_adaface_margin_adapts_to_the_norm():
    loss = build(AdaFace)
    loss.eval()  # keep the statistics at mean 20, std 100
    direction, labels = batch(seed=6)[0][:1], torch.tensor([0])
    direction = F.normalize(direction, dim=1)
    low = loss.logits(0.001 * direction, labels)[0, 0]
    high = loss.logits(100.0 * direction, labels)[0, 0]
    cos = cosines(loss, direction)[0, 0]
    g_low, g_high = 0.333 * (0.001 - 20) / 100.001, 0.333 * (100 - 20) / 100.001
    for logit, g in ((low, g_low), (high, g_high)):
        theta = torch.acos(cos) - 0.4 * g
        torch.testing.assert_close(logit, 64.0 * (torch.cos(theta) - 0.4 * (1 + g)))


def test_mixed_loss_updates_adaface_statistics_once():
    mixed, single = build(AdaFace), build(AdaFace)
    emb, labels = batch(seed=7)
    partner = labels.roll(1)
    value = mixed(emb, labels, partner, 0.8)
    single(emb, labels)
    assert torch.equal(mixed.norm_mean, single.norm_mean)
    single.eval()
    expected = 0.8 * single(emb, labels) + 0.2 * single(emb, partner)
    torch.testing.assert_close(value, expected)


def _ddp_worker(rank, world_size, init_file, chunks, result_file):
    dist.init_process_group(
        "gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size
    )
    try:
        loss = build(AdaFace)
        labels = torch.zeros(len(chunks[rank]), dtype=torch.long)
        loss(chunks[rank], labels)
        stats = torch.stack([loss.norm_mean, loss.norm_std])
        gathered = [torch.zeros(2) for _ in range(world_size)]
        dist.all_gather(gathered, stats)
        if rank == 0:
            torch.save(torch.stack(gathered), result_file)
    finally:
        dist.destroy_process_group()


@pytest.mark.ddp
def test_adaface_statistics_are_those_of_the_global_batch_under_ddp(tmp_path):
    emb, _ = batch(seed=8)
    chunks = [emb[:4], emb[4:] * 2.0]  # unequal sizes and norms on the two processes
    result = tmp_path / "stats.pt"
    mp.spawn(_ddp_worker, args=(2, tmp_path / "init", chunks, result), nprocs=2, join=True)
    per_process = torch.load(result)
    reference = build(AdaFace)
    reference(torch.cat(chunks), torch.zeros(BATCH, dtype=torch.long))
    expected = torch.stack([reference.norm_mean, reference.norm_std])
    for stats in per_process:
        torch.testing.assert_close(stats, expected)


def test_warmup_grows_the_margin_linearly():
    loss = build(AAMSoftmax, margin=0.2, warmup_epochs=4)
    factors = []
    for epoch in range(1, 8):
        loss.set_epoch(epoch)
        factors.append(loss.margin_factor)
    assert factors == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    emb, labels = batch()
    for epoch, margin in ((1, 0.0), (3, 0.1), (5, 0.2)):
        loss.set_epoch(epoch)
        reference = build(AAMSoftmax, margin=margin)
        torch.testing.assert_close(loss(emb, labels), reference(emb, labels))
    assert build(AAMSoftmax).margin_factor == 1.0  # no warm-up: full margin at once


@pytest.mark.parametrize("cls", [AMSoftmax, CosFace, AdaFace, OCSoftmax])
def test_warmup_starts_without_margin_on_every_margin_loss(cls):
    loss = build(cls, warmup_epochs=3)
    emb, labels = batch()
    full = build(cls)
    loss.eval(), full.eval()
    at_start = loss(emb, labels)
    loss.set_epoch(4)
    torch.testing.assert_close(loss(emb, labels), full(emb, labels))
    assert at_start < full(emb, labels)


def test_warmup_without_set_epoch_warns(caplog):
    loss = build(AMSoftmax, warmup_epochs=2)
    with caplog.at_level("WARNING", logger="camsat_lobes.margins"):
        loss(*batch())
    assert "set_epoch" in caplog.text


@pytest.mark.parametrize("cls", ALL_LOSSES)
def test_finite_at_cosines_of_plus_and_minus_one(cls):
    loss = build(cls)
    with torch.no_grad():
        loss.weight[1] = -loss.weight[0]
    emb = torch.stack([loss.weight[0], loss.weight[0], -loss.weight[0]]).detach() * 7.0
    emb.requires_grad_(True)
    value = loss(emb, torch.tensor([0, 1, 1]))
    value.backward()
    assert torch.isfinite(value)
    assert torch.isfinite(emb.grad).all() and torch.isfinite(loss.weight.grad).all()


@pytest.mark.parametrize("cls", ALL_LOSSES)
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_autocast_on_cpu(cls, dtype):
    loss = build(cls)
    emb, labels = batch()
    reference = loss(emb, labels).detach()
    emb_low = emb.to(dtype).requires_grad_(True)
    with torch.autocast("cpu", dtype=dtype):
        value = loss(emb_low, labels)
    value.backward()
    assert value.dtype == torch.float32 and torch.isfinite(value)
    assert torch.isfinite(emb_low.grad.float()).all()
    torch.testing.assert_close(value, reference, rtol=0.05, atol=0.05)


@pytest.mark.parametrize("name, cls", [
    ("aam", AAMSoftmax), ("am", AMSoftmax), ("cosface", CosFace),
    ("ocsoftmax", OCSoftmax), ("adaface", AdaFace), ("softmax", Softmax),
])  # fmt: skip
def test_hparams_fragment_loads_and_builds(name, cls):
    with open(HPARAMS / f"{name}.yaml") as f:
        loss = load_hyperpyyaml(f, {"embedding_dim": DIM, "n_classes": CLASSES})["speaker_loss"]
    assert type(loss) is cls and loss.n_classes == CLASSES and loss.embedding_dim == DIM
    emb, labels = batch()
    assert torch.isfinite(loss(emb, labels))
    if isinstance(loss, MarginSoftmax) and not isinstance(loss, Softmax):
        default = cls(DIM, CLASSES)
        assert (loss.margin, loss.scale) == (default.margin, default.scale)


def test_margin_values_match_the_published_defaults():
    assert (AAMSoftmax(4, 2).margin, AAMSoftmax(4, 2).scale) == (0.2, 30.0)
    ada = AdaFace(4, 2)
    assert (ada.margin, ada.h, ada.scale, ada.momentum) == (0.4, 0.333, 64.0, 0.01)
    oc = OCSoftmax(4, 2)
    assert (oc.alpha, oc.m_pos, oc.m_neg) == (20.0, 0.9, 0.2)
    assert math.isclose(ada.norm_clip[1], 100.0)


def test_bad_inputs_raise_clear_errors():
    loss = build(AMSoftmax)
    emb, labels = batch()
    with pytest.raises(ValueError, match="embedding_dim=16"):
        loss(torch.randn(BATCH, 8), labels)
    with pytest.raises(ValueError, match="expected"):
        loss(torch.randn(BATCH, 2, DIM), labels)
    with pytest.raises(ValueError, match="n_classes=7"):
        loss(emb, labels + CLASSES)
    with pytest.raises(ValueError, match="one class per embedding"):
        loss(emb, labels[:3])
    with pytest.raises(TypeError, match="integer"):
        loss(emb, labels.float())
    with pytest.raises(ValueError, match="n_classes"):
        AAMSoftmax(DIM, 0)
    with pytest.raises(ValueError, match="warmup_epochs"):
        AAMSoftmax(DIM, 3, warmup_epochs=-1)
    with pytest.raises(ValueError, match="m_neg"):
        OCSoftmax(DIM, 3, m_pos=0.1, m_neg=0.5)
    assert issubclass(OCSoftmax, SpeakerLoss)
