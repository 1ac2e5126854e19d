"""bridging-eval and bridging-predict as users run them (real Hydra apps)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import TINY

BIN = Path(sys.executable).parent


def run(*args, timeout=300):
    res = subprocess.run(
        [str(BIN / args[0]), *args[1:]], capture_output=True, text=True, timeout=timeout
    )
    assert res.returncode == 0, res.stderr[-3000:]
    return res.stdout


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    run("bridging-train", *TINY, "trainer.max_epochs=1", f"hydra.run.dir={out}")
    return out


def test_eval_and_predict_commands(trained, tmp_path):
    ckpt = trained / "checkpoints" / "best.ckpt"
    out = run(
        "bridging-eval",
        f"ckpt_path={ckpt}",
        "eval.modalities=[a]",
        f"hydra.run.dir={tmp_path}/eval",
    )
    assert "evaluated on a, test split: weighted F1" in out
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["eval_modalities"] == ["a"] and metrics["modalities"] == ["a", "v"]
    assert (tmp_path / "eval" / "confusion_matrix.png").exists()
    preds = tmp_path / "preds.csv"
    run(
        "bridging-predict",
        f"ckpt_path={ckpt}",
        f"output={preds}",
        "split=dev",
        "batch_size=2",
        f"hydra.run.dir={tmp_path}/pred",
    )
    rows = list(csv.DictReader(preds.open()))
    train_metrics = json.loads((trained / "metrics.json").read_text())
    assert len(rows) == train_metrics["data"]["splits"]["dev"]["utterances"]
