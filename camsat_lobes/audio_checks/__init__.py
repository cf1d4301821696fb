"""Reading and checking one audio file before it enters a manifest.

:func:`check_audio_file` decides the fate of one file: kept as it is, converted to
16 kHz mono (another sample rate, several channels, or a container that soundfile
cannot read when ffmpeg is found, see :func:`find_ffmpeg`), or skipped (unreadable,
empty, shorter than the minimum duration, holding NaN or inf samples, silent, or an
unsupported container). It never raises on a bad file: the problem and the action taken are
returned, so a preparation run over a million files reports every bad one instead
of stopping at the first.

The checks are cheap where the file is fine: the header (``soundfile.info``) gives
the duration, sample rate and channel count, and silence is probed on a few short
windows spread over the file; only a file whose probes are all silent is read in full
to confirm it. Files stored as floating-point samples (``FLOAT`` / ``DOUBLE``
subtypes) are read in full, block by block, because only they can hold NaN or inf
samples, which would poison training; integer PCM files cannot and are not read.

:func:`convert_files` converts many files (VoxCeleb2's million m4a files) with ffmpeg
in parallel, atomically and resumably, before they are checked.

Modules: :mod:`~camsat_lobes.audio_checks.reading` (the containers soundfile reads,
mono reads at a sample rate), :mod:`~camsat_lobes.audio_checks.conversion` (finding
ffmpeg, converting with it) and :mod:`~camsat_lobes.audio_checks.checks` (the fate
of one file).

Authors
 * camsat contributors 2026
"""

from camsat_lobes.audio_checks.checks import (
    FINITE_CHECK_BLOCK,
    FLOAT_SUBTYPES,
    PROBE_SECONDS,
    SILENCE_PROBES,
    AudioCheck,
    check_audio_file,
)
from camsat_lobes.audio_checks.conversion import (
    CONVERT_BATCH,
    convert_files,
    convert_with_ffmpeg,
    find_ffmpeg,
    require_ffmpeg,
)
from camsat_lobes.audio_checks.reading import (
    AUDIO_EXTENSIONS,
    FFMPEG_EXTENSIONS,
    SOUNDFILE_EXTENSIONS,
    read_audio_excerpt,
    read_audio_mono,
)

__all__ = [
    "AUDIO_EXTENSIONS",
    "CONVERT_BATCH",
    "FFMPEG_EXTENSIONS",
    "FINITE_CHECK_BLOCK",
    "FLOAT_SUBTYPES",
    "PROBE_SECONDS",
    "SILENCE_PROBES",
    "SOUNDFILE_EXTENSIONS",
    "AudioCheck",
    "check_audio_file",
    "convert_files",
    "convert_with_ffmpeg",
    "find_ffmpeg",
    "read_audio_excerpt",
    "read_audio_mono",
    "require_ffmpeg",
]
