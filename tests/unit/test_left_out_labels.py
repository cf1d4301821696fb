"""Label -1 means "left out": kept in the file, scored and trained on nowhere."""

import numpy as np
import pytest
import soundfile
from sklearn import metrics as skm

from camsat_lobes.clustering import (
    ClusteringResult,
    clustering_metrics,
    read_pseudo_labels,
    write_pseudo_labels,
)
from camsat_lobes.speaker_training import pseudo_label_datasets


def test_left_out_rows_round_trip_through_the_file(tmp_path):
    ids = ["u1", "u2", "u3", "u4"]
    path = write_pseudo_labels(tmp_path / "p.csv", ids, np.array([2, -1, 0, -1]))
    read_ids, labels = read_pseudo_labels(path)
    assert read_ids == ids  # every utterance is still listed
    assert labels.tolist() == [2, -1, 0, -1]


def test_labels_below_minus_one_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="cluster -2 .* -1 marks an utterance left out"):
        write_pseudo_labels(tmp_path / "p.csv", ["a", "b"], [0, -2])
    (tmp_path / "q.csv").write_text("ID,cluster\na,0\nb,-3\n")
    with pytest.raises(ValueError, match="cluster -3"):
        read_pseudo_labels(tmp_path / "q.csv")


def test_result_counts_kept_clusters_only():
    assert ClusteringResult(labels=np.array([0, -1, 2, 2, -1])).n_clusters == 2
    with pytest.raises(ValueError, match="labels hold -2"):
        ClusteringResult(labels=np.array([0, -2]))


@pytest.fixture
def segments(tmp_path):
    """Two segments for each of 6 utterances u0..u5, all cut from one silent file."""
    wav = tmp_path / "a.wav"
    soundfile.write(wav, np.zeros(32000, dtype="float32"), 16000)
    rows = ["ID,duration,wav,start,stop,spk_id,utt_id"]
    for u in range(6):
        for start in (0, 16000):
            rows.append(f"u{u}_{start},1.0,{wav},{start},{start + 16000},s{u % 2},u{u}")
    path = tmp_path / "segments.csv"
    path.write_text("\n".join(rows) + "\n")
    return path


def utterances_of(dataset):
    return {item["id"].split("_")[0] for item in dataset}


def test_datasets_leave_out_the_segments_of_left_out_utterances(tmp_path, segments):
    labels = write_pseudo_labels(
        tmp_path / "labels.csv", [f"u{u}" for u in range(6)], [0, -1, 1, 0, -1, 2]
    )
    train, valid, n_classes = pseudo_label_datasets(segments, labels, valid_fraction=0.25)
    assert n_classes == 3  # -1 is no class
    seen = utterances_of(train) | utterances_of(valid)
    assert seen == {"u0", "u2", "u3", "u5"}
    assert not utterances_of(train) & utterances_of(valid)
    assert len(valid) == 2 and len(train) == 6  # 1 of the 4 kept utterances held out
    assert all(item["label"].item() >= 0 for item in list(train) + list(valid))


def test_datasets_are_unchanged_when_nothing_is_left_out(tmp_path, segments):
    ids = [f"u{u}" for u in range(6)]
    labels = write_pseudo_labels(tmp_path / "labels.csv", ids, [0, 1, 1, 0, 2, 2])
    train, valid, n_classes = pseudo_label_datasets(segments, labels, valid_fraction=0.34)
    assert n_classes == 3
    assert len(train) + len(valid) == 12 and len(valid) == 4


def test_datasets_still_require_a_row_per_utterance(tmp_path, segments):
    labels = write_pseudo_labels(tmp_path / "labels.csv", ["u0", "u1"], [0, -1])
    with pytest.raises(ValueError, match="4 utterances .* have no pseudo-label"):
        pseudo_label_datasets(segments, labels)


def test_datasets_refuse_negative_clusters_other_than_minus_one(tmp_path, segments):
    (tmp_path / "labels.csv").write_text("ID,cluster\n" + "".join(f"u{u},{-u}\n" for u in range(6)))
    with pytest.raises(ValueError, match="utterance u2 has cluster -2"):
        pseudo_label_datasets(segments, tmp_path / "labels.csv")


def test_datasets_refuse_a_file_where_everything_is_left_out(tmp_path, segments):
    labels = write_pseudo_labels(tmp_path / "labels.csv", [f"u{u}" for u in range(6)], [-1] * 6)
    with pytest.raises(ValueError, match="every utterance .* has cluster -1"):
        pseudo_label_datasets(segments, labels)


def clustered_points(seed=0):
    rng = np.random.default_rng(seed)
    true = np.repeat(np.arange(4), 25)
    x = rng.normal(size=(4, 8))[true] + 0.6 * rng.normal(size=(100, 8))
    pred = true.copy()
    pred[rng.choice(100, 20, replace=False)] = rng.integers(0, 5, 20)  # errors, a 5th cluster
    return pred, true, x.astype(np.float32)


def test_metrics_without_left_out_points_are_the_usual_ones():
    pred, true, x = clustered_points()
    metrics = clustering_metrics(pred, true, embeddings=x)
    assert metrics["kept_fraction"] == 1.0 and metrics["n_points"] == 100
    assert metrics["n_clusters"] == 5
    assert metrics["nmi"] == pytest.approx(skm.normalized_mutual_info_score(true, pred))
    assert metrics["ami"] == pytest.approx(skm.adjusted_mutual_info_score(true, pred))
    assert metrics["ari"] == pytest.approx(skm.adjusted_rand_score(true, pred))
    assert metrics["fmi"] == pytest.approx(skm.fowlkes_mallows_score(true, pred))
    assert metrics["homogeneity"] == pytest.approx(skm.homogeneity_score(true, pred))
    assert metrics["silhouette"] == pytest.approx(skm.silhouette_score(x, pred), rel=1e-5)
    assert metrics["calinski_harabasz"] == pytest.approx(skm.calinski_harabasz_score(x, pred))
    assert metrics["davies_bouldin"] == pytest.approx(skm.davies_bouldin_score(x, pred))


def test_metrics_describe_the_kept_points():
    pred, true, x = clustered_points(seed=1)
    left_out = np.zeros(100, dtype=bool)
    left_out[::5] = True
    with_gaps = np.where(left_out, -1, pred)
    metrics = clustering_metrics(with_gaps, true, embeddings=x)
    kept = clustering_metrics(pred[~left_out], true[~left_out], embeddings=x[~left_out])
    assert metrics["kept_fraction"] == 0.8
    assert metrics["n_points"] == 100 and kept["n_points"] == 80
    for key in set(kept) - {"n_points", "kept_fraction"}:
        assert metrics[key] == kept[key], key


def test_metrics_refuse_a_clustering_that_left_everything_out():
    with pytest.raises(ValueError, match="all 3 points of pred are -1"):
        clustering_metrics([-1, -1, -1], [0, 1, 1])
