"""The base of every training recipe: loss, optimiser, metrics, logging, checkpoint kind.

Recipes know nothing of file formats: they get batches (:class:`DialogueBatch`) and the
dataset facts (:class:`DatasetFacts`, as a plain dict so checkpoints load with
``weights_only=True``).
"""

from __future__ import annotations

import random

import numpy as np
import pytorch_lightning as pl
import torch
from torchmetrics import MaxMetric, MeanMetric, Metric, MetricCollection
from torchmetrics.classification import (
    MulticlassAccuracy,
    MulticlassConfusionMatrix,
    MulticlassF1Score,
)
from torchmetrics.utilities import dim_zero_cat

from bridging import __version__
from bridging.data.batch import DialogueBatch, concat_modalities
from bridging.data.datamodule import DatasetFacts
from bridging.data.records import IGNORE_INDEX, DataError, ordered_modalities
from bridging.models.cogmen import COGMEN, ModelOutput

#: Keys of COGMEN's constructor that a model config may set.
MODEL_KEYS = (
    "rnn",
    "hidden_size",
    "seqcontext_nlayer",
    "gnn_nheads",
    "drop_rate",
    "wp",
    "wf",
    "gnn",
    "concat_gin_gout",
    "use_highway",
    "pad_mode",
    "dropout_masks",
    "relations",
    "num_bases",
)


def class_weights_from(facts: DatasetFacts, class_weight) -> list[float] | None:
    """``False``/``None``: no weights; ``True``: 1 / training-split class frequency;
    a list: as given."""
    if class_weight is None or class_weight is False:
        return None
    if class_weight is True:
        freqs = facts.class_frequencies()
        empty = [n for n, f in zip(facts.label_names, freqs) if f == 0]
        if empty:
            raise DataError(
                f"class_weight=true needs every class in the training split; {empty} have no "
                "training utterances (give an explicit list instead)"
            )
        return [1.0 / f for f in freqs]
    weights = [float(w) for w in class_weight]
    if len(weights) != facts.n_classes:
        raise ValueError(
            f"model.class_weight has {len(weights)} values, the label set {facts.label_set} "
            f"has {facts.n_classes} classes {facts.label_names}"
        )
    return weights


def build_cogmen(facts: DatasetFacts, modalities, model_cfg: dict) -> COGMEN:
    """A COGMEN whose every size comes from the data facts and the model config."""
    unknown = set(model_cfg) - set(MODEL_KEYS) - {"class_weight"}
    if unknown:
        raise ValueError(f"unknown model options {sorted(unknown)}; known: {MODEL_KEYS}")
    kwargs = {k: model_cfg[k] for k in MODEL_KEYS if k in model_cfg}
    return COGMEN(
        input_size=facts.input_size(modalities),
        n_classes=facts.n_classes,
        n_speakers=facts.n_speakers,
        class_weights=class_weights_from(facts, model_cfg.get("class_weight")),
        **kwargs,
    )


def stage_metrics(n_classes: int) -> MetricCollection:
    return MetricCollection(
        {
            "wf1": MulticlassF1Score(n_classes, average="weighted"),
            "acc": MulticlassAccuracy(n_classes, average="micro"),
            "mf1": MulticlassF1Score(n_classes, average="macro"),
            "f1": MulticlassF1Score(n_classes, average=None),
            "confusion": MulticlassConfusionMatrix(n_classes),
        }
    )


class PredictionStore(Metric):
    """Every test utterance's prediction, kept for the run's predictions file.

    A torchmetrics state of ``cat`` lists: under DDP ``compute`` gathers every process's
    utterances (of any count) onto every process, so rank 0 holds them all; the repeats that
    DDP's sampler adds to even out the ranks are dropped when the file is built
    (:meth:`bridging.data.predictions.Predictions.build`). The states are not persistent: nothing
    of this enters checkpoints."""

    full_state_update = False
    FIELDS = ("dialogue", "position", "gold", "pred", "probs")

    def __init__(self):
        super().__init__()
        for name in self.FIELDS:
            self.add_state(name, default=[], dist_reduce_fx="cat")

    def update(self, dialogue, position, gold, pred, probs) -> None:
        for name, value in zip(self.FIELDS, (dialogue, position, gold, pred, probs)):
            getattr(self, name).append(value.detach())

    def compute(self) -> dict:
        return {name: dim_zero_cat(getattr(self, name)).cpu().numpy() for name in self.FIELDS}


