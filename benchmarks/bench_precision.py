"""Training precision side by side: epoch time and test weighted F1, float32 against bf16.

For each experiment (default: the a+v teacher and the audio-only baseline) and each seed
(default 0-4), one whole ``bridging-train`` process per precision (default ``32-true``,
``bf16-mixed``) on the default data, ``--epochs`` epochs (default the paper's 55), one after
the other, never two at once. Reported per experiment and precision: the whole-process time
per epoch (process wall time / epochs: start-up, data, validation and the float32 test
included; median over seeds), the test wF1 (mean, sd over seeds), and per seed the paired
difference of each precision to the first one, with a 95% t interval over seeds: "within
seed noise" when that interval holds 0 and the mean difference is below the seed sd of the
first precision. Figures go to BENCHMARKS.md by hand, with the CPU's ISA and the load that
this prints.

    python benchmarks/bench_precision.py [--experiments teacher audio_only] [--seeds 0 1 2 3 4]
        [--precisions 32-true bf16-mixed] [--epochs 55] [--threads 2] [--out DIR]
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

from bench_flops import load_average

from bridging.runs.precision import cpu_isa, resolve_precision

#: two-sided 97.5% t quantiles by degrees of freedom (1..9), for the interval over seeds
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262}


def run_one(experiment, seed, precision, epochs, threads, out_dir: Path) -> dict:
    """One bridging-train process; its wall time and metrics."""
    run_dir = out_dir / f"{experiment}_{precision}_seed{seed}"
    cmd = [
        sys.executable,
        "-m",
        "bridging.cli.train",
        f"experiment={experiment}",
        f"seed={seed}",
        f"trainer.max_epochs={epochs}",
        f"trainer.precision={precision}",
        "trainer.enable_progress_bar=false",
        "logger=none",
        f"hydra.run.dir={run_dir}",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "WANDB_MODE": "disabled"}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"bench_precision: {' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {
        "experiment": experiment,
        "seed": seed,
        "precision": metrics["precision"],
        "requested": precision,
        "wall_s": wall,
        "epoch_s": wall / epochs,
        "test_wf1": 100 * metrics["test"]["wf1"],
        "dev_wf1": 100 * metrics["dev"]["wf1"],
    }


def paired(base: list[dict], other: list[dict]) -> dict:
    """other - base per seed: mean, 95% t interval, and whether it is within seed noise."""
    by_seed = {r["seed"]: r["test_wf1"] for r in base}
    diffs = [r["test_wf1"] - by_seed[r["seed"]] for r in other if r["seed"] in by_seed]
    mean = statistics.fmean(diffs)
    if len(diffs) < 2:
        return {"n": len(diffs), "mean": mean, "lo": None, "hi": None, "within_noise": None}
    half = T975.get(len(diffs) - 1, 1.96) * statistics.stdev(diffs) / len(diffs) ** 0.5
    seed_sd = statistics.stdev([r["test_wf1"] for r in base])
    lo, hi = mean - half, mean + half
    return {
        "n": len(diffs),
        "mean": mean,
        "lo": lo,
        "hi": hi,
        "within_noise": bool(lo <= 0 <= hi and abs(mean) < seed_sd),
    }


def summarise(rows: list[dict], precisions: list[str]) -> list[dict]:
    out = []
    for exp in dict.fromkeys(r["experiment"] for r in rows):
        base = [r for r in rows if r["experiment"] == exp and r["requested"] == precisions[0]]
        for p in precisions:
            runs = [r for r in rows if r["experiment"] == exp and r["requested"] == p]
            wf1 = [r["test_wf1"] for r in runs]
            out.append(
                {
                    "experiment": exp,
                    "precision": p,
                    "resolved": sorted({r["precision"] for r in runs}),
                    "seeds": [r["seed"] for r in runs],
                    "epoch_s": statistics.median(r["epoch_s"] for r in runs),
                    "test_wf1_mean": statistics.fmean(wf1),
                    "test_wf1_sd": statistics.stdev(wf1) if len(wf1) > 1 else None,
                    "vs_first": paired(base, runs) if p != precisions[0] else None,
                }
            )
    return out


def markdown(summary: list[dict], precisions: list[str]) -> str:
    lines = [
        "| experiment | precision | epoch (s, whole process) | speed-up | test wF1 % (mean ± sd) "
        f"| wF1 − {precisions[0]} (95% CI) |",
        "|---|---|---:|---:|---:|---|",
    ]
    first = {s["experiment"]: s["epoch_s"] for s in summary if s["precision"] == precisions[0]}
    for s in summary:
        sd = "" if s["test_wf1_sd"] is None else f" ± {s['test_wf1_sd']:.2f}"
        d = s["vs_first"]
        if d is None:
            diff = ""
        elif d["lo"] is None:
            diff = f"{d['mean']:+.2f} (one seed)"
        else:
            noise = "within seed noise" if d["within_noise"] else "beyond seed noise"
            diff = f"{d['mean']:+.2f} [{d['lo']:+.2f}, {d['hi']:+.2f}], {noise}"
        name = s["precision"]
        if s["resolved"] != [name]:
            name += f" → {s['resolved'][0]}"
        speedup = first[s["experiment"]] / s["epoch_s"]
        lines.append(
            f"| {s['experiment']} | {name} | {s['epoch_s']:.2f} | {speedup:.2f}x | "
            f"{s['test_wf1_mean']:.2f}{sd} | {diff} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--experiments", nargs="+", default=["teacher", "audio_only"])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--precisions", nargs="+", default=["32-true", "bf16-mixed"])
    p.add_argument("--epochs", type=int, default=55)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=None, help="run dirs and results.json (default: a tmp dir)")
    args = p.parse_args(argv)
    for prec in args.precisions:
        resolve_precision(prec, "cpu")  # a bad value fails before any run
    out = Path(args.out or tempfile.mkdtemp(prefix="bench_precision_"))
    out.mkdir(parents=True, exist_ok=True)
    print(
        f"CPU {cpu_isa()}; auto -> {resolve_precision('auto', 'cpu')}; {args.threads} threads; "
        f"load before {load_average()}; runs in {out}",
        flush=True,
    )
    rows = []
    for seed in args.seeds:  # seeds outermost: a drift of the machine hits every arm alike
        for exp in args.experiments:
            for prec in args.precisions:
                r = run_one(exp, seed, prec, args.epochs, args.threads, out)
                rows.append(r)
                print(
                    f"  {exp:<11} seed {seed} {prec:<10} {r['epoch_s']:7.2f} s/epoch  "
                    f"test wF1 {r['test_wf1']:6.2f}  (load {load_average()})",
                    flush=True,
                )
    summary = summarise(rows, args.precisions)
    result = {"isa": cpu_isa(), "threads": args.threads, "epochs": args.epochs, "runs": rows}
    result["summary"] = summary
    (out / "results.json").write_text(json.dumps(result, indent=1))
    print(f"\n{markdown(summary, args.precisions)}\n\nload after {load_average()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
