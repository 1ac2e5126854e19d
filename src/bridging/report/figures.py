"""The comparison's figures (bridging-report --plots, bridging-reproduce's folder).

- :func:`plot_comparison`: each experiment's test weighted F1 (speech-only, but for the a+v
  teacher and the a+v logistic regression), mean over seeds, with its 95% CI (bootstrap over
  seeds and test dialogues, :mod:`bridging.report.claims`) as error bars;
- :func:`plot_confusion_pair`: the paper's side-by-side test confusion matrices, counts summed
  over the seeds (colours: the share of each gold row): teacher vs KD student, audio-only vs
  masked;
- :func:`plot_per_fold` (leave-one-session-out runs only): each experiment's test weighted F1
  per fold (mean over the fold's seeds), one line per experiment.

Matplotlib's object API on the Agg canvas (no pyplot, no global backend change); titles are
wrapped to the figure's width and laid out with the constrained layout, so they fit.
"""

from __future__ import annotations

import textwrap

import numpy as np

from bridging.report.plotting import draw_confusion

#: average advance of a character of DejaVu Sans, in em (generous: titles must fit)
CHAR_EM = 0.62


def figure(w: float, h: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(w, h), dpi=100, layout="constrained")


def fit_title(text: str, width_in: float, fontsize: float, margin_in: float = 0.4) -> str:
    """``text`` wrapped so that every line fits ``width_in`` inches at ``fontsize`` points."""
    chars = max(12, int((width_in - margin_in) * 72 / (CHAR_EM * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _suptitle(fig, text: str, fontsize: float = 10) -> None:
    fig.suptitle(fit_title(text, fig.get_figwidth(), fontsize), fontsize=fontsize)


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
    labels = []
    for row in rows:
        mods = row["modalities"] or "labels"
        if row["eval_modalities"] != row["modalities"]:
            mods += f"→{row['eval_modalities']}"
        labels.append(f"{row['experiment'].replace('_', ' ')}\n({mods})")
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


def _joined(values) -> str:
    return ",".join(map(str, values)) or "-"


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
    from bridging.report.runs import test_confusions

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


__all__ = [
    "PAIRS",
    "claim_figures",
    "fit_title",
    "plot_comparison",
    "plot_confusion_pair",
    "plot_per_fold",
]
