"""torch.compile of the sequence context: does it make a training epoch faster?

The a+v teacher (L 4, H 7, dropout 0.1) on the default data's training split (batch 32), a
plain loop of forward, backward and Adam step over every training batch, in two fresh
processes' worth of state: eager, and with ``model.rnn`` (the sequence context, 95% of an
epoch's FLOPs) wrapped in ``torch.compile`` (inductor, ``dynamic=True``: every batch has
another length). Reported: the first epoch (compilation included) and the median of the
others, per variant; the variants alternate epoch by epoch so that a drift of the machine
hits both alike.

    python benchmarks/bench_compile.py [--epochs 4] [--threads 2] [--mode default]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from bench_flops import load_average

from bridging.data.datamodule import IEMOCAPDataModule
from bridging.data.synthetic import synthesize
from bridging.recipes.teacher import TeacherRecipe
from bridging.runs.precision import cpu_isa

MODEL = {"seqcontext_nlayer": 4, "gnn_nheads": 7, "drop_rate": 0.1}


def make(dm, compiled: bool, mode: str):
    torch.manual_seed(0)
    recipe = TeacherRecipe(facts=dm.facts.to_dict(), modalities=["a", "v"], model=MODEL)
    if compiled:
        recipe.model.rnn = torch.compile(recipe.model.rnn, dynamic=True, mode=mode)
    opt = torch.optim.Adam(recipe.parameters(), lr=1e-4, fused=True)
    return recipe.train(), opt


def epoch(recipe, opt, batches) -> float:
    t0 = time.perf_counter()
    for batch in batches:
        opt.zero_grad(set_to_none=True)
        recipe.training_losses(batch)["loss"].backward()
        opt.step()
    return time.perf_counter() - t0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", default="default", help="torch.compile mode")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    dm = IEMOCAPDataModule(
        corpus=synthesize(label_set="iemocap_4", seed=0), modalities=["a", "v"], batch_size=32
    )
    dm.setup()
    torch.manual_seed(0)
    batches = list(dm.train_dataloader())
    variants = {"eager": make(dm, False, args.mode), "compiled": make(dm, True, args.mode)}
    times = {name: [] for name in variants}
    load0 = load_average()
    for _ in range(args.epochs):
        for name, (recipe, opt) in variants.items():
            times[name].append(epoch(recipe, opt, batches))
    print(f"command: python {' '.join(sys.argv)}")
    print(f"CPU {cpu_isa()}, {args.threads} threads, load {load0} -> {load_average()}")
    for name, ts in times.items():
        rest = statistics.median(ts[1:]) if len(ts) > 1 else float("nan")
        print(
            f"  {name:<9} first epoch {ts[0]:7.2f} s, then median {rest:6.2f} s "
            f"({', '.join(f'{t:.2f}' for t in ts)})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
