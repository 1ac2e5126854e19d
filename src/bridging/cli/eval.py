"""bridging-eval: evaluate any bridging checkpoint on a split, optionally zeroing modalities.

Errors are one line (``bridging-eval: error: ...``, exit 2 for bad input; the traceback with
HYDRA_FULL_ERROR=1). Into a training run's dir (``hydra.run.dir=<run>``) it writes its own
subdir ``eval_<split>_<modalities>/``, never the run's files. A split holding dialogues the
model was trained or selected on (another fold, another file of the same dialogues) is
refused unless ``allow_overlap=true``, recorded in metrics.json's ``overlap``
(docs/protocols.md, "A run is bound to its data").
"""

from __future__ import annotations

from omegaconf import DictConfig

from bridging.cli.common import hydra_command


@hydra_command("bridging-eval", "eval")
def main(cfg: DictConfig) -> float:
    from bridging.runs.evaluate import eval_output_dir, evaluate, options_from_config

    metrics = evaluate(cfg.ckpt_path, output_dir=cfg.paths.output_dir, **options_from_config(cfg))
    # the same answer as evaluate's: its own outputs never make a dir a training run's
    out = eval_output_dir(cfg.paths.output_dir, cfg.split, metrics["eval_modalities"])
    r = metrics[cfg.split]
    print(
        f"{metrics['recipe']} ({'+'.join(metrics['modalities'])}) evaluated on "
        f"{'+'.join(metrics['eval_modalities'])}, {cfg.split} split: weighted F1 "
        f"{100 * r['wf1']:.2f}  acc {100 * r['acc']:.2f}  macro F1 {100 * r['mf1']:.2f}  "
        f"-> {out}/metrics.json"
    )
    return float(r["wf1"])


if __name__ == "__main__":
    main()