class EmotionRecipe(pl.LightningModule):
    """Shared training logic. Subclasses set ``kind`` and may override the loss.

    Args:
        facts: ``DatasetFacts.to_dict()`` of the training data.
        modalities: the modalities the model takes (concatenated in the order a, t, v).
        model: COGMEN options (see ``MODEL_KEYS``; ``class_weight``: false, true or a list).
        optim: ``lr``, ``weight_decay``, ``scheduler`` (``factor``, ``patience``).
        eval_modalities: modalities kept at validation/test/predict; the others are zeroed
            (``None``: keep all).
        data: the data config the recipe was trained with (kept in the checkpoint so that
            bridging-eval and bridging-predict can rebuild the same data by default).
    """

    kind = "base"

    def __init__(
        self,
        facts: dict,
        modalities,
        model: dict,
        optim: dict | None = None,
        eval_modalities=None,
        data: dict | None = None,
    ):
        super().__init__()
        self.save_hyperparameters()
        self.facts = DatasetFacts.from_dict(dict(facts))
        self.modalities = ordered_modalities(modalities)
        self.model = build_cogmen(self.facts, self.modalities, dict(model))
        self.optim = dict(optim or {})
        self.eval_modalities = (
            self.modalities if eval_modalities is None else ordered_modalities(eval_modalities)
        )
        bad = [m for m in self.eval_modalities if m not in self.modalities]
        if bad:
            raise ValueError(
                f"eval_modalities {bad} not among the model's modalities {self.modalities}"
            )
        c = self.facts.n_classes
        self.metrics = torch.nn.ModuleDict({s: stage_metrics(c) for s in ("val", "test")})
        self.losses = torch.nn.ModuleDict({s: MeanMetric() for s in ("val", "test")})
        self.best_val_wf1 = MaxMetric()
        self.results: dict[str, dict] = {}
        #: the data, protocol, fold and splits the model is trained on, saved in its
        #: checkpoints (set by the runs layer: :mod:`bridging.runs.identity`)
        self.binding: dict | None = None
        self.prediction_store = PredictionStore()
        #: the last test's per-utterance arrays (see :meth:`test_predictions`)
        self.test_arrays: dict | None = None

    # -- inputs ----------------------------------------------------------------------------
    def model_input(self, batch: DialogueBatch, keep=None) -> torch.Tensor:
        """The model's input: its modalities concatenated in the order a, t, v, those not in
        ``keep`` zeroed (a zeroed modality need not be in the batch at all)."""
        keep = self.modalities if keep is None else keep
        missing = [m for m in self.modalities if m in keep and m not in batch.features]
        if missing:
            raise DataError(
                f"the model takes modalities {self.modalities}; the batch lacks {missing} "
                f"(data modalities: {batch.modalities})"
            )
        b, t = batch.speakers.shape
        feats = {}
        for m in self.modalities:
            if m in keep:
                feats[m] = batch.features[m]
            else:
                size = self.facts.feature_sizes[m]
                feats[m] = batch.speakers.new_zeros((b, t, size), dtype=torch.float32)
        return concat_modalities(feats, self.modalities)

    def forward(self, batch: DialogueBatch, keep=None) -> ModelOutput:
        return self.model(self.model_input(batch, keep), batch.lengths, batch.speakers)

    # -- training --------------------------------------------------------------------------
    def training_losses(self, batch: DialogueBatch) -> dict[str, torch.Tensor]:
        """Named loss terms; ``loss`` is the one optimised. Subclasses extend this."""
        out = self(batch)
        return {"loss": self.model.loss(out, batch.flat_labels)}

    def training_step(self, batch: DialogueBatch, batch_idx: int):
        losses = self.training_losses(batch)
        loss = losses["loss"].detach()
        if not bool(torch.isfinite(loss)):  # one check per step: stop, never train on NaN
            raise DataError(self._non_finite_loss(float(loss), batch_idx))
        bs = batch.batch_size
        for name, value in losses.items():
            self.log(f"train/{name}", value, on_step=False, on_epoch=True, batch_size=bs)
        return losses["loss"]

    def _non_finite_loss(self, value: float, batch_idx: int) -> str:
        """Why training stops: the loss, where, and the likely cause (the largest absolute
        training feature value)."""
        trainer = self._trainer
        epoch = trainer.current_epoch if trainer is not None else 0
        corpus = getattr(getattr(trainer, "datamodule", None), "corpus", None)
        where = corpus.where() if corpus is not None else "<data>"
        msg = f"{where}: the training loss became {value} at epoch {epoch}, batch {batch_idx}"
        largest, modality = 0.0, None
        for d in corpus.splits.get("train", []) if corpus is not None else []:
            for m in self.modalities:
                x = d.features.get(m)
                if x is not None and x.size and float(np.abs(x).max()) > largest:
                    largest, modality = float(np.abs(x).max()), m
        if modality is None:
            return msg + "; refusing to go on training"
        if largest > 1e4:
            return (
                f"{msg}: features of enormous magnitude (the largest absolute training feature "
                f"value is {largest:.3g}, modality {modality!r}): standardise the features "
                "(e.g. z-scores per dimension) and train again"
            )
        return (
            f"{msg} (the largest absolute training feature value is {largest:.3g}, modality "
            f"{modality!r}): training diverged; try a lower optim.lr"
        )

    def eval_output(self, batch: DialogueBatch) -> ModelOutput:
        return self(batch, keep=self.eval_modalities)

    def _eval_step(self, batch: DialogueBatch, stage: str):
        out = self.eval_output(batch)
        labels = batch.flat_labels
        loss = self.model.loss(out, labels)
        known = labels != IGNORE_INDEX
        self.losses[stage].update(loss, weight=int(known.sum()))
        pred = out.log_probs.argmax(-1)
        self.metrics[stage].update(pred[known], labels[known])
        if stage == "test":
            lengths = batch.lengths
            dlg = torch.repeat_interleave(batch.index.to(lengths.device), lengths)
            starts = torch.cumsum(lengths, 0) - lengths
            pos = torch.arange(len(labels), device=lengths.device) - starts.repeat_interleave(
                lengths
            )
            self.prediction_store.update(dlg, pos, labels, pred, out.log_probs.exp().float())
        return out

    def validation_step(self, batch, batch_idx):
        self._eval_step(batch, "val")

    def test_step(self, batch, batch_idx):
        self._eval_step(batch, "test")

    def _finish_stage(self, stage: str) -> dict:
        values = self.metrics[stage].compute()
        loss = self.losses[stage].compute()
        self.metrics[stage].reset()
        self.losses[stage].reset()
        names = self.facts.label_names
        result = {
            "loss": float(loss),
            "wf1": float(values["wf1"]),
            "acc": float(values["acc"]),
            "mf1": float(values["mf1"]),
            "per_class_f1": {n: float(v) for n, v in zip(names, values["f1"].tolist())},
            "confusion": values["confusion"].long().tolist(),
        }
        log = {f"{stage}/{k}": result[k] for k in ("loss", "wf1", "acc", "mf1")}
        log.update({f"{stage}/f1_{n}": v for n, v in result["per_class_f1"].items()})
        self.log_dict(log, sync_dist=True)
        self.results[stage] = result
        return result

    def on_train_start(self):
        self.best_val_wf1.reset()

    def on_validation_epoch_end(self):
        result = self._finish_stage("val")
        if not self.trainer.sanity_checking:
            self.best_val_wf1.update(torch.tensor(result["wf1"]))
            self.log("val/best_wf1", self.best_val_wf1.compute(), sync_dist=True)

    def on_test_epoch_end(self):
        self._finish_stage("test")
        store = self.prediction_store
        # all processes' utterances under DDP (each process has test batches, or none has)
        self.test_arrays = store.compute() if store.update_count else None
        store.reset()

    def test_predictions(self, dialogue_ids, split: str = "test"):
        """The last test's per-utterance predictions as a
        :class:`~bridging.data.predictions.Predictions` (``dialogue_ids``: the tested split's ids,
        in order); None before any test."""
        if self.test_arrays is None:
            return None
        from bridging.data.predictions import from_recipe_arrays

        return from_recipe_arrays(self.test_arrays, dialogue_ids, self.facts.label_names, split)

    def predict_step(self, batch: DialogueBatch, batch_idx: int):
        out = self.eval_output(batch)
        return {
            "probs": out.log_probs.exp().cpu(),
            "labels": batch.flat_labels.cpu(),
            "speakers": batch.flat_speakers.cpu(),
            "lengths": batch.lengths.cpu(),
            "dialogue_ids": batch.dialogue_ids,
        }

    # -- optimisation ----------------------------------------------------------------------
    def configure_optimizers(self):
        # fused: torch's one-kernel Adam (the same update, rounded differently from the
        # per-tensor loop; several times faster on CPU); fused=false is torch's default
        opt = torch.optim.Adam(
            [p for p in self.parameters() if p.requires_grad],
            lr=float(self.optim.get("lr", 1e-4)),
            weight_decay=float(self.optim.get("weight_decay", 1e-8)),
            fused=bool(self.optim.get("fused", True)),
        )
        sched_cfg = self.optim.get("scheduler", {}) or {}
        if sched_cfg.get("enabled", True) is False:
            return opt
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(
            opt,
            mode="min",
            factor=float(sched_cfg.get("factor", 0.1)),
            patience=int(sched_cfg.get("patience", 10)),
        )
        return {
            "optimizer": opt,
            "lr_scheduler": {"scheduler": sched, "monitor": "val/loss", "interval": "epoch"},
        }

    # -- checkpoints -----------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["bridging"] = {"kind": self.kind, "version": __version__}
        if self.binding is not None:
            checkpoint["bridging"]["binding"] = self.binding
        # random states, as plain containers (loadable with weights_only=True), so that a
        # resumed run draws the same shuffles and dropout masks as an uninterrupted one
        np_state = np.random.get_state()
        checkpoint["bridging_rng"] = {
            "torch": torch.get_rng_state(),
            "numpy": [np_state[0], np_state[1].tolist(), *np_state[2:]],
            "python": random.getstate(),
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        rng = checkpoint.get("bridging_rng")
        if rng and self._trainer is not None and self.trainer.state.fn == "fit":
            torch.set_rng_state(rng["torch"])
            kind, keys, *rest = rng["numpy"]
            np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), *rest))
            state = rng["python"]
            random.setstate((state[0], tuple(state[1]), state[2]))
