import csv
import json

from camsat_lobes.report import COLUMNS, collect_results, write_report


def fake_run(root):
    for round_index, system, eer, nmi, seconds in [
        (1, "stage1", 12.0, None, None),
        (1, "camsat", 6.0, 0.8, 3.5),
        (2, "camsat", 5.0, 0.85, 2.5),
    ]:
        folder = root / f"round{round_index}" / "systems" / system
        (folder / "verify").mkdir(parents=True)
        (folder / "verification.json").write_text(json.dumps({"EER": eer, "minDCF": 0.5}))
        (folder / "verify" / "done.json").write_text(json.dumps({"seconds": 1.0}))
        if nmi is not None:
            metrics = {"nmi": nmi, "acc": 0.7, "n_clusters": 11, "k_initial": 20}
            (folder / "clustering_metrics.json").write_text(json.dumps(metrics))
            (folder / "done.json").write_text(json.dumps({"seconds": seconds}))
            history = [
                {"epoch": e, "n_clusters": 20 - e, "nmi": nmi, "acc": 0.7, "ami": 0.6}
                for e in (1, 2)
            ]
            (folder / "history.json").write_text(json.dumps(history))
    return root


def test_rows_follow_rounds_and_systems(tmp_path):
    rows = collect_results(fake_run(tmp_path))
    assert [(r["round"], r["system"]) for r in rows] == [
        (1, "stage1"),
        (1, "camsat"),
        (2, "camsat"),
    ]
    camsat = rows[1]
    assert camsat["K initial"] == 20 and camsat["K found"] == 11 and camsat["EER (%)"] == 6.0
    assert camsat["cluster time (s)"] == 3.5 and camsat["train time (s)"] is None
    assert rows[0]["NMI"] is None


def test_report_files(tmp_path):
    run = fake_run(tmp_path / "run")
    write_report(run, tmp_path / "report")
    lines = (tmp_path / "report" / "results.md").read_text().splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table[0].startswith("| round | system") and len(table) == 2 + 3
    with open(tmp_path / "report" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS) and rows[2]["EER (%)"] == "5.0"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["stage_seconds"]["round1/systems/camsat"] == 3.5
    for r in (1, 2):
        assert (tmp_path / "report" / f"clustering_curves_round{r}.png").stat().st_size > 0


def with_trial_lists(run):
    """Give round 1 two trial lists, intervals, a protocol and a second seed."""
    systems = run / "round1" / "systems"
    for system, eer in (("stage1", 12.0), ("camsat", 6.0)):
        result = {
            "protocol": "centred cosine",
            "EER": eer,
            "minDCF": 0.5,
            "voxceleb": {"EER": eer, "minDCF": 0.5, "trials": 10, "target_trials": 5},
        }
        (systems / system / "verification.json").write_text(json.dumps(result))
    seed = run / "seed7" / "round1" / "systems" / "camsat"
    seed.mkdir(parents=True)
    result = {"EER": 8.0, "minDCF": 0.7, "voxceleb": {"EER": 8.0, "minDCF": 0.7}}
    (seed / "verification.json").write_text(json.dumps(result))
    own = {"EER_low": 1.0, "EER_high": 20.0, "minDCF_low": 0.1, "minDCF_high": 0.9}
    difference = {
        "reference": "camsat",
        "EER": 6.0,
        "EER_low": 2.0,
        "EER_high": 9.0,
        "EER_significant": True,
        "minDCF": 0.0,
        "minDCF_low": -0.2,
        "minDCF_high": 0.2,
        "minDCF_significant": False,
    }
    intervals = {
        "voxceleb": {
            "stage1": own,
            "camsat": own,
            "differences": {"stage1": difference},
            "n_resamples": 100,
            "confidence": 0.95,
            "n_speakers": 4,
        }
    }
    (run / "round1" / "intervals.json").write_text(json.dumps(intervals))
    return run


def test_report_shows_intervals_differences_and_seeds(tmp_path):
    run = with_trial_lists(fake_run(tmp_path / "run"))
    rows = collect_results(run)
    camsat = next(r for r in rows if (r["round"], r["system"]) == (1, "camsat"))
    assert camsat["EER voxceleb seeds n"] == 2 and camsat["EER voxceleb seeds mean"] == 7.0
    text = write_report(run, tmp_path / "report") and (tmp_path / "report" / "results.md")
    markdown = text.read_text()
    assert "**Scoring protocol** (every row): centred cosine." in markdown
    assert "## Trials: voxceleb" in markdown and "100 resamples of the 4 test speakers" in markdown
    assert "| 1 | stage1 | – | – | – | – | 12.0 [1.0, 20.0] |" in markdown
    assert "+6.0 [+2.0, +9.0] *" in markdown and "+0.000 [-0.200, +0.200] |" in markdown
    assert "7.0 ± 1.4 (2)" in markdown  # camsat over the main seed and seed 7
    assert "| stage1 | +6.0 [+2.0, +9.0] * | – |" in markdown  # per seed; seed 7 has none
