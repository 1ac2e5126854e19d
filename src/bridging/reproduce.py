"""The paper's whole comparison in one command (``make reproduce`` / ``bridging-reproduce``).

For each seed: the a+v teacher; the audio-only baseline; the a+v teacher evaluated speech-only
(video zeroed); the distilled speech-only student (from that seed's teacher); the masked model;
the masked model without the GNN. Then ``bridging-report`` over all of them.

Jobs run in parallel worker processes (``--jobs``, one torch thread each); a student waits for
its teacher. Every job is an ordinary bridging run dir with its metrics.json.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path

RECIPES = ("teacher", "audio_only", "student_kd", "masked", "masked_nognn")


def _compose(overrides: list[str]):
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bridging.paths import conf_dir

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    GlobalHydra.instance().clear()
    return cfg


def run_job(overrides: list[str], out_dir: str, threads: int) -> dict:
    """One training run in this (worker) process; returns its headline figures."""
    import logging
    import warnings

    import torch

    torch.set_num_threads(threads)
    logging.getLogger("pytorch_lightning").setLevel(logging.WARNING)
    logging.getLogger("lightning_fabric").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore")
    from bridging.training import train

    cfg = _compose([f"paths.output_dir={out_dir}", *overrides])
    t0 = time.perf_counter()
    metrics = train(cfg, output_dir=out_dir)
    return {"out": out_dir, "wf1": metrics["test"]["wf1"], "s": time.perf_counter() - t0}


def eval_speech_only(teacher_dir: str, out_dir: str, seed: int, threads: int) -> dict:
    """The av teacher evaluated speech-only (video zeroed), written as a run of its own."""
    import torch

    torch.set_num_threads(threads)
    from bridging.evaluation import evaluate
    from bridging.io import atomic_write_json, save_confusion_png

    teacher = json.loads((Path(teacher_dir) / "metrics.json").read_text())
    ckpt = Path(teacher_dir) / teacher["best_checkpoint"]
    test = evaluate(ckpt, split="test", modalities=["a"])
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


def plan(seeds, common: list[str]) -> list[dict]:
    jobs = []
    for s in seeds:
        for name in RECIPES:
            ov = [f"experiment={name}", f"seed={s}", *common]
            job = {"name": f"{name}/seed{s}", "overrides": ov, "after": None}
            if name == "student_kd":
                job["after"] = f"teacher/seed{s}"
            jobs.append(job)
        jobs.append(
            {
                "name": f"av_eval_speech_only/seed{s}",
                "eval_of": f"teacher/seed{s}",
                "seed": s,
                "after": f"teacher/seed{s}",
            }
        )
    return jobs


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="bridging-reproduce",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick", action="store_true", help="small data and models, 4 epochs: a minutes-long check"
    )
    p.add_argument("--data", default=None, help="a real data file (default: the synthetic data)")
    p.add_argument("--label-set", default="iemocap_4")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument(
        "--epochs",
        type=int,
        default=None,
        help="epochs per run (default 12; 4 with --quick; the paper used 55)",
    )
    p.add_argument("--jobs", type=int, default=2, help="parallel worker processes")
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--out", default=None, help="default: outputs/reproduce/<timestamp>")
    p.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run")
    args = p.parse_args(argv)

    epochs = args.epochs or (4 if args.quick else 12)
    common = [
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        f"data.label_set={args.label_set}",
    ]
    if args.quick:  # small synthetic data and models: a minutes-long end-to-end check
        common += [
            "data=tiny",
            "data.synthetic.n_dialogues=40",
            "data.synthetic.max_len=24",
            "data.synthetic.mean_len=14",
            "data.batch_size=8",
            "trainer.accelerator=cpu",
            "model.seqcontext_nlayer=1",
            "model.gnn_nheads=2",
        ]
    if args.data:
        common += ["data=iemocap", f"data.path={Path(args.data).resolve()}"]
    common += args.overrides
    stamp = datetime.now().strftime("%Y-%m-%d_%H-%M-%S-%f")
    root = Path(
        args.out or Path(os.environ.get("BRIDGING_OUTPUT", "outputs")) / "reproduce" / stamp
    )
    root.mkdir(parents=True, exist_ok=True)
    jobs = plan(args.seeds, common)
    print(
        f"bridging-reproduce: {len(jobs)} jobs, {epochs} epochs each, {args.jobs} workers "
        f"-> {root}",
        flush=True,
    )

    t_start = time.perf_counter()
    done: dict[str, dict] = {}
    pending = list(jobs)
    running = {}
    ctx = get_context("spawn")
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=ctx) as pool:
        while pending or running:
            for job in list(pending):
                if len(running) >= args.jobs:
                    break
                if job["after"] and job["after"] not in done:
                    continue
                pending.remove(job)
                out = str(root / job["name"])
                if "eval_of" in job:
                    fut = pool.submit(
                        eval_speech_only, str(root / job["eval_of"]), out, job["seed"], args.threads
                    )
                else:
                    ov = list(job["overrides"])
                    if job["name"].startswith("student_kd"):
                        t_dir = json.loads((root / job["after"] / "metrics.json").read_text())
                        ckpt = root / job["after"] / t_dir["best_checkpoint"]
                        ov.append(f"recipe.teacher.ckpt_path={ckpt}")
                    fut = pool.submit(run_job, ov, out, args.threads)
                running[fut] = job
            finished, _ = wait(list(running), return_when=FIRST_COMPLETED)
            for fut in finished:
                job = running.pop(fut)
                res = fut.result()  # a failed job stops the whole comparison, loudly
                done[job["name"]] = res
                print(
                    f"  [{len(done):2d}/{len(jobs)}] {job['name']:<28} test wF1 "
                    f"{100 * res['wf1']:.2f}  ({time.perf_counter() - t_start:.0f} s)",
                    flush=True,
                )

    from bridging.cli.report import main as report_main

    print(f"\nall runs done in {time.perf_counter() - t_start:.0f} s; report:\n", flush=True)
    return report_main([str(root), "--out", str(root / "report.md")])


if __name__ == "__main__":
    sys.exit(main())
