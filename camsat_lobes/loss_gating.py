"""Loss gating: train the speaker network only on the samples its loss finds plausible.

With pseudo-labels, a sample whose label is wrong keeps a high loss long after the
network has learned the clean samples, and fitting it anyway memorises label
noise. A gate drops, in each training batch after a warm-up, the samples whose
loss is too high, and the batch loss is the mean over the kept ones:

- ``"threshold"``: keep losses at most ``threshold`` (Loss-Gated Learning,
  TaoRuijie/Loss-Gated-Learning, a fixed gate on the loss value);
- ``"quantile"``: keep the ``keep_quantile`` share of lowest losses of each batch
  (the small-loss selection of co-teaching);
- ``"gmm"``: a gate refit every epoch (theolepage/wavlm_ssl_sv): a 2-component
  Gaussian mixture is fitted to the log of the per-sample losses of the previous
  epoch, and the gate is where the weighted densities of the two components
  cross, between their means (clean samples below, wrong labels above).

Use it through :class:`~camsat_lobes.speaker_training.SpeakerBrain`'s
``loss_gate`` hyperparameter, which needs per-sample losses
(``speaker_loss(embeddings, labels, reduction="none")``).

Authors
 * camsat contributors 2026
"""

import logging
import math

import numpy as np
import torch
from sklearn.mixture import GaussianMixture
from speechbrain.utils.checkpoints import (
    mark_as_loader,
    mark_as_saver,
    register_checkpoint_hooks,
)

__all__ = ["LossGate"]

logger = logging.getLogger(__name__)

METHODS = ("gmm", "quantile", "threshold")

#: Fewest recorded losses a mixture is fitted to; with fewer the next epoch is not gated.
MIN_GMM_SAMPLES = 16
#: Losses are floored here before the log (a float32 loss can round to 0).
_LOSS_FLOOR = 1e-12


