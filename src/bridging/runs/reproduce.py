"""The paper's whole comparison in one command (``make reproduce`` / ``bridging-reproduce``).

Protocol (``--protocol``): by default leave-one-session-out on IEMOCAP data (every fold,
seed 0: five replicates whose test sessions cover every actor; docs/protocols.md), the
paper's split (sessions 1-4 train, 5 test; seeds 0, 1, 2) with ``--protocol paper`` and on
MELD. For each fold and seed, at the paper's 55 epochs: the a+v teacher; the audio-only
baseline; the a+v teacher evaluated speech-only (video zeroed); the distilled speech-only
student (from that seed's teacher); the masked model; the masked model without the GNN; the
authors' plain audio-dropout model. Once: the reference rows (per-utterance logistic
regression on a and on a+v; on synthetic data the annotation ceiling). Then
``bridging-report`` over all of them: the table, the claims with their confidence intervals,
and the figures (``<out>/report.md``, ``<out>/plots/``). Run dirs under paper:
``<out>/<job>/seed<s>``.

``--protocol loso`` (leave one IEMOCAP session out, docs/protocols.md): all of it for every
fold (``--folds``, default 1..5; ``data.protocol=loso data.fold=k``: test session k, dev the
next session) and seed, in ``<out>/<job>/fold<k>/seed<s>``; each student distils from the
teacher of its own fold and seed, the speech-only evaluation is of that teacher, the
reference rows are fitted once per fold. The report then adds the per-fold table and
figure, and pairs the claims by (fold, seed) with a hierarchical bootstrap. MELD has no
sessions: loso is refused for a MELD file.

W&B: with ``logger=wandb`` (or ``logger=many``) among the extra overrides, every run of the
comparison (the speech-only evaluations and reference rows too) is one W&B run in one group,
``reproduce-<timestamp>`` (unless ``logger.wandb.group`` is given), of job type its
experiment, named ``<experiment>/fold<k>/seed<s>`` (``<experiment>/seed<s>`` under paper),
with the final test metrics in its summary.

One comparison per folder: the command holds a lock on ``--out`` (``.bridging.lock``) and a
second one into it is refused at once. Into a finished or partial ``--out`` (the same command
again, e.g. after Ctrl-C) it resumes: a finished run (its metrics.json) whose config is the
plan's is kept and not run again; an unfinished one, or one whose teacher runs again, runs
again from the start; a finished run of another config is refused, naming it and the first
setting that differs. The options, the overrides (they must compose, their values pass the
checks of a run) and the data are checked before any work or folder.

Scheduling: ``--jobs`` worker processes with ``--threads`` torch threads each; their product
must not exceed the machine's cores (two 2-thread jobs on 2 cores run several times slower
than one). A student waits for its teacher; the longest jobs start first. Before starting,
the FLOPs of one training epoch of each recipe are counted (torch's FlopCounterMode over a
real epoch) and the machine's matmul rate measured: their quotient, summed over the jobs and
divided by the workers, is the run's FLOP limit, printed with the estimate. One line per
finished job, with the time so far and an estimate of what is left.
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path

#: the trained recipes of each seed (their roles in the comparison: the experiment names of
#: the runs, which the report's claims pair)
RECIPES = ("teacher", "audio_only", "student_kd", "masked", "masked_nognn", "audio_dropout")


@dataclass(frozen=True)
class Profile:
    """What the comparison runs on one corpus: the experiment preset of each role, the data
    config of a real file, the default label set, the modalities of the reference rows."""

    name: str
    presets: dict
    data: str
    label_set: str
    logreg: tuple


PROFILES = {
    "iemocap": Profile(
        "iemocap", {r: r for r in RECIPES}, "iemocap", "iemocap_4", (("a",), ("a", "v"))
    ),
    "meld": Profile(
        "meld",
        {r: f"meld_{r}" for r in RECIPES},
        "meld",
        "meld_7",
        (("a",), ("a", "t")),
    ),
}


def profile_for(data_path=None) -> Profile:
    """The MELD profile for a MELD-layout file (detected from its content), else IEMOCAP's."""
    if data_path is None:
        return PROFILES["iemocap"]
    from bridging.data.formats.sources import detect_format

    return PROFILES["meld" if detect_format(data_path) == "meld" else "iemocap"]


