"""The teacher of a distilled student: found, or trained first, and handed to the student.

:func:`attach_teacher` is what :mod:`bridging.runs.experiment` calls for a student run:

- ``recipe.teacher.ckpt_path`` set: that checkpoint (of kind ``teacher`` or ``baseline``; a
  reference one goes through ``bridging-import-cogmen`` first);
- null: the teacher is trained first, by the ``train`` function the caller passes in
  (:mod:`bridging.runs.experiment` passes its own :func:`~bridging.runs.experiment.train`;
  this module never imports it, so calls go one way), on a config derived from the run's
  (:func:`teacher_run_config`) in ``<run>/teacher/``; in a Hydra multirun in ``<sweep
  dir>/teacher_<config hash>/``, shared by every job of the sweep and trained once (an
  ``fcntl`` file lock makes parallel jobs of the joblib launcher wait for the one that trains
  it); a finished run found there (its metrics.json names its best checkpoint) is reused;
- without a run config (a loaded student checkpoint): the teacher its checkpoint recorded.

Then the data carries the teacher's modalities too, its feature sizes are checked against the
teacher's, and the student's teacher cache is filled for the training split.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import logging
import random
from pathlib import Path

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from bridging.data.records import DataError, ordered_modalities
from bridging.recipes.student import TEACHER_DEFAULTS
from bridging.utils.files import config_hash

log = logging.getLogger(__name__)

#: the checkpoint kinds a student distils from (supervised COGMEN models)
TEACHER_KINDS = ("teacher", "baseline")


def teacher_run_config(cfg: DictConfig, teacher: dict, output_dir) -> DictConfig:
    """The config of the teacher trained for a student run: the run's own config (data,
    trainer, optimiser, seed, callbacks, logger: whatever the command line set), with the
    teacher's recipe (kind ``teacher``), ``teacher.modalities`` (model and data),
    ``teacher.model`` merged over the run's model options, ``teacher.experiment_name``, no
    ``eval.modalities`` and no resume path, outputs in ``output_dir``; then
    ``teacher.overrides`` (``key=value`` strings, values parsed as YAML) applied last.

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
        tcfg.eval.modalities = None
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


def completed_run(run_dir: Path) -> Path | None:
    """The best checkpoint of a finished training run in ``run_dir`` (its metrics.json
    names it), else None."""
    metrics = Path(run_dir) / "metrics.json"
    if not metrics.exists():
        return None
    best = json.loads(metrics.read_text()).get("best_checkpoint")
    ckpt = Path(run_dir) / (best or "checkpoints/best.ckpt")
    return ckpt if ckpt.exists() else None


def provide_teacher(student, cfg: DictConfig | None, output_dir=None, train=None):
    """The student's teacher recipe, its checkpoint path and where it came from (see the
    module doc): ``(teacher, path, origin)``. ``train(cfg, output_dir=...)`` trains the
    teacher when none is found (:func:`bridging.runs.experiment.train`)."""
    from bridging.recipes import load_recipe
    from bridging.runs.config import hydra_sweep_dir

    opts = student.teacher_opts
    path = opts.get("ckpt_path")
    if path in (None, "", "null") and cfg is None:
        path = student.teacher_info.get("ckpt_path")  # a loaded student: its recorded teacher
    if path not in (None, "", "null"):
        return load_recipe(path, expect=TEACHER_KINDS), Path(path), {"trained_in": None}
    if cfg is None:
        raise ValueError(
            "the student has no teacher: set recipe.teacher.ckpt_path, or train it with "
            "bridging-train (which trains one first)"
        )
    sweep = hydra_sweep_dir()
    key = teacher_config_hash(teacher_run_config(cfg, opts, "<teacher>"))
    if opts.get("dir"):
        run_dir = Path(opts["dir"])
    elif sweep is not None:
        run_dir = sweep / f"teacher_{key}"
    else:
        run_dir = Path(output_dir) / "teacher"
    tcfg = teacher_run_config(cfg, opts, run_dir)
    with file_lock(run_dir.parent / f".{run_dir.name}.lock"):
        ckpt = completed_run(run_dir)
        trained = ckpt is None
        if trained:
            if train is None:
                raise ValueError(
                    f"no finished teacher run in {run_dir} and no train function to train one"
                )
            log.info("training the teacher (%s) in %s", "+".join(tcfg.modalities), run_dir)
            with preserved_rng():
                train(tcfg, output_dir=run_dir)
            ckpt = completed_run(run_dir)
            if ckpt is None:
                raise RuntimeError(f"the teacher run in {run_dir} left no best checkpoint")
        else:
            log.info("using the teacher already trained in %s", run_dir)
    origin = {"trained_in": str(run_dir), "trained_by_this_run": trained, "config_hash": key}
    return load_recipe(ckpt, expect=TEACHER_KINDS), ckpt, origin


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


