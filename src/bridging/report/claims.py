"""The claims section of bridging-report: does distillation or masking give a better
speech-only model? Paired differences over seeds with bootstrap confidence intervals.

The comparison's experiments (as ``bridging-reproduce`` names them, on IEMOCAP and on MELD):
``teacher`` (multimodal: a+v, or a+t on MELD, evaluated on its modalities),
``av_eval_speech_only`` (that teacher, all but audio zeroed), ``audio_only``, ``student_kd``,
``masked``, ``masked_nognn``, ``audio_dropout``; reference rows ``logreg_a``, ``logreg_av``
or ``logreg_at`` (:func:`bridging.runs.baselines.run_logreg`) and
``annotation_ceiling`` (:func:`bridging.runs.baselines.write_ceiling_run`). Each experiment is
one configuration (its best on dev when a sweep gives several), all on the same data: the
data and label set most of the comparison's runs share.

Each claim "A beats B" (or "A is comparable to B") is tested on the **paired** difference
A - B of test weighted F1, in points: per seed, the run of A and the run of B with that seed
(same seed, same test data: the same utterances with the same gold labels, checked), then the
mean over seeds. Its 95% confidence interval is a percentile bootstrap over test dialogues
and seeds: each resample draws the seeds with replacement and, within each drawn seed, the
test dialogues with replacement, the *same* dialogue draw for both arms; both arms' wF1 are
recomputed on it from the saved per-utterance predictions (:mod:`bridging.data.predictions`) and
the differences averaged over the drawn seeds.

Under leave-one-session-out (runs whose data summary says ``protocol: loso``; an arm then
holds the runs of every fold) the pairs are (fold, seed), the mean is the mean over folds of
each fold's mean over seeds, and the bootstrap is hierarchical: each resample draws the folds
with replacement, within each drawn fold its seeds, within each drawn (fold, seed) its test
dialogues (:func:`bridging.report.stats.hierarchical_draws`; with one fold it is exactly the
bootstrap above). The formulas, and the functions that compute them: :mod:`bridging.report.stats`.
Verdicts:

- "A beats B": holds when the whole CI is above 0, does not hold when it lies at or below 0,
  else undecided (CI spans 0);
- "A is comparable to B within m points": holds when the whole CI lies within [-m, m], does
  not hold when it lies wholly outside, else undecided.

Power, for every claim: the CI's half-width h = (hi - lo) / 2, and the replicates (seeds;
fold x seed pairs under loso) a decision would need at the spread observed,
``ceil(n * (h / d)^2)`` with n the replicates now and d the distance of the mean from the
decision boundary (|mean| for "beats", | m - |mean| | for "comparable"): the n at which a CI
shrinking as 1/sqrt(n) would stop straddling the boundary (:func:`bridging.report.stats.power`).

This module assembles the arms from the report's runs (:func:`comparison_arms`), evaluates the
claims (:func:`analyse`) and renders the section (:func:`markdown`, CSV and JSON rows).

A claim is skipped, with the reason in its line, when an arm has no runs, no predictions
file, predictions that do not reproduce its metrics.json, or when the two arms' seeds or
test data differ. Everything here is a pure function of the runs; the bootstrap draws come
from ``numpy.random.default_rng(seed)``, fresh for each claim and each row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from bridging.report.markdown import markdown_table
from bridging.report.runs import load_predictions
from bridging.report.stats import (
    BOOT_SEED,
    LEVEL,
    N_BOOT,
    fold_mean,
    hierarchical_arm_interval,
    hierarchical_paired_difference,
    power,
)

#: default of bridging-report's --margin (--bootstrap, --bootstrap-seed: :mod:`.stats`)
MARGIN = 2.0

FULL = "full"  # evaluated on every modality it was trained on
SPEECH = ("a",)
#: (experiment, what it is evaluated on, note): the comparison's rows, in table order
COMPARISON = (
    ("teacher", FULL, "multimodal teacher (upper reference)"),
    ("av_eval_speech_only", SPEECH, "the teacher, all but audio zeroed"),
    ("audio_only", SPEECH, "speech-only baseline"),
    ("student_kd", SPEECH, "distilled from the teacher"),
    ("masked", SPEECH, "masked training"),
    ("masked_nognn", SPEECH, "masked training, no GNN"),
    ("audio_dropout", SPEECH, "the authors' 20% audio feature dropout"),
)
REFERENCE = (
    ("logreg_a", None, "reference: per-utterance logistic regression"),
    ("logreg_av", None, "reference: per-utterance logistic regression"),
    ("logreg_at", None, "reference: per-utterance logistic regression"),
    ("annotation_ceiling", None, "reference: latent emotion vs the stored labels"),
)


@dataclass(frozen=True)
class ClaimSpec:
    number: int
    key: str
    text: str
    a: str
    b: str
    kind: str = "beats"  # or "comparable"
    optional: bool = False  # listed only when arm a has runs


CLAIMS = (
    ClaimSpec(1, "kd_vs_teacher", "the KD student is comparable to its teacher", "student_kd",
              "teacher", "comparable"),
    ClaimSpec(2, "kd_vs_audio", "the KD student beats the audio-only baseline", "student_kd",
              "audio_only"),
    ClaimSpec(3, "masked_vs_audio",
              "masked training beats the audio-only baseline on speech-only test", "masked",
              "audio_only"),
    ClaimSpec(4, "masked_vs_av_speech",
              "masked training beats the multimodal model evaluated speech-only", "masked",
              "av_eval_speech_only"),
    ClaimSpec(5, "nognn_vs_audio",
              "masked training without the GNN beats the audio-only baseline", "masked_nognn",
              "audio_only"),
    ClaimSpec(6, "dropout_vs_audio", "audio dropout beats the audio-only baseline",
              "audio_dropout", "audio_only", optional=True),
)  # fmt: skip


# ---------------------------------------------------------------------------------------------
# verdicts (the statistics themselves: bridging.report.stats)
# ---------------------------------------------------------------------------------------------


def verdict_beats(lo: float, hi: float) -> str:
    """ "A beats B" from the CI [lo, hi] of A - B: holds above 0, does not hold at or below."""
    if lo > 0:
        return "holds"
    if hi <= 0:
        return "does not hold"
    return "undecided (CI spans 0)"


def verdict_comparable(lo: float, hi: float, margin: float) -> str:
    """ "A is comparable to B within ±margin" from the CI [lo, hi] of A - B: holds inside
    [-margin, margin], does not hold wholly outside it."""
    if -margin <= lo and hi <= margin:
        return "holds"
    if lo > margin or hi < -margin:
        return "does not hold"
    return f"undecided (CI crosses ±{margin:g})"


# ---------------------------------------------------------------------------------------------
# the comparison's runs
# ---------------------------------------------------------------------------------------------


@dataclass
class Arm:
    """One experiment of the comparison: its configuration's runs, by fold (under loso) and
    seed."""

    experiment: str
    note: str
    runs: list = field(default_factory=list)  # Run objects, sorted by (fold, seed)
    problem: str | None = None  # why it cannot enter a paired claim

    @property
    def first(self):
        return self.runs[0]

    @property
    def seeds(self) -> list:
        return [r.seed for r in self.runs]

    @property
    def replicates(self) -> list[tuple]:
        """(fold, seed) of each run (fold None under the paper protocol)."""
        return [(r.fold, r.seed) for r in self.runs]

    @property
    def loso(self) -> bool:
        return any(r.fold is not None for r in self.runs)

    def by_fold(self, items=None) -> list[list]:
        """``items`` (default: the runs), one per run, grouped by the runs' folds in order."""
        items = self.runs if items is None else items
        out: dict = {}
        for r, x in zip(self.runs, items):
            out.setdefault(r.fold, []).append(x)
        return list(out.values())


