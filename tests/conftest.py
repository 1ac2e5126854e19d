"""Shared fixtures: tiny Hydra configs (compose API) on tiny synthetic data in tmp dirs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


@pytest.fixture
def compose_cfg(tmp_path):
    """compose_cfg(config_name="train", overrides=[...]) -> DictConfig, outputs in tmp_path."""
    from bridging.runs.config import compose

    def _compose(overrides=(), config_name="train", output_dir=None):
        out = output_dir or tmp_path / "run"
        return compose(config_name, [f"paths.output_dir={out}", *overrides])

    return _compose


TINY = ["debug=tiny", "logger=none"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run single-threaded: faster on the small CI machine, and deterministic."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
