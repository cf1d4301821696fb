"""Noise, babble and room-impulse-response sets for SpeechBrain's augmenters.

Every peer augments VoxCeleb with MUSAN (``noise/``, ``music/``, ``speech/``) and
RIRS_NOISES (``simulated_rirs/``, ``real_rirs_isotropic_noises/``). Offline, without
them, we make our own (``kind="synthetic"``, the default); with them downloaded,
``kind="musan_rir"`` draws the sets from those folders. Either way the sets are listed
in CSVs that ``speechbrain.augment.time_domain.AddNoise(csv_file=...)`` and
``AddReverb(csv_file=...)`` read (columns ``ID, duration, wav, wav_format,
wav_opts``, absolute paths), and so do the in-memory banks of
:mod:`camsat_lobes.encoders.augmentation`. The synthetic sets:

- ``noise.csv``: coloured noises (white, pink, brown, blue and band-limited white);
- ``babble.csv``: several utterances summed (from ``babble_sources``);
- ``rirs.csv``: impulse responses of simulated shoebox rooms (pyroomacoustics:
  image sources up to order 3 for the early reflections, ray tracing for the tail).

The draws come from streams keyed by ``(seed, "augment_sets.<set>", index)``, and
the ranges differ from the MiniVox generator's session channels (MiniVox rooms have
RT60 0.15-0.6 s and the microphone 0.5-2.5 m from the talker; here RT60 is
0.2-0.8 s in rooms of 3-12 x 3-10 x 2.5-4.5 m with the source and microphone anywhere
at least 0.5 m from the walls), so the augmentation never replays the corpus's own
channels.

The MUSAN/RIR sets (``kind="musan_rir"``) follow what the VoxCeleb recipes do with
those corpora, cut to what an in-memory bank holds (every file is loaded into memory,
zero-padded to the longest, so whole MUSAN recordings of minutes each are out):

- ``noise.csv``: ``noise_duration`` excerpts at random offsets of MUSAN noise and music
  files in turn (SpeechBrain cuts long noise files into pieces; Kaldi and WeSpeaker
  add MUSAN noise and music as background noise);
- ``babble.csv``: 3 to 7 excerpts of MUSAN speech summed (Kaldi's babble, which
  WeSpeaker follows with single speech files);
- ``rirs.csv``: impulse responses drawn from ``simulated_rirs/`` (WeSpeaker's choice)
  and the real ones of ``real_rirs_isotropic_noises/`` (those its ``rir_list`` names,
  SpeechBrain's choice; the isotropic noises are left out), first channel only,
  resampled, cut ``max_rir_duration`` after the direct path and scaled to peak 1.

Modules: :mod:`~camsat_lobes.augment_sets.build` (:func:`build_augmentation_sets`,
which picks the kind), :mod:`~camsat_lobes.augment_sets.synthetic` (the sets made
here), :mod:`~camsat_lobes.augment_sets.downloaded` (the sets drawn from MUSAN and
RIRS_NOISES) and :mod:`~camsat_lobes.augment_sets.writing` (what both share: the
item streams, the wav files and their CSV, the fingerprints of the options).

Authors
 * camsat contributors 2026
"""

from camsat_lobes.augment_sets.build import KINDS, SET_SIZES, build_augmentation_sets
from camsat_lobes.augment_sets.downloaded import DRAWS, MUSAN_PARTS, RIR_PARTS, SILENT_RMS
from camsat_lobes.augment_sets.synthetic import (
    BABBLE_TALKERS,
    NOISE_COLOURS,
    NOISE_RMS,
    ROOM_SIZE_RANGE,
    RT60_RANGE,
    WALL_MARGIN,
    babble,
    coloured_noise,
    room_rir,
)
from camsat_lobes.augment_sets.writing import CSV_HEADER, OPTIONS_FILE

__all__ = [
    "BABBLE_TALKERS",
    "CSV_HEADER",
    "DRAWS",
    "KINDS",
    "MUSAN_PARTS",
    "NOISE_COLOURS",
    "NOISE_RMS",
    "OPTIONS_FILE",
    "RIR_PARTS",
    "ROOM_SIZE_RANGE",
    "RT60_RANGE",
    "SET_SIZES",
    "SILENT_RMS",
    "WALL_MARGIN",
    "babble",
    "build_augmentation_sets",
    "coloured_noise",
    "room_rir",
]