def _replicate_key(run) -> tuple:
    return (run.fold is None, run.fold or 0, run.seed is None, run.seed or 0)


def _fits(run, evaluated) -> bool:
    if evaluated is None:
        return True
    if evaluated == FULL:
        return run.eval_modalities == run.modalities
    return tuple(run.eval_modalities) == tuple(evaluated)


def comparison_arms(report) -> tuple[dict[str, Arm], tuple | None, list]:
    """The comparison's experiments found among the report's runs (name -> Arm, in table
    order), the (label set, data) they were chosen on (the one with the most runs) and the
    other (label set, data) pairs whose runs are left out; under loso the data set without
    the fold, an arm holding its configuration's runs of every fold (one configuration per
    fold: each fold's best on dev)."""
    specs = COMPARISON + REFERENCE
    cands: dict[str, list] = {}
    for name, evaluated, _ in specs:
        groups = [
            g
            for g in report.best_per_family()
            if g.first.experiment == name and _fits(g.first, evaluated)
        ]
        if groups:
            cands[name] = groups
    if not cands:
        return {}, None, []
    contexts = Counter((g.first.label_set, g.first.dataset) for gs in cands.values() for g in gs)
    context = max(contexts, key=contexts.get)  # the most common; ties: the first seen
    left_out = sorted(c for c in contexts if c != context)
    arms = {}
    for name, _, note in specs:
        folds: dict = {}
        for g in cands.get(name, []):
            if (g.first.label_set, g.first.dataset) == context:
                folds.setdefault(g.first.fold, []).append(g)
        if not folds:
            continue
        runs = [r for groups in folds.values() for r in groups[0].runs]
        arm = Arm(name, note, sorted(runs, key=_replicate_key))
        several = next((groups for groups in folds.values() if len(groups) > 1), None)
        if several:
            mods = ", ".join("+".join(g.first.modalities) for g in several)
            arm.problem = f"{name} has several configurations on this data (trained on {mods})"
        reps = arm.replicates
        dup = sorted({x for x in reps if reps.count(x) > 1}, key=str)
        if dup and not arm.problem:
            fold, s = dup[0]
            where = f"seed {s}" if fold is None else f"fold {fold} seed {s}"
            arm.problem = f"{name} has several runs with {where}"
        arms[name] = arm
    return arms, context, left_out


