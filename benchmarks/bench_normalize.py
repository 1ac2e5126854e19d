"""Speaker-wise normalisation measured (issue 30): audio-only and masked COGMEN under
leave-one-session-out with ``data.normalize`` none / global / speaker / online, and the cost
of normalising at inference.

    python benchmarks/bench_normalize.py --out outputs/normalize \
        [--reuse-none outputs/reproduce/<loso dir>] [--jobs 2 --threads 1] \
        [--markdown docs/results/normalization.md] [--figure docs/results/normalization.png] \
        [--collect-only]

Each run is ``bridging-train experiment=<e> experiment_name=<e> seed=0 data.protocol=loso
data.fold=<k> data.normalize=<mode>`` with the comparison's settings (55 epochs, csv logger,
``bridging-reproduce``'s common overrides), in ``<out>/<e>/<mode>/fold<k>``; a finished run
(its metrics.json) is kept, so the command resumes. ``--reuse-none DIR`` takes the ``none``
rows from a loso ``bridging-reproduce`` output (the same runs: ``DIR/<e>/fold<k>/seed0``),
after checking that their config is this one's. ``--collect-only`` trains nothing and
reports the finished runs. Every run of one experiment and fold must have read the same corpus
(the content fingerprint in its metrics.json), or the command stops: a table never mixes
corpora.

Per run: the test wF1 (speech only: the masked model is evaluated on audio) and the wF1 of
each test actor (IEMOCAP actor = session + gender, :mod:`bridging.data.speakers`; under loso
each of the 10 actors is a test speaker once). Nothing here is fitted or selected on these
figures: the modes are the options as documented, the default stays ``none``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

EXPERIMENTS = ("audio_only", "masked")
MODES = ("none", "global", "speaker", "online")
FOLDS = (1, 2, 3, 4, 5)


def overrides(exp: str, mode: str, fold: int, epochs: int) -> list[str]:
    return [
        f"experiment={exp}",
        f"experiment_name={exp}",
        "seed=0",
        f"trainer.max_epochs={epochs}",
        "logger=csv",
        "trainer.enable_progress_bar=false",
        "data.label_set=iemocap_4",
        "data.protocol=loso",
        f"data.fold={fold}",
        f"data.normalize={mode}",
    ]


def train_bin() -> str:
    here = Path(sys.executable).parent / "bridging-train"
    return str(here) if here.exists() else "bridging-train"


def run_dir(args, exp, mode, fold) -> Path:
    return Path(args.out) / exp / mode / f"fold{fold}"


def run_one(args, exp, mode, fold) -> Path:
    out = run_dir(args, exp, mode, fold)
    if (out / "metrics.json").is_file():
        return out
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "WANDB_MODE": "disabled"}
    cmd = [train_bin(), *overrides(exp, mode, fold, args.epochs), f"hydra.run.dir={out}"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
        raise SystemExit(f"bench_normalize: error: {out}: training failed: {tail}")
    print(f"  {exp}/{mode}/fold{fold}: {time.perf_counter() - t0:.0f} s", flush=True)
    return out


def reused(args, exp, fold) -> Path | None:
    """The none run of a loso reproduce output, if its config is this benchmark's."""
    if not args.reuse_none:
        return None
    run = Path(args.reuse_none) / exp / f"fold{fold}" / "seed0"
    if not (run / "metrics.json").is_file():
        return None
    import yaml

    cfg = yaml.safe_load((run / "config.yaml").read_text())
    data = cfg.get("data") or {}
    same = (
        cfg.get("seed") == 0
        and (cfg.get("trainer") or {}).get("max_epochs") == args.epochs
        and data.get("protocol") == "loso"
        and data.get("fold") == fold
        and data.get("normalize", "none") == "none"
        and data.get("path") is None
    )
    if not same:
        raise SystemExit(f"bench_normalize: error: {run}: config.yaml: not this benchmark's run")
    return run


