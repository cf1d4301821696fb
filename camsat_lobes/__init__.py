"""camsat_lobes: self-supervised speaker verification with CAMSAT pseudo-labels.

The package holds the lobes of the CAMSAT recipe: the MiniVox corpus generator,
data preparation, stage-1 encoders and embedding extraction, clustering (CAMSAT,
IMSAT and baselines) with its metrics, margin-softmax losses for training on
pseudo-labels, verification scoring and the reporting tools.
"""

__version__ = "0.1.0"
