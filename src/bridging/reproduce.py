"""The paper's whole comparison in one command (``make reproduce`` / ``bridging-reproduce``).

For each seed (default 0, 1, 2), at the paper's 55 epochs: the a+v teacher; the audio-only
baseline; the a+v teacher evaluated speech-only (video zeroed); the distilled speech-only
student (from that seed's teacher); the masked model; the masked model without the GNN; the
authors' plain audio-dropout model. Once: the reference rows (per-utterance logistic
regression on a and on a+v; on synthetic data the annotation ceiling). Then
``bridging-report`` over all of them: the table, the claims with their confidence intervals,
and the figures (``<out>/report.md``, ``<out>/plots/``).

Scheduling: ``--jobs`` worker processes with ``--threads`` torch threads each; their product
must not exceed the machine's cores (two 2-thread jobs on 2 cores run several times slower
than one). A student waits for its teacher; the longest jobs start first. Before starting,
the FLOPs of one training epoch of each recipe are counted (torch's FlopCounterMode over a
real epoch) and the machine's matmul rate measured: their quotient, summed over the jobs and
divided by the workers, is the run's FLOP limit, printed with the estimate. One line per
finished job, with the time so far and an estimate of what is left.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path

#: the trained recipes of each seed (experiment names)
RECIPES = ("teacher", "audio_only", "student_kd", "masked", "masked_nognn", "audio_dropout")
#: --quick: a small corpus and model that train in seconds; the figures are a smoke test
QUICK_OVERRIDES = [
    "data=tiny",
    "data.synthetic.n_dialogues=100",
    "data.synthetic.n_test_dialogues=20",
    "data.synthetic.min_len=6",
    "data.synthetic.max_len=40",
    "data.synthetic.mean_len=20",
    "+data.synthetic.feature_sizes={a:32,t:64,v:32}",
    "data.batch_size=8",
    "trainer.accelerator=cpu",
    "model.seqcontext_nlayer=1",
    "model.gnn_nheads=2",
    "optim.lr=3e-3",
]
QUICK_EPOCHS, QUICK_SEEDS, EPOCHS = 12, (0, 1), 55


def _compose(overrides: list[str]):
    from bridging.config import compose

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
    from bridging.training import train

    cfg = _compose([f"paths.output_dir={out_dir}", *overrides])
    t0 = time.perf_counter()
    metrics = train(cfg, output_dir=out_dir)
    return {"out": out_dir, "wf1": metrics["test"]["wf1"], "s": time.perf_counter() - t0}


def eval_speech_only(teacher_dir: str, out_dir: str, seed: int, threads: int) -> dict:
    """The av teacher evaluated speech-only (video zeroed), written as a run of its own."""
    _quiet(threads)
    from bridging.evaluation import evaluate
    from bridging.io import atomic_write_json, save_confusion_png
    from bridging.predictions import PREDICTIONS_FILE

    teacher = json.loads((Path(teacher_dir) / "metrics.json").read_text())
    ckpt = Path(teacher_dir) / teacher["best_checkpoint"]
    test = evaluate(  # with its per-utterance predictions, for the report's paired claims
        ckpt, split="test", modalities=["a"], predictions_path=Path(out_dir) / PREDICTIONS_FILE
    )
    dev = evaluate(ckpt, split="dev", modalities=["a"])
    metrics = {
        "experiment": "av_eval_speech_only",
        "recipe": "teacher",
        "modalities": teacher["modalities"],
        "eval_modalities": ["a"],
        "label_set": teacher["label_set"],
        "label_names": teacher["label_names"],
        "seed": seed,
        "test": test["test"],
        "dev": dev["dev"],
        "best_epoch": teacher["best_epoch"],
        "best_checkpoint": str(ckpt),
        "data": test["data"],
        "config_hash": teacher["config_hash"],
        "hparams": teacher.get("hparams", {}),
        "note": "the a+v teacher's best checkpoint (selected on a+v dev), video zeroed",
    }
    out = Path(out_dir)
    atomic_write_json(out / "metrics.json", metrics)
    save_confusion_png(
        test["test"]["confusion"],
        teacher["label_names"],
        out / "confusion_matrix.png",
        "a+v teacher, speech-only test",
    )
    return {"out": out_dir, "wf1": metrics["test"]["wf1"], "s": 0.0}


def logreg_job(overrides: list[str], modalities: list[str], out_dir: str, seed: int, threads: int):
    """A reference row: the per-utterance logistic regression (bridging.baselines)."""
    _quiet(threads)
    from bridging.baselines import run_logreg

    metrics = run_logreg(_compose(overrides), modalities, out_dir, seed)
    return {"out": out_dir, "wf1": metrics["test"]["wf1"], "s": 0.0}


def ceiling_job(overrides: list[str], out_dir: str, threads: int):
    """A reference row on synthetic data: the latent emotion against the stored labels."""
    _quiet(threads)
    from bridging.baselines import write_ceiling_run

    metrics = write_ceiling_run(_compose(overrides), out_dir)
    return {"out": out_dir, "wf1": None if metrics is None else metrics["test"]["wf1"], "s": 0.0}


@dataclass
class Job:
    """One unit of the comparison: a training run, an evaluation or a reference row."""

    name: str
    kind: str  # train | eval | logreg | ceiling
    overrides: list[str] = field(default_factory=list)
    after: str | None = None
    seed: int | None = None
    recipe: str | None = None  # the experiment whose epoch FLOPs this job costs
    modalities: list[str] | None = None
    seconds: float = 0.0  # FLOP-limit estimate


def plan(seeds, common: list[str], references: bool = True) -> list[Job]:
    """Every job of the comparison, in dependency order."""
    jobs = []
    for s in seeds:
        for name in RECIPES:
            ov = [f"experiment={name}", f"seed={s}", *common]
            after = f"teacher/seed{s}" if name == "student_kd" else None
            jobs.append(Job(f"{name}/seed{s}", "train", ov, after, s, name))
        jobs.append(Job(f"av_eval_speech_only/seed{s}", "eval", [], f"teacher/seed{s}", s))
    if references:
        s = seeds[0]
        for mods in (["a"], ["a", "v"]):  # deterministic fits: once, not per seed
            name = f"logreg_{''.join(mods)}/seed{s}"
            jobs.append(Job(name, "logreg", [f"seed={s}", *common], None, s, modalities=mods))
        jobs.append(Job("annotation_ceiling", "ceiling", [f"seed={s}", *common]))
    return jobs


def estimate(jobs: list[Job], common: list[str], epochs: int, threads: int, log) -> float:
    """Fill each job's FLOP-limit seconds; return the machine's matmul rate (GFLOP/s)."""
    from bridging.flops import matmul_gflops, recipe_epoch_flops

    rate, _ = matmul_gflops(threads)
    from omegaconf import OmegaConf

    per_epoch, by_architecture = {}, {}
    for name in sorted({j.recipe for j in jobs if j.recipe}):
        # a student's teacher outputs are cached: its epoch costs its audio-only architecture's
        counted = "audio_only" if name == "student_kd" else name
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


def _fmt_s(s: float) -> str:
    return f"{s / 60:.1f} min" if s >= 90 else f"{s:.0f} s"


def _parse(argv):
    p = argparse.ArgumentParser(
        prog="bridging-reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"small data and model, {QUICK_EPOCHS} epochs, seeds {QUICK_SEEDS}: a "
        "minutes-long smoke test (its figures are not the comparison)",
    )
    p.add_argument("--data", default=None, help="a real data file (default: the synthetic data)")
    p.add_argument("--label-set", default="iemocap_4")
    p.add_argument("--seeds", type=int, nargs="+", default=None, help="default 0 1 2")
    p.add_argument(
        "--epochs", type=int, default=None, help=f"epochs per run (default {EPOCHS}, the paper's)"
    )
    p.add_argument(
        "--patience",
        type=int,
        default=None,
        help="stop a run after N epochs without a better dev weighted F1 (early stopping; "
        "default: off, every run trains all its epochs as in the paper)",
    )
    cores = os.cpu_count() or 1
    p.add_argument("--jobs", type=int, default=cores, help=f"worker processes (default {cores})")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker (default 1)")
    p.add_argument("--no-estimate", action="store_true", help="skip the FLOP count at start")
    p.add_argument("--out", default=None, help="default: outputs/reproduce/<timestamp>")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = p.parse_args(argv)
    if args.jobs < 1 or args.threads < 1:
        p.error("--jobs and --threads must be at least 1")
    if args.jobs * args.threads > cores:
        p.error(
            f"--jobs {args.jobs} x --threads {args.threads} = {args.jobs * args.threads} "
            f"threads on {cores} cores: oversubscribed torch processes run several times "
            "slower; lower one of them"
        )
    return args


def _common(args, epochs: int) -> list[str]:
    common = [
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"data.label_set={args.label_set}",
    ]
    if args.quick:
        common += QUICK_OVERRIDES
    if args.data:
        common += ["data=iemocap", f"data.path={Path(args.data).resolve()}"]
    if args.patience is not None:
        common += [
            "+callbacks.early_stopping._target_=pytorch_lightning.callbacks.EarlyStopping",
            "+callbacks.early_stopping.monitor=val/wf1",
            "+callbacks.early_stopping.mode=max",
            f"+callbacks.early_stopping.patience={args.patience}",
        ]
    return common + list(args.overrides)


def _submit(pool, job: Job, root: Path, threads: int):
    out = str(root / job.name)
    if job.kind == "eval":
        return pool.submit(eval_speech_only, str(root / job.after), out, job.seed, threads)
    if job.kind == "logreg":
        return pool.submit(logreg_job, job.overrides, job.modalities, out, job.seed, threads)
    if job.kind == "ceiling":
        return pool.submit(ceiling_job, job.overrides, out, threads)
    ov = list(job.overrides)
    if job.after:  # the student: its own seed's teacher
        t = json.loads((root / job.after / "metrics.json").read_text())
        ov.append(f"recipe.teacher.ckpt_path={root / job.after / t['best_checkpoint']}")
    return pool.submit(run_job, ov, out, threads)


def run_all(jobs: list[Job], root: Path, n_workers: int, threads: int, log) -> dict:
    """Run the jobs (dependencies respected, longest first); one progress line each."""
    total = len(jobs)
    limit_left = sum(j.seconds for j in jobs)
    done: dict[str, dict] = {}
    pending = sorted(jobs, key=lambda j: -j.seconds)
    running = {}
    t0 = time.perf_counter()
    spent_limit = 0.0
    with ProcessPoolExecutor(max_workers=n_workers, mp_context=get_context("spawn")) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= n_workers:
                    break
                if job.after and job.after not in done:
                    continue
                pending.remove(job)
                running[_submit(pool, job, root, threads)] = job
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                job = running.pop(fut)
                res = fut.result()  # a failed job stops the whole comparison, loudly
                done[job.name] = res
                elapsed = time.perf_counter() - t0
                spent_limit += job.seconds
                limit_left -= job.seconds
                eta = ""
                if spent_limit > 0 and limit_left > 0:
                    eta = f", about {_fmt_s(elapsed * limit_left / spent_limit)} left"
                wf1 = "" if res["wf1"] is None else f"test wF1 {100 * res['wf1']:.2f}"
                log(f"  [{len(done):2d}/{total}] {job.name:<28} {wf1:<15} ({_fmt_s(elapsed)}{eta})")
    return done


def main(argv=None) -> int:
    args = _parse(argv)
    epochs = args.epochs or (QUICK_EPOCHS if args.quick else EPOCHS)
    seeds = args.seeds or list(QUICK_SEEDS if args.quick else (0, 1, 2))
    common = _common(args, epochs)
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    root = Path(
        args.out or Path(os.environ.get("BRIDGING_OUTPUT", "outputs")) / "reproduce" / stamp
    )
    root.mkdir(parents=True, exist_ok=True)

    def log(msg: str) -> None:
        print(msg, flush=True)

    jobs = plan(seeds, common)
    log(
        f"bridging-reproduce: {len(jobs)} jobs ({len(seeds)} seeds, {epochs} epochs per run), "
        f"{args.jobs} workers x {args.threads} threads -> {root}"
    )
    limit = None
    if not args.no_estimate:
        log("counting the FLOPs of one epoch of each recipe (FlopCounterMode):")
        rate = estimate(jobs, common, epochs, args.threads, log)
        limit = sum(j.seconds for j in jobs) / args.jobs
        log(
            f"  matmul rate {rate:.1f} GFLOP/s per {args.threads}-thread worker; FLOP limit of "
            f"the runs {_fmt_s(limit)} on {args.jobs} workers; expect about "
            f"{_fmt_s(1.3 * limit)} (reference rows and startup not counted)"
        )
    t0 = time.perf_counter()
    run_all(jobs, root, args.jobs, args.threads, log)
    wall = time.perf_counter() - t0
    ratio = f" ({wall / limit:.2f}x the FLOP limit)" if limit else ""
    log(f"\nall runs done in {_fmt_s(wall)}{ratio}; report:\n")
    summary = {
        "wall_s": wall,
        "flop_limit_s": limit,
        "epochs": epochs,
        "seeds": seeds,
        "jobs": args.jobs,
        "threads": args.threads,
        "quick": bool(args.quick),
    }
    from bridging.io import atomic_write_json

    atomic_write_json(root / "reproduce.json", summary)
    from bridging.cli.report import main as report_main

    report_args = [str(root), "--out", str(root / "report.md"), "--plots", str(root / "plots")]
    if args.quick:
        report_args += [
            "--note",
            "Smoke test (bridging-reproduce --quick): small data, small model, "
            f"{epochs} epochs; these figures are not the comparison.",
        ]
    return report_main(report_args)


if __name__ == "__main__":
    sys.exit(main())