#: --quick: a small corpus (unless --data gives one) and a small model that train in seconds;
#: the figures are a smoke test
QUICK_DATA = [
    "data=tiny",
    "data.synthetic.n_dialogues=100",
    "data.synthetic.n_test_dialogues=20",
    "data.synthetic.min_len=6",
    "data.synthetic.max_len=40",
    "data.synthetic.mean_len=20",
    "+data.synthetic.feature_sizes={a:32,t:64,v:32}",
]
QUICK_MODEL = [
    "data.batch_size=8",
    "trainer.accelerator=cpu",
    "model.seqcontext_nlayer=1",
    "model.gnn_nheads=2",
    "optim.lr=3e-3",
]
QUICK_OVERRIDES = QUICK_DATA + QUICK_MODEL
QUICK_EPOCHS, QUICK_SEEDS, EPOCHS = 12, (0, 1), 55


def _compose(overrides: list[str]):
    from bridging.runs.config import compose

    return compose("train", overrides)


def _quiet(threads: int) -> None:
    import logging
    import warnings

    import pytorch_lightning  # noqa: F401  (sets its loggers to INFO on import: import first)
    import torch

    torch.set_num_threads(threads)
    for name in ("pytorch_lightning", "lightning_fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")


def run_job(overrides: list[str], out_dir: str, threads: int) -> dict:
    """One training run in this (worker) process; returns its headline figures."""
    _quiet(threads)
    from bridging.runs.experiment import train
    from bridging.runs.tracking import finish_wandb

    cfg = _compose([f"paths.output_dir={out_dir}", *overrides])
    t0 = time.perf_counter()
    try:
        metrics = train(cfg, output_dir=out_dir)
    finally:  # a worker exits without atexit hooks: its W&B run must be closed here
        finish_wandb()
    return {"out": out_dir, "wf1": metrics["test"]["wf1"], "s": time.perf_counter() - t0}


def _track(wandb: dict | None, metrics: dict | None, out_dir: str) -> None:
    """A job that trains no network (evaluation, reference row) as a W&B run of its own."""
    if wandb and metrics is not None:
        from bridging.runs.tracking import summary_run

        summary_run(metrics, out_dir, **wandb)


def eval_speech_only(
    teacher_dir: str, out_dir: str, seed: int, threads: int, wandb: dict | None = None
) -> dict:
    """The av teacher evaluated speech-only (video zeroed), written as a run of its own."""
    _quiet(threads)
    from bridging.data.predictions import PREDICTIONS_FILE
    from bridging.runs.evaluate import evaluate
    from bridging.runs.outputs import run_metrics, write_run

    teacher = json.loads((Path(teacher_dir) / "metrics.json").read_text())
    ckpt = Path(teacher_dir) / teacher["best_checkpoint"]
    pred_path = Path(out_dir) / PREDICTIONS_FILE
    test = evaluate(ckpt, split="test", modalities=["a"], predictions_path=pred_path)
    dev = evaluate(ckpt, split="dev", modalities=["a"])
    metrics = run_metrics(
        experiment="av_eval_speech_only",
        recipe=teacher["recipe"],
        modalities=teacher["modalities"],
        eval_modalities=["a"],
        label_set=teacher["label_set"],
        label_names=teacher["label_names"],
        seed=seed,
        test=test["test"],
        dev=dev["dev"],
        data=test["data"],
        best_epoch=teacher["best_epoch"],
        best_checkpoint=str(ckpt),
        config_hash=teacher["config_hash"],
        hparams=teacher.get("hparams", {}),
        note=f"the {'+'.join(teacher['modalities'])} teacher's best checkpoint (selected on "
        f"{'+'.join(teacher['modalities'])} dev), all but audio zeroed",
    )
    write_run(
        out_dir, metrics, title=f"{'+'.join(teacher['modalities'])} teacher, speech-only test"
    )
    _track(wandb, metrics, out_dir)
    return {"out": out_dir, "wf1": metrics["test"]["wf1"], "s": 0.0}


