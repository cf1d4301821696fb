"""i-mix and l-mix: mixup regularisation for training on noisy (pseudo-)labels.

Each sample ``i`` of a batch is mixed with a partner ``p(i)`` drawn by a random
permutation, with one weight ``w ~ Beta(alpha, alpha)`` per batch (optionally
``w = max(w, 1 - w)`` so the sample keeps the larger share):

* **i-mix** (:class:`InputMix`) mixes the network's inputs, waveforms or
  features: ``w x_i + (1 - w) x_p(i)``;
* **l-mix** (:class:`LatentMix`) mixes a hidden representation, the output of a
  chosen submodule of the encoder, through a forward hook: the layers before it
  see clean inputs, those after it the mixture.

Both return the embeddings with a :class:`MixedTargets`, whose
:meth:`MixedTargets.loss` is ``w L(y_i) + (1 - w) L(y_p(i))`` through the
:mod:`camsat_lobes.margins` interface (the margin applies to each target in
turn). Mix only in training. In a SpeechBrain ``Brain``::

    # compute_forward, stage == sb.Stage.TRAIN
    feats = self.modules.mean_var_norm(self.modules.compute_features(wavs), lens)
    embeddings, targets = self.hparams.mixup.forward_mixed(
        self.modules.embedding_model, feats, lens, labels
    )
    # compute_objectives
    loss = targets.loss(self.modules.speaker_loss, embeddings)

with, in the hyperparameters, ``mixup: !new:camsat_lobes.mixup.InputMix`` or
``mixup: !new:camsat_lobes.mixup.LatentMix {layer: blocks.0}``. To mix waveforms
rather than features, call ``mixup.sample(len(wavs))`` and
:meth:`Mix.apply` before the feature extraction, then ``mix.targets(labels)``.

Where to mix in SpeechBrain's ``ECAPA_TDNN``: its forward runs ``blocks[0]`` (a
TDNN layer), ``blocks[1..3]`` (SE-Res2Net blocks), concatenates the outputs of
``blocks[1..3]`` into ``mfa``, then pools (``asp``, ``asp_bn``) and projects
(``fc``). Hooking ``blocks.0``, ``mfa``, ``asp_bn`` or ``fc`` mixes everything
downstream. Hooking ``blocks.2`` or ``blocks.3`` mixes that block's output, but
the unmixed outputs of the earlier SE-Res2Net blocks still reach ``mfa`` through
the skip concatenation, so the representation is only partly mixed there.

Authors
 * camsat contributors 2026
"""

import contextlib
import logging
from dataclasses import dataclass

import torch
import torch.nn.functional as F

logger = logging.getLogger(__name__)

__all__ = ["InputMix", "LatentMix", "Mix", "MixUp", "MixedTargets"]


@dataclass(frozen=True)
class MixedTargets:
    """Targets of a mixed batch: each sample's class, its partner's and the weight.

    Arguments
    ---------
    labels : torch.Tensor
        ``(B,)`` classes of the samples.
    partner_labels : torch.Tensor
        ``(B,)`` classes of their mixing partners.
    weight : float
        Weight ``w`` of ``labels`` (``1 - w`` goes to ``partner_labels``).

    Example
    -------
    >>> targets = MixedTargets(torch.tensor([0, 1]), torch.tensor([1, 1]), 0.75)
    >>> targets.soft(3).tolist()
    [[0.75, 0.25, 0.0], [0.0, 1.0, 0.0]]
    """

    labels: torch.Tensor
    partner_labels: torch.Tensor
    weight: float

    def loss(self, loss_fn, embeddings):
        """Return ``w L(labels) + (1 - w) L(partner_labels)`` for a speaker loss.

        Arguments
        ---------
        loss_fn : camsat_lobes.margins.SpeakerLoss
            A loss with the ``loss_fn(embeddings, labels, partner_labels,
            mix_weight)`` interface (possibly wrapped in DDP).
        embeddings : torch.Tensor
            ``(B, D)`` or ``(B, 1, D)`` embeddings of the mixed batch.

        Returns
        -------
        torch.Tensor
            Scalar loss.

        Example
        -------
        >>> from camsat_lobes.margins import AMSoftmax
        >>> loss_fn = AMSoftmax(8, 4)
        >>> emb, a, b = torch.randn(3, 8), torch.tensor([0, 1, 2]), torch.tensor([3, 0, 1])
        >>> value = MixedTargets(a, b, 0.6).loss(loss_fn, emb)
        >>> bool(torch.isclose(value, 0.6 * loss_fn(emb, a) + 0.4 * loss_fn(emb, b)))
        True
        """
        return loss_fn(embeddings, self.labels, self.partner_labels, self.weight)

    def soft(self, n_classes):
        """Return the mixed targets as ``(B, n_classes)`` probabilities (rows sum to one).

        Arguments
        ---------
        n_classes : int
            Number of classes.

        Returns
        -------
        torch.Tensor
            ``w onehot(labels) + (1 - w) onehot(partner_labels)``.

        Example
        -------
        >>> MixedTargets(torch.tensor([2]), torch.tensor([0]), 1.0).soft(3).tolist()
        [[0.0, 0.0, 1.0]]
        """
        own = F.one_hot(self.labels.long(), n_classes).float()
        partner = F.one_hot(self.partner_labels.long(), n_classes).float()
        return self.weight * own + (1.0 - self.weight) * partner