def _arm_predictions(arm: Arm, cache: dict) -> tuple[list | None, str | None]:
    preds = []
    for r in arm.runs:
        p, why = load_predictions(r, cache)
        if p is None:
            return None, f"{arm.experiment}: {why}"
        preds.append(p)
    return preds, None


def _seeds(seeds) -> str:
    return ",".join("-" if s is None else str(s) for s in seeds)


def _replicates(folds, seeds) -> str:
    """The seeds (paper), or the fold x seed pairs: ``folds 1,2 × seeds 0,1`` for a full
    grid, else ``1/0,2/1``."""
    if not folds:
        return _seeds(seeds)
    pairs = list(zip(folds, seeds))
    fs = sorted(set(folds), key=str)
    ss = sorted(set(seeds), key=str)
    if len(pairs) == len(set(pairs)) == len(fs) * len(ss):
        return f"folds {_seeds(fs)} × seeds {_seeds(ss)}"
    return ",".join(f"{f}/{'-' if s is None else s}" for f, s in pairs)


def _unit(loso: bool, n: int) -> str:
    if loso:
        return "fold × seed replicate" + "s" * (n != 1)
    return "seed" + "s" * (n != 1)


def decision_note(row: dict) -> str:
    """What the claim's CI says about power: its half-width and the replicates a decision
    would need at this spread (:func:`power`)."""
    h, n, need = row["half_width"], row["replicates"], row["replicates_needed"]
    loso = bool(row["folds"])
    text = f"CI half-width {h:.2f} points; "
    if row["verdict"].startswith("undecided"):
        if need is None:
            return text + (
                f"the mean sits on the decision boundary: no number of {_unit(loso, 2)} "
                "would decide it at this spread"
            )
        return text + f"about {need} {_unit(loso, need)} would decide it at this spread"
    about = "" if need is None else f" (about {need} would at this spread)"
    return text + f"decided with {n} {_unit(loso, n)}{about}"


