"""CAMSAT and IMSAT: a clustering head trained by information maximisation.

One trainer, :class:`CAMSAT`, minimises a weighted sum of separate terms
(see :mod:`camsat_lobes.clustering.losses` for their formulas)::

    L = w_vat·L_VAT + λ·(H(Y|X) − μ·H(Y))          (IMSAT)
        + w_aug·L_aug + w_sym·L_symmetry             (CAMSAT's augmentation terms)
        + w_supcon·L_SupCon + w_mixup·L_Mixup + w_infonce·L_InfoNCE   (ablations)

:class:`IMSAT` is the same trainer with the augmentation terms switched off.
Views come from ``views`` (N×V×D, e.g. embeddings of augmented audio) or, when
none are given, from :class:`~camsat_lobes.clustering.augment.EmbeddingAugment`.

Cluster-count discovery: the head starts with ``n_clusters`` outputs (set it
above the expected count, e.g. 2×) and the number of non-empty clusters
(clusters that are the arg-max of at least one point) is logged after every
epoch. The marginal-entropy term μ·H(Y) rewards spreading the points evenly
over *all* K outputs: with IMSAT's μ = 4, every method ends up filling nearly
all K once trained to convergence, and at μ = 1 it keeps far fewer clusters
than there are speakers. At the default μ = 2 the view terms
``weights.augmentation`` / ``weights.symmetry`` (views of one utterance must
share its cluster) empty outputs that IMSAT keeps. With 5 utterances per
speaker (the default MiniVox) the count still grows with the initial K; with 100
per speaker (synthetic, as VoxCeleb2 has many) CAMSAT keeps on average within
13 % of the true count from 2x, 4x and 8x (``bench/cluster_count.py``; numbers in the README).

Authors
 * camsat contributors 2026
"""

import logging
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .augment import EmbeddingAugment
from .baselines import MAX_PROBABILITY_ENTRIES
from .geometry import l2_normalize, nearest_neighbours
from .heads import ClusteringHead
from .losses import (
    augmentation_loss,
    conditional_entropy,
    infonce_loss,
    marginal_entropy,
    mixup_loss,
    supcon_loss,
    symmetry_loss,
    vat_loss,
)
from .metrics import clustering_metrics
from .result import ClusteringResult
from .validation import (
    check_batch_size,
    check_embeddings,
    check_labels,
    check_n_clusters,
    check_views,
    check_views_per_step,
)

__all__ = ["LossWeights", "CAMSAT", "IMSAT"]

logger = logging.getLogger(__name__)

_HISTORY_METRICS = ("acc", "nmi", "ami", "ari")


@dataclass
class LossWeights:
    """Weights of the loss terms (0 switches a term off and skips its computation).

    Arguments
    ---------
    vat : float
        Weight of the VAT term.
    information : float
        λ, weight of the information-maximisation term H(Y|X) − μ·H(Y).
    mu : float
        μ, weight of the marginal entropy inside that term (IMSAT used 4; at 4
        every method ends up filling all K outputs, see the module docstring).
    augmentation : float
        Weight of L_aug (views agree with the clean prediction).
    symmetry : float
        Weight of L_symmetry (views agree with their mixture).
    supcon : float
        Weight of the SupCon ablation.
    mixup : float
        Weight of the Mixup ablation.
    infonce : float
        Weight of the InfoNCE ablation.

    Example
    -------
    >>> LossWeights.imsat().augmentation, LossWeights().augmentation
    (0.0, 1.0)
    """

    vat: float = 1.0
    information: float = 0.1
    mu: float = 2.0
    augmentation: float = 1.0
    symmetry: float = 1.0
    supcon: float = 0.0
    mixup: float = 0.0
    infonce: float = 0.0

    @classmethod
    def imsat(cls, **overrides):
        """IMSAT's weights: VAT and information maximisation only.

        Arguments
        ---------
        **overrides
            Fields to set otherwise.

        Returns
        -------
        LossWeights
            Weights with the augmentation terms at zero.

        Example
        -------
        >>> LossWeights.imsat(mu=2.0).mu
        2.0
        """
        return cls(**{"augmentation": 0.0, "symmetry": 0.0, **overrides})

    @property
    def needs_views(self):
        """Whether any active term uses augmented views.

        Returns
        -------
        bool
            True when L_aug, L_symmetry, SupCon or InfoNCE is on.

        Example
        -------
        >>> LossWeights.imsat().needs_views
        False
        """
        return any(w != 0 for w in (self.augmentation, self.symmetry, self.supcon, self.infonce))


