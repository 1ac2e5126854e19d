"""Small output helpers: atomic writes, JSON, confusion-matrix figures, config hashes."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so a reader never sees a half-written file and a failure leaves the old file intact."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def config_hash(container) -> str:
    """A short, stable hash of a (resolved) config given as plain containers."""
    blob = json.dumps(container, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def confusion_figure(confusion, label_names, title: str = ""):
    """Confusion matrix (rows: gold, columns: predicted) with counts and row shares, as a
    matplotlib Figure (object API, Agg canvas); the title is wrapped to fit the figure."""
    import textwrap

    import numpy as np
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    cm = np.asarray(confusion, dtype=float)
    row = cm.sum(1, keepdims=True)
    norm = np.divide(cm, row, out=np.zeros_like(cm), where=row > 0)
    n = len(label_names)
    width = 1.1 * n + 2
    fig = Figure(figsize=(width, 1.1 * n + 1.5), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), label_names)
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{int(cm[i, j])}\n{norm[i, j]:.0%}",
                ha="center",
                va="center",
                color="white" if norm[i, j] > 0.5 else "black",
                fontsize=8,
            )
    if title:
        # ~0.62 em per character of DejaVu Sans at 9 pt, 0.4 in of margin
        chars = max(12, int((width - 0.4) * 72 / (0.62 * 9)))
        fig.suptitle(textwrap.fill(title, chars), fontsize=9)
    return fig


def save_confusion_png(confusion, label_names, path, title: str = "") -> Path:
    """:func:`confusion_figure` as a PNG, written atomically."""
    import io

    buf = io.BytesIO()
    confusion_figure(confusion, label_names, title).savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())
