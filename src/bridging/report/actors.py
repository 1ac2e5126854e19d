"""The report's per-actor view: test weighted F1 of each experiment on each actor's
utterances, and each run's worst actor.

An actor is the speaker key of an utterance (:mod:`bridging.data.speakers`), saved in the
run's ``test_predictions.npz`` (its ``speaker`` array): on IEMOCAP the session and gender,
``Ses01F`` ... ``Ses05M`` (10 actors); elsewhere (MELD) a speaker is known within its
dialogue only, ``<dialogue id>/<slot>``.

For a run and an actor a, the wF1 on a is the weighted F1
(:func:`bridging.data.predictions.f1_scores`) of the confusion counts of the utterances of a
in the run's test predictions (those with a known gold label; ``n`` counts them)::

    wF1_a = 100 * wF1( confusion(gold[speaker == a], pred[speaker == a]) )

A run's **worst actor** is the actor with the lowest wF1_a (the runs table's column). A row
of the per-actor table is an experiment (experiment, recipe, modalities, label set, data
set: its best configuration on dev when a sweep gives several, as in the Claims section;
under leave-one-session-out the runs of every fold): its cell for actor a is the mean of
wF1_a over the row's runs that test a (its seeds; under loso an actor is tested in one fold
only, the fold whose test session is its session, so the mean is over that fold's seeds).

Runs without a usable predictions file with a ``speaker`` array (files written before it was
recorded, no file, a file that does not reproduce its metrics.json) are left out, with one
line per reason that names them. Everything here is a pure function of the runs' files.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Sequence

import numpy as np

from bridging.data.predictions import PREDICTIONS_FILE, f1_scores
from bridging.report.markdown import markdown_table
from bridging.report.runs import load_predictions, mods_label

#: more actors than this (per-dialogue speakers, MELD): no column per actor, no figure
MAX_ACTOR_COLUMNS = 24


def natural_key(key: str) -> tuple:
    """Sort key that orders the numbers within a key by value (``d2/s0`` before ``d10/s0``)."""
    return tuple(int(p) if p.isdigit() else p for p in re.split(r"(\d+)", str(key)))


def actor_scores(preds) -> dict[str, dict]:
    """Per actor of a :class:`~bridging.data.predictions.Predictions` with ``speaker``
    (natural order): ``{"wf1": points or None (no scored utterance), "n": utterances with a
    known gold label}``. Raises ValueError without ``speaker``."""
    if preds.speaker is None:
        raise ValueError("actor_scores: the predictions have no speaker array")
    keys, inverse = np.unique(np.asarray(preds.speaker), return_inverse=True)
    k = preds.n_classes
    gold = preds.gold
    pred = np.where((preds.pred >= 0) & (preds.pred < k), preds.pred, k)
    known = (gold >= 0) & (gold < k)
    cell = (inverse[known] * k + gold[known]) * (k + 1) + pred[known]
    counts = np.bincount(cell, minlength=len(keys) * k * (k + 1)).reshape(len(keys), k, k + 1)
    wf1 = f1_scores(counts)["wf1"]
    n = counts.sum(axis=(1, 2))
    out = {}
    for i in sorted(range(len(keys)), key=lambda i: natural_key(keys[i])):
        out[str(keys[i])] = {
            "wf1": 100.0 * float(wf1[i]) if n[i] else None,
            "n": int(n[i]),
        }
    return out


def worst_actor(scores: dict[str, dict]) -> tuple[str, float] | None:
    """(actor, wF1) of the lowest wF1 among ``scores`` (:func:`actor_scores`); ties: the
    first in natural order; None when no actor has a scored utterance."""
    scored = [(v["wf1"], natural_key(a), a) for a, v in scores.items() if v["wf1"] is not None]
    if not scored:
        return None
    wf1, _, actor = min(scored)
    return actor, wf1


def run_actor_scores(run, cache: dict) -> tuple[dict | None, str | None]:
    """The run's :func:`actor_scores` and None, or (None, why not): ``no speaker`` when its
    predictions file lacks the array, else the reason of
    :func:`bridging.report.runs.load_predictions`. A malformed file raises ReportError."""
    preds, why = load_predictions(run, cache)
    if preds is None:
        return None, why
    if preds.speaker is None:
        return None, NO_SPEAKER
    key = ("actor scores", str(run.run_dir))
    if key not in cache:
        cache[key] = actor_scores(preds)
    return cache[key], None


NO_SPEAKER = "no speaker"

#: the notes on left-out runs, by reason (the one line each says why)
_NOTES = {
    NO_SPEAKER: f"whose {PREDICTIONS_FILE} has no speaker array (written before speakers were "
    "recorded; bridging-eval of the run's checkpoint writes one that has it)",
    "missing": f"without a {PREDICTIONS_FILE}",
    "mismatch": f"whose {PREDICTIONS_FILE} does not reproduce their metrics.json",
}


def _reason_kind(why: str) -> str:
    if why == NO_SPEAKER:
        return NO_SPEAKER
    return "missing" if why.startswith("no ") else "mismatch"


def _rows_of(report) -> list[tuple[tuple, list]]:
    """(context, runs) per experiment: the best configuration per family (on dev), the
    folds of a leave-one-session-out experiment pooled into one row."""
    rows: dict[tuple, list] = {}
    for g in report.best_per_family():
        r = g.first
        key = (r.experiment, r.recipe, r.modalities, r.eval_modalities, r.label_set, r.dataset)
        rows.setdefault(key, []).extend(g.runs)
    return list(rows.items())


def actor_view(report, cache: dict | None = None) -> dict | None:
    """The per-actor section as JSON-ready data; None when no run of it has a predictions
    file at all (nothing to say). ``tables``: one per (label set, data set), each with
    ``label_set``, ``data``, ``actors`` (natural order), ``n_utterances`` (actor -> scored
    utterances, or ``[min, max]`` when the runs differ) and ``rows`` (``experiment``,
    ``recipe``, ``modalities``, ``eval_modalities``, ``folds``, ``seeds``, ``n``: runs used,
    ``wf1``: actor -> mean over the runs that test it, ``worst_actor``, ``worst_wf1``,
    ``wf1_mean``: the runs' mean test wF1 from metrics.json); ``left_out``: per reason, the
    run dirs left out; ``notes``: one line per reason."""
    cache = {} if cache is None else cache
    tables: dict[tuple, dict] = {}
    left_out: dict[str, list[str]] = {}
    any_file = False
    for (exp, recipe, mods, eval_mods, label_set, dataset), runs in _rows_of(report):
        used = []
        for r in runs:
            scores, why = run_actor_scores(r, cache)
            kind = None if why is None else _reason_kind(why)
            any_file = any_file or kind != "missing"
            if scores is None:
                left_out.setdefault(kind, []).append(str(r.run_dir))
            else:
                used.append((r, scores))
        if not used:
            continue
        table = tables.setdefault(
            (label_set, dataset),
            {"label_set": label_set, "data": dataset, "n": {}, "rows": []},
        )
        per_actor: dict[str, list[float]] = {}
        for _, scores in used:
            for a, v in scores.items():
                table["n"].setdefault(a, set()).add(v["n"])
                if v["wf1"] is not None:
                    per_actor.setdefault(a, []).append(v["wf1"])
        wf1 = {a: statistics.fmean(xs) for a, xs in per_actor.items()}
        worst = worst_actor({a: {"wf1": v} for a, v in wf1.items()})
        table["rows"].append(
            {
                "experiment": exp,
                "recipe": recipe,
                "modalities": mods_label(mods),
                "eval_modalities": mods_label(eval_mods),
                "folds": [r.fold for r, _ in used if r.fold is not None],
                "seeds": [r.seed for r, _ in used],
                "n": len(used),
                "wf1": wf1,
                "worst_actor": None if worst is None else worst[0],
                "worst_wf1": None if worst is None else worst[1],
                "wf1_mean": statistics.fmean(100.0 * float(r.test["wf1"]) for r, _ in used),
            }
        )
    if not any_file:
        return None
    out = []
    for t in sorted(tables.values(), key=lambda t: -sum(r["n"] for r in t["rows"])):
        actors = sorted(t["n"], key=natural_key)
        n = {a: min(t["n"][a]) if len(t["n"][a]) == 1 else [min(t["n"][a]), max(t["n"][a])]
             for a in actors}  # fmt: skip
        out.append(
            {"label_set": t["label_set"], "data": t["data"], "actors": actors,
             "n_utterances": n, "rows": t["rows"]}
        )  # fmt: skip
    notes = [
        f"Left out of the per-actor table: {len(dirs)} run{'s' * (len(dirs) != 1)} "
        f"{_NOTES[kind]}: {', '.join(dirs)}."
        for kind, dirs in left_out.items()
    ]
    return {"tables": out, "left_out": left_out, "notes": notes}


def run_worst_actor(run, cache: dict) -> tuple[str, float] | None:
    """(actor, wF1 points) of the run's worst actor; None without a usable predictions file
    with speakers."""
    scores, _ = run_actor_scores(run, cache)
    return None if scores is None else worst_actor(scores)


def _cell(v) -> str:
    return "" if v is None else f"{v:.2f}"


def _n_cell(n) -> str:
    return f"{n[0]}–{n[1]}" if isinstance(n, list) else str(n)


def table_markdown(table: dict) -> str:
    """One table of the view as Markdown: rows experiments, a column per actor (or, with
    more than ``MAX_ACTOR_COLUMNS`` actors, their count), the worst actor and the runs'
    mean test wF1; a last row with each actor's utterances."""
    actors = table["actors"]
    wide = len(actors) <= MAX_ACTOR_COLUMNS
    head = ["experiment", "evaluated on", "runs", *(actors if wide else ["actors"])]
    head += ["worst actor", "worst wF1 %", "wF1 %"]
    body = []
    for row in table["rows"]:
        cells = [_cell(row["wf1"].get(a)) for a in actors] if wide else [str(len(row["wf1"]))]
        body.append(
            [
                row["experiment"],
                row["eval_modalities"] or "labels",
                str(row["n"]),
                *cells,
                row["worst_actor"] or "",
                _cell(row["worst_wf1"]),
                f"{row['wf1_mean']:.2f}",
            ]
        )
    if wide:
        n = [_n_cell(table["n_utterances"][a]) for a in actors]
        body.append(["utterances", "", "", *n, "", "", ""])
    return markdown_table(head, body)


def markdown(view: dict | None) -> str:
    """The section "Test weighted F1 per actor" (Markdown); "" for None."""
    if view is None:
        return ""
    parts = [
        "## Test weighted F1 per actor",
        "",
        "Test weighted F1 in % on each actor's utterances (an actor: IEMOCAP's session and "
        "gender; elsewhere a dialogue's speaker), mean over the runs (seeds) that test that "
        "actor; under leave one session out each actor is tested once, in the fold whose test "
        "session is its session. Last row: the actor's utterances (with a known label).",
        "",
    ]
    for t in view["tables"]:
        if len(view["tables"]) > 1:
            parts += [f"On {t['data'] or 'unnamed data'}, {t['label_set']}:", ""]
        parts += [table_markdown(t), ""]
        if len(t["actors"]) > MAX_ACTOR_COLUMNS:
            parts += [
                f"{len(t['actors'])} speakers: too many for a column each (speakers known "
                "within their dialogue only); --json has every one.",
                "",
            ]
    if not view["tables"]:
        parts += ["No run has per-utterance speakers.", ""]
    parts += [*(f"**{note}**" for note in view["notes"]), ""] if view["notes"] else []
    return "\n".join(parts)


def plot_rows(view: dict | None) -> list[tuple[dict, Sequence[str]]]:
    """The tables the figure shows: those with at most ``MAX_ACTOR_COLUMNS`` actors, with
    their actors."""
    return [
        (t, t["actors"])
        for t in (view or {}).get("tables", [])
        if t["rows"] and 0 < len(t["actors"]) <= MAX_ACTOR_COLUMNS
    ]


__all__ = [
    "MAX_ACTOR_COLUMNS",
    "actor_scores",
    "actor_view",
    "markdown",
    "natural_key",
    "plot_rows",
    "run_actor_scores",
    "run_worst_actor",
    "table_markdown",
    "worst_actor",
]
