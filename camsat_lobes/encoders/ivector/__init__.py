"""i-vector extractor: MFCC front end, diagonal GMM-UBM, total-variability model.

Everything is unsupervised and batched in torch (it runs on a GPU when given one):

1. :class:`MFCCFrontEnd`: MFCCs with deltas, an energy voice-activity detector and
   per-utterance mean/variance normalisation.
2. :class:`DiagonalGMM`: the universal background model, grown by splitting
   components and trained by EM on frames pooled from all training utterances.
3. :class:`TotalVariability`: the low-rank model ``M(u) = m + T w(u)``, ``w ~ N(0, I)``,
   trained by EM on the utterances' Baum-Welch statistics; the i-vector of an
   utterance is the posterior mean of ``w``.

:class:`IVectorEncoder` ties them together behind the stage-1 encoder interface.

Modules: :mod:`~camsat_lobes.encoders.ivector.frontend`,
:mod:`~camsat_lobes.encoders.ivector.gmm`,
:mod:`~camsat_lobes.encoders.ivector.total_variability` and
:mod:`~camsat_lobes.encoders.ivector.encoder`, one for each of the steps above.

Authors
 * camsat contributors 2026
"""

from camsat_lobes.encoders.ivector.encoder import IVectorEncoder
from camsat_lobes.encoders.ivector.frontend import MFCCFrontEnd, masked_standardize
from camsat_lobes.encoders.ivector.gmm import DiagonalGMM
from camsat_lobes.encoders.ivector.total_variability import TotalVariability

__all__ = [
    "DiagonalGMM",
    "IVectorEncoder",
    "MFCCFrontEnd",
    "TotalVariability",
    "masked_standardize",
]
