"""Where a DINO stage-1 training step spends its time, before and after batching.

Times one training step of the recipe's stage-1 encoder (``hparams/encoders/
dino_ecapa.yaml``: ECAPA-TDNN 128 x 4 / 384, batches of 32 utterances, two 2 s
global crops and two 1 s local crops each) stage by stage: loading the crops,
augmenting them, filter banks, the student's forward pass, the teacher's, the loss
and backward pass, the optimiser step and the teacher's moving average. Two paths
run in the same process on the same batches, alternating:

* ``reference``: the step as it was, SpeechBrain's ``AddReverb`` / ``AddNoise``
  (files read per call, one room per call) applied crop by crop
  (``augment_one_by_one``), and filter banks computed separately for the student
  and the teacher;
* ``batched``: the library's step, :class:`RoomReverb` and :class:`BackgroundNoise`
  (sets in memory, a draw per crop) with each corruption batched over the crops
  that drew it (``augment_independently``), and one set of filter banks shared by
  student and teacher.

Extra rows (``--variants``) time the batched path with other settings, e.g.
``1.5:2`` for 1.5 s global crops and two local crops, or ``2.0:2:20`` for the
default crops with filter-bank frames every 20 ms instead of 10. The audio and the
augmentation sets are synthetic (the step's cost does not depend on the content).
The table gives the median seconds per step of each stage over ``--steps`` steps
and the speed-up of the whole step against ``reference``.

Usage::

    python bench/dino_profile.py
    python bench/dino_profile.py --steps 5 --variants 1.5:2 2.0:0 2.0:2:20
"""

import argparse
import contextlib
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile
import speechbrain as sb
import torch
from hyperpyyaml import load_hyperpyyaml
from speechbrain.augment.augmenter import Augmenter
from speechbrain.augment.time_domain import AddNoise, AddReverb
from speechbrain.dataio.batch import PaddedBatch

from camsat_lobes.augment_sets import build_augmentation_sets
from camsat_lobes.encoders.augmentation import (
    RandomEQ,
    augment_independently,
    augment_one_by_one,
)

SAMPLE_RATE = 16000
DINO_YAML = Path(__file__).resolve().parents[1] / "hparams" / "encoders" / "dino_ecapa.yaml"
STAGES = [
    "load crops",
    "augment",
    "filter banks",
    "student forward",
    "teacher forward",
    "loss + backward",
    "optimiser step",
    "teacher EMA",
]


def write_data(folder, n_utterances=64, seconds=4.0, seed=0):
    """Write noisy harmonic utterances, a manifest and small augmentation sets.

    Arguments
    ---------
    folder : pathlib.Path
        Where to write.
    n_utterances : int
        Number of utterances.
    seconds : float
        Length of each utterance.
    seed : int
        Seed of the signals.

    Returns
    -------
    manifest : pathlib.Path
        The CSV manifest of the utterances.
    sets : dict
        The ``noise_csv``, ``rir_csv`` and ``babble_csv`` of the augmentation sets.

    Example
    -------
    >>> manifest, sets = write_data(getfixture("tmp_path"), n_utterances=3, seconds=1.0)
    >>> len(manifest.read_text().splitlines()), sorted(sets)
    (4, ['babble_csv', 'noise_csv', 'rir_csv'])
    """
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    rows, sources = ["ID,duration,wav,start,stop"], []
    for i in range(n_utterances):
        signal = 0.1 * np.sin(2 * np.pi * rng.uniform(100, 250) * t) + 0.01 * rng.normal(
            size=t.size
        )
        path = folder / f"u{i}.wav"
        soundfile.write(str(path), signal.astype(np.float32), SAMPLE_RATE)
        rows.append(f"u{i},{seconds},{path},0,{t.size}")
        sources.append(str(path))
    manifest = folder / "train.csv"
    manifest.write_text("\n".join(rows) + "\n")
    sets = build_augmentation_sets(
        folder / "augment", babble_sources=sources, num_noises=20, num_rirs=20, num_babble=10
    )
    return manifest, sets


