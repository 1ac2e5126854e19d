"""Training-epoch time of COGMEN at IEMOCAP 4-way scale, and where the time goes.

The paper's teacher: av input (612 features), L = 4 encoder layers, H = 7 GNN heads,
wp = wf = 5, dropout 0.1, batch 32 dialogues, 2 CPU threads. An epoch is 108 training
dialogues (~3,160 utterances, ~29 per dialogue like IEMOCAP 4-way), shuffled, each batch:
forward, NLL, backward, Adam step. Synthetic features (timing does not depend on values).

    .venv/bin/python benchmarks/bench_forward.py [--epochs 3] [--pad-mode mask|reference|both]

Wall time is what matters; "CPU s/epoch" (process CPU time) is printed too because on a
shared machine the wall time of 2 threads is inflated by other processes, while CPU time with
--threads 1 stays close to the wall time the epoch takes on an idle core.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import time

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile, record_function

import bridging.models.cogmen as cogmen_module
from bridging.models.cogmen import COGMEN


def iemocap_like_lengths(n_dialogues: int, n_utterances: int, seed: int) -> np.ndarray:
    """Dialogue lengths with IEMOCAP-4-way-like spread (gamma, 3..90) summing to n_utterances."""
    rng = np.random.default_rng(seed)
    raw = rng.gamma(shape=3.0, scale=n_utterances / n_dialogues / 3.0, size=n_dialogues)
    lengths = np.clip(np.round(raw * n_utterances / raw.sum()), 3, 90).astype(int)
    i = 0
    while lengths.sum() != n_utterances:  # fix rounding, a few steps
        step = 1 if lengths.sum() < n_utterances else -1
        j = i % n_dialogues
        if 3 <= lengths[j] + step <= 90:
            lengths[j] += step
        i += 1
    return lengths


def make_dataset(lengths, d, n_classes, seed):
    gen = torch.Generator().manual_seed(seed)
    dialogues = []
    for n in lengths:
        x = torch.randn(int(n), d, generator=gen)
        spk = torch.randint(0, 2, (int(n),), generator=gen)
        y = torch.randint(0, n_classes, (int(n),), generator=gen)
        dialogues.append((x, spk, y))
    return dialogues


def collate(items):
    lengths = torch.tensor([x.shape[0] for x, _, _ in items])
    t, d = int(lengths.max()), items[0][0].shape[1]
    x = torch.zeros(len(items), t, d)
    spk = torch.zeros(len(items), t, dtype=torch.long)
    for i, (xi, si, _) in enumerate(items):
        x[i, : len(xi)] = xi
        spk[i, : len(si)] = si
    labels = torch.cat([y for _, _, y in items])
    return x, lengths, spk, labels


def run_epoch(model, opt, dataset, batch_size, rng):
    model.train()
    order = rng.permutation(len(dataset))
    total = 0.0
    for start in range(0, len(order), batch_size):
        x, lengths, spk, labels = collate([dataset[i] for i in order[start : start + batch_size]])
        with record_function("## forward"):
            out = model(x, lengths, spk)
            loss = model.loss(out, labels)
        opt.zero_grad(set_to_none=True)
        with record_function("## backward"):
            loss.backward()
        with record_function("## optimizer step"):
            opt.step()
        total += float(loss.detach())
    return total


def label_components(model):
    """Wrap submodules' forward (and graph building) in profiler labels, for the breakdown."""

    def wrap(obj, attr, label):
        orig = getattr(obj, attr)

        def wrapped(*args, **kwargs):
            with record_function(label):
                return orig(*args, **kwargs)

        setattr(obj, attr, wrapped)

    wrap(model.rnn, "forward", "# fwd: sequence context")
    if model.gcn is not None:
        wrap(model.gcn.conv1, "forward", "# fwd: RGCNConv")
        wrap(model.gcn.conv2, "forward", "# fwd: TransformerConv")
        wrap(model.gcn.bn, "forward", "# fwd: BatchNorm")
    wrap(model.clf, "forward", "# fwd: classifier")
    wrap(cogmen_module, "build_graph", "# fwd: graph building")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--dialogues", type=int, default=108)
    p.add_argument("--utterances", type=int, default=3160)
    p.add_argument("--input-size", type=int, default=612)
    p.add_argument("--layers", type=int, default=4)
    p.add_argument("--heads", type=int, default=7)
    p.add_argument("--classes", type=int, default=4)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--epochs", type=int, default=3, help="timed epochs (after one warm-up)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--pad-mode", default="both", choices=["mask", "reference", "both"])
    p.add_argument("--rnn", default="transformer", choices=["transformer", "lstm", "gru"])
    p.add_argument("--no-profile", action="store_true")
    p.add_argument(
        "--adam",
        default="default",
        choices=["default", "foreach", "fused"],
        help="torch.optim.Adam implementation (default: torch's choice for CPU)",
    )
    p.add_argument("--seed", type=int, default=24)
    a = p.parse_args(argv)

    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    lengths = iemocap_like_lengths(a.dialogues, a.utterances, a.seed)
    dataset = make_dataset(lengths, a.input_size, a.classes, a.seed)
    print("$ " + shlex.join([sys.executable.split("/")[-1], *sys.argv]))
    print(
        f"COGMEN {a.rnn}: input {a.input_size}, L {a.layers}, H {a.heads}, wp=wf=5, "
        f"batch {a.batch}, {a.threads} threads, Adam {a.adam}, torch {torch.__version__}, CPU"
    )
    print(
        f"epoch: {len(lengths)} dialogues, {lengths.sum()} utterances (mean {lengths.mean():.1f}, "
        f"max {lengths.max()}), {int(np.ceil(len(lengths) / a.batch))} batches; "
        f"load average before: {os.getloadavg()[0]:.2f}"
    )
    modes = ["mask", "reference"] if a.pad_mode == "both" else [a.pad_mode]
    print(
        f"{'pad_mode':<11}{'median s/epoch':>15}{'min':>8}{'max':>8}{'CPU s/epoch':>13}"
        f"{'epochs':>8}"
    )
    models = {}
    for mode in modes:
        model = COGMEN(
            a.input_size,
            a.classes,
            rnn=a.rnn,
            seqcontext_nlayer=a.layers,
            gnn_nheads=a.heads,
            drop_rate=0.1,
            pad_mode=mode,
        )
        impl = {"default": {}, "foreach": {"foreach": True}, "fused": {"fused": True}}[a.adam]
        opt = torch.optim.Adam(model.parameters(), lr=1e-4, weight_decay=1e-8, **impl)
        rng = np.random.default_rng(a.seed)
        run_epoch(model, opt, dataset, a.batch, rng)  # warm-up
        times, cpu = [], []
        for _ in range(a.epochs):
            t0, c0 = time.perf_counter(), time.process_time()
            run_epoch(model, opt, dataset, a.batch, rng)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(
            f"{mode:<11}{statistics.median(times):>15.2f}{min(times):>8.2f}{max(times):>8.2f}"
            f"{statistics.median(cpu):>13.2f}{a.epochs:>8}"
        )
        models[mode] = (model, opt)

    load = os.getloadavg()[0]
    print(f"load average after: {load:.2f} (on {os.cpu_count()} CPUs)")
    if load > 0.5:
        print("WARNING: other processes were running: timings are inflated")
    if a.no_profile:
        return
    mode = modes[0]
    model, opt = models[mode]
    label_components(model)
    rng = np.random.default_rng(a.seed + 1)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        run_epoch(model, opt, dataset, a.batch, rng)
    events = prof.key_averages()
    total_us = sum(e.self_cpu_time_total for e in events)
    print(f"\nprofile of one epoch (pad_mode={mode}); CPU time by component (inclusive):")
    rows = sorted((e for e in events if e.key.startswith("#")), key=lambda e: -e.cpu_time_total)
    for e in rows:
        share = 100 * e.cpu_time_total / total_us
        print(f"  {e.key:<28}{e.cpu_time_total / 1e3:>10.1f} ms {share:>6.1f} %")
    print(f"  {'total profiled':<28}{total_us / 1e3:>10.1f} ms")
    print("\ntop operators by self CPU time:")
    table = events.table(sort_by="self_cpu_time_total", row_limit=15, max_name_column_width=45)
    print(table)


if __name__ == "__main__":
    main()
