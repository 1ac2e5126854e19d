"""Every figure of the report, and the run's own confusion matrix: one module.

Matplotlib's object API on the Agg canvas (no pyplot, no global backend change); titles are
wrapped to the figure's width (:func:`fit_title`). PNGs are written atomically
(:func:`save_figure`, :func:`save_confusion_png`).

- the confusion matrix, the one drawing every figure that shows one uses
  (:func:`draw_confusion`): a run's ``confusion_matrix.png`` (:func:`save_confusion_png`,
  written by :func:`bridging.runs.outputs.write_run`), the report's grid, its pairs;
- the sweeps: :func:`plot_kd` (test weighted F1 against the distillation temperature, one
  line per alpha), :func:`plot_masked` (against the masking probabilities),
  :func:`plot_confusions` (a grid of test confusion matrices, one per seed group);
- the comparison (the Claims section's data, :mod:`bridging.report.claims`):
  :func:`plot_comparison` (each experiment's test weighted F1, speech-only but for the a+v
  teacher and the a+v logistic regression, mean over seeds, with its 95% CI by bootstrap
  over seeds and test dialogues, :mod:`bridging.report.stats`, as error bars),
  :func:`plot_confusion_pair` (the paper's side-by-side test confusion matrices, counts
  summed over the seeds, colours the share of each gold row: teacher vs KD student,
  audio-only vs masked), :func:`plot_per_fold` (leave-one-session-out runs only: each
  experiment's test weighted F1 per fold, mean over the fold's seeds, one line per
  experiment);
- the per-actor view (:mod:`bridging.report.actors`): :func:`plot_per_actor` (each
  experiment's test weighted F1 per actor, a heatmap).

:func:`make_figures` makes every figure the runs allow, :func:`write_plots` writes them
(file names: ``PLOT_FILES``, ``LOSO_PLOT_FILES``, ``ACTOR_PLOT_FILES`` of
:mod:`bridging.report.runs`).
"""

from __future__ import annotations

import io
import math
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from bridging.report.runs import (
    ACTOR_PLOT_FILES,
    KD_KEYS,
    LOSO_PLOT_FILES,
    MASK_DEFAULT_KEYS,
    PLOT_FILES,
    Run,
    fmt_value,
    mean_std,
    mods_label,
    test_confusions,
)
from bridging.utils.files import atomic_write_bytes

if TYPE_CHECKING:
    from bridging.report.tables import Report

#: average advance of a character of DejaVu Sans, in em (generous: titles must fit)
CHAR_EM = 0.62


# ---------------------------------------------------------------------------------------------
# common: figures, titles, files
# ---------------------------------------------------------------------------------------------


def _modality_tag(row: dict) -> str:
    """An experiment row's modalities for a label: ``a+v``, ``a+v→a`` when evaluated on
    others, ``labels`` for a reference row without any."""
    mods = row["modalities"] or "labels"
    if row["eval_modalities"] != row["modalities"]:
        mods += f"→{row['eval_modalities']}"
    return mods


def write_cells(ax, grid: np.ndarray, lo: float, hi: float, fontsize: float = 7) -> None:
    """Each non-NaN cell's value written in a heatmap of ``grid`` drawn from ``lo`` to ``hi``,
    white on the darkest cells (the colour map's ends), black elsewhere."""
    for i, j in zip(*np.nonzero(~np.isnan(grid))):
        share = (grid[i, j] - lo) / max(hi - lo, 1e-9)
        color = "white" if share < 0.15 or share > 0.85 else "black"
        ax.text(j, i, f"{grid[i, j]:.1f}", ha="center", va="center", fontsize=fontsize,
                color=color)  # fmt: skip


def figure(w: float, h: float, constrained: bool = True):
    """A matplotlib Figure of ``w`` x ``h`` inches at 100 dpi, with the constrained layout
    unless ``constrained`` is false (then the caller lays it out)."""
    from matplotlib.figure import Figure

    if constrained:
        return Figure(figsize=(w, h), dpi=100, layout="constrained")
    return Figure(figsize=(w, h), dpi=100)


