"""loss.png: train, validation and test loss against the optimizer step, like the reference study's figure."""

from __future__ import annotations

import io
from pathlib import Path

from codetune.files import atomic_write_bytes

SERIES = (("train_loss", "train", "o"), ("val_loss", "validation", "s"), ("test_loss", "test", "^"))


def plot_losses(records: list[dict], path: Path, title: str = "Loss") -> Path | None:
    """Draw the loss curves of log.json records; returns None when there is nothing to draw."""
    if not records:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    try:
        for key, label, marker in SERIES:
            points = [(r["step"], r[key]) for r in records if r.get(key) is not None]
            if points:
                xs, ys = zip(*points, strict=True)
                ax.plot(xs, ys, marker=marker, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(title)
        ax.grid(True, alpha=0.4)
        ax.legend()
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=120)
    finally:
        plt.close(fig)
    return atomic_write_bytes(path, buf.getvalue())
