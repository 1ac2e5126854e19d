"""A training run's dir is never replaced by accident (``bridging-train``, before training).

A dir that holds a finished run (its ``metrics.json``) or a killed one (checkpoints but no
``metrics.json``) is refused unless the run resumes from its own checkpoint
(``ckpt_path=last``, or a path inside the dir) or ``overwrite=true`` asks to replace it, in
which case the old run's results are removed first, so that a new run killed early never
leaves the old metrics next to new checkpoints. Fresh dirs (timestamped run dirs, multirun
job dirs) pass untouched.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from bridging.data.records import DataError

#: what a finished training run leaves in its dir (removed by overwrite=true)
RUN_RESULTS = ("metrics.json", "test_predictions.npz", "confusion_matrix.png")
CHECKPOINTS = "checkpoints"


class RunDirError(DataError):
    """A run dir that a new run would replace; the message names it and the options."""


def _resumes_here(ckpt_path, output_dir: Path) -> bool:
    if ckpt_path in (None, "", "null"):
        return False
    if str(ckpt_path) == "last":
        return True
    try:
        return Path(ckpt_path).resolve().is_relative_to(output_dir.resolve())
    except OSError:
        return False


def _checkpoints(output_dir: Path) -> list[str]:
    folder = output_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".ckpt")


def run_dir_problem(output_dir, ckpt_path=None, overwrite: bool = False) -> str | None:
    """Why training into ``output_dir`` would replace a finished or killed run (one line
    naming the dir and the options), or None when it may go ahead."""
    if int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")) or 0) != 0:
        return None  # DDP workers start in the dir their main process checked
    out = Path(output_dir)
    if overwrite or _resumes_here(ckpt_path, out):
        return None
    if (out / "metrics.json").is_file():
        return (
            f"{out}: holds a finished run (metrics.json); refusing to replace it: "
            "ckpt_path=last resumes or extends it, overwrite=true replaces it deliberately, "
            "or train into another hydra.run.dir"
        )
    ckpts = _checkpoints(out)
    if ckpts:
        return (
            f"{out}: holds the checkpoints of an unfinished run ({', '.join(ckpts)}) and no "
            "metrics.json; refusing to throw them away: ckpt_path=last resumes it, "
            "overwrite=true starts it again deliberately"
        )
    return None


def check_run_dir(output_dir, ckpt_path=None, overwrite: bool = False) -> None:
    """Refuse (a RunDirError) to train into ``output_dir`` when that would replace a finished
    or killed run (see the module doc); with ``overwrite`` remove the old run's results."""
    problem = run_dir_problem(output_dir, ckpt_path, overwrite)
    if problem:
        raise RunDirError(problem)
    out = Path(output_dir)
    if overwrite and not _resumes_here(ckpt_path, out):
        if int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")) or 0) != 0:
            return
        for name in RUN_RESULTS:
            (out / name).unlink(missing_ok=True)
        shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - Hydra is a dependency
    _HydraCallback = object


class RunDirGuard(_HydraCallback):
    """Hydra callback (``hydra.callbacks`` of conf/train.yaml) for a single run: when the run
    dir would be refused (:func:`run_dir_problem`), Hydra is told not to write its ``.hydra/``
    record there (it would replace the finished run's); the task then refuses the run
    (Hydra turns a callback's exceptions into warnings, so the refusal itself is the task's)."""

    def on_run_start(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf, open_dict, read_write

        try:
            out = OmegaConf.select(config, "hydra.run.dir", throw_on_missing=True)
            problem = out and run_dir_problem(
                os.path.abspath(str(out)),
                config.get("ckpt_path"),
                bool(config.get("overwrite", False)),
            )
        except Exception:  # noqa: BLE001 - unresolvable here: the task checks it
            return
        if problem:
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.output_subdir = None


__all__ = ["RunDirError", "RunDirGuard", "check_run_dir", "run_dir_problem", "RUN_RESULTS"]
