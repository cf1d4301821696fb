"""The study grids of ``analysis.py``: which networks they train and how results are tabled."""

import json
import sys
from pathlib import Path

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
