"""Clustering curves: integer epochs, metric axes that show the whole range."""

from camsat_lobes.clustering import plot_history
from camsat_lobes.clustering.history import MIN_COUNT_SPAN, history_figure


def test_curves_have_integer_epochs_and_a_sane_metric_range(tmp_path):
    history = [
        {"epoch": epoch, "acc": 0.3, "ami": 1e-16 * epoch, "nmi": 0.1, "n_clusters": 9}
        for epoch in (1, 2, 3)
    ]
    fig = history_figure({"IMSAT": history}, title="flat")
    acc, ami, nmi, count = fig.axes
    assert [ax.get_ylabel() for ax in fig.axes] == ["ACC", "AMI", "NMI", "Number of clusters"]
    for ax in (acc, ami, nmi):
        low, high = ax.get_ylim()
        assert low <= 0 and high >= 1 and high - low < 1.1
    for ax in fig.axes:
        low, high = ax.get_xlim()
        ticks = [tick for tick in ax.get_xticks() if low <= tick <= high]
        assert ticks and all(float(tick).is_integer() for tick in ticks)
    low, high = count.get_ylim()
    assert high - low >= MIN_COUNT_SPAN and low <= 9 <= high
    assert all(float(tick).is_integer() for tick in count.get_yticks())
    assert plot_history({"IMSAT": history}, tmp_path / "curves.png").stat().st_size > 0


def test_negative_ami_stays_visible():
    history = [{"epoch": 1, "ami": -0.05}, {"epoch": 2, "ami": 0.4}]
    low, high = history_figure({"CAMSAT": history}).axes[1].get_ylim()
    assert low < -0.05 and high >= 1
