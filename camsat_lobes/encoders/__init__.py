"""Stage-1 encoders: the embeddings that are clustered into pseudo-speakers.

Every encoder follows :class:`~camsat_lobes.encoders.base.Encoder`
(``fit(train_manifest, save_folder, augmentation_sets=None, run_opts=None)``,
``embed(wavs, wav_lens)``, ``embedding_dim``, ``sample_rate``):

- :class:`~camsat_lobes.encoders.dino.DINOEncoder` and
  :class:`~camsat_lobes.encoders.simclr.SimCLREncoder`: self-supervised SpeechBrain
  embedding lobes (ECAPA-TDNN, x-vector, ResNet) trained without labels, on the
  shared machinery of :mod:`camsat_lobes.encoders.ssl` (:class:`SSLEncoder`);
- :class:`~camsat_lobes.encoders.ivector.IVectorEncoder`: MFCC, GMM-UBM and
  total-variability model;
- :class:`~camsat_lobes.encoders.pretrained.PretrainedEncoder`: a SpeechBrain
  ``EncoderClassifier`` from a local folder.

The ``hparams/encoders/*.yaml`` fragments each define one of them under the key
``encoder``.

Authors
 * camsat contributors 2026
"""

from camsat_lobes.encoders.augmentation import augment_independently, build_augmenter
from camsat_lobes.encoders.base import Encoder
from camsat_lobes.encoders.dino import DINOEncoder
from camsat_lobes.encoders.ivector import IVectorEncoder
from camsat_lobes.encoders.pretrained import PretrainedEncoder
from camsat_lobes.encoders.simclr import SimCLREncoder
from camsat_lobes.encoders.ssl import SSLEncoder

__all__ = [
    "DINOEncoder",
    "Encoder",
    "IVectorEncoder",
    "PretrainedEncoder",
    "SSLEncoder",
    "SimCLREncoder",
    "augment_independently",
    "build_augmenter",
]
