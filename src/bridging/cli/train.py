"""bridging-train: train a recipe (teacher, student, masked model) from the Hydra configs."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from bridging.paths import conf_dir


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="train")
def main(cfg: DictConfig) -> float:
    from bridging.tracking import finish_wandb
    from bridging.training import train

    try:
        metrics = train(cfg)
    finally:
        finish_wandb()
    # sweepers (Optuna) maximise the best dev weighted F1: never select on test
    return float(metrics["dev"]["wf1"])


if __name__ == "__main__":
    main()
