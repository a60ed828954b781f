"""Plot axes a person can read: integer checkpoint steps, a visible Pass@1 scale when every score is 0."""

from __future__ import annotations

import pytest

from codetune.report import plots


def _axes():
    plt = plots._plt()
    fig, ax = plt.subplots()
    return plt, fig, ax


def test_one_checkpoint_gets_integer_neighbours() -> None:
    plt, fig, ax = _axes()
    ax.plot([2], [0.0], marker="o")
    plots._integer_steps(ax)
    fig.canvas.draw()
    assert ax.get_xlim() == (1, 3)
    assert all(float(t).is_integer() for t in ax.get_xticks())
    plt.close(fig)


def test_several_steps_keep_their_range() -> None:
    for steps in ([1, 2], [20, 40, 60, 80]):
        plt, fig, ax = _axes()
        ax.plot(steps, [0.1] * len(steps))
        ax.axhline(0.05)  # the base-model line spans the axes, not the data
        before = ax.get_xlim()
        plots._integer_steps(ax)
        assert ax.get_xlim() == before
        plt.close(fig)


def test_pass_plot_draws_the_leave_one_out_line(tmp_path, monkeypatch) -> None:
    figs = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: figs.append(fig) or path)
    curve = [("diverse", [(10, 1 / 6), (20, 0.5), (30, 1 / 3)], 20)]
    plots.plot_pass_at_1(curve, tmp_path / "a.png", "t", 0.2, honest={"diverse": 1 / 3, "other": 0.9})
    labels = {line.get_label(): line for line in figs[0].axes[0].lines}
    line = labels["diverse: leave one problem out (33.3%)"]
    assert list(line.get_ydata()) == [pytest.approx(100 / 3)] * 2
    assert line.get_color() == labels["diverse"].get_color()
    assert not any("other" in name for name in labels)
