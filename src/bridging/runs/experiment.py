"""One experiment run, the library side of ``bridging-train``: data and recipe from the config,
the teacher for a student, fit and test, the recipe's own evaluations, the run dir.

The steps, each in its module:

1. :func:`bridging.runs.train.start_run`: the run dir, its resolved ``config.yaml``, the seed;
2. :func:`bridging.runs.train.build_datamodule` / :func:`~bridging.runs.train.build_recipe`:
   the data, and the recipe sized from its facts;
3. a distilled student gets its frozen teacher (:func:`bridging.runs.teacher.attach_teacher`:
   the given checkpoint, or one trained first by :func:`train` itself, passed in);
4. :func:`bridging.runs.train.fit_and_test`: fit, then dev and test at the best checkpoint;
5. what the recipe adds to metrics.json (:mod:`bridging.runs.evaluate`): a masked model's
   full-modality figures, a student's teacher figures and agreement;
6. :func:`bridging.runs.outputs.run_metrics` and :func:`bridging.runs.train.finish`: the run
   dir (metrics.json, confusion matrix, predictions, the checkpoints a finished run keeps).
"""

from __future__ import annotations

import os
from pathlib import Path

from omegaconf import DictConfig

from bridging.recipes.masked import MaskedRecipe
from bridging.recipes.student import StudentRecipe
from bridging.runs.allocator import set_allocator
from bridging.runs.evaluate import full_modality_metrics, student_metrics
from bridging.runs.outputs import run_metrics, sweep_hparams
from bridging.runs.teacher import attach_teacher
from bridging.runs.train import (
    build_datamodule,
    build_recipe,
    checkpoint_epoch,
    finish,
    fit_and_test,
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
    recipe = build_recipe(cfg, datamodule.facts)
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
    metrics.update(recipe_metrics(recipe, datamodule, best))
    finish(cfg, result, metrics, output_dir)
    return metrics


__all__ = ["train", "recipe_metrics"]
