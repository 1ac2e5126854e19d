"""Reference rows of the comparison: a per-utterance logistic regression and the annotation
ceiling, each written as a run dir like bridging-train's (metrics.json + test predictions).

- :func:`run_logreg`: multinomial logistic regression on the utterance features of some
  modalities (no context, no speakers, no graph): a baseline every reader understands.
  Features standardised with the training split's mean and std; plain torch, full-batch
  L-BFGS; the L2 strength chosen on the **dev** split only (best dev weighted F1), the test
  split used once, at the end. The fit is convex and starts from zero, so it does not depend
  on the seed: the seed only names the run, so that the report can pair it with other runs.
- :func:`write_ceiling_run`: on synthetic data, the annotation ceiling
  (:func:`bridging.data.synthetic.calibration.annotation_ceiling`: the generating latent
  emotion, ``Dialogue.latent``, scored against the stored majority-vote test labels: what a
  model that knew each utterance's true emotion would score against the annotations). None
  when the corpus has no latent emotions (real data).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from bridging.data.predictions import Predictions
from bridging.data.records import IGNORE_INDEX, Corpus, ordered_modalities
from bridging.data.synthetic.calibration import ceiling_predictions
from bridging.runs.outputs import run_metrics, with_split_speakers, write_run
from bridging.utils.logreg import fit_logreg

#: L2 strengths tried (on the mean cross-entropy; strongest first, so ties keep the simplest)
L2_GRID = (1.0, 0.3, 0.1, 0.03, 0.01, 0.003, 0.001)
LOGREG_RECIPE = "logreg"
CEILING_EXPERIMENT = "annotation_ceiling"


def _datamodule(datamodule_or_cfg, modalities: Sequence[str]):
    """The DataModule itself (made to load ``modalities`` too), or one built from a config
    (a bridging-train config with a ``data`` node, or the data node itself)."""
    from bridging.data.datamodule import IEMOCAPDataModule

    if isinstance(datamodule_or_cfg, IEMOCAPDataModule):
        dm = datamodule_or_cfg
        dm.add_modalities(modalities)
        dm.setup()
        return dm
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    cfg = datamodule_or_cfg
    node = cfg.get("data", cfg) if "data" in cfg else cfg
    # only the data node is resolved: the rest may hold Hydra-only interpolations
    data = dict(OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node)
    data.setdefault("_target_", "bridging.data.datamodule.IEMOCAPDataModule")
    data["modalities"] = list(modalities)
    dm = instantiate(data, _convert_="all")
    dm.setup()
    return dm


def _flat(split, modalities: Sequence[str]) -> tuple[torch.Tensor, ...]:
    """Features [N, F] (modalities concatenated a, t, v), labels [N], dialogue positions [N]
    and utterance indices [N] of every real utterance, dialogue-major (four tensors)."""
    t = split.labels.shape[1]
    mask = torch.arange(t)[None, :] < split.lengths[:, None]
    x = torch.cat([split.features[m][mask] for m in modalities], dim=-1).float()
    dlg = torch.repeat_interleave(torch.arange(len(split)), split.lengths)
    pos = torch.nonzero(mask)[:, 1]
    return x, split.labels[mask], dlg, pos


def run_logreg(
    datamodule_or_cfg,
    modalities: Sequence[str],
    out_dir,
    seed: int,
    experiment: str | None = None,
    l2_grid: Sequence[float] = L2_GRID,
) -> dict:
    """Fit the logistic regression on ``modalities`` (train split), choose L2 on dev, test
    once; write ``out_dir``/metrics.json (the keys bridging-report reads: experiment
    ``logreg_<mods>`` unless given, recipe ``logreg``, modalities, eval_modalities, label_set,
    label_names, seed, test, dev, data; ``logreg``: the grid and each strength's dev wF1),
    ``test_predictions.npz`` and ``confusion_matrix.png``. Returns the metrics."""
    mods = ordered_modalities(modalities)
    torch.manual_seed(int(seed))
    dm = _datamodule(datamodule_or_cfg, mods)
    names = list(dm.facts.label_names)
    k = len(names)
    x_tr, y_tr, _, _ = _flat(dm.split("train"), mods)
    known = y_tr != IGNORE_INDEX
    x_tr, y_tr = x_tr[known], y_tr[known]
    mean = x_tr.mean(0)
    std = x_tr.std(0)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))

    def prepare(name):
        x, y, dlg, pos = _flat(dm.split(name), mods)
        return (x - mean) / std, y, dlg, pos

    x_tr = (x_tr - mean) / std
    x_dev, y_dev, dlg_dev, pos_dev = prepare("dev")
    x_te, y_te, dlg_te, pos_te = prepare("test")

    def evaluate(params, x, y, dlg, pos, split):
        logits = x @ params[0] + params[1]
        log_probs = torch.log_softmax(logits, -1)
        known = y != IGNORE_INDEX
        loss = (
            float(torch.nn.functional.nll_loss(log_probs[known], y[known])) if known.any() else 0.0
        )
        preds = Predictions.build(
            dialogue_id=np.asarray(dm.split(split).ids)[dlg.numpy()],
            utterance_index=pos.numpy(),
            gold=y.numpy(),
            pred=log_probs.argmax(-1).numpy(),
            probs=log_probs.exp().numpy(),
            label_names=names,
            split=split,
        )
        return {"loss": loss, **preds.scores()}, preds

    grid = sorted((float(v) for v in l2_grid), reverse=True)
    if not grid:
        raise ValueError("l2_grid: expected at least one L2 strength")
    fits, dev_wf1, params = {}, {}, None
    for l2 in grid:  # warm start from the stronger penalty: the same optimum, fewer steps
        params = fit_logreg(x_tr, y_tr, k, l2, init=params)
        fits[l2] = params
        dev_wf1[l2] = evaluate(params, x_dev, y_dev, dlg_dev, pos_dev, "dev")[0]["wf1"]
    best = max(grid, key=lambda v: (dev_wf1[v], v))  # ties: the stronger penalty
    dev, _ = evaluate(fits[best], x_dev, y_dev, dlg_dev, pos_dev, "dev")
    test, preds = evaluate(fits[best], x_te, y_te, dlg_te, pos_te, "test")
    metrics = run_metrics(
        experiment=experiment or f"logreg_{''.join(mods)}",
        recipe=LOGREG_RECIPE,
        modalities=mods,
        eval_modalities=mods,
        label_set=dm.facts.label_set,
        label_names=names,
        seed=seed,
        test=test,
        dev=dev,
        data=dm.summary(),
        logreg={
            "l2": best,
            "grid": grid,
            "dev_wf1": {f"{v:g}": dev_wf1[v] for v in grid},
            "features": int(x_tr.shape[1]),
            "train_utterances": int(x_tr.shape[0]),
            "note": "per-utterance multinomial logistic regression on standardised features; "
            "L2 chosen on dev weighted F1; independent of the seed",
        },
    )
    preds = with_split_speakers(preds, dm.corpus)
    write_run(out_dir, metrics, preds, title=f"logreg on {'+'.join(mods)}")
    return metrics


def _corpus_summary(corpus: Corpus) -> dict:
    """The counts of ``IEMOCAPDataModule.summary`` (what the report names the data by)."""
    splits = {}
    for name, dialogues in corpus.splits.items():
        if not dialogues:
            continue
        labels = np.concatenate([np.asarray(d.labels) for d in dialogues])
        labels = labels[labels != IGNORE_INDEX]
        counts = np.bincount(labels, minlength=len(corpus.label_names)).tolist()
        splits[name] = {
            "dialogues": len(dialogues),
            "utterances": int(sum(len(d) for d in dialogues)),
            "label_counts": dict(zip(corpus.label_names, counts)),
        }
    return {
        "format": corpus.source_format,
        "path": corpus.path,
        "label_set": corpus.label_set,
        "label_names": list(corpus.label_names),
        "splits": splits,
    }


def write_ceiling_run(source, out_dir) -> dict | None:
    """The annotation ceiling as a run dir (metrics.json with experiment
    ``annotation_ceiling``, recipe ``ceiling``, no modalities, no seed; test and dev; plus
    ``test_predictions.npz``); None (nothing written) without latent emotions. ``source``:
    a Corpus, a DataModule or a config (as :func:`run_logreg`'s)."""
    corpus, summary = source, None
    if not isinstance(source, Corpus):
        dm = _datamodule(source, ["a"])  # any modality: only labels and latents are read
        corpus, summary = dm.corpus, dm.summary()
    test = ceiling_predictions(corpus, "test")
    if test is None:
        return None
    dev = ceiling_predictions(corpus, "dev")
    metrics = run_metrics(
        experiment=CEILING_EXPERIMENT,
        recipe="ceiling",
        modalities=[],
        eval_modalities=[],
        label_set=corpus.label_set,
        label_names=corpus.label_names,
        seed=None,
        test={"loss": None, **test.scores()},
        dev=None if dev is None else {"loss": None, **dev.scores()},
        data=summary or _corpus_summary(corpus),
        note="the generating latent emotion scored against the stored (majority-vote) "
        "labels; latent classes outside the label set count as errors",
    )
    write_run(out_dir, metrics, with_split_speakers(test, corpus), title="annotation ceiling")
    return metrics


__all__ = [
    "L2_GRID",
    "fit_logreg",
    "run_logreg",
    "write_ceiling_run",
]
