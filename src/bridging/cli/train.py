"""bridging-train: train a recipe (teacher, student, masked model) from the Hydra configs.

A run dir that holds a finished run (metrics.json) or a killed one (checkpoints, no
metrics.json) is never replaced: ``ckpt_path=last`` resumes it, ``overwrite=true`` replaces
it deliberately; a second training into a dir whose run is alive is refused, and a run never
writes through a link out of its dir. A resume must be on the run's own data, protocol, fold,
dev rule and label set (docs/protocols.md, "A run is bound to its data"). A refused run
changes no byte of an existing dir: nothing is written there before every check passed.
Errors are one line (``bridging-train: error: ...``, exit 2 for bad input; the traceback
with HYDRA_FULL_ERROR=1).
"""

from __future__ import annotations

from omegaconf import DictConfig

from bridging.cli.common import hydra_command


@hydra_command("bridging-train", "train")
def main(cfg: DictConfig) -> float:
    from bridging.runs.experiment import train
    from bridging.runs.rundir import check_run_dir, run_dir_lock
    from bridging.runs.tracking import finish_wandb

    out = cfg.paths.output_dir
    with run_dir_lock(out):  # one live run per dir, for the run's life
        # nothing is written into the dir before every check passed (commit_run)
        check_run_dir(out, cfg.get("ckpt_path"), bool(cfg.get("overwrite", False)))
        try:
            metrics = train(cfg)
        finally:
            finish_wandb()
    # sweepers (Optuna) maximise the best dev weighted F1: never select on test
    return float(metrics["dev"]["wf1"])


if __name__ == "__main__":
    main()
