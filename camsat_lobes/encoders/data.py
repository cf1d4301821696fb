"""Reading audio listed in a manifest, without ever reading its label columns.

Authors
 * camsat contributors 2026
"""

import csv
import logging
import os
import pathlib

import torch
from speechbrain.dataio.batch import PaddedBatch
from speechbrain.dataio.dataio import read_audio
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.data_pipeline import provides, takes

logger = logging.getLogger(__name__)


def read_audio_columns(manifest):
    r"""Read the audio columns of a manifest, leaving every label column unread.

    Arguments
    ---------
    manifest : str or pathlib.Path
        CSV with at least ``ID`` and ``wav`` (``start``, ``stop`` in samples and
        ``duration`` in seconds are used when present).

    Returns
    -------
    dict
        ``{utterance_id: {"wav", "start", "stop", "duration", "index"}}`` in file
        order; ``index`` is the row number.

    Example
    -------
    >>> path = getfixture("tmp_path") / "m.csv"
    >>> _ = path.write_text("ID,duration,wav,start,stop,spk_id\nu1,1.0,/a.wav,0,16000,s1\n")
    >>> read_audio_columns(path)["u1"]
    {'wav': '/a.wav', 'start': 0, 'stop': 16000, 'duration': 1.0, 'index': 0}
    """
    manifest = pathlib.Path(manifest)
    if not manifest.is_file():
        raise FileNotFoundError(
            f"Manifest {manifest} does not exist; write it with "
            "camsat_lobes.prepare.prepare_voxceleb first."
        )
    data = {}
    with open(manifest, newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"ID", "wav"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"Manifest {manifest} lacks the column(s) {sorted(missing)}; it needs "
                "at least ID and wav (and start, stop in samples)."
            )
        for row_number, row in enumerate(reader):
            utt_id = row["ID"]
            if utt_id in data:
                raise ValueError(f"Manifest {manifest} repeats the utterance ID {utt_id!r}.")
            try:
                data[utt_id] = {
                    "wav": row["wav"],
                    "start": int(float(row.get("start") or 0)),
                    "stop": int(float(row.get("stop") or 0)),
                    "duration": float(row.get("duration") or 0.0),
                    "index": row_number,
                }
            except ValueError as error:
                raise ValueError(
                    f"Manifest {manifest}, utterance {utt_id!r}: start, stop and duration "
                    f"must be numbers ({error})."
                ) from None
    if not data:
        raise ValueError(f"Manifest {manifest} has no utterances.")
    return data


def load_segment(wav, start=0, stop=0):
    """Load ``wav[start:stop]`` as a mono waveform (the whole file when ``stop <= start``).

    Arguments
    ---------
    wav : str
        Audio file path.
    start, stop : int
        Sample range.

    Returns
    -------
    torch.Tensor
        Shape ``(time,)``.

    Example
    -------
    >>> import soundfile
    >>> path = str(getfixture("tmp_path") / "a.wav")
    >>> soundfile.write(path, torch.zeros(800).numpy(), 16000)
    >>> load_segment(path, 100, 300).shape
    torch.Size([200])
    """
    if not os.path.isfile(wav):
        raise FileNotFoundError(f"Audio file {wav} listed in the manifest does not exist.")
    if stop > start:
        signal = read_audio({"file": wav, "start": int(start), "stop": int(stop)})
    else:
        signal = read_audio(wav)
    if signal.dim() == 2:
        signal = signal.mean(dim=1)
    if signal.numel() == 0:
        raise ValueError(f"Audio file {wav} has no samples in [{start}, {stop}).")
    return signal


def waveform_batches(data, order=None, batch_size=16, num_workers=0):
    """Batches of whole utterances, in a given order.

    Arguments
    ---------
    data : dict
        Output of :func:`read_audio_columns`.
    order : list of int, optional
        Row numbers to read, in this order (default: every row in file order).
    batch_size : int
        Utterances per batch.
    num_workers : int
        Loading processes.

    Returns
    -------
    torch.utils.data.DataLoader
        Yields :class:`~speechbrain.dataio.batch.PaddedBatch` with ``id`` and ``sig``
        (``sig.data`` is ``(batch, time)``, ``sig.lengths`` relative lengths).

    Example
    -------
    >>> import soundfile
    >>> folder = getfixture("tmp_path")
    >>> for name, n in (("a", 800), ("b", 400)):
    ...     soundfile.write(str(folder / f"{name}.wav"), torch.zeros(n).numpy(), 16000)
    >>> data = {name: {"wav": str(folder / f"{name}.wav"), "start": 0, "stop": 0}
    ...         for name in ("a", "b")}
    >>> batch = next(iter(waveform_batches(data, order=[1, 0])))
    >>> batch.id, batch.sig.data.shape, batch.sig.lengths.tolist()
    (['b', 'a'], torch.Size([2, 800]), [0.5, 1.0])
    """

    @takes("wav", "start", "stop")
    @provides("sig")
    def audio_pipeline(wav, start, stop):
        """Load the utterance's samples."""
        return load_segment(wav, start, stop)

    dataset = DynamicItemDataset(
        {key: {k: v[k] for k in ("wav", "start", "stop")} for key, v in data.items()},
        dynamic_items=[audio_pipeline],
        output_keys=["id", "sig"],
    )
    if order is None:
        order = list(range(len(dataset)))
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=list(order),
        collate_fn=PaddedBatch,
        num_workers=num_workers,
    )
