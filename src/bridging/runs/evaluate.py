"""Evaluation: ``bridging-eval`` and ``bridging-predict`` (any checkpoint, any split), and the
evaluations a training run adds to its metrics.json (the full-modality figures of a masked
model, the teacher's figures and the student-teacher agreement of a distilled student)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from bridging.data.predictions import refuse_non_finite
from bridging.data.records import IGNORE_INDEX, DataError, ordered_modalities
from bridging.recipes import check_data_fits, load_recipe
from bridging.recipes.base import stage_metrics
from bridging.runs.identity import check_overlap
from bridging.runs.memory import check_memory
from bridging.runs.outputs import eval_metrics, with_split_speakers, write_run
from bridging.utils.files import atomic_write_csv, check_output_path

log = logging.getLogger(__name__)

#: what marks a training run's dir (bridging-train writes them; eval outputs lack "experiment")
RUN_MARKERS = ("checkpoints", "config.yaml")


def is_training_run(path) -> bool:
    """Whether ``path`` holds a training run (bridging-train's metrics.json, or its
    checkpoints/ or config.yaml), whose files another command must never replace."""
    path = Path(path)
    metrics = path / "metrics.json"
    if metrics.is_file():
        try:
            m = json.loads(metrics.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return True  # unreadable: not ours to replace either
        return not (isinstance(m, dict) and "checkpoint" in m and "experiment" not in m)
    return any((path / name).exists() for name in RUN_MARKERS)


def eval_output_dir(output_dir, split: str, keep) -> Path:
    """Where bridging-eval writes: ``output_dir`` itself, or, when that is a training run's
    dir, its subdir ``eval_<split>_<modalities>`` (e.g. ``eval_test_a``), so the run's own
    metrics.json, confusion matrix and predictions are never replaced; bridging-report finds
    the evaluation there (a metrics.json with a ``checkpoint`` key)."""
    out = Path(output_dir)
    if is_training_run(out):
        out = out / f"eval_{split}_{''.join(keep)}"
    return out


def options_from_config(cfg) -> dict:
    """The keyword arguments of :func:`evaluate` / :func:`predict` from an eval/predict config."""
    from omegaconf import OmegaConf

    mods = cfg.eval.modalities
    return {
        "data_cfg": OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else None,
        "split": cfg.split,
        "modalities": None if mods is None else list(mods),
        "batch_size": cfg.batch_size,
        "accelerator": cfg.accelerator,
        "allow_overlap": bool(cfg.get("allow_overlap", False)),
    }


def datamodule_for(recipe, data_cfg: dict | None, keep, batch_size: int | None = None):
    """A DataModule for evaluating ``recipe``: the given data config, else the one the model
    was trained with; it loads only the modalities that are kept (the others are zeroed)."""
    cfg = dict(data_cfg) if data_cfg else dict(recipe.hparams.get("data") or {})
    if not cfg:
        raise ValueError(
            f"{getattr(recipe, 'checkpoint_path', 'checkpoint')}: it stores no data config; "
            "give one, e.g. data=iemocap data.path=FILE"
        )
    cfg.setdefault("_target_", "bridging.data.datamodule.IEMOCAPDataModule")
    cfg["modalities"] = list(keep)
    # the model's own normalisation and training statistics (docs/normalization.md)
    state = dict(recipe.facts.normalization or {"mode": "none"})
    asked = cfg.pop("normalize", None)
    cfg.pop("normalize_prior", None)
    if asked not in (None, "none", state.get("mode")):
        log.warning(
            "data.normalize=%s ignored: the model reads its features with its own "
            "normalisation (%s), stored in its checkpoint",
            asked,
            state.get("mode"),
        )
    cfg["normalization"] = state
    if batch_size:
        cfg["batch_size"] = cfg["eval_batch_size"] = int(batch_size)
    dm = instantiate(cfg, _convert_="all")
    dm.setup()
    # every kept modality's size, the label set and the speakers must be the model's
    where = getattr(recipe, "checkpoint_path", None) or "the model"
    check_data_fits(where, recipe.facts, dm.facts, keep)
    return dm


def check_split(split) -> str:
    from bridging.data.datamodule import SPLITS

    if split not in SPLITS:
        raise ValueError(f"split={split!r}: expected one of {', '.join(SPLITS)}")
    return split


def resolve_keep(recipe, modalities) -> list[str]:
    if modalities is None:
        return list(recipe.eval_modalities)
    try:
        keep = ordered_modalities(modalities)
    except DataError as exc:
        raise DataError(f"eval.modalities={list(modalities)}: {exc}") from None
    bad = [m for m in keep if m not in recipe.modalities]
    if bad:
        raise ValueError(
            f"eval.modalities {bad} are not inputs of this model (it takes {recipe.modalities})"
        )
    return keep


def eval_trainer(accelerator: str = "cpu") -> pl.Trainer:
    """A one-device Trainer for evaluation only: no logger, checkpoints, bar or summary."""
    return pl.Trainer(
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def evaluate(
    ckpt_path,
    data_cfg=None,
    split="test",
    modalities=None,
    batch_size=None,
    accelerator="cpu",
    output_dir=None,
    predictions_path=None,
    allow_overlap=False,
) -> dict:
    """Metrics of a checkpoint on a split, with the modalities not kept zeroed.

    Writes ``metrics.json``, ``confusion_matrix.png`` and the per-utterance predictions
    (``<split>_predictions.npz``, see :mod:`bridging.data.predictions`) to ``output_dir`` when
    given (to its ``eval_<split>_<modalities>`` subdir when it is a training run's dir, see
    :func:`eval_output_dir`); ``predictions_path``: write the predictions there (also
    without ``output_dir``). The data must fit the checkpoint (:func:`check_data_fits`), and
    the split must hold no dialogue the model was trained or selected on unless
    ``allow_overlap`` (:func:`bridging.runs.identity.check_overlap`; metrics.json's
    ``overlap`` records it)."""
    check_split(split)
    recipe = load_recipe(ckpt_path)
    keep = resolve_keep(recipe, modalities)
    recipe.eval_modalities = keep
    if output_dir is not None:
        output_dir = eval_output_dir(output_dir, split, keep)
    if predictions_path is not None:
        check_output_path(predictions_path, "predictions_path")
    dm = datamodule_for(recipe, data_cfg, keep, batch_size)
    overlap = check_overlap(recipe, dm, split, allow_overlap, where=ckpt_path)
    overlap.pop("model_split")
    loader = dm.split(split).loader(dm.eval_batch_size, False)
    trainer = eval_trainer(accelerator)
    check_memory(recipe, dm, str(trainer.strategy.root_device), training=False, splits=[split])
    trainer.test(recipe, dataloaders=loader, verbose=False)
    result = recipe.results["test"]
    predictions = recipe.test_predictions(dm.split(split).ids, split)
    if predictions is not None:
        refuse_non_finite(predictions.probs, ckpt_path)
        predictions = with_split_speakers(predictions, dm.corpus, split)
    metrics = eval_metrics(
        checkpoint=ckpt_path,
        recipe=recipe.kind,
        modalities=recipe.modalities,
        eval_modalities=keep,
        split=split,
        facts=recipe.facts,
        result=result,
        data=dm.summary(),
    )
    metrics["overlap"] = overlap
    if predictions_path is not None and predictions is not None:
        predictions.save(predictions_path)
        predictions = None  # written: not again into output_dir
    if output_dir is not None:
        title = f"{recipe.kind} on {'+'.join(keep)} ({split})"
        write_run(output_dir, metrics, predictions, title=title, split=split)
    return metrics


def predict_rows(
    recipe, datamodule, split="test", accelerator="cpu", where="the model", seen=None
) -> list[dict]:
    """One row per utterance: dialogue_id, utterance_index, speaker, gold, pred, prob_<label>
    (and, with ``seen``, a dialogue id -> model split map, ``seen_by_model``: the model's
    split that held the dialogue, empty when none did); class probabilities that are not
    finite are refused (a DataError naming ``where``)."""
    loader = datamodule.split(split).loader(datamodule.eval_batch_size, False)
    trainer = eval_trainer(accelerator)
    device = str(trainer.strategy.root_device)
    check_memory(recipe, datamodule, device, training=False, splits=[split])
    outputs = trainer.predict(recipe, dataloaders=loader)
    names = recipe.facts.label_names
    speakers = recipe.facts.speaker_names
    rows = []
    for out in outputs:
        probs, labels, spk = out["probs"], out["labels"], out["speakers"]
        refuse_non_finite(probs, where)
        pred = probs.argmax(-1)
        dlg = torch.repeat_interleave(torch.arange(len(out["lengths"])), out["lengths"])
        starts = torch.cumsum(out["lengths"], 0) - out["lengths"]
        pos = torch.arange(len(labels)) - starts[dlg]
        for k in range(len(labels)):
            gold = int(labels[k])
            row = {
                "dialogue_id": out["dialogue_ids"][int(dlg[k])],
                "utterance_index": int(pos[k]),
                "speaker": speakers[int(spk[k])] if int(spk[k]) < len(speakers) else int(spk[k]),
                "gold": "" if gold == IGNORE_INDEX else names[gold],
                "pred": names[int(pred[k])],
            }
            row.update({f"prob_{n}": f"{float(p):.6f}" for n, p in zip(names, probs[k].tolist())})
            if seen is not None:
                row["seen_by_model"] = seen.get(row["dialogue_id"], "")
            rows.append(row)
    return rows


#: a run's files that no prediction output ever replaces
RUN_FILES = ("metrics.json", "config.yaml", "test_predictions.npz", "confusion_matrix.png")


def check_prediction_output(output, ckpt_path, data_cfg=None, overwrite=False) -> None:
    """Refuse, before any work, a prediction ``output`` that is the checkpoint, the input
    data or a run's own file (always), or that exists (unless ``overwrite``)."""
    from bridging.utils.files import OutputError, refuse_own_input

    name = f"output={output}"
    data_path = (data_cfg or {}).get("path")
    inputs = {"the checkpoint": ckpt_path, "the input data": data_path}
    refuse_own_input(output, inputs, "output", name)
    out = Path(output)
    if (
        data_path
        and Path(data_path).is_dir()
        and out.resolve().is_relative_to(Path(data_path).resolve())
    ):
        raise OutputError(
            f"{name}: is inside the input data {data_path}; refusing to write into it: give "
            "another output"
        )
    if out.name in RUN_FILES and (out.parent / "metrics.json").exists():
        raise OutputError(
            f"{name}: is a run's {out.name} ({out.parent}); refusing to replace it, even with "
            "overwrite=true: give another output"
        )
    if not overwrite and (out.exists() or out.is_symlink()):
        raise OutputError(f"{name}: exists; refusing to overwrite it (overwrite=true replaces it)")


