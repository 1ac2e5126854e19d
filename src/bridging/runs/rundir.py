"""A training run's dir is never replaced by accident (``bridging-train``, before training).

A dir that holds a finished run (its ``metrics.json``) or a killed one (checkpoints but no
``metrics.json``) is refused unless the run resumes from its own checkpoint
(``ckpt_path=last``, or a path inside the dir) or ``overwrite=true`` asks to replace it, in
which case the old run's results are removed once the new run's checks pass (before it
trains), so that a new run killed early never leaves the old metrics next to new
checkpoints. Fresh dirs (timestamped run dirs, multirun job dirs) pass untouched.

One run dir, one live run: a training holds an exclusive lock (``fcntl.flock`` on the dir's
``.bridging.lock``) for its life, and a second training into the same dir is refused. A run
never writes through a symbolic link out of its dir (``checkpoints/`` linked elsewhere, ...).
A run refused before it starts leaves nothing it created (:class:`RunDirGuard`), and changes
no byte of a dir that existed: until its checks pass (:func:`commit_run_dir`) it writes
nothing there, Hydra's record and log included (:func:`hold_hydra_outputs`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from bridging.data.records import DataError

#: what a finished training run leaves in its dir (removed by overwrite=true)
RUN_RESULTS = ("metrics.json", "test_predictions.npz", "confusion_matrix.png")
CHECKPOINTS = "checkpoints"
#: everything a training run writes in its dir (never through a link out of it)
RUN_WRITES = (
    *RUN_RESULTS,
    CHECKPOINTS,
    "csv",
    "config.yaml",
    ".hydra",
    "train.log",
    "teacher",
    "wandb",
)
#: the lock a live training holds on its run dir
LOCK_FILE = ".bridging.lock"


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


def _rank() -> int:
    return int(os.environ.get("LOCAL_RANK", os.environ.get("RANK", "0")) or 0)


def _link_out(output_dir: Path) -> str | None:
    """The first of the run's outputs that is a symbolic link out of the run dir."""
    root = output_dir.resolve()
    for name in RUN_WRITES:
        path = output_dir / name
        if path.is_symlink():
            target = path.resolve()
            if not target.is_relative_to(root):
                return (
                    f"{path}: a symbolic link to {target}, outside the run dir; refusing to "
                    "write through it (remove the link, or train into another hydra.run.dir)"
                )
    return None


def _checkpoints(output_dir: Path) -> list[str]:
    folder = output_dir / CHECKPOINTS
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.suffix == ".ckpt")


def run_dir_problem(output_dir, ckpt_path=None, overwrite: bool = False) -> str | None:
    """Why training into ``output_dir`` would replace a finished or killed run (one line
    naming the dir and the options), or None when it may go ahead."""
    if _rank() != 0:
        return None  # DDP workers start in the dir their main process checked
    out = Path(output_dir)
    link = _link_out(out)
    if link:
        return link
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
    or killed run (see the module doc); with ``overwrite`` the old run's results are removed
    once the run's checks pass (:func:`commit_run_dir`), never by a run refused later."""
    problem = run_dir_problem(output_dir, ckpt_path, overwrite)
    if problem:
        raise RunDirError(problem)
    out = Path(output_dir)
    if overwrite and not _resumes_here(ckpt_path, out) and _rank() == 0:
        _PENDING[os.path.abspath(out)] = "overwrite"


def _clear_old_run(out: Path) -> None:
    for name in RUN_RESULTS:
        (out / name).unlink(missing_ok=True)
    shutil.rmtree(out / CHECKPOINTS, ignore_errors=True)


#: run dirs whose old run ``overwrite=true`` replaces once the new run's checks pass
_PENDING: dict[str, str] = {}


def commit_run_dir(output_dir) -> None:
    """The run's checks passed, it starts writing its dir: the old run that
    ``overwrite=true`` replaces is removed, the temporaries a killed checkpoint write left
    go (:func:`remove_stale_temporaries`), and Hydra's record and log, held back until now
    (:func:`hold_hydra_outputs`), are written. Before this, a run writes nothing into an
    existing dir, so a refused one leaves every byte of it as it was."""
    out = Path(output_dir)
    if _PENDING.pop(os.path.abspath(out), None) == "overwrite":
        _clear_old_run(out)
    remove_stale_temporaries(out)
    release_hydra_outputs(out)


