"""Resuming a killed run gives the same result as an uninterrupted one."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from bridging.runs.experiment import train
from conftest import TINY


class CrashAfter(pl.Callback):
    """Kills training (an exception) once ``steps`` optimiser steps are done."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, *args, **kwargs):
        if trainer.global_step >= self.steps:
            raise RuntimeError("simulated kill")


def test_resume_after_kill_matches_uninterrupted(compose_cfg, tmp_path):
    # keep_checkpoints=full: the finished runs keep last.ckpt, compared below
    common = [*TINY, "trainer.max_epochs=4", "model.drop_rate=0.3", "keep_checkpoints=full"]
    full = train(compose_cfg(common, output_dir=tmp_path / "full"))
    steps_per_epoch = full["data"]["splits"]["train"]["dialogues"] // 4 + (
        full["data"]["splits"]["train"]["dialogues"] % 4 > 0
    )
    killed = tmp_path / "killed"
    crash = [
        f"+callbacks.crash._target_={__name__}.CrashAfter",
        f"+callbacks.crash.steps={2 * steps_per_epoch + 1}",
    ]
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(compose_cfg([*common, *crash], output_dir=killed))
    last = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 1  # the kill came in the third epoch
    # what resuming needs is there while the run is alive: the full training state
    assert {"optimizer_states", "lr_schedulers", "callbacks", "bridging_rng"} <= set(last)
    assert sum(k.startswith("ModelCheckpoint") for k in last["callbacks"]) == 2  # best, last
    best = torch.load(killed / "checkpoints" / "best.ckpt", weights_only=True)
    assert "optimizer_states" not in best and "callbacks" not in best
    assert not (killed / "metrics.json").exists()  # a failed run writes no results
    resumed = train(compose_cfg([*common, "ckpt_path=last"], output_dir=killed))
    assert resumed["test"] == full["test"]
    assert resumed["dev"] == full["dev"]
    assert resumed["best_epoch"] == full["best_epoch"]
    for name in ("last.ckpt", "best.ckpt"):
        a = torch.load(tmp_path / "full" / "checkpoints" / name, weights_only=True)
        b = torch.load(killed / "checkpoints" / name, weights_only=True)
        assert a["epoch"] == b["epoch"]
        for k, v in a["state_dict"].items():
            torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=0)
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    state_a = a["optimizer_states"][0]["state"]
    state_b = b["optimizer_states"][0]["state"]
    assert state_a.keys() == state_b.keys()
    for i in state_a:
        for k, v in state_a[i].items():
            torch.testing.assert_close(state_b[i][k], v, rtol=0, atol=0)
    for k, cb in a["callbacks"].items():
        if k.startswith("ModelCheckpoint"):
            assert b["callbacks"][k]["best_model_score"] == cb["best_model_score"]


def test_resume_with_the_default_keep_removes_last_at_the_end(compose_cfg, tmp_path):
    """A killed run keeps last.ckpt (full state); once the resumed run finishes, only the
    weights-only best.ckpt remains."""
    common = [*TINY, "trainer.max_epochs=3"]
    crash = [f"+callbacks.crash._target_={__name__}.CrashAfter", "+callbacks.crash.steps=5"]
    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(compose_cfg([*common, *crash], output_dir=out))
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt", "last.ckpt"]
    metrics = train(compose_cfg([*common, "ckpt_path=last"], output_dir=out))
    assert metrics["epochs_run"] == 3
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["best.ckpt"]
    assert metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    with pytest.raises(FileNotFoundError, match="keep_checkpoints=full"):
        train(compose_cfg([*common, "ckpt_path=last"], output_dir=out))


def test_resume_needs_an_existing_checkpoint(compose_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="ckpt_path=last"):
        train(compose_cfg([*TINY, "ckpt_path=last"], output_dir=tmp_path / "new"))
