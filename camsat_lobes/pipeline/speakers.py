"""The train stage: one speaker network per system, trained on its pseudo-labels.

Every object of a system's network (modules, margin loss, optimiser, epoch counter,
learning-rate schedule, checkpointer, train log) is built by the recipe yaml, loaded
again for that system (:func:`system_hparams`) with its folder (``speaker_folder``),
its number of classes (``n_classes``) and its own settings (``speaker_epochs``,
``speaker_loss_name``, ``speaker_regularisation``, ``speaker_loss_gate``). Each
network draws from its own
random stream, seeded from (seed, system, round), so it trains the same whatever ran
before it in the process.

Authors
 * camsat contributors 2026
"""

import logging

from camsat_lobes.clustering import read_pseudo_labels
from camsat_lobes.seeding import derive_seed, seed_part
from camsat_lobes.speaker_training import SpeakerBrain, pseudo_label_datasets

from .encoding import stage1_encoder

__all__ = ["build_speaker_brain", "speaker_brain", "system_hparams", "train"]

logger = logging.getLogger(__name__)


def system_hparams(run, round_index, system):
    """Load the recipe for one system: its network's folder, classes and own settings.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    system : str
        The system (its pseudo-labels give the number of classes).

    Returns
    -------
    dict
        The recipe's objects, built for this system.
    """
    folder = run.layout.speaker(round_index, system)
    labels = read_pseudo_labels(folder.parent / "pseudo_labels.csv")[1]
    return run.recipe.load(
        speaker_folder=str(folder), n_classes=int(labels.max()) + 1, **run.speaker_overrides(system)
    )


def train(
    run,
    round_index,
    system,
    speaker_brain,
    init_from_stage1=True,
    imprint_class_weights=True,
    valid_fraction=0.05,
    dataloader_options=None,
):
    """Train one system's speaker network, resuming from its last checkpoint if any.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    system : str
        The system whose pseudo-labels the network learns.
    speaker_brain : dict
        The Brain's ``modules``, ``opt_class``, ``checkpointer`` and ``hparams``, built
        for this system by the recipe yaml (see :func:`system_hparams`).
    init_from_stage1 : bool
        Start from the stage-1 encoder's weights when the networks have the same shape.
    imprint_class_weights : bool
        Start each class weight at the mean direction of its training segments.
    valid_fraction : float
        Fraction of the utterances held out to watch the pseudo-label loss; the
        checkpoint of lowest held-out loss is the one used afterwards.
    dataloader_options : dict, optional
        Keyword arguments of the training and validation loaders.
    """

    def work():
        """Build the datasets and the Brain, imprint the class weights, fit."""
        train_data, valid_data, _ = pseudo_label_datasets(
            run.layout.manifest("train"),
            run.layout.system(round_index, system) / "pseudo_labels.csv",
            valid_fraction=valid_fraction,
            seed=run.hparams["seed"],
        )
        brain = build_speaker_brain(run, round_index, system, speaker_brain, init_from_stage1)
        if brain.checkpointer.find_checkpoint() is not None:
            logger.info("%s: resuming from its last checkpoint", system)
        elif imprint_class_weights:
            imprinted = brain.imprint_class_weights(train_data)
            logger.info("%s: imprinted %d class weights", system, imprinted)
        brain.fit(
            brain.hparams.epoch_counter,
            train_data,
            valid_data,
            train_loader_kwargs=dataloader_options or {},
            valid_loader_kwargs=dataloader_options or {},
        )

    run.once(run.record("train", round_index, system), work, on_main=False)


def build_speaker_brain(run, round_index, system, speaker_brain, init_from_stage1=False):
    """Make the Brain of one system's network from its yaml-built parts.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    system : str
        The system.
    speaker_brain : dict
        ``modules``, ``opt_class``, ``checkpointer`` and ``hparams`` (see :func:`train`).
    init_from_stage1 : bool
        Copy the stage-1 encoder's weights into the embedding model first.

    Returns
    -------
    camsat_lobes.speaker_training.SpeakerBrain
        The Brain; its margin loss's class weights are drawn from the network's own
        random stream.
    """
    seed = derive_seed(run.hparams["seed"], "speaker", system, round_index)
    seed_part(seed)
    modules = speaker_brain["modules"]
    modules["speaker_loss"].reset_parameters()
    if init_from_stage1:
        _start_from_stage1(run, modules["embedding_model"])
    hparams = dict(speaker_brain["hparams"], seed=seed)
    hparams["wav_augment"] = hparams["wav_augment"](run.layout.augmentation_sets())
    if hparams.get("loss_gate") is not None:  # its loss statistics resume with the network
        speaker_brain["checkpointer"].add_recoverable("loss_gate", hparams["loss_gate"])
    return SpeakerBrain(
        modules=modules,
        opt_class=speaker_brain["opt_class"],
        hparams=hparams,
        run_opts=run.run_opts,
        checkpointer=speaker_brain["checkpointer"],
    )


def speaker_brain(run, round_index, system):
    """Load a system's trained network (its checkpoint of lowest validation loss).

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    system : str
        The system.

    Returns
    -------
    camsat_lobes.speaker_training.SpeakerBrain
        The trained Brain, an encoder with ``embed(wavs, wav_lens)``.

    Raises
    ------
    FileNotFoundError
        When the system's network has not been trained.
    """
    hparams = system_hparams(run, round_index, system)
    brain = build_speaker_brain(run, round_index, system, hparams["speaker_brain"])
    if brain.checkpointer.find_checkpoint(min_key="loss") is None:
        raise FileNotFoundError(
            f"{run.layout.speaker(round_index, system)} holds no trained network of system "
            f"{system!r}: run the train stage of round {round_index} first (--first_stage=train)"
        )
    brain.checkpointer.recover_if_possible(min_key="loss")
    return brain


def _start_from_stage1(run, network):
    """Copy the stage-1 encoder's weights into ``network`` when both have the same shape.

    A checkpoint of the speaker-training stage, when one exists, overrides them.
    """
    source = getattr(stage1_encoder(run), "embedding_model", None)
    target = network.state_dict()
    if source is None or {k: v.shape for k, v in source.state_dict().items()} != {
        k: v.shape for k, v in target.items()
    }:
        logger.warning(
            "init_from_stage1: the stage-1 encoder differs from the speaker network; "
            "training the speaker network from scratch"
        )
        return
    network.load_state_dict(source.state_dict())