def evaluate_claim(spec: ClaimSpec, arms: dict, cache: dict, margin, n_boot, seed) -> dict:
    """One claim line as a JSON-ready dict (see :func:`analyse`)."""
    text = spec.text + (f" (within ±{margin:g} wF1 points)" if spec.kind == "comparable" else "")
    row = {
        "number": spec.number,
        "claim": spec.key,
        "text": text,
        "a": spec.a,
        "b": spec.b,
        "margin": margin if spec.kind == "comparable" else None,
        "folds": [],
        "seeds": [],
        "differences": [],
        "fold_means": [],
        "mean": None,
        "ci_low": None,
        "ci_high": None,
        "half_width": None,
        "replicates": None,
        "replicates_needed": None,
        "verdict": None,
        "decision": None,
        "reason": None,
    }

    def skip(reason):
        row["verdict"] = "skipped"
        row["reason"] = reason
        return row

    missing = [x for x in (spec.a, spec.b) if x not in arms]
    if missing:
        return skip(f"no paired runs: no runs of {' or '.join(missing)}")
    a, b = arms[spec.a], arms[spec.b]
    for arm in (a, b):
        if arm.problem:
            return skip(f"no paired runs: {arm.problem}")
    loso = a.loso or b.loso
    if None in a.seeds or None in b.seeds or a.replicates != b.replicates:
        if not loso:
            return skip(
                f"no paired runs: seeds differ ({a.experiment} {_seeds(a.seeds)}; "
                f"{b.experiment} {_seeds(b.seeds)})"
            )
        fa, fb = ([r.fold for r in x.runs] for x in (a, b))
        return skip(
            f"no paired runs: fold × seed pairs differ ({a.experiment} "
            f"{_replicates(fa, a.seeds)}; {b.experiment} {_replicates(fb, b.seeds)})"
        )
    pa, why = _arm_predictions(a, cache)
    pb, why_b = (None, None) if pa is None else _arm_predictions(b, cache)
    if pa is None or pb is None:
        return skip(f"no paired runs: {why or why_b}")
    for (f, s), x, y in zip(a.replicates, pa, pb):
        if not x.same_items(y):
            where = f"seed {s}" if f is None else f"fold {f} seed {s}"
            return skip(f"no paired runs: different test data at {where}")
    conf_a = a.by_fold([x.dialogues()[1] for x in pa])
    conf_b = a.by_fold([y.dialogues()[1] for y in pb])
    res = hierarchical_paired_difference(conf_a, conf_b, n_boot=n_boot, seed=seed)
    lo, hi = res["ci"]
    row.update(
        folds=[r.fold for r in a.runs] if loso else [],
        seeds=list(a.seeds),
        differences=[d for fold in res["per_replicate"] for d in fold],
        fold_means=[float(np.mean(x)) for x in res["per_replicate"]] if loso else [],
        mean=res["mean"],
        ci_low=lo,
        ci_high=hi,
        verdict=verdict_comparable(lo, hi, margin)
        if spec.kind == "comparable"
        else verdict_beats(lo, hi),
        **{
            k: v
            for k, v in power(spec.kind, res["mean"], lo, hi, len(a.runs), margin).items()
            if k != "distance"
        },
    )
    row["decision"] = decision_note(row)
    return row


def comparison_row(arm: Arm, cache: dict, n_boot, seed) -> dict:
    """One experiment's row: mean test wF1 over its runs (metrics.json; under loso the mean
    over folds of the per-fold means over seeds, each fold's in ``fold_wf1``) and its CI
    (bootstrap over folds, seeds and test dialogues, from the predictions; None without
    them)."""
    r = arm.first
    wf1 = arm.by_fold([100 * float(x.test["wf1"]) for x in arm.runs])
    row = {
        "experiment": arm.experiment,
        "note": arm.note,
        "recipe": r.recipe,
        "modalities": "+".join(r.modalities),
        "eval_modalities": "+".join(r.eval_modalities),
        "folds": [x.fold for x in arm.runs] if arm.loso else [],
        "seeds": [x.seed for x in arm.runs],
        "n": len(arm.runs),
        "wf1_mean": fold_mean(wf1),
        "fold_wf1": [float(np.mean(x)) for x in wf1] if arm.loso else [],
        "ci_low": None,
        "ci_high": None,
        "ci_reason": None,
    }
    preds, why = _arm_predictions(arm, cache)
    if preds is None:
        row["ci_reason"] = why
        return row
    conf = arm.by_fold([p.dialogues()[1] for p in preds])
    res = hierarchical_arm_interval(conf, n_boot=n_boot, seed=seed)
    row["ci_low"], row["ci_high"] = res["ci"]
    return row


