"""MFCC statistics baseline and the same-session / cross-session separability report.

An utterance is embedded as the mean and standard deviation over frames of its
MFCCs (``speechbrain.lobes.features.MFCC``, no deltas). Trials are scored by cosine
similarity, raw and after subtracting the mean training embedding (and dividing by
the training standard deviation per dimension). The report gives the EER on all test
trials, on the target trials recorded in one session against all non-targets, and
on the target trials across two sessions against all non-targets (the session is the
folder level of the path). A large gap between the last two says how much a shared
channel helps: the cue that a self-supervised model must learn to ignore.

Run ``python -m camsat_lobes.mfcc_baseline --data-folder ROOT`` on a corpus in the
VoxCeleb layout.

Authors
 * camsat contributors 2026
"""

import argparse
import csv
import logging
from pathlib import Path

import numpy as np
import torch
from speechbrain.dataio.dataio import read_audio
from speechbrain.lobes.features import MFCC
from tqdm import tqdm

from camsat_lobes.files import write_json
from camsat_lobes.prepare import prepare_voxceleb
from camsat_lobes.scoring import CosineBackend
from camsat_lobes.verification import compute_eer, compute_min_dcf

logger = logging.getLogger(__name__)

__all__ = ["MfccStatistics", "format_report", "main", "separability_report"]

REPORT_JSON = "mfcc_separability.json"
REPORT_MD = "mfcc_separability.md"
CONDITIONS = ("all trials", "same-session targets", "cross-session targets")


class MfccStatistics(torch.nn.Module):
    """Utterance embedding: mean and standard deviation of MFCCs over frames.

    Arguments
    ---------
    n_mfcc : int
        Number of cepstral coefficients (the embedding has twice as many values).
    n_mels : int
        Number of mel filters.
    sample_rate : int
        Sample rate of the input.

    Example
    -------
    >>> embed = MfccStatistics(n_mfcc=24)
    >>> embed(torch.randn(16000)).shape
    torch.Size([48])
    """

    def __init__(self, n_mfcc=24, n_mels=40, sample_rate=16000):
        super().__init__()
        self.mfcc = MFCC(
            deltas=False, context=False, sample_rate=sample_rate, n_mels=n_mels, n_mfcc=n_mfcc
        )

    @torch.no_grad()
    def forward(self, signal):
        """Embed one signal.

        Arguments
        ---------
        signal : torch.Tensor
            1-D waveform.

        Returns
        -------
        torch.Tensor
            ``[mean, std]`` of the MFCCs, shape ``(2 * n_mfcc,)``.
        """
        features = self.mfcc(signal.reshape(1, -1).float())[0]
        return torch.cat([features.mean(dim=0), features.std(dim=0)])