#: the temporary files of bridging's atomic writers (:func:`bridging.utils.files.atomic_output`):
#: ``.<name>.<pid>.<8 hex digits>.tmp``
TEMP_FILE = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$")


def remove_stale_temporaries(output_dir) -> list[Path]:
    """Remove the temporary files a killed checkpoint write left in the run's
    ``checkpoints/`` (and a student's ``teacher/checkpoints/``): only files of the atomic
    writers' own pattern, and only while this process holds the run dir's lock (no live
    run writes there). Returns the removed paths."""
    out = Path(output_dir)
    if os.path.abspath(out) not in _LOCKS:
        return []
    removed = []
    for folder in (out / CHECKPOINTS, out / "teacher" / CHECKPOINTS):
        if not folder.is_dir() or folder.is_symlink():
            continue
        for p in folder.iterdir():
            m = TEMP_FILE.match(p.name)
            if m and int(m.group(1)) != os.getpid() and p.is_file() and not p.is_symlink():
                with contextlib.suppress(OSError):
                    p.unlink()
                    removed.append(p)
    return removed


#: the run dirs whose lock this process holds: dir -> (file descriptor, whether the dir was
#: created by this run)
_LOCKS: dict[str, tuple[int, bool]] = {}


def lock_run_dir(output_dir) -> None:
    """Take the exclusive lock of ``output_dir`` (created if need be) for this process, or
    refuse (a RunDirError) when another live training holds it. Taken once per process."""
    if _rank() != 0:
        return  # DDP workers run inside their main process's lock
    out = Path(output_dir)
    key = os.path.abspath(out)
    if key in _LOCKS:
        return
    fresh = not out.exists()
    fd = take_lock(
        out,
        "the run dir is not writable ({why}); give a writable hydra.run.dir",
        f"another training is running in this run dir (it holds {LOCK_FILE}); refusing to "
        "start a second one: wait for it to end, or train into another hydra.run.dir",
    )
    _LOCKS[key] = (fd, fresh)


def take_lock(folder: Path, unwritable: str, held: str) -> int:
    """The exclusive ``fcntl.flock`` of ``folder``'s :data:`LOCK_FILE` (the folder created
    if need be), its file descriptor; a RunDirError ``<folder>: <unwritable>`` (``{why}``:
    the system's reason) when it cannot be made, ``<folder>: <held>`` when another process
    holds it. The lock ends with the process (or ``os.close``)."""
    import fcntl

    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise RunDirError(f"{folder}: {unwritable.format(why=why)}") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise RunDirError(f"{folder}: {held}") from None
    return fd


def release_run_dir(output_dir, refused: bool = False) -> None:
    """Release the lock of ``output_dir``. After a ``refused`` (failed) run, a dir this run
    created is removed when it holds no checkpoint: everything in it (Hydra's record, the
    log, config.yaml) is this run's, and nothing of it is worth keeping."""
    key = os.path.abspath(output_dir)
    held = _LOCKS.pop(key, None)
    if held is None:
        return
    fd, fresh = held
    out = Path(key)
    try:
        if refused and fresh and out.is_dir() and not out.is_symlink():
            if not any(out.rglob("*.ckpt")):
                shutil.rmtree(out, ignore_errors=True)
    finally:
        os.close(fd)


def release_run_dirs(refused: bool = False) -> list[str]:
    """Release every run dir lock this process holds (see :func:`release_run_dir`): a run
    that failed before its task started (Hydra writing its record). Returns the dirs."""
    dirs = list(_LOCKS)
    for key in dirs:
        release_run_dir(key, refused=refused)
    return dirs


@contextlib.contextmanager
def run_dir_lock(output_dir):
    """The run dir's lock for the life of the block (see :func:`lock_run_dir`); a run that
    fails leaves no dir it created and left empty."""
    lock_run_dir(output_dir)
    ok = False
    try:
        yield
        ok = True
    finally:
        release_run_dir(output_dir, refused=not ok)


try:
    from hydra.experimental.callback import Callback as _HydraCallback
except ImportError:  # pragma: no cover - Hydra is a dependency
    _HydraCallback = object


#: the handler that holds a command's log records back until its checks pass
HELD_LOG = "bridging_held_file"
#: how many records a held log keeps before it writes them anyway
HELD_CAPACITY = 1_000_000

