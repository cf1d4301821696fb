"""The prepare stage: the corpus's manifests and trial lists, and checks of the data.

With no ``data_folder``, the MiniVox preset is generated (or found in the cache)
first. After preparation the run knows its true speaker count, so it checks the
numbers that depend on it before anything trains: ``n_speakers`` (counted from the
data when not given) and the systems' cluster counts, which cannot exceed the number
of training utterances.

Authors
 * camsat contributors 2026
"""

import logging
import shutil
import time
from pathlib import Path

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main

from camsat_lobes.augment_sets import build_augmentation_sets
from camsat_lobes.minivox import MiniVoxConfig, default_root, generate_minivox
from camsat_lobes.prepare import prepare_voxceleb

from .layout import TRUE_LABELS
from .records import RECORD_FILE
from .trials import read_column

__all__ = ["check_counts", "prepare", "reuse_stage1"]

logger = logging.getLogger(__name__)


def prepare(
    run,
    data_folder=None,
    minivox_preset=None,
    minivox_root=None,
    seg_duration=3.0,
    min_duration=1.0,
    development_speakers=0,
    seed=1234,
    voxceleb1_folder=None,
    voxceleb2_folder=None,
    train_on=None,
    trial_lists=None,
    convert_workers=None,
    augmentation="synthetic",
    musan_folder=None,
    rir_folder=None,
):
    """Prepare the corpus (generating MiniVox first when no data folder is set).

    Three kinds of corpus: VoxCeleb as the field uses it (``voxceleb1_folder`` and
    ``voxceleb2_folder``: VoxCeleb2 dev trains, the cleaned VoxCeleb1 lists are
    scored), one VoxCeleb-layout folder (``data_folder``), or MiniVox. A preparation
    is redone when the corpus or an option changed; the stages that read the old one
    are then stale and done again (see
    :class:`~camsat_lobes.pipeline.records.StageRecord`).

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    data_folder : str, optional
        A VoxCeleb-layout folder (``wav/<speaker>/<session>/<utt>.wav`` and ``trials.txt``).
    minivox_preset : str, optional
        The MiniVox preset to generate when no data folder is set.
    minivox_root : str, optional
        Where MiniVox lives (default: the cache, ``$CAMSAT_CACHE``).
    seg_duration : float
        Length of the training segments (seconds).
    min_duration : float
        Shorter files are skipped (seconds).
    development_speakers : int
        When positive, this many training speakers become the test set of a
        development split (see :func:`camsat_lobes.prepare.prepare_voxceleb`).
    seed : int
        Seed of the offline augmentation sets.
    voxceleb1_folder, voxceleb2_folder : str, optional
        VoxCeleb1 (``wav/`` and the trial lists) and VoxCeleb2 (``dev/aac/`` as
        downloaded, or ``dev/wav/``).
    train_on : list of str, optional
        The corpora that train (default: VoxCeleb2 dev only).
    trial_lists : dict, optional
        List name -> list file in the VoxCeleb1 folder (default: the cleaned O, E, H).
    convert_workers : int, optional
        Processes converting m4a to wav.
    augmentation : str
        ``synthetic`` (generated noises, rooms and babble) or ``musan_rir``.
    musan_folder, rir_folder : str, optional
        MUSAN and RIRS_NOISES as downloaded (for ``musan_rir``).
    """
    corpus = dict(
        seg_duration=seg_duration,
        min_duration=min_duration,
        development_speakers=development_speakers,
    )
    voxceleb = dict(
        voxceleb1_folder=voxceleb1_folder,
        voxceleb2_folder=voxceleb2_folder,
        train_on=train_on,
        trial_lists=trial_lists,
        convert_workers=convert_workers,
    )
    if voxceleb1_folder or voxceleb2_folder:
        corpus.update(voxceleb)
    sets = dict(kind=augmentation, musan_folder=musan_folder, rir_folder=rir_folder, seed=seed)
    run_on_main(
        _prepare_on_main, args=[run, data_folder, minivox_preset, minivox_root, corpus, sets]
    )