def actor_map(fold: int):
    """The default corpus's loso fold: its test dialogues and speaker names."""
    from bridging.data.datamodule import IEMOCAPDataModule

    dm = IEMOCAPDataModule(modalities=["a"], protocol="loso", fold=fold)
    dm.setup()
    return dm.corpus.splits["test"], dm.corpus.speaker_names


def per_actor(run: Path, actors) -> dict[str, float]:
    """Test wF1 per actor (the report's :func:`bridging.report.actors.actor_scores`); files
    written before predictions recorded speakers get them from the corpus."""
    from bridging.data.predictions import Predictions
    from bridging.report.actors import actor_scores

    p = Predictions.load(run / "test_predictions.npz")
    if p.speaker is None:
        p = p.with_speakers(*actors)
    return {a: s["wf1"] for a, s in actor_scores(p).items() if s["wf1"] is not None}


def inference_cost(reps: int = 200) -> list[dict]:
    """Milliseconds to normalise: a whole loso test split (fold 1, audio), and one
    50-utterance dialogue as the exported graph and predict-audio do it."""
    import torch

    from bridging.data.datamodule import IEMOCAPDataModule
    from bridging.data.normalize import Normalization

    torch.set_num_threads(1)
    dm = IEMOCAPDataModule(modalities=["a"], protocol="loso", fold=1)
    dm.setup()
    tr, te = dm.split("train"), dm.split("test")
    valid = torch.arange(tr.labels.shape[1])[None, :] < tr.lengths[:, None]
    feats = {"a": tr.features["a"][valid].numpy()}
    rows = []
    x = torch.randn(1, 50, feats["a"].shape[1])
    spk = torch.randint(0, 2, (1, 50))
    for mode in MODES[1:]:
        norm = Normalization.fit(mode, 1.0, feats)
        actors = te.actors if mode == "speaker" else None
        t0 = time.perf_counter()
        for _ in range(5):
            norm.apply_padded(te.features, te.lengths, te.speakers, 2, actors=actors)
        split_ms = (time.perf_counter() - t0) / 5 * 1000
        module = norm.module("a", 2)
        with torch.no_grad():
            module(x, spk)
            t0 = time.perf_counter()
            for _ in range(reps):
                module(x, spk)
        dlg_ms = (time.perf_counter() - t0) / reps * 1000
        rows.append(
            {
                "mode": mode,
                "split_ms": split_ms,
                "split_utterances": te.n_utterances,
                "dialogue_ms": dlg_ms,
                "dim": int(x.shape[-1]),
            }
        )
    return rows


def check_corpora(runs: dict, metrics: dict) -> None:
    """Stops when two runs of one experiment and fold read different corpora (``data.
    fingerprint`` of their ``metrics``; e.g. ``none`` runs reused from another corpus)."""
    seen: dict = {}
    for (exp, _mode, fold), run in sorted(runs.items()):
        fp = (metrics[run].get("data") or {}).get("fingerprint")
        first = seen.setdefault((exp, fold), (fp, run))
        if first[0] != fp:
            raise SystemExit(
                f"bench_normalize: error: {run}: metrics.json: data.fingerprint: expected "
                f"{first[0]} (the corpus of {first[1]}), got {fp}"
            )


