"""The claims section of bridging-report: does distillation or masking give a better
speech-only model? Paired differences over seeds with bootstrap confidence intervals.

The comparison's experiments (as ``bridging-reproduce`` names them, on IEMOCAP and on MELD):
``teacher`` (multimodal: a+v, or a+t on MELD, evaluated on its modalities),
``av_eval_speech_only`` (that teacher, all but audio zeroed), ``audio_only``, ``student_kd``,
``masked``, ``masked_nognn``, ``audio_dropout``; reference rows ``logreg_a``, ``logreg_av``
or ``logreg_at`` (:func:`bridging.baselines.run_logreg`) and
``annotation_ceiling`` (:func:`bridging.baselines.write_ceiling_run`). Each experiment is
one configuration (its best on dev when a sweep gives several), all on the same data: the
data and label set most of the comparison's runs share.

Each claim "A beats B" (or "A is comparable to B") is tested on the **paired** difference
A - B of test weighted F1, in points: per seed, the run of A and the run of B with that seed
(same seed, same test data: the same utterances with the same gold labels, checked), then the
mean over seeds. Its 95% confidence interval is a percentile bootstrap over test dialogues
and seeds: each resample draws the seeds with replacement and, within each drawn seed, the
test dialogues with replacement, the *same* dialogue draw for both arms; both arms' wF1 are
recomputed on it from the saved per-utterance predictions (:mod:`bridging.predictions`) and
the differences averaged over the drawn seeds. Verdicts:

- "A beats B": holds when the whole CI is above 0, does not hold when it lies at or below 0,
  else undecided (CI spans 0);
- "A is comparable to B within m points": holds when the whole CI lies within [-m, m], does
  not hold when it lies wholly outside, else undecided.

A claim is skipped, with the reason in its line, when an arm has no runs, no predictions
file, predictions that do not reproduce its metrics.json, or when the two arms' seeds or
test data differ. Everything here is a pure function of the runs; the bootstrap draws come
from ``numpy.random.default_rng(seed)``, fresh for each claim and each row.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridging.predictions import PREDICTIONS_FILE, Predictions, PredictionsError, f1_scores

#: defaults of bridging-report's --margin, --bootstrap, --bootstrap-seed
MARGIN = 2.0
N_BOOT = 5000
BOOT_SEED = 0
LEVEL = 0.95
#: a predictions file must reproduce its run's test wF1 to this (torchmetrics is float32)
TOLERANCE = 1e-5

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
# statistics (pure functions on per-dialogue confusion counts)
# ---------------------------------------------------------------------------------------------


def bootstrap_draws(n_dialogues: Sequence[int], n_boot: int, seed: int):
    """The resamples: ``seed_idx`` [B, S] (S = len(n_dialogues) seeds drawn with replacement)
    and ``counts`` [B, S, D_max]: how often each dialogue of the drawn seed is drawn (D_s
    dialogues drawn with replacement from seed s's D_s). The draws, in this order, from
    ``numpy.random.default_rng(seed)``: ``integers(0, S, (B, S))`` then
    ``integers(0, D[seed_idx][..., None], (B, S, D_max))`` of which the first D_s are used."""
    d = np.asarray(n_dialogues, dtype=np.int64)
    if d.ndim != 1 or len(d) == 0 or d.min() < 1:
        raise ValueError(f"n_dialogues: expected one positive count per seed, got {n_dialogues}")
    s, d_max = len(d), int(d.max())
    rng = np.random.default_rng(seed)
    seed_idx = rng.integers(0, s, size=(n_boot, s))
    high = d[seed_idx][..., None]
    dlg = rng.integers(0, high, size=(n_boot, s, d_max))
    valid = np.arange(d_max) < high
    slot = np.arange(n_boot * s).reshape(n_boot, s, 1) * d_max
    counts = np.bincount((slot + dlg)[valid], minlength=n_boot * s * d_max)
    return seed_idx, counts.reshape(n_boot, s, d_max)


def resampled_wf1(confusions: Sequence[np.ndarray], seed_idx, counts) -> np.ndarray:
    """wF1 [B, S] of one arm on every drawn (seed, dialogue multiset): ``confusions[s]`` is
    the arm's per-dialogue confusion counts [D_s, K, K'] at seed s."""
    b, s = seed_idx.shape
    shape = confusions[0].shape[1:]
    total = np.zeros((b, s, int(np.prod(shape))))
    for j, conf in enumerate(confusions):
        sel = seed_idx == j
        flat = np.asarray(conf, dtype=np.float64).reshape(len(conf), -1)
        total[sel] = counts[sel][:, : len(conf)] @ flat
    return f1_scores(total.reshape(b, s, *shape))["wf1"]


def _interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    lo, hi = np.percentile(replicates, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def _full_wf1(conf: np.ndarray) -> float:
    return float(f1_scores(np.asarray(conf).sum(0))["wf1"])


def arm_interval(confusions, n_boot=N_BOOT, seed=BOOT_SEED, level=LEVEL) -> dict:
    """One arm: per-seed test wF1 (points), their mean, and the bootstrap CI of the mean."""
    per_seed = [100 * _full_wf1(c) for c in confusions]
    seed_idx, counts = bootstrap_draws([len(c) for c in confusions], n_boot, seed)
    reps = 100 * resampled_wf1(confusions, seed_idx, counts).mean(-1)
    return {"per_seed": per_seed, "mean": float(np.mean(per_seed)), "ci": _interval(reps, level)}


def paired_difference(conf_a, conf_b, n_boot=N_BOOT, seed=BOOT_SEED, level=LEVEL) -> dict:
    """Arm A minus arm B in wF1 points: per seed (``conf_a[s]``, ``conf_b[s]``: the two arms'
    per-dialogue confusions [D_s, K, K'] on the same dialogues), the mean over seeds, and the
    CI of the mean by the paired bootstrap (one draw for both arms)."""
    if len(conf_a) != len(conf_b) or any(
        np.shape(x) != np.shape(y) for x, y in zip(conf_a, conf_b)
    ):
        raise ValueError("paired_difference: both arms need the same seeds and dialogues")
    per_seed = [100 * (_full_wf1(x) - _full_wf1(y)) for x, y in zip(conf_a, conf_b)]
    seed_idx, counts = bootstrap_draws([len(c) for c in conf_a], n_boot, seed)
    diff = resampled_wf1(conf_a, seed_idx, counts) - resampled_wf1(conf_b, seed_idx, counts)
    reps = 100 * diff.mean(-1)
    return {"per_seed": per_seed, "mean": float(np.mean(per_seed)), "ci": _interval(reps, level)}


def verdict_beats(lo: float, hi: float) -> str:
    if lo > 0:
        return "holds"
    if hi <= 0:
        return "does not hold"
    return "undecided (CI spans 0)"


def verdict_comparable(lo: float, hi: float, margin: float) -> str:
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
    """One experiment of the comparison: its configuration's runs, by seed."""

    experiment: str
    note: str
    runs: list = field(default_factory=list)  # Run objects, sorted by seed
    problem: str | None = None  # why it cannot enter a paired claim

    @property
    def first(self):
        return self.runs[0]

    @property
    def seeds(self) -> list:
        return [r.seed for r in self.runs]


def _fits(run, evaluated) -> bool:
    if evaluated is None:
        return True
    if evaluated == FULL:
        return run.eval_modalities == run.modalities
    return tuple(run.eval_modalities) == tuple(evaluated)


def comparison_arms(report) -> tuple[dict[str, Arm], tuple | None]:
    """The comparison's experiments found among the report's runs (name -> Arm, in table
    order) and the (label set, data) they were chosen on."""
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
        return {}, None
    contexts = Counter((g.first.label_set, g.first.data) for gs in cands.values() for g in gs)
    context = max(contexts, key=contexts.get)  # the most common; ties: the first seen
    arms = {}
    for name, _, note in specs:
        groups = [g for g in cands.get(name, []) if (g.first.label_set, g.first.data) == context]
        if not groups:
            continue
        arm = Arm(name, note, sorted(groups[0].runs, key=lambda r: (r.seed is None, r.seed or 0)))
        if len(groups) > 1:
            mods = ", ".join("+".join(g.first.modalities) for g in groups)
            arm.problem = f"{name} has several configurations on this data (trained on {mods})"
        seeds = arm.seeds
        if len(set(seeds)) != len(seeds):
            dup = sorted({s for s in seeds if seeds.count(s) > 1}, key=str)
            arm.problem = arm.problem or f"{name} has several runs with seed {dup[0]}"
        arms[name] = arm
    return arms, context


def load_predictions(run, cache: dict) -> tuple[Predictions | None, str | None]:
    """The run's test predictions, checked against its metrics.json; (None, reason) when the
    file is absent or does not reproduce the metrics. A malformed file raises ReportError."""
    from bridging.report import ReportError

    path = Path(run.run_dir) / PREDICTIONS_FILE
    if path in cache:
        return cache[path]
    if not path.is_file():
        out = (None, f"no {PREDICTIONS_FILE} in {run.run_dir}")
    else:
        try:
            preds = Predictions.load(path)
        except PredictionsError as e:
            raise ReportError(str(e)) from e
        if list(preds.label_names) != list(run.label_names):
            raise ReportError(
                f"{path}: label_names: expected {run.label_names} as in {run.path.name}"
            )
        wf1 = preds.scores()["wf1"]
        if abs(wf1 - float(run.test["wf1"])) > TOLERANCE:
            out = (
                None,
                f"{path} does not reproduce {run.path} (test wF1 {100 * wf1:.4f} vs "
                f"{100 * float(run.test['wf1']):.4f})",
            )
        else:
            out = (preds, None)
    cache[path] = out
    return out


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
        "seeds": [],
        "differences": [],
        "mean": None,
        "ci_low": None,
        "ci_high": None,
        "verdict": None,
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
    if None in a.seeds or None in b.seeds or sorted(a.seeds) != sorted(b.seeds):
        return skip(
            f"no paired runs: seeds differ ({a.experiment} {_seeds(a.seeds)}; "
            f"{b.experiment} {_seeds(b.seeds)})"
        )
    pa, why = _arm_predictions(a, cache)
    pb, why_b = (None, None) if pa is None else _arm_predictions(b, cache)
    if pa is None or pb is None:
        return skip(f"no paired runs: {why or why_b}")
    conf_a, conf_b = [], []
    for s, x, y in zip(a.seeds, pa, pb):
        if not x.same_items(y):
            return skip(f"no paired runs: different test data at seed {s}")
        conf_a.append(x.dialogues()[1])
        conf_b.append(y.dialogues()[1])
    res = paired_difference(conf_a, conf_b, n_boot=n_boot, seed=seed)
    lo, hi = res["ci"]
    row.update(
        seeds=list(a.seeds),
        differences=res["per_seed"],
        mean=res["mean"],
        ci_low=lo,
        ci_high=hi,
        verdict=verdict_comparable(lo, hi, margin)
        if spec.kind == "comparable"
        else verdict_beats(lo, hi),
    )
    return row


def comparison_row(arm: Arm, cache: dict, n_boot, seed) -> dict:
    """One experiment's row: mean test wF1 over its runs (metrics.json) and its CI (bootstrap
    over seeds and test dialogues, from the predictions; None without them)."""
    r = arm.first
    wf1 = [100 * float(x.test["wf1"]) for x in arm.runs]
    row = {
        "experiment": arm.experiment,
        "note": arm.note,
        "recipe": r.recipe,
        "modalities": "+".join(r.modalities),
        "eval_modalities": "+".join(r.eval_modalities),
        "seeds": [x.seed for x in arm.runs],
        "n": len(arm.runs),
        "wf1_mean": float(np.mean(wf1)),
        "ci_low": None,
        "ci_high": None,
        "ci_reason": None,
    }
    preds, why = _arm_predictions(arm, cache)
    if preds is None:
        row["ci_reason"] = why
        return row
    res = arm_interval([p.dialogues()[1] for p in preds], n_boot=n_boot, seed=seed)
    row["ci_low"], row["ci_high"] = res["ci"]
    return row


def analyse(report, margin=MARGIN, n_boot=N_BOOT, seed=BOOT_SEED) -> dict | None:
    """The claims section as JSON-ready data: ``context`` (label set, data), ``bootstrap``
    (resamples, RNG seed, level), ``comparison`` (one row per experiment found), ``claims``
    (one row per claim: number, claim, text, a, b, margin, seeds, differences (points, per
    seed), mean, ci_low, ci_high, verdict, reason). None unless at least two of the
    comparison's experiments are among the runs."""
    arms, context = comparison_arms(report)
    if sum(1 for name, _, _ in COMPARISON if name in arms) < 2:
        return None
    cache: dict = {}
    claims = [
        evaluate_claim(spec, arms, cache, margin, n_boot, seed)
        for spec in CLAIMS
        if not spec.optional or spec.a in arms
    ]
    return {
        "context": {"label_set": context[0], "data": context[1]},
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


def claim_line(c: dict) -> list[str]:
    """A claim's cells: #, claim, A − B, seeds, per-seed differences, mean, CI, verdict."""
    pair = f"{c['a']} − {c['b']}"
    if c["verdict"] == "skipped":
        return [str(c["number"]), c["text"], pair, "", "", "", "", f"skipped: {c['reason']}"]
    return [
        str(c["number"]),
        c["text"],
        pair,
        _seeds(c["seeds"]),
        ", ".join(_signed(d) for d in c["differences"]),
        _signed(c["mean"]),
        f"[{_signed(c['ci_low'])}, {_signed(c['ci_high'])}]",
        c["verdict"],
    ]


def markdown(result: dict) -> str:
    """The Claims section (Markdown): the comparison's rows with their CIs, then one line per
    claim."""
    from bridging.report import markdown_table

    ctx, boot = result["context"], result["bootstrap"]
    level = f"{100 * boot['level']:g}%"
    data = f"{ctx['data']}, " if ctx["data"] else ""
    parts = [
        "## Claims",
        "",
        f"On {data}{ctx['label_set']}: test weighted F1 in %, mean over seeds; {level} CI by "
        f"bootstrap over seeds and test dialogues ({boot['resamples']} resamples, RNG seed "
        f"{boot['seed']}).",
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
                _seeds(row["seeds"]),
                f"{row['wf1_mean']:.2f}",
                ci,
            ]
        )
    head = ["experiment", "what", "trained on", "evaluated on", "seeds", "wF1 %", f"{level} CI"]
    parts += [markdown_table(head, body), ""]
    parts += [
        "Each claim: the paired difference A − B in wF1 points (same seed, same test "
        f"dialogues), per seed and its mean; {level} CI by bootstrap (seeds resampled with "
        "replacement, then each seed's test dialogues, one draw for both arms). A claim "
        '"beats" holds when the CI lies above 0; "comparable" when it lies within the '
        "margin.",
        "",
    ]
    head = ["#", "claim", "A − B", "seeds", "per seed", "mean", f"{level} CI", "verdict"]
    parts += [markdown_table(head, [claim_line(c) for c in result["claims"]]), ""]
    return "\n".join(parts)


CLAIM_COLUMNS = (
    "number", "claim", "text", "a", "b", "margin", "seeds", "differences", "mean", "ci_low",
    "ci_high", "verdict", "reason",
)  # fmt: skip
COMPARISON_COLUMNS = (
    "experiment", "note", "recipe", "modalities", "eval_modalities", "seeds", "n", "wf1_mean",
    "ci_low", "ci_high", "ci_reason",
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
    "COMPARISON",
    "REFERENCE",
    "ClaimSpec",
    "analyse",
    "arm_interval",
    "bootstrap_draws",
    "comparison_arms",
    "markdown",
    "paired_difference",
    "resampled_wf1",
    "verdict_beats",
    "verdict_comparable",
]
