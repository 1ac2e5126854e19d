"""Shared fixtures: tiny Hydra configs (compose API) on tiny synthetic data in tmp dirs."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")


def pytest_configure(config):
    """One temporary folder for the whole session (TMPDIR, inherited by the xdist workers and
    every command the tests start), removed at the end: PyTorch Geometric writes a module
    file per conv class and process into the temporary folder and never deletes it."""
    import tempfile

    if hasattr(config, "workerinput"):  # an xdist worker: the controller's folder
        return
    config._bridging_tmp = tempfile.mkdtemp(prefix="bridging-tests-")
    os.environ["TMPDIR"] = config._bridging_tmp
    tempfile.tempdir = None  # read TMPDIR again


def pytest_unconfigure(config):
    import shutil

    folder = getattr(config, "_bridging_tmp", None)
    if folder:
        shutil.rmtree(folder, ignore_errors=True)


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
