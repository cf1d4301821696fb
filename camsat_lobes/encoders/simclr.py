"""SimCLR contrastive learning for speaker encoders.

Two independently augmented crops of one utterance are positives, the other crops
of the batch negatives (NT-Xent). Optionally, once the embeddings are meaningful,
the nearest neighbour of a crop in a queue of crops from *other* utterances serves
as an extra positive, which brings different utterances of the same (presumed)
speaker together.

Read top to bottom: the projection head (:class:`ProjectionHead`), the loss
(:func:`nt_xent`), the training step with the neighbour queue
(:class:`SimCLRBrain`) and the encoder to build from hparams
(:class:`SimCLREncoder`). The crops, schedules and training loop are shared with
DINO (:mod:`camsat_lobes.encoders.ssl`).

Authors
 * camsat contributors 2026
"""

import torch
import torch.nn.functional as F

from camsat_lobes.clustering.losses import contrastive_loss
from camsat_lobes.encoders.ssl import SSLBrain, SSLEncoder

__all__ = ["ProjectionHead", "SimCLRBrain", "SimCLREncoder", "nt_xent"]


class ProjectionHead(torch.nn.Module):
    """SimCLR projection head (Linear-BatchNorm-ReLU blocks then Linear).

    Arguments
    ---------
    input_size : int
        Embedding size.
    hidden_size : int
        Width of the hidden layers.
    output_size : int
        Size of the projection.
    n_layers : int
        Number of linear layers (1 gives a plain linear projection).

    Example
    -------
    >>> ProjectionHead(16, 32, 8)(torch.randn(4, 16)).shape
    torch.Size([4, 8])
    """

    def __init__(self, input_size, hidden_size=512, output_size=128, n_layers=2):
        super().__init__()
        layers, size = [], input_size
        for _ in range(n_layers - 1):
            layers += [
                torch.nn.Linear(size, hidden_size),
                torch.nn.BatchNorm1d(hidden_size),
                torch.nn.ReLU(),
            ]
            size = hidden_size
        layers.append(torch.nn.Linear(size, output_size))
        self.mlp = torch.nn.Sequential(*layers)

    def forward(self, embeddings):
        """Return projections, shape ``(batch, output_size)``."""
        return self.mlp(embeddings)


def nt_xent(anchors, positives, temperature=0.1):
    """Symmetric NT-Xent loss: row ``i`` of both inputs is a positive pair.

    Every other row of either input is a negative.

    Arguments
    ---------
    anchors, positives : torch.Tensor
        Shape ``(batch, dim)``; need not be normalised.
    temperature : float
        Softmax temperature on cosine similarities.

    Returns
    -------
    torch.Tensor
        Scalar loss.

    Example
    -------
    >>> z = torch.randn(6, 4)
    >>> bool(nt_xent(z, z) < nt_xent(z, torch.randn(6, 4)))
    True
    """
    # The two-view case of the supervised contrastive loss, each pair its own class.
    pairs = torch.stack([anchors, positives], dim=1)
    return contrastive_loss(pairs, torch.arange(len(pairs), device=pairs.device), temperature)


