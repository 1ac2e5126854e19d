"""``make gpu-check``: training on CUDA with ``trainer.precision=auto``, checked against the CPU.

1. The QUICK main job (``bridging-reproduce --quick``) on the GPU with ``auto``: every
   recipe trains and the report is written.
2. The paper's a+v teacher (55 epochs, seeds ``--seeds``) on the GPU with ``auto``, one run
   after the other, and on the CPU in ``32-true`` (one process per seed, side by side, one
   thread each, as many at once as ``--cpu-jobs``).
3. Their test weighted F1 compared: the GPU's mean must lie within seed noise of the
   CPU's (|difference of means| at most twice its standard error over seeds; with one seed
   each, at most 5 points). Epoch times side by side.

Writes ``<out>/gpu_check.json`` and prints lines for BENCHMARKS.md; exit status 1 when the
figures disagree, 2 when there is no CUDA device.

    python benchmarks/gpu_check.py [--seeds 0 1 2] [--epochs 55] [--cpu-jobs 3] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

#: the largest difference of means accepted with one seed per device (wF1 points)
ONE_SEED_POINTS = 5.0


def within_seed_noise(gpu: list[float], cpu: list[float]) -> tuple[bool, float, float]:
    """(agree, difference of means, bound): the bound is twice the standard error of the
    difference over seeds (``ONE_SEED_POINTS`` with a single seed on either side)."""
    diff = statistics.fmean(gpu) - statistics.fmean(cpu)
    if min(len(gpu), len(cpu)) < 2:
        return abs(diff) <= ONE_SEED_POINTS, diff, ONE_SEED_POINTS
    se = (statistics.variance(gpu) / len(gpu) + statistics.variance(cpu) / len(cpu)) ** 0.5
    return abs(diff) <= 2 * se, diff, 2 * se


def train_cmd(run_dir: Path, seed: int, epochs: int, accelerator: str, precision: str) -> list:
    return [
        sys.executable,
        "-m",
        "bridging.cli.train",
        "experiment=teacher",
        f"seed={seed}",
        f"trainer.max_epochs={epochs}",
        f"trainer.accelerator={accelerator}",
        f"trainer.precision={precision}",
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"hydra.run.dir={run_dir}",
    ]


def launch(cmd, threads: int) -> tuple[subprocess.Popen, float]:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
    t0 = time.perf_counter()
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT), t0


def finish(proc: subprocess.Popen, t0: float, what: str) -> float:
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = out.decode(errors="replace")[-3000:]
        raise SystemExit(f"gpu-check: error: {what} failed (exit {proc.returncode}):\n{tail}")
    return wall


def teacher_runs(out: Path, seeds, epochs, device: str, precision: str, jobs: int) -> list:
    """The teacher of each seed on ``device``: up to ``jobs`` processes at once."""
    rows, pending = [], list(seeds)
    running = []
    while pending or running:
        while pending and len(running) < jobs:
            seed = pending.pop(0)
            run_dir = out / f"teacher_{device}_seed{seed}"
            accel = "gpu" if device == "cuda" else "cpu"
            proc, t0 = launch(train_cmd(run_dir, seed, epochs, accel, precision), 1)
            running.append((seed, run_dir, proc, t0))
        seed, run_dir, proc, t0 = running.pop(0)
        wall = finish(proc, t0, f"the {device} teacher of seed {seed}")
        m = json.loads((run_dir / "metrics.json").read_text())
        rows.append(
            {
                "device": device,
                "seed": seed,
                "precision": m["precision"],
                "test_wf1": 100 * m["test"]["wf1"],
                "epoch_s": wall / epochs,
            }
        )
        print(
            f"  teacher {device:<4} seed {seed} ({m['precision']}): test wF1 "
            f"{rows[-1]['test_wf1']:.2f}, {rows[-1]['epoch_s']:.2f} s per epoch (whole process)",
            flush=True,
        )
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=55)
    p.add_argument("--cpu-jobs", type=int, default=3)
    p.add_argument("--skip-quick", action="store_true", help="skip the QUICK main job")
    p.add_argument("--out", default=None)
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        msg = "gpu-check: error: torch.cuda.is_available() is False: no CUDA device"
        print(msg, file=sys.stderr)
        return 2
    from bridging.runs.precision import resolve_precision

    out = Path(args.out or tempfile.mkdtemp(prefix="gpu_check_"))
    out.mkdir(parents=True, exist_ok=True)
    name = torch.cuda.get_device_name(0)
    precision = resolve_precision("auto", "gpu")
    print(f"gpu-check: {name}, torch {torch.__version__}, auto -> {precision}; out {out}")
    result = {"device": name, "torch": torch.__version__, "auto": precision}
    if not args.skip_quick:
        cmd = [sys.executable, "-m", "bridging.cli.reproduce", "--quick", "--jobs", "2"]
        cmd += ["--out", str(out / "quick"), "trainer.accelerator=gpu", "trainer.precision=auto"]
        proc, t0 = launch(cmd, 1)
        wall = finish(proc, t0, "the QUICK main job")
        if not (out / "quick" / "report.md").exists():
            raise SystemExit("gpu-check: error: the QUICK main job wrote no report.md")
        result["quick_s"] = wall
        print(f"  QUICK main job on the GPU: {wall:.0f} s, report {out / 'quick' / 'report.md'}")
    cpu = teacher_runs(out, args.seeds, args.epochs, "cpu", "32-true", args.cpu_jobs)
    gpu = teacher_runs(out, args.seeds, args.epochs, "cuda", "auto", 1)
    agree, diff, bound = within_seed_noise(
        [r["test_wf1"] for r in gpu], [r["test_wf1"] for r in cpu]
    )
    result.update(runs=cpu + gpu, difference=diff, bound=bound, agree=agree)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    for rows in (cpu, gpu):
        wf1 = [r["test_wf1"] for r in rows]
        sd = statistics.stdev(wf1) if len(wf1) > 1 else 0.0
        print(
            f"teacher on {rows[0]['device']} ({rows[0]['precision']}), {args.epochs} epochs, "
            f"seeds {args.seeds}: test wF1 {statistics.fmean(wf1):.2f} ± {sd:.2f}, "
            f"{statistics.median(r['epoch_s'] for r in rows):.2f} s per epoch"
        )
    verdict = "within seed noise" if agree else "BEYOND seed noise"
    print(f"GPU - CPU test wF1: {diff:+.2f} points (bound {bound:.2f}): {verdict}")
    return 0 if agree else 1


if __name__ == "__main__":
    sys.exit(main())
