"""GPU check: what only a GPU can measure for the paper's setup, in one command of <= 8 minutes.

The command, on a machine with one GPU (faiss-gpu installed for the GPU k-means)::

    python bench/gpu_check.py --out gpu_check.json

and its tiny version, every phase at toy sizes on the CPU in seconds (what the tests run)::

    python bench/gpu_check.py --device cpu --tiny

It measures, in this order, each phase in a fresh process (its own peak memory):

1. **speaker step** (``bench/training_steps.py``): the speaker network of
   ``camsat_voxceleb2.yaml``, ECAPA-TDNN with 1024 channels (``hparams/encoders/
   ecapa.yaml``) and AAM-softmax over 5,994 classes (``hparams/losses/aam.yaml``),
   trained as the recipe trains it (``SpeakerBrain.fit_batch``: augmentation, 10 ms
   filter banks, forward, loss, Adam step) on batches of 128 random 2 s crops.
2. **DINO step** (``bench/training_steps.py``): the stage-1 encoder at the VoxCeleb
   settings of WeSpeaker's DINO, built from ``hparams/encoders/dino_ecapa.yaml`` with
   overrides as the recipe includes it: ECAPA-TDNN 1024, 65,536 prototypes, 2 global
   3 s crops and 4 local 2 s crops per utterance, 10 ms frames; ``DINOBrain.fit_batch``
   (every crop augmented, the student on all crops, the teacher on the global ones,
   the DINO loss, the AdamW step, the teacher's moving average) on batches of 64
   utterances of random audio, halved while a batch runs out of GPU memory.
3. **clustering at 1,090,000 × 192, K = 10,000** (``bench/scale_phases.py``, the scale
   bench's phases): synthetic speaker-like embeddings and views, faiss k-means (20
   iterations, on the GPU with faiss-gpu) and the recipe's cluster stage with one
   CAMSAT epoch on the GPU, after a probe size (109,000 points) from which the scale
   bench's linear estimate decides whether 1.09 M fits what is left of the budget.

The network steps run one warm-up step, then ``--steps`` timed steps. The table gives,
per phase, seconds per step (networks: the median timed step; k-means: ``fit`` over the
iterations, the final assignment included; CAMSAT: the epoch over its mini-batches, the
prediction of every point and the per-epoch metrics included), the warm-up, the phase's
seconds, the peak GPU memory and the peak RSS. Peak GPU memory is
``torch.cuda.max_memory_allocated`` over the warm-up and timed steps (networks) or
during CAMSAT's ``fit``; for k-means it is the device memory in use above the start of
``fit``, polled, because faiss allocates outside torch's counters. The scale bench's
own table (NMI / ACC / purity, the stage's seconds) follows; ``--out`` writes both as JSON.

Budget: ``--time-budget`` (default 480 s) covers the whole command. A network phase
starts only when its a-priori estimate (45 s speaker, 75 s DINO, start-up included)
fits what is left, and starts no further timed step once that estimate is spent (at
least one timed step runs); the clustering
starts only when its probe (estimated 60 s) fits, and 1.09 M only when the estimate
from the probe fits. A phase that would not fit is reported as "skipped: estimated X s >
Y s left", never started.

Without a GPU, ``--device cuda`` (the default) says that the check needs CUDA and
exits with status 2.

Usage::

    python bench/gpu_check.py --out gpu_check.json
    python bench/gpu_check.py --phases dino --dino-batch 128 --steps 10
    python bench/gpu_check.py --device cpu --tiny --out tiny.json
"""

import argparse
import json
import pathlib
import shutil
import sys
import tempfile
import time

BENCH = pathlib.Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from asnorm import in_fresh_process  # noqa: E402
from gpu_check_table import clustering_rows, network_row, skip_status, table  # noqa: E402
from scale import markdown_table  # noqa: E402
from scale_budget import probe_size, run_sizes  # noqa: E402
from training_steps import dino_step, speaker_step  # noqa: E402

