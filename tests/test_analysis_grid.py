"""The study grids of ``analysis.py``: which networks they train and how results are tabled."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from hyperpyyaml import load_hyperpyyaml

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "VoxCeleb" / "CAMSAT"
sys.path.insert(0, str(RECIPE))
import analysis  # noqa: E402
from train import Chain  # noqa: E402


def load_study(grid):
    with open(RECIPE / "hparams" / "analysis.yaml") as f:
        return load_hyperpyyaml(f, {"grid": grid})


def test_correlation_grid_has_41_sets_each_clustered_once_and_trained_three_ways():
    study = load_study("correlations")
    systems = analysis.grid_systems(study, n_speakers=120, seed=1234)
    sets = {spec["set"] for spec in systems.values()}
    assert len(sets) >= 40 and len(systems) == 3 * len(sets)
    names = list(systems)
    for set_name in sets:
        members = [n for n in names if systems[n]["set"] == set_name]
        owner, *others = members
        assert "labels_from" not in systems[owner]
        assert all(systems[n]["labels_from"] == owner for n in others)
        assert all(names.index(owner) < names.index(n) for n in others)
        assert [systems[n]["regularisation"] for n in members] == ["none", "imix", "lmix"]
    mixups = {
        spec["regularisation"]: type(spec["speaker_mixup"]).__name__ for spec in systems.values()
    }
    assert mixups == {"none": "NoneType", "imix": "InputMix", "lmix": "LatentMix"}
    families = {analysis._family(spec["method"]) for spec in systems.values()}
    assert families == {"classical", "deep", "degraded"}
    camsat = systems["camsat_k480_std_mu4_epochs100_aam_none"]["clusterer"]
    assert (camsat.n_clusters, camsat.epochs, camsat.seed) == (480, 100, 1234)
    flipped = systems["flipped_k120_l2_flip_fraction0.5_aam_none"]["clusterer"]
    assert flipped.flip_fraction == 0.5


def test_margins_grid_trains_six_losses_on_each_label_set():
    systems = analysis.grid_systems(load_study("margins"), n_speakers=120, seed=1234)
    losses = {spec["loss"] for spec in systems.values()}
    assert losses == {"aam", "am", "cosface", "ocsoftmax", "adaface", "softmax"}
    assert len(systems) == 3 * 6
    true_labels = [s for s in systems.values() if s["method"] == "flipped"]
    assert {s["clusterer"].flip_fraction for s in true_labels} == {0.0}


def test_eer_table_shows_intervals_and_paired_differences():
    base = {"set": "kmeans_k120_l2", "regularisation": "none", "n_clusters": 120, "acc": 0.35}
    base.update(trial_list="all_pairs", EER_low=18.0, EER_high=24.0)
    records = [
        {**base, "loss": "aam", "EER": 21.0},
        {**base, "loss": "softmax", "EER": 17.0, "dEER": -4.0, "dEER_low": -6.5},
    ]
    records[1].update(dEER_high=-1.5, dEER_significant=True)
    table = analysis.eer_by_loss(records)
    assert "| aam | softmax |" in table
    row = table.splitlines()[-1]
    assert row.startswith("| kmeans_k120_l2 | 120 | 0.350 | none | 21.0 [18.0, 24.0] |")
    assert "17.0 [18.0, 24.0]; Δ -4.0 [-6.5, -1.5]*" in row


def test_shared_labels_need_their_owner_clustered_first(tmp_path):
    source, folder = tmp_path / "owner", tmp_path / "sharer"
    source.mkdir()
    folder.mkdir()
    with pytest.raises(RuntimeError, match="list it before the systems that share its labels"):
        Chain.copy_clustering(source, folder)
    (source / "pseudo_labels.csv").write_text("ID,cluster\na,0\n")
    (source / "clustering_metrics.json").write_text(json.dumps({"acc": 1.0}))
    (source / "done.json").write_text("{}")
    Chain.copy_clustering(source, folder)
    assert (folder / "pseudo_labels.csv").read_text() == "ID,cluster\na,0\n"
    assert not (folder / "collapsed.json").exists()


class ScoredSeed:
    """The parts of a finished chain that the table over seeds reads: trials and scores."""

    def __init__(self, scores, n_speakers=12, trials=None):
        enrol, test = np.triu_indices(n_speakers * 2)  # two utterances per speaker
        self.trials = trials or [
            (int(e // 2 == t // 2), f"u{e}", f"u{t}") for e, t in zip(enrol, test)
        ]
        self.scores = scores

    def trial_lists(self):
        return {"all_pairs": self.trials}

    def trial_speakers(self, trials):
        labels = np.array([label for label, _, _ in trials])
        return (
            labels,
            [int(e[1:]) // 2 for _, e, _ in trials],
            [int(t[1:]) // 2 for _, _, t in trials],
        )

    def saved_scores(self, round_index, systems, list_name):
        return {name: self.scores[name] for name in systems}


def seed_run(seed, shift, with_am=True):
    """One seed's chain and records: AAM and softmax (better by ``shift``) on one set."""
    chain = ScoredSeed({})
    labels = np.array([label for label, _, _ in chain.trials])
    rng = np.random.default_rng(seed)
    base = rng.normal(size=labels.size) + 1.5 * labels
    chain.scores = {"set_aam": base, "set_softmax": base + shift * labels, "set_am": base}
    losses = ["aam", "softmax"] + (["am"] if with_am else [])
    records = [
        {
            "system": f"set_{loss}",
            "set": "set",
            "regularisation": "none",
            "loss": loss,
            "trial_list": "all_pairs",
            "n_clusters": 120,
            "EER": 20.0 + seed % 2,
        }
        for loss in losses
    ]
    return chain, records