def attach_teacher(
    student, cfg: DictConfig | None = None, datamodule=None, output_dir=None, train=None
):
    """Give ``student`` its teacher (unless it has one; ``train``: see
    :func:`provide_teacher`), make ``datamodule`` carry the teacher's modalities, check their
    feature sizes and fill the teacher cache for the training split. Returns the student."""
    if student.teacher is None:
        teacher, path, origin = provide_teacher(student, cfg, output_dir, train)
        student.set_teacher(teacher, path)
        student.teacher_origin = origin
    if datamodule is None:
        return student
    teacher = student.teacher
    ensure_modalities(datamodule, teacher.modalities)
    sizes = datamodule.facts.feature_sizes
    want = teacher.facts.feature_sizes
    bad = {
        m: (want.get(m), sizes.get(m)) for m in teacher.modalities if want.get(m) != sizes.get(m)
    }
    if bad:
        raise DataError(
            f"teacher {student.teacher_info.get('ckpt_path')}: feature sizes (teacher, data) "
            f"differ: {bad}"
        )
    from bridging.data.normalize import Normalization

    theirs = Normalization.from_dict(teacher.facts.normalization, "teacher")
    ours = datamodule.normalization
    if not theirs.same_as(ours, teacher.modalities):
        what = (
            f"data.normalize={theirs.mode} (prior {theirs.prior:g})"
            if (theirs.mode, theirs.prior) != (ours.mode, ours.prior)
            else "the same mode with training statistics fitted on other data"
        )
        raise DataError(
            f"teacher {student.teacher_info.get('ckpt_path')}: facts.normalization: the "
            f"teacher was trained with {what}, this student's data has "
            f"data.normalize={ours.mode} (prior {ours.prior:g}): a teacher reads the features "
            "as it was trained; train the student with the teacher's normalisation"
        )
    check_teacher_split(student, teacher, datamodule)
    if student.cache_on and student.teacher_info["batch_independent"]:
        student.fill_cache(datamodule.split("train"))
    return student


def check_teacher_split(student, teacher, datamodule) -> None:
    """Refuse a teacher that was trained or selected on dialogues of this student's test
    split (e.g. a loso fold-1 teacher for a fold-2 student: it has seen session 2): its
    outputs would carry the test labels into the student. One line naming the teacher, the
    option and an example dialogue."""
    from bridging.runs.identity import _model_split, seen_dialogues

    seen, how = seen_dialogues(teacher, datamodule)
    if how == "unknown" or "test" not in datamodule.splits:
        return
    for split in ("train", "dev"):
        both = [i for i in datamodule.split("test").ids if i in seen[split]]
        if both:
            raise DataError(
                f"teacher {student.teacher_info.get('ckpt_path')}: recipe.teacher.ckpt_path: "
                f"this student's test split holds {len(both)} dialogues in the teacher's "
                f"{split} split (e.g. {both[0]}): the teacher was trained on "
                f"{_model_split(teacher)}; give a teacher trained on this run's split "
                "(the same data.protocol and data.fold)"
            )


__all__ = [
    "check_teacher_split",
    "teacher_run_config",
    "teacher_config_hash",
    "file_lock",
    "preserved_rng",
    "completed_run",
    "provide_teacher",
    "ensure_modalities",
    "attach_teacher",
]
