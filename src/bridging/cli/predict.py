"""bridging-predict: one CSV row per utterance with the predicted label and class probabilities."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf

from bridging.paths import conf_dir


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="predict")
def main(cfg: DictConfig) -> None:
    from bridging.evaluation import predict

    data = OmegaConf.to_container(cfg.data, resolve=True) if cfg.get("data") else None
    mods = cfg.eval.modalities
    rows = predict(
        cfg.ckpt_path,
        cfg.output,
        data_cfg=data,
        split=cfg.split,
        modalities=None if mods is None else list(mods),
        batch_size=cfg.batch_size,
        accelerator=cfg.accelerator,
    )
    print(f"wrote {len(rows)} predictions to {cfg.output}")


if __name__ == "__main__":
    main()
