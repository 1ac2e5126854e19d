"""Time of the report's paired hierarchical bootstrap at IEMOCAP scale (the test set of
session 5: 1,600 utterances in 31 dialogues; two arms of three seeds; 5,000 draws), the
size of one claim of ``bridging-report``. Target: under 3 s on the 2-core machine (it was a
timed test until issue 27: a figure that depends on the host belongs here, not in the suite).

Prints the median and best of ``--repeat`` runs, the CPU's ISA and the load average.

    python benchmarks/bench_bootstrap.py [--repeat 5] [--n-boot 5000]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from bench_flops import load_average  # this folder (run as python benchmarks/bench_bootstrap.py)

from bridging.data.predictions import Predictions
from bridging.report.stats import paired_difference
from bridging.runs.precision import cpu_isa

TARGET_S = 3.0
LABELS = ["hap", "sad", "neu", "ang"]


def arms(seed: int = 0, n: int = 1600, n_dialogues: int = 31, n_seeds: int = 3):
    """Two arms of ``n_seeds`` runs each: per-dialogue confusion counts of a 60%-accurate
    classifier on ``n`` utterances in ``n_dialogues`` dialogues."""
    rng = np.random.default_rng(seed)
    gold = rng.integers(0, 4, n)
    dlg = np.sort(rng.integers(0, n_dialogues, n)).astype(str)
    out = []
    for _ in range(2):
        arm = []
        for _ in range(n_seeds):
            pred = np.where(rng.random(n) < 0.6, gold, rng.integers(0, 4, n))
            preds = Predictions.build(dlg, np.arange(n), gold, pred, np.zeros((n, 4)), LABELS)
            arm.append(preds.dialogues()[1])
        out.append(arm)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--n-boot", type=int, default=5000)
    args = p.parse_args(argv)
    print(f"CPU {cpu_isa()}; load average before: {load_average()}")
    a, b = arms()
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        paired_difference(a, b, n_boot=args.n_boot, seed=0)
        times.append(time.perf_counter() - t0)
    med = statistics.median(times)
    print(
        f"paired_difference, 2 arms x 3 seeds x 1,600 utterances, {args.n_boot} draws: "
        f"median {med:.3f} s, best {min(times):.3f} s over {args.repeat} "
        f"(target < {TARGET_S} s: {'met' if med < TARGET_S else 'NOT met'})"
    )
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
