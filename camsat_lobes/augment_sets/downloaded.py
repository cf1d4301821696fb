"""The sets drawn from the downloaded MUSAN and RIRS_NOISES corpora.

They follow what the VoxCeleb recipes do with those corpora, cut to what an
in-memory bank holds (every file is loaded into memory, zero-padded to the longest,
so whole MUSAN recordings of minutes each are out):

- ``noise.csv``: excerpts at random offsets of MUSAN noise and music files in turn;
- ``babble.csv``: 3 to 7 excerpts of MUSAN speech summed;
- ``rirs.csv``: impulse responses of ``simulated_rirs/`` and the real ones of
  ``real_rirs_isotropic_noises/`` (not its isotropic noises), first channel only,
  cut after the direct path and scaled to peak 1.

:func:`build_musan_rir_sets` writes them (``kind="musan_rir"`` of
:func:`~camsat_lobes.augment_sets.build_augmentation_sets`).

Authors
 * camsat contributors 2026
"""

import functools
import logging
import os
from pathlib import Path

import numpy as np
import soundfile as sf

from camsat_lobes.audio_checks import read_audio_excerpt
from camsat_lobes.augment_sets.synthetic import BABBLE_TALKERS, babble
from camsat_lobes.augment_sets.writing import (
    OPTIONS_FILE,
    item_rng,
    path_list_fingerprint,
    write_set,
)
from camsat_lobes.files import outputs_up_to_date, write_json

logger = logging.getLogger(__name__)

MUSAN_PARTS = ("noise", "music", "speech")
RIR_PARTS = ("simulated_rirs", "real_rirs_isotropic_noises")
SILENT_RMS = 1e-4  # an excerpt quieter than this is drawn again
DRAWS = 10  # draws of an excerpt before giving up on silent files


