"""Memory of one long dialogue: the peak resident memory of a real training step (forward
and backward) or evaluation of COGMEN over one dialogue of n utterances, against the
estimate bridging checks before a run (COGMEN.memory_bytes, bridging.runs.memory).

Each case runs in a fresh process; the figure is its peak resident set above the peak
before the step (VmHWM), so the model and the interpreter are not counted. Memory does
not depend on the machine's load.

    python benchmarks/bench_long_dialogues.py            # the cases of BENCHMARKS.md
    python benchmarks/bench_long_dialogues.py --quick    # the three smallest
"""

from __future__ import annotations

import argparse
import subprocess
import sys

MEASURE = """
import sys, torch
from bridging.models.cogmen import COGMEN

def hwm():  # this process's peak resident memory (ru_maxrss would start at its parent's)
    with open("/proc/self/status") as fh:
        return next(int(ln.split()[1]) for ln in fh if ln.startswith("VmHWM:"))

n, rnn, layers, heads, w, train = sys.argv[1:7]
n, layers, heads, w, train = int(n), int(layers), int(heads), int(w), train == "1"
torch.manual_seed(0)
m = COGMEN(612, 4, rnn=rnn, seqcontext_nlayer=layers, gnn_nheads=heads, wp=w, wf=w,
           drop_rate=0.1)
x, lengths, spk = torch.randn(1, n, 612), torch.tensor([n]), torch.randint(0, 2, (1, n))
base = hwm()
m.train(train)
with torch.set_grad_enabled(train):
    out = m(x, lengths, spk)
    if train:
        out.log_probs.sum().backward()
peak = hwm()
print((peak - base) * 1024, m.memory_bytes(n, train))
"""

#: (n, sequence context, layers, GNN heads, window, training); a+v input (612 wide, 9 heads)
CASES = [
    (2000, "transformer", 1, 1, 5, True),
    (2000, "transformer", 1, 1, 5, False),
    (600, "lstm", 1, 1, -1, True),
    (4000, "transformer", 1, 7, 5, True),
    (4000, "transformer", 2, 7, 5, True),
    (4000, "transformer", 1, 7, 5, False),
    (3000, "lstm", 1, 1, -1, True),
    (3000, "lstm", 1, 1, -1, False),
    (2000, "lstm", 1, 3, -1, False),
]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="the three smallest cases")
    args = p.parse_args(argv)
    cases = CASES[:3] if args.quick else CASES
    print("| n | context | layers | GNN heads | window | step | measured | estimate | ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for n, rnn, layers, heads, w, train in cases:
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(n), rnn, str(layers), str(heads), str(w)]
            + ["1" if train else "0"],
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            print(f"| {n} | {rnn} | ... failed: {done.stderr.strip().splitlines()[-1]} |")
            continue
        measured, estimate = map(int, done.stdout.split())
        gib = 1024**3
        print(
            f"| {n} | {rnn} | {layers} | {heads} | {'unbounded' if w < 0 else w} | "
            f"{'train' if train else 'eval'} | {measured / gib:.2f} GiB | "
            f"{estimate / gib:.2f} GiB | {estimate / measured:.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