def predict(
    ckpt_path,
    output,
    data_cfg=None,
    split="test",
    modalities=None,
    batch_size=None,
    accelerator="cpu",
    overwrite=False,
    allow_overlap=False,
) -> list[dict]:
    """Write the predictions of the checkpoint on a split to the CSV ``output``: an existing
    ``output`` is refused unless ``overwrite``; the checkpoint, the input data and a run's
    files always. A split holding dialogues the model was trained or selected on is refused
    unless ``allow_overlap``, which adds the column ``seen_by_model`` (``train``, ``dev`` or
    empty) to every row."""
    check_split(split)
    check_output_path(output)  # before the work: not a directory, a writable folder
    check_prediction_output(output, ckpt_path, data_cfg, overwrite)
    recipe = load_recipe(ckpt_path)
    if not (data_cfg or {}).get("path"):  # the data the model was trained on: its file too
        stored = dict(recipe.hparams.get("data") or {})
        check_prediction_output(output, ckpt_path, stored, overwrite)
    keep = resolve_keep(recipe, modalities)
    recipe.eval_modalities = keep
    dm = datamodule_for(recipe, data_cfg, keep, batch_size)
    overlap = check_overlap(recipe, dm, split, allow_overlap, where=ckpt_path)
    seen = overlap["model_split"] if allow_overlap else None
    rows = predict_rows(recipe, dm, split, accelerator, where=str(ckpt_path), seen=seen)
    atomic_write_csv(output, rows)
    return rows


