"""Plot axes a person can read: integer checkpoint steps, a visible Pass@1 scale when every score is 0."""

from __future__ import annotations

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