def fit_title(text: str, width_in: float, fontsize: float, margin_in: float = 0.4) -> str:
    """``text`` wrapped so that every line fits ``width_in`` inches at ``fontsize`` points."""
    chars = max(12, int((width_in - margin_in) * 72 / (CHAR_EM * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _suptitle(fig, text: str, fontsize: float = 10) -> None:
    fig.suptitle(fit_title(text, fig.get_figwidth(), fontsize), fontsize=fontsize)


def _joined(values) -> str:
    return ",".join(map(str, values)) or "-"


def save_figure(fig, path) -> Path:
    """A figure as a PNG, written atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# the confusion matrix (a run's confusion_matrix.png, the report's grid and pairs)
# ---------------------------------------------------------------------------------------------


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
    buf = io.BytesIO()
    confusion_figure(confusion, label_names, title).savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


# ---------------------------------------------------------------------------------------------
# the sweeps: kd, masked, the grid of confusion matrices
# ---------------------------------------------------------------------------------------------


def _label_keys(report: Report, runs: Sequence[Run], skip: Sequence[str] = ()) -> list[str]:
    """The table's hyper-parameter columns that differ among ``runs`` (less ``skip``)."""
    return [
        k
        for k in report.hparam_keys
        if k not in skip and len({fmt_value(r.value(k)) for r in runs}) > 1
    ]


def _context_label(r: Run, keys: Sequence[str], label_set: bool = False) -> str:
    """experiment (modalities[→eval modalities]) [label set] key=value..."""
    mods = mods_label(r.modalities)
    if r.eval_modalities != r.modalities:
        mods += f"→{mods_label(r.eval_modalities)}"
    bits = [f"{k}={fmt_value(r.value(k))}" for k in keys if r.value(k) is not None]
    return " ".join([r.experiment, f"({mods})", *([r.label_set] if label_set else []), *bits])


def _contexts(report: Report, runs: Sequence[Run], skip: Sequence[str]) -> dict[str, list[Run]]:
    keys = _label_keys(report, runs, skip)
    many_sets = len({r.label_set for r in runs}) > 1
    out: dict[str, list[Run]] = {}
    for r in runs:
        out.setdefault(_context_label(r, keys, many_sets), []).append(r)
    return out


def _baselines(report: Report, like: Sequence[Run]) -> list[tuple[str, float]]:
    """Non-sweep reference levels for a plot of ``like`` runs: teacher or baseline runs evaluated
    on the same modalities with the same label set and data (e.g. the audio-only baseline)."""
    sets = {(r.eval_modalities, r.label_set, r.data) for r in like}
    out: dict[str, list[float]] = {}
    for r in report.runs:
        if r.recipe in ("teacher", "baseline") and (r.eval_modalities, r.label_set, r.data) in sets:
            out.setdefault(_context_label(r, ()), []).append(100.0 * r.test["wf1"])
    return [(k, statistics.fmean(v)) for k, v in sorted(out.items())][:4]


def _errorbar(ax, xs, ys, errs, **kw):
    yerr = None if all(e is None for e in errs) else [0.0 if e is None else e for e in errs]
    ax.errorbar(xs, ys, yerr=yerr, marker="o", capsize=3, **kw)


def plot_kd(report: Report):
    """Test weighted F1 against the temperature T, one line per alpha (mean ± std over seeds);
    one panel per student configuration; the teacher and same-eval baselines as dashed
    lines. None when no run has both kd.temperature and kd.alpha."""
    runs = [
        r for r in report.runs if all(isinstance(r.hparams.get(k), (int, float)) for k in KD_KEYS)
    ]
    if not runs:
        return None
    contexts = _contexts(report, runs, KD_KEYS)
    fig = figure(6.0 * len(contexts), 4.4, constrained=False)
    axes = fig.subplots(1, len(contexts), squeeze=False)[0]
    for ax, (label, cruns) in zip(axes, contexts.items()):
        alphas = sorted({r.hparams["kd.alpha"] for r in cruns})
        temps = sorted({r.hparams["kd.temperature"] for r in cruns})
        for a in alphas:
            xs, ys, es = [], [], []
            for t in temps:
                vals = [
                    100.0 * r.test["wf1"]
                    for r in cruns
                    if r.hparams["kd.alpha"] == a and r.hparams["kd.temperature"] == t
                ]
                if vals:
                    mean, std = mean_std(vals)
                    xs.append(t), ys.append(mean), es.append(std)
            _errorbar(ax, xs, ys, es, label=f"α={fmt_value(a)}")
        teacher = [
            r.raw["teacher"]["test"]["wf1"]
            for r in cruns
            if isinstance(r.raw.get("teacher"), dict)
            and isinstance((r.raw["teacher"].get("test") or {}).get("wf1"), (int, float))
        ]
        styles = iter(["--", ":", "-.", (0, (5, 1))])
        if teacher:
            tm = mods_label(cruns[0].raw["teacher"].get("eval_modalities") or ())
            ax.axhline(
                100.0 * statistics.fmean(teacher),
                color="black",
                ls=next(styles),
                lw=1,
                label=f"teacher ({tm or '?'})",
            )
        for name, level in _baselines(report, cruns):
            ax.axhline(level, color="gray", ls=next(styles, "--"), lw=1, label=name)
        ax.set_xticks(temps, [fmt_value(t) for t in temps])
        ax.set_xlabel("temperature T")
        ax.set_ylabel(f"test weighted F1 (%) on {mods_label(cruns[0].eval_modalities)}")
        ax.set_title(label, fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "distilled student: weighted F1 against T, per α (mean ± std over seeds)", fontsize=10
    )
    fig.tight_layout()
    return fig


def plot_masked(report: Report):
    """Test weighted F1 of the masked runs against each masking probability that varies
    (else p_audio_full, p_other_full, p): one panel per probability, one line per masked
    configuration (e.g. with and without the GNN), the mean ± std over the runs at each value
    (the other probabilities and seeds pooled); same-eval baselines as dashed lines. None
    without masked runs."""
    runs = [r for r in report.runs if r.recipe == "masked"]
    if not runs:
        return None

    def numeric(k):
        return all(isinstance(r.hparams.get(k), (int, float)) for r in runs)

    keys = [k for k in report.hparam_keys if k.startswith("mask.") and numeric(k)]
    if not keys:
        keys = [k for k in MASK_DEFAULT_KEYS if numeric(k)]
    if not keys:
        return None
    contexts = _contexts(report, runs, [k for k in report.hparam_keys if k.startswith("mask.")])
    baselines = _baselines(report, runs)
    fig = figure(4.6 * len(keys), 4.4, constrained=False)
    axes = fig.subplots(1, len(keys), squeeze=False)[0]
    for ax, key in zip(axes, keys):
        values = sorted({r.hparams[key] for r in runs})
        for label, cruns in contexts.items():
            xs, ys, es = [], [], []
            for v in values:
                vals = [100.0 * r.test["wf1"] for r in cruns if r.hparams[key] == v]
                if vals:
                    mean, std = mean_std(vals)
                    xs.append(v), ys.append(mean), es.append(std)
            _errorbar(ax, xs, ys, es, label=label)
        for (name, level), ls in zip(baselines, ["--", ":", "-.", (0, (5, 1))]):
            ax.axhline(level, color="gray", ls=ls, lw=1, label=name)
        ax.set_xticks(values, [fmt_value(v) for v in values])
        ax.set_xlabel(key)
        ax.set_ylabel(f"test weighted F1 (%) on {mods_label(runs[0].eval_modalities)}")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.suptitle(
        "masked training: weighted F1 against the masking probabilities (mean ± std over runs)",
        fontsize=10,
    )
    fig.tight_layout()
    return fig


def plot_confusions(report: Report, max_panels: int = 16):
    """A grid of test confusion matrices (rows gold, normalised per row; counts summed over
    the seeds), one panel per seed group, or, when there are more than ``max_panels`` groups
    (sweeps), per family with its best configuration on dev. None without confusions."""
    groups = report.groups
    if len(groups) > max_panels:
        groups = report.best_per_family()
    panels = []
    for g in groups[:max_panels]:
        mats = test_confusions(g.runs)
        if mats:
            panels.append((g, sum(mats)))
    if not panels:
        return None
    shown = [r for g, _ in panels for r in g.runs]
    keys = _label_keys(report, shown)
    many_sets = len({r.label_set for r in shown}) > 1
    ncols = min(4, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig = figure(3.4 * ncols, 3.9 * nrows, constrained=False)
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    for ax, (g, cm) in zip(axes.flat, panels):
        r = g.first
        draw_confusion(ax, cm, r.label_names, fontsize=7, counts=False)
        mean, std = g.stat("wf1")
        wf1 = f"wF1 {mean:.1f}" + ("" if std is None else f"±{std:.1f}")
        label = textwrap.fill(_context_label(r, keys, many_sets), 44)
        title = f"{label}\n{wf1}, n={len(g.runs)}"
        ax.set_title(title, fontsize=7)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# the comparison: wF1 with CIs, per fold, confusion pairs
# ---------------------------------------------------------------------------------------------


def plot_comparison(result: dict | None):
    """Mean test wF1 per experiment with its CI; None for fewer than two experiments."""
    rows = (result or {}).get("comparison") or []
    if len(rows) < 2:
        return None
    level = f"{100 * result['bootstrap']['level']:g}%"
    n = len(rows)
    fig = figure(max(6.0, 1.05 * n + 1.6), 4.8)
    ax = fig.subplots()
    for i, row in enumerate(rows):
        mean = row["wf1_mean"]
        ref = row["note"].startswith("reference")
        full = row["eval_modalities"] != "a"
        color = "0.55" if ref else ("black" if full else "C0")
        yerr = None
        if row["ci_low"] is not None:
            yerr = [[max(0.0, mean - row["ci_low"])], [max(0.0, row["ci_high"] - mean)]]
        ax.errorbar(
            [i], [mean], yerr=yerr, marker="s" if ref else "o", color=color, capsize=4, lw=1.5
        )
        ax.annotate(
            f"{mean:.1f}",
            (i, mean if yerr is None else row["ci_high"]),
            textcoords="offset points",
            xytext=(0, 4),
            ha="center",
            fontsize=7,
        )
    base = next((r for r in rows if r["experiment"] == "audio_only"), None)
    if base is not None:
        ax.axhline(base["wf1_mean"], color="C0", ls="--", lw=0.8, alpha=0.6)
    labels = [f"{row['experiment'].replace('_', ' ')}\n({_modality_tag(row)})" for row in rows]
    ax.set_xticks(range(n), labels, fontsize=7)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylabel("test weighted F1 (%)")
    ax.grid(axis="y", alpha=0.3)
    seeds = sorted({s for r in rows for s in r["seeds"] if s is not None})
    folds = result["context"].get("folds") or []
    if folds:
        over = f"mean over folds {_joined(folds)} of the mean over seeds {_joined(seeds)}"
        boot = "hierarchical bootstrap over folds, seeds and test dialogues"
    else:
        over, boot = f"mean over seeds {_joined(seeds)}", "bootstrap over seeds and test dialogues"
    _suptitle(
        fig,
        f"Test weighted F1 per experiment, speech-only unless a+v ({over}; error bars: "
        f"{level} CI by {boot}; grey: reference rows; dashed: audio-only)",
    )
    return fig


def plot_per_fold(result: dict | None):
    """Leave one session out: each experiment's test wF1 per fold (mean over the fold's
    seeds), one line per experiment (reference rows grey and dashed); None for the paper
    protocol or fewer than two experiments."""
    folds = ((result or {}).get("context") or {}).get("folds") or []
    rows = [r for r in (result or {}).get("comparison") or [] if r["fold_wf1"]]
    if not folds or len(rows) < 2:
        return None
    fig = figure(max(6.0, 1.1 * len(folds) + 4.2), 4.8)
    ax = fig.subplots()
    for i, row in enumerate(rows):
        xs = sorted(set(row["folds"]))
        ref = row["note"].startswith("reference")
        mods = row["modalities"] or "labels"
        if row["eval_modalities"] != row["modalities"]:
            mods += f"→{row['eval_modalities']}"
        ax.plot(
            xs,
            row["fold_wf1"],
            marker="s" if ref else "o",
            ls="--" if ref else "-",
            color="0.55" if ref else f"C{i % 10}",
            lw=1.2,
            label=f"{row['experiment']} ({mods})",
        )
    ax.set_xticks(folds, [f"fold {k}" for k in folds])
    ax.set_xlabel("fold (its test session)")
    ax.set_ylabel("test weighted F1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    seeds = sorted({s for r in rows for s in r["seeds"] if s is not None})
    _suptitle(
        fig,
        "Test weighted F1 per fold, leave one session out (fold k tests on session k; mean "
        f"over seeds {_joined(seeds)}; grey dashed: reference rows)",
    )
    return fig


PAIRS = {
    "teacher_vs_student": ("teacher", "student_kd", "teacher vs KD student"),
    "audio_vs_masked": ("audio_only", "masked", "audio-only vs masked training"),
}


def _summed_confusion(arm):
    """The arm's test confusions summed over its seeds; None unless every run has one."""
    mats = test_confusions(arm.runs)
    return sum(mats) if mats and len(mats) == len(arm.runs) else None


def plot_confusion_pair(result: dict | None, a: str, b: str, what: str):
    """Side-by-side test confusion matrices of experiments ``a`` and ``b`` (counts summed
    over their seeds, rows normalised); None unless both are there with confusions."""
    arms = (result or {}).get("arms") or {}
    if a not in arms or b not in arms:
        return None
    mats = [_summed_confusion(arms[x]) for x in (a, b)]
    if any(m is None for m in mats) or mats[0].shape != mats[1].shape:
        return None
    names = arms[a].first.label_names
    k = len(names)
    side = max(3.2, 0.75 * k + 1.4)
    fig = figure(2 * side + 0.6, side + 1.4)
    axes = fig.subplots(1, 2)
    seeds, folds = set(), set()
    for ax, name, cm in zip(axes, (a, b), mats):
        arm = arms[name]
        seeds |= {s for s in arm.seeds if s is not None}
        folds |= {r.fold for r in arm.runs if r.fold is not None}
        draw_confusion(ax, cm, names, fontsize=8)
        r = arm.first
        mods = "+".join(r.modalities)
        if r.eval_modalities != r.modalities:
            mods += f"→{'+'.join(r.eval_modalities)}"
        wf1 = np.mean([100 * x.test["wf1"] for x in arm.runs])
        n = len(arm.runs)
        runs = f"{n} run{'s' * (n > 1)}" if arm.loso else f"{n} seed{'s' * (n > 1)}"
        title = f"{name} ({mods})\nwF1 {wf1:.1f}, {runs}"
        ax.set_title(fit_title(title, side, 9), fontsize=9)
    over = f"seeds {_joined(sorted(seeds))}"
    if folds:
        over = f"folds {_joined(sorted(folds))} and {over}"
    _suptitle(
        fig,
        f"Test confusion matrices, {what}: counts summed over {over}; colour: share of the "
        "gold row",
    )
    return fig


def claim_figures(result: dict | None) -> dict:
    """name -> Figure for the comparison figure and the confusion pairs the runs allow."""
    figs = {"comparison": plot_comparison(result), "per_fold": plot_per_fold(result)}
    for key, (a, b, what) in PAIRS.items():
        figs[key] = plot_confusion_pair(result, a, b, what)
    return {k: v for k, v in figs.items() if v is not None}


# ---------------------------------------------------------------------------------------------
# the per-actor view
# ---------------------------------------------------------------------------------------------


def plot_per_actor(view: dict | None):
    """Each experiment's test wF1 per actor (:func:`bridging.report.actors.actor_view`): a
    heatmap per data set, rows experiments, columns actors, each cell's value written in it
    (blank: not tested); None when no data set has speakers (or only more than
    ``MAX_ACTOR_COLUMNS``)."""
    from bridging.report.actors import plot_rows

    panels = plot_rows(view)
    if not panels:
        return None
    values = [
        v for t, actors in panels for row in t["rows"] for a in actors
        if (v := row["wf1"].get(a)) is not None
    ]  # fmt: skip
    lo, hi = (min(values), max(values)) if values else (0.0, 100.0)
    if hi - lo < 1e-9:
        lo, hi = lo - 1.0, hi + 1.0
    n_cols = max(len(actors) for _, actors in panels)
    heights = [len(t["rows"]) + 1.6 for t, _ in panels]
    fig = figure(max(6.0, 0.75 * n_cols + 4.0), sum(0.42 * h for h in heights) + 1.2)
    axes = fig.subplots(len(panels), 1, squeeze=False, height_ratios=heights)[:, 0]
    image = None
    for ax, (t, actors) in zip(axes, panels):
        rows = t["rows"]
        grid = np.full((len(rows), len(actors)), np.nan)
        for i, row in enumerate(rows):
            for j, a in enumerate(actors):
                v = row["wf1"].get(a)
                if v is not None:
                    grid[i, j] = v
        image = ax.imshow(grid, cmap="RdYlGn", vmin=lo, vmax=hi, aspect="auto")
        write_cells(ax, grid, lo, hi)
        labels = [f"{row['experiment']} ({_modality_tag(row)})" for row in rows]
        n = t["n_utterances"]
        ticks = [f"{a}\nn={n[a][0]}–{n[a][1]}" if isinstance(n[a], list) else f"{a}\nn={n[a]}"
                 for a in actors]  # fmt: skip
        ax.set_xticks(range(len(actors)), ticks, fontsize=7)
        ax.set_yticks(range(len(rows)), labels, fontsize=7)
        if len(panels) > 1:
            ax.set_title(fit_title(f"{t['data'] or 'unnamed data'}, {t['label_set']}", 6, 8),
                         fontsize=8)  # fmt: skip
    fig.colorbar(image, ax=list(axes), label="test weighted F1 (%)", shrink=0.9)
    seeds = sorted({s for t, _ in panels for r in t["rows"] for s in r["seeds"] if s is not None})
    _suptitle(
        fig,
        "Test weighted F1 per actor (n: the actor's test utterances; mean over the runs that "
        f"test the actor, seeds {_joined(seeds)}; under leave one session out each actor is "
        "tested in the fold of its session; blank: not tested)",
    )
    return fig


# ---------------------------------------------------------------------------------------------
# all of them
# ---------------------------------------------------------------------------------------------


def make_figures(report: Report) -> dict:
    """name -> matplotlib Figure for every plot the runs allow (kd, masked, confusion, and
    with the comparison's runs: comparison, teacher_vs_student, audio_vs_masked; under
    leave-one-session-out also per_fold; with predictions that name the speakers per_actor)."""
    figs = {
        "kd": plot_kd(report),
        "masked": plot_masked(report),
        "confusion": plot_confusions(report),
    }
    figs = {k: v for k, v in figs.items() if v is not None}
    figs.update(claim_figures(report.claims()))
    per_actor = plot_per_actor(report.actors())
    if per_actor is not None:
        figs["per_actor"] = per_actor
    return figs


def write_plots(report: Report, out_dir) -> dict:
    """Write the plots the runs allow as PNGs in ``out_dir`` (atomically); name -> path."""
    out_dir = Path(out_dir)
    files = {**PLOT_FILES, **LOSO_PLOT_FILES, **ACTOR_PLOT_FILES}
    return {
        name: save_figure(fig, out_dir / files[name]) for name, fig in make_figures(report).items()
    }


__all__ = [
    "ACTOR_PLOT_FILES",
    "LOSO_PLOT_FILES",
    "PAIRS",
    "PLOT_FILES",
    "claim_figures",
    "confusion_figure",
    "draw_confusion",
    "figure",
    "fit_title",
    "make_figures",
    "plot_comparison",
    "plot_confusion_pair",
    "plot_confusions",
    "plot_kd",
    "plot_masked",
    "plot_per_actor",
    "plot_per_fold",
    "row_shares",
    "save_confusion_png",
    "save_figure",
    "write_plots",
]