@dataclass(frozen=True)
class Mix:
    """One draw of mixup for a batch: the weight and the partner of each sample.

    Arguments
    ---------
    weight : float
        Weight ``w`` of each sample (its partner gets ``1 - w``).
    permutation : torch.Tensor
        ``(B,)`` index of each sample's partner.

    Example
    -------
    >>> mix = Mix(0.75, torch.tensor([1, 0]))
    >>> mix.apply(torch.tensor([[4.0], [8.0]])).tolist()
    [[5.0], [7.0]]
    >>> mix.targets(torch.tensor([3, 5])).partner_labels.tolist()
    [5, 3]
    """

    weight: float
    permutation: torch.Tensor

    def apply(self, tensor):
        """Mix a batch: ``w x_i + (1 - w) x_p(i)`` along the first dimension.

        Arguments
        ---------
        tensor : torch.Tensor
            ``(B, ...)`` floating-point batch (waveforms, features or hidden states).

        Returns
        -------
        torch.Tensor
            The mixed batch, same shape and dtype.

        Example
        -------
        >>> x = torch.randn(4, 10)
        >>> torch.equal(Mix(1.0, torch.tensor([3, 2, 1, 0])).apply(x), x)
        True
        """
        if not torch.is_tensor(tensor) or not tensor.is_floating_point():
            raise TypeError(
                f"can only mix floating-point tensors, got {type(tensor).__name__} "
                f"{getattr(tensor, 'dtype', '')}: mix waveforms, features or hidden states"
            )
        if len(tensor) != len(self.permutation):
            raise ValueError(
                f"batch of {len(tensor)} but the mix was drawn for {len(self.permutation)} "
                "samples: draw it with the batch size of the tensor being mixed"
            )
        if self.weight == 1.0:
            return tensor
        return self.weight * tensor + (1.0 - self.weight) * tensor[self.permutation]

    def lengths(self, lengths):
        """Relative lengths of the mixed batch: the longer of each pair.

        Arguments
        ---------
        lengths : torch.Tensor
            ``(B,)`` relative lengths of the samples.

        Returns
        -------
        torch.Tensor
            ``(B,)`` lengths covering both members of each pair.

        Example
        -------
        >>> Mix(0.5, torch.tensor([1, 0])).lengths(torch.tensor([1.0, 0.5])).tolist()
        [1.0, 1.0]
        """
        return torch.maximum(lengths, lengths[self.permutation])

    def targets(self, labels):
        """Targets of the mixed batch.

        Arguments
        ---------
        labels : torch.Tensor
            ``(B,)`` or ``(B, 1)`` classes of the samples.

        Returns
        -------
        MixedTargets
            The labels, the partners' labels and the weight.

        Example
        -------
        >>> t = Mix(0.5, torch.tensor([1, 0])).targets(torch.tensor([[7], [9]]))
        >>> t.labels.tolist(), t.partner_labels.tolist(), t.weight
        ([7, 9], [9, 7], 0.5)
        """
        labels = labels.reshape(-1)
        return MixedTargets(labels, labels[self.permutation], self.weight)

    @contextlib.contextmanager
    def at(self, module):
        """Context in which every output of ``module`` is mixed (l-mix).

        Arguments
        ---------
        module : torch.nn.Module
            Submodule whose output tensor (batch first) gets mixed.

        Yields
        ------
        Mix
            This mix.

        Example
        -------
        >>> net = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Linear(3, 2))
        >>> x, mix = torch.randn(4, 3), Mix(0.5, torch.tensor([1, 0, 3, 2]))
        >>> with mix.at(net[0]):
        ...     y = net(x)
        >>> torch.allclose(y, net[1](mix.apply(net[0](x))))
        True
        """

        def mix_output(_module, _inputs, output):
            """Forward hook: replace the layer's output by its mixed version."""
            return self.apply(output)

        handle = module.register_forward_hook(mix_output)
        try:
            yield self
        finally:
            handle.remove()


