"""Random crops of the training utterances, the data of self-supervised training.

:func:`random_crops` cuts crops from one signal (repeating a short one),
:func:`random_crop_batch` one crop from each waveform of a padded batch, and
:func:`ssl_dataset` is the dataset whose items are fresh crops of every utterance
at each access. Only the audio columns of the manifest are read, so speaker labels
never enter self-supervised training.

Authors
 * camsat contributors 2026
"""

import math

import torch
from speechbrain.dataio.dataset import DynamicItemDataset
from speechbrain.utils.data_pipeline import provides, takes

from camsat_lobes.encoders.data import load_segment, read_audio_columns


def random_crops(signal, n_crops, crop_samples):
    """Cut ``n_crops`` random segments of ``crop_samples`` samples from a signal.

    Signals shorter than a crop are repeated until they fill it.

    Arguments
    ---------
    signal : torch.Tensor
        One waveform, shape ``(time,)``.
    n_crops : int
        Number of crops.
    crop_samples : int
        Length of each crop in samples.

    Returns
    -------
    torch.Tensor
        Shape ``(n_crops, crop_samples)``.

    Example
    -------
    >>> random_crops(torch.arange(10.0), 3, 4).shape
    torch.Size([3, 4])
    >>> random_crops(torch.ones(3), 2, 7).tolist()  # short signals are repeated
    [[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]]
    """
    if signal.numel() == 0:
        raise ValueError("Cannot crop an empty signal.")
    if signal.numel() < crop_samples:
        signal = signal.repeat(math.ceil(crop_samples / signal.numel()))
    starts = torch.randint(0, signal.numel() - crop_samples + 1, (n_crops,))
    return torch.stack([signal[s : s + crop_samples] for s in starts.tolist()])


def random_crop_batch(wavs, lens, crop_samples):
    """Cut one random crop of ``crop_samples`` samples from each waveform of a padded batch.

    Only a waveform's own samples are cropped (its padding never is); a waveform
    shorter than the crop is repeated until it fills it (see :func:`random_crops`),
    so every crop is full length.

    Arguments
    ---------
    wavs : torch.Tensor
        (B, T) zero-padded waveforms.
    lens : torch.Tensor
        (B,) relative lengths in (0, 1].
    crop_samples : int
        Length of the crops in samples.

    Returns
    -------
    crops : torch.Tensor
        (B, crop_samples) crops.
    crop_lens : torch.Tensor
        (B,) relative lengths, all 1.

    Example
    -------
    >>> wavs = torch.tensor([[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 0.0, 0.0]])
    >>> crops, crop_lens = random_crop_batch(wavs, torch.tensor([1.0, 0.5]), 3)
    >>> crops.shape, crop_lens.tolist()
    (torch.Size([2, 3]), [1.0, 1.0])
    >>> crops[1].tolist() in ([5.0, 6.0, 5.0], [6.0, 5.0, 6.0])  # the padding is never cut
    True
    """
    samples = (lens * wavs.shape[1]).round().long().clamp(1, wavs.shape[1]).tolist()
    crops = [random_crops(wav[:n], 1, crop_samples)[0] for wav, n in zip(wavs, samples)]
    return torch.stack(crops), torch.ones(len(crops), device=wavs.device)


def ssl_dataset(
    manifest, sample_rate=16000, n_global=2, global_seconds=2.0, n_local=0, local_seconds=1.0
):
    r"""Dataset of random crops of each utterance for self-supervised training.

    Only the audio columns of the manifest are kept (see :func:`read_audio_columns`):
    speaker and session labels never enter the pipeline. Each access draws new crop
    positions.

    Arguments
    ---------
    manifest : str or pathlib.Path
        Training manifest (``train_utts.csv``).
    sample_rate : int
        Sampling rate of the audio (Hz).
    n_global : int
        Number of long ("global") crops per utterance.
    global_seconds : float
        Length of a global crop.
    n_local : int
        Number of short ("local") crops per utterance (0 for none).
    local_seconds : float
        Length of a local crop.

    Returns
    -------
    speechbrain.dataio.dataset.DynamicItemDataset
        Items ``id``, ``index`` (row number), ``global_crops`` of shape
        ``(n_global, samples)`` and, when ``n_local > 0``, ``local_crops``.

    Example
    -------
    >>> import soundfile
    >>> folder = getfixture("tmp_path")
    >>> soundfile.write(str(folder / "a.wav"), torch.randn(24000).numpy() * 0.1, 16000)
    >>> _ = (folder / "m.csv").write_text(
    ...     f"ID,duration,wav,start,stop\nu1,1.5,{folder}/a.wav,0,24000\n")
    >>> item = ssl_dataset(folder / "m.csv", n_local=3)[0]
    >>> item["global_crops"].shape, item["local_crops"].shape
    (torch.Size([2, 32000]), torch.Size([3, 16000]))
    """
    data = read_audio_columns(manifest)
    global_samples = int(round(global_seconds * sample_rate))
    local_samples = int(round(local_seconds * sample_rate))

    @takes("wav", "start", "stop")
    @provides("global_crops", "local_crops")
    def crops_pipeline(wav, start, stop):
        """Load the segment and yield its global crops, then its local ones."""
        signal = load_segment(wav, start, stop)
        yield random_crops(signal, n_global, global_samples)
        if n_local > 0:
            yield random_crops(signal, n_local, local_samples)

    keys = ["id", "index", "global_crops"] + (["local_crops"] if n_local > 0 else [])
    return DynamicItemDataset(data, dynamic_items=[crops_pipeline], output_keys=keys)
