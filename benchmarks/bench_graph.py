"""Graph building time: bridging's tensor version vs. the reference's per-edge Python loop.

Default case of the issue: 32 dialogues of 50 utterances, wp = wf = 5, two speakers.
The reference loop below re-implements the reference COGMEN ``batch_graphify`` /
``edge_perms`` faithfully (a set of (i, j) pairs per dialogue, then one ``torch.tensor`` and
two ``.item()`` calls per edge, relation ids through a dict of string keys).

    .venv/bin/python benchmarks/bench_graph.py [--batch 32] [--length 50] [--wp 5] [--wf 5]
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time

import numpy as np
import torch

from bridging.models.graph import build_graph


def reference_edge_perms(length, window_past, window_future):
    all_perms = set()
    array = np.arange(length)
    for j in range(length):
        perms = set()
        if window_past == -1 and window_future == -1:
            eff_array = array
        elif window_past == -1:
            eff_array = array[: min(length, j + window_future + 1)]
        elif window_future == -1:
            eff_array = array[max(0, j - window_past) :]
        else:
            eff_array = array[max(0, j - window_past) : min(length, j + window_future + 1)]
        for item in eff_array:
            perms.add((j, item))
        all_perms = all_perms.union(perms)
    return list(all_perms)


def reference_batch_graph(lengths, speaker_tensor, wp, wf, edge_type_to_idx, device="cpu"):
    """The reference per-edge loop (edges and types only; node features left out)."""
    edge_index, edge_type = [], []
    batch_size = lengths.size(0)
    length_sum = 0
    edge_ind = []
    for j in range(batch_size):  # the reference computes the perms twice
        edge_ind.append(reference_edge_perms(lengths[j].cpu().item(), wp, wf))
    for j in range(batch_size):
        cur_len = lengths[j].item()
        perms = reference_edge_perms(cur_len, wp, wf)
        perms_rec = [(item[0] + length_sum, item[1] + length_sum) for item in perms]
        length_sum += cur_len
        for item, item_rec in zip(perms, perms_rec):
            edge_index.append(torch.tensor([item_rec[0], item_rec[1]]))
            speaker1 = speaker_tensor[j, item[0]].item()
            speaker2 = speaker_tensor[j, item[1]].item()
            c = "0" if item[0] < item[1] else "1"
            edge_type.append(edge_type_to_idx[str(speaker1) + str(speaker2) + c])
    edge_index = torch.stack(edge_index).t().contiguous().to(device)
    edge_type = torch.tensor(edge_type).long().to(device)
    return edge_index, edge_type


def timeit(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--length", type=int, default=50)
    p.add_argument("--wp", type=int, default=5)
    p.add_argument("--wf", type=int, default=5)
    p.add_argument("--repeats", type=int, default=50)
    p.add_argument("--ref-repeats", type=int, default=7)
    p.add_argument("--threads", type=int, default=2)
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)

    n_speakers = 2
    lengths = torch.full((a.batch,), a.length, dtype=torch.long)
    gen = torch.Generator().manual_seed(0)
    speakers = torch.randint(0, n_speakers, (a.batch, a.length), generator=gen)
    edge_type_to_idx = {}
    for j in range(n_speakers):
        for k in range(n_speakers):
            edge_type_to_idx[f"{j}{k}0"] = len(edge_type_to_idx)
            edge_type_to_idx[f"{j}{k}1"] = len(edge_type_to_idx)

    ours = build_graph(lengths, speakers, a.wp, a.wf, n_speakers)
    ref = reference_batch_graph(lengths, speakers, a.wp, a.wf, edge_type_to_idx)
    same = set(zip(map(tuple, ours[0].t().tolist()), ours[1].tolist())) == set(
        zip(map(tuple, ref[0].t().tolist()), ref[1].tolist())
    )
    if not same:
        raise SystemExit("edge sets differ between the two implementations")

    t_ours, t_ours_min = timeit(
        lambda: build_graph(lengths, speakers, a.wp, a.wf, n_speakers), a.repeats
    )
    t_ref, t_ref_min = timeit(
        lambda: reference_batch_graph(lengths, speakers, a.wp, a.wf, edge_type_to_idx),
        a.ref_repeats,
        warmup=1,
    )
    n_edges = ours[0].shape[1]
    print("$ " + shlex.join([sys.executable.split("/")[-1], *sys.argv]))
    print(
        f"graph building, {a.batch} dialogues x {a.length} utterances, wp={a.wp} wf={a.wf}, "
        f"{n_edges} edges, CPU, {a.threads} threads, torch {torch.__version__}"
    )
    print(f"{'implementation':<34}{'median ms':>11}{'min ms':>9}{'repeats':>9}")
    print(
        f"{'bridging build_graph (tensor ops)':<34}{t_ours * 1e3:>11.3f}{t_ours_min * 1e3:>9.3f}"
        f"{a.repeats:>9}"
    )
    print(
        f"{'reference per-edge Python loop':<34}{t_ref * 1e3:>11.1f}{t_ref_min * 1e3:>9.1f}"
        f"{a.ref_repeats:>9}"
    )
    print(f"speed-up: {t_ref / t_ours:.0f}x; identical edge sets and relation types: {same}")


if __name__ == "__main__":
    main()