class MixUp:
    """Draws mixes: ``w ~ Beta(alpha, alpha)`` and a random permutation of the batch.

    Subclasses implement :meth:`forward_mixed` (where the mix happens). The draws
    use torch's global generator, which SpeechBrain seeds.

    Arguments
    ---------
    alpha : float
        Parameter of the symmetric Beta distribution (1.0: uniform weights).
    keep_larger : bool
        Use ``max(w, 1 - w)``, so each sample dominates its own mixture.

    Example
    -------
    >>> mix = MixUp(alpha=1.0).sample(6)
    >>> 0.5 <= mix.weight <= 1.0, sorted(mix.permutation.tolist())
    (True, [0, 1, 2, 3, 4, 5])
    """

    def __init__(self, alpha=1.0, keep_larger=True):
        if not alpha > 0:
            raise ValueError(f"alpha={alpha} must be positive (Beta(alpha, alpha) weights)")
        self.alpha = float(alpha)
        self.keep_larger = keep_larger

    def sample(self, batch_size, device=None):
        """Draw the weight and the partners for a batch.

        Arguments
        ---------
        batch_size : int
            Number of samples.
        device : torch.device or str, optional
            Device of the permutation.

        Returns
        -------
        Mix
            The draw.

        Example
        -------
        >>> len(MixUp(alpha=0.4, keep_larger=False).sample(3).permutation)
        3
        """
        concentration = torch.tensor(self.alpha)
        weight = float(torch.distributions.Beta(concentration, concentration).sample())
        if self.keep_larger:
            weight = max(weight, 1.0 - weight)
        return Mix(weight, torch.randperm(batch_size, device=device))

    def forward_mixed(self, model, inputs, lengths, labels, mix=None):
        """Run ``model(inputs, lengths)`` with mixing; return embeddings and targets.

        Arguments
        ---------
        model : torch.nn.Module
            Encoder called as ``model(inputs, lengths)`` (e.g. ``ECAPA_TDNN``).
        inputs : torch.Tensor
            ``(B, ...)`` batch of features (or waveforms, for a model taking them).
        lengths : torch.Tensor
            ``(B,)`` relative lengths; the mixed batch uses the longer of each pair.
        labels : torch.Tensor
            ``(B,)`` or ``(B, 1)`` classes.
        mix : Mix, optional
            A given draw instead of a new one.

        Returns
        -------
        embeddings : torch.Tensor
            The model's output on the mixed batch.
        targets : MixedTargets
            The targets to give the loss.
        """
        raise NotImplementedError


class InputMix(MixUp):
    """i-mix: mix the encoder's inputs and both targets with the same weight.

    Arguments
    ---------
    alpha : float
        Parameter of the symmetric Beta distribution of the weight.
    keep_larger : bool
        Use ``max(w, 1 - w)``.

    Example
    -------
    >>> model = lambda x, lengths: x.mean(dim=1)
    >>> feats, lens, labels = torch.randn(4, 5, 3), torch.ones(4), torch.tensor([0, 1, 2, 3])
    >>> emb, targets = InputMix().forward_mixed(model, feats, lens, labels)
    >>> emb.shape, targets.soft(4).sum(dim=1).tolist()
    (torch.Size([4, 3]), [1.0, 1.0, 1.0, 1.0])
    """

    def forward_mixed(self, model, inputs, lengths, labels, mix=None):
        """Mix ``inputs``, then run the model (see :meth:`MixUp.forward_mixed`).

        Arguments
        ---------
        model : torch.nn.Module
            Encoder called as ``model(inputs, lengths)``.
        inputs : torch.Tensor
            ``(B, ...)`` batch.
        lengths : torch.Tensor
            ``(B,)`` relative lengths.
        labels : torch.Tensor
            ``(B,)`` or ``(B, 1)`` classes.
        mix : Mix, optional
            A given draw instead of a new one.

        Returns
        -------
        embeddings : torch.Tensor
            The model's output on the mixed inputs.
        targets : MixedTargets
            The targets to give the loss.

        Example
        -------
        >>> model = lambda x, lengths: 2 * x
        >>> x, mix = torch.ones(2, 3), Mix(1.0, torch.tensor([1, 0]))
        >>> emb, t = InputMix().forward_mixed(model, x, torch.ones(2), torch.tensor([4, 5]), mix)
        >>> emb.tolist(), t.soft(6).argmax(dim=1).tolist()
        ([[2.0, 2.0, 2.0], [2.0, 2.0, 2.0]], [4, 5])
        """
        if mix is None:
            mix = self.sample(len(inputs), inputs.device)
        embeddings = model(mix.apply(inputs), mix.lengths(lengths))
        return embeddings, mix.targets(labels)