def logreg_job(
    overrides: list[str],
    modalities: list[str],
    out_dir: str,
    seed: int,
    threads: int,
    wandb: dict | None = None,
):
    """A reference row: the per-utterance logistic regression (bridging.runs.baselines)."""
    _quiet(threads)
    from bridging.runs.baselines import run_logreg

    metrics = run_logreg(_compose(overrides), modalities, out_dir, seed)
    _track(wandb, metrics, out_dir)
    return {"out": out_dir, "wf1": metrics["test"]["wf1"], "s": 0.0}


def ceiling_job(overrides: list[str], out_dir: str, threads: int, wandb: dict | None = None):
    """A reference row on synthetic data: the latent emotion against the stored labels."""
    _quiet(threads)
    from bridging.runs.baselines import write_ceiling_run

    metrics = write_ceiling_run(_compose(overrides), out_dir)
    _track(wandb, metrics, out_dir)
    return {"out": out_dir, "wf1": None if metrics is None else metrics["test"]["wf1"], "s": 0.0}


@dataclass
class Job:
    """One unit of the comparison: a training run, an evaluation or a reference row."""

    name: str  # also its run dir under the comparison's root, and its W&B run name
    kind: str  # train | eval | logreg | ceiling
    overrides: list[str] = field(default_factory=list)
    after: str | None = None
    seed: int | None = None
    recipe: str | None = None  # the experiment whose epoch FLOPs this job costs
    modalities: list[str] | None = None
    seconds: float = 0.0  # FLOP-limit estimate
    fold: int | None = None  # the leave-one-session-out fold (None: the paper protocol)

    @property
    def experiment(self) -> str:
        """The experiment the job's run dir holds (its W&B job type)."""
        return self.name.split("/")[0]


PROTOCOLS = ("paper", "loso")
#: --protocol loso's default folds: every IEMOCAP session once
FOLDS = (1, 2, 3, 4, 5)
#: the default seeds of each protocol (quick or not): under loso one seed per fold, five
#: replicates (fold x seed) in about the time of the paper protocol's three seeds plus a
#: third (BENCHMARKS.md, "The default main job")
DEFAULT_SEEDS = {"paper": (0, 1, 2), "loso": (0,)}
QUICK_DEFAULT_SEEDS = {"paper": QUICK_SEEDS, "loso": (0,)}


def default_protocol(profile: Profile) -> str:
    """``--protocol auto``: leave one session out on IEMOCAP data (the synthetic default
    included), the paper's split on MELD, which has no sessions."""
    return "paper" if profile.name == "meld" else "loso"


def fold_overrides(fold: int | None) -> list[str]:
    """The data overrides of a leave-one-session-out fold ([] for the paper protocol)."""
    return [] if fold is None else ["data.protocol=loso", f"data.fold={fold}"]


def _plan_one(seeds, common, references, profile, fold) -> list[Job]:
    """The jobs of one data split: the paper's (``fold`` None, dirs ``<job>/seed<s>``) or a
    leave-one-session-out fold's (dirs ``<job>/fold<k>/seed<s>``)."""
    where = "" if fold is None else f"fold{fold}/"
    data = [*common, *fold_overrides(fold)]
    jobs = []
    for s in seeds:
        teacher = f"teacher/{where}seed{s}"
        for name in RECIPES:
            preset = profile.presets[name]
            ov = [f"experiment={preset}", f"experiment_name={name}", f"seed={s}", *data]
            after = teacher if name == "student_kd" else None
            jobs.append(Job(f"{name}/{where}seed{s}", "train", ov, after, s, name, fold=fold))
        jobs.append(Job(f"av_eval_speech_only/{where}seed{s}", "eval", [], teacher, s, fold=fold))
    if references:
        s = seeds[0]
        for mods in profile.logreg:  # deterministic fits: once, not per seed
            mods = list(mods)
            name = f"logreg_{''.join(mods)}/{where}seed{s}"
            ov = [f"seed={s}", *data]
            jobs.append(Job(name, "logreg", ov, None, s, modalities=mods, fold=fold))
        ceiling = "annotation_ceiling" + ("" if fold is None else f"/fold{fold}")
        jobs.append(Job(ceiling, "ceiling", [f"seed={s}", *data], fold=fold))
    return jobs


