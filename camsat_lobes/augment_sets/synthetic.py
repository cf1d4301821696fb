"""The synthetic sets, made offline: coloured noises, simulated rooms, babble.

- ``noise.csv``: coloured noises (:func:`coloured_noise`: white, pink, brown, blue and
  band-limited white, in turn);
- ``rirs.csv``: impulse responses of simulated shoebox rooms (:func:`room_rir`,
  pyroomacoustics: image sources up to order 3, ray tracing for the tail);
- ``babble.csv``: a few of the given speech files summed (:func:`babble`).

:func:`build_synthetic_sets` writes them (``kind="synthetic"`` of
:func:`~camsat_lobes.augment_sets.build_augmentation_sets`). The room ranges differ
from the MiniVox generator's session channels, so the augmentation never replays the
corpus's own channels.

Authors
 * camsat contributors 2026
"""

import functools
import logging
from pathlib import Path

import numpy as np
import pyroomacoustics as pra

from camsat_lobes.audio_checks import read_audio_mono
from camsat_lobes.augment_sets.writing import (
    OPTIONS_FILE,
    item_rng,
    path_list_fingerprint,
    write_set,
)
from camsat_lobes.files import outputs_up_to_date, write_json

logger = logging.getLogger(__name__)

NOISE_COLOURS = ("white", "pink", "brown", "blue", "band")
ROOM_SIZE_RANGE = ((3.0, 3.0, 2.5), (12.0, 10.0, 4.5))  # metres, low and high corner
RT60_RANGE = (0.2, 0.8)  # seconds
WALL_MARGIN = 0.5  # metres between the walls and the source or microphone
BABBLE_TALKERS = (3, 7)  # talkers summed in one babble file
NOISE_RMS = 0.05


def coloured_noise(colour, num_samples, rng, sample_rate=16000):
    """Return a noise whose power spectrum follows a colour.

    Arguments
    ---------
    colour : str
        ``"white"`` (flat), ``"pink"`` (power 1/f), ``"brown"`` (1/f^2), ``"blue"``
        (f) or ``"band"`` (white noise kept in a random band of one to three octaves
        between 100 Hz and 0.9 x Nyquist).
    num_samples : int
        Length of the noise.
    rng : numpy.random.Generator
        Source of randomness.
    sample_rate : int
        Sample rate, used for the band limits.

    Returns
    -------
    numpy.ndarray
        float32 noise with an RMS of 0.05.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> noise = coloured_noise("brown", 16000, rng)
    >>> spectrum = np.abs(np.fft.rfft(noise)) ** 2
    >>> bool(spectrum[10:200].mean() > 100 * spectrum[4000:].mean())
    True
    """
    if colour not in NOISE_COLOURS:
        raise ValueError(f"noise colour {colour!r} is not one of {NOISE_COLOURS}")
    spectrum = np.fft.rfft(rng.standard_normal(num_samples))
    frequencies = np.fft.rfftfreq(num_samples, d=1.0 / sample_rate)
    frequencies[0] = frequencies[1]
    exponent = {"white": 0.0, "pink": -0.5, "brown": -1.0, "blue": 0.5, "band": 0.0}[colour]
    spectrum *= frequencies**exponent
    if colour == "band":
        low = np.exp(rng.uniform(np.log(100.0), np.log(0.9 * sample_rate / 2 / 2)))
        high = min(low * 2.0 ** rng.uniform(1.0, 3.0), 0.9 * sample_rate / 2)
        spectrum[(frequencies < low) | (frequencies > high)] = 0.0
    spectrum[0] = 0.0
    noise = np.fft.irfft(spectrum, n=num_samples)
    return (NOISE_RMS * noise / (np.sqrt(np.mean(noise**2)) + 1e-12)).astype(np.float32)


def room_rir(rng, sample_rate=16000):
    """Simulate the impulse response of a random shoebox room.

    Arguments
    ---------
    rng : numpy.random.Generator
        Source of the room size, RT60, source and microphone positions, and of the
        seed given to pyroomacoustics' ray tracer (its global generator is reseeded).
    sample_rate : int
        Sample rate of the impulse response.

    Returns
    -------
    rir : numpy.ndarray
        float32 impulse response, peak 1.
    room : dict
        ``size`` (m), ``rt60`` (s, the target), ``distance`` (m, source to microphone).

    Example
    -------
    >>> rir, room = room_rir(np.random.default_rng(0))
    >>> float(np.abs(rir).max()), sorted(room)
    (1.0, ['distance', 'rt60', 'size'])
    """
    size = rng.uniform(*ROOM_SIZE_RANGE)
    rt60 = rng.uniform(*RT60_RANGE)
    source, microphone = rng.uniform(WALL_MARGIN, size - WALL_MARGIN, size=(2, 3))
    absorption, _ = pra.inverse_sabine(rt60, size)
    pra.random.seed(int(rng.integers(2**63)))  # the ray tracer draws from pyroomacoustics' RNG
    room = pra.ShoeBox(
        size,
        fs=sample_rate,
        materials=pra.Material(absorption),
        max_order=3,
        ray_tracing=True,
        air_absorption=True,
    )
    room.set_ray_tracing()
    room.add_source(source)
    room.add_microphone(microphone)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    description = {
        "size": [round(float(side), 2) for side in size],
        "rt60": round(float(rt60), 3),
        "distance": round(float(np.linalg.norm(source - microphone)), 2),
    }
    return (rir / np.abs(rir).max()).astype(np.float32), description


