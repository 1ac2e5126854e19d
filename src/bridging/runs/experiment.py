"""One experiment run, the library side of ``bridging-train``: data and recipe from the config,
the teacher for a student, fit and test, the recipe's own evaluations, the run dir.

The steps, each in its module:

1. :func:`bridging.runs.train.start_run`: the config's values, the run dir, the seed;
2. :func:`bridging.runs.train.build_datamodule` / :func:`~bridging.runs.train.build_recipe`:
   the data, and the recipe sized from its facts and bound to them
   (:mod:`bridging.runs.identity`: a resume must be on the run's own data, protocol, fold,
   dev rule and label set);
3. a distilled student gets its frozen teacher (:func:`bridging.runs.teacher.attach_teacher`:
   the given checkpoint, or one trained first by :func:`train` itself, passed in);
4. :func:`bridging.runs.train.fit_and_test`: once every check passed, the run writes its
   dir (:func:`~bridging.runs.train.commit_run`: ``config.yaml``, Hydra's record), fits,
   then validates and tests at the best checkpoint;
5. what the recipe adds to metrics.json (:mod:`bridging.runs.evaluate`): a masked model's
   full-modality figures, a student's teacher figures and agreement;
6. :func:`bridging.runs.outputs.run_metrics` and :func:`bridging.runs.train.finish`: the run
   dir (metrics.json, confusion matrix, predictions, the checkpoints a finished run keeps).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from bridging.recipes import check_resume
from bridging.recipes.masked import MaskedRecipe
from bridging.recipes.student import StudentRecipe
from bridging.runs.allocator import set_allocator
from bridging.runs.evaluate import full_modality_metrics, student_metrics
from bridging.runs.identity import binding_summary, check_resume_identity, run_binding
from bridging.runs.outputs import run_metrics, sweep_hparams
from bridging.runs.precision import machine_summary
from bridging.runs.teacher import attach_teacher
from bridging.runs.train import (
    build_datamodule,
    build_recipe,
    checkpoint_epoch,
    finish,
    fit_and_test,
    resolve_resume,
    start_run,
)
from bridging.utils.files import config_hash


def recipe_metrics(recipe, datamodule, best) -> dict:
    """What a recipe adds to its run's metrics.json (nothing for a teacher or baseline)."""
    if isinstance(recipe, MaskedRecipe):
        return full_modality_metrics(recipe, datamodule, best)
    if isinstance(recipe, StudentRecipe):
        return student_metrics(recipe, datamodule)
    return {}


def train(cfg: DictConfig, output_dir=None) -> dict:
    """Train the configured experiment, test it at its best dev checkpoint, write the run dir
    (``cfg.paths.output_dir`` unless ``output_dir`` is given). Returns the metrics dict
    (also written to ``<output_dir>/metrics.json``)."""
    output_dir = Path(output_dir or cfg.paths.output_dir)
    set_allocator(str(cfg.get("allocator", "tuned")))
    resolved = start_run(cfg, output_dir)
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    resume = resolve_resume(cfg.get("ckpt_path"), output_dir)
    if resume is not None:  # the run's own data, protocol, fold, ... and enough epochs
        check_resume_identity(resume, cfg, datamodule, output_dir)
    recipe = build_recipe(cfg, datamodule.facts)
    recipe.binding = run_binding(datamodule)  # saved in every checkpoint of the run
    if resume is not None:  # a bridging checkpoint of this model, with its training state
        check_resume(resume, recipe)
    if isinstance(recipe, StudentRecipe):
        attach_teacher(recipe, cfg, datamodule, output_dir, train=train)
    result = fit_and_test(cfg, recipe, datamodule, output_dir, resolved)
    best = result.best
    metrics = run_metrics(
        experiment=cfg.get("experiment_name", "run"),
        recipe=recipe.kind,
        modalities=recipe.modalities,
        eval_modalities=recipe.eval_modalities,
        label_set=datamodule.facts.label_set,
        label_names=datamodule.facts.label_names,
        seed=cfg.seed,
        test=result.test,
        dev=result.dev,
        data=datamodule.summary(),
        best_epoch=checkpoint_epoch(best),
        best_checkpoint=os.path.relpath(best, output_dir) if best else None,
        epochs_run=int(result.trainer.current_epoch),
        precision=result.precision,
        config_hash=config_hash(resolved),
        hparams=sweep_hparams(resolved),
    )
    metrics["binding"] = binding_summary(datamodule)
    metrics["machine"] = machine_summary(result.trainer.strategy.root_device)
    metrics.update(recipe_metrics(recipe, datamodule, best))
    finish(cfg, result, metrics, output_dir)
    return metrics


__all__ = ["train", "recipe_metrics"]