def plan(
    seeds,
    common: list[str],
    references: bool = True,
    profile: Profile = PROFILES["iemocap"],
    folds=None,
) -> list[Job]:
    """Every job of the comparison, in dependency order. Each training run is its role's
    preset of ``profile`` under the role's name (``experiment_name``), so the report pairs
    the same claims on every corpus. ``folds``: None for the paper protocol, else the
    leave-one-session-out folds: every job per fold (a student after the teacher of its own
    fold and seed; the reference rows once per fold)."""
    if folds is None:
        return _plan_one(seeds, common, references, profile, None)
    return [j for k in folds for j in _plan_one(seeds, common, references, profile, k)]


def wandb_settings(common: list[str], profile: Profile = PROFILES["iemocap"]) -> dict | None:
    """The W&B settings of the comparison's runs (project, entity, mode, tags, and the
    group: ``logger.wandb.group`` when given, else ``reproduce-<timestamp>``); None unless
    the runs log to W&B (``logger=wandb`` or ``logger=many`` among the overrides)."""
    cfg = _compose([f"experiment={profile.presets['teacher']}", *common])
    for node in (cfg.get("logger") or {}).values():
        if node and str(node.get("_target_", "")).endswith("wandb_logger"):
            stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
            return {  # only these keys: save_dir is the run's own
                "project": node.get("project") or "bridging",
                "entity": node.get("entity"),
                "mode": node.get("mode") or "auto",
                "tags": [str(t) for t in node.get("tags") or []],
                "group": node.get("group") or f"reproduce-{stamp}",
            }
    return None


def track(jobs: list[Job], wandb: dict | None) -> list[Job]:
    """Give every training job the W&B group, its name (the job's name:
    ``<experiment>/fold<k>/seed<s>``, or ``<experiment>/seed<s>``) and job type (its
    experiment); the other jobs log their own summary run (:func:`_track`)."""
    if wandb:
        for j in jobs:
            if j.kind == "train":
                j.overrides += [
                    f"logger.wandb.group={wandb['group']}",
                    f"logger.wandb.name={j.name}",
                    f"logger.wandb.job_type={j.experiment}",
                ]
    return jobs


def check_folds(common: list[str], folds, profile: Profile = PROFILES["iemocap"]) -> None:
    """Before any job: the data loads, and has the sessions every fold needs (a DataError
    naming the file otherwise, e.g. data without IEMOCAP session ids); ``folds`` ``[None]``:
    the paper protocol's split. Loads the data once."""
    from bridging.data.protocols import Protocol
    from bridging.runs.train import build_datamodule

    cfg = _compose([f"experiment={profile.presets['teacher']}", *common, *fold_overrides(folds[0])])
    dm = build_datamodule(cfg)
    dm.setup()
    dev = str(cfg.data.get("dev") or "auto")
    for k in folds[1:] if folds[0] is not None else ():
        Protocol.from_config("loso", k, dev, dm.corpus.where()).apply(dm.corpus)


def estimate(
    jobs: list[Job],
    common: list[str],
    epochs: int,
    threads: int,
    log,
    profile: Profile = PROFILES["iemocap"],
    precision: str = "32-true",
) -> float:
    """Fill each job's FLOP-limit seconds; return the machine's matmul rate (GFLOP/s) in
    the dtype of the products of the runs' ``precision`` (bfloat16 under bf16-mixed)."""
    from omegaconf import OmegaConf

    from bridging.runs.flops import matmul_gflops, recipe_epoch_flops
    from bridging.runs.precision import compute_dtype

    rate, _ = matmul_gflops(threads, dtype=compute_dtype(precision))

    per_epoch, by_architecture = {}, {}
    for name in sorted({j.recipe for j in jobs if j.recipe}):
        # a student's teacher outputs are cached: its epoch costs its audio-only architecture's
        counted = profile.presets["audio_only" if name == "student_kd" else name]
        cfg = _compose([f"experiment={counted}", *common])
        # masking changes no FLOP: recipes of one architecture on one data are counted once
        key = json.dumps(
            [list(cfg.modalities), OmegaConf.to_container(cfg.model), str(cfg.data)],
            sort_keys=True,
        )
        if key not in by_architecture:
            by_architecture[key] = recipe_epoch_flops(cfg)
        per_epoch[name] = by_architecture[key]
        log(
            f"  {name:<14} {per_epoch[name]['train'] / 1e9:8.1f} GFLOP per training epoch "
            f"+ {per_epoch[name]['eval'] / 1e9:6.1f} validation"
        )
    for j in jobs:
        if j.recipe:
            f = per_epoch[j.recipe]
            j.seconds = epochs * (f["train"] + f["eval"]) / (rate * 1e9)
    return rate


