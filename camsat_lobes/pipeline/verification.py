"""The verify stage: every system scores every trial list, with intervals, and is exported.

The scoring protocol, the same for every system: cosine scores after subtracting the
mean embedding of the *training* utterances, embedded by the network that embeds the
test utterances (optionally adaptive s-norm with those training embeddings as the
cohort). No statistic of a test utterance enters a score. Intervals come from a
bootstrap over the test speakers, paired across the systems of a round.

Each network is exported as a model SpeechBrain's interface loads, with its decision
threshold chosen on training utterances only (see :func:`training_threshold`).

Authors
 * camsat contributors 2026
"""

import itertools
import json
from functools import partial

import numpy as np
from speechbrain.utils.distributed import run_on_main

from camsat_lobes.bootstrap import bootstrap_intervals
from camsat_lobes.clustering import read_pseudo_labels
from camsat_lobes.extract import extract_embeddings
from camsat_lobes.files import write_text
from camsat_lobes.inference import export_model
from camsat_lobes.scoring import CosineBackend
from camsat_lobes.verification import compute_eer, compute_min_dcf, eer_threshold

from .encoding import stage1_encoder
from .layout import STAGE1
from .speakers import speaker_brain
from .trials import read_trial_csv, trial_list_files, trial_speakers

__all__ = ["intervals", "paired_bootstrap", "protocol", "saved_scores", "verify"]

#: Where, in the resolved hyperparameters, the modules of an exported model are built.
EXPORTED_NODES = {
    STAGE1: {
        "compute_features": "compute_features",
        "mean_var_norm": "mean_var_norm",
        "embedding_model": "stage1.network.embedding_model",
    },
    "speaker": {
        "compute_features": "compute_features",
        "mean_var_norm": "mean_var_norm",
        "embedding_model": "speaker_network.embedding_model",
    },
}
#: Trials of each kind drawn among training utterances to set an exported threshold.
THRESHOLD_TRIALS = 5000


def trial_lists(run, full_trials=None):
    """Return the trial lists the run scores, name -> ``(label, enrol, test)`` rows.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run (its prepared data).
    full_trials : bool, optional
        Also every pair of test utterances (``all_pairs``); by default as the run scored.

    Returns
    -------
    dict
        List name -> rows, the corpus's own list first.
    """
    if full_trials is None:
        full_trials = (run.layout.data / "trials_all_pairs.csv").exists()
    files = trial_list_files(run.layout.data, full_trials)
    return {name: read_trial_csv(path) for name, path in files.items()}


def verify(
    run,
    round_index,
    score_norm=None,
    cohort_top_k=100,
    p_targets=(0.01,),
    full_trials=True,
    n_resamples=1000,
    batch_size=16,
):
    """Score every trial list with the round's input embeddings and every system's network.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    score_norm : str, optional
        ``as-norm`` for adaptive s-norm with the training embeddings as cohort.
    cohort_top_k : int
        Cohort scores kept per side by AS-norm.
    p_targets : sequence of float
        Target priors of minDCF: the first is ``minDCF``, the others ``minDCF@<p>``
        (the field reports 0.01 and 0.05).
    full_trials : bool
        Also score every pair of test utterances (``all_pairs``).
    n_resamples : int
        Bootstrap resamples of the test speakers for the intervals.
    batch_size : int
        Utterances embedded per batch (the result does not depend on it).
    """
    lists = trial_lists(run, full_trials)
    p_targets = list(p_targets)
    scoring = dict(score_norm=score_norm, cohort_top_k=cohort_top_k, p_targets=p_targets)
    for system in run.scored_systems(round_index):
        run.once(
            run.record("verify", round_index, system),
            lambda system=system: _verify_system(
                run, round_index, system, lists, scoring, batch_size
            ),
        )
    run_on_main(intervals, args=[run, round_index, lists, n_resamples, p_targets])


def _verify_system(run, round_index, system, lists, scoring, batch_size):
    """Score every trial list with one system and export its model."""
    folder = run.layout.system(round_index, system)
    train_folder, test_folder, modules = _system_embeddings(run, round_index, system, batch_size)
    train_embeddings = np.load(train_folder / "embeddings.npy")
    backend = CosineBackend.from_training(
        train_embeddings, score_norm=scoring["score_norm"], top_k=scoring["cohort_top_k"]
    )
    test_ids = (test_folder / "ids.txt").read_text().split()
    test_embeddings = np.load(test_folder / "embeddings.npy")
    result = {"protocol": protocol(scoring["score_norm"], scoring["cohort_top_k"])}
    for name, trials in lists.items():
        scores = backend.score_trials(test_embeddings, test_ids, [(e, t) for _, e, t in trials])
        labels = np.array([label for label, _, _ in trials])
        np.savetxt(folder / f"scores_{name}.txt", scores, fmt="%.7f")
        main_p, *other_ps = scoring["p_targets"]
        result[name] = {
            "EER": 100 * compute_eer(scores, labels),
            "minDCF": compute_min_dcf(scores, labels, p_target=main_p),
            **{f"minDCF@{p:g}": compute_min_dcf(scores, labels, p_target=p) for p in other_ps},
            "threshold": eer_threshold(scores, labels),
            "trials": len(labels),
            "target_trials": int(labels.sum()),
        }
    own = next(iter(lists))
    result.update(EER=result[own]["EER"], minDCF=result[own]["minDCF"])
    if modules is not None:
        train_ids = (train_folder / "ids.txt").read_text().split()
        threshold, source = training_threshold(
            backend, train_embeddings, train_ids, _threshold_labels(run, round_index, system)
        )
        kind = STAGE1 if system == STAGE1 else "speaker"
        nodes = {name: run.recipe.text(path) for name, path in EXPORTED_NODES[kind].items()}
        export_model(
            folder / "inference",
            nodes,
            modules,
            backend,
            threshold=threshold,
            threshold_source=source,
        )
        result["exported_threshold"] = {"value": threshold, "source": source}
    write_text(folder / "verification.json", json.dumps(result, indent=2))


