"""Training-epoch time of the distilled student (teacher cache on) vs the audio-only baseline.

Same data (the default synthetic IEMOCAP-shaped corpus: 108 training dialogues), same model
settings (L 4, H 7, dropout 0.1, wp = wf = 5), batch 32 dialogues, 2 CPU threads; an epoch is
the recipe's ``training_losses`` + backward + Adam step over the shuffled training split
(Lightning's loop is the same for both and left out). The student distils from an a+v
teacher (randomly initialised: timing does not depend on its weights) whose outputs are
cached once before the first epoch (the one-time cost is printed too). Variants:

- ``baseline``: TeacherRecipe on audio only (``experiment=audio_only``);
- ``student``: StudentRecipe, logit distillation (T 2, alpha 0.5), cache on (the default);
- ``student+triplet``: the same plus the n-way triplet on the GNN outputs (emb_weight 1);
- ``student, no cache``: logit distillation with the teacher run on every batch.

Epochs of the variants are interleaved (round-robin), so load drift on a shared machine hits
them alike; the figures are medians over rounds.

    .venv/bin/python benchmarks/bench_student.py [--rounds 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time

import torch

from bridging.data.datamodule import IEMOCAPDataModule
from bridging.recipes.student import StudentRecipe
from bridging.recipes.teacher import TeacherRecipe
from bridging.runs.teacher import attach_teacher

MODEL = {"seqcontext_nlayer": 4, "gnn_nheads": 7, "drop_rate": 0.1, "wp": 5, "wf": 5}


def run_epoch(recipe, opt, split, batch_size, gen) -> float:
    recipe.train()
    t0 = time.perf_counter()
    order = torch.randperm(len(split), generator=gen)
    for start in range(0, len(order), batch_size):
        batch = split.batch(order[start : start + batch_size])
        loss = recipe.training_losses(batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return time.perf_counter() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="timed epochs per variant")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--no-live", action="store_true", help="skip the no-cache variant")
    p.add_argument("--seed", type=int, default=24)
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    dm = IEMOCAPDataModule(modalities=["a", "v"], batch_size=a.batch, synthetic={"seed": 0})
    dm.setup()
    split = dm.split("train")
    facts = dm.facts.to_dict()
    print("$ " + shlex.join([sys.executable.split("/")[-1], *sys.argv]))
    print(
        f"default synthetic data: {len(split)} training dialogues, {split.n_utterances} "
        f"utterances, batch {a.batch}; COGMEN L 4, H 7; {a.threads} threads, "
        f"torch {torch.__version__}, CPU; load average before: {os.getloadavg()[0]:.2f}"
    )

    teacher = TeacherRecipe(facts=facts, modalities=["a", "v"], model=MODEL)
    variants = {"baseline": TeacherRecipe(facts=facts, modalities=["a"], model=MODEL)}
    kd = {"temperature": 2.0, "alpha": 0.5}
    specs = {
        "student": dict(kd, cache=True),
        "student+triplet": dict(kd, cache=True, emb_weight=1.0),
    }
    if not a.no_live:
        specs["student, no cache"] = dict(kd, cache=False)
    for name, opts in specs.items():
        student = StudentRecipe(facts=facts, modalities=["a"], model=MODEL, kd=opts)
        student.set_teacher(teacher, "random-teacher")
        attach_teacher(student, None, dm)  # fills the cache for the training split
        variants[name] = student
    opts = {
        n: torch.optim.Adam(
            [q for q in r.parameters() if q.requires_grad], lr=1e-4, weight_decay=1e-8
        )
        for n, r in variants.items()
    }
    gens = {n: torch.Generator().manual_seed(a.seed) for n in variants}
    for n, r in variants.items():  # warm-up epoch each
        run_epoch(r, opts[n], split, a.batch, gens[n])
    times = {n: [] for n in variants}
    for _ in range(a.rounds):
        for n, r in variants.items():
            times[n].append(run_epoch(r, opts[n], split, a.batch, gens[n]))

    base = statistics.median(times["baseline"])
    print(f"{'variant':<20}{'median s/epoch':>15}{'min':>8}{'max':>8}{'x baseline':>12}")
    for n, ts in times.items():
        med = statistics.median(ts)
        print(f"{n:<20}{med:>15.2f}{min(ts):>8.2f}{max(ts):>8.2f}{med / base:>12.2f}")
    fills = []
    for _ in range(a.rounds):  # the one-time cost: the teacher over the training split
        variants["student"].__dict__["_cache"] = {}
        t0 = time.perf_counter()
        variants["student"].fill_cache(split)
        fills.append(time.perf_counter() - t0)
    print(
        f"one-time teacher cache fill: {statistics.median(fills):.2f} s (median of "
        f"{a.rounds}; {len(split)} dialogues, a+v teacher in eval mode, no grad)"
    )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
