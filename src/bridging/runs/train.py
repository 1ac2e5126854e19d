"""Fit and test one recipe: the Trainer, its checkpoints, resuming, the run's outputs.

:mod:`bridging.runs.experiment` builds the data and the recipe (and gives a student its
teacher); :func:`fit_and_test` fits the recipe, then validates and tests it at its best dev
checkpoint; :func:`finish` keeps what a finished run keeps of its checkpoints and writes the
run dir (:mod:`bridging.runs.outputs`). Nothing here knows a recipe's kind.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import pytorch_lightning as pl
import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.plugins import Precision
from pytorch_lightning.plugins.io import TorchCheckpointIO

from bridging.utils.files import atomic_write_text

log = logging.getLogger(__name__)


def to_container(cfg):
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def build_datamodule(cfg):
    return instantiate(cfg.data, _convert_="all")


def build_recipe(cfg, facts):
    """The recipe (LightningModule) named by ``cfg.recipe._target_``, sized from the data facts.

    The other keys of ``cfg.recipe`` are passed as plain containers (never instantiated).
    """
    from bridging.runs.config import refuse_renamed_keys

    refuse_renamed_keys(cfg)
    options = to_container(cfg.recipe)
    cls = get_class(options.pop("_target_"))
    eval_modalities = (cfg.get("eval") or {}).get("modalities")
    return cls(
        facts=facts.to_dict(),
        modalities=list(cfg.modalities),
        model=to_container(cfg.model),
        optim=to_container(cfg.optim),
        eval_modalities=None if eval_modalities is None else list(eval_modalities),
        data=to_container(cfg.data),
        **options,
    )


def trainer_precision(cfg) -> str:
    """The Lightning precision the run trains with: ``trainer.precision`` resolved for the
    trainer's accelerator (``auto``: bf16-mixed where bfloat16 is native, else 32-true;
    :mod:`bridging.runs.precision`)."""
    from bridging.runs.precision import resolve_precision

    trainer = cfg.get("trainer") or {}
    return resolve_precision(trainer.get("precision", "32-true"), trainer.get("accelerator"))


def build_trainer(cfg, output_dir: Path, resume_from=None, **overrides) -> pl.Trainer:
    overrides.setdefault("precision", trainer_precision(cfg))
    callbacks = [instantiate(c) for c in (cfg.get("callbacks") or {}).values() if c]
    loggers = []
    for lcfg in (cfg.get("logger") or {}).values():
        if not lcfg:
            continue
        extra = {}
        if str(lcfg.get("_target_", "")).endswith("wandb_logger") and resume_from is not None:
            extra["resume_from"] = str(resume_from)
        loggers.append(instantiate(lcfg, **extra))
    return instantiate(
        cfg.trainer,
        callbacks=callbacks,
        logger=loggers if loggers else False,
        default_root_dir=str(output_dir),
        **overrides,
    )


def wandb_loggers(trainer) -> list:
    from pytorch_lightning.loggers import WandbLogger

    return [lg for lg in trainer.loggers if isinstance(lg, WandbLogger)]


def checkpoint_epoch(path) -> int | None:
    if not path or not os.path.exists(path):
        return None
    return int(torch.load(path, map_location="cpu", weights_only=True).get("epoch", -1))


def resolve_resume(ckpt_path, output_dir: Path):
    if ckpt_path in (None, "", "null"):
        return None
    if ckpt_path == "last":
        last = output_dir / "checkpoints" / "last.ckpt"
        if not last.exists():
            raise FileNotFoundError(
                f"ckpt_path=last but {last} does not exist (a finished run removes it unless "
                "keep_checkpoints=full)"
            )
        return str(last)
    if not os.path.exists(ckpt_path):
        raise FileNotFoundError(f"ckpt_path={ckpt_path}: no such checkpoint")
    return str(ckpt_path)


#: what a finished run keeps of its checkpoints (config key ``keep_checkpoints``)
KEEP_CHECKPOINTS = ("best_weights", "full")
#: the parts of a Lightning checkpoint that only resuming needs
TRAINING_STATE_KEYS = ("optimizer_states", "lr_schedulers", "callbacks", "bridging_rng")


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, resumable from a copied or moved run dir.

    Lightning restores the best score, the best-k files and the last file only when the
    checkpoint dir is the one recorded in the checkpoint; in a copied or moved run dir it
    keeps nothing but the old best path, and the first epoch after the resume becomes the
    best. Here a recorded path under the recorded dir whose file is at the same place under
    this callback's dir is moved there first, so the resume continues as it would in place.
    When the files are not there (a checkpoint of another dir given as ``ckpt_path``),
    Lightning's behaviour stays: the score is not restored, and the first epoch's checkpoint
    is this dir's best. Its state is saved under ModelCheckpoint's key, so checkpoints
    written with Lightning's class resume with this one and the other way round."""

    def _generate_state_key(self, **kwargs) -> str:
        return f"{ModelCheckpoint.__qualname__}{kwargs!r}"

    def load_state_dict(self, state_dict: dict) -> None:
        recorded = state_dict.get("dirpath")
        if recorded and self.dirpath and os.path.realpath(recorded) != self.dirpath:
            moved = relocated_state(state_dict, recorded, self.dirpath)
            if moved is not None:
                state_dict = moved
        super().load_state_dict(state_dict)


