"""The report's model-selection diagnostic: does dev weighted F1 rank the runs as test
weighted F1 does?

Every run chooses its checkpoint on dev, and a sweep chooses its configuration on dev
(never on test). Whether that choice tracks the test set is measured here by the Spearman
rank correlation between dev wF1 and test wF1 over the runs that have both (every trained
model of the report; the annotation ceiling, which trains nothing, and bridging-eval
outputs, which have no dev of their own, are left out), with n; under leave-one-session-out
also per fold (each fold has its own dev and test sessions). Near 1: choosing on dev picks
what test would; near 0 or below: dev does not track test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bridging.report.markdown import markdown_table

#: fewer runs than this: no correlation is computed
MIN_RUNS = 3
#: recipes left out: they select nothing on dev
NOT_SELECTED = ("ceiling",)
COLUMNS = ("scope", "fold", "n", "spearman")


def average_ranks(x: Sequence[float]) -> np.ndarray:
    """1-based ranks of ``x``, ties given the mean of the ranks they span (as
    ``scipy.stats.rankdata``'s default)."""
    x = np.asarray(x, dtype=np.float64)
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x))
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation of ``x`` and ``y`` (the Pearson correlation of their
    average ranks); None for fewer than two pairs or when either is constant."""
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} and {len(y)} values")
    if len(x) < 2:
        return None
    rx, ry = average_ranks(x), average_ranks(y)
    rx, ry = rx - rx.mean(), ry - ry.mean()
    denom = float(np.sqrt((rx * rx).sum() * (ry * ry).sum()))
    if denom == 0:
        return None
    return float((rx * ry).sum() / denom)


def selected_runs(runs) -> list:
    """The runs with both dev and test wF1 that selected something on dev."""
    return [r for r in runs if r.dev is not None and r.recipe not in NOT_SELECTED]


def _row(scope: str, fold, runs) -> dict:
    rho = None
    if len(runs) >= MIN_RUNS:
        rho = spearman([r.dev["wf1"] for r in runs], [r.test["wf1"] for r in runs])
    return {"scope": scope, "fold": fold, "n": len(runs), "spearman": rho}


def selection_diagnostic(runs) -> dict:
    """``rows``: the correlation over every run with both (scope ``all``) and, when the runs
    span several leave-one-session-out folds, per fold (scope ``fold``); each row: scope,
    fold, n, spearman (None below :data:`MIN_RUNS` runs or with constant figures)."""
    chosen = selected_runs(runs)
    rows = [_row("all", None, chosen)]
    folds = sorted({r.fold for r in chosen if r.fold is not None})
    if len(folds) > 1:
        rows += [_row("fold", k, [r for r in chosen if r.fold == k]) for k in folds]
    return {"rows": rows}


def _rho(row: dict) -> str:
    return "n/a" if row["spearman"] is None else f"{row['spearman']:+.2f}"


def markdown(result: dict) -> str:
    """The Model selection section; "" when fewer than :data:`MIN_RUNS` runs have both."""
    rows = result["rows"]
    overall = rows[0]
    if overall["n"] < MIN_RUNS:
        return ""
    parts = [
        "## Model selection: does dev track test?",
        "",
        "Spearman rank correlation between dev and test weighted F1 over the runs with both "
        "(every trained model; the annotation ceiling left out): "
        f"ρ = {_rho(overall)} (n = {overall['n']}). Near 1: choosing on dev picks what test "
        "would; near 0 or below: dev does not track test.",
        "",
    ]
    if len(rows) > 1:
        body = [[f"fold {r['fold']}", str(r["n"]), _rho(r)] for r in rows[1:]]
        parts += ["Per fold (each its own dev and test sessions):", ""]
        parts += [markdown_table(["runs", "n", "Spearman ρ"], body), ""]
    return "\n".join(parts)


__all__ = [
    "COLUMNS",
    "MIN_RUNS",
    "average_ranks",
    "markdown",
    "selected_runs",
    "selection_diagnostic",
    "spearman",
]
