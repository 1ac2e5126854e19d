"""Library side of ``bridging-eval`` and ``bridging-predict``: any checkpoint, any split."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate

from bridging.data.records import IGNORE_INDEX, DataError, ordered_modalities
from bridging.io import atomic_write_json, atomic_write_text, check_output_path, save_confusion_png
from bridging.predictions import predictions_file
from bridging.recipes import check_data_fits, load_recipe

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
        return list(recipe.eval_keep)
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


def _trainer(accelerator: str = "cpu") -> pl.Trainer:
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
) -> dict:
    """Metrics of a checkpoint on a split, with the modalities not kept zeroed.

    Writes ``metrics.json``, ``confusion_matrix.png`` and the per-utterance predictions
    (``<split>_predictions.npz``, see :mod:`bridging.predictions`) to ``output_dir`` when
    given (to its ``eval_<split>_<modalities>`` subdir when it is a training run's dir, see
    :func:`eval_output_dir`); ``predictions_path``: write the predictions there (also
    without ``output_dir``). The data must fit the checkpoint (:func:`check_data_fits`)."""
    check_split(split)
    recipe = load_recipe(ckpt_path)
    keep = resolve_keep(recipe, modalities)
    recipe.eval_keep = keep
    if output_dir is not None:
        output_dir = eval_output_dir(output_dir, split, keep)
    if predictions_path is not None:
        check_output_path(predictions_path, "predictions_path")
    dm = datamodule_for(recipe, data_cfg, keep, batch_size)
    loader = dm.split(split).loader(dm.eval_batch_size, False)
    _trainer(accelerator).test(recipe, dataloaders=loader, verbose=False)
    result = recipe.results["test"]
    predictions = recipe.test_predictions(dm.split(split).ids, split)
    facts = recipe.facts
    metrics = {
        "checkpoint": str(ckpt_path),
        "recipe": recipe.kind,
        "modalities": list(recipe.modalities),
        "eval_modalities": keep,
        "split": split,
        "label_set": facts.label_set,
        "label_names": facts.label_names,
        split: result,
        "data": dm.summary(),
    }
    if predictions_path is None and output_dir is not None:
        predictions_path = Path(output_dir) / predictions_file(split)
    if predictions_path is not None and predictions is not None:
        predictions.save(predictions_path)
    if output_dir is not None:
        out = Path(output_dir)
        atomic_write_json(out / "metrics.json", metrics)
        title = f"{recipe.kind} on {'+'.join(keep)} ({split})"
        save_confusion_png(
            result["confusion"], facts.label_names, out / "confusion_matrix.png", title
        )
    return metrics


def predict_rows(recipe, datamodule, split="test", accelerator="cpu") -> list[dict]:
    """One row per utterance: dialogue_id, utterance_index, speaker, gold, pred, prob_<label>."""
    loader = datamodule.split(split).loader(datamodule.eval_batch_size, False)
    outputs = _trainer(accelerator).predict(recipe, dataloaders=loader)
    names = recipe.facts.label_names
    speakers = recipe.facts.speaker_names
    rows = []
    for out in outputs:
        probs, labels, spk = out["probs"], out["labels"], out["speakers"]
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
            rows.append(row)
    return rows


def write_csv(path, rows: list[dict]) -> Path:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def predict(
    ckpt_path,
    output,
    data_cfg=None,
    split="test",
    modalities=None,
    batch_size=None,
    accelerator="cpu",
) -> list[dict]:
    check_split(split)
    check_output_path(output)  # before the work: not a directory, a writable folder
    recipe = load_recipe(ckpt_path)
    keep = resolve_keep(recipe, modalities)
    recipe.eval_keep = keep
    dm = datamodule_for(recipe, data_cfg, keep, batch_size)
    rows = predict_rows(recipe, dm, split, accelerator)
    write_csv(output, rows)
    return rows