PHASES = ("speaker", "dino", "clustering")
ECAPA_1024 = [1024, 1024, 1024, 1024, 3072]
#: The paper's sizes, and each phase's a-priori seconds (start-up included).
FULL = {
    "speaker": {"channels": ECAPA_1024, "n_classes": 5994, "seconds": 2.0, "batch": 128},
    "dino": {
        "channels": ECAPA_1024,
        "n_prototypes": 65536,
        "global_seconds": 3.0,
        "n_local": 4,
        "local_seconds": 2.0,
        "batch": 64,
    },
    "clustering": {"points": 1_090_000, "clusters": 10_000, "dim": 192, "views": 4},
    "camsat": {"niter": 20, "epochs": 1, "hidden": "1200,1200", "batch_size": 250},
    "sets": {"num_noises": 20, "num_rirs": 20, "num_babble": 10},
    "estimate_s": {"speaker": 45.0, "dino": 75.0, "clustering": 60.0},
}
#: Toy sizes of every phase, for a check of the script on the CPU.
TINY = {
    "speaker": {"channels": [16, 16, 16, 16, 48], "n_classes": 10, "seconds": 0.5, "batch": 4},
    "dino": {
        "channels": [16, 16, 16, 16, 48],
        "n_prototypes": 64,
        "global_seconds": 1.0,
        "n_local": 2,
        "local_seconds": 0.5,
        "batch": 2,
    },
    "clustering": {"points": 800, "clusters": 20, "dim": 16, "views": 2},
    "camsat": {"niter": 5, "epochs": 1, "hidden": "32", "batch_size": 50},
    "sets": {"num_noises": 2, "num_rirs": 2, "num_babble": 2},
    "estimate_s": {"speaker": 5.0, "dino": 5.0, "clustering": 5.0},
}


def augmentation_sets(folder, sizes, seed):
    """Write small synthetic noise, room and babble sets for the networks' augmentation.

    Arguments
    ---------
    folder : pathlib.Path
        Where to write them.
    sizes : dict
        ``num_noises``, ``num_rirs``, ``num_babble``.
    seed : int
        Seed of the signals and the sets.

    Returns
    -------
    dict
        The ``noise_csv``, ``rir_csv`` and ``babble_csv`` paths.
    """
    import numpy as np
    import soundfile

    from camsat_lobes.augment_sets import build_augmentation_sets

    rng = np.random.default_rng(seed)
    sources = []
    (folder / "speech").mkdir(parents=True, exist_ok=True)
    for index in range(4):  # babble sources: harmonic "voices" in noise
        t = np.arange(4 * 16000) / 16000
        signal = 0.1 * np.sin(2 * np.pi * rng.uniform(90, 250) * t) + 0.01 * rng.normal(size=t.size)
        sources.append(str(folder / "speech" / f"s{index}.wav"))
        soundfile.write(sources[-1], signal.astype(np.float32), 16000)
    return build_augmentation_sets(folder / "sets", babble_sources=sources, seed=seed, **sizes)


