"""The study grids (camsat_lobes.studies): which networks they train and how they are tabled."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hyperpyyaml import load_hyperpyyaml

from camsat_lobes import studies
from camsat_lobes.pipeline import RunLayout
from camsat_lobes.pipeline.clustering import copy_clustering

REPO = Path(__file__).resolve().parents[2]
RECIPE = REPO / "recipes" / "VoxCeleb" / "CAMSAT"
FRAGMENTS = REPO / "hparams"


def load_study(grid):
    with open(RECIPE / "hparams" / "analysis.yaml") as f:
        return load_hyperpyyaml(f, {"grid": grid})


def grid(name, n_speakers=120):
    return studies.grid_systems(load_study(name), n_speakers, 1234, FRAGMENTS)


def test_correlation_grid_has_41_sets_each_clustered_once_and_trained_three_ways():
    systems = grid("correlations")
    sets = {spec["set"] for spec in systems.values()}
    assert len(sets) >= 40 and len(systems) == 3 * len(sets)
    names = list(systems)
    for set_name in sets:
        members = [n for n in names if systems[n]["set"] == set_name]
        owner, *others = members
        assert "labels_from" not in systems[owner]
        assert all(systems[n]["labels_from"] == owner for n in others)
        assert all(names.index(owner) < names.index(n) for n in others)
        assert [systems[n]["speaker_regularisation"] for n in members] == ["none", "imix", "lmix"]
    families = {studies._family(spec["method"]) for spec in systems.values()}
    assert families == {"classical", "deep", "degraded"}
    camsat = systems["camsat_k480_std_mu4_epochs100_aam_none"]["clusterer"]
    assert (camsat.n_clusters, camsat.epochs, camsat.seed) == (480, 100, 1234)
    flipped = systems["flipped_k120_l2_flip_fraction0.5_aam_none"]["clusterer"]
    assert flipped.flip_fraction == 0.5


def test_a_grid_system_names_its_loss_and_regularisation_as_recipe_keys():
    recipe = load_hyperpyyaml(open(RECIPE / "hparams" / "camsat.yaml"))
    for spec in grid("margins").values():
        assert spec["speaker_loss_name"] in recipe["speaker_losses"]
        assert spec["speaker_regularisation"] in recipe["regularisations"]
        assert json.loads(json.dumps(spec["options"], default=str))["loss"] == spec["loss"]


def test_margins_grid_trains_six_losses_on_each_label_set():
    systems = grid("margins")
    losses = {spec["loss"] for spec in systems.values()}
    assert losses == {"aam", "am", "cosface", "ocsoftmax", "adaface", "softmax"}
    assert len(systems) == 3 * 6
    true_labels = [s for s in systems.values() if s["method"] == "flipped"]
    assert {s["clusterer"].flip_fraction for s in true_labels} == {0.0}


def test_the_ratios_grids_share_their_networks():
    """A network two grids list (same set, loss and regularisation) is trained once."""
    ratios = grid("ratios", 100)
    for other in (
        "correlations_ratios",
        "correlations_ratios_40",
        "mixup_ratios",
        "margins_ratios",
    ):
        shared = set(grid(other, 100)) & set(ratios)
        assert shared, other
        for name in shared:
            assert grid(other, 100)[name]["options"] == ratios[name]["options"]
    assert load_study("ratios")["grids"]["ratios"]["chain_overrides"]["minivox_preset"] == (
        "voxceleb2_ratios"
    )


def test_the_40_set_ratios_grid_holds_the_14_set_one():
    small, large = grid("correlations_ratios", 100), grid("correlations_ratios_40", 100)
    assert len(small) == 14 and len(large) == 40
    assert all(large[name]["options"] == spec["options"] for name, spec in small.items())


def test_eer_table_shows_intervals_and_paired_differences():
    base = {"set": "kmeans_k120_l2", "regularisation": "none", "n_clusters": 120, "acc": 0.35}
    base.update(trial_list="all_pairs", EER_low=18.0, EER_high=24.0)
    records = [
        {**base, "loss": "aam", "EER": 21.0},
        {**base, "loss": "softmax", "EER": 17.0, "dEER": -4.0, "dEER_low": -6.5},
    ]
    records[1].update(dEER_high=-1.5, dEER_significant=True)
    table = studies.eer_by_loss(records)
    assert "| aam | softmax |" in table
    row = table.splitlines()[-1]
    assert row.startswith("| kmeans_k120_l2 | 120 | 0.350 | none | 21.0 [18.0, 24.0] |")
    assert "17.0 [18.0, 24.0]; Δ -4.0 [-6.5, -1.5]*" in row


def test_eer_table_says_when_a_network_has_no_interval():
    record = {"set": "kmeans_k120_l2", "regularisation": "none", "n_clusters": 120, "acc": 0.35}
    record.update(trial_list="all_pairs", loss="aam", EER=21.9)
    record.update(EER_low=float("nan"), EER_high=float("nan"))
    row = studies.eer_by_loss([record]).splitlines()[-1]
    assert "21.9 [no interval]" in row and "nan" not in row


def test_shared_labels_need_their_owner_clustered_first(tmp_path):
    source, folder = tmp_path / "owner", tmp_path / "sharer"
    source.mkdir()
    folder.mkdir()
    with pytest.raises(RuntimeError, match="list it before the systems that share its labels"):
        copy_clustering(source, folder)
    (source / "pseudo_labels.csv").write_text("ID,cluster\na,0\n")
    (source / "clustering_metrics.json").write_text(json.dumps({"acc": 1.0}))
    (source / "done.json").write_text("{}")
    copy_clustering(source, folder)
    assert (folder / "pseudo_labels.csv").read_text() == "ID,cluster\na,0\n"
    assert not (folder / "collapsed.json").exists()


def scored_seed(folder, seed, shift, with_am=True, n_speakers=12, drop_last_trial=False):
    """One seed's run folder and records: AAM and softmax (better by ``shift``) on one set."""
    layout = RunLayout(folder)
    layout.data.mkdir(parents=True)
    ids = [f"u{i}" for i in range(2 * n_speakers)]  # two utterances per speaker
    (layout.data / "test.csv").write_text(
        "ID,spk_id\n" + "".join(f"{u},s{i // 2}\n" for i, u in enumerate(ids))
    )
    enrol, test = np.triu_indices(len(ids), k=1)
    trials = [(int(e // 2 == t // 2), ids[e], ids[t]) for e, t in zip(enrol, test)]
    if drop_last_trial:
        trials = trials[:-1]
    for name in ("trials.csv", "trials_all_pairs.csv"):  # the corpus's list, every pair
        (layout.data / name).write_text(
            "label,enrol_id,test_id\n" + "".join(f"{lab},{e},{t}\n" for lab, e, t in trials)
        )
    labels = np.array([label for label, _, _ in trials])
    rng = np.random.default_rng(seed)
    base = rng.normal(size=labels.size) + 1.5 * labels
    scores = {"set_aam": base, "set_softmax": base + shift * labels, "set_am": base}
    for name, values in scores.items():
        layout.system(1, name).mkdir(parents=True)
        np.savetxt(layout.system(1, name) / "scores_all_pairs.txt", values)
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
    return SimpleNamespace(layout=layout, hparams={"seed": seed}), records


def test_table_over_seeds_averages_paired_differences_and_leaves_out_unfinished_networks(
    tmp_path,
):
    runs = {
        1: scored_seed(tmp_path / "1", 1, 2.0),
        2: scored_seed(tmp_path / "2", 2, 1.5, with_am=False),
    }
    rows, table = studies.seed_averaged_table(runs, n_resamples=200)
    assert [row["loss"] for row in rows] == ["aam", "softmax"]  # am did not finish in seed 2
    softmax = rows[1]
    assert softmax["compared_with"] == "set_aam" and softmax["seeds"] == [1, 2]
    assert softmax["EER_mean"] == 20.5 and softmax["EER_std"] == pytest.approx(0.7071, abs=1e-4)
    assert softmax["dEER"] < 0 and softmax["dEER_significant"]
    assert softmax["dEER_low"] <= softmax["dEER"] <= softmax["dEER_high"]
    assert "| pseudo-labels | clusters | regularisation | aam | softmax |" in table
    assert table.splitlines()[-1].startswith("| set | 120 | none | 20.5 ± 0.7 | 20.5 ± 0.7; Δ -")
    assert table.rstrip().endswith("]* |")


def test_table_over_seeds_needs_one_trial_list(tmp_path):
    first = scored_seed(tmp_path / "1", 1, 1.0)
    second = scored_seed(tmp_path / "2", 2, 1.0, drop_last_trial=True)
    with pytest.raises(ValueError, match="seed 2 scored another all_pairs trial list"):
        studies.seed_averaged_table({1: first, 2: second}, n_resamples=50)


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
    studies.write_study(study_records(2), ["none"], tmp_path, n_resamples=0, seed=1)
    assert "2 pseudo-label sets, too few for correlations" in capsys.readouterr().out
    assert (tmp_path / "eer_by_loss.md").exists() and (tmp_path / "records.csv").exists()
    assert not list(tmp_path.glob("*.png")) and not list(tmp_path.glob("coefficients_*"))
    studies.write_study(study_records(4), ["none"], tmp_path, n_resamples=0, seed=1)
    assert len(list(tmp_path.glob("heatmap_*_aam.png"))) == 4
    assert (tmp_path / "coefficients_aam.csv").exists()


def settings(clusterer):
    """A clusterer's plain settings (numbers, strings, flags)."""
    plain = (int, float, str, bool, type(None))
    return {key: value for key, value in vars(clusterer).items() if isinstance(value, plain)}


def test_mixup_grid_is_part_of_the_correlation_grid_with_every_regularisation():
    mixup, correlations = grid("mixup"), grid("correlations")
    assert set(mixup) < set(correlations) and len(mixup) == 24
    for name, spec in mixup.items():
        assert settings(spec["clusterer"]) == settings(correlations[name]["clusterer"])
    regularisations = [spec["regularisation"] for spec in mixup.values()]
    assert {r: regularisations.count(r) for r in regularisations} == {
        "none": 8,
        "imix": 8,
        "lmix": 8,
    }