#: the dirs whose Hydra record and log this process holds back: dir -> the record's subdir
#: (``hydra.output_subdir``), Hydra's own ``job_logging`` and, once the job starts, the
#: record's files (name -> text)
_HELD: dict[str, dict] = {}


def hold_hydra_outputs(config, out: str) -> None:
    """(A Hydra callback's ``on_run_start``, before Hydra writes anything.) Hold back what
    Hydra writes into the command's dir: its record (``hydra.output_subdir``: config.yaml,
    hydra.yaml, overrides.yaml) and its log file (``<task_name>.log``: the records wait in
    memory, the file is not opened). :func:`release_hydra_outputs` writes both once the
    command's checks pass; a refused command leaves neither, so an existing run's record
    and log keep every byte."""
    from omegaconf import OmegaConf, open_dict, read_write

    with read_write(config.hydra), open_dict(config.hydra):
        held = {"subdir": config.hydra.get("output_subdir"), "job_logging": None}
        job_logging = config.hydra.get("job_logging")
        if job_logging is not None:
            held["job_logging"] = OmegaConf.to_container(job_logging, resolve=False)
        config.hydra.output_subdir = None
        handlers = job_logging.get("handlers") if job_logging is not None else None
        root = job_logging.get("root") if job_logging is not None else None
        if handlers and "file" in handlers and root and "file" in (root.get("handlers") or []):
            handlers.file.delay = True  # opened at the first record written, not before
            handlers[HELD_LOG] = {
                "class": "logging.handlers.MemoryHandler",
                "capacity": HELD_CAPACITY,
                "flushLevel": 100,  # above CRITICAL: only release_hydra_outputs writes
                "target": "file",
                "flushOnClose": False,
            }
            root.handlers = [HELD_LOG if h == "file" else h for h in root.handlers]
    _HELD[os.path.abspath(out)] = held


def snapshot_hydra_record(config) -> None:
    """(A Hydra callback's ``on_job_start``.) The record Hydra would have written for this
    job (what :func:`hold_hydra_outputs` held back), as its files' texts."""
    import copy

    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf, open_dict, read_write

    try:
        out = os.path.abspath(str(HydraConfig.get().runtime.output_dir))
    except Exception:  # noqa: BLE001 - no Hydra run: nothing held
        return
    held = _HELD.get(out)
    if not held or not held["subdir"]:
        return
    task_cfg = copy.deepcopy(config)
    with read_write(task_cfg), open_dict(task_cfg):
        del task_cfg["hydra"]
    hydra_cfg = copy.deepcopy(HydraConfig.instance().cfg)
    with read_write(hydra_cfg.hydra), open_dict(hydra_cfg.hydra):
        hydra_cfg.hydra.output_subdir = held["subdir"]
        if held["job_logging"] is not None:
            hydra_cfg.hydra.job_logging = held["job_logging"]
    held["record"] = {
        "config.yaml": OmegaConf.to_yaml(task_cfg),
        "hydra.yaml": OmegaConf.to_yaml(hydra_cfg),
        "overrides.yaml": OmegaConf.to_yaml(config.hydra.overrides.task),
    }


def release_hydra_outputs(output_dir) -> bool:
    """Write what :func:`hold_hydra_outputs` held back for ``output_dir``: Hydra's record
    (atomically) and the log records so far, after which the log file is written as
    usual. Returns whether anything was held."""
    import logging
    from logging.handlers import MemoryHandler

    from bridging.utils.files import atomic_write_text

    held = _HELD.pop(os.path.abspath(output_dir), None)
    if held is None:
        return False
    for name, text in (held.get("record") or {}).items():
        atomic_write_text(Path(output_dir) / held["subdir"] / name, text)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, MemoryHandler) and handler.name == HELD_LOG:
            target = handler.target
            handler.flush()
            root.removeHandler(handler)
            handler.close()
            if target is not None:
                root.addHandler(target)
                if isinstance(target, logging.FileHandler):  # there even when nothing is logged
                    open(target.baseFilename, "a").close()
    return True


