"""A trained CAMSAT system as a SpeechBrain inference model, and its command line.

:func:`export_model` writes a self-contained model folder; the CAMSAT recipe's verify
stage writes one per trained system (``<output>/.../round<N>/systems/<system>/inference``).
The folder holds:

* ``hyperparams.yaml``: the feature extractor (``compute_features``), the feature
  normaliser (``mean_var_norm``) and the network (``embedding_model``) exactly as the
  recipe built them, the scoring statistics (``scoring``, a :class:`ScoringStatistics`),
  ``modules``, a SpeechBrain ``pretrainer`` naming the checkpoint files, ``sample_rate``
  and ``threshold_source``;
* ``embedding_model.ckpt``, ``mean_var_norm.ckpt`` and ``scoring.ckpt``: the trained
  parameters, the normaliser statistics and the scoring statistics (the training mean,
  the verification threshold and, with AS-norm, the cohort of training embeddings);
* ``threshold.json``: the threshold and a sentence saying how it was chosen;
* ``README.md``: what the folder holds and how to use it.

Load it with :class:`CAMSATSpeakerRecognition`, which scores as the recipe does (cosine
after subtracting the training mean, then AS-norm against the training cohort when the
system used it; nothing from the test utterances enters a score) and decides with the
saved threshold::

    from camsat_lobes.inference import CAMSATSpeakerRecognition
    model = CAMSATSpeakerRecognition.from_hparams(source="path/to/inference")
    score, same_speaker = model.verify_files("a.wav", "b.wav")
    embeddings = model.encode_batch(wavs, wav_lens)  # (batch, 1, dim)

or from the command line (``--help`` for the options and the audio checks)::

    python -m camsat_lobes.inference verify path/to/inference a.wav b.wav
    python -m camsat_lobes.inference embed path/to/inference *.wav -o emb.npy
    python -m camsat_lobes.inference export --format onnx path/to/inference

:func:`export_portable` writes the embedding network as one ONNX or TorchScript file
(:mod:`camsat_lobes.inference.portable` says how it handles features and padding), and
:class:`PortableEmbedder` runs it. SpeechBrain's own ``SpeakerRecognition.from_hparams``
loads the folder too (it embeds identically but scores with a plain cosine and its own
default threshold).

Modules: :mod:`~camsat_lobes.inference.interface` (loading and scoring),
:mod:`~camsat_lobes.inference.export` (writing a folder),
:mod:`~camsat_lobes.inference.portable` and :mod:`~camsat_lobes.inference.runner` (ONNX
and TorchScript), :mod:`~camsat_lobes.inference.checks` (what the command line refuses),
:mod:`~camsat_lobes.inference.cli` (the command line).

Authors
 * camsat contributors 2026
"""

from camsat_lobes.inference.checks import AudioLimits, RecordingError, read_recording
from camsat_lobes.inference.cli import main
from camsat_lobes.inference.export import export_model, read_threshold_source, write_readme
from camsat_lobes.inference.interface import (
    CAMSATSpeakerRecognition,
    ScoringStatistics,
    model_folder,
)
from camsat_lobes.inference.portable import export_portable
from camsat_lobes.inference.runner import PortableEmbedder, read_portable_metadata

__all__ = [
    "AudioLimits",
    "CAMSATSpeakerRecognition",
    "PortableEmbedder",
    "RecordingError",
    "ScoringStatistics",
    "export_model",
    "export_portable",
    "main",
    "model_folder",
    "read_portable_metadata",
    "read_recording",
    "read_threshold_source",
    "write_readme",
]
