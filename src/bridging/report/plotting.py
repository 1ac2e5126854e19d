"""The one confusion-matrix drawing, used by every figure that shows one (a run's
``confusion_matrix.png``, the report's grid, the report's side-by-side pairs)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np


def row_shares(confusion) -> np.ndarray:
    """Each row of a confusion matrix divided by its sum (0 for an empty row)."""
    cm = np.asarray(confusion, dtype=float)
    row = cm.sum(1, keepdims=True)
    return np.divide(cm, row, out=np.zeros_like(cm), where=row > 0)


def draw_confusion(ax, confusion, label_names, fontsize: float = 8, counts: bool = True) -> None:
    """Draw a confusion matrix (rows: gold, columns: predicted) on ``ax``: colour = share of
    the gold row; each cell's count (``counts``) and share; axis labels."""
    cm = np.asarray(confusion, dtype=float)
    norm = row_shares(cm)
    n = len(label_names)
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), label_names, fontsize=fontsize)
    ax.set_yticks(range(n), label_names, fontsize=fontsize)
    ax.set_xlabel("predicted", fontsize=fontsize)
    ax.set_ylabel("gold", fontsize=fontsize)
    for i in range(n):
        for j in range(n):
            text = f"{int(cm[i, j])}\n{norm[i, j]:.0%}" if counts else f"{norm[i, j]:.0%}"
            ax.text(
                j,
                i,
                text,
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=fontsize - 1,
            )


def confusion_figure(confusion, label_names, title: str = ""):
    """One confusion matrix with counts and row shares, as a matplotlib Figure (object API,
    Agg canvas); the title is wrapped to fit the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(label_names)
    width = 1.1 * n + 2
    fig = Figure(figsize=(width, 1.1 * n + 1.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    draw_confusion(fig.subplots(), confusion, label_names, fontsize=9)
    if title:
        # ~0.62 em per character of DejaVu Sans at 9 pt, 0.4 in of margin
        chars = max(12, int((width - 0.4) * 72 / (0.62 * 9)))
        fig.suptitle(textwrap.fill(title, chars), fontsize=9)
    return fig


def save_confusion_png(confusion, label_names, path, title: str = "") -> Path:
    """:func:`confusion_figure` as a PNG, written atomically."""
    import io

    from bridging.utils.files import atomic_write_bytes

    buf = io.BytesIO()
    confusion_figure(confusion, label_names, title).savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


__all__ = ["row_shares", "draw_confusion", "confusion_figure", "save_confusion_png"]
