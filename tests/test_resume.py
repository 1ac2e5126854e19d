"""Resuming a killed run gives the same result as an uninterrupted one."""

from __future__ import annotations

import pytest
import pytorch_lightning as pl
import torch

from bridging.training import train
from conftest import TINY


class CrashAfter(pl.Callback):
    """Kills training (an exception) once ``steps`` optimiser steps are done."""

    def __init__(self, steps: int):
        self.steps = steps

    def on_train_batch_end(self, trainer, *args, **kwargs):
        if trainer.global_step >= self.steps:
            raise RuntimeError("simulated kill")


def test_resume_after_kill_matches_uninterrupted(compose_cfg, tmp_path):
    common = [*TINY, "trainer.max_epochs=4", "model.drop_rate=0.3"]
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
    assert not (killed / "metrics.json").exists()  # a failed run writes no results
    resumed = train(compose_cfg([*common, "ckpt_path=last"], output_dir=killed))
    assert resumed["test"] == full["test"]
    assert resumed["dev"] == full["dev"]
    assert resumed["best_epoch"] == full["best_epoch"]
    a = torch.load(tmp_path / "full" / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(killed / "checkpoints" / "last.ckpt", weights_only=True)
    for k, v in a["state_dict"].items():
        torch.testing.assert_close(b["state_dict"][k], v, rtol=0, atol=0)


def test_resume_needs_an_existing_checkpoint(compose_cfg, tmp_path):
    with pytest.raises(FileNotFoundError, match="ckpt_path=last"):
        train(compose_cfg([*TINY, "ckpt_path=last"], output_dir=tmp_path / "new"))
