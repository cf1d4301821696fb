"""A SpeechBrain ``Brain`` that also trains under ``torchrun`` on CPUs (gloo).

SpeechBrain wraps every trainable module in ``SyncBatchNorm`` before DDP, and
PyTorch's ``SyncBatchNorm`` only runs on CUDA, so ECAPA-TDNN (full of BatchNorm)
cannot train on several CPU processes. :class:`DistributedBrain` keeps
SpeechBrain's behaviour on GPUs and, on CPUs, wraps the modules in plain DDP: the
gradients are still averaged across processes, while each process keeps its own
BatchNorm statistics (those of rank 0 are the ones saved in checkpoints).

Workaround of a SpeechBrain limitation (1.1.x), isolated here: it overrides the
private ``Brain._wrap_distributed``; remove it once SpeechBrain skips the
SyncBatchNorm conversion on CPU devices.

Authors
 * camsat contributors 2026
"""

import speechbrain as sb
from torch.nn.parallel import DistributedDataParallel

__all__ = ["DistributedBrain"]


class DistributedBrain(sb.Brain):
    """``sb.Brain`` whose DDP wrapping works on CPUs as well as on GPUs.

    Use it as the base class of any Brain of this package; it changes nothing
    outside a distributed CPU run.

    Example
    -------
    >>> import torch
    >>> class Regression(DistributedBrain):
    ...     def compute_forward(self, batch, stage):
    ...         return self.modules.model(batch[0])
    ...
    ...     def compute_objectives(self, predictions, batch, stage):
    ...         return torch.nn.functional.mse_loss(predictions, batch[1])
    >>> brain = Regression({"model": torch.nn.Linear(2, 1)}, lambda p: torch.optim.SGD(p, 0.1))
    >>> data = [(torch.randn(4, 2), torch.randn(4, 1))]
    >>> brain.fit(range(1), data, progressbar=False)
    """

    def _wrap_distributed(self):
        """Wrap the trainable modules in DDP, without SyncBatchNorm on CPUs."""
        if not (self.distributed_launch and str(self.device).startswith("cpu")):
            return super()._wrap_distributed()
        for name, module in self.modules.items():
            if any(p.requires_grad for p in module.parameters()):
                self.modules[name] = DistributedDataParallel(
                    module, find_unused_parameters=self.find_unused_parameters
                )
