"""The MLP clustering head shared by CAMSAT and IMSAT.

Authors
 * camsat contributors 2026
"""

from torch import nn

__all__ = ["ClusteringHead"]


class ClusteringHead(nn.Module):
    """MLP mapping embeddings to K cluster logits.

    Each hidden layer is Linear → BatchNorm → ReLU (IMSAT's reference head is
    1200-1200); a final Linear gives the logits.

    Arguments
    ---------
    input_dim : int
        Embedding dimension D.
    n_clusters : int
        Number of outputs K.
    hidden_sizes : sequence of int
        Widths of the hidden layers (may be empty for a linear head).
    batch_norm : bool
        Insert BatchNorm after every hidden Linear.

    Example
    -------
    >>> import torch
    >>> head = ClusteringHead(16, 5, hidden_sizes=(32, 32))
    >>> head(torch.randn(8, 16)).shape, head.features(torch.randn(8, 16)).shape
    (torch.Size([8, 5]), torch.Size([8, 32]))
    """

    def __init__(self, input_dim, n_clusters, hidden_sizes=(1200, 1200), batch_norm=True):
        super().__init__()
        layers = []
        width = input_dim
        for size in hidden_sizes:
            layers.append(nn.Linear(width, size))
            if batch_norm:
                layers.append(nn.BatchNorm1d(size))
            layers.append(nn.ReLU())
            width = size
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(width, n_clusters)

    def features(self, x):
        """Output of the last hidden layer (the input itself for a linear head).

        Arguments
        ---------
        x : torch.Tensor
            (B, D) embeddings.

        Returns
        -------
        torch.Tensor
            (B, F) features.

        Example
        -------
        >>> import torch
        >>> ClusteringHead(4, 3, hidden_sizes=(6,)).features(torch.randn(2, 4)).shape
        torch.Size([2, 6])
        """
        return self.body(x)

    def forward(self, x):
        """Cluster logits.

        Arguments
        ---------
        x : torch.Tensor
            (B, D) embeddings.

        Returns
        -------
        torch.Tensor
            (B, K) logits.

        Example
        -------
        >>> import torch
        >>> ClusteringHead(4, 3, hidden_sizes=()).forward(torch.randn(2, 4)).shape
        torch.Size([2, 3])
        """
        return self.classifier(self.body(x))