def parse_args(argv=None):
    """Read the command line and fill in the sizes of the full or tiny check.

    Arguments
    ---------
    argv : list of str, optional
        The arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    argparse.Namespace
        The options; ``settings`` holds the sizes of every phase.

    Example
    -------
    >>> args = parse_args(["--tiny", "--dino-batch", "3"])
    >>> args.settings["dino"]["batch"], args.settings["clustering"]["points"], args.probe
    (3, 800, 0)
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true", help="toy sizes of every phase")
    parser.add_argument("--time-budget", type=float, default=480.0, help="seconds in all")
    parser.add_argument("--phases", nargs="+", choices=PHASES, default=list(PHASES))
    parser.add_argument("--steps", type=int, default=5, help="timed steps after the warm-up")
    parser.add_argument("--speaker-batch", type=int, default=None, help="default 128")
    parser.add_argument("--dino-batch", type=int, default=None, help="default 64")
    parser.add_argument("--points", type=int, default=None, help="default 1,090,000")
    parser.add_argument("--clusters", type=int, default=None, help="K, default 10,000")
    parser.add_argument("--probe", type=int, default=None, help="default: the scale bench's")
    parser.add_argument("--precision", choices=("fp32", "fp16", "bf16"), default="fp32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", default=None, help="default: a fresh temporary folder")
    parser.add_argument("--in-process", action="store_true", help="no fresh processes (tests)")
    parser.add_argument("--out", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)
    settings = json.loads(json.dumps(TINY if args.tiny else FULL))
    for phase, key, value in (
        ("speaker", "batch", args.speaker_batch),
        ("dino", "batch", args.dino_batch),
        ("clustering", "points", args.points),
        ("clustering", "clusters", args.clusters),
    ):
        if value is not None:
            settings[phase][key] = value
    if args.probe is None:
        size = settings["clustering"]
        args.probe = 0 if args.tiny else probe_size([size["points"]], size["clusters"])
    settings.update(device=args.device, steps=args.steps, seed=args.seed, precision=args.precision)
    args.settings = settings
    return args


def run_clustering(args, settings, left):
    """Run the scale bench's phases at the check's size within what is left of the budget.

    Arguments
    ---------
    args : argparse.Namespace
        The options (``probe``, ``in_process``).
    settings : dict
        The check's options.
    left : float
        Seconds left.

    Returns
    -------
    list of dict
        The scale bench's rows (the probe first).
    """
    size = settings["clustering"]
    scale_settings = {
        **size,
        **settings["camsat"],
        "points": [size["points"]],
        "speakers": None,
        "seed": settings["seed"],
        "device": settings["device"],
        "probe": args.probe,
        "time_budget": left,
        "total_budget": left,
        "memory_limit": None,
        "workdir": str(pathlib.Path(settings["workdir"]) / "clustering"),
        "keep": False,
    }
    return run_sizes(scale_settings, fresh=not args.in_process)


def main(argv=None):
    """Run the check's phases within the budget, print the tables; return the rows.

    Arguments
    ---------
    argv : list of str, optional
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        ``rows`` (the check's table), ``clustering_rows`` (the scale bench's), ``wall_s``.
    """
    started = time.perf_counter()
    args = parse_args(argv)
    settings = args.settings
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            print(
                "bench/gpu_check.py needs CUDA: torch sees no GPU on this machine. Run it on "
                "a machine with one GPU, or check the script with --device cpu --tiny.",
                file=sys.stderr,
            )
            raise SystemExit(2)
    temporary = None if args.workdir else tempfile.mkdtemp(prefix="camsat_gpu_check_")
    settings["workdir"] = args.workdir or temporary
    print("Settings:", json.dumps(settings), flush=True)
    run = (lambda function, *a: function(*a)) if args.in_process else in_fresh_process
    rows, scale_rows = [], []
    try:
        sets = None
        for phase in args.phases:
            left = args.time_budget - (time.perf_counter() - started)
            estimate = settings["estimate_s"][phase]
            if phase == "clustering":
                if left >= estimate:
                    scale_rows = run_clustering(args, settings, left)
                    rows += clustering_rows(settings, scale_rows)
                else:
                    status = skip_status(estimate, left)
                    rows.append({"phase": "clustering", "setting": "", "status": status})
                continue
            if left < estimate:
                rows.append(network_row(phase, settings, {"status": skip_status(estimate, left)}))
                continue
            if sets is None:
                folder = pathlib.Path(settings["workdir"]) / "augmentation"
                sets = augmentation_sets(folder, settings["sets"], settings["seed"])
            print(f"{phase} step: running", flush=True)
            function = speaker_step if phase == "speaker" else dino_step
            try:
                out = run(function, settings, sets, time.time() + min(left, estimate))
            except Exception as error:  # reported in the row, never dropped
                out = {"status": f"failed: {type(error).__name__}: {error}"}
            rows.append(network_row(phase, settings, out))
            print(f"{phase} step: {rows[-1]['status']}", flush=True)
    finally:
        if temporary is not None:
            shutil.rmtree(temporary, ignore_errors=True)
    wall = time.perf_counter() - started
    device = next((r["device_name"] for r in rows if r.get("device_name")), args.device)
    print(f"\n## GPU check on {device}, {args.precision}, budget {args.time_budget:.0f} s\n")
    print(table(rows))
    for row in rows:
        for note in row.get("notes", []):
            print(f"\nNote ({row['phase']}): {note}")
    if scale_rows:
        print("\n### The clustering, as the scale bench reports it\n")
        print(markdown_table(scale_rows))
    print(f"\nTotal wall time: {wall:.0f} s")
    report = {"settings": settings, "rows": rows, "clustering_rows": scale_rows, "wall_s": wall}
    if args.out:
        pathlib.Path(args.out).write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
