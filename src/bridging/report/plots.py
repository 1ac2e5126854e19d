"""The report's plots (matplotlib's object API with the Agg canvas: no pyplot, no global
backend change)."""

from __future__ import annotations

import io
import math
import statistics
import textwrap
from collections.abc import Sequence
from pathlib import Path

from bridging.report.runs import (
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
from bridging.report.tables import Report
from bridging.utils.files import atomic_write_bytes

# ---------------------------------------------------------------------------------------------
# plots (matplotlib's object API with the Agg canvas: no pyplot, no global backend change)
# ---------------------------------------------------------------------------------------------


def _figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100)


def save_figure(fig, path) -> Path:
    """A figure as a PNG, written atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return atomic_write_bytes(path, buf.getvalue())


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
    fig = _figure(6.0 * len(contexts), 4.4)
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
    fig = _figure(4.6 * len(keys), 4.4)
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

    from bridging.report.plotting import draw_confusion

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
    fig = _figure(3.4 * ncols, 3.9 * nrows)
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


def make_figures(report: Report) -> dict:
    """name -> matplotlib Figure for every plot the runs allow (kd, masked, confusion, and
    with the comparison's runs: comparison, teacher_vs_student, audio_vs_masked; under
    leave-one-session-out also per_fold)."""
    from bridging.report.figures import claim_figures

    figs = {
        "kd": plot_kd(report),
        "masked": plot_masked(report),
        "confusion": plot_confusions(report),
    }
    figs = {k: v for k, v in figs.items() if v is not None}
    figs.update(claim_figures(report.claims()))
    return figs


def write_plots(report: Report, out_dir) -> dict:
    """Write the plots the runs allow as PNGs in ``out_dir`` (atomically); name -> path."""
    out_dir = Path(out_dir)
    files = {**PLOT_FILES, **LOSO_PLOT_FILES}
    return {
        name: save_figure(fig, out_dir / files[name]) for name, fig in make_figures(report).items()
    }


__all__ = [
    "LOSO_PLOT_FILES",
    "PLOT_FILES",
    "make_figures",
    "plot_confusions",
    "plot_kd",
    "plot_masked",
    "save_figure",
    "write_plots",
]
