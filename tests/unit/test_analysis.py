import csv
import math

import numpy as np
import pytest

from camsat_lobes.correlation import (
    DEFAULT_GROUPS,
    correlation_table,
    plot_correlation_heatmap,
    write_correlation_csv,
)


def make_records(n=12, seed=0):
    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        acc = rng.uniform(0.2, 0.95)
        records.append(
            {
                "acc": acc,
                "nmi": acc + rng.normal(0, 0.01),
                "n_clusters": rng.integers(10, 50),
                "EER": 20 - 15 * acc + rng.normal(0, 0.5),
                "family": "deep" if i % 2 else "classical",
                "embedding_norm": "l2" if i % 3 else "std",
            }
        )
    return records


def test_correlations_match_numpy_inside_each_group():
    records = make_records()
    table = correlation_table(records, ["acc", "nmi", "n_clusters"])
    assert table["groups"] == list(DEFAULT_GROUPS)
    deep = [r for r in records if r["family"] == "deep"]
    expected = np.corrcoef([r["acc"] for r in deep], [r["EER"] for r in deep])[0, 1]
    assert table["r"][0, table["groups"].index("deep")] == pytest.approx(expected)
    assert table["n"][0] == len(records)
    # ACC drives the EER down in these records: strong negative correlation overall.
    assert table["r"][0, 0] < -0.9


def test_small_or_constant_groups_give_nan_with_the_reason(caplog):
    records = make_records(4)
    for r in records:
        r["family"] = "deep"
    table = correlation_table(records, ["acc"], groups={"classical": DEFAULT_GROUPS["classical"]})
    assert math.isnan(table["r"][0, 0]) and table["n"] == [0]
    assert table["notes"][0, 0] == "0 sets < 3"
    constant = [{"acc": 0.1 * i, "EER": 0.0} for i in range(5)]
    with caplog.at_level("WARNING", logger="camsat_lobes.correlation"):
        table = correlation_table(constant, ["acc"], groups={"all": DEFAULT_GROUPS["all"]})
    assert math.isnan(table["r"][0, 0]) and table["notes"][0, 0] == "EER constant"
    assert "correlation group 'all': no coefficient (EER constant)" in caplog.text
    flat_metric = [{"acc": 0.5, "EER": float(i)} for i in range(5)]
    table = correlation_table(flat_metric, ["acc"], groups={"all": DEFAULT_GROUPS["all"]})
    assert math.isnan(table["r"][0, 0]) and table["notes"][0, 0] == "acc constant"


def test_constant_eer_is_spelled_out_in_the_csv_and_the_heatmap(tmp_path):
    records = [{**r, "EER": 0.0} for r in make_records()]
    table = correlation_table(records, ["acc", "nmi"])
    write_correlation_csv(table, tmp_path / "r.csv")
    rows = list(csv.reader(open(tmp_path / "r.csv")))
    assert rows[1][1] == "EER constant"  # not an empty or "nan" cell
    plot_correlation_heatmap(table, tmp_path / "heatmap.png")
    assert (tmp_path / "heatmap.png").stat().st_size > 0


def test_csv_and_heatmap_are_written(tmp_path):
    table = correlation_table(make_records(), ["acc", "nmi"])
    write_correlation_csv(table, tmp_path / "r.csv")
    rows = list(csv.reader(open(tmp_path / "r.csv")))
    assert rows[0][0] == "metric" and [r[0] for r in rows[1:]] == ["acc", "nmi"]
    assert len(rows[1]) == 1 + len(DEFAULT_GROUPS)
    plot_correlation_heatmap(table, tmp_path / "heatmap.png")
    assert (tmp_path / "heatmap.png").read_bytes()[:4] == b"\x89PNG"


def test_intervals_cover_the_coefficient_and_narrow_with_more_sets():
    from camsat_lobes.correlation import HEATMAPS

    widths = []
    for n in (8, 80):
        records = make_records(n, seed=3)
        table = correlation_table(records, ["acc"], groups=HEATMAPS["all"], n_resamples=500)
        low, r, high = table["low"][0, 0], table["r"][0, 0], table["high"][0, 0]
        assert low <= r <= high and high < 0  # a strong negative correlation, significant
        widths.append(high - low)
    assert widths[1] < widths[0]
    # Same seed, same intervals.
    again = correlation_table(records, ["acc"], groups=HEATMAPS["all"], n_resamples=500)
    assert again["low"][0, 0] == table["low"][0, 0]


def test_heatmap_columns_split_by_regularisation_and_the_csv_lists_every_coefficient(tmp_path):
    from camsat_lobes.correlation import HEATMAPS, split_groups, write_coefficients_csv

    records = []
    for regularisation in ("none", "imix"):
        for r in make_records(9, seed=5):
            records.append({**r, "regularisation": regularisation})
    # i-mix sets with a constant EER: their column is explained, not drawn empty.
    for r in records[9:]:
        r["EER"] = 5.0
    tables = {
        variant: correlation_table(
            records,
            ["acc", "nmi"],
            groups=split_groups(groups, "regularisation", ["none", "imix"]),
            n_resamples=100,
        )
        for variant, groups in HEATMAPS.items()
    }
    assert tables["family"]["groups"] == [
        "classical | none",
        "classical | imix",
        "deep | none",
        "deep | imix",
        "clusterings | none",
        "clusterings | imix",
    ]
    assert tables["all"]["n"] == [9, 9]
    assert tables["all"]["notes"][0, 1] == "EER constant"
    write_coefficients_csv(tables, tmp_path / "coefficients.csv")
    rows = list(csv.DictReader(open(tmp_path / "coefficients.csv")))
    assert len(rows) == 2 * sum(len(t["groups"]) for t in tables.values())
    imix = [r for r in rows if r["heatmap"] == "all" and r["group"] == "all | imix"]
    assert {r["note"] for r in imix} == {"EER constant"} and {r["r"] for r in imix} == {""}
    none_acc = next(r for r in rows if r["group"] == "all | none" and r["metric"] == "acc")
    assert float(none_acc["low"]) <= float(none_acc["r"]) <= float(none_acc["high"])
    assert none_acc["significant"] == "True"
    plot_correlation_heatmap(tables["family"], tmp_path / "family.png")
    assert (tmp_path / "family.png").read_bytes()[:4] == b"\x89PNG"