def relocated_state(state: dict, old_dir: str, new_dir: str) -> dict | None:
    """A ModelCheckpoint state with its paths under ``old_dir`` moved to ``new_dir`` (and
    ``dirpath`` set to it), or None when a recorded file is not at its new place."""
    old_dir = os.path.realpath(old_dir)

    def move(path):
        if not path:
            return path
        rel = os.path.relpath(os.path.realpath(path), old_dir)
        new = os.path.join(new_dir, rel)
        if rel.startswith(os.pardir) or not os.path.isfile(new):
            raise LookupError(path)
        return new

    try:
        out = dict(state, dirpath=new_dir)
        for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
            if key in state:
                out[key] = move(state[key])
        if isinstance(state.get("best_k_models"), dict):
            out["best_k_models"] = {move(p): v for p, v in state["best_k_models"].items()}
    except LookupError:
        return None
    return out


class AtomicCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint writer, cheaper: ``torch.save`` streams straight into a
    temporary file next to the target, which then replaces it (``os.replace``), so a killed
    process never leaves a half-written checkpoint. Lightning's own writer serialises into
    memory first and copies the bytes out through fsspec (about 2x slower for the teacher's
    190 MiB full checkpoint on the development machine). No fsync: the file survives the
    process being killed, not necessarily an OS crash. Remote paths (``scheme://``) go to
    Lightning's writer."""

    def save_checkpoint(self, checkpoint, path, storage_options=None) -> None:
        if storage_options is not None or "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options=storage_options)
        from bridging.utils.files import atomic_output

        with atomic_output(path) as tmp:
            torch.save(checkpoint, tmp)


def keep_checkpoints_option(cfg) -> str:
    keep = str(cfg.get("keep_checkpoints", "best_weights"))
    if keep not in KEEP_CHECKPOINTS:
        raise ValueError(f"keep_checkpoints={keep!r}: expected one of {KEEP_CHECKPOINTS}")
    return keep


def weights_only_checkpoint(path) -> bool:
    """Rewrite the checkpoint at ``path`` without its training state (optimiser, schedulers,
    callback and random states), like Lightning's ``save_weights_only``: the weights,
    hyper-parameters, epoch and bridging facts stay, so bridging-eval, bridging-predict and a
    student's teacher loading work. Returns whether anything was removed."""
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not any(k in ckpt for k in TRAINING_STATE_KEYS):
        return False
    for k in TRAINING_STATE_KEYS:
        ckpt.pop(k, None)
    AtomicCheckpointIO().save_checkpoint(ckpt, path)
    return True


def finish_checkpoints(trainer, best, keep: str) -> list[str]:
    """What a finished run keeps: ``full``: every checkpoint as written; ``best_weights``:
    only ``best`` (weights-only), every other checkpoint of the run's ModelCheckpoint
    callbacks (``last.ckpt``, further top-k files) removed. A run without a best checkpoint
    keeps what it has. Returns the removed paths."""
    if keep == "full" or not best or not os.path.exists(best):
        return []
    removed = []
    best = os.path.abspath(best)
    for cb in trainer.checkpoint_callbacks:
        paths = {cb.best_model_path, cb.last_model_path, *getattr(cb, "best_k_models", {})}
        for p in sorted(x for x in paths if x):
            if os.path.abspath(p) != best and os.path.exists(p):
                os.unlink(p)
                removed.append(p)
    weights_only_checkpoint(best)
    return removed


@dataclass
class FitResult:
    """What :func:`fit_and_test` leaves: the trainer, the precision it trained with, the best
    checkpoint (None when none was saved: the final weights were evaluated), the dev and
    test results at it (in float32), and the per-utterance test predictions."""

    trainer: pl.Trainer
    precision: str
    best: str | None
    dev: dict
    test: dict
    predictions: object


#: the seeds Lightning (numpy) accepts
SEED_RANGE = (0, 2**32 - 1)


def _whole_number(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_run_config(cfg) -> None:
    """Refuse (a ValueError naming the field and what is expected), before any work, the
    config values a run would otherwise fail on late, or run forever with: the checkpoints
    kept, the precision, the number of epochs, the seed, the model's sizes."""
    keep_checkpoints_option(cfg)
    trainer_precision(cfg)
    trainer = cfg.get("trainer") or {}
    epochs = trainer.get("max_epochs", 1)
    if not _whole_number(epochs) or epochs < 1:
        why = " (Lightning would train forever)" if epochs == -1 else ""
        raise ValueError(
            f"trainer.max_epochs={epochs!r}: expected a whole number of epochs, at least 1{why}"
        )
    seed = cfg.get("seed", 0)
    lo, hi = SEED_RANGE
    if not _whole_number(seed) or not lo <= seed <= hi:
        raise ValueError(f"seed={seed!r}: expected a whole number from {lo} to {hi}")
    model = cfg.get("model") or {}
    for key in ("hidden_size", "gnn_nheads"):
        value = model.get(key, 1)
        if not _whole_number(value) or value < 1:
            raise ValueError(f"model.{key}={value!r}: expected a whole number, at least 1")


def start_run(cfg: DictConfig, output_dir: Path) -> dict:
    """The config's values are checked, the run dir exists, the seed is set; nothing is
    written into the dir before :func:`commit_run`. Returns the resolved config."""
    check_run_config(cfg)  # bad values fail before any work
    output_dir.mkdir(parents=True, exist_ok=True)
    resolved = to_container(cfg)
    pl.seed_everything(int(cfg.seed), workers=True)
    if cfg.get("deterministic"):
        torch.use_deterministic_algorithms(True, warn_only=True)
    return resolved


def commit_run(output_dir: Path, resolved: dict) -> None:
    """The run's checks passed: from here on it writes its dir. What ``overwrite=true``
    replaces goes, Hydra's held-back record and log are written
    (:func:`bridging.runs.rundir.commit_run_dir`), then the resolved ``config.yaml``
    (rank 0). A run refused before this point has changed no byte of its dir."""
    from bridging.runs.rundir import commit_run_dir

    commit_run_dir(output_dir)
    if int(os.environ.get("RANK", os.environ.get("LOCAL_RANK", "0"))) == 0:
        atomic_write_text(output_dir / "config.yaml", OmegaConf.to_yaml(OmegaConf.create(resolved)))


def fit_and_test(
    cfg: DictConfig, recipe, datamodule, output_dir: Path, resolved: dict
) -> FitResult:
    """Fit ``recipe`` (resuming from ``cfg.ckpt_path`` when given: checked by
    :func:`bridging.runs.experiment.train` before) at the run's ``trainer.precision``, then
    validate and test it at its best dev checkpoint in float32."""
    resume = resolve_resume(cfg.get("ckpt_path"), output_dir)
    trainer = build_trainer(
        cfg, output_dir, resume_from=Path(resume).parent.parent if resume else None
    )
    from bridging.runs.memory import check_memory

    check_memory(recipe, datamodule, str(trainer.strategy.root_device), training=True)
    commit_run(output_dir, resolved)
    facts = datamodule.facts
    for lg in wandb_loggers(trainer):
        from bridging.runs.tracking import remember_run_id

        run = lg.experiment
        tags = [*run.tags, recipe.kind, "+".join(recipe.modalities), facts.label_set]
        run.tags = tuple(dict.fromkeys([*tags, facts.source_format]))
        run.config.update(resolved, allow_val_change=True)
        remember_run_id(lg, output_dir)
    trainer.fit(recipe, datamodule=datamodule, ckpt_path=resume)
    precision = str(trainer.precision)
    # the run's figures in float32 whatever it trained in, as bridging-eval computes them
    trainer.strategy.precision_plugin = Precision()

    ckpt_cb = trainer.checkpoint_callback
    best = ckpt_cb.best_model_path if ckpt_cb is not None and ckpt_cb.best_model_path else None
    if best is None:
        log.warning("no best checkpoint was saved; evaluating the final weights")
    trainer.validate(recipe, datamodule=datamodule, ckpt_path=best, verbose=False)
    dev = recipe.results["val"]
    trainer.test(recipe, datamodule=datamodule, ckpt_path=best, verbose=False)
    test = recipe.results["test"]
    # under DDP every process holds every test utterance (gathered); rank 0 writes them
    predictions = recipe.test_predictions(datamodule.split("test").ids)
    if predictions is not None:  # refused before the run dir is written
        from bridging.data.predictions import refuse_non_finite
        from bridging.runs.outputs import with_split_speakers

        refuse_non_finite(predictions.probs, best or "the trained model")
        predictions = with_split_speakers(predictions, datamodule.corpus)
    return FitResult(trainer, precision, best, dev, test, predictions)


def finish(cfg: DictConfig, result: FitResult, metrics: dict, output_dir: Path) -> None:
    """On rank 0: keep what a finished run keeps of its checkpoints, write the run dir,
    give W&B its final figures and print the headline."""
    from bridging.runs.outputs import headline, write_run

    trainer = result.trainer
    if not trainer.is_global_zero:  # DDP: metrics are synced; one process writes them
        return
    finish_checkpoints(trainer, result.best, keep_checkpoints_option(cfg))  # before W&B logs it
    write_run(output_dir, metrics, result.predictions)
    for lg in wandb_loggers(trainer):
        from bridging.runs.tracking import log_final

        log_final(lg, metrics, output_dir, best_checkpoint=result.best)
    print(headline(metrics), flush=True)
    if cfg.get("print_json"):
        print(json.dumps({k: metrics["test"][k] for k in ("wf1", "acc", "mf1")}))
