"""bridging-predict: one CSV row per utterance with the predicted label and class probabilities.

An existing output is refused unless overwrite=true; the checkpoint, the input data and a
run's files (metrics.json, ...) are never replaced. Class probabilities that are not finite
(NaN) are refused, never written. A split holding dialogues the model was trained or
selected on is refused unless ``allow_overlap=true``, which adds the column ``seen_by_model``
(``train``, ``dev`` or empty) to every row (docs/protocols.md, "A run is bound to its data").

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
