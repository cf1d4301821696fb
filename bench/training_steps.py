"""Timed optimisation steps of the recipe's two networks on random audio: speaker and DINO.

Each phase function builds the network from the package's yaml fragments with
overrides, as the recipe includes them, then runs the Brain's own training step
(``Brain.fit_batch``: augmentation, filter banks, forward, loss, backward, optimiser
step and, for DINO, the teacher's moving average) on batches of random audio: one
warm-up step, then timed steps (:func:`time_steps`). Each returns seconds per step and
peak memory: ``torch.cuda.max_memory_allocated`` over the warm-up and timed steps on a
GPU, the process's peak RSS everywhere. Run each in a fresh process for its own peaks.

* :func:`speaker_step`: ECAPA-TDNN (``hparams/encoders/ecapa.yaml``) with AAM-softmax
  (``hparams/losses/aam.yaml``), trained as ``camsat_lobes.speaker_training.SpeakerBrain``
  with the settings of ``camsat_voxceleb2.yaml``: filter banks every 10 ms,
  per-utterance mean normalisation, Adam (lr 0.001, weight decay 2e-6) and the
  recipe's training augmentation (noise at 5-20 dB, rooms, microphone colouring); the
  labels are random classes.
* :func:`dino_step`: the DINO stage-1 encoder (``hparams/encoders/dino_ecapa.yaml``),
  its ``DINOBrain`` as ``DINOEncoder.make_brain`` builds it: every crop augmented on its
  own, the student on all crops, the teacher on the global ones.

On CUDA, a batch that runs out of memory in the warm-up step is halved until one fits;
the row says which sizes did not.
"""

import functools
import gc
import pathlib
import statistics
import time

from asnorm import peak_rss_mib

REPO = pathlib.Path(__file__).resolve().parents[1]
ENCODERS = REPO / "hparams" / "encoders"
LOSSES = REPO / "hparams" / "losses"
SAMPLE_RATE = 16000
#: Filter-bank frame shift of the paper's setup (``feature_hop_ms`` of camsat_voxceleb2.yaml).
HOP_MS = 10.0


def load_yaml(path, overrides):
    """Load a yaml fragment with overrides.

    Arguments
    ---------
    path : pathlib.Path
        The yaml file.
    overrides : dict
        Keys to override.

    Returns
    -------
    dict
        The loaded objects.

    Example
    -------
    >>> load_yaml(LOSSES / "aam.yaml", {"n_classes": 3})["speaker_loss"].weight.shape
    torch.Size([3, 192])
    """
    from hyperpyyaml import load_hyperpyyaml

    with open(path, encoding="utf-8") as stream:
        return load_hyperpyyaml(stream, overrides)


def run_options(settings):
    """SpeechBrain run options of a phase: the device (``cuda:0`` for ``cuda``) and precision.

    Arguments
    ---------
    settings : dict
        The check's options (``device``, ``precision``).

    Returns
    -------
    dict
        ``device`` and ``precision``.

    Example
    -------
    >>> run_options({"device": "cuda", "precision": "bf16"})
    {'device': 'cuda:0', 'precision': 'bf16'}
    """
    device = "cuda:0" if settings["device"] == "cuda" else settings["device"]
    return {"device": device, "precision": settings["precision"]}


def _timed_step(brain, batch, cuda):
    """Run one training step of the Brain; return its seconds and loss."""
    import torch

    if cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    loss = brain.fit_batch(batch)
    if cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start, float(loss)


