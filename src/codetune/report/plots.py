"""Matplotlib figures for reports: loss curves, validation overlays, Pass@1 by checkpoint, answer panels."""

from __future__ import annotations

import io
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from codetune.files import atomic_write_bytes

STYLE = {
    "train_loss": ("train", "o", "#1f77b4"),
    "val_loss": ("validation", "s", "#d62728"),
    "test_loss": ("test", "^", "#2ca02c"),
}


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    _plt().close(fig)
    return atomic_write_bytes(path, buf.getvalue())


def _integer_steps(ax: Any) -> None:
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    # One step: integer neighbours instead of ticks at 1.975, 2.000, ...
    if ax.lines and ax.dataLim.width == 0:
        mid = round(ax.dataLim.x0)
        ax.set_xlim(mid - 1, mid + 1)


def _series(log: list[dict[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pts = [(r["step"], r[key]) for r in log if r.get(key) is not None]
    return [p[0] for p in pts], [p[1] for p in pts]


def plot_losses(log: list[dict[str, Any]], path: str | Path, title: str) -> Path:
    """Train, validation and test loss against step, one marker per logged point."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    for key, (label, marker, color) in STYLE.items():
        x, y = _series(log, key)
        if x:
            ax.plot(x, y, marker=marker, markersize=4, color=color, label=f"{label} loss")
    ax.set(xlabel="step", ylabel="loss", title=title)
    _integer_steps(ax)
    ax.grid(True, alpha=0.35)
    if ax.lines:
        ax.legend()
    else:
        ax.text(0.5, 0.5, "no loss values logged", ha="center", va="center", transform=ax.transAxes)
    return _save(fig, path)


def plot_val_overlay(
    runs: Sequence[tuple[str, list[dict[str, Any]]]],
    path: str | Path,
    references: Sequence[tuple[str, list[dict[str, Any]]]] = (),
) -> Path:
    """Validation loss of every run on one axis; reference (study) curves dashed."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, (name, log) in enumerate(runs):
        x, y = _series(log, "val_loss")
        if x:
            ax.plot(x, y, marker="o", markersize=4, color=colors[i % len(colors)], label=name)
    for j, (name, log) in enumerate(references):
        x, y = _series(log, "val_loss")
        if x:
            color = colors[(len(runs) + j) % len(colors)]
            ax.plot(x, y, linestyle="--", marker=".", color=color, alpha=0.8, label=f"{name} (reference)")
    ax.set(
        xlabel="step",
        ylabel="validation loss",
        title="Validation loss, all runs (each on its own validation split)",
    )
    _integer_steps(ax)
    ax.grid(True, alpha=0.35)
    if ax.lines:
        ax.legend()
    return _save(fig, path)


def plot_pass_at_1(
    curves: Sequence[tuple[str, list[tuple[int, float]], int | None]],
    path: str | Path,
    title: str,
    base: float | None = None,
    references: Sequence[tuple[str, list[tuple[int, float]]]] = (),
    honest: Mapping[str, float] | None = None,
) -> Path:
    """Pass@1 (percent) against checkpoint step; each curve's best checkpoint starred, the base model a line, and
    a curve's leave-one-problem-out estimate (`honest`, by curve name) a dash-dot line in its colour."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    starred = False
    for i, (name, points, best_step) in enumerate(curves):
        pts = sorted(points)
        color = colors[i % len(colors)]
        x, y = [p[0] for p in pts], [100 * p[1] for p in pts]
        ax.plot(x, y, marker="o", color=color, label=name, clip_on=False)  # 0% points drawn whole
        best = [p for p in pts if p[0] == best_step]
        if best:
            star, starred = None if starred else "selected checkpoint", True
            ax.plot([best[0][0]], [100 * best[0][1]], marker="*", markersize=16, color=color, linestyle="none",
                    label=star, clip_on=False)  # fmt: skip
        if honest and name in honest:
            rate = 100 * honest[name]
            ax.axhline(
                rate,
                color=color,
                linestyle="-.",
                alpha=0.7,
                label=f"{name}: leave one problem out ({rate:.1f}%)",
            )
    for j, (name, points) in enumerate(references):
        pts = sorted(points)
        color = colors[(len(curves) + j) % len(colors)]
        ax.plot(
            [p[0] for p in pts],
            [100 * p[1] for p in pts],
            "--",
            marker="x",
            color=color,
            label=f"{name} (reference)",
        )
    if base is not None:
        ax.axhline(
            100 * base, color="gray", linestyle=":", linewidth=2, label=f"base model ({100 * base:.1f}%)"
        )
    ax.set(xlabel="checkpoint step", ylabel="Pass@1 (%)", title=title)
    _integer_steps(ax)
    ax.set_ylim(0, max(ax.get_ylim()[1], 10))  # all-zero scores: a 0-10% axis, not 0-0.05%
    ax.grid(True, alpha=0.35)
    if ax.lines:
        ax.legend()
    return _save(fig, path)


def _wrap(text: str, width: int, max_lines: int) -> str:
    lines: list[str] = []
    for raw in text.replace("\t", "    ").splitlines() or [""]:
        lines.extend(textwrap.wrap(raw, width, replace_whitespace=False, drop_whitespace=False) or [""])
    if len(lines) > max_lines:
        lines = lines[: max_lines - 1] + [f"... ({len(lines) - max_lines + 1} more lines)"]
    return "\n".join(lines)


def plot_text_panels(
    title: str, panels: Sequence[tuple[str, str]], path: str | Path, max_lines: int = 60
) -> Path:
    """Side-by-side wrapped text, one column per (heading, text)."""
    import warnings

    plt = _plt()
    n = max(1, len(panels))
    panel_in = min(6.5, 20 / n)
    width = max(30, int(panel_in * 10.5))  # monospace 7.5 pt: about 13 characters per inch, less margins
    wrapped = [_wrap(text, width, max_lines) for _, text in panels]
    height = max(3.0, 0.16 * max((w.count("\n") + 1 for w in wrapped), default=1) + 1.2)
    fig, axes = plt.subplots(1, n, figsize=(panel_in * n, height), squeeze=False)
    fig.suptitle(_wrap(title, 120, 3), fontsize=11, parse_math=False)
    for ax, (heading, _), body in zip(axes[0], panels, wrapped, strict=True):
        ax.set_axis_off()
        ax.set_title(heading, fontsize=10, fontweight="bold", loc="left", parse_math=False)
        ax.add_patch(plt.Rectangle((0, 0), 1, 1, transform=ax.transAxes, color="#f6f8fa", zorder=0))
        ax.text(
            0.02,
            0.98,
            body,
            va="top",
            ha="left",
            family="monospace",
            fontsize=7.5,
            transform=ax.transAxes,
            parse_math=False,
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # missing glyphs in model output are drawn as boxes
        return _save(fig, path)
