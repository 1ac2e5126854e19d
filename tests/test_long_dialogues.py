"""Dialogues too long for the machine (issue 21): refused before any work, in one line
naming the data, the dialogue, its length, the memory it needs and the memory free; the
estimate (COGMEN.memory_bytes) agrees with the memory a real training step takes."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest
import torch

from bridging.data.formats.native import write_native
from bridging.models.cogmen import COGMEN
from bridging.models.graph import window_edge_count, window_edges
from test_hostile_input import small

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
TINY = ["debug=tiny", "logger=none"]


def with_long_dialogue(n: int, sizes=None):
    """A small 4-way corpus whose first training dialogue is stretched to ``n`` utterances
    (its rows repeated)."""
    c = small("iemocap_4", n=16, feature_sizes=sizes or {"a": 6, "v": 4})
    d = c.splits["train"][0]

    def tile(x):
        if x is None:
            return None
        if isinstance(x, list):
            return (x * (n // len(x) + 1))[:n]
        x = np.asarray(x)
        return np.concatenate([x] * (n // len(x) + 1))[:n]

    long = replace(
        d,
        speakers=tile(d.speakers),
        labels=tile(d.labels),
        sentences=tile(d.sentences),
        latent=tile(d.latent),
        features={m: tile(x) for m, x in d.features.items()},
        other_labels={k: tile(v) for k, v in (d.other_labels or {}).items()} or d.other_labels,
    )
    c.splits["train"][0] = long
    return c, long.id


@pytest.mark.parametrize("n", [1, 2, 7, 40])
@pytest.mark.parametrize("wp, wf", [(-1, -1), (0, 0), (5, 5), (3, -1), (60, 2)])
def test_window_edge_count_is_what_window_edges_builds(n, wp, wf):
    assert window_edge_count(n, wp, wf) == window_edges(torch.tensor([n]), wp, wf).shape[1]


def test_the_estimate_grows_with_the_square_of_the_length_and_the_layers():
    one = COGMEN(612, 4, seqcontext_nlayer=1, gnn_nheads=1)
    four = COGMEN(612, 4, seqcontext_nlayer=4, gnn_nheads=1)
    lstm = COGMEN(612, 4, rnn="lstm", seqcontext_nlayer=4, gnn_nheads=1)
    a, b = one.memory_bytes(5000), one.memory_bytes(10000)
    assert 3.6 < b / a < 4.0  # n^2 dominates; the per-utterance part is linear
    assert four.memory_bytes(10000) > 3 * b  # 3 more matrices per layer
    assert one.memory_bytes(10000, training=False) < b / 3
    assert lstm.memory_bytes(10000) < 0.02 * b  # only the window's edges
    unbounded = COGMEN(612, 4, rnn="lstm", wp=-1, wf=-1, gnn_nheads=1)
    assert unbounded.memory_bytes(3000) == 4 * 6 * 100 * 3000**2


def _bench_script() -> str:
    """The measuring script of benchmarks/bench_long_dialogues.py (its MEASURE)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_long_dialogues.py"
    spec = importlib.util.spec_from_file_location("bench_long_dialogues", path)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.MEASURE


@pytest.mark.parametrize(
    "n, rnn, w, train",
    [(2000, "transformer", 5, "1"), (600, "lstm", -1, "1"), (600, "lstm", -1, "0")],
)
def test_the_estimate_is_within_a_third_of_the_measured_peak(n, rnn, w, train):
    """A real training step (forward and backward) or evaluation of one long dialogue in a
    fresh process: its peak resident memory above the start against the estimate."""
    done = subprocess.run(
        # one sequence-context layer, one GNN head
        [sys.executable, "-c", _bench_script(), str(n), rnn, "1", "1", str(w), train],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    measured, estimate = map(int, done.stdout.split())
    assert 0.75 < estimate / measured < 1.33, (measured, estimate)


def test_a_dialogue_no_machine_holds_is_refused_before_training(tmp_path):
    """60,000 utterances: about 550 GiB for a one-layer transformer's training step. The
    refusal names the data, the dialogue and the memory, and the run leaves nothing."""
    corpus, long_id = with_long_dialogue(60_000)
    data = write_native(corpus, tmp_path / "long")
    run = tmp_path / "run"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "bridging.cli.train",
            *TINY,
            "data=iemocap",
            f"data.path={data}",
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert done.returncode == 2, done.stderr
    lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"bridging-train: error: {data}: dialogue {long_id!r} of split ")
    assert "(60000 utterances): a training step on it needs about " in lines[0]
    need = float(lines[0].split("needs about ")[1].split(" GiB")[0])
    assert need > 400  # GiB: 4 matrices of 10 heads x 60,000^2 floats
    assert "split it into shorter dialogues" in lines[0]
    assert "model.rnn=lstm" in lines[0]
    assert not run.exists()


