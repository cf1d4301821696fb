"""One seed's run over a run folder: its hyperparameters, systems and stage records.

:class:`Run` is what every stage function takes. It holds the recipe's loaded
hyperparameters, the layout of the run folder, the systems (the clusterings, and the
true-label reference), and builds the :class:`~camsat_lobes.pipeline.records.StageRecord`
of any stage from the hyperparameters the stage depends on and the records it reads.

Authors
 * camsat contributors 2026
"""

import hashlib
import json
import logging
import time

import speechbrain as sb
from speechbrain.utils.distributed import run_on_main

from camsat_lobes.files import write_text

from .layout import STAGE1, TRUE_LABELS, RunLayout
from .records import StageRecord

__all__ = ["Run"]

logger = logging.getLogger(__name__)

#: The keys of a system's entry that set its speaker network (the rest set its clustering).
SYSTEM_SPEAKER_KEYS = (
    "speaker_epochs",
    "speaker_loss_name",
    "speaker_regularisation",
    "speaker_loss_gate",
)


class Run:
    r"""The stages of one seed over one run folder.

    Arguments
    ---------
    recipe : camsat_lobes.pipeline.hparams.RecipeHparams
        The recipe yaml with its overrides.
    run_opts : dict, optional
        SpeechBrain run options (device, distributed launch, ...).
    main_seed : int, optional
        The run's main seed, when this run is another seed: this seed then keeps its
        clusterings and networks in ``<output_folder>/seed<seed>/`` and reads the main
        seed's stage-1 encoder and embeddings.
    systems : dict, optional
        The clusterings to run, name -> entry (a ``clusterer`` and optional
        ``embedding_norm``, ``labels_from``, ``speaker_epochs``, ``speaker_loss_name``,
        ``speaker_regularisation``, ``speaker_loss_gate`` and ``options``, the text its
        records compare);
        by default the recipe's ``systems``.
    skip_collapsed : bool
        Set aside a clustering that kept too few clusters (no network is trained on
        it) instead of stopping, as a study over many pseudo-label sets wants.

    Example
    -------
    >>> from camsat_lobes.pipeline.hparams import RecipeHparams
    >>> path = getfixture("tmp_path") / "recipe.yaml"
    >>> _ = path.write_text(
    ...     "seed: 3\noutput_folder: out\nsystems: null\ntrue_labels_reference: True\n"
    ... )
    >>> run = Run(RecipeHparams(path))
    >>> run.labelled_systems(), run.scored_systems(1)
    (['true_labels'], ['stage1', 'true_labels'])
    """

    def __init__(self, recipe, run_opts=None, main_seed=None, systems=None, skip_collapsed=False):
        self.recipe = recipe
        self.hparams = recipe.load()
        self.run_opts = dict(run_opts or {})
        seed = self.hparams["seed"]
        other_seed = main_seed is not None and main_seed != seed
        self.layout = RunLayout(self.hparams["output_folder"], seed=seed if other_seed else None)
        self.systems = dict(self.hparams.get("systems") or {}) if systems is None else systems
        self.skip_collapsed = skip_collapsed
        self.stage1 = None  # the stage-1 encoder, once trained or loaded

    def reload(self, **overrides):
        """Load the recipe again with more overrides (e.g. the speaker count of the data).

        The run folder's ``hyperparams.yaml`` is written again with them, so that it
        states the settings the run's outputs are made with.

        Arguments
        ---------
        **overrides
            Keys to override from now on.
        """
        self.recipe = self.recipe.with_overrides(**overrides)
        self.hparams = self.recipe.load()
        if not isinstance(self.systems, _GivenSystems):
            self.systems = dict(self.hparams.get("systems") or {})
        if self.is_main and sb.utils.distributed.if_main_process():
            self.layout.root.mkdir(parents=True, exist_ok=True)
            header = f"# {self.recipe.file.resolve()} with the run's overrides, resolved\n"
            write_text(self.layout.hyperparams, header + self.recipe.resolved())

    def use_systems(self, systems):
        """Run these systems (e.g. a study's grid) instead of the recipe's.

        Arguments
        ---------
        systems : dict
            Name -> entry, as the ``systems`` argument of the class.
        """
        self.systems = _GivenSystems(systems)

    @property
    def is_main(self):
        """Whether this is the run's main seed (which owns preparation and stage 1)."""
        return self.layout.is_main

    # ------------------------------------------------------------------ systems
    def labelled_systems(self):
        """Return the systems that train a network: the clusterings, then the true labels."""
        names = list(self.systems)
        if self.hparams.get("true_labels_reference"):
            names.append(TRUE_LABELS)
        return names

    def trained_systems(self, round_index):
        """Return the labelled systems of a round whose clustering was not set aside."""
        return [
            name
            for name in self.labelled_systems()
            if not (self.layout.system(round_index, name) / "collapsed.json").exists()
        ]

    def scored_systems(self, round_index):
        """Return the systems a round scores: its input embeddings, then every network.

        Round 1's input embeddings are the stage-1 encoder's, scored by the main seed.
        """
        trained = self.trained_systems(round_index)
        return trained if round_index == 1 and not self.is_main else [STAGE1, *trained]

    def system_entry(self, system):
        """Return a system's entry (empty for the true labels)."""
        return self.systems.get(system, {}) if system != TRUE_LABELS else {}

    def system_option(self, system, key, default):
        """Return a system's own ``key`` (e.g. ``embedding_norm``), else ``default``."""
        return self.system_entry(system).get(key, default)

    def speaker_overrides(self, system):
        """Return the recipe keys a system's network overrides: epochs, loss, mixup, gate."""
        overrides = {k: v for k, v in self.system_entry(system).items() if k in SYSTEM_SPEAKER_KEYS}
        if system == TRUE_LABELS:
            overrides["speaker_epochs"] = self.hparams["true_labels_epochs"]
        return overrides

    # ------------------------------------------------------------------ stages and records
    def stage(self, name):
        """Return a stage of the recipe's ``stages``: a function with its settings bound.

        Arguments
        ---------
        name : str
            A key of the recipe's ``stages`` (``prepare``, ``encoder``, ``cluster``...).

        Returns
        -------
        callable
            The stage, called with the run (and the round, and for ``train`` the system).
        """
        return self.hparams["stages"][name]

    def options(self, stage):
        """Return what a stage's records compare: its resolved settings, path -> text.

        Paths into the run folder (where a stage writes, not what it computes) are
        left out, so a copied or moved run folder keeps its records.
        """
        root = str(self.layout.root)
        settings = self.recipe.settings(f"stages.{stage}")
        inside = [root, root + "/"]
        return {
            path: text
            for path, text in settings.items()
            if not (text == inside[0] or text.startswith(inside[1]))
        }

    def system_options(self, system):
        """Return the text a system's clustering records compare."""
        if system == TRUE_LABELS:
            return {"labels": "the true speaker labels"}
        entry = self.system_entry(system)
        if "options" in entry:
            return {f"system.{k}": json.dumps(v, default=str) for k, v in entry["options"].items()}
        return {f"system.{k}": v for k, v in self.recipe.settings(f"systems.{system}").items()}

    def record(self, stage, round_index=1, system=None):
        """Return the record of a stage (of one round and system where it applies).

        Arguments
        ---------
        stage : str
            ``prepare``, ``encoder``, ``extract``, ``cluster``, ``train`` or ``verify``.
        round_index : int
            The round (encoder: round 1 only).
        system : str, optional
            The system (cluster, train, verify).

        Returns
        -------
        StageRecord
            The record as this run would write it.
        """
        layout = self.layout
        if stage == "prepare":
            return StageRecord(layout.data, "prepare", self.prepare_options())
        if stage == "encoder":
            inputs = [self.record("prepare")]
            return StageRecord(layout.encoder, "encoder", self.options("encoder"), inputs)
        if stage == "extract":
            source = (
                self.record("encoder")
                if round_index == 1
                else self.record("train", round_index - 1, self.hparams["main_system"])
            )
            inputs = [self.record("prepare"), source]
            name = f"extract round{round_index}"
            folder = layout.embeddings(round_index)
            return StageRecord(folder, name, self.options("extract"), inputs)
        if stage == "cluster":
            source = self.system_option(system, "labels_from", None)
            inputs = [self.record("extract", round_index)]
            if source is not None:
                inputs.append(self.record("cluster", round_index, source))
            options = {**self.options("cluster"), **self.system_options(system)}
            folder = layout.system(round_index, system)
            return StageRecord(folder, f"cluster {system} round{round_index}", options, inputs)
        if stage == "train":
            inputs = [self.record("prepare"), self.record("cluster", round_index, system)]
            if self.stage("train").keywords.get("init_from_stage1"):
                inputs.append(self.record("encoder"))
            options = self.options("train")
            overrides = self.speaker_overrides(system)
            options.update({f"system.{k}": json.dumps(v) for k, v in overrides.items()})
            folder = layout.speaker(round_index, system)
            return StageRecord(folder, f"train {system} round{round_index}", options, inputs)
        if stage == "verify":
            if system == STAGE1:
                inputs = [self.record("extract", round_index)]
            else:
                inputs = [self.record("prepare"), self.record("train", round_index, system)]
            folder = layout.verification(round_index, system)
            options = self.options("verify")
            return StageRecord(folder, f"verify {system} round{round_index}", options, inputs)
        raise ValueError(f"no record for stage {stage!r}")

    def prepare_options(self):
        """Return the preparation's options, with the digest of the corpus it prepared."""
        options = self.options("prepare")
        preparation = self.layout.preparation_record
        if preparation.exists():
            options["corpus"] = hashlib.sha256(preparation.read_bytes()).hexdigest()
        return options

    def once(self, record, work, on_main=True):
        """Run ``work()`` unless the record is current; a stale record's folder is set aside.

        Arguments
        ---------
        record : StageRecord
            The stage's record.
        work : callable
            Writes the stage's outputs into the record's folder.
        on_main : bool
            Run on the main process only (the others wait); False for training,
            which runs on every process of a distributed run.

        Returns
        -------
        bool
            Whether the work ran.
        """
        state, changed = record.state()
        if state == "current":
            logger.info("%s: already done in %s, skipping", record.name, record.folder)
            return False
        if state == "stale" and sb.utils.distributed.if_main_process():
            record.set_aside(changed)
        sb.utils.distributed.ddp_barrier()

        def timed():
            """Run the work and write the record with its wall time."""
            record.folder.mkdir(parents=True, exist_ok=True)
            start = time.time()
            work()
            if sb.utils.distributed.if_main_process():
                record.finish(time.time() - start)

        if on_main:
            run_on_main(timed)
        else:
            timed()
        return True


class _GivenSystems(dict):
    """Systems given by a study instead of the recipe's (kept across reloads)."""