def time_steps(brain, make_batch, batch_size, steps, deadline):
    """Time a warm-up step, then up to ``steps`` steps while the deadline allows.

    Arguments
    ---------
    brain : speechbrain.Brain
        A Brain with its optimiser, in training mode.
    make_batch : callable
        ``make_batch(batch_size)`` returns a batch of random inputs.
    batch_size : int
        The batch to try first (halved on CUDA out-of-memory until one fits).
    steps : int
        Timed steps wanted (at least one runs).
    deadline : float
        ``time.time()`` after which no further step starts.

    Returns
    -------
    dict
        ``batch`` (the size that ran), ``out_of_memory_batches`` (the sizes that did
        not), ``warmup_s``, ``steps``, ``step_s`` (median), ``steps_s`` (every step),
        ``loss`` (last), ``gpu_max_mib`` and ``gpu_reserved_mib`` (None on the CPU).

    Example
    -------
    >>> brain = _tiny_brain()
    >>> out = time_steps(brain, _tiny_batch, 4, steps=2, deadline=time.time() + 60)
    >>> out["batch"], out["steps"], out["gpu_max_mib"]
    (4, 2, None)
    """
    import torch

    cuda = str(brain.device).startswith("cuda")
    too_big = []
    while True:
        batches = [make_batch(batch_size) for _ in range(2)]
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        out_of_memory = False
        try:
            warmup_s, loss = _timed_step(brain, batches[0], cuda)
        except torch.cuda.OutOfMemoryError:
            if not cuda or batch_size == 1:
                raise
            out_of_memory = True
        if not out_of_memory:
            break
        too_big.append(batch_size)
        batch_size //= 2
        del batches
        brain.optimizer.zero_grad(set_to_none=True)
        gc.collect()
        torch.cuda.empty_cache()
    seconds = []
    for index in range(steps):
        if seconds and time.time() + seconds[-1] > deadline:
            break
        step_s, loss = _timed_step(brain, batches[(index + 1) % 2], cuda)
        seconds.append(step_s)
    return {
        "batch": batch_size,
        "out_of_memory_batches": too_big,
        "warmup_s": warmup_s,
        "steps": len(seconds),
        "step_s": statistics.median(seconds),
        "steps_s": seconds,
        "loss": loss,
        "gpu_max_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "gpu_reserved_mib": torch.cuda.max_memory_reserved() / 2**20 if cuda else None,
    }


def _finish(row, brain, start):
    """Add what every phase reports: parameters, device, peak RSS, the phase's seconds."""
    import torch

    trainable = [p for p in brain.modules.parameters() if p.requires_grad]
    row["parameters_m"] = sum(p.numel() for p in trainable) / 1e6
    cuda = str(brain.device).startswith("cuda")
    row["device_name"] = torch.cuda.get_device_name() if cuda else "cpu"
    row["peak_rss_mib"] = peak_rss_mib()
    row["phase_s"] = time.perf_counter() - start
    return row


def speaker_step(settings, augmentation_sets, deadline):
    """Time the speaker network's training step (ECAPA-TDNN, AAM-softmax) on random audio.

    Arguments
    ---------
    settings : dict
        The check's options: ``speaker`` (``channels``, ``n_classes``, ``seconds``,
        ``batch``), ``steps``, ``seed``, ``device``, ``precision``.
    augmentation_sets : dict
        The noise, room and babble CSVs of the training augmentation.
    deadline : float
        ``time.time()`` after which no further timed step starts.

    Returns
    -------
    dict
        The keys of :func:`time_steps`, ``parameters_m``, ``device_name``,
        ``peak_rss_mib`` and ``phase_s``.
    """
    import speechbrain as sb
    import torch
    from speechbrain.dataio.batch import PaddedBatch

    from camsat_lobes.encoders.augmentation import build_augmenter
    from camsat_lobes.speaker_training import SpeakerBrain

    start = time.perf_counter()
    options = settings["speaker"]
    torch.manual_seed(settings["seed"])
    network = load_yaml(ENCODERS / "ecapa.yaml", {"channels": options["channels"]})
    loss = load_yaml(
        LOSSES / "aam.yaml",
        {"embedding_dim": network["emb_dim"], "n_classes": options["n_classes"]},
    )["speaker_loss"]
    modules = {
        "compute_features": sb.lobes.features.Fbank(n_mels=network["n_mels"], hop_length=HOP_MS),
        "mean_var_norm": sb.processing.features.InputNormalization(
            norm_type="sentence", std_norm=False
        ),
        "embedding_model": network["embedding_model"],
        "speaker_loss": loss,
    }
    hparams = {
        "wav_augment": build_augmenter(augmentation_sets, noise_snr=(5.0, 20.0)),
        "train_crop_seconds": None,
        "seed": settings["seed"],
    }
    opt_class = functools.partial(torch.optim.Adam, lr=0.001, weight_decay=0.000002)
    brain = SpeakerBrain(modules, opt_class, hparams, run_options(settings))
    brain.init_optimizers()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    brain.modules.train()
    samples = int(options["seconds"] * SAMPLE_RATE)

    def make_batch(size):
        """Return a batch of random crops with random classes."""
        classes = torch.randint(options["n_classes"], (size,))
        return PaddedBatch(
            [
                {"id": f"u{i}", "sig": 0.1 * torch.randn(samples), "label": classes[i : i + 1]}
                for i in range(size)
            ]
        )

    row = time_steps(brain, make_batch, options["batch"], settings["steps"], deadline)
    return _finish(row, brain, start)


