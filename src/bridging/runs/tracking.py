"""Weights & Biases: offline unless an account is configured, one run per job, grouped sweeps."""

from __future__ import annotations

import os
from pathlib import Path

RUN_ID_FILE = "wandb_run_id.txt"


def wandb_mode(mode: str = "auto") -> str:
    """``auto``: online when WANDB_API_KEY is set (or WANDB_MODE says so), else offline."""
    if mode not in ("auto", "online", "offline", "disabled"):
        raise ValueError(f"logger.wandb.mode={mode!r}: expected auto, online, offline or disabled")
    if mode != "auto":
        return mode
    env = os.environ.get("WANDB_MODE")
    if env in ("online", "offline", "disabled", "dryrun"):
        return "offline" if env == "dryrun" else env
    return "online" if os.environ.get("WANDB_API_KEY") else "offline"


def multirun_group(default: str | None = None) -> str | None:
    """The W&B group of this job: the multirun's sweep dir name (one group per sweep)."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        hc = HydraConfig.get()
    except Exception:  # noqa: BLE001 - not under a Hydra app (tests, notebooks)
        return default
    if hc.mode == RunMode.MULTIRUN:
        return f"{hc.job.name}-{Path(hc.sweep.dir).name}"
    return default


def wandb_logger(
    save_dir,
    project: str = "bridging",
    name: str | None = None,
    group: str | None = None,
    tags=(),
    mode: str = "auto",
    log_checkpoint: bool = True,
    entity: str | None = None,
    resume_from=None,
    job_type: str | None = None,
):
    """A Lightning WandbLogger whose run lives under ``save_dir``; ``resume_from``: a previous
    run dir whose W&B run id is continued (when a killed run is resumed); ``job_type``: the
    W&B job type (bridging-reproduce: the experiment)."""
    from pytorch_lightning.loggers import WandbLogger

    save_dir = Path(save_dir)
    save_dir.mkdir(parents=True, exist_ok=True)
    run_id = None
    if resume_from is not None:
        f = Path(resume_from) / RUN_ID_FILE
        if f.exists():
            run_id = f.read_text().strip() or None
    logger = WandbLogger(
        project=project,
        name=name,
        save_dir=str(save_dir),
        group=multirun_group(group),
        tags=list(tags or []),
        mode=wandb_mode(mode),
        id=run_id,
        resume="allow" if run_id else None,
        entity=entity,
        log_model=False,
        reinit="finish_previous",
        job_type=job_type,
    )
    logger.bridging_log_checkpoint = bool(log_checkpoint)
    return logger


def remember_run_id(logger, output_dir) -> None:
    """Write the W&B run's id (for resuming) and a small JSON record (id, name, group, job
    type, project, mode, dir)."""
    _record(logger.experiment, output_dir)


def _record(run, output_dir) -> None:
    import json

    from bridging.utils.files import atomic_write_text

    atomic_write_text(Path(output_dir) / RUN_ID_FILE, run.id)
    record = {
        "id": run.id,
        "name": run.name,
        "group": run.group,
        "job_type": run.job_type,
        "project": run.project,
        "mode": "offline" if run.settings._offline else "online",
        "dir": run.dir,
    }
    atomic_write_text(Path(output_dir) / "wandb_run.json", json.dumps(record, indent=2) + "\n")


def _summarise(run, metrics: dict) -> None:
    """The run's summary: the final test and dev metrics (``final/test_wf1`` ...), best epoch."""
    for stage in ("test", "dev"):
        for k in ("wf1", "acc", "mf1", "loss"):
            if k in (metrics.get(stage) or {}):
                run.summary[f"final/{stage}_{k}"] = metrics[stage][k]
    run.summary["best_epoch"] = metrics.get("best_epoch")


def summary_run(
    metrics: dict,
    output_dir,
    project: str = "bridging",
    name: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    tags=(),
    mode: str = "auto",
    entity: str | None = None,
) -> None:
    """A W&B run for a result that trained nothing here (an evaluation, a reference row):
    the run dir's metrics as config and its final metrics as summary, under
    ``<output_dir>/wandb/``, recorded as a training run's is (``wandb_run.json``)."""
    import wandb

    Path(output_dir).mkdir(parents=True, exist_ok=True)
    config = {k: metrics.get(k) for k in ("experiment", "recipe", "modalities", "eval_modalities",
                                          "label_set", "seed", "data")}  # fmt: skip
    run = wandb.init(
        project=project,
        entity=entity,
        name=name,
        group=group,
        job_type=job_type,
        tags=list(tags or []),
        mode=wandb_mode(mode),
        dir=str(output_dir),
        config=config,
        reinit="finish_previous",
    )
    try:
        _summarise(run, metrics)
        _record(run, output_dir)
    finally:
        run.finish()


def log_final(logger, metrics: dict, output_dir, best_checkpoint=None) -> None:
    """Run summary = final test metrics; confusion matrix (W&B plot + PNG); best checkpoint."""
    import numpy as np
    import wandb

    run = logger.experiment
    _summarise(run, metrics)
    names = metrics["label_names"]
    cm = np.asarray(metrics["test"]["confusion"], dtype=np.int64)
    gold = np.repeat(np.repeat(np.arange(len(names)), len(names)), cm.flatten())
    pred = np.repeat(np.tile(np.arange(len(names)), len(names)), cm.flatten())
    payload = {
        "test/confusion_matrix": wandb.plot.confusion_matrix(
            y_true=gold.tolist(), preds=pred.tolist(), class_names=list(names)
        )
    }
    png = Path(output_dir) / "confusion_matrix.png"
    if png.exists():
        payload["test/confusion_matrix_png"] = wandb.Image(str(png))
    run.log(payload)
    if best_checkpoint and getattr(logger, "bridging_log_checkpoint", False):
        art = wandb.Artifact(
            f"model-{run.id}", type="model", metadata={"test_wf1": metrics["test"]["wf1"]}
        )
        art.add_file(str(best_checkpoint), name="best.ckpt")
        run.log_artifact(art, aliases=["best"])


def finish_wandb() -> None:
    """Close the active W&B run, if any (multirun jobs must never merge into one run)."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
