"""MiniVox: a VoxCeleb-shaped speaker corpus synthesised offline with Kokoro-82M.

No real multi-speaker corpus can be downloaded everywhere, so MiniVox makes one:
new voices blended from Kokoro's style packs speak seeded English sentences, each
speaker in several sessions with their own room, microphone and background noise.
The corpus has the VoxCeleb layout (``wav/<speaker>/<session>/<utt>.wav``), a trial
list in the VoxCeleb format over disjoint test speakers and a ``metadata.json``;
it is deterministic for a seed and cached under ``$CAMSAT_CACHE/minivox/<hash>``.

Modules: :mod:`.config` (settings and presets), :mod:`.text` (sentences),
:mod:`.phonemes` (English to model tokens), :mod:`.tts` (the ONNX model),
:mod:`.speakers` (voices), :mod:`.channel` (session rooms, microphones, noise),
:mod:`.trials` (trial list), :mod:`.corpus` (layout, caching, workers).

Command line: ``python -m camsat_lobes.minivox --root DIR --preset small``.

Example
-------
>>> from camsat_lobes.minivox import MiniVoxConfig
>>> MiniVoxConfig.small().num_test_speakers
3

Authors
 * camsat contributors 2026
"""

from .config import PRESET_NAMES, MiniVoxConfig
from .corpus import default_root, generate_minivox

__all__ = ["PRESET_NAMES", "MiniVoxConfig", "default_root", "generate_minivox"]
