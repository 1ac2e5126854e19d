"""Shared fixtures: tiny Hydra configs (compose API) on tiny synthetic data in tmp dirs.

What the suite assumes of the host, and how each assumption is made explicit (issue 27):

- the CPU (ISA, AMX/AVX512-BF16, MKL's vendor paths): no test reads the host's CPU; the
  precision code is tested with every probe answer patched (test_precision.py); results
  are compared between two computations on the same host, never against numbers from
  another machine; float32 comparisons use tolerances or float64 where rounding order
  differs between kernels;
- threads: one torch thread per test (``_one_thread``), ``OMP_NUM_THREADS=1`` in the
  Makefile and in the commands tests start; ``os.cpu_count`` is patched to the project
  machines' 2 where a test runs ``bridging-reproduce --jobs 2`` in-process; the two that
  start it as a process skip on a one-core host, saying so;
- memory: ``BRIDGING_MEMORY_BYTES`` states 24 GiB (the project machines') for every test
  and every command they start, so the long-dialogue checks decide the same everywhere;
  reading /proc/meminfo and the cgroup is tested on files the test writes;
- time: no test asserts a duration (speeds are in benchmarks/ and BENCHMARKS.md); waits
  for processes have generous deadlines;
- Linux: /proc (process listings, VmHWM), glibc for the allocator tests and a private
  mount namespace for the disk-full tests (each skips elsewhere with its reason).
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
#: the free memory the memory check sees: the project machines' 24 GiB, not the host's
STATED_MEMORY = str(24 * 1024**3)
os.environ.setdefault("BRIDGING_MEMORY_BYTES", STATED_MEMORY)


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
