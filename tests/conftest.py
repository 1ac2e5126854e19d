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
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    from bridging.paths import conf_dir

    def _compose(overrides=(), config_name="train", output_dir=None):
        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=conf_dir(), version_base="1.3"):
            out = output_dir or tmp_path / "run"
            return compose(
                config_name=config_name,
                overrides=[f"paths.output_dir={out}", *overrides],
            )

    yield _compose
    GlobalHydra.instance().clear()


TINY = ["debug=tiny", "logger=none"]


@pytest.fixture(autouse=True)
def _one_thread():
    """Tests run single-threaded: faster on the small CI machine, and deterministic."""
    import torch

    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
