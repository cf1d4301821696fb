"""Embedding-space augmentations, used when no augmented views were extracted.

Authors
 * camsat contributors 2026
"""

import torch

__all__ = ["EmbeddingAugment"]


class EmbeddingAugment:
    """Make V stochastic views of each embedding.

    Each view of x applies, in order:

    1. mixing with a neighbour: x ← (1 − α)·x + α·x_nb with x_nb one of the
       point's nearest neighbours drawn at random and α ~ U(0, neighbour_mix);
    2. Gaussian noise: x ← x + noise · s · g / √D with g ~ N(0, I) and s the
       point's neighbourhood scale (distance to its k-th neighbour), so the
       noise norm is about ``noise · s`` whatever the embedding scale;
    3. dropout: each coordinate zeroed with probability ``dropout`` and the
       rest scaled by 1 / (1 − dropout).

    Arguments
    ---------
    n_views : int
        Views per point.
    noise : float
        Noise norm relative to the neighbourhood scale.
    dropout : float
        Coordinate dropout probability.
    neighbour_mix : float
        Largest mixing weight toward a neighbour.

    Example
    -------
    >>> augment = EmbeddingAugment(n_views=3)
    >>> x = torch.randn(5, 8)
    >>> views = augment(x, neighbours=torch.randn(5, 4, 8), scale=torch.ones(5))
    >>> views.shape
    torch.Size([5, 3, 8])
    """

    def __init__(self, n_views=2, noise=0.5, dropout=0.1, neighbour_mix=0.3):
        if n_views < 1:
            raise ValueError(f"n_views={n_views}; at least one view is needed")
        if not 0 <= dropout < 1:
            raise ValueError(f"dropout={dropout} must lie in [0, 1)")
        self.n_views = n_views
        self.noise = noise
        self.dropout = dropout
        self.neighbour_mix = neighbour_mix

    def __call__(self, x, neighbours, scale):
        """Draw the views (torch's global generator supplies the randomness).

        Arguments
        ---------
        x : torch.Tensor
            (B, D) embeddings.
        neighbours : torch.Tensor
            (B, k, D) embeddings of each point's k nearest neighbours.
        scale : torch.Tensor
            (B,) neighbourhood scale of each point.

        Returns
        -------
        torch.Tensor
            (B, V, D) views.

        Example
        -------
        >>> augment = EmbeddingAugment(n_views=2, noise=0.0, dropout=0.0, neighbour_mix=0.0)
        >>> x = torch.randn(3, 4)
        >>> torch.equal(augment(x, torch.randn(3, 2, 4), torch.ones(3))[:, 1], x)
        True
        """
        batch, dim = x.shape
        shape = (batch, self.n_views)
        pick = torch.randint(neighbours.shape[1], shape, device=x.device)
        partner = neighbours[torch.arange(batch, device=x.device)[:, None], pick]
        alpha = self.neighbour_mix * torch.rand(*shape, 1, device=x.device)
        views = (1 - alpha) * x[:, None, :] + alpha * partner
        noise = torch.randn(batch, self.n_views, dim, device=x.device)
        views = views + self.noise * scale.view(-1, 1, 1) * noise / dim**0.5
        if self.dropout > 0:
            keep = torch.rand(batch, self.n_views, dim, device=x.device) >= self.dropout
            views = views * keep / (1 - self.dropout)
        return views