def build_musan_rir_sets(
    output_folder,
    musan_folder,
    rir_folder,
    sample_rate,
    seed,
    num_noises,
    num_rirs,
    num_babble,
    noise_duration,
    max_rir_duration,
    babble_sources,
):
    """Write the sets drawn from MUSAN (noise, music, speech) and RIRS_NOISES.

    Skipped when the CSVs exist and were made with the same options and files.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where ``noise/``, ``rirs/``, ``babble/`` and the CSVs go.
    musan_folder : str or pathlib.Path
        The MUSAN root holding ``noise/``, ``music/`` and ``speech/``.
    rir_folder : str or pathlib.Path
        The RIRS_NOISES root holding ``simulated_rirs/`` and
        ``real_rirs_isotropic_noises/``.
    sample_rate : int
        Sample rate of every file.
    seed : int
        Seed of all the draws.
    num_noises, num_rirs, num_babble : int
        Number of noise excerpts, impulse responses (all there are when fewer) and
        babble files (0: no babble set).
    noise_duration : float
        Length in seconds of each noise and babble file.
    max_rir_duration : float
        Impulse responses are cut this many seconds after their direct path.
    babble_sources : list of str or None
        Not used (a warning says so): the babble comes from MUSAN speech.

    Returns
    -------
    dict
        ``noise_csv``, ``rir_csv`` and ``babble_csv`` (None without babble).

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root, t = Path(tmp.name), np.arange(16000) / 16000
    >>> for name in ["musan/noise/n.wav", "musan/music/m.wav", "musan/speech/s.wav",
    ...              "RIRS_NOISES/simulated_rirs/room/r.wav"]:
    ...     (root / name).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(root / name, 0.1 * np.sin(2 * np.pi * 200 * t), 16000)
    >>> (root / "RIRS_NOISES" / "real_rirs_isotropic_noises").mkdir()
    >>> sets = build_musan_rir_sets(
    ...     root / "sets", root / "musan", root / "RIRS_NOISES", 16000, 1234, 2, 5, 1, 0.5, 2.0,
    ...     None)
    >>> [len(open(sets[key]).readlines()) - 1 for key in ("noise_csv", "rir_csv", "babble_csv")]
    [2, 1, 1]
    >>> tmp.cleanup()
    """
    if musan_folder is None or rir_folder is None:
        raise ValueError(
            "kind='musan_rir' needs musan_folder (the MUSAN root with noise/, music/, "
            "speech/) and rir_folder (the RIRS_NOISES root with simulated_rirs/ and "
            "real_rirs_isotropic_noises/); or use kind='synthetic'"
        )
    if num_noises < 1 or num_rirs < 1 or num_babble < 0:
        raise ValueError(
            f"num_noises={num_noises}, num_rirs={num_rirs} must be at least 1 and "
            f"num_babble={num_babble} at least 0"
        )
    output_folder = Path(output_folder).expanduser().resolve()
    musan_folder, musan = _musan_files(musan_folder)
    rir_folder, rirs = _rir_files(rir_folder)
    if babble_sources:
        logger.warning("babble_sources are not used: the babble comes from MUSAN speech")
    options = {
        "kind": "musan_rir",
        "sample_rate": sample_rate,
        "seed": seed,
        "num_noises": num_noises,
        "num_rirs": num_rirs,
        "num_babble": num_babble,
        "noise_duration": noise_duration,
        "max_rir_duration": max_rir_duration,
        "musan_folder": str(musan_folder),
        "musan_files": {part: path_list_fingerprint(files) for part, files in musan.items()},
        "rir_folder": str(rir_folder),
        "rir_files": path_list_fingerprint(rirs),
    }
    paths = {
        "noise_csv": output_folder / "noise.csv",
        "rir_csv": output_folder / "rirs.csv",
        "babble_csv": output_folder / "babble.csv" if num_babble else None,
    }
    result = {key: str(path) if path else None for key, path in paths.items()}
    if outputs_up_to_date(output_folder / OPTIONS_FILE, options, [p for p in paths.values() if p]):
        logger.info("Skipping augmentation sets: %s holds them, same options", output_folder)
        return result

    num_samples = int(round(noise_duration * sample_rate))
    noise = functools.partial(
        _musan_noise_item, seed=seed, musan=musan, num_samples=num_samples, rate=sample_rate
    )
    write_set(paths["noise_csv"], output_folder / "noise", noise, num_noises, sample_rate)
    chosen = _draw(rirs, num_rirs, item_rng(seed, "rir_draw", 0))
    rir = functools.partial(_recorded_rir_item, paths=chosen, rate=sample_rate)
    rir = functools.partial(rir, max_samples=int(round(max_rir_duration * sample_rate)))
    write_set(paths["rir_csv"], output_folder / "rirs", rir, len(chosen), sample_rate, "FLOAT")
    if num_babble:
        mixture = functools.partial(
            _musan_babble_item,
            seed=seed,
            speech=musan["speech"],
            num_samples=num_samples,
            rate=sample_rate,
        )
        write_set(paths["babble_csv"], output_folder / "babble", mixture, num_babble, sample_rate)
    write_json(output_folder / OPTIONS_FILE, options)
    return result


def _musan_files(musan_folder):
    """Return the MUSAN root and its wav files by part, raising on a missing or empty part."""
    folder = Path(musan_folder).expanduser().resolve()
    layout = (
        "musan_folder must be the MUSAN root (as unpacked from musan.tar.gz) holding "
        "noise/, music/ and speech/, each with wav files (in subfolders such as "
        "noise/free-sound/)"
    )
    if not folder.is_dir():
        raise FileNotFoundError(f"musan_folder {folder} does not exist: {layout}")
    files = {}
    for part in MUSAN_PARTS:
        if not (folder / part).is_dir():
            raise FileNotFoundError(f"{folder / part} is missing: {layout}")
        files[part] = _wav_files(folder / part)
        if not files[part]:
            raise FileNotFoundError(f"{folder / part} holds no wav file: {layout}")
    return folder, files


