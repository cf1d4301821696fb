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

On several processes (training stages run on all of them, the rest on the main one)::

    torchrun --nproc_per_node=2 train.py hparams/camsat.yaml --distributed_backend=gloo
"""

import copy
import csv
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
from speechbrain.utils.distributed import run_on_main

from camsat_lobes import report as reporting
from camsat_lobes.augment_sets import build_augmentation_sets
from camsat_lobes.checkpoints import CompleteCheckpointer
from camsat_lobes.clustering import clustering_metrics, write_pseudo_labels
from camsat_lobes.extract import extract_embeddings, normalize_embeddings
from camsat_lobes.minivox import MiniVoxConfig, generate_minivox
from camsat_lobes.prepare import prepare_voxceleb
from camsat_lobes.speaker_training import SpeakerBrain, pseudo_label_datasets
from camsat_lobes.verification import (
    adaptive_snorm,
    compute_eer,
    compute_min_dcf,
    cosine_score,
)

logger = logging.getLogger(__name__)

STAGES = ("prepare", "encoder", "extract", "cluster", "train", "verify", "report")
STAGE1 = "stage1"  # the system that scores the stage-1 embeddings directly
TRUE_LABELS = "true_labels"


def read_csv_column(path, column):
    """Read one column of a CSV manifest, in file order."""
    with open(path, newline="") as f:
        return [row[column] for row in csv.DictReader(f)]


class Chain:
    """The stages of the recipe over one output folder."""

    def __init__(self, hparams, run_opts):
        self.hparams = hparams
        self.run_opts = run_opts
        self.out = Path(hparams["output_folder"])
        self.data = Path(hparams["save_folder"]) / "data"
        self.stage1_ready = False  # the stage-1 encoder is trained or loaded

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
        """Output folder of one round (``round1``, ``round2``...)."""
        return self.out / f"round{round_index}"

    def systems(self):
        """Names of the labelled systems: the clusterings, then the true-label reference."""
        names = list(self.hparams["systems"])
        if self.hparams["true_labels_reference"]:
            names.append(TRUE_LABELS)
        return names

    def system_option(self, system, key):
        """Return a system's own ``key`` (e.g. ``embedding_norm``), else the recipe's."""
        return self.hparams["systems"].get(system, {}).get(key, self.hparams[key])

    # ------------------------------------------------------------------ stages
    def prepare(self):
        """Write the manifests (generating MiniVox first when no data folder is set)."""

        def work():
            data_folder = self.hparams["data_folder"]
            if data_folder is None and self.hparams["minivox_preset"] is None:
                raise ValueError(
                    "no data: set --data_folder=/path/to/voxceleb (a VoxCeleb-layout folder of "
                    "wav files with trials.txt), or --minivox_preset=default for MiniVox"
                )
            if data_folder is None:
                preset = getattr(MiniVoxConfig, self.hparams["minivox_preset"])
                data_folder = generate_minivox(preset(), root=self.hparams["minivox_root"])
            paths = prepare_voxceleb(
                data_folder,
                self.data,
                seg_duration=self.hparams["seg_duration"],
                min_duration=self.hparams["min_duration"],
            )
            babble = read_csv_column(paths["train_utts_csv"], "wav")
            build_augmentation_sets(
                self.data / "augmentation", babble_sources=babble, seed=self.hparams["seed"]
            )

        self.on_main(self.data, "prepare", work)

    def augmentation_sets(self):
        """Paths of the offline noise, impulse-response and babble CSVs."""
        folder = self.data / "augmentation"
        names = {"noise_csv": "noise.csv", "rir_csv": "rirs.csv", "babble_csv": "babble.csv"}
        return {key: str(folder / name) for key, name in names.items()}

    def encoder(self, round_index):
        """Return the encoder of a round: stage 1 first, then the previous round's network."""
        if round_index == 1:
            encoder = self.hparams["encoder"]["encoder"]
            if self.stage1_ready:
                return encoder
            folder = self.round_folder(1) / "encoder"
            fit = lambda: encoder.fit(  # noqa: E731
                self.data / "train_utts.csv",
                folder,
                augmentation_sets=self.augmentation_sets(),
                run_opts=self.run_opts,
            )
            if not self.once(folder, "encoder", fit):
                fit()  # a finished training: fit only loads it
            self.stage1_ready = True
            return encoder
        return self.speaker_brain(round_index - 1, self.hparams["main_system"], load=True)

    def extract(self, round_index, encoder):
        """Embed the training utterances (clean and augmented views) and the test ones."""
        folder = self.round_folder(round_index) / "embeddings"
        augmenter = self.hparams["view_augment"](self.augmentation_sets())

        def work():
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
        embeddings = self.round_folder(round_index) / "embeddings" / "train"
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
                norm = self.system_option(system, "embedding_norm")
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
                write_pseudo_labels(folder / "pseudo_labels.csv", ids, labels)
                collapsed = labels.max() == 0
                if collapsed:
                    logger.warning("%s: the clustering collapsed into one cluster", system)
                metrics = clustering_metrics(
                    labels, true_labels, embeddings=None if collapsed else x
                )
                metrics["k_initial"] = k_initial
                (folder / "clustering_metrics.json").write_text(json.dumps(metrics, indent=2))
                (folder / "history.json").write_text(json.dumps(history, indent=2))

            self.on_main(folder, f"cluster {system}", work)

    def speaker_brain(self, round_index, system, load=False, n_classes=None):
        """Build the speaker network of one system, with its own checkpoint folder."""
        hp = self.hparams
        folder = self.round_folder(round_index) / "systems" / system / "speaker"
        if n_classes is None:
            labels = read_csv_column(folder.parent / "pseudo_labels.csv", "cluster")
            n_classes = max(int(c) for c in labels) + 1
        modules = {
            "compute_features": hp["compute_features"],
            "mean_var_norm": hp["mean_var_norm"],
            "embedding_model": copy.deepcopy(hp["speaker_network"]["embedding_model"]),
            "speaker_loss": self.system_option(system, "speaker_loss")["speaker_loss"](
                embedding_dim=hp["speaker_network"]["emb_dim"], n_classes=n_classes
            ),
        }
        if hp["init_from_stage1"] and not load:
            self.start_from_stage1(modules["embedding_model"])
        counter = hp["epoch_counter"]()
        checkpointer = CompleteCheckpointer(folder, recoverables={**modules, "counter": counter})
        brain = SpeakerBrain(
            modules=modules,
            opt_class=hp["opt_class"],
            hparams={
                "wav_augment": hp["train_augment"](self.augmentation_sets()),
                "mixup": hp["mixup"],
                "lr_annealing": hp["lr_annealing"](),
                "train_logger": sb.utils.train_logger.FileTrainLogger(folder / "train_log.txt"),
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
        for system in self.systems():
            folder = self.round_folder(round_index) / "systems" / system / "speaker"

            def work(system=system, folder=folder):
                train_data, valid_data, n_classes = pseudo_label_datasets(
                    self.data / "train.csv",
                    folder.parent / "pseudo_labels.csv",
                    valid_fraction=self.hparams["valid_fraction"],
                    seed=self.hparams["seed"],
                )
                brain = self.speaker_brain(round_index, system, n_classes=n_classes)
                brain.fit(
                    brain.epoch_counter,
                    train_data,
                    valid_data,
                    train_loader_kwargs=self.hparams["dataloader_options"],
                    valid_loader_kwargs=self.hparams["dataloader_options"],
                )

            self.once(folder, f"train {system}", work)

    def verify(self, round_index):
        """Score the trial list with the stage-1 embeddings and every system's network."""
        root = self.round_folder(round_index)
        trials = [line.split(",") for line in (self.data / "trials.csv").read_text().split()[1:]]
        train_emb = np.load(root / "embeddings" / "train" / "embeddings.npy")
        for system in [STAGE1, *self.systems()]:
            folder = root / "systems" / system

            def work(system=system, folder=folder):
                if system == STAGE1:
                    test_folder, cohort = root / "embeddings" / "test", train_emb
                else:
                    brain = self.speaker_brain(round_index, system, load=True)
                    test_folder = folder / "test_embeddings"
                    extract_embeddings(
                        brain,
                        self.data / "test.csv",
                        test_folder,
                        n_views=0,
                        batch_size=self.hparams["extract_batch_size"],
                    )
                    cohort = None
                result = self.score(test_folder, trials, cohort)
                (folder / "verification.json").write_text(json.dumps(result, indent=2))

            self.on_main(folder / "verify", f"verify {system}", work)

    def score(self, test_folder, trials, cohort=None):
        """EER and minDCF of the trials with cosine scoring (and AS-norm when asked)."""
        ids = (Path(test_folder) / "ids.txt").read_text().split()
        emb = np.load(Path(test_folder) / "embeddings.npy")
        index = {utt: i for i, utt in enumerate(ids)}
        labels = np.array([int(t[0]) for t in trials])
        enrol = emb[[index[t[1]] for t in trials]]
        test = emb[[index[t[2]] for t in trials]]
        mean = emb.mean(axis=0) if cohort is None else cohort.mean(axis=0)
        scores = cosine_score(enrol, test, mean=mean)
        if self.hparams["score_norm"] == "as-norm":
            cohort = emb if cohort is None else cohort
            scores = adaptive_snorm(scores, enrol, test, cohort, self.hparams["cohort_top_k"], mean)
        np.savetxt(Path(test_folder) / "scores.txt", scores)
        return {
            "EER": 100 * compute_eer(scores, labels),
            "minDCF": compute_min_dcf(scores, labels, p_target=self.hparams["p_target"]),
            "trials": len(labels),
        }

    def report(self):
        """Write the results table, the JSON report and the plots."""

        def work():
            reporting.write_report(self.out, self.out / "report")

        self.on_main(self.out / "report", "report", work)


def run(chain, first_stage, last_stage):
    """Run the stages from ``first_stage`` to ``last_stage`` for every round."""
    selected = STAGES[STAGES.index(first_stage) : STAGES.index(last_stage) + 1]
    if "prepare" in selected:
        chain.prepare()
    for round_index in range(1, chain.hparams["rounds"] + 1):
        encoder = None
        if "encoder" in selected or "extract" in selected:
            encoder = chain.encoder(round_index)
        if "extract" in selected:
            chain.extract(round_index, encoder)
        for stage in ("cluster", "train", "verify"):
            if stage in selected:
                getattr(chain, stage)(round_index)
    if "report" in selected:
        # A fresh report every time: it only reads what the stages wrote.
        shutil.rmtree(chain.out / "report", ignore_errors=True)
        chain.report()


def load_hparams(hparams_file, overrides=None):
    """Load the recipe's hyperparameters, following a variant file to its base.

    A variant (e.g. ``camsat_voxceleb2.yaml``) is a plain YAML file whose
    ``base_hparams`` names the file it modifies and whose other keys override
    that file's values; command-line overrides win over both.

    Arguments
    ---------
    hparams_file : str or path
        A recipe yaml or a variant of one.
    overrides : str or dict, optional
        Overrides in YAML (as ``sb.parse_arguments`` returns them) or a dict.

    Returns
    -------
    dict
        The loaded hyperparameters.
    """
    if isinstance(overrides, str) or overrides is None:
        overrides = yaml.safe_load(overrides or "") or {}
    path = Path(hparams_file)
    if re.search(r"^base_hparams:", path.read_text(), flags=re.M):
        variant = yaml.safe_load(path.read_text())
        path = path.parent / variant.pop("base_hparams")
        overrides = {**variant, **overrides}
    with open(path) as fin:
        return load_hyperpyyaml(fin, overrides)


def main(argv):
    """Parse the command line, load the hyperparameters and run the chain."""
    hparams_file, run_opts, overrides = sb.parse_arguments(argv)
    sb.utils.distributed.ddp_init_group(run_opts)
    hparams = load_hparams(hparams_file, overrides)
    sb.create_experiment_directory(
        experiment_directory=hparams["output_folder"],
        hyperparams_to_save=hparams_file,
        overrides=overrides,
    )
    torch.set_num_threads(hparams["num_threads"])
    for stage in (hparams["first_stage"], hparams["last_stage"]):
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}: choose among {', '.join(STAGES)}")
    run(Chain(hparams, run_opts), hparams["first_stage"], hparams["last_stage"])


if __name__ == "__main__":
    main(sys.argv[1:])
