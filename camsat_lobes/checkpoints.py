"""A SpeechBrain ``Checkpointer`` whose checkpoints count only once fully written.

SpeechBrain writes a checkpoint's ``CKPT.yaml`` first and its parameter files after,
so a run killed while saving leaves a checkpoint that looks complete but holds a
truncated file, and the next run fails to load it. :class:`CompleteCheckpointer`
writes a ``COMPLETE`` marker after the last file and ignores checkpoints without it,
so a killed run resumes from the last complete checkpoint instead.

Workaround of a SpeechBrain bug (1.1.x, ``Checkpointer.save_checkpoint`` writes
``CKPT.yaml`` before the files it describes), isolated here; remove it once
SpeechBrain writes the metadata last.

Authors
 * camsat contributors 2026
"""

import logging
from pathlib import Path

from speechbrain.utils.checkpoints import Checkpointer
from speechbrain.utils.distributed import if_main_process

__all__ = ["COMPLETE_MARKER", "CompleteCheckpointer"]

logger = logging.getLogger(__name__)

#: File written into a checkpoint folder once every file of it is on disk.
COMPLETE_MARKER = "COMPLETE"


class CompleteCheckpointer(Checkpointer):
    """``Checkpointer`` that ignores checkpoints whose save was interrupted.

    Takes the arguments of ``speechbrain.utils.checkpoints.Checkpointer``. Incomplete
    checkpoint folders are left on disk (another process may still be writing them)
    and named in a warning.

    Example
    -------
    >>> import tempfile, torch
    >>> folder = Path(tempfile.mkdtemp())
    >>> layer = torch.nn.Linear(2, 2)
    >>> checkpointer = CompleteCheckpointer(folder, recoverables={"layer": layer})
    >>> saved = checkpointer.save_checkpoint()
    >>> (saved.path / COMPLETE_MARKER).exists()
    True
    >>> (saved.path / COMPLETE_MARKER).unlink()  # as if the run was killed while saving
    >>> checkpointer.list_checkpoints()
    []
    """

    def save_checkpoint(self, *args, **kwargs):
        """Save a checkpoint as SpeechBrain does, then mark it complete.

        Arguments
        ---------
        *args, **kwargs
            Those of ``Checkpointer.save_checkpoint``.

        Returns
        -------
        Checkpoint or None
            The saved checkpoint (``None`` outside the main process).
        """
        checkpoint = super().save_checkpoint(*args, **kwargs)
        if checkpoint is not None and if_main_process():
            (Path(checkpoint.path) / COMPLETE_MARKER).touch()
        return checkpoint

    def list_checkpoints(self):
        """List the checkpoints whose save finished.

        Returns
        -------
        list
            ``Checkpoint`` namedtuples, as SpeechBrain's ``list_checkpoints``.
        """
        complete = []
        for checkpoint in super().list_checkpoints():
            if (Path(checkpoint.path) / COMPLETE_MARKER).exists():
                complete.append(checkpoint)
            else:
                logger.warning("ignoring checkpoint %s: its save did not finish", checkpoint.path)
        return complete
