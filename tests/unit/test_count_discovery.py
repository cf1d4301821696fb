"""bench/count_discovery.py: the synthetic speakers have the spreads asked for; a tiny grid runs."""

import csv
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import count_discovery  # noqa: E402
from clustering import make_embeddings  # noqa: E402


def test_speakers_are_balanced_over_speakers_and_sessions():
    x, views, speakers, sessions = count_discovery.draw_speakers(
        dim=16, speakers=5, utterances=9, sessions=3, views=2
    )
    assert x.shape == (45, 16) and views.shape == (45, 2, 16)
    assert np.bincount(speakers).tolist() == [9] * 5
    for speaker in range(5):
        assert np.bincount(sessions[speakers == speaker]).tolist() == [3, 3, 3]
    assert np.allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    assert np.allclose(np.linalg.norm(views, axis=2), 1.0, atol=1e-5)


def test_embeddings_do_not_depend_on_the_view_ratio():
    tight = count_discovery.draw_speakers(dim=16, speakers=3, utterances=4, view_ratio=0.1)
    wide = count_discovery.draw_speakers(dim=16, speakers=3, utterances=4, view_ratio=2.0)
    assert np.array_equal(tight[0], wide[0])
    assert not np.array_equal(tight[1], wide[1])


@pytest.mark.parametrize(
    ("session", "utterance", "view_ratio"), [(0.3, 0.2, 0.5), (0.1, 0.3, 0.2), (0.2, 0.2, 1.0)]
)
def test_the_requested_spreads_come_out_as_asked(session, utterance, view_ratio):
    """Spreads well below the unit sphere's radius keep their ratios through the normalisation."""
    x, views, speakers, sessions = count_discovery.draw_speakers(
        dim=512,
        speakers=12,
        utterances=24,
        sessions=4,
        session_spread=session,
        utterance_spread=utterance,
        view_ratio=view_ratio,
    )
    spreads = count_discovery.measured_spreads(x, views, speakers, sessions)
    assert spreads["session"] / spreads["between"] == pytest.approx(session, rel=0.1)
    assert spreads["utterance"] / spreads["between"] == pytest.approx(utterance, rel=0.1)
    assert spreads["view"] / spreads["utterance"] == pytest.approx(view_ratio, rel=0.1)
    own = count_discovery.own_spread(session, utterance)
    assert spreads["own"] / spreads["between"] == pytest.approx(own, rel=0.1)


def test_the_original_generator_is_unchanged_without_the_new_arguments():
    x, views, labels = make_embeddings(300, 8, 10, n_views=2, seed=3)
    counts = np.bincount(labels, minlength=10)
    assert x.shape == (300, 8) and views.shape == (300, 2, 8)
    assert counts.std() > 0  # log-normal popularity, not balanced
    with pytest.raises(ValueError, match="view_space"):
        make_embeddings(10, 4, 2, view_space="audio")


def test_checkpoints_round_up_to_whole_epochs():
    assert count_discovery.checkpoint_epochs([10, 25, 50], 384, 250) == [
        (5, 10),
        (13, 26),
        (25, 50),
    ]
    assert count_discovery.checkpoint_epochs([3, 3], 100, 250) == [(3, 3)]


def test_a_tiny_grid_writes_one_row_per_fit_and_checkpoint(tmp_path):
    args = count_discovery.parse_args(
        [
            "--dim", "8", "--speakers", "3", "--utterances", "6", "--view-ratio", "0.5", "1",
            "--seeds", "1", "--steps", "1", "2", "--hidden", "8", "--out", str(tmp_path),
        ]
    )  # fmt: skip
    rows = count_discovery.run_grid(args, tmp_path / "grid.csv")
    # 2 view ratios x 2 methods x 2 starts x 2 checkpoints; IMSAT fitted once per start
    assert len(rows) == 16
    with open(tmp_path / "grid.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 16
    imsat = [r for r in rows if r["method"] == "imsat"]
    by_ratio = {r["view_ratio"]: r["clusters_kept"] for r in imsat if r["steps"] == "2"}
    assert len(set(by_ratio.values())) == 1
    args.resume = True
    assert len(count_discovery.run_grid(args, tmp_path / "grid.csv")) == 16
    lines = count_discovery.summary_tables(rows)
    assert sum(line.startswith("| 8 |") for line in lines) == 16
    count_discovery.plot_ratio(rows, tmp_path / "grid.png")
    assert (tmp_path / "grid.png").stat().st_size > 0
