"""A whole-process training epoch against its FLOP limit (issue 11, section 3).

For the paper's teacher (``experiment=teacher``: a+v input, COGMEN L 4, H 7, dropout 0.1,
batch 32 dialogues) on the configured data (the default corpus unless overridden), measures:

(a) float32 matmul throughput at the given threads (large square ``torch.mm``, the best of
    several repetitions: the peak the machine reaches);
(b) the FLOPs of one training epoch as the code performs it (``FlopCounterMode`` over the
    forward and backward of every training batch), and the FLOPs a padding-free computation
    needs (every dialogue alone, batch of one: no padded position anywhere);
(c) the FLOP limit of an epoch = FLOPs / (a);
(d) the whole-process epoch time: ``bridging.runs.experiment.train`` (the library side of
    ``bridging-train``: real Trainer, validation, both checkpoints each epoch, CSV logger),
    the period between consecutive epoch starts after the first (startup excluded), plus
    what the end of the run costs (waiting for the last checkpoint, final validate + test);
(e) the ratio of (d) to (c).

    python benchmarks/bench_flops.py [--threads 2] [--epochs 5] [OVERRIDE ...]

OVERRIDEs are Hydra overrides of the train config, e.g. ``data.path=corpus.safetensors`` or
``model.pad_mode=reference``. The load average is printed with the figures: on a shared
machine the times are slower than on an idle one, the FLOP counts are not.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pytorch_lightning as pl
import torch

from bridging.runs import flops
from bridging.runs.flops import flops_setup, train_step_flops

#: epoch clock of the current run (the callback is built by Hydra from its dotted name):
#: (mark, epoch, wall time, process CPU time)
CLOCK: list[tuple[str, int, float, float]] = []


class EpochClock(pl.Callback):
    """Records perf_counter at every training-epoch start, at the start and end of each
    validation, at each training-epoch end (Lightning runs the ModelCheckpoint callbacks
    after every other callback's hook, so before the checkpoints are written) and at the end
    of fit (after the strategy's teardown, so after any asynchronous write)."""

    def _mark(self, kind, trainer):
        CLOCK.append((kind, trainer.current_epoch, time.perf_counter(), time.process_time()))

    def on_train_epoch_start(self, trainer, module):
        self._mark("epoch", trainer)

    def on_validation_start(self, trainer, module):
        if trainer.state.fn == "fit":
            self._mark("val_start", trainer)

    def on_validation_end(self, trainer, module):
        if trainer.state.fn == "fit":
            self._mark("val_end", trainer)

    def on_train_epoch_end(self, trainer, module):
        self._mark("epoch_end", trainer)

    def on_fit_end(self, trainer, module):
        self._mark("fit_end", trainer)


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "n/a"


def matmul_gflops(threads: int, sizes=(2048, 3072, 4096), repeat: int = 5) -> dict:
    """GFLOP/s of large square float32 matmuls: {n: (best, median)}
    (:func:`bridging.runs.flops.matmul_gflops` at each size). The best over the sizes is the
    machine's peak for the FLOP limit."""
    return {n: flops.matmul_gflops(threads, n=n, repeat=repeat) for n in sizes}


def layer_products(threads: int, n_tokens: int = 1000, d: int = 612, ff: int = 2048):
    """The 12 matrix products of one encoder layer (forward, input and weight gradients of
    the in-projection, out-projection and both feed-forward linears) at the teacher's sizes:
    GFLOP/s written as usual (plain) and into row-aligned outputs (aligned_linear)."""
    from bridging.models.aligned import _mm_aligned

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    for name, (i, o) in {
        "in_proj": (d, 3 * d),
        "out_proj": (d, d),
        "linear1": (d, ff),
        "linear2": (ff, d),
    }.items():
        x = torch.randn(n_tokens, i, generator=gen)
        w = torch.randn(o, i, generator=gen)
        gy = torch.randn(n_tokens, o, generator=gen)
        for what, a, b in (("fwd", x, w.t()), ("grad_x", gy, w), ("grad_w", gy.t(), x)):
            flops = 2 * a.shape[0] * a.shape[1] * b.shape[1]
            best = {}
            for _ in range(3):  # interleaved, so load drift hits both alike
                for variant, fn in (
                    ("plain", lambda a=a, b=b: a @ b),
                    ("aligned", lambda a=a, b=b: _mm_aligned(a, b)),
                ):
                    fn()
                    t0 = time.perf_counter()
                    fn()
                    rate = flops / (time.perf_counter() - t0) / 1e9
                    best[variant] = max(best.get(variant, 0.0), rate)
            rows.append(
                (
                    f"{name} {what} [{a.shape[0]}x{a.shape[1]}]@[{b.shape[0]}x{b.shape[1]}]",
                    best["plain"],
                    best["aligned"],
                )
            )
    return rows


def attention_overheads(cfg, threads: int, overheads=(0, 20_000, 60_000, 200_000, 1e12)):
    """Forward + backward time of the encoder's grouped attention alone over one epoch's
    training batches (teacher sizes, dropout on), for several GROUP_OVERHEAD values
    (1e12: one group, the whole padded batch)."""
    import bridging.models.seqcontext as seqcontext
    from bridging.models.seqcontext import AttentionPlan
    from bridging.runs.train import build_datamodule

    torch.set_num_threads(threads)
    dm = build_datamodule(cfg)
    dm.setup()
    d = dm.facts.input_size(cfg.modalities)
    heads = seqcontext.transformer_heads(d)
    masks = [b.mask for b in dm.train_dataloader()]
    gen = torch.Generator().manual_seed(0)
    qkvs = [torch.randn(int(m.sum()), 3 * d, generator=gen).requires_grad_() for m in masks]
    saved = seqcontext.GROUP_OVERHEAD
    best = {}
    try:
        for _ in range(3):
            for ov in overheads:
                seqcontext.GROUP_OVERHEAD = ov
                t0 = time.perf_counter()
                for mask, qkv in zip(masks, qkvs):
                    plan = AttentionPlan(mask, heads)
                    out = plan.attention(qkv, heads, 0.1)
                    out.backward(torch.ones_like(out))
                dt = time.perf_counter() - t0
                best[ov] = min(best.get(ov, float("inf")), dt)
    finally:
        seqcontext.GROUP_OVERHEAD = saved
    return best


def epoch_flops(cfg) -> dict:
    """FLOPs of one training epoch, as performed and padding-free (forward + backward)."""
    dm, recipe = flops_setup(cfg)
    train = dm.split("train")
    recipe.train()
    performed = sum(train_step_flops(recipe, batch) for batch in dm.train_dataloader())
    # padding-free: each dialogue alone (eval mode: BatchNorm on one dialogue's nodes, no
    # dropout; neither is counted as FLOPs)
    recipe.eval()
    alone = sum(train_step_flops(recipe, train.batch([i])) for i in range(len(train)))
    lengths = train.lengths
    padded_positions = 0
    for index in dm.train_dataloader().batch_sampler:
        ln = lengths[torch.as_tensor(index)]
        padded_positions += int(ln.numel() * ln.max())
    return {
        "performed": performed,
        "padding_free": alone,
        "dialogues": len(train),
        "utterances": train.n_utterances,
        "padding_share": 1 - train.n_utterances / padded_positions,
        "input_size": dm.facts.input_size(cfg.modalities),
    }


def whole_process(cfg, out_dir: Path) -> dict:
    """Time ``train(cfg)``: startup, every epoch period, the end of fit, final eval."""
    from bridging.runs.experiment import train

    CLOCK.clear()
    t0 = time.perf_counter()
    metrics = train(cfg, output_dir=out_dir)
    t_end = time.perf_counter()
    marks: dict[str, list[float]] = {}
    for kind, _, t, _ in CLOCK:
        marks.setdefault(kind, []).append(t)
    cpu_starts = [c for kind, _, _, c in CLOCK if kind == "epoch"]
    starts = marks["epoch"]
    fit_end = marks["fit_end"][0]
    periods = [b - a for a, b in zip(starts, starts[1:])]
    parts = {  # per epoch, the first (startup) excluded
        "training batches": [v - e for e, v in zip(starts, marks["val_start"])][1:],
        "validation": [b - a for a, b in zip(marks["val_start"], marks["val_end"])][1:],
        # the ModelCheckpoint callbacks write at the train epoch end, after every other
        # callback's hook: from our epoch-end mark to the next epoch's start
        "checkpoints (epoch end to the next epoch)": [
            b - a for a, b in zip(marks["epoch_end"], starts[1:])
        ],
    }
    sizes = {p.name: p.stat().st_size for p in sorted((out_dir / "checkpoints").glob("*.ckpt"))}
    return {
        "cpu_periods": [b - a for a, b in zip(cpu_starts, cpu_starts[1:])],
        "parts": parts,
        "startup": starts[0] - t0,
        "periods": periods,
        "last_epoch_to_fit_end": fit_end - starts[-1],
        "after_fit": t_end - fit_end,
        "total": t_end - t0,
        "checkpoints": sizes,
        "test_wf1": metrics["test"]["wf1"],
    }


def compose(overrides: list[str], out_dir: Path, epochs: int):
    from bridging.runs.config import compose as compose_config

    return compose_config(
        "train",
        [
            "experiment=teacher",
            f"paths.output_dir={out_dir}",
            f"trainer.max_epochs={epochs}",
            "trainer.enable_progress_bar=false",
            f"+callbacks.epoch_clock._target_={__name__}.EpochClock",
            *overrides,
        ],
    )


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=5, help="epochs of the timed run (>= 2)")
    p.add_argument("--skip-flops", action="store_true", help="time only (FLOPs not counted)")
    p.add_argument("--gflops", type=float, default=None, help="use this matmul rate")
    p.add_argument(
        "--matmul",
        action="store_true",
        help="also: the encoder layer's 12 products, plain vs row-aligned outputs",
    )
    p.add_argument(
        "--attention",
        action="store_true",
        help="also: grouped attention time for several GROUP_OVERHEAD values",
    )
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error("--epochs must be at least 2 (the first epoch is startup)")
    torch.set_num_threads(args.threads)
    print(f"command: python {shlex.join(sys.argv)}")
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, threads {args.threads}")
    rows = []
    load0 = load_average()
    if args.gflops is None:
        rates = matmul_gflops(args.threads)
        best = max(b for b, _ in rates.values())
        for n, (b, m) in rates.items():
            rows.append(
                (f"(a) float32 matmul {n}^3, best (median)", f"{b:.1f} ({m:.1f})", "GFLOP/s", load0)
            )
        rows.append(
            ("(a) peak used for the limits (best of the above)", f"{best:.1f}", "GFLOP/s", load0)
        )
    else:
        best = args.gflops
        rows.append(("(a) float32 matmul (given)", f"{best:.1f}", "GFLOP/s", "-"))
    if args.matmul:
        load = load_average()
        print(f"\nencoder layer products, 1000 tokens, GFLOP/s (load {load}):")
        print("| product | plain | aligned outputs |\n|---|---|---|")
        for name, plain, aligned in layer_products(args.threads):
            print(f"| {name} | {plain:.1f} | {aligned:.1f} |")
    with tempfile.TemporaryDirectory(prefix="bench_flops_") as tmp:
        out_dir = Path(tmp) / "run"
        cfg = compose(args.overrides, out_dir, args.epochs)
        if args.attention:
            load = load_average()
            times = attention_overheads(cfg, args.threads)
            print(f"\ngrouped attention, one epoch forward + backward (load {load}):")
            print("| GROUP_OVERHEAD | s |\n|---|---|")
            for ov, t in times.items():
                print(f"| {ov:.0f} | {t:.3f} |")
            torch.set_num_threads(args.threads)
        flops = None
        if not args.skip_flops:
            flops = epoch_flops(cfg)
            torch.set_num_threads(args.threads)
            print(
                f"train split: {flops['dialogues']} dialogues, {flops['utterances']} "
                f"utterances, input {flops['input_size']}, padding share of the batches "
                f"{100 * flops['padding_share']:.1f} %"
            )
            for key, what in (("performed", "as performed"), ("padding_free", "padding-free")):
                g = flops[key] / 1e9
                rows.append((f"(b) epoch FLOPs fwd+bwd, {what}", f"{g:.1f}", "GFLOP", "-"))
                rows.append((f"(c) FLOP limit, {what}", f"{g / best:.2f}", "s", "-"))
        load1 = load_average()
        timed = whole_process(cfg, out_dir)
        load2 = load_average()
    periods = timed["periods"]
    epoch = statistics.median(periods)
    load = f"{load1} -> {load2}"
    rows.append(("(d) whole-process epoch, median after the first", f"{epoch:.2f}", "s", load))
    rows.append(("    epoch periods", ", ".join(f"{t:.2f}" for t in periods), "s", load))
    cpu = statistics.median(timed["cpu_periods"])
    rows.append(("    process CPU time per epoch, median", f"{cpu:.2f}", "CPU s", load))
    for name, values in timed["parts"].items():
        rows.append((f"    {name}, median", f"{statistics.median(values):.2f}", "s", load))
    rows.append(("    startup (to the first epoch)", f"{timed['startup']:.2f}", "s", load))
    rows.append(
        ("    last epoch start to fit end", f"{timed['last_epoch_to_fit_end']:.2f}", "s", load)
    )
    rows.append(
        ("    after fit (validate + test best, outputs)", f"{timed['after_fit']:.2f}", "s", load)
    )
    if flops is not None:
        for key, what in (("performed", "as performed"), ("padding_free", "padding-free")):
            limit = flops[key] / 1e9 / best
            rows.append((f"(e) ratio to the limit, {what}", f"{epoch / limit:.2f}", "x", load))
    width = max(len(r[0]) for r in rows)
    print(f"\n| {'what'.ljust(width)} | value | unit | load (1 5 15 min) |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for what, value, unit, ld in rows:
        print(f"| {what.ljust(width)} | {value} | {unit} | {ld} |")
    print(
        "\ncheckpoints left by the finished run: "
        + (", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in timed["checkpoints"].items()) or "none")
    )
    print(f"test wF1 {100 * timed['test_wf1']:.2f} after {args.epochs} epochs")


if __name__ == "__main__":
    main()