def reference_augmenter(sets, options):
    """Return the augmenter of the reference path: SpeechBrain's file-reading corruptions.

    Arguments
    ---------
    sets : dict
        The augmentation sets' CSVs.
    options : dict
        The encoder's augmentation options (``noise_snr``, ``babble_snr``, ...).

    Returns
    -------
    speechbrain.augment.augmenter.Augmenter
        Room, microphone, noise and babble, as the step used them before.

    Example
    -------
    >>> _, sets = write_data(getfixture("tmp_path"), n_utterances=2, seconds=1.0)
    >>> [type(a).__name__ for a in reference_augmenter(sets, {}).augmentations.values()]
    ['AddReverb', 'RandomEQ', 'AddNoise', 'AddNoise']
    """

    def noise(csv_file, snr):
        """SpeechBrain's AddNoise reading ``csv_file`` at SNRs in ``snr``."""
        return AddNoise(csv_file=csv_file, snr_low=snr[0], snr_high=snr[1])

    return Augmenter(
        shuffle_augmentations=True,
        min_augmentations=options.get("min_augmentations", 1),
        augmentations=[
            AddReverb(sets["rir_csv"]),
            RandomEQ(max_gain_db=options.get("eq_max_gain_db", 10.0)),
            noise(sets["noise_csv"], options.get("noise_snr", (0.0, 15.0))),
            noise(sets["babble_csv"], options.get("babble_snr", (10.0, 20.0))),
        ],
    )


class StepTimer:
    """Seconds spent in named stages of one step.

    Example
    -------
    >>> timer = StepTimer()
    >>> with timer("augment"):
    ...     pass
    >>> list(timer.seconds)
    ['augment']
    """

    def __init__(self):
        self.seconds = {}

    @contextlib.contextmanager
    def __call__(self, stage):
        """Add the wall time of the ``with`` block to ``stage``."""
        start = time.perf_counter()
        yield
        self.seconds[stage] = self.seconds.get(stage, 0.0) + time.perf_counter() - start


def timed_step(brain, dataset, indices, augment, augmenter, shared_features):
    """Run one DINO training step on ``indices``, stage by stage; return the timings.

    The step is :meth:`~camsat_lobes.encoders.dino.DINOBrain.compute_forward`,
    the loss, the update and the teacher's moving average, written out so that each
    stage can be timed.

    Arguments
    ---------
    brain : DINOBrain
        The brain (its optimiser initialised).
    dataset : DynamicItemDataset
        The crops dataset of the encoder.
    indices : list of int
        The utterances of the batch.
    augment : callable
        ``augment_independently`` or ``augment_one_by_one``.
    augmenter : callable
        The augmenter handed to ``augment``.
    shared_features : bool
        Compute the global crops' filter banks once for student and teacher.

    Returns
    -------
    dict
        Seconds per stage (keys of :data:`STAGES`).
    """
    timer, modules = StepTimer(), brain.modules
    with timer("load crops"):
        batch = PaddedBatch([dataset[i] for i in indices])
    crops = [batch.global_crops.data]
    if hasattr(batch, "local_crops"):
        crops.append(batch.local_crops.data)
    wavs = [c.transpose(0, 1).reshape(-1, c.shape[-1]) for c in crops]
    with timer("augment"):
        augmented = [augment(augmenter, w, torch.ones(w.shape[0])) for w in wavs]
    with timer("filter banks"):
        feats = [brain.features(w, lens) for w, lens in augmented]
    with timer("student forward"):
        student = [
            modules.head(brain.embed_features(f, lens, modules.embedding_model))
            for f, (_, lens) in zip(feats, augmented)
        ]
    global_wavs, global_lens = augmented[0]
    with torch.no_grad():
        global_feats = feats[0]
        if not shared_features:
            with timer("filter banks"):
                global_feats = brain.features(global_wavs, global_lens)
        with timer("teacher forward"):
            teacher = modules.teacher_head(
                brain.embed_features(global_feats, global_lens, modules.teacher_model)
            )
    size = len(indices)
    with timer("loss + backward"):
        student = [chunk for scores in student for chunk in scores.split(size)]
        loss = brain.hparams.dino_loss(student, list(teacher.split(size)))
        loss.backward()
    with timer("optimiser step"):
        brain.optimizer.step()
        brain.optimizer.zero_grad()
    with timer("teacher EMA"):
        brain.on_fit_batch_end(batch, None, loss, True)
    return timer.seconds


