"""Every folder and file name of a recipe run, in one place.

A run folder (the recipe's ``output_folder``) holds::

    hyperparams.yaml, env.log, log.txt     SpeechBrain's experiment files
    run.lock                               the lock of the process writing this folder
    save/data/                             manifests, trial lists, augmentation sets
    round1/encoder/                        the stage-1 encoder (checkpoints, train log)
    round<r>/embeddings/{train,test}/      a round's input embeddings (+ augmented views)
    round<r>/systems/<system>/             one system: pseudo_labels.csv,
        clustering_metrics.json, history.json, speaker/ (its network), verify/,
        scores_<list>.txt, verification.json, inference/ (the exported model)
    round<r>/intervals.json                bootstrap intervals of the round's systems
    report/                                results tables and plots
    seed<s>/round<r>/...                   the random stages of another seed

Round 1's embeddings and the stage-1 system belong to the main seed: every seed
clusters the same stage-1 embeddings.

Authors
 * camsat contributors 2026
"""

from pathlib import Path

from camsat_lobes.prepare.record import RECORD_FILE as PREPARATION_RECORD

__all__ = ["STAGE1", "TRUE_LABELS", "RunLayout"]

#: The system that scores the stage-1 embeddings directly.
STAGE1 = "stage1"
#: The reference system trained on the true speaker labels.
TRUE_LABELS = "true_labels"


class RunLayout:
    """The paths of one seed's part of a run folder.

    Arguments
    ---------
    output_folder : str or pathlib.Path
        The run folder.
    seed : int, optional
        This seed, when it is not the run's main seed: its clusterings and networks
        then live in ``<output_folder>/seed<seed>/``.

    Example
    -------
    >>> layout = RunLayout("results/camsat/1234")
    >>> layout.system(1, "camsat").as_posix()
    'results/camsat/1234/round1/systems/camsat'
    >>> RunLayout("out", seed=7).speaker(1, "camsat").as_posix()
    'out/seed7/round1/systems/camsat/speaker'
    >>> RunLayout("out", seed=7).embeddings(1).as_posix()
    'out/round1/embeddings'
    """

    def __init__(self, output_folder, seed=None):
        self.root = Path(output_folder)
        self.seed = seed
        self.seed_root = self.root if seed is None else self.root / f"seed{seed}"

    @property
    def is_main(self):
        """Whether this is the main seed's layout."""
        return self.seed is None

    @property
    def data(self):
        """Prepared manifests and trial lists."""
        return self.root / "save" / "data"

    @property
    def augmentation(self):
        """The noise, room and babble sets (CSV files) of the augmenters."""
        return self.data / "augmentation"

    @property
    def preparation_record(self):
        """The record of the prepared corpus and options (written by the preparation)."""
        return self.data / PREPARATION_RECORD

    def augmentation_sets(self):
        """Return the paths of the noise, impulse-response and babble CSVs, by key."""
        names = {"noise_csv": "noise.csv", "rir_csv": "rirs.csv", "babble_csv": "babble.csv"}
        return {key: str(self.augmentation / name) for key, name in names.items()}

    def manifest(self, name):
        """Return a prepared manifest: ``train_utts``, ``train`` (segments) or ``test``."""
        return self.data / f"{name}.csv"

    @property
    def hyperparams(self):
        """The resolved hyperparameters SpeechBrain saves (exported models read them)."""
        return self.root / "hyperparams.yaml"

    @property
    def lock(self):
        """The lock file of the process writing this run folder."""
        return self.root / "run.lock"

    def round(self, round_index):
        """Return one round of this seed."""
        return self.seed_root / f"round{round_index}"

    @property
    def encoder(self):
        """The stage-1 encoder (shared by every seed)."""
        return self.root / "round1" / "encoder"

    def embeddings(self, round_index):
        """Return a round's input embeddings: round 1's (stage 1's) are shared by every seed."""
        owner = self.root if round_index == 1 else self.seed_root
        return owner / f"round{round_index}" / "embeddings"

    def systems(self, round_index):
        """Return the folder of a round's systems."""
        return self.round(round_index) / "systems"

    def system(self, round_index, system):
        """Return one system of a round: its pseudo-labels, scores and exported model."""
        return self.systems(round_index) / system

    def speaker(self, round_index, system):
        """Return the folder of one system's speaker network (checkpoints and train log)."""
        return self.system(round_index, system) / "speaker"

    def verification(self, round_index, system):
        """Return the verify stage's folder of one system (its record)."""
        return self.system(round_index, system) / "verify"

    def scores(self, round_index, system):
        """Return where a system's scores live: round 1's stage-1 scores are the main seed's."""
        if system == STAGE1 and round_index == 1:
            return self.root / "round1" / "systems" / STAGE1
        return self.system(round_index, system)

    def intervals(self, round_index):
        """Return the bootstrap intervals of a round's systems."""
        return self.round(round_index) / "intervals.json"

    def seed_roots(self):
        """Return the folders of the run's other seeds."""
        return sorted(self.root.glob("seed*"))

    @property
    def report(self):
        """Results tables and plots."""
        return self.root / "report"