def separability_report(
    data_folder,
    save_folder,
    trial_file=None,
    n_mfcc=24,
    max_train_utterances=2000,
    seed=0,
    num_workers=0,
):
    r"""Prepare a corpus, embed it with MFCC statistics and measure EER by condition.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root in the VoxCeleb layout (see :func:`camsat_lobes.prepare.prepare_voxceleb`).
    save_folder : str or pathlib.Path
        Where the manifests and ``mfcc_separability.json`` / ``.md`` go.
    trial_file : str or pathlib.Path, optional
        Trial list; ``<data_folder>/trials.txt`` by default.
    n_mfcc : int
        Number of cepstral coefficients.
    max_train_utterances : int
        At most this many training utterances (a seeded random subset) give the mean
        and standard deviation used to centre the embeddings.
    seed : int
        Seed of that subset.
    num_workers : int
        Processes for checking the audio files during preparation.

    Returns
    -------
    dict
        ``rows`` (one per condition: ``condition``, ``targets``, ``nontargets``,
        ``eer_raw``, ``eer`` and ``min_dcf``, rates as fractions, None when the
        condition has no target trial), ``embedding`` (its description) and
        ``files`` (the report's paths).

    Example
    -------
    >>> import tempfile
    >>> import soundfile as sf
    >>> tmp = tempfile.TemporaryDirectory()
    >>> root = Path(tmp.name) / "corpus"
    >>> rng = np.random.default_rng(0)
    >>> for name in ["a/s1/u1", "b/s1/u1", "c/s1/u1", "c/s1/u2", "c/s2/u3", "d/s1/u1"]:
    ...     (root / "wav" / name).parent.mkdir(parents=True, exist_ok=True)
    ...     sf.write(root / "wav" / f"{name}.wav", rng.uniform(-0.1, 0.1, 16000), 16000)
    >>> trials = "1 c/s1/u1.wav c/s1/u2.wav\n1 c/s1/u1.wav c/s2/u3.wav\n0 c/s1/u1.wav d/s1/u1.wav\n"
    >>> _ = (root / "trials.txt").write_text(trials)
    >>> report = separability_report(root, Path(tmp.name) / "out")
    >>> [(row["condition"], row["targets"], row["nontargets"]) for row in report["rows"]]
    [('all trials', 2, 1), ('same-session targets', 1, 1), ('cross-session targets', 1, 1)]
    >>> tmp.cleanup()
    """
    save_folder = Path(save_folder).expanduser().resolve()
    paths = prepare_voxceleb(
        data_folder, save_folder, trial_file=trial_file, num_workers=num_workers
    )
    test = _read_csv(paths["test_csv"])
    trials = _read_csv(paths["trials_csv"])
    if not trials:
        raise ValueError(
            f"{paths['trials_csv']} holds no trial: the separability report needs a trial "
            f"list (see {paths['report_md']})"
        )
    train = _read_csv(paths["train_utts_csv"])
    if len(train) > max_train_utterances:
        chosen = np.random.default_rng(seed).choice(len(train), max_train_utterances, False)
        train = [train[index] for index in sorted(chosen)]
    if not train:
        logger.warning("No training utterances: centring with the test embeddings instead")
        train = test

    test_embeddings = mfcc_embeddings(test, n_mfcc, "Embedding test utterances")
    train_embeddings = mfcc_embeddings(train, n_mfcc, "Embedding training utterances")
    mean, std = train_embeddings.mean(axis=0), train_embeddings.std(axis=0) + 1e-8

    index = {row["ID"]: position for position, row in enumerate(test)}
    enrol = np.array([index[trial["enrol_id"]] for trial in trials])
    probe = np.array([index[trial["test_id"]] for trial in trials])
    labels = np.array([int(trial["label"]) for trial in trials])
    plain = CosineBackend(np.zeros(test_embeddings.shape[1]))  # cosine, nothing subtracted
    raw = plain.score(test_embeddings[enrol], test_embeddings[probe])
    centred_embeddings = (test_embeddings - mean) / std
    scores = plain.score(centred_embeddings[enrol], centred_embeddings[probe])
    sessions = np.array([row["session"] for row in test])
    same_session = sessions[enrol] == sessions[probe]
    selections = {
        "all trials": np.ones(len(labels), dtype=bool),
        "same-session targets": (labels == 0) | same_session,
        "cross-session targets": (labels == 0) | ~same_session,
    }
    rows = [
        _condition_row(name, raw[keep], scores[keep], labels[keep])
        for name, keep in selections.items()
    ]
    report = {
        "data_folder": str(Path(data_folder).expanduser().resolve()),
        "embedding": {
            "features": f"MFCC (n_mfcc={n_mfcc}, n_mels=40, 25 ms / 10 ms), mean and std",
            "dimension": int(test_embeddings.shape[1]),
            "centring": f"training mean and std over {len(train)} utterances",
            "scoring": "cosine",
        },
        "rows": rows,
        "files": {"json": str(save_folder / REPORT_JSON), "markdown": str(save_folder / REPORT_MD)},
    }
    write_json(save_folder / REPORT_JSON, report)
    (save_folder / REPORT_MD).write_text(format_report(report) + "\n", encoding="utf-8")
    return report


