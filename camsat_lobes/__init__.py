"""camsat_lobes: self-supervised speaker verification with CAMSAT pseudo-labels.

The package holds the lobes of the CAMSAT recipe: the MiniVox corpus generator,
data preparation, stage-1 encoders and embedding extraction, clustering (CAMSAT,
IMSAT and baselines) with its metrics, margin-softmax losses for training on
pseudo-labels, verification scoring and the reporting tools.

Authors
 * camsat contributors 2026
"""

from camsat_lobes.logging_filters import silence_torchvision_warning

__version__ = "0.1.0"

# SpeechBrain warns on import that torchvision is missing; our figures are saved with matplotlib.
silence_torchvision_warning()