def _system_embeddings(run, round_index, system, batch_size):
    """Training and test embeddings of a system, by the network that scores it.

    Returns the two extraction folders and the modules of an exported model (None
    when the network cannot be exported, e.g. an i-vector stage 1).
    """
    if system == STAGE1:
        source = run.layout.embeddings(round_index)
        modules = None
        encoder = stage1_encoder(run) if round_index == 1 else None
        if hasattr(encoder, "inference_model"):
            modules = {
                "compute_features": encoder.compute_features,
                "mean_var_norm": encoder.mean_var_norm,
                "embedding_model": encoder.inference_model,
            }
        return source / "train", source / "test", modules
    brain = speaker_brain(run, round_index, system)
    folder = run.layout.system(round_index, system)
    for manifest, name in (("train_utts", "train_embeddings"), ("test", "test_embeddings")):
        extract_embeddings(
            brain, run.layout.manifest(manifest), folder / name, n_views=0, batch_size=batch_size
        )
    modules = {
        k: brain.modules[k] for k in ("compute_features", "mean_var_norm", "embedding_model")
    }
    return folder / "train_embeddings", folder / "test_embeddings", modules


def _threshold_labels(run, round_index, system):
    """Return the labels that set a system's exported threshold: its own pseudo-labels.

    The stage-1 embeddings have none; they take the main system's.
    """
    owner = run.hparams["main_system"] if system == STAGE1 else system
    path = run.layout.system(round_index, owner) / "pseudo_labels.csv"
    if not path.exists():
        return None
    ids, labels = read_pseudo_labels(path)
    return dict(zip(ids, labels.tolist()))


def training_threshold(backend, embeddings, ids, labels, n_trials=THRESHOLD_TRIALS, seed=0):
    """Choose a decision threshold without the test trials.

    The threshold is the equal-error point of trials among *training* utterances, a
    target trial pairing two utterances of one pseudo-class, scored like any trial.
    These speakers were seen in training, so the threshold is optimistic for new
    voices; it never reads a test utterance.

    Arguments
    ---------
    backend : camsat_lobes.scoring.CosineBackend
        The system's scoring backend.
    embeddings : numpy.ndarray
        (N, D) training embeddings.
    ids : list of str
        Their utterance IDs.
    labels : dict or None
        Utterance ID -> pseudo-class (-1: left out); None when the run has no labels.
    n_trials : int
        Target trials and non-target trials drawn (at most).
    seed : int
        Seed of the draw.

    Returns
    -------
    tuple
        ``(threshold, source)``: the value (0.0 without labels) and a sentence saying
        how it was chosen.

    Example
    -------
    >>> rng = np.random.default_rng(0)
    >>> centres = rng.normal(size=(3, 8))
    >>> x = np.repeat(centres, 10, axis=0) + 0.1 * rng.normal(size=(30, 8))
    >>> ids = [f"u{i}" for i in range(30)]
    >>> labels = {u: i // 10 for i, u in enumerate(ids)}
    >>> threshold, source = training_threshold(CosineBackend.from_training(x), x, ids, labels)
    >>> 0.0 < threshold < 1.0, source.split(",")[0]
    (True, 'EER point of 135 target and 300 non-target trials among training utterances')
    """
    if not labels:
        return 0.0, "no labels in this run to choose a threshold on training utterances: 0.0"
    classes = np.array([labels.get(i, -1) for i in ids])
    rows = np.flatnonzero(classes >= 0)
    rng = np.random.default_rng(seed)
    pairs = np.array(list(itertools.combinations(rows, 2)))
    same = classes[pairs[:, 0]] == classes[pairs[:, 1]]
    chosen = []
    for mask in (same, ~same):
        candidates = pairs[mask]
        keep = rng.permutation(len(candidates))[:n_trials]
        chosen.append(candidates[np.sort(keep)])
    targets, nontargets = chosen
    trials = np.concatenate([targets, nontargets])
    scores = backend.score(embeddings[trials[:, 0]], embeddings[trials[:, 1]])
    trial_labels = np.r_[np.ones(len(targets)), np.zeros(len(nontargets))]
    threshold = eer_threshold(scores, trial_labels)
    source = (
        f"EER point of {len(targets)} target and {len(nontargets)} non-target trials among "
        "training utterances, a target pairing two utterances of one class of this "
        "system's labels (the test trials were not used)"
    )
    return threshold, source