def make_brain(folder, sets, global_seconds=None, n_local=None, hop_length=None):
    """Build the recipe's DINO encoder and its brain, optionally with other settings.

    Arguments
    ---------
    folder : pathlib.Path
        Save folder of the brain.
    sets : dict
        Augmentation sets.
    global_seconds : float, optional
        Length of the global crops (default: the yaml's).
    n_local : int, optional
        Number of local crops (default: the yaml's).
    hop_length : float, optional
        Milliseconds between filter-bank frames (default: the yaml's).

    Returns
    -------
    encoder : DINOEncoder
        The encoder.
    brain : DINOBrain
        Its brain, ready to step.
    """
    overrides = {}
    if global_seconds is not None:
        overrides["global_seconds"] = global_seconds
    if n_local is not None:
        overrides["n_local"] = n_local
    if hop_length is not None:
        overrides["hop_length"] = hop_length
    with open(DINO_YAML) as handle:
        encoder = load_hyperpyyaml(handle, overrides)["encoder"]
    brain = encoder.make_brain(folder, augmentation_sets=sets, run_opts={"device": "cpu"})
    brain.init_optimizers()
    brain.hparams.steps_per_epoch = 1000
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    brain.modules.train()
    return encoder, brain


def main():
    """Time the reference and batched steps (and variants); print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=4, help="timed steps per path")
    parser.add_argument("--threads", type=int, default=2, help="torch threads")
    parser.add_argument(
        "--variants",
        nargs="*",
        default=[],
        help="extra batched rows as GLOBAL_SECONDS:N_LOCAL[:HOP_MS], e.g. 1.5:2 or 2.0:2:20",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        manifest, sets = write_data(folder)
        encoder, brain = make_brain(folder / "main", sets)
        paths = {
            "reference": (
                augment_one_by_one,
                reference_augmenter(sets, encoder.augmentation),
                False,
            ),
            "batched": (augment_independently, brain.hparams.augmenter, True),
        }
        runs = {name: (brain, encoder.dataset(manifest), *path) for name, path in paths.items()}
        for variant in args.variants:
            seconds, n_local, *hop = variant.split(":")
            hop_length = float(hop[0]) if hop else None
            enc, br = make_brain(folder / variant, sets, float(seconds), int(n_local), hop_length)
            frames = f", {hop[0]} ms frames" if hop else ""
            runs[f"batched, {seconds} s global, {n_local} local{frames}"] = (
                br,
                enc.dataset(manifest),
                augment_independently,
                br.hparams.augmenter,
                True,
            )
        times = {name: [] for name in runs}
        for step in range(args.steps + 1):  # the first step of each path warms up
            indices = rng.choice(64, 32, replace=False).tolist()
            for name, (run_brain, dataset, augment, augmenter, shared) in runs.items():
                seconds = timed_step(run_brain, dataset, indices, augment, augmenter, shared)
                if step > 0:
                    times[name].append(seconds)
    print(
        f"median seconds per step of 32 utterances over {args.steps} steps, "
        f"{args.threads} torch threads\n"
    )
    print("| path | " + " | ".join(STAGES) + " | step | speed-up |")
    print("|---|" + "---:|" * (len(STAGES) + 2))
    reference = None
    for name, steps in times.items():
        medians = [statistics.median(s.get(stage, 0.0) for s in steps) for stage in STAGES]
        total = statistics.median(sum(s.values()) for s in steps)
        reference = reference or total
        cells = " | ".join(f"{m:.3f}" for m in medians)
        print(f"| {name} | {cells} | {total:.3f} | {reference / total:.2f}x |")


if __name__ == "__main__":
    main()
