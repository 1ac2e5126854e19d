"""bridging-predict: one CSV row per utterance with the predicted label and class probabilities.

An existing output is refused unless overwrite=true; the checkpoint, the input data and a
run's files (metrics.json, ...) are never replaced. Class probabilities that are not finite
(NaN) are refused, never written.

Errors are one line (``bridging-predict: error: ...``, exit 2 for bad input; the traceback
with HYDRA_FULL_ERROR=1).
"""

from __future__ import annotations

from omegaconf import DictConfig

from bridging.cli.common import hydra_command


@hydra_command("bridging-predict", "predict")
def main(cfg: DictConfig) -> None:
    from bridging.runs.evaluate import options_from_config, predict

    options = options_from_config(cfg)
    rows = predict(cfg.ckpt_path, cfg.output, overwrite=bool(cfg.get("overwrite")), **options)
    print(f"wrote {len(rows)} predictions to {cfg.output}")


if __name__ == "__main__":
    main()