@register_checkpoint_hooks
class LossGate:
    """Keep the samples of a batch whose loss is low enough, after a warm-up.

    Call :meth:`set_epoch` at the start of every training epoch (epochs count from
    1), then ``gate(losses)`` on each batch's per-sample losses: it returns the mask
    of the samples to train on. Epochs up to ``warmup_epochs`` keep every sample
    (the network first has to learn what a clean sample looks like), but their
    losses are still recorded, so the ``"gmm"`` gate of the first gated epoch comes
    from the last warm-up epoch. :attr:`kept_fraction` is the share of samples kept
    so far in the current epoch.

    The state (epoch, gate, recorded losses) can be checkpointed: add the gate to
    the checkpointer's recoverables and a resumed run gates as the uninterrupted
    one. Under ``torch.distributed`` every process fits its gate to its own
    samples' losses.

    Arguments
    ---------
    method : str
        ``"gmm"`` (default), ``"quantile"`` or ``"threshold"`` (see the module
        docstring).
    warmup_epochs : int
        Epochs trained on every sample before gating starts (wavlm_ssl_sv gates
        from epoch 5: 4).
    threshold : float, optional
        Largest loss kept, for ``method="threshold"`` (required there, positive).
    keep_quantile : float, optional
        Share of each batch kept (the lowest losses), for ``method="quantile"``
        (required there, in (0, 1]).

    Example
    -------
    >>> gate = LossGate("threshold", warmup_epochs=1, threshold=2.0)
    >>> losses = torch.tensor([0.5, 1.0, 5.0, 0.2])
    >>> gate.set_epoch(1)
    >>> gate(losses).tolist()  # warm-up: every sample kept
    [True, True, True, True]
    >>> gate.set_epoch(2)
    >>> gate(losses).tolist(), gate.kept_fraction
    ([True, True, False, True], 0.75)
    """

    def __init__(self, method="gmm", warmup_epochs=4, threshold=None, keep_quantile=None):
        if method not in METHODS:
            raise ValueError(f"method={method!r}; use one of {', '.join(METHODS)}")
        if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int):
            raise TypeError(f"warmup_epochs={warmup_epochs!r} must be an integer")
        if warmup_epochs < 0:
            raise ValueError(f"warmup_epochs={warmup_epochs} must be >= 0 (0: gate from epoch 1)")
        if method == "threshold" and (threshold is None or not threshold > 0):
            raise ValueError(
                f"method='threshold' needs a positive threshold (the largest loss kept), "
                f"got threshold={threshold!r}"
            )
        if method == "quantile" and (keep_quantile is None or not 0 < keep_quantile <= 1):
            raise ValueError(
                f"method='quantile' needs keep_quantile in (0, 1] (the share of each batch "
                f"kept), got keep_quantile={keep_quantile!r}"
            )
        self.method = method
        self.warmup_epochs = warmup_epochs
        self.threshold = threshold
        self.keep_quantile = keep_quantile
        self.epoch = 1
        # "gmm": the loss gate of the current epoch (None: not fitted, every sample kept).
        self.gmm_threshold = None
        self._recorded = []
        self._seen = 0
        self._kept = 0

    @property
    def active(self):
        """Whether the current epoch is past the warm-up (samples may be dropped)."""
        return self.epoch > self.warmup_epochs

    @property
    def kept_fraction(self):
        """Share of the samples seen in the current epoch that were kept (1.0 before any)."""
        return self._kept / self._seen if self._seen else 1.0

    def set_epoch(self, epoch):
        """Start training epoch ``epoch``: refit the ``"gmm"`` gate, reset the counts.

        Calling it again with the current epoch (a run resumed in the middle of an
        epoch) changes nothing.

        Arguments
        ---------
        epoch : int
            The epoch about to be trained, counted from 1.

        Example
        -------
        >>> gate = LossGate("gmm", warmup_epochs=1)
        >>> gate.set_epoch(1)
        >>> rng = np.random.default_rng(0)
        >>> clean, noisy = rng.lognormal(-1, 0.3, 90), rng.lognormal(2, 0.3, 10)
        >>> _ = gate(torch.tensor(np.concatenate([clean, noisy])))
        >>> gate.set_epoch(2)  # the gate is fitted to epoch 1's losses
        >>> 0.4 < gate.gmm_threshold < 7.0
        True
        """
        if epoch == self.epoch and (self._seen or self.gmm_threshold is not None):
            return
        if self.method == "gmm":
            recorded = np.concatenate(self._recorded) if self._recorded else np.zeros(0)
            self.gmm_threshold = gmm_loss_threshold(recorded)
            if self.gmm_threshold is None and epoch > self.warmup_epochs:
                logger.warning(
                    "loss gate: no threshold from %d recorded losses; epoch %s keeps every sample",
                    recorded.size,
                    epoch,
                )
            elif self.gmm_threshold is not None:
                logger.info(
                    "loss gate: threshold %.4g from %d losses", self.gmm_threshold, recorded.size
                )
        self.epoch = epoch
        self._recorded = []
        self._seen = 0
        self._kept = 0

    def __call__(self, losses):
        """Return the mask of the samples kept.

        Arguments
        ---------
        losses : torch.Tensor
            ``(B,)`` per-sample losses of a batch (detached or not; not modified).

        Returns
        -------
        torch.Tensor
            ``(B,)`` bool mask on the device of ``losses``: True for a kept sample.

        Example
        -------
        >>> gate = LossGate("quantile", warmup_epochs=0, keep_quantile=0.5)
        >>> gate(torch.tensor([3.0, 0.1, 2.0, 0.4])).tolist()
        [False, True, False, True]
        """
        if losses.dim() != 1:
            raise ValueError(
                f"losses of shape {tuple(losses.shape)}: give one loss per sample, shape (B,)"
            )
        values = losses.detach().float()
        if self.method == "gmm":
            self._recorded.append(values.cpu().numpy().astype(np.float32))
        keep = torch.ones_like(values, dtype=torch.bool)
        if self.active and values.numel():
            if self.method == "threshold":
                keep = values <= self.threshold
            elif self.method == "quantile":
                # Rounded first, so that 0.8 of 200 keeps 160, not 161 (0.8 * 200 > 160).
                n_kept = max(1, math.ceil(round(self.keep_quantile * values.numel(), 6)))
                keep = torch.zeros_like(keep)
                keep[torch.argsort(values, stable=True)[:n_kept]] = True
            elif self.gmm_threshold is not None:
                keep = values <= self.gmm_threshold
        self._seen += int(values.numel())
        self._kept += int(keep.sum())
        return keep

    @mark_as_saver
    def _save(self, path):
        recorded = np.concatenate(self._recorded) if self._recorded else np.zeros(0, np.float32)
        state = {
            "epoch": self.epoch,
            "gmm_threshold": self.gmm_threshold,
            "recorded": torch.from_numpy(recorded),
            "seen": self._seen,
            "kept": self._kept,
        }
        torch.save(state, path)

    @mark_as_loader
    def _load(self, path, end_of_epoch=False):
        state = torch.load(path)
        self.epoch = state["epoch"]
        self.gmm_threshold = state["gmm_threshold"]
        self._recorded = [state["recorded"].numpy()] if state["recorded"].numel() else []
        self._seen, self._kept = state["seen"], state["kept"]