def runs_precision(common: list[str], profile: Profile = PROFILES["iemocap"]) -> str:
    """The precision the comparison's runs train in (``trainer.precision`` resolved on this
    machine; every run shares the trainer settings of ``common``)."""
    from bridging.runs.train import trainer_precision

    return trainer_precision(_compose([f"experiment={profile.presets['teacher']}", *common]))


def _fmt_s(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def common_overrides(
    epochs: int,
    label_set: str | None = None,
    quick: bool = False,
    data: str | None = None,
    patience: int | None = None,
    extra=(),
    profile: Profile | None = None,
) -> list[str]:
    """The Hydra overrides every run of the comparison gets (``profile``: from ``data``)."""
    profile = profile or profile_for(data)
    common = [
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
    ]
    if quick:
        common += QUICK_MODEL if data else QUICK_OVERRIDES
    if data:
        common += [f"data={profile.data}", f"data.path={Path(data).resolve()}"]
    common.append(f"data.label_set={label_set or profile.label_set}")
    if patience is not None:
        common += [
            "+callbacks.early_stopping._target_=pytorch_lightning.callbacks.EarlyStopping",
            "+callbacks.early_stopping.monitor=val/wf1",
            "+callbacks.early_stopping.mode=max",
            f"+callbacks.early_stopping.patience={patience}",
        ]
    return common + list(extra)


#: the record of the planned config of a job that writes no config.yaml (an evaluation, a
#: reference row), written next to its metrics.json when it finishes
JOB_RECORD = ".reproduce_job.json"
#: settings a finished run may differ in and still be this comparison's: where it lives,
#: how it was started and logged (a resumed comparison is a new W&B group), the path of
#: its teacher (a student is kept only with its teacher)
IGNORED_SETTINGS = ("paths", "ckpt_path", "overwrite", "logger", "recipe.teacher.ckpt_path")


def planned_config(job: Job, root: Path) -> dict:
    """The resolved config of ``job`` in ``root`` (an evaluation: the run it evaluates)."""
    if job.kind == "eval":
        return {"evaluates": str(root / job.after), "modalities": ["a"]}
    from bridging.runs.train import to_container

    return to_container(_compose([f"paths.output_dir={root / job.name}", *job.overrides]))


def _flat(node, prefix: str = "") -> dict:
    if not isinstance(node, dict):
        return {prefix: node}
    out = {}
    for k, v in node.items():
        out.update(_flat(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def config_difference(stored: dict, planned: dict) -> str | None:
    """The first setting (dotted key) in which ``stored`` differs from ``planned``, with both
    values; None when they agree (:data:`IGNORED_SETTINGS` aside)."""

    def settings(cfg):
        return {
            k: v
            for k, v in _flat(cfg).items()
            if not any(k == i or k.startswith(i + ".") for i in IGNORED_SETTINGS)
        }

    a, b = settings(stored), settings(planned)
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            return (
                f"{key} is {a.get(key, '<absent>')!r} there, {b.get(key, '<absent>')!r} in "
                "this comparison"
            )
    return None


def record_job(job: Job, root: Path) -> None:
    """After ``job`` finished: its planned config next to its metrics.json (a training run
    has its own config.yaml)."""
    from bridging.utils.files import atomic_write_json

    if job.kind != "train":
        atomic_write_json(root / job.name / JOB_RECORD, planned_config(job, root))


def _stored_config(job: Job, run: Path) -> dict | None:
    import yaml

    path = run / ("config.yaml" if job.kind == "train" else JOB_RECORD)
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        return yaml.safe_load(text) if job.kind == "train" else json.loads(text)
    except (OSError, ValueError, yaml.YAMLError):
        return None


def finished_runs(jobs: list[Job], root: Path) -> dict:
    """The jobs of an earlier start into ``root`` that finished (their metrics.json) with
    this comparison's config: name -> headline; they are kept and not run again. A job
    whose dependency reruns reruns too; an unfinished one reruns (from scratch). A finished
    run of another config is a DataError naming it and the first differing setting."""
    from bridging.data.records import DataError
    from bridging.utils.files import check_input_file

    kept: dict[str, dict] = {}
    for job in jobs:  # dependency order
        run = root / job.name
        metrics = run / "metrics.json"
        if not os.path.lexists(metrics):
            continue
        check_input_file(metrics, "metrics.json")
        stored = _stored_config(job, run)
        if stored is None:
            continue  # no record of what it ran: run it again
        diff = config_difference(stored, planned_config(job, root))
        if diff:
            raise DataError(
                f"{run}: a finished run of another configuration ({diff}); refusing to mix it "
                "into this comparison: give the settings it was made with, or another --out"
            )
        if job.after and job.after not in kept:
            continue  # its teacher reruns: so does it
        try:
            m = json.loads(metrics.read_text(encoding="utf-8"))
            wf1 = m["test"]["wf1"] if job.kind != "ceiling" else m.get("test", {}).get("wf1")
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable: run it again
        kept[job.name] = {"out": str(run), "wf1": wf1, "s": 0.0}
    return kept


def preflight(jobs: list[Job], common: list[str], profile: Profile, folds=None) -> None:
    """Before any work or folder: every job's config composes (an unknown override key),
    its values pass the checks a run makes before it starts (``check_run_config``), and the
    data loads and splits as every fold needs (:func:`check_folds`). The first problem is
    raised as it is (the command prints it as one line)."""
    from bridging.runs.train import check_run_config

    seen = set()
    for job in jobs:
        if job.kind == "eval" or (job.recipe, job.kind) in seen:
            continue  # the seed and fold are checked by the command
        seen.add((job.recipe, job.kind))
        cfg = _compose([f"paths.output_dir={job.name}", *job.overrides])
        if job.kind == "train":
            check_run_config(cfg)
    check_folds(common, folds or [None], profile)


def _submit(pool, job: Job, root: Path, threads: int, wandb: dict | None = None):
    out = str(root / job.name)
    run = None if not wandb else {**wandb, "name": job.name, "job_type": job.experiment}
    if job.kind == "eval":
        return pool.submit(eval_speech_only, str(root / job.after), out, job.seed, threads, run)
    if job.kind == "logreg":
        mods = job.modalities
        return pool.submit(logreg_job, job.overrides, mods, out, job.seed, threads, run)
    if job.kind == "ceiling":
        return pool.submit(ceiling_job, job.overrides, out, threads, run)
    ov = list(job.overrides)
    if (root / job.name).exists():  # a run an earlier start left unfinished: again
        ov.append("overwrite=true")
    if job.after:  # the student: the teacher of its own fold and seed
        t = json.loads((root / job.after / "metrics.json").read_text())
        ov.append(f"recipe.teacher.ckpt_path={root / job.after / t['best_checkpoint']}")
    return pool.submit(run_job, ov, out, threads)


class Refused(Exception):
    """The comparison was refused before any work (:func:`preflight`): ``error`` says why
    (a Hydra composition error, a bad config value, data that do not load)."""

    def __init__(self, error: Exception):
        super().__init__(str(error))
        self.error = error


class Terminated(Exception):
    """The comparison was stopped by a signal (SIGTERM, SIGINT); its workers are ended."""

    def __init__(self, message: str, signum: int = 15):
        super().__init__(message)
        self.signum = signum


def _die_with_parent() -> None:
    """Worker initialiser: the kernel kills the worker when the comparison's process ends,
    however it ends (``kill -9`` included; Linux ``PR_SET_PDEATHSIG``), so no worker goes on
    training and writing alone."""
    import ctypes
    import signal
    import sys

    if not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
    if os.getppid() == 1:  # the parent died before the setting took effect
        os._exit(1)


@contextmanager
def _terminated_on_signals():
    """SIGTERM and SIGINT raise :class:`Terminated` in the main thread for the duration."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signal.Signals(signum).name, signum)

    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, h in old.items():
            signal.signal(sig, h)


def _end_workers(pool, running: dict, exc: Terminated) -> Terminated:
    """Kill every worker of ``pool`` (SIGKILL: Lightning would take SIGTERM as a request to
    stop after its step), drop the queued jobs, and say which jobs were stopped."""
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    names = sorted(j.name for j in running.values())
    msg = (
        f"terminated by {exc}: stopped {len(names)} running job(s)"
        + (f" ({', '.join(names)})" if names else "")
        + "; finished runs are kept: the same command again resumes the comparison "
        "(finished runs skipped, stopped ones rerun)"
    )
    return Terminated(msg, exc.signum)


def run_all(
    jobs: list[Job],
    root: Path,
    n_workers: int,
    threads: int,
    log,
    wandb: dict | None = None,
    kept: dict | None = None,
) -> dict:
    """Run the jobs (dependencies respected, longest first); one progress line each.
    ``wandb``: the settings of :func:`wandb_settings` (the non-training jobs' summary runs).
    ``kept``: the finished runs of an earlier start that are not run again (name -> their
    headline), which the jobs may depend on. A SIGTERM or SIGINT ends every worker and
    raises :class:`Terminated`; the workers also die with this process if it is killed
    outright."""
    kept = dict(kept or {})
    jobs = [j for j in jobs if j.name not in kept]
    total = len(jobs)
    width = max([28, *(len(j.name) for j in jobs)])
    limit_left = sum(j.seconds for j in jobs)
    done: dict[str, dict] = dict(kept)
    ran = 0
    pending = sorted(jobs, key=lambda j: -j.seconds)
    running = {}
    t0 = time.perf_counter()
    spent_limit = 0.0
    ctx = get_context("spawn")
    with (
        _terminated_on_signals(),
        ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_die_with_parent) as pool,
    ):
        try:
            while pending or running:
                for job in list(pending):
                    if len(running) >= n_workers:
                        break
                    if job.after and job.after not in done:
                        continue
                    pending.remove(job)
                    running[_submit(pool, job, root, threads, wandb)] = job
                finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for fut in finished:
                    job = running.pop(fut)
                    res = fut.result()  # a failed job stops the whole comparison, loudly
                    record_job(job, root)
                    done[job.name] = res
                    ran += 1
                    elapsed = time.perf_counter() - t0
                    spent_limit += job.seconds
                    limit_left -= job.seconds
                    eta = ""
                    if spent_limit > 0 and limit_left > 0:
                        eta = f", about {_fmt_s(elapsed * limit_left / spent_limit)} left"
                    wf1 = "" if res["wf1"] is None else f"test wF1 {100 * res['wf1']:.2f}"
                    name = job.name.ljust(width)
                    log(f"  [{ran:2d}/{total}] {name} {wf1:<15} ({_fmt_s(elapsed)}{eta})")
        except Terminated as exc:
            raise _end_workers(pool, running, exc) from None
    return done


def default_out_dir() -> Path:
    """``$BRIDGING_OUTPUT/reproduce/<timestamp>`` (``outputs/`` unless set)."""
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    return Path(os.environ.get("BRIDGING_OUTPUT", "outputs")) / "reproduce" / stamp


def write_report(root: Path, note: str | None = None) -> str:
    """The report over the comparison's run dirs: ``<root>/report.md`` and ``<root>/plots/``
    (what ``bridging-report`` writes). Returns the Markdown text."""
    from bridging.report import build_report, write_plots
    from bridging.utils.files import atomic_write_text

    report = build_report([str(root)])
    report.claims()
    report.actors()
    plots = write_plots(report, root / "plots")
    out = root / "report.md"
    atomic_write_text(out, report.markdown(plots=plots, relative_to=out.parent, note=note))
    return report.markdown(plots=plots, note=note)


def reproduce(
    root: Path,
    seeds,
    epochs: int,
    common: list[str],
    n_workers: int,
    threads: int,
    estimate_first: bool = True,
    quick: bool = False,
    log=print,
    profile: Profile = PROFILES["iemocap"],
    folds=None,
) -> dict:
    """Run the whole comparison into ``root`` (see the module doc): the FLOP-limit estimate,
    every job, ``reproduce.json`` (wall time, limit, settings), the report. ``folds``: None
    for the paper protocol, else the leave-one-session-out folds to run. Returns the
    summary, with the report's Markdown under ``report``."""
    folds = None if folds is None else list(folds)
    jobs = plan(seeds, common, profile=profile, folds=folds)
    try:
        preflight(jobs, common, profile, folds)  # before any folder is made
    except Exception as exc:  # noqa: BLE001 - the command prints it as one line
        raise Refused(exc) from exc
    with comparison_lock(root):
        return _reproduce(
            root, jobs, seeds, epochs, common, n_workers, threads, estimate_first, quick, log,
            profile, folds,
        )  # fmt: skip


@contextmanager
def comparison_lock(root: Path):
    """The exclusive lock of the comparison's folder for the life of the block: a second
    bridging-reproduce into the same --out is refused at once (a RunDirError). A folder
    this call created is removed when the block fails before any job left a run in it."""
    import shutil

    from bridging.runs.rundir import LOCK_FILE, take_lock

    fresh = not root.exists()
    fd = take_lock(
        root,
        "the --out folder is not writable ({why}); give a writable --out",
        f"another bridging-reproduce is running into this --out (it holds {LOCK_FILE}); "
        "refusing to start a second one: wait for it to end, or give another --out",
    )
    ok = False
    try:
        yield
        ok = True
    finally:
        if not ok and fresh and not any(p.name != LOCK_FILE for p in root.iterdir()):
            shutil.rmtree(root, ignore_errors=True)
        os.close(fd)


def _reproduce(
    root, jobs, seeds, epochs, common, n_workers, threads, estimate_first, quick, log, profile,
    folds,
) -> dict:  # fmt: skip
    from bridging.utils.files import atomic_write_json

    kept = finished_runs(jobs, root)  # before any work: a run of another config is refused
    wandb = wandb_settings(common, profile)
    jobs = track(jobs, wandb)
    what = f"{len(seeds)} seeds"
    if folds is not None:
        what = f"loso folds {','.join(map(str, folds))} x {what}"
    log(
        f"bridging-reproduce: {len(jobs)} jobs ({profile.name}, {what}, {epochs} "
        f"epochs per run), {n_workers} workers x {threads} threads -> {root}"
    )
    if kept:
        log(
            f"  resuming: {len(kept)} finished runs of an earlier start kept (same "
            f"settings), {len(jobs) - len(kept)} to run"
        )
    if wandb:
        log(f"  W&B: group {wandb['group']} (project {wandb['project']})")
    limit = None
    precision = runs_precision(common, profile)
    if estimate_first:
        log("counting the FLOPs of one epoch of each recipe (FlopCounterMode):")
        counted = common + fold_overrides(folds[0] if folds else None)  # folds: about alike
        rate = estimate(jobs, counted, epochs, threads, log, profile, precision)
        limit = sum(j.seconds for j in jobs if j.name not in kept) / n_workers
        log(
            f"  matmul rate ({precision}) {rate:.1f} GFLOP/s per {threads}-thread worker; "
            "FLOP limit of "
            f"the runs {_fmt_s(limit)} on {n_workers} workers; expect about "
            f"{_fmt_s(1.3 * limit)} (reference rows and startup not counted)"
        )
    t0 = time.perf_counter()
    run_all(jobs, root, n_workers, threads, log, wandb, kept)
    wall = time.perf_counter() - t0
    ratio = f" ({wall / limit:.2f}x the FLOP limit)" if limit else ""
    log(f"\nall runs done in {_fmt_s(wall)}{ratio}; report:\n")
    summary = {
        "wall_s": wall,
        "flop_limit_s": limit,
        "epochs": epochs,
        "seeds": list(seeds),
        "jobs": n_workers,
        "threads": threads,
        "precision": precision,
        "quick": bool(quick),
        "protocol": "paper" if folds is None else "loso",
        "folds": folds,
        "kept_runs": sorted(kept),
    }
    if wandb:
        summary["wandb_group"] = wandb["group"]
    atomic_write_json(root / "reproduce.json", summary)
    note = None
    if quick:
        note = (
            "Smoke test (bridging-reproduce --quick): small data, small model, "
            f"{epochs} epochs; these figures are not the comparison."
        )
    return {**summary, "report": write_report(root, note)}
