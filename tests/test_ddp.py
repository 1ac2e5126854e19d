"""Two-process DDP on CPU (gloo): metrics are synchronised and match a single-process evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridging.runs.evaluate import evaluate


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    exe = Path(sys.executable).parent / "bridging-train"
    run = tmp_path / "ddp"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [
            str(exe),
            "data=tiny",
            "trainer=ddp",
            "trainer.accelerator=cpu",
            "trainer.devices=2",
            "trainer.max_epochs=2",
            "trainer.enable_progress_bar=false",
            "logger=none",
            "model.seqcontext_nlayer=1",
            "data.eval_batch_size=2",
            f"hydra.run.dir={run}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    assert res.stdout.count("test weighted F1") == 1  # one process reports
    metrics = json.loads((run / "metrics.json").read_text())
    n_test = metrics["data"]["splits"]["test"]["utterances"]
    # the test split (4 dialogues) divides evenly between 2 processes: no padded duplicates,
    # so the synchronised confusion matrix covers every test utterance exactly once
    assert sum(map(sum, metrics["test"]["confusion"])) == n_test
    single = evaluate(run / "checkpoints" / "best.ckpt")
    assert single["test"]["confusion"] == metrics["test"]["confusion"]
    assert single["test"]["wf1"] == pytest.approx(metrics["test"]["wf1"], abs=1e-6)