def full_modality_metrics(recipe, datamodule, best=None) -> dict:
    """The masked recipe's additions to metrics.json: its mask policy, and the same (best)
    model's dev and test metrics with every modality kept (``dev_full``, ``test_full``);
    skipped, with ``full_eval_skipped`` saying why, when the run's evaluation already keeps
    every modality of the model (e.g. an audio-only model). Runs on a logger-free trainer,
    so the run's logs (CSV, W&B) keep the speech-only ``val/*`` and ``test/*`` figures as
    their last values."""
    out = {"mask_policy": recipe.masker.describe()}
    if not recipe.full_eval:
        return out
    if set(recipe.eval_modalities) == set(recipe.modalities):
        out["full_eval_skipped"] = (
            f"evaluation already uses every modality of the model "
            f"({'+'.join(recipe.modalities)}): dev/test are the full-modality figures"
        )
        return out
    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        recipe.load_state_dict(state)
    evaluator = eval_trainer("gpu" if recipe.device.type == "cuda" else "cpu")
    kept = recipe.eval_modalities
    recipe.eval_modalities = list(recipe.modalities)
    try:
        evaluator.validate(recipe, datamodule=datamodule, verbose=False)
        dev = recipe.results["val"]
        evaluator.test(recipe, datamodule=datamodule, verbose=False)
        test = recipe.results["test"]
    finally:
        recipe.eval_modalities = kept
    out.update({"full_modalities": list(recipe.modalities), "dev_full": dev, "test_full": test})
    return out