def _prepare_on_main(run, data_folder, preset, minivox_root, corpus, sets):
    """Generate MiniVox if needed, write the manifests, the augmentation sets and the record."""
    field_protocol = corpus.get("voxceleb1_folder") or corpus.get("voxceleb2_folder")
    if data_folder is None and preset is None and not field_protocol:
        raise ValueError(
            "no data: set --voxceleb1_folder and --voxceleb2_folder (VoxCeleb as downloaded), "
            "--data_folder=/path/to/corpus (a VoxCeleb-layout folder of wav files with "
            "trials.txt), or --minivox_preset=default for MiniVox"
        )
    start = time.time()
    if data_folder is None and not field_protocol:
        config = MiniVoxConfig.preset(preset)
        data_folder = minivox_root or default_root(config)
        generate_minivox(config, root=data_folder)
    paths = prepare_voxceleb(data_folder, run.layout.data, **corpus)
    build_augmentation_sets(
        run.layout.augmentation, babble_sources=read_column(paths["train_utts_csv"], "wav"), **sets
    )
    record = run.record("prepare")
    if record.state()[0] != "current":
        record.finish(time.time() - start)


def check_counts(run, n_speakers=None):
    """Check the speaker count and the cluster counts against the prepared data.

    ``n_speakers`` left at null becomes the number of training speakers (the recipe is
    loaded again with it); a different number given by the user is an error, as is a
    system asking for more clusters than there are training utterances.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        A run whose data is prepared.
    n_speakers : int, optional
        The number of training speakers the user expects (null: count them).

    Raises
    ------
    ValueError
        Naming the value given, the value found in the data and how to fix it.
    """
    utterances = run.layout.manifest("train_utts")
    speakers = len(set(read_column(utterances, "spk_id")))
    given = n_speakers
    if given is None:
        logger.info("n_speakers: %d training speakers in %s", speakers, utterances)
        run.reload(n_speakers=speakers)
    elif given != speakers:
        raise ValueError(
            f"n_speakers={given}, but the prepared training set has {speakers} speakers "
            f"({utterances}). Leave n_speakers unset (null) to use the data's count, or "
            f"give --n_speakers={speakers}."
        )
    n_utterances = len(read_column(utterances, "ID"))
    for system in run.labelled_systems():
        if system == TRUE_LABELS:
            continue
        clusterer = run.systems[system].get("clusterer")
        n_clusters = getattr(clusterer, "n_clusters", None)
        if isinstance(n_clusters, int) and n_clusters > n_utterances:
            raise ValueError(
                f"system {system!r} asks for n_clusters={n_clusters} clusters, more than the "
                f"{n_utterances} training utterances of {utterances}: lower its number of "
                "clusters (e.g. --n_clusters) or use more data."
            )


def reuse_stage1(run, source=None):
    """Copy the stage-1 encoder and its embeddings from another run (``source``), if set.

    Runs that differ only after stage 1 (e.g. speaker-training settings) then share
    one stage-1 training. Only parts this run does not have are copied, and only from
    a run prepared from the same corpus with the same options; the copied records are
    then checked like this run's own (a stage 1 trained with other settings is stale).

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run (its main seed).
    source : str, optional
        The output folder of a finished run on the same data.
    """
    if not source or not sb.utils.distributed.if_main_process():
        return
    source, root = Path(source), run.layout.root
    record = run.layout.preparation_record.relative_to(root)
    if (source / record).read_text() != (root / record).read_text():
        raise ValueError(
            f"reuse_stage1_from={source} was prepared from another corpus or with other "
            f"options than {root} (their {record} differ); a stage 1 can only be "
            "reused on the same data"
        )
    for part in (run.layout.encoder.relative_to(root), run.layout.embeddings(1).relative_to(root)):
        if not (source / part / RECORD_FILE).exists():
            raise FileNotFoundError(
                f"reuse_stage1_from={source} has no finished {part}; run its stage 1 first"
            )
        if not (root / part / RECORD_FILE).exists():
            logger.info("Reusing %s from %s", part.as_posix(), source)
            shutil.rmtree(root / part, ignore_errors=True)
            shutil.copytree(source / part, root / part)
