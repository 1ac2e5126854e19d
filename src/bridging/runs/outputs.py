"""What every run dir holds, built in one place: ``metrics.json``, the test confusion matrix,
the per-utterance predictions, and the one-line headline.

Every producer of a run dir goes through :func:`run_metrics` and :func:`write_run`: training
runs (:mod:`bridging.runs.experiment`), the a+v model evaluated speech-only and the
reference rows of the comparison (:mod:`bridging.runs.reproduce`, :mod:`bridging.runs.baselines`).
``bridging-eval`` writes its evaluation with :func:`eval_metrics` (a ``checkpoint`` key, no
``experiment``: :func:`bridging.runs.evaluate.is_training_run` tells the two apart).

The keys ``bridging-report`` reads: experiment, recipe, modalities, eval_modalities,
label_set, label_names, seed, test, dev, best_epoch, data (and, when present, hparams,
config_hash, precision, teacher, agreement, test_full, note).
"""

from __future__ import annotations

from pathlib import Path

from bridging.report.figures import save_confusion_png
from bridging.utils.files import atomic_write_json

METRICS_FILE = "metrics.json"
CONFUSION_FILE = "confusion_matrix.png"


def run_metrics(
    *,
    experiment: str,
    recipe: str,
    modalities,
    eval_modalities,
    label_set: str,
    label_names,
    seed,
    test: dict,
    dev: dict | None,
    data: dict,
    best_epoch: int | None = None,
    **extra,
) -> dict:
    """The metrics.json of a run dir: the keys every run has, then ``extra`` (recipe- or
    job-specific: best_checkpoint, epochs_run, config_hash, hparams, teacher, note ...)."""
    return {
        "experiment": experiment,
        "recipe": recipe,
        "modalities": list(modalities),
        "eval_modalities": list(eval_modalities),
        "label_set": label_set,
        "label_names": list(label_names),
        "seed": None if seed is None else int(seed),
        "test": test,
        "dev": dev,
        "best_epoch": best_epoch,
        "data": data,
        **extra,
    }


def eval_metrics(
    *, checkpoint, recipe: str, modalities, eval_modalities, split: str, facts, result, data
) -> dict:
    """The metrics.json of a ``bridging-eval`` output (one split of one checkpoint)."""
    return {
        "checkpoint": str(checkpoint),
        "recipe": recipe,
        "modalities": list(modalities),
        "eval_modalities": list(eval_modalities),
        "split": split,
        "label_set": facts.label_set,
        "label_names": list(facts.label_names),
        split: result,
        "data": data,
    }


def write_run(out_dir, metrics: dict, predictions=None, title: str | None = None, split="test"):
    """Write ``metrics.json`` (atomically), the confusion matrix of ``metrics[split]`` when it
    has one (titled ``title``, default the headline) and the predictions (a
    :class:`~bridging.data.predictions.Predictions`, to its split's file name) into ``out_dir``."""
    from bridging.data.predictions import predictions_file

    out = Path(out_dir)
    atomic_write_json(out / METRICS_FILE, metrics)
    result = metrics.get(split) or {}
    if result.get("confusion") is not None:
        save_confusion_png(
            result["confusion"],
            metrics["label_names"],
            out / CONFUSION_FILE,
            headline(metrics) if title is None else title,
        )
    if predictions is not None:
        predictions.save(out / predictions_file(split))
    return out


def with_split_speakers(predictions, corpus, split: str = "test"):
    """``predictions`` (a :class:`~bridging.data.predictions.Predictions`, or None) with the
    speaker key of each utterance (:mod:`bridging.data.speakers`) from ``corpus`` (the loaded
    corpus, split as the run used it: a DataModule's ``corpus``), ``split``'s dialogues."""
    if predictions is None:
        return None
    return predictions.with_speakers(corpus.splits[split], corpus.speaker_names)


def headline(metrics: dict) -> str:
    """``[experiment] recipe trained on a+v, evaluated on a (label set): test weighted F1 ...``"""
    t = metrics["test"]
    best = ""
    if isinstance(metrics.get("dev"), dict) and metrics["dev"].get("wf1") is not None:
        best = f"  (best dev wF1 {100 * metrics['dev']['wf1']:.2f}"
        best += (
            f" at epoch {metrics['best_epoch']})" if metrics.get("best_epoch") is not None else ")"
        )
    return (
        f"[{metrics['experiment']}] {metrics['recipe']} trained on "
        f"{'+'.join(metrics['modalities'])}"
        f", evaluated on {'+'.join(metrics['eval_modalities'])} ({metrics['label_set']}): "
        f"test weighted F1 {100 * t['wf1']:.2f}  acc {100 * t['acc']:.2f}  "
        f"macro F1 {100 * t['mf1']:.2f}{best}{precision_note(metrics)}"
    )


def precision_note(metrics: dict) -> str:
    """``  [trained in bf16-mixed]``: the training precision of a run that records it."""
    precision = metrics.get("precision")
    return f"  [trained in {precision}]" if precision else ""


def sweep_hparams(resolved: dict) -> dict:
    """The hyper-parameters that sweeps vary, flat, for reports."""
    out = {}
    for key in ("kd", "mask"):
        sect = (resolved.get("recipe") or {}).get(key)
        if isinstance(sect, dict):
            for k, v in sect.items():
                if isinstance(v, (int, float, str, bool)) or v is None:
                    out[f"{key}.{k}"] = v
    model = resolved.get("model") or {}
    for k in ("seqcontext_nlayer", "gnn_nheads", "drop_rate", "wp", "wf", "gnn", "rnn"):
        if k in model:
            out[f"model.{k}"] = model[k]
    return out


__all__ = [
    "METRICS_FILE",
    "CONFUSION_FILE",
    "run_metrics",
    "eval_metrics",
    "write_run",
    "headline",
    "sweep_hparams",
]