def analyse(report, margin=MARGIN, n_boot=N_BOOT, seed=BOOT_SEED) -> dict | None:
    """The claims section as JSON-ready data: ``context`` (label set, data, protocol, folds),
    ``bootstrap`` (resamples, RNG seed, level, margin), ``comparison`` (one row per
    experiment found), ``claims`` (one row per claim: number, claim, text, a, b, margin,
    folds and seeds of the pairs, differences (points, per pair), fold_means, mean, ci_low,
    ci_high, half_width, replicates, replicates_needed, verdict, decision, reason). None
    unless at least two of the comparison's experiments are among the runs."""
    arms, context, left_out = comparison_arms(report)
    if sum(1 for name, _, _ in COMPARISON if name in arms) < 2:
        return None
    cache = getattr(report, "predictions_cache", None)
    cache = {} if cache is None else cache  # the predictions, shared with the per-actor view
    claims = [
        evaluate_claim(spec, arms, cache, margin, n_boot, seed)
        for spec in CLAIMS
        if not spec.optional or spec.a in arms
    ]
    folds = sorted({r.fold for arm in arms.values() for r in arm.runs if r.fold is not None})
    left_out = [f"{data or 'unnamed data'}, {label_set}" for label_set, data in left_out]
    return {
        "context": {
            "label_set": context[0],
            "data": context[1],
            "protocol": "loso" if folds else "paper",
            "folds": folds,
            "left_out": left_out,
        },
        "bootstrap": {"resamples": n_boot, "seed": seed, "level": LEVEL, "margin": margin},
        "comparison": [comparison_row(arm, cache, n_boot, seed) for arm in arms.values()],
        "claims": claims,
        "arms": arms,
    }


# ---------------------------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------------------------


def _signed(v: float) -> str:
    return f"{v:+.2f}"


POWER_NOTE = (
    "Power: ± is the CI's half-width h = (high − low) / 2; n needed = ⌈n · (h / d)²⌉, n "
    "the {unit} now, d the distance of the mean from the decision boundary (|mean| for "
    '"beats", |m − |mean|| for "comparable within ±m"): the {unit} at which the CI, '
    "shrinking as 1/√n at the spread observed, would stop straddling the boundary (a rough "
    "guide; ∞: the mean sits on the boundary)."
)


def claim_line(c: dict) -> list[str]:
    """A claim's cells: #, claim, A − B, seeds (or fold × seed pairs), per-seed (per-fold)
    differences, mean, CI, half-width, replicates needed, verdict (an undecided one says
    what would decide it)."""
    pair = f"{c['a']} − {c['b']}"
    if c["verdict"] == "skipped":
        return [str(c["number"]), c["text"], pair, *[""] * 6, f"skipped: {c['reason']}"]
    per = c["fold_means"] if c["folds"] else c["differences"]
    need = c["replicates_needed"]
    verdict = c["verdict"]
    if verdict.startswith("undecided"):
        verdict += f": {c['decision']}"
    return [
        str(c["number"]),
        c["text"],
        pair,
        _replicates(c["folds"], c["seeds"]),
        ", ".join(_signed(d) for d in per),
        _signed(c["mean"]),
        f"[{_signed(c['ci_low'])}, {_signed(c['ci_high'])}]",
        f"{c['half_width']:.2f}",
        "∞" if need is None else str(need),
        verdict,
    ]


def fold_table(result: dict) -> str:
    """Under loso: each experiment's test wF1 per fold (mean over its seeds) and the mean
    over folds, as Markdown; "" for the paper protocol."""
    folds = result["context"].get("folds") or []
    if not folds:
        return ""
    body = []
    for row in result["comparison"]:
        by_fold = dict(zip(sorted(set(row["folds"])), row["fold_wf1"]))
        cells = [f"{by_fold[k]:.2f}" if k in by_fold else "" for k in folds]
        body.append([row["experiment"], row["eval_modalities"], *cells, f"{row['wf1_mean']:.2f}"])
    head = ["experiment", "evaluated on", *(f"fold {k}" for k in folds), "mean"]
    return markdown_table(head, body)


