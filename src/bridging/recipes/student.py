"""The speech-only student trained by knowledge distillation (docs/method.md, section 3).

A COGMEN on ``modalities`` (default audio only) learns from a frozen teacher (a bridging
teacher checkpoint, or a reference one imported by ``bridging-import-cogmen``; both are of
kind ``teacher``). Both see the same dialogues of every batch, each its own modalities; the
student never sees the others, and is evaluated speech-only.

Loss (every term also logged unweighted: ``train/loss_kd``, ``train/loss_cls``,
``train/loss_emb``; ``train/loss`` is the total)::

    loss = alpha * loss_kd + (1 - alpha) * cls_weight * loss_cls + emb_weight * loss_emb

with ``loss_kd = T^2 * KL(softmax(z_t / T) || softmax(z_s / T))`` (Hinton), ``loss_cls`` the
student's NLL (with the model's class weights) and ``loss_emb`` an embedding loss on the GNN
outputs (the authors' n-way triplet, MSE or cosine; :mod:`bridging.losses.kd`). ``alpha = 0,
emb_weight = cls_weight = 1`` is the authors' embedding-distillation run; ``emb_weight = 0``
is plain logit distillation.

The teacher:

- is given from outside (:meth:`StudentRecipe.set_teacher`; :func:`bridging.runs.teacher.
  attach_teacher` finds or first trains it for a run), never loaded in ``__init__``: a
  student checkpoint loads and evaluates without its teacher;
- is frozen (eval mode, no gradients) and kept OUTSIDE the module tree (a plain attribute),
  so it is neither trained nor saved in the student's checkpoint; ``.to(device)`` moves it
  too. The checkpoint records the teacher's path and the SHA-256 of its weights
  (``hyper_parameters["teacher_info"]`` and ``checkpoint["bridging"]["teacher"]``);
- runs in float32 whatever the student's ``trainer.precision`` (outside autocast);
- has its outputs (logits and GNN embeddings) cached in memory, keyed by dialogue id
  (:meth:`StudentRecipe.fill_cache`, for the whole training split before the first epoch;
  ``kd.cache``). A teacher with ``pad_mode="mask"`` (or a recurrent sequence context) gives
  a dialogue the same outputs whatever else is in its batch, so the cache is exact. A
  transformer teacher with ``pad_mode="reference"`` (imported reference checkpoints) does
  not: ``cache: auto`` then runs the teacher on every batch (exact, slower); ``cache: true``
  caches the outputs of the first epoch's batches (the same batches the student saw then)
  and reuses them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings

import torch

from bridging.data.batch import DialogueBatch
from bridging.data.records import DataError
from bridging.losses.kd import (
    EMB_KINDS,
    REDUCTIONS,
    EmbeddingProjection,
    embedding_kd_loss,
    kd_kl,
)
from bridging.recipes.base import EmotionRecipe

log = logging.getLogger(__name__)

TEACHER_DEFAULTS: dict = {
    # a teacher checkpoint (kind "teacher"); null: train one first (see teacher_run_config)
    "ckpt_path": None,
    # settings of a teacher trained here, over the run's own config
    "modalities": ["a", "v"],
    "model": {},
    "experiment_name": "teacher",
    "overrides": [],
    # where to train it: null = <run>/teacher, or <sweep dir>/teacher_<hash> in a multirun
    "dir": None,
}

KD_DEFAULTS: dict = {
    "temperature": 2.0,
    "alpha": 0.5,
    "cls_weight": 1.0,
    "emb_weight": 0.0,
    "emb_kind": "triplet",
    "emb_reduction": "sum",
    "margin": 1.0,
    "projection": False,
    "cache": "auto",
}

CACHE_MODES = ("auto", True, False)


def weights_sha256(module: torch.nn.Module) -> str:
    """SHA-256 of a module's state dict: names, dtypes, shapes and bytes, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def batch_independent(teacher) -> bool:
    """Whether a teacher's outputs for a dialogue do not depend on its batch (eval mode)."""
    seq = teacher.model.rnn
    return seq.kind != "transformer" or seq.pad_mode == "mask"


