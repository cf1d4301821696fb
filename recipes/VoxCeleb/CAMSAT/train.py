#!/usr/bin/env python3
"""CAMSAT recipe: speaker verification trained without speaker labels.

The chain (every stage reads and writes files, is skipped when its outputs exist
and resumes from its checkpoint after a crash):

    prepare  -> manifests of the corpus (MiniVox is generated when no data_folder is set)
                and the offline augmentation sets
    encoder  -> stage-1 encoder (self-supervised ECAPA, i-vector or a local pretrained model)
    extract  -> embeddings of every training utterance plus augmented views
    cluster  -> pseudo-labels of every system (CAMSAT and the reference systems)
    train    -> a speaker network per system, trained on its pseudo-labels
    verify   -> EER and minDCF of every system on the trial list
    report   -> results table (markdown, CSV, JSON) and plots

With ``rounds > 1`` the network trained in one round is the encoder of the next.

To run the whole chain on MiniVox::

    python train.py hparams/camsat.yaml

A range of stages::

    python train.py hparams/camsat.yaml --first_stage=cluster --last_stage=verify

Several seeds of the random stages (cluster -> train -> verify) on the same stage-1
encoder; the report gives their mean and standard deviation::

    python train.py hparams/camsat.yaml --seeds=[1234,1235,1236]

Scoring protocol (the same for every row): cosine scores after subtracting the mean
embedding of the *training* utterances, embedded by the network that embeds the test
utterances; with ``score_norm: as-norm`` the cohort is those training embeddings.
No statistic of a test utterance enters any score. Each system's folder gets an
``inference/`` model that SpeechBrain's interface loads and that scores as the recipe.

On several processes (training stages run on all of them, the rest on the main one)::

    torchrun --nproc_per_node=2 train.py hparams/camsat.yaml --distributed_backend=gloo

Authors
 * camsat contributors 2026
"""

import copy
import csv
import io
import itertools
import json
import logging
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import speechbrain as sb
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml
from ruamel.yaml import YAML
from speechbrain.utils.distributed import run_on_main

from camsat_lobes import report as reporting
from camsat_lobes.augment_sets import build_augmentation_sets
from camsat_lobes.bootstrap import bootstrap_intervals
from camsat_lobes.clustering import clustering_metrics, write_pseudo_labels
from camsat_lobes.extract import extract_embeddings, normalize_embeddings
from camsat_lobes.files import write_text
from camsat_lobes.inference import export_model
from camsat_lobes.minivox import MiniVoxConfig, default_root, generate_minivox
from camsat_lobes.prepare import preparation_differences, prepare_voxceleb
from camsat_lobes.scoring import CosineBackend
from camsat_lobes.seeding import derive_seed, seed_part
from camsat_lobes.speaker_training import SpeakerBrain, pseudo_label_datasets
from camsat_lobes.verification import compute_eer, compute_min_dcf, eer_threshold

logger = logging.getLogger(__name__)

STAGES = ("prepare", "encoder", "extract", "cluster", "train", "verify", "report")
STAGE1 = "stage1"  # the system that scores the stage-1 embeddings directly
TRUE_LABELS = "true_labels"
# What the cluster stage leaves in a system's folder (copied for ``labels_from``).
CLUSTERING_FILES = (
    "pseudo_labels.csv",
    "clustering_metrics.json",
    "history.json",
    "collapsed.json",
)
TRIAL_LISTS = {"voxceleb": "trials.csv", "all_pairs": "trials_all_pairs.csv"}
# Beside the stage-1 encoder: the filter banks it was trained on (resolved YAML).
FRONT_END_RECORD = "front_end.yaml"
# Where, in the resolved hyperparameters, the modules of an exported model are built.
EXPORTED_NODES = {
    STAGE1: {
        "compute_features": "encoder.compute_features",
        "mean_var_norm": "encoder.mean_var_norm",
        "embedding_model": "encoder.network.embedding_model",
    },
    "speaker": {
        "compute_features": "compute_features",
        "mean_var_norm": "mean_var_norm",
        "embedding_model": "speaker_network.embedding_model",
    },
}