def gmm_loss_threshold(losses, seed=0):
    """Loss gate from a 2-component Gaussian mixture on the log-losses.

    The mixture separates a low-loss mode (samples the network fits: clean labels)
    from a high-loss mode (wrong labels); the gate is the log-loss where the two
    weighted densities cross between the two means, as in wavlm_ssl_sv.

    Arguments
    ---------
    losses : array_like
        Per-sample losses (positive; floored at 1e-12 before the log).
    seed : int
        Seed of the mixture's initialisation.

    Returns
    -------
    float or None
        The largest loss kept, or None when there is no gate: fewer than
        ``MIN_GMM_SAMPLES`` losses, all equal, or no crossing between the means
        (one mode outweighs the other all the way, so there is no second mode to
        cut away).

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> losses = np.concatenate([rng.lognormal(0, 0.2, 80), rng.lognormal(2, 0.2, 20)])
    >>> gate = gmm_loss_threshold(losses)
    >>> bool(np.exp(0.4) < gate < np.exp(1.6))  # between the modes, e^0 and e^2
    True
    """
    x = np.log(np.maximum(np.asarray(losses, dtype=np.float64).ravel(), _LOSS_FLOOR))
    x = x[np.isfinite(x)]
    if x.size < MIN_GMM_SAMPLES or np.ptp(x) == 0:
        return None
    mixture = GaussianMixture(2, covariance_type="full", tol=1e-5, max_iter=1000, random_state=seed)
    mixture.fit(x[:, None])
    low, high = np.argsort(mixture.means_.ravel())
    means = mixture.means_.ravel()[[low, high]]
    variances = mixture.covariances_.ravel()[[low, high]]
    weights = mixture.weights_[[low, high]]
    if means[1] - means[0] <= 0:
        return None
    # log(w1 N(x; m1, v1)) = log(w2 N(x; m2, v2)) is a quadratic a x^2 + b x + c = 0.
    a = 0.5 / variances[1] - 0.5 / variances[0]
    b = means[0] / variances[0] - means[1] / variances[1]
    c = (
        0.5 * means[1] ** 2 / variances[1]
        - 0.5 * means[0] ** 2 / variances[0]
        + np.log(weights[0] / weights[1])
        - 0.5 * np.log(variances[0] / variances[1])
    )
    if abs(a) < 1e-12:
        roots = np.array([-c / b])
    else:
        disc = b * b - 4 * a * c
        if disc < 0:
            return None
        roots = (-b + np.array([-1.0, 1.0]) * np.sqrt(disc)) / (2 * a)
    between = roots[(roots > means[0]) & (roots < means[1])]
    if between.size == 0:
        return None
    return float(np.exp(between.min()))
