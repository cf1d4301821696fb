"""Building the augmentation sets of either kind, synthetic or downloaded.

:func:`build_augmentation_sets` checks the options, fills in the default sizes of the
kind (:data:`SET_SIZES`) and hands over to
:func:`~camsat_lobes.augment_sets.synthetic.build_synthetic_sets` or
:func:`~camsat_lobes.augment_sets.downloaded.build_musan_rir_sets`.

Authors
 * camsat contributors 2026
"""

from camsat_lobes.augment_sets.downloaded import build_musan_rir_sets
from camsat_lobes.augment_sets.synthetic import build_synthetic_sets

KINDS = ("synthetic", "musan_rir")
SET_SIZES = {  # num_noises, num_rirs, num_babble when not given
    "synthetic": (100, 100, 50),
    "musan_rir": (500, 1000, 200),
}


def build_augmentation_sets(
    output_folder,
    babble_sources=None,
    sample_rate=16000,
    seed=1234,
    num_noises=None,
    num_rirs=None,
    num_babble=None,
    noise_duration=5.0,
    kind="synthetic",
    musan_folder=None,
    rir_folder=None,
    max_rir_duration=2.0,
):
    """Write the noise, babble and impulse-response sets and their CSVs.

    The work is skipped when the CSVs exist and were made with the same options
    (recorded in ``augmentation_options.json``, written last).

    Arguments
    ---------
    output_folder : str or pathlib.Path
        Where ``noise/``, ``babble/``, ``rirs/`` and the CSVs go.
    babble_sources : list of str, optional
        With ``kind="synthetic"``: speech files to make babble from (for instance the
        training utterances of speakers other than those being augmented); without
        them no babble set is made. With ``kind="musan_rir"`` the babble comes from
        MUSAN speech and these are not used.
    sample_rate : int
        Sample rate of every file.
    seed : int
        Seed of all the draws.
    num_noises : int, optional
        Number of noise files: coloured noises cycling through :data:`NOISE_COLOURS`
        (100 by default), or MUSAN noise and music excerpts in turn (500 by default).
    num_rirs : int, optional
        Number of impulse responses: simulated rooms (100 by default), or drawn from
        RIRS_NOISES (1000 by default, or all there are when fewer).
    num_babble : int, optional
        Number of babble files (50 by default; 200 from MUSAN speech).
    noise_duration : float
        Length in seconds of each noise and babble file (longer than the training
        crops, so AddNoise can start at a random offset).
    kind : str
        ``"synthetic"`` (made here, offline) or ``"musan_rir"`` (drawn from the
        downloaded MUSAN and RIRS_NOISES folders).
    musan_folder : str or pathlib.Path, optional
        With ``kind="musan_rir"``: the MUSAN root holding ``noise/``, ``music/`` and
        ``speech/`` (wav files, in subfolders as unpacked).
    rir_folder : str or pathlib.Path, optional
        With ``kind="musan_rir"``: the RIRS_NOISES root holding ``simulated_rirs/``
        and ``real_rirs_isotropic_noises/``.
    max_rir_duration : float
        With ``kind="musan_rir"``: impulse responses are cut this many seconds after
        their direct path.

    Returns
    -------
    dict
        ``noise_csv``, ``rir_csv`` and ``babble_csv`` (None without babble).

    Example
    -------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> import soundfile as sf
    >>> tmp = tempfile.TemporaryDirectory()
    >>> sets = build_augmentation_sets(tmp.name, num_noises=2, num_rirs=1, noise_duration=1.0)
    >>> open(sets["noise_csv"]).readline().strip()
    'ID,duration,wav,wav_format,wav_opts'
    >>> sets["babble_csv"] is None
    True
    >>> musan, rirs = Path(tmp.name) / "musan", Path(tmp.name) / "RIRS_NOISES"
    >>> t = np.arange(32000) / 16000
    >>> for name in ["noise/a/n.wav", "music/b/m.wav", "speech/c/s.wav", "speech/c/t.wav"]:
    ...     (musan / name).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(musan / name, 0.1 * np.sin(2 * np.pi * (100 + len(name)) * t), 16000)
    >>> for name in ["simulated_rirs/smallroom/Room001/Room001-00001.wav",
    ...              "real_rirs_isotropic_noises/air_rir.wav"]:
    ...     (rirs / name).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(rirs / name, np.exp(-t[:4000] * 40), 16000)
    >>> sets = build_augmentation_sets(
    ...     Path(tmp.name) / "real", kind="musan_rir", musan_folder=musan, rir_folder=rirs,
    ...     num_noises=2, num_babble=1, noise_duration=1.0)
    >>> [len(open(sets[key]).readlines()) - 1 for key in ("noise_csv", "rir_csv", "babble_csv")]
    [2, 2, 1]
    >>> tmp.cleanup()
    """
    if kind not in KINDS:
        raise ValueError(f"kind={kind!r} is not one of {KINDS}")
    given = (num_noises, num_rirs, num_babble)
    sizes = [size if size is not None else default for size, default in zip(given, SET_SIZES[kind])]
    if kind == "synthetic":
        if musan_folder is not None or rir_folder is not None:
            raise ValueError(
                "musan_folder and rir_folder are read with kind='musan_rir' only; "
                "kind='synthetic' makes its own sets: pass kind='musan_rir' or drop them"
            )
        return build_synthetic_sets(
            output_folder, babble_sources, sample_rate, seed, *sizes, noise_duration
        )
    return build_musan_rir_sets(
        output_folder,
        musan_folder,
        rir_folder,
        sample_rate,
        seed,
        *sizes,
        noise_duration,
        max_rir_duration,
        babble_sources,
    )
