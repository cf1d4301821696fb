"""bench/scale.py at a tiny size: the table, the recipe's pseudo-labels and the budget skip."""

import json
import math
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import scale  # noqa: E402
import scale_budget  # noqa: E402
import scale_data  # noqa: E402

from camsat_lobes.clustering import read_pseudo_labels  # noqa: E402

NUMERIC = (
    "data_s",
    "kmeans_s",
    "kmeans_peak_rss_mib",
    "kmeans_nmi",
    "kmeans_acc",
    "kmeans_purity",
    "camsat_epoch_s",
    "camsat_fit_s",
    "camsat_peak_rss_mib",
    "camsat_nmi",
    "camsat_acc",
    "camsat_purity",
    "stage_s",
)


def test_tiny_size_is_measured_and_an_oversized_one_skipped(tmp_path, capsys):
    report = tmp_path / "scale.json"
    rows = scale.main(
        [
            "--points", "2000", "200000",
            "--clusters", "50",
            "--dim", "16",
            "--epochs", "1",
            "--hidden", "64,64",
            "--niter", "5",
            "--probe", "0",
            "--time-budget", "0.001",  # the first size always runs; the next cannot fit
            "--memory-limit", "1e-6",  # nor in memory
            "--in-process",
            "--workdir", str(tmp_path / "work"),
            "--keep",
            "--json", str(report),
        ]
    )  # fmt: skip
    printed = capsys.readouterr().out

    header = next(line for line in printed.splitlines() if line.startswith("| points"))
    cells = [cell.strip() for cell in header.strip("|").split("|")]
    assert cells == [scale.HEADERS[key] for key in scale.HEADERS]
    for expected in ("k-means s", "CAMSAT s/epoch", "CAMSAT peak RSS MiB", "stage s"):
        assert expected in cells

    measured, skipped = rows
    assert measured["status"] == "measured"
    assert measured["points"] == 2000 and measured["clusters"] == 50
    for key in NUMERIC:
        assert math.isfinite(measured[key]), key
    assert measured["kmeans_iterations"] == 5 and measured["camsat_cuda_max_mib"] is None
    assert 0 < measured["camsat_clusters"] <= 50

    assert measured["pseudo_label_rows"] == 2000
    ids, labels = read_pseudo_labels(measured["pseudo_labels"])
    assert len(ids) == len(labels) == 2000 and len(set(ids)) == 2000
    assert (Path(measured["pseudo_labels"]).parent / "done.json").is_file()  # the stage's record

    assert skipped["points"] == 200000
    assert skipped["status"].startswith("skipped: estimated ")
    assert skipped["estimate_s"] > 0.001
    assert "MiB available" in skipped["status"] and skipped["estimate_peak_mib"] > 0
    assert "kmeans_s" not in skipped
    lines = printed.splitlines()
    assert any(line.startswith("| 200,000 |") and "skipped" in line for line in lines)

    saved = json.loads(report.read_text())
    assert [row["points"] for row in saved["rows"]] == [2000, 200000]
    assert saved["reachable_points"] >= 0


def test_estimate_scales_the_work_and_the_probe_precedes_the_first_size():
    row = {"points": 10_000, "work_s": 100.0, "size_s": 110.0}
    assert scale_budget.estimate_seconds(row, 100_000) == 1010.0
    assert scale_budget.reachable_points(row, 1010.0) == 100_000
    assert scale_budget.probe_size([100_000, 1_090_000], 10_000) == 20_000
    assert scale_budget.probe_size([2_000], 50) == 200
    assert scale_data.default_speakers(1_090_000) == 5989


def test_sizes_are_laid_out_as_the_recipe_reads_them(tmp_path):
    from camsat_lobes.pipeline import RunLayout

    layout = RunLayout(tmp_path)
    paths = scale_data.size_paths(tmp_path)
    assert Path(paths["embeddings"]) == layout.embeddings(1) / "train"
    assert Path(paths["manifest"]) == layout.manifest("train_utts")
    assert Path(paths["system"]) == layout.system(1, scale_data.SYSTEM)