def test_table_over_seeds_averages_paired_differences_and_leaves_out_unfinished_networks():
    runs = {1: seed_run(1, 2.0), 2: seed_run(2, 1.5, with_am=False)}
    rows, table = analysis.seed_averaged_table(runs, n_resamples=200)
    assert [row["loss"] for row in rows] == ["aam", "softmax"]  # am did not finish in seed 2
    softmax = rows[1]
    assert softmax["compared_with"] == "set_aam" and softmax["seeds"] == [1, 2]
    assert softmax["EER_mean"] == 20.5 and softmax["EER_std"] == pytest.approx(0.7071, abs=1e-4)
    assert softmax["dEER"] < 0 and softmax["dEER_significant"]
    assert softmax["dEER_low"] <= softmax["dEER"] <= softmax["dEER_high"]
    assert "| pseudo-labels | clusters | regularisation | aam | softmax |" in table
    assert table.splitlines()[-1].startswith("| set | 120 | none | 20.5 ± 0.7 | 20.5 ± 0.7; Δ -")
    assert table.rstrip().endswith("]* |")


def test_table_over_seeds_needs_one_trial_list():
    first, second = seed_run(1, 1.0), seed_run(2, 1.0)
    second[0].trials = second[0].trials[:-1]
    with pytest.raises(ValueError, match="seed 2 scored another all_pairs trial list"):
        analysis.seed_averaged_table({1: first, 2: second}, n_resamples=50)


def study_records(n_sets, loss="aam"):
    """Finished networks of ``n_sets`` k-means sets: clustering metrics and an EER each."""
    return [
        {
            "set": f"kmeans_k{k}_l2",
            "system": f"kmeans_k{k}_l2_{loss}_none",
            "loss": loss,
            "regularisation": "none",
            "family": "classical",
            "embedding_norm": "l2",
            "method": "kmeans",
            "trial_list": "all_pairs",
            "n_clusters": k,
            "acc": 0.2 + 0.01 * i,
            "nmi": 0.6 + 0.02 * i,
            "EER": 25.0 - i,
            "EER_low": 20.0 - i,
            "EER_high": 30.0 - i,
            "minDCF": 0.9,
        }
        for i, k in enumerate(range(60, 60 + 30 * n_sets, 30))
    ]


def test_study_of_too_few_sets_writes_the_eer_table_but_no_heatmaps(tmp_path, capsys):
    analysis.write_study(study_records(2), ["none"], tmp_path, n_resamples=0, seed=1)
    assert "2 pseudo-label sets, too few for correlations" in capsys.readouterr().out
    assert (tmp_path / "eer_by_loss.md").exists() and (tmp_path / "records.csv").exists()
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("coefficients_*"))
    analysis.write_study(study_records(4), ["none"], tmp_path, n_resamples=0, seed=1)
    assert len(list(tmp_path.glob("heatmap_*_aam.png"))) == 4
    assert (tmp_path / "coefficients_aam.csv").exists()


def settings(clusterer):
    """A clusterer's plain settings (numbers, strings, flags)."""
    plain = (int, float, str, bool, type(None))
    return {key: value for key, value in vars(clusterer).items() if isinstance(value, plain)}


def test_mixup_grid_is_part_of_the_correlation_grid_with_every_regularisation():
    mixup = analysis.grid_systems(load_study("mixup"), n_speakers=120, seed=1234)
    correlations = analysis.grid_systems(load_study("correlations"), n_speakers=120, seed=1234)
    assert set(mixup) < set(correlations) and len(mixup) == 24
    for name, spec in mixup.items():
        assert settings(spec["clusterer"]) == settings(correlations[name]["clusterer"])
    regularisations = [spec["regularisation"] for spec in mixup.values()]
    assert {r: regularisations.count(r) for r in regularisations} == {
        "none": 8,
        "imix": 8,
        "lmix": 8,
    }
