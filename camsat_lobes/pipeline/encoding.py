"""The encoder and extract stages: the stage-1 encoder, and the embeddings it makes.

Round 1 embeds with the stage-1 encoder (self-supervised, i-vector or pretrained: the
recipe's ``encoder``); a later round embeds with the previous round's network of the
``main_system``. Extraction embeds every training utterance with ``n_views``
augmented copies (the views CAMSAT's augmentation terms compare), then every test
utterance.

Authors
 * camsat contributors 2026
"""

from camsat_lobes.extract import extract_embeddings
from camsat_lobes.seeding import derive_seed

__all__ = ["extract", "round_encoder", "stage1_encoder", "train_encoder"]


def train_encoder(run, encoder):
    """Train the stage-1 encoder (or load it when its training is finished).

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run (its main seed).
    encoder : camsat_lobes.encoders.base.Encoder
        The stage-1 encoder, built by the recipe yaml.

    Returns
    -------
    camsat_lobes.encoders.base.Encoder
        The encoder, fitted.
    """
    if run.stage1 is None:

        def fit():
            """Train the stage-1 encoder, or load it when its training is finished."""
            encoder.fit(
                run.layout.manifest("train_utts"),
                run.layout.encoder,
                augmentation_sets=run.layout.augmentation_sets(),
                run_opts=run.run_opts,
                seed=derive_seed(run.hparams["seed"], "stage1"),
            )

        if not run.once(run.record("encoder"), fit, on_main=False):
            fit()  # a finished training: fit only loads it
        run.stage1 = encoder
    return run.stage1


def stage1_encoder(run):
    """Return the run's stage-1 encoder, through the recipe's ``encoder`` stage.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.

    Returns
    -------
    camsat_lobes.encoders.base.Encoder
        The encoder, fitted.
    """
    return run.stage("encoder")(run)


def round_encoder(run, round_index):
    """Return the encoder of a round: stage 1, or the previous round's main network.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round whose input embeddings the encoder makes.

    Returns
    -------
    object
        An encoder with ``embed(wavs, wav_lens)``.
    """
    if round_index == 1:
        return stage1_encoder(run)
    from .speakers import speaker_brain  # a round's network embeds for the next round

    return speaker_brain(run, round_index - 1, run.hparams["main_system"])


def extract(run, round_index, augmenter, n_views=4, batch_size=16):
    """Embed the training utterances (clean and augmented views) and the test utterances.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round whose input embeddings are made.
    n_views : int
        Augmented views embedded per training utterance.
    augmenter : callable
        ``augmenter(augmentation_sets)`` builds the views' augmenter
        (e.g. :func:`camsat_lobes.encoders.augmentation.build_augmenter`).
    batch_size : int
        Utterances embedded per batch (the result does not depend on it).
    """
    record = run.record("extract", round_index)
    if record.state()[0] == "current":
        return
    network = round_encoder(run, round_index)
    folder = run.layout.embeddings(round_index)

    def work():
        """Embed the training utterances with their views, then the test utterances."""
        extract_embeddings(
            network,
            run.layout.manifest("train_utts"),
            folder / "train",
            n_views=n_views,
            augmenter=augmenter(run.layout.augmentation_sets()),
            batch_size=batch_size,
        )
        extract_embeddings(
            network, run.layout.manifest("test"), folder / "test", n_views=0, batch_size=batch_size
        )

    run.once(record, work)
