"""bridging-eval: evaluate any bridging checkpoint on a split, optionally zeroing modalities."""

from __future__ import annotations

import hydra
from omegaconf import DictConfig

from bridging.paths import conf_dir


@hydra.main(version_base="1.3", config_path=conf_dir(), config_name="eval")
def main(cfg: DictConfig) -> float:
    from bridging.evaluation import evaluate, options_from_config

    metrics = evaluate(cfg.ckpt_path, output_dir=cfg.paths.output_dir, **options_from_config(cfg))
    r = metrics[cfg.split]
    print(
        f"{metrics['recipe']} ({'+'.join(metrics['modalities'])}) evaluated on "
        f"{'+'.join(metrics['eval_modalities'])}, {cfg.split} split: weighted F1 "
        f"{100 * r['wf1']:.2f}  acc {100 * r['acc']:.2f}  macro F1 {100 * r['mf1']:.2f}  "
        f"-> {cfg.paths.output_dir}/metrics.json"
    )
    return float(r["wf1"])


if __name__ == "__main__":
    main()