def _rir_files(rir_folder):
    """Return the RIRS_NOISES root and its impulse responses (not the isotropic noises)."""
    folder = Path(rir_folder).expanduser().resolve()
    layout = (
        "rir_folder must be the RIRS_NOISES folder (as unpacked from rirs_noises.zip) "
        "holding simulated_rirs/<room size>/Room*/*.wav and real_rirs_isotropic_noises/"
        "*.wav (with its rir_list)"
    )
    if not folder.is_dir():
        raise FileNotFoundError(f"rir_folder {folder} does not exist: {layout}")
    missing = [f"{folder / part}" for part in RIR_PARTS if not (folder / part).is_dir()]
    if missing:
        raise FileNotFoundError(f"{' and '.join(missing)} missing: {layout}")
    real_folder = folder / "real_rirs_isotropic_noises"
    rir_list = real_folder / "rir_list"
    if rir_list.is_file():  # names the impulse responses among the isotropic noises
        lines = rir_list.read_text(encoding="utf-8").split("\n")
        names = {line.split()[-1].rsplit("/", 1)[-1] for line in lines if line.strip()}
        real = sorted(str(real_folder / name) for name in names if (real_folder / name).is_file())
    else:
        real = [path for path in _wav_files(real_folder) if "noise" not in Path(path).name]
    rirs = _wav_files(folder / "simulated_rirs") + real
    if not rirs:
        raise FileNotFoundError(f"no impulse response (wav file) under {folder}: {layout}")
    return folder, rirs


def _wav_files(folder):
    """Return the wav files under ``folder`` (str paths, sorted)."""
    return sorted(
        os.path.join(parent, name)
        for parent, _, names in os.walk(folder)
        for name in names
        if name.lower().endswith(".wav")
    )


def _draw(items, count, rng):
    """Return ``count`` of ``items`` drawn without replacement, in their order (all if fewer)."""
    if len(items) <= count:
        return list(items)
    return [items[i] for i in sorted(rng.choice(len(items), size=count, replace=False))]


def _excerpt(paths, rng, num_samples, rate):
    """Return a non-silent excerpt of ``num_samples`` at a random offset of a random file."""
    duration = num_samples / rate
    for _ in range(DRAWS):
        path = paths[int(rng.integers(len(paths)))]
        try:
            info = sf.info(path)
            length = info.frames / info.samplerate
            start = rng.uniform(0.0, length - duration) if length > duration else 0.0
            signal = read_audio_excerpt(path, start, duration, rate)
        except Exception as error:  # re-raised with the file named
            raise ValueError(f"{path} cannot be read ({error}): remove or replace it") from error
        if signal.size and np.sqrt(np.mean(np.square(signal, dtype=np.float64))) >= SILENT_RMS:
            return np.clip(signal, -1.0, 1.0)
    raise ValueError(
        f"{DRAWS} excerpts drawn from {Path(paths[0]).parent} and its neighbours were silent "
        f"or empty (the last from {path}): check those files"
    )


def _musan_noise_item(index, seed, musan, num_samples, rate):
    """Return the ID and signal of MUSAN excerpt ``index`` (noise and music in turn)."""
    part = ("noise", "music")[index % 2]
    rng = item_rng(seed, f"musan_{part}", index)
    return f"{part}_{index:04d}", _excerpt(musan[part], rng, num_samples, rate)


def _musan_babble_item(index, seed, speech, num_samples, rate):
    """Return the ID and signal of babble ``index``: 3 to 7 MUSAN speech excerpts summed."""
    rng = item_rng(seed, "musan_babble", index)
    talkers = int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1))
    signals = [_excerpt(speech, rng, num_samples, rate) for _ in range(talkers)]
    return f"babble_{index:04d}", babble(signals, num_samples, rng)


def _recorded_rir_item(index, paths, rate, max_samples):
    """Return the ID and impulse response ``index``: first channel, cut, peak 1."""
    path = paths[index]
    try:
        rir = read_audio_excerpt(path, sample_rate=rate, channel=0)
    except Exception as error:  # re-raised with the file named
        raise ValueError(f"impulse response {path} cannot be read ({error})") from error
    if not rir.size or not np.any(rir):
        raise ValueError(f"impulse response {path} is empty or silent: remove it")
    rir = rir[: int(np.abs(rir).argmax()) + max_samples]
    return f"rir_{index:04d}", (rir / np.abs(rir).max()).astype(np.float32)