@torch.no_grad()
def teacher_agreement(student, datamodule, split: str = "test") -> dict:
    """The teacher's metrics on ``split`` (its own modalities) and the agreement of the
    student's (speech-only) and the teacher's predictions, over every real utterance:
    ``{"teacher_result": ..., "agreement": {split, utterances, rate, cohen_kappa, pairs}}``
    (``pairs`` rows: the student's prediction, columns: the teacher's)."""
    teacher = student.teacher
    device = student.device
    teacher.to(device)
    was_training = student.training
    student.eval()
    n_classes = student.facts.n_classes
    metrics = stage_metrics(n_classes).to(device)
    loss_sum, n_lab = 0.0, 0
    pairs = torch.zeros(n_classes, n_classes, dtype=torch.long)
    for batch in datamodule.split(split).loader(datamodule.eval_batch_size, shuffle=False):
        batch = batch.to(device)
        s = student.eval_output(batch).log_probs.argmax(-1)
        t_out = teacher(batch)
        t = t_out.log_probs.argmax(-1)
        labels = batch.flat_labels
        known = labels != IGNORE_INDEX
        k = int(known.sum())
        if k:
            loss_sum += float(teacher.model.loss(t_out, labels)) * k
            n_lab += k
            metrics.update(t[known], labels[known])
        pairs += torch.bincount((s * n_classes + t).cpu(), minlength=n_classes * n_classes).view(
            n_classes, n_classes
        )
    values = metrics.compute()
    names = student.facts.label_names
    teacher_result = {
        "loss": loss_sum / max(1, n_lab),
        "wf1": float(values["wf1"]),
        "acc": float(values["acc"]),
        "mf1": float(values["mf1"]),
        "per_class_f1": {n: float(v) for n, v in zip(names, values["f1"].tolist())},
        "confusion": values["confusion"].long().tolist(),
    }
    total = int(pairs.sum())
    p_o = int(pairs.trace()) / max(1, total)
    p_e = float((pairs.sum(1).double() * pairs.sum(0).double()).sum()) / max(1, total) ** 2
    kappa = (p_o - p_e) / (1 - p_e) if p_e < 1 else 1.0
    student.train(was_training)
    agreement = {
        "split": split,
        "utterances": total,
        "rate": p_o,
        "cohen_kappa": kappa,
        "pairs": pairs.tolist(),
    }
    return {"teacher_result": teacher_result, "agreement": agreement}


def student_metrics(student, datamodule) -> dict:
    """The distilled student's additions to metrics.json: its teacher (path, hash, where it
    was trained, its test metrics on its own modalities), the student-teacher agreement on
    test and the KD options."""
    from bridging.runs.teacher import ensure_modalities

    if student.teacher is None:
        return {}
    ensure_modalities(datamodule, student.teacher.modalities)
    cmp = teacher_agreement(student, datamodule, "test")
    info = student.teacher_info
    teacher = {
        **{k: info.get(k) for k in ("ckpt_path", "sha256", "modalities")},
        "eval_modalities": list(student.teacher.modalities),
        "pad_mode": info.get("pad_mode"),
        "cache": student.cache_on,
        **getattr(student, "teacher_origin", {}),
        "test": cmp["teacher_result"],
    }
    return {"teacher": teacher, "agreement": cmp["agreement"], "kd": dict(student.kd)}