def read_csv_column(path, column):
    """Read one column of a CSV manifest, in file order."""
    with open(path, newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


def read_trial_list(data_folder, name):
    """Read a prepared trial list (a key of ``TRIAL_LISTS``) as ``(label, enrol, test)`` rows."""
    with open(Path(data_folder) / TRIAL_LISTS[name], newline="") as f:
        return [(int(row["label"]), row["enrol_id"], row["test_id"]) for row in csv.DictReader(f)]


def write_all_pairs(data_folder):
    """Write the ``all_pairs`` trial list (every pair of test utterances) unless it exists."""
    all_pairs = Path(data_folder) / TRIAL_LISTS["all_pairs"]
    if not all_pairs.exists():
        ids = read_csv_column(Path(data_folder) / "test.csv", "ID")
        speakers = read_csv_column(Path(data_folder) / "test.csv", "spk_id")
        rows = [
            f"{int(speakers[a] == speakers[b])},{ids[a]},{ids[b]}\n"
            for a, b in itertools.combinations(range(len(ids)), 2)
        ]
        write_text(all_pairs, "label,enrol_id,test_id\n" + "".join(rows))


def trial_speakers(data_folder, trials):
    """Labels, enrolment speakers and test speakers of trials, from ``test.csv``."""
    test_csv = Path(data_folder) / "test.csv"
    speaker_of = dict(zip(read_csv_column(test_csv, "ID"), read_csv_column(test_csv, "spk_id")))
    return (
        np.array([label for label, _, _ in trials]),
        [speaker_of[e] for _, e, _ in trials],
        [speaker_of[t] for _, _, t in trials],
    )


class Chain:
    """The stages of the recipe over one output folder, for one seed.

    Arguments
    ---------
    hparams : dict
        The loaded hyperparameters.
    run_opts : dict
        SpeechBrain run options.
    main_seed : int, optional
        The seed whose run owns the shared stages (preparation, stage-1 encoder and
        its embeddings); another seed keeps its clusterings and networks under
        ``<output_folder>/seed<seed>/``. Default: this chain's own seed.
    skip_collapsed : bool
        Whether a clustering that kept too few clusters is set aside (``collapsed.json``
        in its folder; no network is trained on it), as a study of many pseudo-label
        sets wants, instead of stopping the run.
    """

    def __init__(self, hparams, run_opts, main_seed=None, skip_collapsed=False):
        hparams["systems"] = hparams["systems"] or {}  # null: evaluate stage 1 alone
        self.hparams = hparams
        self.run_opts = run_opts
        self.out = Path(hparams["output_folder"])
        self.data = Path(hparams["save_folder"]) / "data"
        self.is_main = main_seed is None or main_seed == hparams["seed"]
        self.seed_out = self.out if self.is_main else self.out / f"seed{hparams['seed']}"
        self.stage1_ready = False  # the stage-1 encoder is trained or loaded
        self.skip_collapsed = skip_collapsed
        # The resolved hyperparameters (exported models rebuild their modules from them).
        self.resolved_hparams_file = self.out / "hyperparams.yaml"

    # ------------------------------------------------------------------ helpers
    def once(self, folder, name, work):
        """Run ``work()`` unless ``folder/done.json`` exists; record its wall time there.

        Returns True when the work ran, False when it was already done.
        """
        folder = Path(folder)
        marker = folder / "done.json"
        if marker.exists():
            logger.info("%s: already done in %s, skipping", name, folder)
            return False
        folder.mkdir(parents=True, exist_ok=True)
        start = time.time()
        work()
        if sb.utils.distributed.if_main_process():
            marker.write_text(json.dumps({"stage": name, "seconds": time.time() - start}))
        return True

    def on_main(self, folder, name, work):
        """Like :meth:`once`, on the main process only (the others wait)."""
        run_on_main(self.once, args=[folder, name, work])

    def round_folder(self, round_index):
        """Output folder of one round of this seed (``round1``, ``round2``, and so on)."""
        return self.seed_out / f"round{round_index}"

    def embeddings_folder(self, round_index):
        """Embeddings of a round: round 1's (the stage-1 encoder's) are shared by all seeds."""
        owner = self.out if round_index == 1 else self.seed_out
        return owner / f"round{round_index}" / "embeddings"

    def systems(self):
        """Names of the labelled systems: the clusterings, then the true-label reference."""
        names = list(self.hparams["systems"])
        if self.hparams["true_labels_reference"]:
            names.append(TRUE_LABELS)
        return names

    def trained_systems(self, round_index):
        """Return the labelled systems of a round whose clustering was not set aside."""
        folder = self.round_folder(round_index) / "systems"
        return [s for s in self.systems() if not (folder / s / "collapsed.json").exists()]

    def scored_systems(self, round_index):
        """Systems scored in a round: the round's input embeddings, then every network.

        Round 1's input embeddings are the stage-1 encoder's, the same for every seed,
        so only the main seed scores them.
        """
        scored = self.trained_systems(round_index)
        return scored if round_index == 1 and not self.is_main else [STAGE1, *scored]

    def system_option(self, system, key, default):
        """Return a system's own ``key`` (e.g. ``embedding_norm``), else ``default``."""
        return self.hparams["systems"].get(system, {}).get(key, default)

    # ------------------------------------------------------------------ stages
    def prepare(self):
        """Write the manifests (generating MiniVox first when no data folder is set).

        A finished preparation is reused only while the corpus and the options are
        those it was made from; otherwise it is made again, or, when later stages
        already used it, the run stops and says so.
        """
        data_folder, preset = self.hparams["data_folder"], self.hparams["minivox_preset"]
        if data_folder is None and preset is None:
            raise ValueError(
                "no data: set --data_folder=/path/to/voxceleb (a VoxCeleb-layout folder of "
                "wav files with trials.txt), or --minivox_preset=default for MiniVox"
            )
        config = MiniVoxConfig.preset(preset) if data_folder is None else None
        if config is not None:
            data_folder = self.hparams["minivox_root"] or default_root(config)
        options = {
            "seg_duration": self.hparams["seg_duration"],
            "min_duration": self.hparams["min_duration"],
            "development_speakers": self.hparams["development_speakers"],
        }

        def work():
            """Generate MiniVox if needed, write the manifests and the augmentation sets."""
            if config is not None:
                generate_minivox(config, root=data_folder)
            paths = prepare_voxceleb(data_folder, self.data, **options)
            babble = read_csv_column(paths["train_utts_csv"], "wav")
            build_augmentation_sets(
                self.data / "augmentation", babble_sources=babble, seed=self.hparams["seed"]
            )

        if sb.utils.distributed.if_main_process():
            self.check_preparation(data_folder, options)
        self.on_main(self.data, "prepare", work)

    def check_preparation(self, data_folder, options):
        """Forget a preparation that no longer matches the corpus, unless later stages used it."""
        marker = self.data / "done.json"
        if not marker.exists():
            return
        changes = preparation_differences(data_folder, self.data, **options)
        if not changes:
            return
        used_by = sorted(str(p.parent) for p in self.out.glob("round*/**/done.json"))
        if used_by:
            raise RuntimeError(
                f"The corpus or the preparation options changed since {self.out} was prepared "
                f"({'; '.join(changes)}), and later stages already used that preparation "
                f"(e.g. {used_by[0]}). Run into a new --output_folder, or delete {self.out} "
                "to start again."
            )
        logger.warning("Preparing %s again: %s", self.data, "; ".join(changes))
        marker.unlink()

    def augmentation_sets(self):
        """Paths of the offline noise, impulse-response and babble CSVs."""
        folder = self.data / "augmentation"
        names = {"noise_csv": "noise.csv", "rir_csv": "rirs.csv", "babble_csv": "babble.csv"}
        return {key: str(folder / name) for key, name in names.items()}

    def reuse_stage1(self):
        """Copy the stage-1 encoder and its embeddings from ``reuse_stage1_from``, if set.

        Lets runs that differ only after stage 1 (e.g. speaker-training regimes) share
        one stage-1 training. Only folders this run does not have yet are copied, and
        only from a run prepared from the same corpus with the same options.
        """
        source = self.hparams["reuse_stage1_from"]
        if not source or not sb.utils.distributed.if_main_process():
            return
        source = Path(source)
        record = "save/data/preparation.json"
        if (source / record).read_text() != (self.out / record).read_text():
            raise ValueError(
                f"reuse_stage1_from={source} was prepared from another corpus or with other "
                f"options than {self.out} (their {record} differ); a stage 1 can only be "
                "reused on the same data"
            )
        for part in ("round1/encoder", "round1/embeddings"):
            if not (source / part / "done.json").exists():
                raise FileNotFoundError(
                    f"reuse_stage1_from={source} has no finished {part}; run its stage 1 first"
                )
            if not (self.out / part / "done.json").exists():
                logger.info("Reusing %s from %s", part, source)
                shutil.rmtree(self.out / part, ignore_errors=True)
                shutil.copytree(source / part, self.out / part)

    def encoder(self, round_index):
        """Return the encoder of a round: stage 1 first, then the previous round's network."""
        if round_index == 1:
            encoder = self.hparams["encoder"]["encoder"]
            if self.stage1_ready:
                return encoder
            folder = self.out / "round1" / "encoder"
            fit = lambda: encoder.fit(  # noqa: E731
                self.data / "train_utts.csv",
                folder,
                augmentation_sets=self.augmentation_sets(),
                run_opts=self.run_opts,
            )
            if not self.once(folder, "encoder", fit):
                fit()  # a finished training: fit only loads it
            elif (front_end := self.stage1_front_end()) and sb.utils.distributed.if_main_process():
                write_text(folder / FRONT_END_RECORD, front_end)
            self.stage1_ready = True
            return encoder
        return self.speaker_brain(round_index - 1, self.hparams["main_system"], load=True)

    def stage1_front_end(self):
        """Return the resolved YAML of the stage-1 filter banks (None without filter banks)."""
        try:
            return self.exported_nodes(STAGE1)["compute_features"]
        except (KeyError, TypeError):
            return None

    def check_front_end(self):
        """Stop if the finished stage-1 encoder was trained on other filter banks.

        A stage 1 resumed or reused (``reuse_stage1_from``) under other filter-bank
        settings (e.g. ``feature_hop_ms``) would embed every utterance wrongly without
        any error, so the settings it was trained on are kept beside it
        (:data:`FRONT_END_RECORD`) and compared with this run's. Encoders without
        filter banks (i-vectors) are not checked.
        """
        folder = self.out / "round1" / "encoder"
        current = self.stage1_front_end()
        if current is None or not (folder / "done.json").exists():
            return
        record = folder / FRONT_END_RECORD
        if not record.exists():
            logger.warning(
                "%s has no %s (trained before it was recorded): cannot check that it was "
                "trained on the filter banks this run computes",
                folder,
                FRONT_END_RECORD,
            )
        elif record.read_text() != current:
            raise ValueError(
                f"The stage-1 encoder in {folder} was trained on other filter banks than "
                f"this run computes:\n{record.read_text()}against\n{current}Run with the "
                "settings it was trained with (e.g. --feature_hop_ms), or into a new "
                "--output_folder."
            )

    def extracted(self, round_index):
        """Whether the embeddings of a round are complete."""
        return (self.embeddings_folder(round_index) / "done.json").exists()

    def extract(self, round_index, encoder):
        """Embed the training utterances (clean and augmented views) and the test ones."""
        folder = self.embeddings_folder(round_index)
        augmenter = self.hparams["view_augment"](self.augmentation_sets())

        def work():
            """Embed the training utterances with their views, then the test utterances."""
            extract_embeddings(
                encoder,
                self.data / "train_utts.csv",
                folder / "train",
                n_views=self.hparams["n_views"],
                augmenter=augmenter,
                batch_size=self.hparams["extract_batch_size"],
            )
            extract_embeddings(
                encoder,
                self.data / "test.csv",
                folder / "test",
                n_views=0,
                batch_size=self.hparams["extract_batch_size"],
            )

        self.on_main(folder, "extract", work)

    def cluster(self, round_index):
        """Cluster the embeddings with every system and score the pseudo-labels."""
        embeddings = self.embeddings_folder(round_index) / "train"
        ids = (embeddings / "ids.txt").read_text().split()
        speakers = dict(
            zip(
                read_csv_column(self.data / "train_utts.csv", "ID"),
                read_csv_column(self.data / "train_utts.csv", "spk_id"),
            )
        )
        true_labels = np.unique([speakers[i] for i in ids], return_inverse=True)[1]
        raw_x = np.load(embeddings / "embeddings.npy")
        raw_views = np.load(embeddings / "views.npy")

        for system in self.systems():
            folder = self.round_folder(round_index) / "systems" / system

            def work(system=system, folder=folder):
                """Cluster with one system, then save its pseudo-labels and metrics."""
                source = self.system_option(system, "labels_from", None)
                if source is not None:  # the same pseudo-labels, another training setup
                    self.copy_clustering(folder.parent / source, folder)
                    return
                norm = self.system_option(system, "embedding_norm", self.hparams["embedding_norm"])
                x = normalize_embeddings(raw_x, norm)
                views = None
                if raw_views.shape[1]:
                    views = normalize_embeddings(raw_views, norm, reference=raw_x)
                if system == TRUE_LABELS:
                    labels, history, k_initial = true_labels, [], int(true_labels.max() + 1)
                else:
                    clusterer = self.hparams["systems"][system]["clusterer"]
                    result = clusterer.fit(x, views=views, true_labels=true_labels)
                    labels, history = result.labels, result.history
                    k_initial = clusterer.n_clusters
                labels = np.unique(labels, return_inverse=True)[1]  # contiguous class indices
                problem = self.collapse(system, int(labels.max()) + 1)
                if problem and not self.skip_collapsed:
                    raise RuntimeError(problem)
                if problem:
                    logger.warning("%s Set aside: no network is trained on it.", problem)
                    write_text(folder / "collapsed.json", json.dumps({"problem": problem}))
                    return
                write_pseudo_labels(folder / "pseudo_labels.csv", ids, labels)
                metrics = clustering_metrics(labels, true_labels, embeddings=x)
                metrics["k_initial"] = k_initial
                (folder / "clustering_metrics.json").write_text(json.dumps(metrics, indent=2))
                (folder / "history.json").write_text(json.dumps(history, indent=2))

            self.on_main(folder, f"cluster {system}", work)

    @staticmethod
    def copy_clustering(source, folder):
        """Give a system the pseudo-labels (and metrics) of an already clustered one."""
        if not (source / "done.json").exists():
            raise RuntimeError(
                f"{folder.name!r} takes its labels from {source.name!r} (labels_from), which "
                "is not clustered yet: list it before the systems that share its labels."
            )
        for name in CLUSTERING_FILES:
            if (source / name).exists():
                shutil.copy2(source / name, folder / name)

    def collapse(self, system, n_found):
        """Say why a clustering kept too few clusters to train on (None when it is fine)."""
        expected = self.hparams["n_speakers"]
        needed = max(2, int(np.ceil(self.hparams["min_cluster_fraction"] * expected)))
        if n_found < needed:
            return (
                f"system {system!r} kept {n_found} cluster(s), fewer than {needed} "
                f"(min_cluster_fraction={self.hparams['min_cluster_fraction']} of the "
                f"{expected} expected speakers): its pseudo-labels cannot train a speaker "
                "network. Raise the weight of the marginal entropy (camsat_mu, the system's "
                "`mu`) or the initial number of clusters (n_clusters), then run again; the "
                "finished stages are kept."
            )
        return None

    def speaker_brain(self, round_index, system, load=False, n_classes=None):
        """Build the speaker network of one system, with its own checkpoint folder."""
        hp = self.hparams
        folder = self.round_folder(round_index) / "systems" / system / "speaker"
        if n_classes is None:
            labels = read_csv_column(folder.parent / "pseudo_labels.csv", "cluster")
            n_classes = max(int(c) for c in labels) + 1
        # Each network draws from its own stream (its loss's initial weights, its data
        # order, crops and augmentations), whatever ran before it in this process.
        seed = derive_seed(hp["seed"], "speaker", system, round_index)
        seed_part(seed)
        # Every system trains (and checkpoints) its own copy of the yaml's modules.
        modules = {name: copy.deepcopy(module) for name, module in hp["modules"].items()}
        speaker_loss = self.system_option(system, "speaker_loss", hp["speaker_loss"])
        modules["speaker_loss"] = speaker_loss["speaker_loss"](
            embedding_dim=hp["speaker_network"]["emb_dim"], n_classes=n_classes
        )
        if hp["init_from_stage1"] and not load:
            self.start_from_stage1(modules["embedding_model"])
        # The true-label network has its own epochs (label noise favours shorter training);
        # a system may set its own epochs and mixup (studies comparing training setups).
        epochs = hp["true_labels_epochs"] if system == TRUE_LABELS else hp["speaker_epochs"]
        epochs = self.system_option(system, "speaker_epochs", epochs)
        counter = hp["epoch_counter"](limit=epochs)
        checkpointer = hp["checkpointer"](folder, recoverables={**modules, "counter": counter})
        brain = SpeakerBrain(
            modules=modules,
            opt_class=hp["opt_class"],
            hparams={
                "train_crop_seconds": hp["train_crop_seconds"],
                "wav_augment": hp["train_augment"](self.augmentation_sets()),
                "mixup": self.system_option(system, "speaker_mixup", hp["mixup"]),
                "lr_annealing": hp["lr_annealing"](epoch_count=epochs),
                "train_logger": hp["train_logger"](folder / "train_log.txt"),
                "seed": seed,
            },
            run_opts=self.run_opts,
            checkpointer=checkpointer,
        )
        brain.epoch_counter = counter
        if load:
            checkpointer.recover_if_possible(min_key="loss")
        return brain

    def start_from_stage1(self, network):
        """Copy the stage-1 encoder's weights into ``network`` when both have the same shape.

        A checkpoint of the speaker-training stage, when one exists, overrides them.
        """
        source = getattr(self.encoder(1), "embedding_model", None)
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

    def train(self, round_index):
        """Train a speaker network on the pseudo-labels of every system."""
        for system in self.trained_systems(round_index):
            folder = self.round_folder(round_index) / "systems" / system / "speaker"

            def work(system=system, folder=folder):
                """Train one system's speaker network on its pseudo-labels."""
                train_data, valid_data, n_classes = pseudo_label_datasets(
                    self.data / "train.csv",
                    folder.parent / "pseudo_labels.csv",
                    valid_fraction=self.hparams["valid_fraction"],
                    seed=self.hparams["seed"],
                )
                brain = self.speaker_brain(round_index, system, n_classes=n_classes)
                if brain.checkpointer.find_checkpoint() is not None:
                    logger.info("%s: resuming from its last checkpoint", system)
                elif self.hparams["imprint_class_weights"]:
                    n_imprinted = brain.imprint_class_weights(train_data)
                    logger.info("%s: imprinted %d class weights", system, n_imprinted)
                brain.fit(
                    brain.epoch_counter,
                    train_data,
                    valid_data,
                    train_loader_kwargs=self.hparams["dataloader_options"],
                    valid_loader_kwargs=self.hparams["dataloader_options"],
                )

            self.once(folder, f"train {system}", work)

    # ------------------------------------------------------------------ verification
    def trial_lists(self):
        """Return the trial lists to score, name -> rows ``(label, enrol_id, test_id)``.

        ``voxceleb`` is the corpus's own list; with ``full_trials`` every pair of test
        utterances is scored as well (``all_pairs``: all targets and all non-targets),
        derived from the speakers of the test manifest.
        """
        if self.hparams["full_trials"]:
            write_all_pairs(self.data)
        names = ["voxceleb", "all_pairs"] if self.hparams["full_trials"] else ["voxceleb"]
        return {name: read_trial_list(self.data, name) for name in names}

    def system_embeddings(self, round_index, system, folder):
        """Training and test embeddings of a system, by the network that scores it.

        Returns the two extraction folders and the modules of an exported model
        (``None`` when the network cannot be exported, e.g. an i-vector stage 1).
        """
        if system == STAGE1:
            source = self.embeddings_folder(round_index)
            encoder = self.encoder(round_index) if round_index == 1 else None
            modules = None
            if round_index == 1 and hasattr(encoder, "inference_model"):
                modules = {
                    "compute_features": encoder.compute_features,
                    "mean_var_norm": encoder.mean_var_norm,
                    "embedding_model": encoder.inference_model,
                }
            return source / "train", source / "test", modules
        brain = self.speaker_brain(round_index, system, load=True)
        for manifest, name in (
            ("train_utts.csv", "train_embeddings"),
            ("test.csv", "test_embeddings"),
        ):
            extract_embeddings(
                brain,
                self.data / manifest,
                folder / name,
                n_views=0,
                batch_size=self.hparams["extract_batch_size"],
            )
        modules = {
            k: brain.modules[k] for k in ("compute_features", "mean_var_norm", "embedding_model")
        }
        return folder / "train_embeddings", folder / "test_embeddings", modules

    def verify(self, round_index):
        """Score every trial list with the stage-1 embeddings and every system's network."""
        root = self.round_folder(round_index)
        trial_lists = self.trial_lists()
        for system in self.scored_systems(round_index):
            folder = root / "systems" / system

            def work(system=system, folder=folder):
                """Score every trial list with one system and export its model."""
                train_folder, test_folder, modules = self.system_embeddings(
                    round_index, system, folder
                )
                backend = CosineBackend.from_training(
                    np.load(train_folder / "embeddings.npy"),
                    score_norm=self.hparams["score_norm"],
                    top_k=self.hparams["cohort_top_k"],
                )
                test_ids = (test_folder / "ids.txt").read_text().split()
                test_embeddings = np.load(test_folder / "embeddings.npy")
                result = {"protocol": self.protocol()}
                for name, trials in trial_lists.items():
                    scores = backend.score_trials(
                        test_embeddings, test_ids, [(e, t) for _, e, t in trials]
                    )
                    labels = np.array([label for label, _, _ in trials])
                    np.savetxt(folder / f"scores_{name}.txt", scores, fmt="%.7f")
                    result[name] = {
                        "EER": 100 * compute_eer(scores, labels),
                        "minDCF": compute_min_dcf(
                            scores, labels, p_target=self.hparams["p_target"]
                        ),
                        "threshold": eer_threshold(scores, labels),
                        "trials": len(labels),
                        "target_trials": int(labels.sum()),
                    }
                result.update(EER=result["voxceleb"]["EER"], minDCF=result["voxceleb"]["minDCF"])
                if modules is not None:
                    export_model(
                        folder / "inference",
                        self.exported_nodes(STAGE1 if system == STAGE1 else "speaker"),
                        modules,
                        backend,
                        threshold=result["voxceleb"]["threshold"],
                    )
                (folder / "verification.json").write_text(json.dumps(result, indent=2))

            self.on_main(folder / "verify", f"verify {system}", work)
        run_on_main(self.intervals, args=[round_index, trial_lists])

    def protocol(self):
        """One line stating how every score of the run is computed."""
        norm = self.hparams["score_norm"]
        text = (
            "cosine after subtracting the mean embedding of the training utterances, "
            "embedded by the network that embeds the test utterances"
        )
        if norm == "as-norm":
            text += (
                f"; adaptive s-norm (top {self.hparams['cohort_top_k']}) with those training "
                "embeddings as the cohort"
            )
        return text + "; no statistic of the test utterances enters a score"

    def exported_nodes(self, kind):
        """Return the resolved YAML of the modules of an exported model (see EXPORTED_NODES)."""
        resolved = YAML().load(self.resolved_hparams_file.read_text())
        nodes = {}
        for name, path in EXPORTED_NODES[kind].items():
            node = resolved
            for key in path.split("."):
                node = node[key]
            stream = io.StringIO()
            YAML().dump({name: node}, stream)
            nodes[name] = stream.getvalue()
        return nodes

    def intervals(self, round_index, trial_lists):
        """Bootstrap intervals over test speakers, paired across the systems of a round."""
        root = self.round_folder(round_index)
        systems = [
            s
            for s in self.scored_systems(round_index)
            if (root / "systems" / s / "verify" / "done.json").exists()
        ]
        if round_index == 1 and not self.is_main:
            systems = [STAGE1, *systems]  # the main seed's stage-1 scores are this seed's too
        results = {}
        for name, trials in trial_lists.items():
            reference = self.hparams["main_system"]
            results[name] = self.paired_bootstrap(
                round_index,
                systems,
                name,
                trials,
                reference=reference if reference in systems else None,
                also_paired_with=[STAGE1],  # what the labels added to stage 1
            )
        (root / "intervals.json").write_text(json.dumps(results, indent=2))

    def paired_bootstrap(self, round_index, systems, list_name, trials, **pairing):
        """Bootstrap the saved scores of ``systems`` on one trial list over the test speakers.

        ``pairing`` (``reference``, ``also_paired_with``) goes to ``bootstrap_intervals``.
        """
        return bootstrap_intervals(
            self.saved_scores(round_index, systems, list_name),
            *self.trial_speakers(trials),
            n_resamples=self.hparams["n_resamples"],
            p_target=self.hparams["p_target"],
            seed=self.hparams["seed"],
            **pairing,
        )

    def saved_scores(self, round_index, systems, list_name):
        """System name -> its saved scores on one trial list."""
        return {
            s: np.loadtxt(self.scores_folder(round_index, s) / f"scores_{list_name}.txt")
            for s in systems
        }

    def trial_speakers(self, trials):
        """Labels, enrolment speakers and test speakers of ``(label, enrol, test)`` trials."""
        return trial_speakers(self.data, trials)

    def scores_folder(self, round_index, system):
        """Folder holding a system's scores (round 1's stage-1 scores live with the main seed)."""
        if system == STAGE1 and round_index == 1:
            return self.out / "round1" / "systems" / STAGE1
        return self.round_folder(round_index) / "systems" / system

    def report(self):
        """Write the results table, the JSON report and the plots."""

        def work():
            """Write the report."""
            reporting.write_report(self.out, self.out / "report")

        self.on_main(self.out / "report", "report", work)


def run(chain, first_stage, last_stage):
    """Run the stages from ``first_stage`` to ``last_stage`` (but the report) for every round."""
    selected = STAGES[STAGES.index(first_stage) : STAGES.index(last_stage) + 1]
    if "prepare" in selected:
        chain.prepare()
    run_on_main(chain.reuse_stage1)
    chain.check_front_end()
    for round_index in range(1, chain.hparams["rounds"] + 1):
        if "encoder" in selected:
            chain.encoder(round_index)
        if "extract" in selected and not chain.extracted(round_index):
            chain.extract(round_index, chain.encoder(round_index))
        for stage in ("cluster", "train", "verify"):
            if stage in selected:
                getattr(chain, stage)(round_index)


def report(chain):
    """Write a fresh report: it only reads what the stages wrote."""
    shutil.rmtree(chain.out / "report", ignore_errors=True)
    chain.report()


def load_hparams(hparams_file, overrides=None):
    """Load the recipe's hyperparameters.

    Arguments
    ---------
    hparams_file : str or path
        A recipe yaml.
    overrides : str or dict, optional
        Overrides in YAML (as ``sb.parse_arguments`` returns them) or a dict.

    Returns
    -------
    dict
        The loaded hyperparameters.
    """
    with open(hparams_file) as fin:
        return load_hyperpyyaml(fin, overrides)


def seed_hparams(hparams_file, overrides, seed, output_folder):
    """Hyperparameters of one more seed: its own seed, the main run's output folder."""
    overrides = yaml.safe_load(overrides or "") or {}
    overrides.update(seed=seed, seeds=None, output_folder=output_folder)
    return load_hparams(hparams_file, overrides)


def recipe_keys_help(hparams_file):
    """List the top-level keys of a recipe yaml with their comments, for ``--help``.

    A key's help is its end-of-line comment, else the comment block just above it.

    Arguments
    ---------
    hparams_file : str or path
        The recipe yaml.

    Returns
    -------
    str
        One ``--key=value  comment`` line per key (keys starting with ``__`` are left out).

    Example
    -------
    >>> print(recipe_keys_help("hparams/camsat.yaml").splitlines()[0])
    Recipe keys of hparams/camsat.yaml (override any of them as --key=value):
    """
    lines = [f"Recipe keys of {hparams_file} (override any of them as --key=value):"]
    above = []
    for line in Path(hparams_file).read_text().splitlines():
        if line.startswith("#"):
            above.append(line.lstrip("# ").strip())
            continue
        match = re.match(r"^([A-Za-z_]\w*):\s*([^#]*?)\s*(?:#\s*(.*))?$", line)
        if match and not match[1].startswith("__"):
            key, value, comment = match[1], match[2] or "...", match[3]
            text = comment or " ".join(part for part in above if part)
            lines.append(f"  --{key}={value}".ljust(42) + f"  {text}".rstrip())
        if not line.startswith(" "):
            above = []
    return "\n".join(lines)


def main(argv):
    """Parse the command line, load the hyperparameters and run the chain for every seed."""
    if {"-h", "--help"} & set(argv):
        yaml_files = [arg for arg in argv if arg.endswith(".yaml")]
        print(recipe_keys_help(yaml_files[0] if yaml_files else "hparams/camsat.yaml"), "\n")
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    hparams = load_hparams(hparams_file, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    torch.set_num_threads(hparams["num_threads"])
    first, last = hparams["first_stage"], hparams["last_stage"]
    for stage in (first, last):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: choose among {', '.join(STAGES)}")
    chain = Chain(hparams, run_opts)
    run(chain, first, last)
    for seed in hparams["seeds"] or []:
        if seed == hparams["seed"]:
            continue
        logger.info("seed %d: cluster -> train -> verify on the same stage-1 encoder", seed)
        extra = seed_hparams(hparams_file, overrides, seed, hparams["output_folder"])
        # Round 1's embeddings are shared; later rounds embed with this seed's networks.
        from_stage = max(first, "extract", key=STAGES.index)
        to_stage = min(last, "verify", key=STAGES.index)
        if STAGES.index(from_stage) <= STAGES.index(to_stage):
            run(Chain(extra, run_opts, main_seed=hparams["seed"]), from_stage, to_stage)
    if STAGES.index(last) == STAGES.index("report"):
        report(chain)


if __name__ == "__main__":
    main(sys.argv[1:])