def plot(results: dict, args, cpu: str):
    """Two panels: each experiment x mode's per-fold test wF1 (dots) with the mean and its 95%
    t-interval; and the per-actor test wF1 as a heatmap (rows experiment x mode)."""
    from bridging.report.figures import figure, fit_title, write_cells

    keys = [(e, m) for e in args.experiments for m in args.modes if results.get((e, m))]
    if not keys:
        return None
    names = sorted({a for k in keys for a in results[k]["actors"]})
    fig = figure(13.0, 1.2 + 0.42 * len(keys) + 1.6)
    left, right = fig.subplots(1, 2, width_ratios=[1.0, 1.5])
    colors = dict(zip(MODES, ("0.35", "tab:blue", "tab:green", "tab:orange")))
    ys = np.arange(len(keys))[::-1]
    for y, (exp, mode) in zip(ys, keys):
        folds = results[(exp, mode)]["folds"]
        values = [folds[k] for k in sorted(folds)]
        mean, half = ci95(values)
        c = colors.get(mode, "k")
        left.scatter(values, [y] * len(values), s=14, color=c, alpha=0.6, zorder=2)
        left.errorbar([mean], [y], xerr=None if np.isnan(half) else [[half], [half]], fmt="D",
                      color=c, markersize=6, capsize=3, zorder=3)  # fmt: skip
        left.annotate(f"{mean:.1f}", (mean, y), xytext=(0, 7), textcoords="offset points",
                      ha="center", fontsize=7)  # fmt: skip
    labels = [f"{e} / {m}" for e, m in keys]
    left.set_yticks(ys, labels, fontsize=8)
    left.set_xlabel("test weighted F1 (%), speech only", fontsize=8)
    left.set_title("per fold (dots); mean ± 95% t-interval over folds (diamond)", fontsize=8)
    left.grid(axis="x", alpha=0.3)
    grid = np.array([[results[k]["actors"].get(a, np.nan) for a in names] for k in keys])
    lo, hi = float(np.nanmin(grid)), float(np.nanmax(grid))
    image = right.imshow(grid, cmap="RdYlGn", aspect="auto", vmin=lo, vmax=hi)
    write_cells(right, grid, lo, hi)
    right.set_xticks(range(len(names)), names, fontsize=7)
    right.set_yticks(range(len(keys)), labels, fontsize=8)
    right.set_title("per actor (each actor tested once, in its session's fold)", fontsize=8)
    fig.colorbar(image, ax=right, label="test weighted F1 (%)", shrink=0.9)
    title = (
        "data.normalize under leave-one-session-out: seed 0, "
        f"{args.epochs} epochs, default corpus; {cpu}. Measured, not tuned: the default "
        "stays none"
    )
    fig.suptitle(fit_title(title, 13.0, 10), fontsize=10)
    return fig


def ci95(values) -> tuple[float, float]:
    """Mean and the half-width of a t-interval (95%) over the folds."""
    v = np.asarray(values, dtype=float)
    t = {2: 12.71, 3: 4.30, 4: 3.18, 5: 2.78}.get(len(v), 1.96)
    half = t * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
    return float(v.mean()), float(half)


