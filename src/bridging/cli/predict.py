"""bridging-predict: one CSV row per utterance with the predicted label and class probabilities."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from bridging.paths import conf_dir


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="predict")
def main(cfg: DictConfig) -> None:
    from bridging.evaluation import options_from_config, predict

    rows = predict(cfg.ckpt_path, cfg.output, **options_from_config(cfg))
    print(f"wrote {len(rows)} predictions to {cfg.output}")


if __name__ == "__main__":
    main()