class StudentRecipe(EmotionRecipe):
    """COGMEN on ``modalities`` distilled from a frozen teacher.

    Args (besides EmotionRecipe's, given by keyword: ``**recipe``):
        teacher: ``ckpt_path`` (a checkpoint of kind ``teacher``; null = train one first),
            and for a teacher trained here ``modalities``, ``model`` (options over the run's),
            ``experiment_name``, ``overrides`` (``key=value`` over its config), ``dir``.
        kd: ``temperature``, ``alpha``, ``cls_weight``, ``emb_weight``, ``emb_kind``
            (triplet | mse | cosine), ``emb_reduction`` (sum | mean, triplet only),
            ``margin``, ``projection`` (learned linear map of the student's embeddings when
            the sizes differ), ``cache`` (auto | true | false).
        teacher_info: set by :meth:`set_teacher` (path, SHA-256, modalities, embedding size)
            and saved in the checkpoint's hyper-parameters; rebuilds the projection on load.
    """

    kind = "student_kd"

    def __init__(
        self,
        teacher: dict | None = None,
        kd: dict | None = None,
        teacher_info: dict | None = None,
        **recipe,
    ):
        super().__init__(**recipe)
        unknown = set(teacher or {}) - set(TEACHER_DEFAULTS)
        if unknown:
            raise ValueError(
                f"unknown recipe.teacher options {sorted(unknown)}; known: "
                f"{sorted(TEACHER_DEFAULTS)}"
            )
        unknown = set(kd or {}) - set(KD_DEFAULTS)
        if unknown:
            raise ValueError(
                f"unknown recipe.kd options {sorted(unknown)}; known: {sorted(KD_DEFAULTS)}"
            )
        self.teacher_opts = {**TEACHER_DEFAULTS, **dict(teacher or {})}
        self.kd = {**KD_DEFAULTS, **dict(kd or {})}
        self._check_kd()
        self.teacher_info = dict(teacher_info or {})
        self.projection = None
        if self.teacher_info.get("embedding_size") is not None:
            self._make_projection(int(self.teacher_info["embedding_size"]))
        # outside the module tree: not a submodule, not in state_dict, not trained
        self.__dict__["_teacher"] = None
        self.__dict__["_cache"] = {}
        self.__dict__["_cache_on"] = False

    # -- options -----------------------------------------------------------------------------
    def _check_kd(self) -> None:
        kd = self.kd
        kd["temperature"] = float(kd["temperature"])
        kd["alpha"] = float(kd["alpha"])
        for k in ("cls_weight", "emb_weight", "margin"):
            kd[k] = float(kd[k])
        if not kd["temperature"] > 0:
            raise ValueError(f"recipe.kd.temperature must be > 0, got {kd['temperature']}")
        if not 0.0 <= kd["alpha"] <= 1.0:
            raise ValueError(f"recipe.kd.alpha must lie in [0, 1], got {kd['alpha']}")
        if kd["emb_weight"] < 0 or kd["cls_weight"] < 0:
            raise ValueError("recipe.kd.emb_weight and cls_weight must be >= 0")
        if kd["emb_kind"] not in EMB_KINDS:
            raise ValueError(f"recipe.kd.emb_kind {kd['emb_kind']!r}: expected one of {EMB_KINDS}")
        if kd["emb_reduction"] not in REDUCTIONS:
            raise ValueError(
                f"recipe.kd.emb_reduction {kd['emb_reduction']!r}: expected one of {REDUCTIONS}"
            )
        if isinstance(kd["cache"], str) and kd["cache"].lower() in ("true", "false"):
            kd["cache"] = kd["cache"].lower() == "true"
        if kd["cache"] not in CACHE_MODES:
            raise ValueError(f"recipe.kd.cache {kd['cache']!r}: expected auto, true or false")

    def _make_projection(self, teacher_size: int) -> None:
        student_size = int(self.model.embedding_size)
        if teacher_size == student_size or self.kd["emb_weight"] == 0:
            return
        if not self.kd["projection"]:
            raise ValueError(
                f"embedding distillation: the student's GNN outputs have {student_size} "
                f"features, the teacher's {teacher_size}; give both the same model.gnn_nheads "
                "x model.hidden_size, set recipe.kd.projection=true (a learned linear "
                "projection of the student's embeddings) or recipe.kd.emb_weight=0"
            )
        self.projection = EmbeddingProjection(student_size, teacher_size)

    # -- the teacher -------------------------------------------------------------------------
    @property
    def teacher(self):
        """The frozen teacher recipe, or None before :meth:`set_teacher`."""
        return self.__dict__["_teacher"]

    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        if self.__dict__.get("_teacher") is not None:
            self.__dict__["_teacher"]._apply(fn, *args, **kwargs)
        return self

    def set_teacher(self, teacher, path=None) -> None:
        """Attach a teacher recipe: frozen, eval mode, outside the module tree, on this
        module's device; records its path and weight hash; checks the label set."""
        if teacher.facts.label_names != self.facts.label_names:
            raise DataError(
                f"teacher {path}: labels {teacher.facts.label_names} "
                f"({teacher.facts.label_set}), the student's data has {self.facts.label_names} "
                f"({self.facts.label_set})"
            )
        teacher.eval()
        teacher.requires_grad_(False)
        teacher.eval_modalities = list(teacher.modalities)
        teacher.to(self.device)
        self.__dict__["_teacher"] = teacher
        self.__dict__["_cache"] = {}
        info = {
            "ckpt_path": os.path.abspath(os.fspath(path)) if path is not None else None,
            "sha256": weights_sha256(teacher),
            "modalities": list(teacher.modalities),
            "embedding_size": int(teacher.model.embedding_size),
            "pad_mode": teacher.model.rnn.pad_mode,
            "batch_independent": batch_independent(teacher),
        }
        old = self.teacher_info.get("sha256")
        if old and old != info["sha256"]:
            warnings.warn(
                f"the student was distilled from a teacher with weights {old[:12]}..., the "
                f"teacher now given ({path}) has {info['sha256'][:12]}...",
                stacklevel=2,
            )
        if self.projection is None:
            self._make_projection(info["embedding_size"])
        self.teacher_info = info
        self.hparams["teacher_info"] = dict(info)
        mode = self.kd["cache"]
        self.__dict__["_cache_on"] = bool(
            mode is True or (mode == "auto" and info["batch_independent"])
        )
        if mode is True and not info["batch_independent"]:
            log.warning(
                "teacher %s uses pad_mode=reference: its outputs depend on the batch; the "
                "cache keeps those of the first epoch's batches",
                path,
            )

    # -- the teacher cache -------------------------------------------------------------------
    @torch.no_grad()
    def _run_teacher(self, batch: DialogueBatch):
        teacher = self.teacher
        if teacher.training:
            teacher.eval()
        batch = batch.to(teacher.device)
        # float32 whatever the student trains in (trainer.precision): the targets, and the
        # cache that holds them, do not depend on the student's autocast
        with torch.autocast(teacher.device.type, enabled=False):
            out = teacher(batch)
        return out.logits, out.embeddings

    @torch.no_grad()
    def fill_cache(self, split, batch_size: int = 32) -> int:
        """Run the teacher over a split (a ``SplitTensors``) and cache its outputs per
        dialogue. Returns the number of dialogues added."""
        added = 0
        for batch in split.loader(batch_size, shuffle=False):
            added += self._store(batch, *self._run_teacher(batch))
        return added

    def _store(self, batch: DialogueBatch, logits, emb) -> int:
        cache = self.__dict__["_cache"]
        lengths = batch.lengths.tolist()
        logits = logits.split(lengths)
        emb = emb.split(lengths)
        added = 0
        for i, d in enumerate(batch.dialogue_ids):
            if d not in cache:
                cache[d] = (logits[i], emb[i])
                added += 1
        return added

    def teacher_outputs(self, batch: DialogueBatch):
        """The teacher's ``(logits, embeddings)`` for a batch, flat over its real utterances
        (dialogue-major), from the cache where possible."""
        if self.teacher is None:
            raise RuntimeError(
                "the student has no teacher: give it one with set_teacher() first (bridging-train "
                "does, through bridging.runs.teacher.attach_teacher)"
            )
        if not self.__dict__["_cache_on"]:
            logits, emb = self._run_teacher(batch)
            return logits.to(self.device), emb.to(self.device)
        cache = self.__dict__["_cache"]
        lengths = batch.lengths.tolist()
        if any(
            d not in cache or cache[d][0].shape[0] != n for d, n in zip(batch.dialogue_ids, lengths)
        ):
            for d, n in zip(batch.dialogue_ids, lengths):  # stale entries (changed data)
                if d in cache and cache[d][0].shape[0] != n:
                    del cache[d]
            self._store(batch, *self._run_teacher(batch))
        logits = torch.cat([cache[d][0] for d in batch.dialogue_ids])
        emb = torch.cat([cache[d][1] for d in batch.dialogue_ids])
        return logits.to(self.device), emb.to(self.device)

    @property
    def cache_size(self) -> int:
        return len(self.__dict__["_cache"])

    @property
    def cache_on(self) -> bool:
        """Whether the teacher's outputs are cached (``kd.cache`` and the teacher's kind)."""
        return bool(self.__dict__["_cache_on"])

    # -- training ----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.teacher is None:
            raise RuntimeError(
                "the student has no teacher: give it one with set_teacher() (bridging-train "
                "does, through bridging.runs.teacher.attach_teacher) before fitting"
            )
        self.teacher.to(self.device)
        self.teacher.eval()

    def training_losses(self, batch: DialogueBatch) -> dict[str, torch.Tensor]:
        kd = self.kd
        out = self(batch)  # the student: its own modalities only
        labels = batch.flat_labels
        t_logits, t_emb = self.teacher_outputs(batch)
        loss_cls = self.model.loss(out, labels)
        zero = loss_cls.new_zeros(())
        alpha = kd["alpha"]
        loss_kd = kd_kl(out.logits, t_logits, kd["temperature"]) if alpha > 0 else zero
        loss = alpha * loss_kd + (1.0 - alpha) * kd["cls_weight"] * loss_cls
        loss_emb = zero
        if kd["emb_weight"] > 0:
            s = out.embeddings if self.projection is None else self.projection(out.embeddings)
            loss_emb = embedding_kd_loss(
                s,
                t_emb,
                labels,
                kind=kd["emb_kind"],
                margin=kd["margin"],
                reduction=kd["emb_reduction"],
            )
            loss = loss + kd["emb_weight"] * loss_emb
        return {"loss": loss, "loss_kd": loss_kd, "loss_cls": loss_cls, "loss_emb": loss_emb}

    # -- checkpoints ---------------------------------------------------------------------------
    def on_save_checkpoint(self, checkpoint: dict) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["bridging"]["teacher"] = {
            k: self.teacher_info.get(k) for k in ("ckpt_path", "sha256", "modalities")
        }


__all__ = [
    "StudentRecipe",
    "KD_DEFAULTS",
    "TEACHER_DEFAULTS",
    "weights_sha256",
    "batch_independent",
]
