import pytest
import torch
import torch.nn.functional as F
from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN

from camsat_lobes.margins import AAMSoftmax, AdaFace
from camsat_lobes.mixup import InputMix, LatentMix, Mix, MixedTargets, MixUp

BATCH, FRAMES, MELS, DIM, CLASSES = 6, 40, 20, 8, 5


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def tiny_ecapa():
    torch.manual_seed(0)
    return ECAPA_TDNN(MELS, channels=[16, 16, 16, 16, 48], lin_neurons=DIM).eval()


def data(seed=0):
    gen = torch.Generator().manual_seed(seed)
    feats = torch.randn(BATCH, FRAMES, MELS, generator=gen)
    labels = torch.randint(0, CLASSES, (BATCH,), generator=gen)
    return feats, torch.ones(BATCH), labels


def test_sampled_weights_follow_beta_and_keep_the_larger_share():
    torch.manual_seed(0)
    kept = [MixUp(alpha=1.0).sample(4).weight for _ in range(2000)]
    assert min(kept) >= 0.5 and max(kept) <= 1.0
    assert abs(sum(kept) / len(kept) - 0.75) < 0.02  # uniform on [0.5, 1]
    free = [MixUp(alpha=0.2, keep_larger=False).sample(4).weight for _ in range(2000)]
    assert min(free) < 0.1 and max(free) > 0.9  # Beta(0.2, 0.2) is U-shaped
    permutation = MixUp().sample(10).permutation
    assert sorted(permutation.tolist()) == list(range(10))


@pytest.mark.parametrize("mixup", [InputMix(), LatentMix("blocks.0"), LatentMix("mfa")])
def test_weight_one_leaves_inputs_embeddings_and_targets_unchanged(mixup):
    model = tiny_ecapa()
    feats, lens, labels = data()
    mix = Mix(1.0, torch.randperm(BATCH))
    with torch.no_grad():
        embeddings, targets = mixup.forward_mixed(model, feats, lens, labels, mix)
        assert torch.equal(embeddings, model(feats, lens))
    assert torch.equal(mix.apply(feats), feats)
    assert torch.equal(targets.soft(CLASSES), F.one_hot(labels, CLASSES).float())


@pytest.mark.parametrize("mixup", [InputMix(), LatentMix("blocks.0")])
def test_mixed_targets_sum_to_one_and_weight_both_labels(mixup):
    torch.manual_seed(1)
    feats, lens, labels = data(seed=1)
    _, targets = mixup.forward_mixed(tiny_ecapa(), feats, lens, labels)
    soft = targets.soft(CLASSES)
    torch.testing.assert_close(soft.sum(dim=1), torch.ones(BATCH))
    rows = torch.arange(BATCH)
    same = targets.labels == targets.partner_labels
    torch.testing.assert_close(
        soft[rows, targets.labels][~same], torch.full(((~same).sum(),), targets.weight)
    )
    assert (soft[rows, targets.labels][same] == 1.0).all()


def test_input_mix_mixes_inputs_and_lengths_with_the_partner():
    seen = {}

    def model(x, lengths):
        seen["x"], seen["lengths"] = x, lengths
        return x.mean(dim=1)

    feats, _, labels = data()
    lens = torch.linspace(0.5, 1.0, BATCH)
    mix = Mix(0.7, torch.roll(torch.arange(BATCH), 1))
    _, targets = InputMix().forward_mixed(model, feats, lens, labels, mix)
    torch.testing.assert_close(seen["x"], 0.7 * feats + 0.3 * feats[mix.permutation])
    assert torch.equal(seen["lengths"], torch.maximum(lens, lens[mix.permutation]))
    assert torch.equal(targets.partner_labels, labels[mix.permutation])


def test_latent_mix_mixes_the_hidden_layer_and_removes_its_hook():
    model = tiny_ecapa()
    feats, lens, labels = data()
    mix = Mix(0.6, torch.roll(torch.arange(BATCH), 2))
    with torch.no_grad():
        clean = model(feats, lens)
        mixed, _ = LatentMix("asp_bn").forward_mixed(model, feats, lens, labels, mix)
        # asp_bn feeds fc (a 1x1 convolution, linear), so the mixture passes through it.
        torch.testing.assert_close(mixed, mix.apply(clean), rtol=1e-4, atol=1e-5)
        assert not torch.allclose(
            LatentMix("blocks.0").forward_mixed(model, feats, lens, labels, mix)[0], clean
        )
        assert torch.equal(model(feats, lens), clean)  # the hook is gone
    assert not model.asp_bn._forward_hooks and not model.blocks[0]._forward_hooks


def test_latent_mix_reaches_inside_a_wrapped_model():
    model = torch.nn.DataParallel(tiny_ecapa())  # DDP-style `.module` wrapper, CPU fallback
    feats, lens, labels = data()
    with torch.no_grad():
        embeddings, _ = LatentMix("fc").forward_mixed(
            model, feats, lens, labels, Mix(1.0, torch.arange(BATCH))
        )
        assert torch.equal(embeddings, model(feats, lens))


@pytest.mark.parametrize("mixup", [InputMix(), LatentMix("blocks.0")])
@pytest.mark.parametrize("loss_cls", [AAMSoftmax, AdaFace])
def test_mixed_loss_is_the_weighted_sum_of_both_targets_and_trains(mixup, loss_cls):
    torch.manual_seed(2)
    model, loss_fn = tiny_ecapa().train(), loss_cls(DIM, CLASSES)
    feats, lens, labels = data(seed=2)
    embeddings, targets = mixup.forward_mixed(model, feats, lens, labels)
    value = targets.loss(loss_fn, embeddings)
    value.backward()
    loss_fn.eval()
    expected = targets.weight * loss_fn(embeddings, targets.labels) + (
        1 - targets.weight
    ) * loss_fn(embeddings, targets.partner_labels)
    torch.testing.assert_close(value, expected)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    assert (
        model.blocks[0].conv.conv.weight.grad.abs().sum() > 0
        and loss_fn.weight.grad.abs().sum() > 0
    )


def test_mixed_targets_accept_speechbrain_label_shape():
    targets = Mix(0.5, torch.tensor([2, 0, 1])).targets(torch.tensor([[4], [5], [6]]))
    assert isinstance(targets, MixedTargets) and targets.partner_labels.tolist() == [6, 4, 5]


def test_bad_inputs_raise_clear_errors():
    feats, lens, labels = data()
    with pytest.raises(ValueError, match="'nope'"):
        LatentMix("nope").forward_mixed(tiny_ecapa(), feats, lens, labels)
    with pytest.raises(TypeError, match="floating-point"):
        Mix(0.5, torch.arange(3)).apply(torch.arange(3))
    with pytest.raises(ValueError, match="batch of 6"):
        Mix(0.5, torch.arange(3)).apply(feats)
    with pytest.raises(ValueError, match="alpha"):
        MixUp(alpha=0.0)