class RunDirGuard(_HydraCallback):
    """Hydra callback (``hydra.callbacks`` of conf/train.yaml) for a single run: it takes the
    run dir's lock (:func:`lock_run_dir`) before Hydra writes there, and holds Hydra's
    ``.hydra/`` record and ``train.log`` back (:func:`hold_hydra_outputs`) until the run's
    checks pass (:func:`commit_run_dir`); the task refuses a run that would replace a
    finished or killed one (:func:`check_run_dir`), has a bad config value or data, and
    removes the dir when this run created it. A refused run so changes no byte of an
    existing run dir."""

    def on_run_start(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf

        try:
            out = OmegaConf.select(config, "hydra.run.dir", throw_on_missing=True)
            if not out:
                return
            out = os.path.abspath(str(out))
        except Exception:  # noqa: BLE001 - unresolvable here: the task checks it
            return
        with contextlib.suppress(Exception):  # the task refuses the run with it
            lock_run_dir(out)
        hold_hydra_outputs(config, out)

    def on_job_start(self, config, **kwargs) -> None:
        snapshot_hydra_record(config)


#: what Hydra makes for a command (bridging-eval, -predict) in this process that did not exist
#: before it: the run dir (and its new parents), or in an existing dir the command's log and
#: record
_CREATED: list[str] = []


class CommandDirGuard(_HydraCallback):
    """Hydra callback (``hydra.callbacks`` of conf/eval.yaml and conf/predict.yaml): notes
    what of the command's run dir is new, so that a command that fails leaves nothing it
    created (:func:`discard_created_dirs`): a new dir goes with its new parents; in a dir
    that existed (a training run's dir given as ``hydra.run.dir``) only the command's own log
    (``<task_name>.log``) and record (``hydra.output_subdir``) go, when they are new."""

    def on_run_start(self, config, **kwargs) -> None:
        from omegaconf import OmegaConf

        _CREATED.clear()
        try:
            out = OmegaConf.select(config, "hydra.run.dir", throw_on_missing=True)
            record = OmegaConf.select(config, "hydra.output_subdir", default=None)
        except Exception:  # noqa: BLE001 - unresolvable: Hydra reports it
            return
        if not out:
            return
        hold_hydra_outputs(config, os.path.abspath(str(out)))
        out = Path(os.path.abspath(str(out)))
        if not os.path.lexists(out):
            from bridging.utils.files import existing_ancestor

            there = existing_ancestor(out)
            # the run dir, then each new parent up to the first that existed
            new = [p for p in [out, *out.parents] if p != there and p.is_relative_to(there)]
            _CREATED.extend(map(str, new))
            return
        for name in (f"{config.get('task_name') or 'job'}.log", record):
            if name and not os.path.lexists(out / name):
                _CREATED.append(str(out / name))

    def on_job_start(self, config, **kwargs) -> None:
        snapshot_hydra_record(config)


def discard_created_dirs(failed: bool = True) -> list[str]:
    """After a command failed (``failed``): remove what Hydra made for it in this process
    (see :class:`CommandDirGuard`; a new parent only when nothing else is in it by then) and
    drop the Hydra record and log it held back (:func:`hold_hydra_outputs`) and the old run
    an ``overwrite=true`` would have removed; after it succeeded, write what it held back.
    Returns the removed paths."""
    for key in list(_HELD):
        if failed:
            _HELD.pop(key)
        else:
            release_hydra_outputs(key)
    _PENDING.clear()
    removed = []
    for i, path in enumerate(_CREATED if failed else []):
        if os.path.islink(path) or not os.path.lexists(path):
            continue
        try:
            if i and os.path.isdir(path) and Path(_CREATED[i - 1]).parent == Path(path):
                os.rmdir(path)  # a new parent: only when empty (another command may use it)
            elif os.path.isdir(path):
                shutil.rmtree(path)
            else:
                os.unlink(path)
            removed.append(path)
        except OSError:
            continue
    _CREATED.clear()
    return removed


__all__ = [
    "CommandDirGuard",
    "commit_run_dir",
    "hold_hydra_outputs",
    "release_hydra_outputs",
    "discard_created_dirs",
    "RunDirError",
    "RunDirGuard",
    "check_run_dir",
    "lock_run_dir",
    "release_run_dir",
    "release_run_dirs",
    "remove_stale_temporaries",
    "run_dir_lock",
    "run_dir_problem",
    "take_lock",
    "RUN_RESULTS",
]