def markdown(result: dict) -> str:
    """The Claims section (Markdown): under loso first the per-fold table; the comparison's
    rows with their CIs, then one line per claim with its power."""
    ctx, boot = result["context"], result["bootstrap"]
    level = f"{100 * boot['level']:g}%"
    data = f"{ctx['data']}, " if ctx["data"] else ""
    loso = bool(ctx.get("folds"))
    draws = f"({boot['resamples']} resamples, RNG seed {boot['seed']})"
    parts = []
    if loso:
        parts += [
            "## Test weighted F1 per fold",
            "",
            f"On {data}{ctx['label_set']} (fold k tests on session k): test weighted F1 in %, "
            "mean over each fold's seeds; the last column is the mean over folds.",
            "",
            fold_table(result),
            "",
        ]
        parts += [
            "## Claims",
            "",
            f"On {data}{ctx['label_set']}: test weighted F1 in %, mean over folds "
            f"{_seeds(ctx['folds'])} of the mean over each fold's seeds; {level} CI by "
            "hierarchical bootstrap: folds resampled with replacement, then within each drawn "
            "fold its seeds, then within each drawn (fold, seed) its test dialogues "
            f"{draws}.",
            "",
        ]
    else:
        parts += [
            "## Claims",
            "",
            f"On {data}{ctx['label_set']}: test weighted F1 in %, mean over seeds; {level} CI "
            f"by bootstrap over seeds and test dialogues {draws}.",
            "",
        ]
    if ctx.get("left_out"):
        others = "; ".join(ctx["left_out"])
        parts += [
            f"**Not in these claims**: the comparison's runs on {others}. Claims pair runs of "
            "one data set, label set and protocol (paper or loso), chosen here as the one with "
            "the most runs; give the other runs' folders to bridging-report on their own for "
            "their claims.",
            "",
        ]
    body = []
    for row in result["comparison"]:
        ci = (
            f"[{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
            if row["ci_low"] is not None
            else "no predictions"
        )
        body.append(
            [
                row["experiment"],
                row["note"],
                row["modalities"],
                row["eval_modalities"],
                _replicates(row["folds"], row["seeds"]),
                f"{row['wf1_mean']:.2f}",
                ci,
            ]
        )
    reps = "folds × seeds" if loso else "seeds"
    head = ["experiment", "what", "trained on", "evaluated on", reps, "wF1 %", f"{level} CI"]
    parts += [markdown_table(head, body), ""]
    if loso:
        parts += [
            "Each claim: the paired difference A − B in wF1 points (same fold, same seed, "
            "same test dialogues), per fold (the mean over its seeds) and the mean over "
            f"folds; {level} CI by hierarchical bootstrap (folds resampled with replacement, "
            "then each drawn fold's seeds, then each drawn (fold, seed)'s test dialogues, one "
            'draw for both arms). A claim "beats" holds when the CI lies above 0; '
            '"comparable" when it lies within the margin.',
            "",
        ]
    else:
        parts += [
            "Each claim: the paired difference A − B in wF1 points (same seed, same test "
            f"dialogues), per seed and its mean; {level} CI by bootstrap (seeds resampled with "
            "replacement, then each seed's test dialogues, one draw for both arms). A claim "
            '"beats" holds when the CI lies above 0; "comparable" when it lies within the '
            "margin.",
            "",
        ]
    parts += [POWER_NOTE.format(unit="fold × seed replicates" if loso else "seeds"), ""]
    per = "per fold" if loso else "per seed"
    head = ["#", "claim", "A − B", reps, per, "mean", f"{level} CI", "±", "n needed", "verdict"]
    parts += [markdown_table(head, [claim_line(c) for c in result["claims"]]), ""]
    return "\n".join(parts)


CLAIM_COLUMNS = (
    "number", "claim", "text", "a", "b", "margin", "folds", "seeds", "differences",
    "fold_means", "mean", "ci_low", "ci_high", "half_width", "replicates", "replicates_needed",
    "verdict", "decision", "reason",
)  # fmt: skip
COMPARISON_COLUMNS = (
    "experiment", "note", "recipe", "modalities", "eval_modalities", "folds", "seeds", "n",
    "wf1_mean", "fold_wf1", "ci_low", "ci_high", "ci_reason",
)  # fmt: skip


def flat_rows(rows: Sequence[dict]) -> list[dict]:
    """Rows for CSV: lists joined with spaces."""
    out = []
    for row in rows:
        out.append(
            {
                k: " ".join("" if x is None else f"{x:g}" if isinstance(x, float) else str(x)
                            for x in v) if isinstance(v, list) else v
                for k, v in row.items()
            }
        )  # fmt: skip
    return out


def json_ready(result: dict) -> dict:
    """The analysis without the Run objects."""
    return {k: v for k, v in result.items() if k != "arms"}


__all__ = [
    "CLAIMS",
    "CLAIM_COLUMNS",
    "COMPARISON",
    "COMPARISON_COLUMNS",
    "MARGIN",
    "REFERENCE",
    "Arm",
    "ClaimSpec",
    "analyse",
    "comparison_arms",
    "flat_rows",
    "fold_table",
    "json_ready",
    "markdown",
    "verdict_beats",
    "verdict_comparable",
]
