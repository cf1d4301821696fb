"""Compare the stage-1 encoders on a corpus: verification EER, clustering NMI, training time.

``python -m camsat_lobes.encoders.compare --data-folder ROOT`` prepares the corpus,
builds the offline augmentation sets, trains each requested encoder from its
``hparams/encoders`` fragment (or loads it when already trained), embeds the training
and test utterances and prints one table row per encoder next to the MFCC mean+std
baseline:

- cosine EER on the trial list, raw and after subtracting the mean training embedding,
  and the latter restricted to cross-session target trials (plus minDCF);
- NMI of spherical k-means (k = number of training speakers) on the training
  embeddings, against the speakers and against the recording sessions (a high
  session NMI means the embeddings cluster by channel);
- training time (wall clock, recorded when the encoder was trained).

Speaker labels are used for scoring only. Results go to ``encoder_comparison.json``
and ``.md`` in the save folder.

Authors
 * camsat contributors 2026
"""

import argparse
import csv
import hashlib
import json
import logging
import pathlib
import time

import numpy as np
import torch
import yaml
from hyperpyyaml import load_hyperpyyaml

from camsat_lobes.augment_sets import build_augmentation_sets
from camsat_lobes.clustering.baselines import KMeansClusterer
from camsat_lobes.clustering.metrics import clustering_metrics
from camsat_lobes.extract import extract_embeddings, load_embeddings
from camsat_lobes.mfcc_baseline import mfcc_embeddings
from camsat_lobes.prepare import prepare_voxceleb
from camsat_lobes.verification import compute_eer, compute_min_dcf, cosine_score

logger = logging.getLogger(__name__)

FRAGMENTS = {
    "dino": "dino_ecapa.yaml",
    "simclr": "simclr_ecapa.yaml",
    "ivector": "ivector.yaml",
    "pretrained": "pretrained.yaml",
}
DEFAULT_HPARAMS = pathlib.Path(__file__).resolve().parents[2] / "hparams" / "encoders"
COLUMNS = (
    ("encoder", "encoder", "{}"),
    ("dim", "dim", "{}"),
    ("train_seconds", "training time (s)", "{:.0f}"),
    ("eer_raw", "EER raw cosine (%)", "{:.2f}"),
    ("eer", "EER centred (%)", "{:.2f}"),
    ("eer_cross_session", "EER centred, cross-session targets (%)", "{:.2f}"),
    ("min_dcf", "minDCF centred (p=0.01)", "{:.3f}"),
    ("nmi_speakers", "k-means NMI speakers", "{:.3f}"),
    ("nmi_sessions", "k-means NMI sessions", "{:.3f}"),
)


def evaluate_embeddings(train, test, test_rows, trial_rows, train_rows, seed=0):
    """Verification and clustering scores of one set of embeddings.

    Arguments
    ---------
    train : numpy.ndarray
        Training embeddings, ``N_train x D`` (their mean centres the scores).
    test : numpy.ndarray
        Test embeddings in the order of ``test_rows``.
    test_rows : list of dict
        Rows of ``test.csv`` (``ID``, ``session``).
    trial_rows : list of dict
        Rows of ``trials.csv`` (``label``, ``enrol_id``, ``test_id``).
    train_rows : list of dict
        Rows of ``train_utts.csv`` (``spk_id``, ``session``), in the order of ``train``.
    seed : int
        Seed of k-means.

    Returns
    -------
    dict
        ``eer_raw``, ``eer``, ``eer_cross_session``, ``min_dcf`` (percent for EERs),
        ``nmi_speakers``, ``nmi_sessions``.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 8))
    >>> train = np.repeat(centres, 4, axis=0) + 0.1 * rng.normal(size=(12, 8))
    >>> train_rows = [{"spk_id": f"s{i // 4}", "session": f"{i % 2}"} for i in range(12)]
    >>> test_rows = [{"ID": f"t{i}", "session": f"{i % 2}"} for i in range(6)]
    >>> test = np.repeat(centres[:2], 3, axis=0) + 0.1 * rng.normal(size=(6, 8))
    >>> trials = [{"label": int(a // 3 == b // 3), "enrol_id": f"t{a}", "test_id": f"t{b}"}
    ...           for a in range(6) for b in range(a + 1, 6)]
    >>> scores = evaluate_embeddings(train, test, test_rows, trials, train_rows)
    >>> scores["eer"], round(scores["nmi_speakers"], 2)
    (0.0, 1.0)
    """
    index = {row["ID"]: i for i, row in enumerate(test_rows)}
    enrol = np.array([index[row["enrol_id"]] for row in trial_rows])
    probe = np.array([index[row["test_id"]] for row in trial_rows])
    labels = np.array([int(row["label"]) for row in trial_rows])
    mean = train.mean(axis=0)
    raw = cosine_score(test[enrol], test[probe])
    centred = cosine_score(test[enrol], test[probe], mean=mean)
    sessions = np.array([row["session"] for row in test_rows])
    cross = (labels == 0) | (sessions[enrol] != sessions[probe])
    speakers = np.array([row["spk_id"] for row in train_rows])
    recordings = np.array([f"{row['spk_id']}/{row['session']}" for row in train_rows])
    n_speakers = len(set(speakers.tolist()))
    clusters = (
        KMeansClusterer(n_speakers, seed=seed, n_redo=5)
        .fit((train - mean).astype(np.float32))
        .labels
    )
    return {
        "eer_raw": 100 * compute_eer(raw, labels),
        "eer": 100 * compute_eer(centred, labels),
        "eer_cross_session": 100 * compute_eer(centred[cross], labels[cross]),
        "min_dcf": compute_min_dcf(centred, labels, p_target=0.01),
        "nmi_speakers": clustering_metrics(clusters, speakers)["nmi"],
        "nmi_sessions": clustering_metrics(clusters, recordings)["nmi"],
    }