def markdown(results: dict, cost: list[dict], args, cpu: str) -> str:
    lines = [
        "# Speaker-wise normalisation under leave-one-session-out (issue 30)",
        "",
        "Measured, not tuned: the default stays `data.normalize=none` (COGMEN's behaviour), "
        "whatever these figures say. `speaker` is transductive: a test actor's statistics come "
        "from that actor's unlabelled test features (docs/normalization.md).",
        "",
        f"Command: `python benchmarks/bench_normalize.py --out {args.out}"
        + (f" --reuse-none {args.reuse_none}" if args.reuse_none else "")
        + f" --jobs {args.jobs} --threads {args.threads}`; default corpus, seed 0, "
        f"{args.epochs} epochs, every loso fold; {cpu}.",
        "",
        "Test wF1 (speech only) per fold, the mean over the five folds with a 95% t-interval "
        "(seed 0 only: the interval is the spread of the folds, not of seeds), the mean over "
        "the 10 actors and the worst actor's wF1.",
        "",
        "| experiment | normalize | "
        + " | ".join(f"fold {k}" for k in sorted(args.folds))
        + " | mean ± 95% | mean over actors | worst actor |",
        "|---|---|" + "---:|" * len(args.folds) + "---:|---:|---|",
    ]
    actor_rows = []
    for exp in args.experiments:
        for mode in args.modes:
            r = results.get((exp, mode))
            if not r:
                continue
            folds = [r["folds"][k] for k in sorted(r["folds"])]
            mean, half = ci95(folds)
            cells = " | ".join(
                f"{r['folds'][k]:.2f}" if k in r["folds"] else "" for k in sorted(args.folds)
            )
            actors = r["actors"]
            worst = min(actors, key=actors.get)
            lines.append(
                f"| {exp} | {mode} | {cells} | {mean:.2f} ± {half:.2f} | "
                f"{np.mean(list(actors.values())):.2f} | {actors[worst]:.2f} ({worst}) |"
            )
            actor_rows.append((exp, mode, actors))
    if actor_rows:
        names = sorted(actor_rows[0][2])
        lines += [
            "",
            "Per actor (test wF1; each actor is tested once, in the fold of its session):",
            "",
            "| experiment | normalize | " + " | ".join(names) + " |",
            "|---|---|" + "---:|" * len(names),
        ]
        for exp, mode, actors in actor_rows:
            cells = " | ".join(f"{actors.get(n, float('nan')):.1f}" for n in names)
            lines.append(f"| {exp} | {mode} | {cells} |")
    if cost:
        lines += [
            "",
            f"Cost of normalising at inference (1 thread; audio features, {cost[0]['dim']} per "
            "utterance):",
            "",
            "| normalize | loso fold-1 test split (ms) | one 50-utterance dialogue, exported "
            "graph's normaliser (ms) |",
            "|---|---:|---:|",
        ]
        for c in cost:
            lines.append(
                f"| {c['mode']} | {c['split_ms']:.1f} ({c['split_utterances']} utterances) | "
                f"{c['dialogue_ms']:.3f} |"
            )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default="outputs/normalize")
    ap.add_argument("--experiments", nargs="+", default=list(EXPERIMENTS))
    ap.add_argument("--modes", nargs="+", default=list(MODES))
    ap.add_argument("--folds", nargs="+", type=int, default=list(FOLDS))
    ap.add_argument("--epochs", type=int, default=55)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reuse-none", default=None)
    ap.add_argument("--markdown", default=None)
    ap.add_argument("--figure", default=None, help="also draw the results to this PNG")
    ap.add_argument(
        "--no-cost",
        action="store_true",
        help="skip timing the normaliser (when other jobs share the CPU, its figures are wrong)",
    )
    ap.add_argument("--cpu", default="", help="the CPU and its ISA, for the figures' caption")
    ap.add_argument(
        "--collect-only",
        action="store_true",
        help="train nothing: report the finished runs only (an experiment x mode with no "
        "finished run is left out)",
    )
    args = ap.parse_args(argv)
    jobs, runs = [], {}
    for exp in args.experiments:
        for mode in args.modes:
            for fold in args.folds:
                run = reused(args, exp, fold) if mode == "none" else None
                if run is not None:
                    runs[(exp, mode, fold)] = run
                else:
                    jobs.append((exp, mode, fold))
    if args.collect_only:
        for j in jobs:
            run = run_dir(args, *j)
            if (run / "metrics.json").is_file():
                runs[j] = run
        jobs = []
    # the longest first (masked trains a+v)
    jobs.sort(key=lambda j: (j[0] != "masked", j[2], j[1]))
    print(f"{len(jobs)} runs to train ({len(runs)} reused)", flush=True)
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        futures = {j: pool.submit(run_one, args, *j) for j in jobs}
        for j, f in futures.items():
            runs[j] = f.result()
    metrics = {run: json.loads((run / "metrics.json").read_text()) for run in runs.values()}
    check_corpora(runs, metrics)
    actors = {fold: actor_map(fold) for fold in sorted({k[2] for k in runs})}
    results: dict = {}
    for (exp, mode, fold), run in sorted(runs.items()):
        r = results.setdefault((exp, mode), {"folds": {}, "actors": {}})
        r["folds"][fold] = 100 * metrics[run]["test"]["wf1"]
        r["actors"].update(per_actor(run, actors[fold]))
    cost = [] if args.no_cost else inference_cost()
    text = markdown(results, cost, args, args.cpu or "CPU not stated")
    print(text)
    if args.markdown:
        from bridging.utils.files import atomic_write_text

        atomic_write_text(args.markdown, text)
    if args.figure:
        from bridging.report.figures import save_figure

        fig = plot(results, args, args.cpu or "CPU not stated")
        if fig is not None:
            print(f"figure: {save_figure(fig, args.figure)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