class LatentMix(MixUp):
    """l-mix: mix the output of one submodule of the encoder (a hidden representation).

    Arguments
    ---------
    layer : str
        Dotted name of the submodule whose output is mixed, as in
        ``model.get_submodule(layer)``; for ``ECAPA_TDNN``: ``blocks.0`` (after
        the first TDNN layer), ``mfa``, ``asp_bn`` or ``fc`` (see the module notes).
    alpha : float
        Parameter of the symmetric Beta distribution of the weight.
    keep_larger : bool
        Use ``max(w, 1 - w)``.

    Example
    -------
    >>> from speechbrain.lobes.models.ECAPA_TDNN import ECAPA_TDNN
    >>> model = ECAPA_TDNN(20, channels=[16, 16, 16, 16, 48], lin_neurons=8)
    >>> feats, lens, labels = torch.randn(4, 50, 20), torch.ones(4), torch.tensor([0, 1, 2, 3])
    >>> emb, targets = LatentMix("blocks.0").forward_mixed(model, feats, lens, labels)
    >>> emb.shape, targets.labels.tolist()
    (torch.Size([4, 1, 8]), [0, 1, 2, 3])
    """

    def __init__(self, layer="blocks.0", alpha=1.0, keep_larger=True):
        super().__init__(alpha, keep_larger)
        self.layer = layer

    def forward_mixed(self, model, inputs, lengths, labels, mix=None):
        """Run the model, mixing the output of ``layer`` (see :meth:`MixUp.forward_mixed`).

        Arguments
        ---------
        model : torch.nn.Module
            Encoder called as ``model(inputs, lengths)``.
        inputs : torch.Tensor
            ``(B, ...)`` batch.
        lengths : torch.Tensor
            ``(B,)`` relative lengths.
        labels : torch.Tensor
            ``(B,)`` or ``(B, 1)`` classes.
        mix : Mix, optional
            A given draw instead of a new one.

        Returns
        -------
        embeddings : torch.Tensor
            The model's output with the hidden representation mixed.
        targets : MixedTargets
            The targets to give the loss.

        Example
        -------
        >>> class Net(torch.nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.body, self.head = torch.nn.Linear(3, 3), torch.nn.Linear(3, 2)
        ...     def forward(self, x, lengths):
        ...         return self.head(self.body(x))
        >>> net, x = Net(), torch.randn(2, 3)
        >>> emb, _ = LatentMix("body").forward_mixed(
        ...     net, x, torch.ones(2), torch.tensor([0, 1]), Mix(1.0, torch.tensor([1, 0])))
        >>> torch.equal(emb, net(x, None))
        True
        """
        module = _submodule(model, self.layer)
        if mix is None:
            mix = self.sample(len(inputs), inputs.device)
        with mix.at(module):
            embeddings = model(inputs, mix.lengths(lengths))
        return embeddings, mix.targets(labels)


def _submodule(model, name):
    target = getattr(model, "module", model)  # DDP / DataParallel wrappers
    try:
        return target.get_submodule(name)
    except AttributeError as error:
        children = [child for child, _ in target.named_children()]
        raise ValueError(
            f"LatentMix layer {name!r} is not a submodule of {type(target).__name__} "
            f"(its children: {children}); give a dotted name such as 'blocks.0'"
        ) from error
