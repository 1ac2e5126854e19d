"""W&B (offline) per multirun job, grouped; launcher configs compose."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


def test_wandb_mode_resolution(monkeypatch):
    from bridging.runs.tracking import wandb_mode

    monkeypatch.delenv("WANDB_MODE", raising=False)
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    assert wandb_mode("auto") == "offline"
    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    assert wandb_mode("auto") == "online"
    assert wandb_mode("offline") == "offline"
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert wandb_mode("auto") == "offline"
    with pytest.raises(ValueError, match="logger.wandb.mode='sometimes'"):
        wandb_mode("sometimes")


def test_multirun_with_wandb_leaves_one_offline_run_per_job_in_one_group(tmp_path):
    exe = Path(sys.executable).parent / "bridging-train"
    sweep = tmp_path / "sweep"
    res = subprocess.run(
        [
            str(exe),
            "-m",
            "debug=tiny",
            "logger=wandb",
            "trainer.max_epochs=1",
            "seed=0,1",
            "logger.wandb.log_checkpoint=true",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "WANDB_MODE": "offline"},
    )
    assert res.returncode == 0, res.stderr[-4000:]
    records = [json.loads((sweep / str(j) / "wandb_run.json").read_text()) for j in (0, 1)]
    assert records[0]["id"] != records[1]["id"]  # never merged into one run
    assert records[0]["group"] == records[1]["group"] == f"train-{sweep.name}"
    for j, rec in enumerate(records):
        assert rec["mode"] == "offline"
        runs = list((sweep / str(j) / "wandb").glob(f"offline-run-*-{rec['id']}"))
        assert len(runs) == 1 and any(runs[0].glob("*.wandb"))
        assert (sweep / str(j) / "metrics.json").exists()


@pytest.mark.parametrize(
    "launcher, target",
    [
        ("joblib", "JoblibLauncher"),
        ("submitit_slurm", "SlurmLauncher"),
        ("submitit_local", "LocalLauncher"),
    ],
)
def test_launcher_configs_compose(launcher, target):
    from bridging.runs.config import compose

    cfg = compose(
        "train",
        [f"hydra/launcher={launcher}", "experiment=student_kd", "sweep=kd_grid"],
        return_hydra_config=True,
    )
    assert cfg.hydra.launcher._target_.endswith(target)
    assert cfg.hydra.sweeper.params["recipe.kd.temperature"] == "1,2,4,8"


def test_optuna_search_maximises_the_returned_dev_metric(tmp_path):
    """Two Optuna trials over the masking policy; the sweeper's best value is a dev wF1."""
    import yaml

    exe = Path(sys.executable).parent / "bridging-train"
    sweep = tmp_path / "optuna"
    res = subprocess.run(
        [
            str(exe),
            "-m",
            "experiment=masked",
            "hparams_search=mask_optuna",
            "debug=tiny",
            "logger=none",
            "trainer.max_epochs=1",
            "hydra.sweeper.n_trials=2",
            f"hydra.sweep.dir={sweep}",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    best = yaml.safe_load((sweep / "optimization_results.yaml").read_text())
    devs = [json.loads((sweep / str(j) / "metrics.json").read_text())["dev"]["wf1"] for j in (0, 1)]
    assert best["best_value"] == pytest.approx(max(devs))
