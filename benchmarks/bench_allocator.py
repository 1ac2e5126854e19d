"""The teacher's training epoch with the C allocator tuned or left as glibc sets it.

``allocator=tuned`` (src/bridging/runs/allocator.py) keeps freed memory in the process; ``system``
leaves glibc's defaults, which hand large freed blocks back to the kernel so that the next
batch page-faults them in again. The setting is process-wide and cannot be undone, so each
variant runs in a process of its own; the processes alternate (tuned, system, tuned, ...)
so that drifting load on a shared machine hits both alike. Each process trains the
``experiment=teacher`` recipe (a+v, COGMEN L 4, H 7, batch 32) on the configured data for
``--epochs`` epochs (forward, loss, backward, Adam: the training loop without Lightning) and
reports every epoch after the first: wall time, process CPU time, minor page faults, system
time. ``--concurrent N`` runs N processes of the same variant at once (``bridging-reproduce``
runs 2 one-thread workers side by side on the 2 cores).

    python benchmarks/bench_allocator.py [--threads 1] [--concurrent 1] [--rounds 3]
        [--epochs 4] [OVERRIDE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time

from bench_flops import load_average  # this folder (run as python benchmarks/bench_allocator.py)


def worker(allocator: str, threads: int, epochs: int, overrides: list[str]) -> list[dict]:
    import pytorch_lightning as pl
    import torch

    from bridging.runs.allocator import set_allocator
    from bridging.runs.config import compose
    from bridging.runs.train import build_datamodule, build_recipe

    set_allocator(allocator)
    torch.set_num_threads(threads)
    cfg = compose("train", ["experiment=teacher", "paths.output_dir=unused", *overrides])
    pl.seed_everything(int(cfg.seed), verbose=False)
    dm = build_datamodule(cfg)
    dm.setup()
    recipe = build_recipe(cfg, dm.facts)
    optim = recipe.configure_optimizers()
    optim = optim["optimizer"] if isinstance(optim, dict) else optim
    recipe.train()
    rows = []
    for epoch in range(epochs):
        r0 = resource.getrusage(resource.RUSAGE_SELF)
        t0, c0 = time.perf_counter(), time.process_time()
        for batch in dm.train_dataloader():
            optim.zero_grad(set_to_none=True)
            recipe.training_losses(batch)["loss"].backward()
            optim.step()
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        rows.append(
            {
                "epoch": epoch,
                "wall": time.perf_counter() - t0,
                "cpu": time.process_time() - c0,
                "faults": r1.ru_minflt - r0.ru_minflt,
                "sys": r1.ru_stime - r0.ru_stime,
            }
        )
    return rows


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--concurrent", type=int, default=1, help="processes of a variant at once")
    p.add_argument("--rounds", type=int, default=3, help="process pairs (tuned, system)")
    p.add_argument("--epochs", type=int, default=4, help="epochs per process (the first dropped)")
    p.add_argument("--worker", choices=["tuned", "system"], help=argparse.SUPPRESS)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.threads, args.epochs, args.overrides)))
        return
    if args.epochs < 2:
        p.error("--epochs: expected at least 2 (the first epoch is dropped)")
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), WANDB_MODE="disabled")
    print(f"$ python {' '.join(shlex.quote(a) for a in sys.argv)}")
    print(
        f"threads {args.threads}, {args.concurrent} process(es) at once, "
        f"load average at start {load_average()}"
    )
    results: dict[str, list[dict]] = {"tuned": [], "system": []}
    for r in range(args.rounds):
        for variant in ("tuned", "system"):
            cmd = [sys.executable, __file__, "--worker", variant, f"--threads={args.threads}"]
            cmd += [f"--epochs={args.epochs}", *args.overrides]
            procs = [
                subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True)
                for _ in range(args.concurrent)
            ]
            rows = []
            for proc in procs:
                out, _ = proc.communicate()
                if proc.returncode:
                    raise SystemExit(f"bench_allocator: a {variant} worker failed")
                rows += json.loads(out.strip().splitlines()[-1])[1:]
            results[variant] += rows
            walls = " ".join(f"{x['wall']:.2f}" for x in rows)
            faults = " ".join(str(x["faults"]) for x in rows)
            print(f"round {r} {variant:6s} s/epoch {walls}  faults {faults}  load {load_average()}")
    print()
    print(
        "| allocator | median s/epoch | min s/epoch | CPU s/epoch | minor faults/epoch "
        "| sys s/epoch |"
    )
    print("|---|---|---|---|---|---|")
    for variant, rows in results.items():
        med = statistics.median

        def col(key, rows=rows):
            return [x[key] for x in rows]

        print(
            f"| {variant} | {med(col('wall')):.2f} | {min(col('wall')):.2f} | "
            f"{med(col('cpu')):.2f} | {med(col('faults')):,.0f} | {med(col('sys')):.2f} |"
        )
    t, s = (statistics.median(x["wall"] for x in results[v]) for v in ("tuned", "system"))
    print(f"\ntuned / system (medians): {t / s:.3f}; load average at end {load_average()}")


if __name__ == "__main__":
    main()
