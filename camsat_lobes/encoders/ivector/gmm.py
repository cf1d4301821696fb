"""The universal background model of the i-vector extractor: a diagonal GMM.

:class:`DiagonalGMM` is trained by EM on frames pooled from the training
utterances, grown from one Gaussian by splitting the heaviest components along
their main axis of variation; its component posteriors give the Baum-Welch
statistics of every utterance.

Authors
 * camsat contributors 2026
"""

import math

import torch


class DiagonalGMM(torch.nn.Module):
    """Gaussian mixture with diagonal covariances, trained by EM.

    Training starts from one Gaussian and repeatedly splits the heaviest components
    along their principal axis, running EM after each split.

    Arguments
    ---------
    n_components : int
        Number of Gaussians.
    feature_dim : int
        Size of the frames.
    variance_floor : float
        Variances are floored at this fraction of the global variance.

    Example
    -------
    >>> torch.manual_seed(0)  # doctest: +ELLIPSIS
    <torch._C.Generator object at ...>
    >>> frames = torch.cat([torch.randn(500, 2) - 3, torch.randn(500, 2) + 3])
    >>> gmm = DiagonalGMM(2, 2)
    >>> history = gmm.fit(frames, iterations_per_split=5)
    >>> history[-1] > history[0]
    True
    >>> sorted(gmm.means[:, 0].round().tolist())
    [-3.0, 3.0]
    """

    def __init__(self, n_components, feature_dim, variance_floor=1e-3):
        super().__init__()
        self.n_components = int(n_components)
        self.variance_floor = variance_floor
        self.register_buffer("weights", torch.full((n_components,), 1.0 / n_components))
        self.register_buffer("means", torch.zeros(n_components, feature_dim))
        self.register_buffer("variances", torch.ones(n_components, feature_dim))
        self.register_buffer("trained", torch.tensor(False))

    def component_log_likelihoods(self, frames):
        """``log w_c + log N(x | mu_c, Sigma_c)`` for every frame and component.

        Arguments
        ---------
        frames : torch.Tensor
            Shape ``(..., feature_dim)``.

        Returns
        -------
        torch.Tensor
            Shape ``(..., n_components)``.
        """
        precisions = 1.0 / self.variances
        constant = (
            torch.log(self.weights)
            - 0.5 * torch.log(2 * math.pi * self.variances).sum(dim=1)
            - 0.5 * (self.means.pow(2) * precisions).sum(dim=1)
        )
        quadratic = frames.pow(2) @ precisions.t() - 2 * frames @ (self.means * precisions).t()
        return constant - 0.5 * quadratic

    def posteriors(self, frames):
        """Component responsibilities of each frame (shape of the frames, components last).

        Arguments
        ---------
        frames : torch.Tensor
            Shape ``(..., feature_dim)``.

        Returns
        -------
        torch.Tensor
            Shape ``(..., n_components)``; each frame's responsibilities sum to 1.
        """
        return torch.softmax(self.component_log_likelihoods(frames), dim=-1)

    def em_step(self, frames, chunk_size=65536):
        """One EM iteration; returns the mean frame log-likelihood before the update.

        Arguments
        ---------
        frames : torch.Tensor
            Shape ``(n_frames, feature_dim)``.
        chunk_size : int
            Frames per chunk of the E-step (bounds memory).

        Returns
        -------
        float
            Average log-likelihood of the frames under the parameters before the step.
        """
        zeroth = torch.zeros_like(self.weights, dtype=torch.float64)
        first = torch.zeros_like(self.means, dtype=torch.float64)
        second = torch.zeros_like(self.means, dtype=torch.float64)
        total = 0.0
        for chunk in frames.split(chunk_size):
            log_joint = self.component_log_likelihoods(chunk)
            log_marginal = torch.logsumexp(log_joint, dim=1, keepdim=True)
            total += float(log_marginal.double().sum())
            gamma = torch.exp(log_joint - log_marginal).double()
            chunk = chunk.double()
            zeroth += gamma.sum(dim=0)
            first += gamma.t() @ chunk
            second += gamma.t() @ chunk.pow(2)
        global_var = frames.double().var(dim=0)
        occupancy = zeroth.clamp(min=1e-10).unsqueeze(1)
        means = first / occupancy
        variances = torch.maximum(
            second / occupancy - means.pow(2), self.variance_floor * global_var
        )
        self.weights.copy_((zeroth / zeroth.sum()).clamp(min=1e-10))
        self.means.copy_(means)
        self.variances.copy_(variances)
        return total / frames.shape[0]

    def fit(self, frames, iterations_per_split=4, final_iterations=10):
        """Grow the mixture from one Gaussian by splitting, with EM after each split.

        Arguments
        ---------
        frames : torch.Tensor
            Shape ``(n_frames, feature_dim)``.
        iterations_per_split : int
            EM iterations after each split.
        final_iterations : int
            Extra EM iterations once all components exist.

        Returns
        -------
        list of float
            Mean frame log-likelihood before each EM iteration, in order; it does
            not decrease between the splits.
        """
        if frames.shape[0] < 2 * self.n_components:
            raise ValueError(
                f"A {self.n_components}-component UBM needs at least {2 * self.n_components} "
                f"frames, got {frames.shape[0]}; use more audio or fewer components."
            )
        weights = torch.ones(1, device=frames.device, dtype=frames.dtype)
        means = frames.mean(dim=0, keepdim=True)
        variances = frames.var(dim=0, keepdim=True)
        self.history, self.split_points = [], []
        while True:
            self._set(weights, means, variances)
            iterations = iterations_per_split
            if weights.numel() == self.n_components:
                iterations += final_iterations
            self.split_points.append(len(self.history))
            for _ in range(iterations):
                self.history.append(self.em_step(frames))
            if weights.numel() == self.n_components:
                break
            weights, means, variances = self._split(frames)
        self.trained.fill_(True)
        return self.history

    def _set(self, weights, means, variances):
        self.weights, self.means, self.variances = weights.clone(), means.clone(), variances.clone()

    @torch.no_grad()
    def _split(self, frames, chunk_size=4096):
        """Split the heaviest components in two along their main axis of variation."""
        n_split = min(self.weights.numel(), self.n_components - self.weights.numel())
        order = torch.argsort(self.weights, descending=True)[:n_split]
        dim = self.means.shape[1]
        second = torch.zeros(n_split, dim, dim, dtype=torch.float64, device=frames.device)
        first = torch.zeros(n_split, dim, dtype=torch.float64, device=frames.device)
        occupancy = torch.zeros(n_split, dtype=torch.float64, device=frames.device)
        for chunk in frames.split(chunk_size):
            gamma = self.posteriors(chunk)[:, order].double()
            chunk = chunk.double()
            second += torch.einsum("nc,nf,ng->cfg", gamma, chunk, chunk)
            first += gamma.t() @ chunk
            occupancy += gamma.sum(dim=0)
        occupancy = occupancy.clamp(min=1e-10)
        mean = first / occupancy[:, None]
        covariance = second / occupancy[:, None, None] - mean.unsqueeze(2) * mean.unsqueeze(1)
        eigenvalues, eigenvectors = torch.linalg.eigh(covariance)
        offset = 0.5 * eigenvectors[:, :, -1] * eigenvalues[:, -1:].clamp(min=0).sqrt()
        offset = offset.to(self.means)
        means = torch.cat([self.means, self.means[order] + offset])
        means[order] -= offset
        weights = torch.cat([self.weights, self.weights[order] / 2])
        weights[order] /= 2
        variances = torch.cat([self.variances, self.variances[order]])
        return weights, means, variances
