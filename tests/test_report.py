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
    table = (tmp_path / "report" / "results.md").read_text().splitlines()
    assert table[0].startswith("| round | system") and len(table) == 2 + 3
    with open(tmp_path / "report" / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS) and rows[2]["EER (%)"] == "5.0"
    report = json.loads((tmp_path / "report" / "report.json").read_text())
    assert report["stage_seconds"]["round1/systems/camsat"] == 3.5
    for r in (1, 2):
        assert (tmp_path / "report" / f"clustering_curves_round{r}.png").stat().st_size > 0