def format_table(rows):
    """Markdown table of comparison rows (missing values shown as ``n/a``).

    Arguments
    ---------
    rows : list of dict
        One dict per encoder with the keys of ``COLUMNS``.

    Returns
    -------
    str
        The table.

    Example
    -------
    >>> print(format_table([{"encoder": "mfcc", "dim": 48, "eer": 31.25}]).splitlines()[2])
    | mfcc | 48 | n/a | n/a | 31.25 | n/a | n/a | n/a | n/a |
    """
    lines = [
        "| " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = ["n/a" if row.get(key) is None else fmt.format(row[key]) for key, _, fmt in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def load_encoder(name, hparams_dir=DEFAULT_HPARAMS, overrides=None):
    """Build an encoder from its fragment, with optional overrides.

    Arguments
    ---------
    name : str
        A key of ``FRAGMENTS`` (``dino``, ``simclr``, ``ivector``, ``pretrained``).
    hparams_dir : str or pathlib.Path
        Folder of the fragments.
    overrides : dict, optional
        Top-level keys of the fragment to replace (e.g. ``{"number_of_epochs": 5}``).

    Returns
    -------
    camsat_lobes.encoders.base.Encoder
        The ``encoder`` object of the fragment.

    Example
    -------
    >>> load_encoder("ivector", overrides={"sample_rate": 8000}).sample_rate
    8000
    """
    if name not in FRAGMENTS:
        raise ValueError(f"Unknown encoder {name!r}; choose among {sorted(FRAGMENTS)}.")
    path = pathlib.Path(hparams_dir) / FRAGMENTS[name]
    with open(path) as handle:
        return load_hyperpyyaml(handle, overrides or {})["encoder"]


def compare_encoders(
    data_folder,
    save_folder,
    encoders=("dino", "simclr", "ivector"),
    overrides=None,
    hparams_dir=DEFAULT_HPARAMS,
    run_opts=None,
    batch_size=16,
    seed=0,
):
    """Train (or load) each encoder and score it next to the MFCC baseline.

    Arguments
    ---------
    data_folder : str or pathlib.Path
        Corpus root in the VoxCeleb layout, with ``trials.txt``.
    save_folder : str or pathlib.Path
        Where manifests, augmentation sets, encoders, embeddings and the report go.
    encoders : sequence of str
        Keys of ``FRAGMENTS``.
    overrides : dict, optional
        ``{encoder name: {fragment key: value}}``; an encoder with overrides is saved
        in its own folder.
    hparams_dir : str or pathlib.Path
        Folder of the fragments.
    run_opts : dict, optional
        SpeechBrain run options for training (``device``, ...).
    batch_size : int
        Utterances per batch when embedding.
    seed : int
        Seed of k-means.

    Returns
    -------
    list of dict
        One row per encoder (MFCC baseline first); see :func:`format_table`.

    Example
    -------
    >>> compare_encoders("corpus", "out", encoders=["dino", "wav2vec"])
    Traceback (most recent call last):
    ...
    ValueError: Unknown encoder(s) ['wav2vec']; choose among [...].
    """
    unknown = sorted(set(encoders) - set(FRAGMENTS))
    if unknown:
        raise ValueError(f"Unknown encoder(s) {unknown}; choose among {sorted(FRAGMENTS)}.")
    save_folder = pathlib.Path(save_folder)
    overrides = overrides or {}
    paths = prepare_voxceleb(data_folder, save_folder / "data")
    train_rows, test_rows, trial_rows = (
        _read_csv(paths[key]) for key in ("train_utts_csv", "test_csv", "trials_csv")
    )
    sets = build_augmentation_sets(
        save_folder / "augment", babble_sources=[row["wav"] for row in train_rows]
    )
    scoring = (test_rows, trial_rows, train_rows)
    mfcc_train = mfcc_embeddings(train_rows, description="MFCC of training utterances")
    mfcc_test = mfcc_embeddings(test_rows, description="MFCC of test utterances")
    # Standardised with the training statistics, as camsat_lobes.mfcc_baseline scores them.
    mean, std = mfcc_train.mean(axis=0), mfcc_train.std(axis=0) + 1e-8
    mfcc_train, mfcc_test = (mfcc_train - mean) / std, (mfcc_test - mean) / std
    rows = [
        {
            "encoder": "MFCC mean+std (standardised)",
            "dim": mfcc_train.shape[1],
            "train_seconds": 0.0,
        }
        | evaluate_embeddings(mfcc_train, mfcc_test, *scoring, seed=seed)
    ]
    for name in encoders:
        changes = overrides.get(name, {})
        tag = name + ("-" + _overrides_tag(changes) if changes else "")
        folder = save_folder / tag
        encoder = load_encoder(name, hparams_dir, changes)
        seconds = _timed_fit(encoder, paths["train_utts_csv"], folder, sets, run_opts)
        for split in ("train", "test"):
            extract_embeddings(
                encoder,
                paths[f"{split}_{'utts_csv' if split == 'train' else 'csv'}"],
                folder / f"embeddings_{split}",
                n_views=0,
                batch_size=batch_size,
            )
        train = np.asarray(load_embeddings(folder / "embeddings_train")[0], dtype=np.float64)
        test = np.asarray(load_embeddings(folder / "embeddings_test")[0], dtype=np.float64)
        label = f"{name} ({', '.join(f'{k}={v}' for k, v in changes.items())})" if changes else name
        rows.append(
            {"encoder": label, "dim": train.shape[1], "train_seconds": seconds}
            | evaluate_embeddings(train, test, *scoring, seed=seed)
        )
        logger.info("%s: %s", label, rows[-1])
    report = {"data_folder": str(data_folder), "overrides": overrides, "rows": rows}
    (save_folder / "encoder_comparison.json").write_text(json.dumps(report, indent=1))
    (save_folder / "encoder_comparison.md").write_text(format_table(rows) + "\n")
    return rows


def main(argv=None):
    """Command line: ``python -m camsat_lobes.encoders.compare --data-folder ROOT``.

    Arguments
    ---------
    argv : list of str, optional
        Arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    list of dict
        The table rows.

    Example
    -------
    >>> main(["--help"])  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    SystemExit: 0
    """
    parser = argparse.ArgumentParser(
        prog="python -m camsat_lobes.encoders.compare",
        description="Stage-1 encoders vs the MFCC baseline: cosine EER, k-means NMI, time.",
    )
    parser.add_argument("--data-folder", required=True, help="corpus root (VoxCeleb layout)")
    parser.add_argument("--save-folder", help="default: results/encoders/<corpus folder name>")
    parser.add_argument(
        "--encoders", nargs="+", default=["dino", "simclr", "ivector"], choices=sorted(FRAGMENTS)
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ENCODER.KEY=VALUE",
        help="override a fragment key, e.g. simclr.number_of_epochs=20 (YAML value)",
    )
    parser.add_argument("--hparams-dir", default=str(DEFAULT_HPARAMS))
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--num-threads", type=int, help="torch threads (1 is fastest on a busy machine)"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        name, _, field = key.partition(".")
        if not field or not value:
            parser.error(f"--set {item!r}: expected ENCODER.KEY=VALUE")
        overrides.setdefault(name, {})[field] = yaml.safe_load(value)
    save_folder = args.save_folder or pathlib.Path(
        "results", "encoders", pathlib.Path(args.data_folder).resolve().name
    )
    torch.manual_seed(args.seed)
    rows = compare_encoders(
        args.data_folder,
        save_folder,
        encoders=args.encoders,
        overrides=overrides,
        hparams_dir=args.hparams_dir,
        run_opts={"device": args.device, "noprogressbar": True},
        seed=args.seed,
    )
    print(format_table(rows))
    print(f"\nWritten: {pathlib.Path(save_folder) / 'encoder_comparison.md'}")
    return rows


def _timed_fit(encoder, manifest, folder, sets, run_opts):
    """Fit; return the training time recorded when the encoder was first trained."""
    record = folder / "fit_seconds.json"
    start = time.time()
    encoder.fit(manifest, folder, augmentation_sets=sets, run_opts=run_opts)
    seconds = time.time() - start
    previous = json.loads(record.read_text()) if record.is_file() else {"seconds": 0.0}
    total = previous["seconds"] + seconds
    folder.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps({"seconds": total}))
    return total


def _overrides_tag(changes):
    """Return 8 hex digits that tell these overrides apart (for the folder name)."""
    return hashlib.sha1(json.dumps(changes, sort_keys=True).encode()).hexdigest()[:8]


def _read_csv(path):
    """Return the rows of a CSV file as dicts."""
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


if __name__ == "__main__":
    main()