class SimCLRBrain(SSLBrain):
    """SimCLR: NT-Xent between two augmented crops of each utterance.

    A :class:`~camsat_lobes.encoders.ssl.SSLBrain` with extra ``hparams``:
    ``temperature``; ``nn_weight`` and ``nn_start_epoch`` for
    nearest-neighbour positives from a queue of ``queue_size`` crops of other
    utterances (``nn_weight: 0`` disables them).

    Example
    -------
    >>> import speechbrain as sb
    >>> from speechbrain.dataio.batch import PaddedBatch
    >>> from speechbrain.lobes.models.Xvector import Xvector
    >>> network = Xvector(tdnn_channels=[8, 8, 8, 8, 16], lin_neurons=12, in_channels=80)
    >>> encoder = SimCLREncoder(network, ProjectionHead(12, 16, 8))
    >>> brain = encoder.make_brain(getfixture("tmp_path"), run_opts={"device": "cpu"})
    >>> batch = PaddedBatch([{"id": f"u{i}", "index": i, "global_crops": torch.randn(2, 3200)}
    ...                      for i in range(4)])
    >>> brain.on_stage_start(sb.Stage.TRAIN, epoch=1)
    >>> outputs = brain.compute_forward(batch, sb.Stage.TRAIN)
    >>> float(brain.compute_objectives(outputs, batch, sb.Stage.TRAIN)) > 0
    True
    """

    def compute_forward(self, batch, stage):
        """Project both crops of every utterance."""
        first, second = self.embed_crops(
            batch.global_crops.data[:, :2], self.modules.embedding_model, True
        )
        both = self.modules.head(torch.cat([first, second]))
        return both.chunk(2)

    def compute_objectives(self, predictions, batch, stage):
        """NT-Xent, plus the nearest-neighbour term once it is switched on."""
        first, second = predictions
        temperature = self.hparams.temperature
        loss = nt_xent(first, second, temperature)
        weight = self.hparams.nn_weight
        index = batch.index.to(self.device)
        if weight > 0:
            neighbours = self.nearest_in_queue(first.detach(), index)
            if neighbours is not None and self.current_epoch >= self.hparams.nn_start_epoch:
                loss = (1 - weight) * loss + weight * nt_xent(neighbours, second, temperature)
            self.enqueue(second.detach(), index)
        return loss

    def nearest_in_queue(self, queries, index):
        """Nearest queued projection from another utterance for every query."""
        queue = getattr(self, "queue", None)
        if queue is None or queue.shape[0] < queries.shape[0]:
            return None
        sims = F.normalize(queries, dim=-1) @ queue.t()
        sims = sims.masked_fill(index.unsqueeze(1) == self.queue_index.unsqueeze(0), float("-inf"))
        return queue[sims.argmax(dim=1)]

    def enqueue(self, projections, index):
        """Add projections to the first-in first-out queue."""
        projections = F.normalize(projections, dim=-1)
        if getattr(self, "queue", None) is None:
            self.queue, self.queue_index = projections, index
        else:
            self.queue = torch.cat([projections, self.queue])[: self.hparams.queue_size]
            self.queue_index = torch.cat([index, self.queue_index])[: self.hparams.queue_size]


class SimCLREncoder(SSLEncoder):
    """SimCLR-trained encoder (NT-Xent, optional nearest-neighbour positives).

    Arguments
    ---------
    embedding_model : torch.nn.Module
        Embedding lobe.
    head : torch.nn.Module
        Projection head (``torch.nn.Identity()`` for none).
    temperature : float
        NT-Xent temperature.
    nn_weight : float
        Weight of the nearest-neighbour positive term (0 disables it).
    nn_start_epoch : int
        First epoch using nearest-neighbour positives.
    queue_size : int
        Number of past projections searched for neighbours.
    **kwargs
        The arguments of :class:`~camsat_lobes.encoders.ssl.SSLEncoder`.

    Example
    -------
    >>> from speechbrain.lobes.models.Xvector import Xvector
    >>> model = Xvector(tdnn_channels=[8, 8, 8, 8, 16], lin_neurons=12, in_channels=80)
    >>> encoder = SimCLREncoder(model, ProjectionHead(12, 16, 8))
    >>> encoder.embed(torch.randn(3, 8000)).shape
    torch.Size([3, 12])
    """

    brain_class = SimCLRBrain

    def __init__(
        self,
        embedding_model,
        head,
        temperature=0.1,
        nn_weight=0.0,
        nn_start_epoch=1,
        queue_size=1024,
        **kwargs,
    ):
        super().__init__(embedding_model, head, **kwargs)
        self.temperature = temperature
        self.nn_weight = nn_weight
        self.nn_start_epoch = nn_start_epoch
        self.queue_size = queue_size

    def brain_hparams(self):
        """Temperature and nearest-neighbour settings."""
        return {
            "temperature": self.temperature,
            "nn_weight": self.nn_weight,
            "nn_start_epoch": self.nn_start_epoch,
            "queue_size": self.queue_size,
        }
