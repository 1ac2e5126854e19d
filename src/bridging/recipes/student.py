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

- is loaded (or trained) in :meth:`StudentRecipe.prepare`, never in ``__init__``: a student
  checkpoint loads and evaluates without its teacher;
- is frozen (eval mode, no gradients) and kept OUTSIDE the module tree (a plain attribute),
  so it is neither trained nor saved in the student's checkpoint; ``.to(device)`` moves it
  too. The checkpoint records the teacher's path and the SHA-256 of its weights
  (``hyper_parameters["teacher_info"]`` and ``checkpoint["bridging"]["teacher"]``);
- has its outputs (logits and GNN embeddings) cached in memory, keyed by dialogue id, filled
  for the whole training split before the first epoch (``kd.cache``). A teacher with
  ``pad_mode="mask"`` (or a recurrent sequence context) gives a dialogue the same outputs
  whatever else is in its batch, so the cache is exact. A transformer teacher with
  ``pad_mode="reference"`` (imported reference checkpoints) does not: ``cache: auto`` then
  runs the teacher on every batch (exact, slower); ``cache: true`` caches the outputs of the
  first epoch's batches (the same batches the student saw then) and reuses them;
- when ``teacher.ckpt_path`` is null, is trained first by :func:`bridging.training.train`
  on a sub-config derived from the run's (see :func:`teacher_run_config`) in
  ``<run>/teacher/``; in a Hydra multirun, in ``<sweep dir>/teacher_<config hash>/``, shared
  by every job of the sweep and trained once (guarded by an ``fcntl`` file lock, so parallel
  jobs of the joblib launcher wait for the one that trains it).
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import hashlib
import logging
import os
import random
import warnings
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from bridging.data.batch import DialogueBatch
from bridging.data.records import IGNORE_INDEX, DataError, ordered_modalities
from bridging.io import config_hash
from bridging.losses.kd import (
    EMB_KINDS,
    REDUCTIONS,
    EmbeddingProjection,
    embedding_kd_loss,
    kd_kl,
)
from bridging.recipes.base import EmotionRecipe, stage_metrics

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


def teacher_run_config(cfg: DictConfig, teacher: dict, output_dir) -> DictConfig:
    """The config of the teacher trained for a student run: the run's own config (data,
    trainer, optimiser, seed, callbacks, logger: whatever the command line set), with the
    teacher's recipe (kind ``teacher``), ``teacher.modalities`` (model and data),
    ``teacher.model`` merged over the run's model options, ``teacher.experiment_name``, no
    ``eval.keep`` and no resume path, outputs in ``output_dir``; then ``teacher.overrides``
    (``key=value`` strings, values parsed as YAML) applied last.

    With the default ``experiment=student_kd`` this is the config of ``experiment=teacher``
    (a+v, L 4, H 7, dropout 0.1, 55 epochs), tested.
    """
    opts = {**TEACHER_DEFAULTS, **dict(teacher or {})}
    tcfg = copy.deepcopy(cfg)
    OmegaConf.set_readonly(tcfg, False)
    OmegaConf.set_struct(tcfg, False)
    mods = ordered_modalities(opts["modalities"])
    tcfg.recipe = {"_target_": "bridging.recipes.teacher.TeacherRecipe"}
    tcfg.modalities = mods
    tcfg.data.modalities = "${modalities}"
    if opts.get("model"):
        tcfg.model = OmegaConf.merge(tcfg.model, dict(opts["model"]))
    tcfg.experiment_name = opts.get("experiment_name") or "teacher"
    tcfg.task_name = tcfg.experiment_name
    if "eval" in tcfg:
        tcfg.eval.keep = None
    tcfg.ckpt_path = None
    tcfg.print_json = False
    tcfg.paths.output_dir = str(output_dir)
    for item in opts.get("overrides") or []:
        if "=" not in str(item):
            raise ValueError(f"recipe.teacher.overrides: {item!r} is not of the form key=value")
        tcfg = OmegaConf.merge(tcfg, OmegaConf.from_dotlist([str(item)]))
    return tcfg


def teacher_config_hash(tcfg: DictConfig) -> str:
    """A hash of a teacher's config that ignores where it is written."""
    probe = copy.deepcopy(tcfg)
    OmegaConf.set_readonly(probe, False)
    OmegaConf.set_struct(probe, False)
    probe.paths.output_dir = "<teacher>"
    return config_hash(OmegaConf.to_container(probe, resolve=True))