def dino_step(settings, augmentation_sets, deadline):
    """Time the DINO encoder's training step on random audio.

    Arguments
    ---------
    settings : dict
        The check's options: ``dino`` (``channels``, ``n_prototypes``,
        ``global_seconds``, ``n_local``, ``local_seconds``, ``batch``), ``steps``,
        ``seed``, ``device``, ``precision``, ``workdir``.
    augmentation_sets : dict
        The noise, room and babble CSVs of the crops' augmentation.
    deadline : float
        ``time.time()`` after which no further timed step starts.

    Returns
    -------
    dict
        The keys of :func:`speaker_step`, and ``notes`` (what the check had to change to
        run the step; empty when nothing).
    """
    import speechbrain as sb
    import torch
    from speechbrain.dataio.batch import PaddedBatch

    start = time.perf_counter()
    options = settings["dino"]
    torch.manual_seed(settings["seed"])
    overrides = {
        "channels": options["channels"],
        "n_prototypes": options["n_prototypes"],
        "global_seconds": options["global_seconds"],
        "n_local": options["n_local"],
        "local_seconds": options["local_seconds"],
        "batch_size": options["batch"],
        "hop_length": HOP_MS,
    }
    encoder = load_yaml(ENCODERS / "dino_ecapa.yaml", overrides)["encoder"]
    folder = pathlib.Path(settings["workdir"]) / "dino"
    brain = encoder.make_brain(
        folder, augmentation_sets=augmentation_sets, run_opts=run_options(settings)
    )
    notes = []
    centre = brain.hparams.dino_loss.center
    if centre.device != torch.device(brain.device):
        notes.append(
            f"DINOLoss.center was on {centre.device}, not on {brain.device}: moved there "
            "(the Brain moves its modules only; the loss is one of its hparams)"
        )
        brain.hparams.dino_loss.to(brain.device)
    brain.init_optimizers()
    brain.hparams.steps_per_epoch = 1000
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    brain.modules.train()
    global_samples = int(options["global_seconds"] * SAMPLE_RATE)
    local_samples = int(options["local_seconds"] * SAMPLE_RATE)

    def make_batch(size):
        """Return a batch of utterances' random global and local crops."""
        return PaddedBatch(
            [
                {
                    "id": f"u{i}",
                    "index": i,
                    "global_crops": 0.1 * torch.randn(2, global_samples),
                    "local_crops": 0.1 * torch.randn(options["n_local"], local_samples),
                }
                for i in range(size)
            ]
        )

    row = time_steps(brain, make_batch, options["batch"], settings["steps"], deadline)
    row["notes"] = notes
    return _finish(row, brain, start)


def _tiny_brain():
    """Return a tiny speaker Brain on the CPU (for the examples)."""
    import speechbrain as sb
    import torch

    from camsat_lobes.margins import AAMSoftmax
    from camsat_lobes.speaker_training import SpeakerBrain

    network = load_yaml(ENCODERS / "ecapa.yaml", {"channels": [8, 8, 8, 8, 24], "emb_dim": 8})
    modules = {
        "compute_features": sb.lobes.features.Fbank(n_mels=80),
        "mean_var_norm": sb.processing.features.InputNormalization(norm_type="sentence"),
        "embedding_model": network["embedding_model"],
        "speaker_loss": AAMSoftmax(embedding_dim=8, n_classes=3),
    }
    brain = SpeakerBrain(modules, torch.optim.Adam, {"seed": 0}, run_opts={"device": "cpu"})
    brain.init_optimizers()
    brain.on_stage_start(sb.Stage.TRAIN, 1)
    return brain


def _tiny_batch(size):
    """Return a batch of random 0.25 s signals with classes 0-2 (for the examples)."""
    import torch
    from speechbrain.dataio.batch import PaddedBatch

    return PaddedBatch(
        [
            {"id": f"u{i}", "sig": torch.randn(4000), "label": torch.LongTensor([i % 3])}
            for i in range(size)
        ]
    )
