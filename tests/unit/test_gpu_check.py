"""bench/gpu_check.py: it needs CUDA, its tiny version runs every phase, the budget skips."""

import json
import math
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import gpu_check  # noqa: E402
import gpu_check_table  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_without_a_gpu_it_says_it_needs_cuda_and_exits_non_zero(capsys):
    with pytest.raises(SystemExit) as exit_info:
        gpu_check.main(["--tiny"])
    assert exit_info.value.code == 2
    assert "needs CUDA" in capsys.readouterr().err


def test_tiny_check_runs_every_phase_on_the_cpu(tmp_path, capsys):
    out = tmp_path / "check.json"
    report = gpu_check.main(
        [
            "--device", "cpu",
            "--tiny",
            "--steps", "2",
            "--time-budget", "3600",  # a busy machine must not skip a phase
            "--in-process",
            "--workdir", str(tmp_path / "work"),
            "--out", str(out),
        ]
    )  # fmt: skip
    rows = {row["phase"]: row for row in report["rows"]}
    assert list(rows) == ["speaker step", "dino step", "faiss k-means", "CAMSAT epoch"]
    for row in rows.values():
        assert row["status"] == "measured", row
        assert row["steps"] >= 1 and row["step_s"] > 0 and row["phase_s"] > 0
        assert row["gpu_max_mib"] is None  # the CPU has no GPU counter
        assert row["peak_rss_mib"] > 0
    for name, batch in (("speaker step", 4), ("dino step", 2)):
        assert rows[name]["batch"] == batch
        assert 1 <= rows[name]["steps"] <= 2  # fewer once the phase's estimate is spent
        assert rows[name]["out_of_memory_batches"] == []
        assert math.isfinite(rows[name]["loss"]) and rows[name]["warmup_s"] > 0
    assert rows["dino step"]["notes"] == []  # on the CPU, nothing to move
    assert rows["faiss k-means"]["steps"] == 5  # iterations
    assert rows["CAMSAT epoch"]["steps"] == 16 and rows["CAMSAT epoch"]["batch"] == 50
    (size,) = report["clustering_rows"]
    assert size["points"] == 800 and size["pseudo_label_rows"] == 800

    printed = capsys.readouterr().out
    header = next(line for line in printed.splitlines() if line.startswith("| phase"))
    assert [cell.strip() for cell in header.strip("|").split("|")] == list(gpu_check_table.HEADERS)
    assert "| points | K |" in printed  # the scale bench's own table
    saved = json.loads(out.read_text())
    assert [row["phase"] for row in saved["rows"]] == list(rows)


def test_a_budget_too_small_skips_every_phase_without_starting_it(capsys):
    report = gpu_check.main(["--device", "cpu", "--tiny", "--time-budget", "1", "--in-process"])
    assert [row["phase"] for row in report["rows"]] == ["speaker step", "dino step", "clustering"]
    for row in report["rows"]:
        assert row["status"].startswith("skipped: estimated 5 s > "), row
        assert "step_s" not in row
    assert report["clustering_rows"] == []
    assert "skipped: estimated" in capsys.readouterr().out