def format_report(report):
    """Format a separability report as a markdown table.

    Arguments
    ---------
    report : dict
        The output of :func:`separability_report`.

    Returns
    -------
    str
        The table, EERs in percent.

    Example
    -------
    >>> row = {"condition": "all trials", "targets": 2, "nontargets": 3,
    ...        "eer_raw": 0.25, "eer": 0.125, "min_dcf": 0.5}
    >>> print(format_report({"rows": [row]}).splitlines()[2])
    | all trials | 2 | 3 | 25.00 | 12.50 | 0.500 |
    """
    lines = [
        "| condition | target trials | non-target trials | EER raw cosine (%) "
        "| EER centred (%) | minDCF centred (p=0.01) |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        cells = [row["condition"], str(row["targets"]), str(row["nontargets"])]
        cells += [_percent(row["eer_raw"]), _percent(row["eer"])]
        cells.append("n/a" if row["min_dcf"] is None else f"{row['min_dcf']:.3f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    """Command line: ``python -m camsat_lobes.mfcc_baseline --data-folder ROOT``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    dict
        The report.

    Example
    -------
    >>> main(["--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    SystemExit: 0
    """
    parser = argparse.ArgumentParser(
        prog="python -m camsat_lobes.mfcc_baseline",
        description="MFCC mean+std baseline: EER overall, same-session and cross-session.",
    )
    parser.add_argument("--data-folder", required=True, help="corpus root (VoxCeleb layout)")
    parser.add_argument(
        "--save-folder",
        help="where manifests and the report go (default: results/mfcc_baseline/<corpus name>)",
    )
    parser.add_argument("--trial-file", help="trial list (default: <data-folder>/trials.txt)")
    parser.add_argument("--n-mfcc", type=int, default=24)
    parser.add_argument("--num-workers", type=int, default=0)
    args = parser.parse_args(argv)
    save_folder = args.save_folder or Path("results", "mfcc_baseline", Path(args.data_folder).name)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    report = separability_report(
        args.data_folder,
        save_folder,
        trial_file=args.trial_file,
        n_mfcc=args.n_mfcc,
        num_workers=args.num_workers,
    )
    print(format_report(report))
    print(f"\nWritten: {report['files']['json']}, {report['files']['markdown']}")
    return report


def mfcc_embeddings(rows, n_mfcc=24, description="Embedding utterances"):
    """Embed manifest rows with :class:`MfccStatistics`, one by one, on one thread.

    Many small operations: more threads only contend.

    Arguments
    ---------
    rows : list of dict
        Manifest rows with ``wav``, ``start`` and ``stop``.
    n_mfcc : int
        Number of cepstral coefficients.
    description : str
        Label of the progress bar.

    Returns
    -------
    numpy.ndarray
        ``(len(rows), 2 * n_mfcc)`` float64 embeddings.

    Example
    -------
    >>> import tempfile, soundfile
    >>> path = tempfile.mkdtemp() + "/a.wav"
    >>> soundfile.write(path, np.random.default_rng(0).normal(size=16000) * 0.1, 16000)
    >>> mfcc_embeddings([{"wav": path, "start": 0, "stop": 16000}], n_mfcc=13).shape
    (1, 26)
    """
    embed = MfccStatistics(n_mfcc=n_mfcc)
    embeddings, threads = [], torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for row in tqdm(rows, desc=description, unit=" utts"):
            audio = {"file": row["wav"], "start": int(row["start"]), "stop": int(row["stop"])}
            embeddings.append(embed(read_audio(audio)).numpy())
    finally:
        torch.set_num_threads(threads)
    return np.stack(embeddings).astype(np.float64)


def _condition_row(condition, raw, scores, labels):
    """Return the table row of one trial condition: counts, raw and normalised EER, minDCF."""
    row = {
        "condition": condition,
        "targets": int(labels.sum()),
        "nontargets": int((labels == 0).sum()),
    }
    if row["targets"] == 0 or row["nontargets"] == 0:
        return row | {"eer_raw": None, "eer": None, "min_dcf": None}
    return row | {
        "eer_raw": compute_eer(raw, labels),
        "eer": compute_eer(scores, labels),
        "min_dcf": compute_min_dcf(scores, labels, p_target=0.01),
    }


def _read_csv(path):
    """Return the rows of a CSV file as dicts."""
    with open(path, newline="", encoding="utf-8") as stream:
        return list(csv.DictReader(stream))


def _percent(value):
    """Format a rate as a percentage, ``n/a`` for None."""
    return "n/a" if value is None else f"{100 * value:.2f}"


if __name__ == "__main__":
    main()