@contextlib.contextmanager
def file_lock(path):
    """An exclusive ``fcntl`` lock on ``path`` (created if needed), held for the block."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


@contextlib.contextmanager
def preserved_rng():
    """Restore the Python, NumPy and torch RNG states after the block (so that a student
    that trained its teacher draws the same numbers as one that reused it)."""
    py, npy, cpu = random.getstate(), np.random.get_state(), torch.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        yield
    finally:
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(cpu)
        if cuda is not None:
            torch.cuda.set_rng_state_all(cuda)


def _sweep_dir() -> Path | None:
    """The sweep dir of the running Hydra multirun, else None."""
    try:
        from hydra.core.hydra_config import HydraConfig
        from hydra.types import RunMode

        if HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN:
            return Path(HydraConfig.get().sweep.dir)
    except Exception:  # noqa: BLE001 - no Hydra app running
        return None
    return None


def _completed_run(run_dir: Path) -> Path | None:
    """The best checkpoint of a finished training run in ``run_dir`` (its metrics.json
    names it), else None."""
    import json

    metrics = run_dir / "metrics.json"
    if not metrics.exists():
        return None
    best = json.loads(metrics.read_text()).get("best_checkpoint")
    ckpt = run_dir / (best or "checkpoints/best.ckpt")
    return ckpt if ckpt.exists() else None


def ensure_modalities(datamodule, needed) -> None:
    """Make ``datamodule`` (an IEMOCAPDataModule) load ``needed`` modalities too.

    The student run's data is configured with the student's modalities; the teacher also
    needs its own, so the DataModule is set up again with the union (the corpus is already in
    memory: only the padded tensors are rebuilt)."""
    have = list(datamodule.modalities)
    if datamodule.add_modalities(needed):
        log.info(
            "data: loading modalities %s (the student's %s and the teacher's %s)",
            datamodule.modalities,
            have,
            list(needed),
        )


class StudentRecipe(EmotionRecipe):
    """COGMEN on ``modalities`` distilled from a frozen teacher.

    Args (besides EmotionRecipe's):
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
        facts: dict,
        modalities,
        model: dict,
        optim: dict | None = None,
        eval_keep=None,
        data: dict | None = None,
        teacher: dict | None = None,
        kd: dict | None = None,
        teacher_info: dict | None = None,
    ):
        super().__init__(
            facts=facts,
            modalities=modalities,
            model=model,
            optim=optim,
            eval_keep=eval_keep,
            data=data,
        )
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
        """The frozen teacher recipe, or None before :meth:`prepare` / :meth:`set_teacher`."""
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
        teacher.eval_keep = list(teacher.modalities)
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

    def _load_or_train_teacher(self, cfg, output_dir) -> tuple[object, Path, dict]:
        from bridging.recipes import load_recipe

        path = self.teacher_opts.get("ckpt_path")
        if path in (None, "", "null") and cfg is None:
            path = self.teacher_info.get("ckpt_path")  # a loaded student: its recorded teacher
        if path not in (None, "", "null"):
            return load_recipe(path, expect="teacher"), Path(path), {"trained_in": None}
        if cfg is None:
            raise ValueError(
                "the student has no teacher: set recipe.teacher.ckpt_path, or train through "
                "bridging.training.train (which trains one first)"
            )
        sweep = _sweep_dir()
        probe = teacher_run_config(cfg, self.teacher_opts, "<teacher>")
        key = teacher_config_hash(probe)
        if self.teacher_opts.get("dir"):
            run_dir = Path(self.teacher_opts["dir"])
        elif sweep is not None:
            run_dir = sweep / f"teacher_{key}"
        else:
            run_dir = Path(output_dir) / "teacher"
        tcfg = teacher_run_config(cfg, self.teacher_opts, run_dir)
        with file_lock(run_dir.parent / f".{run_dir.name}.lock"):
            ckpt = _completed_run(run_dir)
            trained = False
            if ckpt is None:
                from bridging.training import train

                log.info("training the teacher (%s) in %s", "+".join(tcfg.modalities), run_dir)
                with preserved_rng():
                    train(tcfg, output_dir=run_dir)
                ckpt = _completed_run(run_dir)
                trained = True
                if ckpt is None:
                    raise RuntimeError(f"the teacher run in {run_dir} left no best checkpoint")
            else:
                log.info("using the teacher already trained in %s", run_dir)
        return (
            load_recipe(ckpt, expect="teacher"),
            ckpt,
            {
                "trained_in": str(run_dir),
                "trained_by_this_run": trained,
                "config_hash": key,
            },
        )

    def prepare(self, cfg=None, datamodule=None, output_dir=None) -> None:
        """Load (or first train) the teacher, make the data carry its modalities, and fill
        the teacher cache for the training split. Called by ``training.train`` before fit."""
        if self.teacher is None:
            teacher, path, origin = self._load_or_train_teacher(cfg, output_dir)
            self.set_teacher(teacher, path)
            self.teacher_origin = origin
        if datamodule is not None:
            ensure_modalities(datamodule, self.teacher.modalities)
            sizes = datamodule.facts.feature_sizes
            bad = {
                m: (self.teacher.facts.feature_sizes.get(m), sizes.get(m))
                for m in self.teacher.modalities
                if self.teacher.facts.feature_sizes.get(m) != sizes.get(m)
            }
            if bad:
                raise DataError(
                    f"teacher {self.teacher_info.get('ckpt_path')}: feature sizes (teacher, "
                    f"data) differ: {bad}"
                )
            if self.__dict__["_cache_on"] and self.teacher_info["batch_independent"]:
                self.fill_cache(datamodule.split("train"))

    # -- the teacher cache -------------------------------------------------------------------
    @torch.no_grad()
    def _run_teacher(self, batch: DialogueBatch):
        teacher = self.teacher
        if teacher.training:
            teacher.eval()
        out = teacher(batch.to(teacher.device))
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
                "the student has no teacher: call prepare() (bridging.training.train does) or "
                "set_teacher() first"
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

    # -- training ----------------------------------------------------------------------------
    def on_fit_start(self) -> None:
        if self.teacher is None:
            self.prepare(cfg=None, datamodule=getattr(self.trainer, "datamodule", None))
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

    # -- reports -------------------------------------------------------------------------------
    @torch.no_grad()
    def compare_with_teacher(self, datamodule, split: str = "test") -> dict:
        """The teacher's metrics on ``split`` (its own modalities) and the agreement of the
        student's (speech-only) and the teacher's predictions, over every real utterance."""
        teacher = self.teacher
        device = self.device
        teacher.to(device)
        was_training = self.training
        self.eval()
        n_classes = self.facts.n_classes
        metrics = stage_metrics(n_classes).to(device)
        loss_sum, n_lab = 0.0, 0
        pairs = torch.zeros(n_classes, n_classes, dtype=torch.long)
        part = datamodule.split(split)
        for batch in part.loader(datamodule.eval_batch_size, shuffle=False):
            batch = batch.to(device)
            s = self.eval_output(batch).log_probs.argmax(-1)
            t_out = teacher(batch)
            t = t_out.log_probs.argmax(-1)
            labels = batch.flat_labels
            known = labels != IGNORE_INDEX
            k = int(known.sum())
            if k:
                loss_sum += float(teacher.model.loss(t_out, labels)) * k
                n_lab += k
                metrics.update(t[known], labels[known])
            pairs += torch.bincount(
                (s * n_classes + t).cpu(), minlength=n_classes * n_classes
            ).view(n_classes, n_classes)
        values = metrics.compute()
        names = self.facts.label_names
        teacher_result = {
            "loss": loss_sum / max(1, n_lab),
            "wf1": float(values["wf1"]),
            "acc": float(values["acc"]),
            "mf1": float(values["mf1"]),
            "per_class_f1": {n: float(v) for n, v in zip(names, values["f1"].tolist())},
            "confusion": values["confusion"].long().tolist(),
        }
        total = int(pairs.sum())
        agree = int(pairs.trace())
        p_o = agree / max(1, total)
        p_e = float((pairs.sum(1).double() * pairs.sum(0).double()).sum()) / max(1, total) ** 2
        kappa = (p_o - p_e) / (1 - p_e) if p_e < 1 else 1.0
        self.train(was_training)
        return {
            "teacher_result": teacher_result,
            "agreement": {
                "split": split,
                "utterances": total,
                "rate": p_o,
                "cohen_kappa": kappa,
                "pairs": pairs.tolist(),  # rows: student prediction, columns: teacher's
            },
        }

    def extra_metrics(self, trainer=None, datamodule=None, best=None) -> dict:
        """Merged into metrics.json by ``training.train``: the teacher (path, hash, where it
        was trained, its test metrics on its own modalities) and the student-teacher
        agreement on test."""
        if self.teacher is None or datamodule is None:
            return {}
        ensure_modalities(datamodule, self.teacher.modalities)
        cmp = self.compare_with_teacher(datamodule, "test")
        teacher = {
            **{k: self.teacher_info.get(k) for k in ("ckpt_path", "sha256", "modalities")},
            "eval_modalities": list(self.teacher.modalities),
            "pad_mode": self.teacher_info.get("pad_mode"),
            "cache": bool(self.__dict__["_cache_on"]),
            **getattr(self, "teacher_origin", {}),
            "test": cmp["teacher_result"],
        }
        return {"teacher": teacher, "agreement": cmp["agreement"], "kd": dict(self.kd)}


__all__ = [
    "StudentRecipe",
    "KD_DEFAULTS",
    "TEACHER_DEFAULTS",
    "teacher_run_config",
    "teacher_config_hash",
    "weights_sha256",
    "ensure_modalities",
]