def protocol(score_norm=None, cohort_top_k=100):
    """Return one sentence stating how every score of a run is computed.

    Arguments
    ---------
    score_norm : str, optional
        ``as-norm`` or None.
    cohort_top_k : int
        Cohort scores kept per side by AS-norm.

    Returns
    -------
    str
        The scoring protocol.

    Example
    -------
    >>> protocol("as-norm", 300).split("; ")[1]
    'adaptive s-norm (top 300) with those training embeddings as the cohort'
    """
    text = (
        "cosine after subtracting the mean embedding of the training utterances, "
        "embedded by the network that embeds the test utterances"
    )
    if score_norm == "as-norm":
        text += (
            f"; adaptive s-norm (top {cohort_top_k}) with those training embeddings as the cohort"
        )
    return text + "; no statistic of the test utterances enters a score"


def intervals(run, round_index, lists, n_resamples=1000, p_targets=(0.01,)):
    """Bootstrap intervals over test speakers, paired across the systems of a round.

    Every system the round folder holds a score of is included (a study that runs its
    systems in several passes gets all of them).

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    lists : dict
        Trial lists, name -> rows (see :func:`trial_lists`).
    n_resamples : int
        Bootstrap resamples of the test speakers.
    p_targets : sequence of float
        Target priors of minDCF (see :func:`verify`).
    """
    folder = run.layout.systems(round_index)
    verified = sorted(
        p.parent.parent.name
        for p in folder.glob("*/verify/done.json")
        if ".stale" not in p.parent.parent.name
    )
    systems = [s for s in run.scored_systems(round_index) if s in verified]
    systems += [s for s in verified if s not in systems]  # e.g. a study's earlier passes
    if round_index == 1 and not run.is_main:
        systems = [STAGE1, *systems]  # the main seed's stage-1 scores are this seed's too
    reference = run.hparams["main_system"]
    pairing = dict(
        reference=reference if reference in systems else None,
        also_paired_with=[STAGE1],  # what the labels added to stage 1
    )
    main_p, *other_ps = p_targets
    results = {}
    for name, trials in lists.items():
        bootstrap = partial(paired_bootstrap, run, round_index, systems, name, trials, n_resamples)
        results[name] = bootstrap(p_target=main_p, **pairing)
        for p in other_ps:  # minDCF at another operating point, on the same resamples
            _add_min_dcf(results[name], bootstrap(p_target=p, **pairing), f"minDCF@{p:g}")
    write_text(run.layout.intervals(round_index), json.dumps(results, indent=2))


def _add_min_dcf(result, other, name):
    """Copy the minDCF entries of another bootstrap result into ``result`` as ``name``."""
    for key, entry in other.items():
        if isinstance(entry, dict) and key in result:
            for system, values in entry.items():
                if isinstance(values, dict):  # a paired difference of one system
                    result[key][system].update(_renamed(values, name))
            if "minDCF" in entry:  # one system's own values
                result[key].update(_renamed(entry, name))


def _renamed(values, name):
    """Return the ``minDCF*`` keys of a bootstrap entry, renamed to ``name*``."""
    return {name + k[len("minDCF") :]: v for k, v in values.items() if k.startswith("minDCF")}


def paired_bootstrap(
    run, round_index, systems, list_name, trials, n_resamples=1000, p_target=0.01, **pairing
):
    """Bootstrap the saved scores of ``systems`` on one trial list over the test speakers.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    systems : list of str
        The systems compared.
    list_name : str
        The trial list.
    trials : list of tuple
        Its rows.
    n_resamples : int
        Bootstrap resamples of the test speakers.
    p_target : float
        Target prior of minDCF.
    **pairing
        ``reference`` and ``also_paired_with``, see
        :func:`camsat_lobes.bootstrap.bootstrap_intervals`.

    Returns
    -------
    dict
        The intervals and paired differences.
    """
    return bootstrap_intervals(
        saved_scores(run, round_index, systems, list_name),
        *trial_speakers(run.layout.data, trials),
        n_resamples=n_resamples,
        p_target=p_target,
        seed=run.hparams["seed"],
        **pairing,
    )


def saved_scores(run, round_index, systems, list_name):
    """Return system name -> its saved scores on one trial list.

    Arguments
    ---------
    run : camsat_lobes.pipeline.run.Run
        The run.
    round_index : int
        The round.
    systems : list of str
        The systems.
    list_name : str
        The trial list.

    Returns
    -------
    dict
        Name -> (N,) scores.
    """
    return {
        s: np.loadtxt(run.layout.scores(round_index, s) / f"scores_{list_name}.txt")
        for s in systems
    }