def babble(signals, num_samples, rng):
    """Sum several talkers into one babble noise.

    Each signal is looped to ``num_samples``, started at a random offset and scaled to
    the same RMS before the sum.

    Arguments
    ---------
    signals : list of numpy.ndarray
        One 1-D signal per talker.
    num_samples : int
        Length of the babble.
    rng : numpy.random.Generator
        Source of the offsets.

    Returns
    -------
    numpy.ndarray
        float32 babble with an RMS of 0.05.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> talkers = [np.sin(np.arange(4000) * f) for f in (0.05, 0.1, 0.2)]
    >>> babble(talkers, 16000, rng).shape
    (16000,)
    """
    mixture = np.zeros(num_samples)
    for signal in signals:
        looped = np.resize(np.roll(signal, -rng.integers(len(signal))), num_samples)
        mixture += looped / (np.sqrt(np.mean(looped**2)) + 1e-12)
    return (NOISE_RMS * mixture / (np.sqrt(np.mean(mixture**2)) + 1e-12)).astype(np.float32)


def build_synthetic_sets(
    output_folder,
    babble_sources,
    sample_rate,
    seed,
    num_noises,
    num_rirs,
    num_babble,
    noise_duration,
):
    """Write the synthetic sets: coloured noises, simulated rooms, babble of given speech.

    Skipped when the CSVs exist and were made with the same options.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where ``noise/``, ``rirs/``, ``babble/`` and the CSVs go.
    babble_sources : list of str or None
        Speech files to make babble from (at least 2); without them no babble set.
    sample_rate : int
        Sample rate of every file.
    seed : int
        Seed of all the draws.
    num_noises, num_rirs, num_babble : int
        Number of noises, rooms and babble files.
    noise_duration : float
        Length in seconds of each noise and babble file.

    Returns
    -------
    dict
        ``noise_csv``, ``rir_csv`` and ``babble_csv`` (None without babble).

    Example
    -------
    >>> import tempfile
    >>> tmp = tempfile.TemporaryDirectory()
    >>> sets = build_synthetic_sets(tmp.name, None, 16000, 1234, 2, 1, 0, 0.5)
    >>> [len(open(sets[key]).readlines()) - 1 for key in ("noise_csv", "rir_csv")]
    [2, 1]
    >>> sets["babble_csv"] is None
    True
    >>> tmp.cleanup()
    """
    output_folder = Path(output_folder).expanduser().resolve()
    babble_sources = [str(Path(path).resolve()) for path in babble_sources or []]
    if babble_sources and len(babble_sources) < 2:
        raise ValueError(
            f"babble needs at least 2 source utterances, got {len(babble_sources)}: "
            "pass more babble_sources or none"
        )
    options = {
        "sample_rate": sample_rate,
        "seed": seed,
        "num_noises": num_noises,
        "num_rirs": num_rirs,
        "num_babble": num_babble if babble_sources else 0,
        "noise_duration": noise_duration,
        "babble_sources": path_list_fingerprint(babble_sources),
    }
    paths = {
        "noise_csv": output_folder / "noise.csv",
        "rir_csv": output_folder / "rirs.csv",
        "babble_csv": output_folder / "babble.csv" if babble_sources else None,
    }
    result = {key: str(path) if path else None for key, path in paths.items()}
    outputs = [path for path in paths.values() if path]
    if outputs_up_to_date(output_folder / OPTIONS_FILE, options, outputs):
        logger.info("Skipping augmentation sets: %s holds them, same options", output_folder)
        return result

    num_samples = int(round(noise_duration * sample_rate))
    noise = functools.partial(_noise_item, seed=seed, num_samples=num_samples, rate=sample_rate)
    write_set(paths["noise_csv"], output_folder / "noise", noise, num_noises, sample_rate)
    rir = functools.partial(_rir_item, seed=seed, rate=sample_rate)
    write_set(paths["rir_csv"], output_folder / "rirs", rir, num_rirs, sample_rate, "FLOAT")
    if babble_sources:
        mixture = functools.partial(
            _babble_item,
            seed=seed,
            sources=babble_sources,
            num_samples=num_samples,
            rate=sample_rate,
        )
        write_set(paths["babble_csv"], output_folder / "babble", mixture, num_babble, sample_rate)
    write_json(output_folder / OPTIONS_FILE, options)
    return result


def _noise_item(index, seed, num_samples, rate):
    """Return the ID and signal of coloured noise number ``index`` (colours in turn)."""
    colour = NOISE_COLOURS[index % len(NOISE_COLOURS)]
    return f"{colour}_{index:04d}", coloured_noise(
        colour, num_samples, item_rng(seed, "noise", index), rate
    )


def _rir_item(index, seed, rate):
    """Return the ID and impulse response of room number ``index``."""
    return f"room_{index:04d}", room_rir(item_rng(seed, "rir", index), rate)[0]


def _babble_item(index, seed, sources, num_samples, rate):
    """Return the ID and signal of babble number ``index`` (a few random talkers summed)."""
    rng = item_rng(seed, "babble", index)
    talkers = min(int(rng.integers(BABBLE_TALKERS[0], BABBLE_TALKERS[1] + 1)), len(sources))
    chosen = rng.choice(len(sources), size=talkers, replace=False)
    return f"babble_{index:04d}", babble(
        [_talker(sources[i], rate) for i in chosen], num_samples, rng
    )


def _talker(path, rate):
    """Read one babble source, refusing unreadable, empty or silent files."""
    try:
        signal = read_audio_mono(path, rate)
    except Exception as error:  # re-raised with the file named
        raise ValueError(f"babble source {path} cannot be read ({error})") from error
    if signal.size == 0 or not np.any(signal):
        raise ValueError(f"babble source {path} is empty or silent: pass speech files")
    return signal
