"""The total-variability model of the i-vector extractor.

:class:`TotalVariability` models the supervector of an utterance as
``M(u) = m + T w(u)`` with ``w ~ N(0, I)``, over the fixed UBM of
:mod:`camsat_lobes.encoders.ivector.gmm`; ``T`` is trained by EM on the
utterances' Baum-Welch statistics and the i-vector is the posterior mean of ``w``.

Authors
 * camsat contributors 2026
"""

import torch


class TotalVariability(torch.nn.Module):
    """Total-variability (i-vector) model over a fixed UBM, trained by EM.

    For an utterance with zeroth-order statistics ``N_c`` and centred first-order
    statistics ``F_c`` the posterior of ``w`` is Gaussian with precision
    ``L = I + sum_c N_c T_c' S_c^-1 T_c`` and mean ``L^-1 T' S^-1 F`` (the i-vector).

    Arguments
    ---------
    n_components : int
        UBM components.
    feature_dim : int
        Frame size.
    rank : int
        i-vector size.

    Example
    -------
    >>> tv = TotalVariability(n_components=4, feature_dim=3, rank=2)
    >>> tv.initialize(torch.ones(4, 3), seed=0)
    >>> zeroth, first = torch.rand(10, 4) * 20, torch.randn(10, 4, 3)
    >>> likelihoods = [tv.em_step(zeroth, first, torch.ones(4, 3)) for _ in range(3)]
    >>> likelihoods[0] < likelihoods[1] < likelihoods[2]
    True
    >>> tv.extract(zeroth, first, torch.ones(4, 3)).shape
    torch.Size([10, 2])
    """

    def __init__(self, n_components, feature_dim, rank):
        super().__init__()
        self.rank = int(rank)
        self.register_buffer("matrix", torch.zeros(n_components, feature_dim, rank))

    def initialize(self, variances, seed=0):
        """Random start scaled by the UBM standard deviations.

        Arguments
        ---------
        variances : torch.Tensor
            UBM variances, shape ``(n_components, feature_dim)``.
        seed : int
            Seed of the random start.
        """
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(self.matrix.shape, generator=generator, dtype=torch.float64)
        scale = variances.double().sqrt().unsqueeze(2).cpu()
        self.matrix.copy_((noise * scale * 0.1).to(self.matrix))

    def posterior(self, zeroth, first, variances):
        """Posterior of the latent factors.

        Arguments
        ---------
        zeroth : torch.Tensor
            ``N``, shape ``(batch, n_components)``.
        first : torch.Tensor
            Centred ``F``, shape ``(batch, n_components, feature_dim)``.
        variances : torch.Tensor
            UBM variances, shape ``(n_components, feature_dim)``.

        Returns
        -------
        mean : torch.Tensor
            ``(batch, rank)``.
        covariance : torch.Tensor
            ``(batch, rank, rank)``: ``L^-1``.
        log_likelihood : torch.Tensor
            ``(batch,)``: ``0.5 b' L^-1 b - 0.5 log|L|`` (the log-likelihood of the
            statistics up to terms that do not depend on ``T``).
        """
        matrix = self.matrix.double()
        scaled = matrix / variances.double().unsqueeze(2)
        gram = torch.einsum("cfr,cfs->crs", matrix, scaled)
        eye = torch.eye(self.rank, dtype=torch.float64, device=matrix.device)
        precision = eye + torch.einsum("bc,crs->brs", zeroth.double(), gram)
        linear = torch.einsum("bcf,cfr->br", first.double(), scaled)
        cholesky = torch.linalg.cholesky(precision)
        covariance = torch.cholesky_inverse(cholesky)
        mean = (covariance @ linear.unsqueeze(2)).squeeze(2)
        log_det = 2 * torch.log(torch.diagonal(cholesky, dim1=1, dim2=2)).sum(dim=1)
        log_likelihood = 0.5 * (linear * mean).sum(dim=1) - 0.5 * log_det
        return mean, covariance, log_likelihood

    def em_step(self, zeroth, first, variances, batch_size=256):
        """One EM iteration over all utterances' statistics.

        Arguments
        ---------
        zeroth : torch.Tensor
            ``(n_utts, n_components)``.
        first : torch.Tensor
            Centred first-order statistics, ``(n_utts, n_components, feature_dim)``.
        variances : torch.Tensor
            UBM variances.
        batch_size : int
            Utterances per batch of the E-step.

        Returns
        -------
        float
            Mean log-likelihood per utterance before the update (up to a constant).
        """
        n_components, feature_dim, rank = self.matrix.shape
        device = self.matrix.device
        acc_a = torch.zeros(n_components, rank, rank, dtype=torch.float64, device=device)
        acc_c = torch.zeros(n_components, feature_dim, rank, dtype=torch.float64, device=device)
        total = 0.0
        for start in range(0, zeroth.shape[0], batch_size):
            n_b = zeroth[start : start + batch_size].to(device).double()
            f_b = first[start : start + batch_size].to(device).double()
            mean, covariance, log_likelihood = self.posterior(n_b, f_b, variances.to(device))
            second = covariance + mean.unsqueeze(2) * mean.unsqueeze(1)
            acc_a += torch.einsum("bc,brs->crs", n_b, second)
            acc_c += torch.einsum("bcf,br->cfr", f_b, mean)
            total += float(log_likelihood.sum())
        solution = torch.linalg.solve(acc_a, acc_c.transpose(1, 2)).transpose(1, 2)
        self.matrix.copy_(solution.to(self.matrix))
        return total / zeroth.shape[0]

    def extract(self, zeroth, first, variances):
        """i-vectors (posterior means), shape ``(batch, rank)``, in float32.

        Arguments
        ---------
        zeroth : torch.Tensor
            ``N``, shape ``(batch, n_components)``.
        first : torch.Tensor
            Centred ``F``, shape ``(batch, n_components, feature_dim)``.
        variances : torch.Tensor
            UBM variances, shape ``(n_components, feature_dim)``.

        Returns
        -------
        torch.Tensor
            The i-vectors, ``(batch, rank)``.
        """
        return self.posterior(zeroth, first, variances)[0].float()