class CAMSAT:
    """CAMSAT clustering: an MLP head trained with IMSAT + augmentation-mix terms.

    Arguments
    ---------
    n_clusters : int
        Number of head outputs K (start above the expected count to let the
        method discover it).
    seed : int
        Seed of the initialisation, batching and every random draw; a fit is
        deterministic for a seed on a given device.
    hidden_sizes : sequence of int
        Hidden widths of the head (IMSAT: 1200, 1200).
    batch_norm : bool
        BatchNorm in the hidden layers.
    lr : float
        Adam learning rate.
    batch_size : int
        Points per mini-batch (the marginal entropy is estimated per batch); at
        least 2. An epoch splits the points into ``round(N / batch_size)`` batches of
        near-equal size, fewer when that would leave a batch of one point.
    epochs : int
        Passes over the data.
    weights : LossWeights, optional
        Loss weights; CAMSAT's defaults when omitted.
    vat_xi_fraction : float
        Finite-difference step of VAT's power iteration as a fraction of each
        point's VAT radius (step_i = vat_xi_fraction × radius_i), so it follows
        the data's scale; must be positive. IMSAT's absolute ξ = 10 suited
        MNIST pixels (10th-neighbour distance 8-15), not unit-norm embeddings
        (see :func:`~camsat_lobes.clustering.losses.vat_loss`).
    vat_eps_scale : float
        VAT radius of a point = this × distance to its ``vat_neighbours``-th
        nearest neighbour (found with faiss).
    vat_neighbours : int
        Which neighbour sets the radius; also the neighbours used by the
        embedding-space augmentation.
    vat_power_iterations : int
        Power iterations of VAT.
    views_per_step : int, optional
        Views of each point that one step uses, drawn afresh for every point and
        step from the V given views (at least 2, as L_symmetry compares views).
        Fewer views make a step cheaper (the view passes are most of CAMSAT's
        cost over IMSAT's) while every view is still seen over the epochs; all V
        when None or at least V. At 50,000 × 192 with 4 views an epoch costs
        1.7 × IMSAT's with 2 views per step against 2.0 × with all 4.
    augment : EmbeddingAugment, optional
        Stand-in views when ``fit`` gets no ``views``.
    temperature : float
        Temperature of the SupCon and InfoNCE ablations.
    mixup_alpha : float
        Beta(α, α) parameter of the Mixup ablation.
    normalize : bool
        L2-normalise embeddings and views first.
    device : str, optional
        Torch device; CUDA when available by default.
    progress : bool
        Show a progress bar over epochs.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> x = np.concatenate([rng.normal(m, 0.1, (30, 4)) for m in (-1, 1)]).astype(np.float32)
    >>> model = CAMSAT(4, hidden_sizes=(16,), epochs=2, batch_size=20, progress=False)
    >>> result = model.fit(x)
    >>> len(result.history), result.labels.shape, result.probabilities.shape
    (2, (60,), (60, 4))
    """

    def __init__(
        self,
        n_clusters,
        seed=0,
        hidden_sizes=(1200, 1200),
        batch_norm=True,
        lr=2e-3,
        batch_size=250,
        epochs=50,
        weights=None,
        vat_xi_fraction=0.1,
        vat_eps_scale=0.25,
        vat_neighbours=10,
        vat_power_iterations=1,
        views_per_step=2,
        augment=None,
        temperature=0.5,
        mixup_alpha=1.0,
        normalize=True,
        device=None,
        progress=True,
    ):
        self.n_clusters = n_clusters
        self.seed = seed
        self.hidden_sizes = tuple(hidden_sizes)
        self.batch_norm = batch_norm
        self.lr = lr
        self.batch_size = check_batch_size(batch_size)
        self.epochs = epochs
        self.weights = weights if weights is not None else LossWeights()
        if not vat_xi_fraction > 0:
            raise ValueError(f"vat_xi_fraction={vat_xi_fraction} must be positive")
        self.vat_xi_fraction = vat_xi_fraction
        self.vat_eps_scale = vat_eps_scale
        self.vat_neighbours = vat_neighbours
        self.vat_power_iterations = vat_power_iterations
        self.views_per_step = check_views_per_step(views_per_step)
        self.augment = augment if augment is not None else EmbeddingAugment()
        self.temperature = temperature
        self.mixup_alpha = mixup_alpha
        self.normalize = normalize
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.progress = progress
        self.head = None

    def _batch_terms(self, x, views, eps, neighbours, scale):
        """Loss terms of one mini-batch (unweighted), keyed by name."""
        w = self.weights
        hidden = self.head.features(x)
        logits = self.head.classifier(hidden)
        p = F.softmax(logits, dim=1)
        target = p.detach()
        terms = {
            "conditional_entropy": conditional_entropy(p),
            "marginal_entropy": marginal_entropy(p),
        }
        if w.vat:
            terms["vat"] = vat_loss(
                self.head, x, target, eps, self.vat_xi_fraction, self.vat_power_iterations
            )
        if w.needs_views:
            if views is None:
                views = self.augment(x, neighbours, scale)
                if self.normalize:
                    views = F.normalize(views, dim=-1)
            batch, n_views, dim = views.shape
            view_hidden = self.head.features(views.reshape(batch * n_views, dim))
            view_logits = self.head.classifier(view_hidden).view(batch, n_views, -1)
            if w.augmentation:
                terms["augmentation"] = augmentation_loss(target, view_logits)
            if w.symmetry:
                terms["symmetry"] = symmetry_loss(F.softmax(view_logits, dim=-1))
            if w.supcon or w.infonce:
                features = torch.cat([hidden[:, None], view_hidden.view(batch, n_views, -1)], dim=1)
                if w.supcon:
                    terms["supcon"] = supcon_loss(features, target, self.temperature)
                if w.infonce:
                    terms["infonce"] = infonce_loss(features, self.temperature)
        if w.mixup:
            terms["mixup"] = mixup_loss(self.head, x, target, self.mixup_alpha)
        return terms

    def _total(self, terms):
        """Weighted sum of the loss terms."""
        w = self.weights
        total = w.information * (terms["conditional_entropy"] - w.mu * terms["marginal_entropy"])
        for name in ("vat", "augmentation", "symmetry", "supcon", "mixup", "infonce"):
            if name in terms:
                total = total + getattr(w, name) * terms[name]
        return total

    def _views_of(self, views, index):
        """Return the views of the points ``index`` that one step uses (``views_per_step`` each)."""
        if views is None:
            return None
        if self.views_per_step is None or self.views_per_step >= views.shape[1]:
            return views[index]
        draw = torch.rand(len(index), views.shape[1]).argsort(dim=1)[:, : self.views_per_step]
        return views[index[:, None], draw]

    @torch.no_grad()
    def predict_proba(self, embeddings, batch_size=4096):
        """Cluster probabilities of embeddings under the trained head.

        Arguments
        ---------
        embeddings : array_like
            N×D float array (normalised here when ``normalize`` is set).
        batch_size : int
            Points per forward pass.

        Returns
        -------
        numpy.ndarray
            (N, K) float32 probabilities.

        Example
        -------
        >>> x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
        >>> model = CAMSAT(3, hidden_sizes=(8,), epochs=1, batch_size=20, progress=False)
        >>> _ = model.fit(x)
        >>> model.predict_proba(x).shape
        (40, 3)
        """
        if self.head is None:
            raise RuntimeError("call fit before predict_proba")
        x = check_embeddings(embeddings)
        if self.normalize:
            x = l2_normalize(x)
        return self._predict(torch.from_numpy(x), batch_size).numpy()

    @torch.no_grad()
    def _predict(self, x, batch_size=4096, reduce=None):
        """Probabilities of a CPU tensor of embeddings, in eval mode.

        With ``reduce`` (e.g. an argmax), each chunk's probabilities are reduced before
        they are gathered, so the N×K matrix is never held at once.
        """
        self.head.eval()
        out = []
        for chunk in torch.split(x, batch_size):
            probabilities = F.softmax(self.head(chunk.to(self.device)), dim=1)
            out.append((probabilities if reduce is None else reduce(probabilities)).cpu())
        self.head.train()
        return torch.cat(out)

    def _labels(self, x):
        """Most probable cluster of every point of a CPU tensor, as a numpy array."""
        return self._predict(x, reduce=lambda p: p.argmax(dim=1)).numpy()

    def fit(self, embeddings, views=None, true_labels=None):
        """Train the head and label every point with its most probable cluster.

        Arguments
        ---------
        embeddings : array_like
            N×D float array.
        views : array_like, optional
            N×V×D augmented views (same point order); stand-ins are drawn in
            embedding space when omitted and a view term is on.
        true_labels : array_like, optional
            Used only to log ACC/NMI/AMI/ARI in the per-epoch history.

        Returns
        -------
        ClusteringResult
            Labels, probabilities (when N×K ≤ ``MAX_PROBABILITY_ENTRIES``) and
            the per-epoch history (epoch, n_clusters, loss terms, seconds and
            metrics when true labels were given).

        Example
        -------
        >>> x = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32)
        >>> model = CAMSAT(3, hidden_sizes=(8,), epochs=1, batch_size=20, progress=False)
        >>> sorted(model.fit(x).history[0])[:3]
        ['augmentation', 'conditional_entropy', 'epoch']
        """
        batch_size = check_batch_size(self.batch_size)
        check_views_per_step(self.views_per_step)
        x = check_embeddings(embeddings)
        n, dim = x.shape
        n_clusters = check_n_clusters(self.n_clusters, n)
        if views is not None:
            views = check_views(views, n, dim)
        if true_labels is not None:
            true_labels = check_labels(true_labels, n, name="true_labels", min_classes=2)
        if self.normalize:
            x = l2_normalize(x)
            views = None if views is None else l2_normalize(views)

        k = min(self.vat_neighbours, n - 1)
        distances, neighbour_index = nearest_neighbours(x, k, seed=self.seed)
        scale = torch.from_numpy(distances[:, -1].copy())
        eps = self.vat_eps_scale * scale
        x_cpu = torch.from_numpy(x)
        views_cpu = (
            None if views is None or not self.weights.needs_views else torch.from_numpy(views)
        )
        neighbour_index = torch.from_numpy(neighbour_index)
        device = torch.device(self.device)
        fork_devices = [device.index or 0] if device.type == "cuda" else []

        history = []
        with torch.random.fork_rng(devices=fork_devices):
            torch.manual_seed(self.seed)
            self.head = ClusteringHead(dim, n_clusters, self.hidden_sizes, self.batch_norm)
            self.head.to(device).train()
            optimizer = torch.optim.Adam(self.head.parameters(), lr=self.lr)
            n_batches = _number_of_batches(n, batch_size)
            epochs = tqdm(range(self.epochs), desc=type(self).__name__, disable=not self.progress)
            for epoch in epochs:
                start = time.perf_counter()
                sums = {}
                for index in torch.tensor_split(torch.randperm(n), n_batches):
                    batch_views = self._views_of(views_cpu, index)
                    batch_views = None if batch_views is None else batch_views.to(device)
                    terms = self._batch_terms(
                        x_cpu[index].to(device),
                        batch_views,
                        eps[index].to(device),
                        x_cpu[neighbour_index[index]].to(device),
                        scale[index].to(device),
                    )
                    loss = self._total(terms)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    for name, value in {**terms, "loss": loss}.items():
                        sums[name] = sums.get(name, 0.0) + float(value.detach()) / n_batches
                labels = self._labels(x_cpu)
                record = {"epoch": epoch + 1, "n_clusters": int(np.unique(labels).size), **sums}
                if true_labels is not None:
                    metrics = clustering_metrics(labels, true_labels)
                    record.update({name: metrics[name] for name in _HISTORY_METRICS})
                record["seconds"] = time.perf_counter() - start
                history.append(record)
                epochs.set_postfix(n_clusters=record["n_clusters"], loss=f"{sums['loss']:.3f}")
                logger.info(
                    "%s epoch %d/%d: %s",
                    type(self).__name__,
                    epoch + 1,
                    self.epochs,
                    ", ".join(
                        f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value}"
                        for key, value in record.items()
                        if key != "epoch"
                    ),
                )
        if n * n_clusters <= MAX_PROBABILITY_ENTRIES:
            probabilities = self._predict(x_cpu).numpy()
            labels = probabilities.argmax(axis=1)
        else:
            logger.info("probabilities not kept: N×K exceeds %d", MAX_PROBABILITY_ENTRIES)
            probabilities, labels = None, self._labels(x_cpu)
        result = ClusteringResult(labels=labels, probabilities=probabilities, history=history)
        logger.info(
            "%s: %d of %d clusters non-empty (weights %s)",
            type(self).__name__,
            result.n_clusters,
            n_clusters,
            asdict(self.weights),
        )
        return result


def _number_of_batches(n_points, batch_size):
    """Return the number of near-equal mini-batches of an epoch, none of them a single point.

    ``torch.tensor_split`` into ``k`` parts gives parts of ``n // k`` or ``n // k + 1``
    points, so ``k <= n // 2`` keeps every part at 2 points or more (BatchNorm in
    training mode fails on one).
    """
    return max(1, min(round(n_points / batch_size), n_points // 2))


class IMSAT(CAMSAT):
    """IMSAT: :class:`CAMSAT` with the augmentation terms switched off.

    Only the default ``weights`` differ (``LossWeights.imsat()``: VAT +
    λ·(H(Y|X) − μ·H(Y))); every other argument is CAMSAT's.

    Arguments
    ---------
    n_clusters : int
        Number of head outputs.
    weights : LossWeights, optional
        Defaults to ``LossWeights.imsat()``.
    **kwargs
        Any other :class:`CAMSAT` argument.

    Example
    -------
    >>> IMSAT(10).weights.needs_views
    False
    """

    def __init__(self, n_clusters, weights=None, **kwargs):
        super().__init__(
            n_clusters,
            weights=weights if weights is not None else LossWeights.imsat(),
            **kwargs,
        )