def test_eval_and_predict_refuse_a_dialogue_the_free_memory_cannot_hold(
    tmp_path, monkeypatch, capsys
):
    """On a machine stated to have 64 MiB free (BRIDGING_MEMORY_BYTES): a 3,000-utterance
    dialogue is refused by bridging-eval and bridging-predict, which write nothing; with
    the memory free the same evaluation runs."""
    from bridging.cli.eval import main as eval_main
    from bridging.cli.predict import main as predict_main
    from bridging.cli.train import main as train_main
    from test_hostile_input import cli, err_lines

    short = write_native(small("iemocap_4", n=16, feature_sizes={"a": 6, "v": 4}), tmp_path / "s")
    corpus, long_id = with_long_dialogue(3000)
    data = write_native(corpus, tmp_path / "long")
    run = tmp_path / "run"
    assert cli(train_main, *TINY, "data=iemocap", f"data.path={short}", f"hydra.run.dir={run}") == 0
    capsys.readouterr()
    ckpt = run / "checkpoints" / "best.ckpt"
    monkeypatch.setenv("BRIDGING_MEMORY_BYTES", str(64 * 1024**2))
    common = [f"ckpt_path={ckpt}", "data=iemocap", f"data.path={data}", "split=train"]
    out = tmp_path / "p.csv"
    for main, extra in ((eval_main, []), (predict_main, [f"output={out}"])):
        assert cli(main, *common, *extra) == 2
        (line,) = err_lines(capsys)
        assert f"{data}: dialogue {long_id!r} of split 'train' (3000 utterances): " in line
        assert "evaluating it needs about " in line and "64.0 MiB" not in line
        assert "0.1 GiB free on cpu" in line
    assert not out.exists()
    monkeypatch.setenv("BRIDGING_MEMORY_BYTES", str(24 * 1024**3))  # the machines' 24 GiB
    assert cli(predict_main, *common, f"output={out}") == 0
    assert len(out.read_text().splitlines()) > 3000


def _write(path, text):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    "meminfo, limit, current, want",
    [
        ("MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n", "max", "0", 20000000 * 1024),
        ("MemTotal: 24000000 kB\nMemAvailable: 20000000 kB\n", "8589934592", "1073741824",
         7 * 1024**3),
        ("MemTotal: 24000000 kB\nMemAvailable: 1000 kB\n", "8589934592", "0", 1000 * 1024),
        ("MemTotal: 24000000 kB\n", "8589934592", "0", 8 * 1024**3),
        (None, None, None, None),
    ],
)  # fmt: skip
def test_free_memory_is_read_from_linux_files(tmp_path, monkeypatch, meminfo, limit, current, want):
    """MemAvailable within the cgroup's room (memory.max - memory.current), either alone
    where the other is missing, None where neither can be read: from files the test writes,
    whatever the host has."""
    from bridging.runs import memory

    monkeypatch.delenv("BRIDGING_MEMORY_BYTES", raising=False)
    root = tmp_path / "cgroup"
    monkeypatch.setattr(memory, "MEMINFO", str(tmp_path / "meminfo"))
    monkeypatch.setattr(memory, "CGROUP_SELF", str(tmp_path / "self_cgroup"))
    monkeypatch.setattr(memory, "CGROUP_ROOT", str(root))
    if meminfo is not None:
        _write(tmp_path / "meminfo", meminfo)
    if limit is not None:
        _write(tmp_path / "self_cgroup", "0::/user.slice/session-1.scope\n")
        _write(root / "user.slice/session-1.scope/memory.max", limit + "\n")
        _write(root / "user.slice/session-1.scope/memory.current", current + "\n")
    assert memory.available_bytes("cpu") == want
    monkeypatch.setenv("BRIDGING_MEMORY_BYTES", "12345")
    assert memory.available_bytes("cpu") == 12345  # stated, not read


def test_the_suite_states_the_free_memory():
    """Every test (and every command a test starts) sees the same free memory, whatever the
    host has: the long-dialogue decisions do not depend on the machine."""
    from bridging.runs.memory import available_bytes

    assert os.environ["BRIDGING_MEMORY_BYTES"] == str(24 * 1024**3)
    assert available_bytes("cpu") == 24 * 1024**3
    assert ENV["BRIDGING_MEMORY_BYTES"] == str(24 * 1024**3)
