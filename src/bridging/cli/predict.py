"""bridging-predict: one CSV row per utterance with the predicted label and class probabilities.

Errors are one line (``bridging-predict: error: ...``, exit 2 for bad input; the traceback
with HYDRA_FULL_ERROR=1).
"""

from __future__ import annotations

from omegaconf import DictConfig

from bridging.cli.common import hydra_command


@hydra_command("bridging-predict", "predict")
def main(cfg: DictConfig) -> None:
    from bridging.runs.evaluate import options_from_config, predict

    rows = predict(cfg.ckpt_path, cfg.output, **options_from_config(cfg))
    print(f"wrote {len(rows)} predictions to {cfg.output}")


if __name__ == "__main__":
    main()
