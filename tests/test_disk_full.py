"""A full disk (issue 21): training, resuming and writing data onto a file system without
room end in one line naming the file (or the run dir), what ran out and the free space, exit
2, no traceback; nothing the user had is lost (a resumed run's checkpoints stay as they were)
and a run that created its dir leaves nothing.

The small file systems are real: a tmpfs of a few KiB mounted in a private mount namespace
(``unshare -m`` as root, ``unshare -rm`` otherwise), so nothing outside the test sees it.
Where namespaces are not allowed those tests are skipped; the file size limit (``ulimit
-f``, EFBIG) and the writers' own words are tested everywhere."""

from __future__ import annotations

import errno
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bridging.data.formats.cogmen import write_cogmen
from bridging.utils.files import OutputError, atomic_write_bytes, disk_full_error, is_disk_full
from test_hostile_input import small

TINY = ["debug=tiny", "logger=none"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}


def _unshare() -> list[str] | None:
    """The command prefix that gives a private mount namespace where mounting is allowed."""
    if not shutil.which("unshare"):
        return None
    for prefix in (["unshare", "-m"], ["unshare", "-rm"]):
        try:
            probe = subprocess.run(
                [*prefix, "sh", "-c", "mount -t tmpfs -o size=4k tmpfs /mnt"],
                capture_output=True,
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired):
            continue
        if probe.returncode == 0:
            return prefix
    return None


UNSHARE = _unshare()
needs_mounts = pytest.mark.skipif(UNSHARE is None, reason="no private mount namespace here")


def on_small_disk(where: Path, size: str, command: list[str], after: str = "", setup: str = ""):
    """Run ``command`` with a tmpfs of ``size`` mounted on ``where`` (seen by this process
    alone); ``setup`` and ``after`` are shell lines run before and after it inside the
    namespace (the tmpfs is gone once it ends). Returns (returncode, stderr lines, what
    ``after`` printed)."""
    where.mkdir(parents=True, exist_ok=True)
    script = (
        f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(where))} || exit 99\n"
        f"{setup}\n"
        f"{shlex.join(command)} 2>{shlex.quote(str(where.parent / 'stderr'))}\n"
        f"echo rc=$?\n{after}\n"
    )
    done = subprocess.run(
        [*UNSHARE, "sh", "-c", script], capture_output=True, text=True, timeout=600, env=ENV
    )
    assert "rc=" in done.stdout, done.stderr
    head, _, rest = done.stdout.partition("rc=")
    code, _, shown = rest.partition("\n")
    err = (where.parent / "stderr").read_text().splitlines()
    return int(code), [ln for ln in err if ln.strip() and not _progress(ln)], shown


def _progress(line: str) -> bool:
    # Lightning's progress bar and its warnings go to stderr: neither is an error
    return "Epoch" in line or "━" in line or "UserWarning" in line or "warnings.warn" in line


def train_cmd(run_dir: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "bridging.cli.train", *TINY, f"hydra.run.dir={run_dir}", *extra]


def one_error(lines: list[str], prog: str) -> str:
    errors = [ln for ln in lines if ln.startswith(f"{prog}: error: ")]
    assert len(errors) == 1, lines
    assert not any("Traceback" in ln or ln.startswith("  File ") for ln in lines), lines
    return errors[0]


# ------------------------------------------------------------------------------ training
@needs_mounts
def test_training_onto_a_full_disk_names_the_checkpoint_and_leaves_no_run_dir(tmp_path):
    mnt = tmp_path / "small"
    code, err, shown = on_small_disk(
        mnt, "40k", train_cmd(mnt / "run"), after=f"ls -A {mnt} ; echo end"
    )
    assert code == 2
    line = one_error(err, "bridging-train")
    assert f"{mnt / 'run' / 'checkpoints'}/" in line and ".ckpt: cannot write it: " in line
    assert "no space left on device" in line and "free on its file system" in line
    assert shown.split() == ["end"]  # the run dir it created is gone, nothing half-written


@needs_mounts
def test_hydra_record_onto_a_full_disk_names_the_run_dir(tmp_path):
    mnt = tmp_path / "small"
    code, err, shown = on_small_disk(
        mnt, "8k", train_cmd(mnt / "run"), after=f"ls -A {mnt} ; echo end"
    )
    assert code == 2
    line = one_error(err, "bridging-train")
    # the record is written once every check has passed (a refused run changes no byte of a
    # run dir): the line names the record's file in the run dir
    assert line.startswith(f"bridging-train: error: {mnt / 'run' / '.hydra'}/")
    assert ": cannot write it: no space left on device" in line and "write elsewhere" in line
    assert shown.split() == ["end"]


@needs_mounts
def test_resuming_onto_a_full_disk_keeps_the_killed_runs_checkpoints(tmp_path):
    first = tmp_path / "first"
    done = subprocess.run(
        train_cmd(first, "keep_checkpoints=full", "trainer.max_epochs=1"),
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    (first / "metrics.json").unlink()  # as a run killed after its first epoch
    used_kib = sum(p.stat().st_size for p in first.rglob("*") if p.is_file()) // 1024
    mnt = tmp_path / "small"
    run = mnt / "run"
    code, err, shown = on_small_disk(
        mnt,
        f"{used_kib + 64}k",
        train_cmd(run, "keep_checkpoints=full", "trainer.max_epochs=3", "ckpt_path=last"),
        setup=f"cp -a {first} {run}",
        after=f"cd {run}/checkpoints && md5sum *.ckpt && ls -A",
    )
    assert code == 2
    line = one_error(err, "bridging-train")
    assert f"{run / 'checkpoints'}/" in line and "no space left on device" in line
    import hashlib

    before = {
        f"{hashlib.md5(p.read_bytes()).hexdigest()}  {p.name}"
        for p in (first / "checkpoints").glob("*.ckpt")
    }
    listed = shown.splitlines()
    assert before <= set(listed)  # best.ckpt and last.ckpt byte for byte as they were
    assert sorted(ln for ln in listed if "  " not in ln) == ["best.ckpt", "last.ckpt"]


# ------------------------------------------------------------------------------ data
@needs_mounts
@pytest.mark.parametrize(
    "out, extra",
    [
        ("c.pkl", ["--layout", "cogmen"]),
        ("d.pkl", ["--layout", "dialoguernn", "--label-set", "iemocap_6"]),
        ("native", ["--layout", "native"]),
        ("n.safetensors", ["--layout", "native"]),
    ],
)
def test_synth_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path, out, extra):
    mnt = tmp_path / "small"
    cmd = [sys.executable, "-m", "bridging.cli.data", "synth", str(mnt / out), *extra]
    code, err, shown = on_small_disk(mnt, "64k", cmd, after=f"ls -A {mnt} ; echo end")
    assert code == 2
    line = one_error(err, "bridging-data")
    assert line.startswith(f"bridging-data: error: {mnt / out}: cannot write it: ")
    assert "no space left on device" in line
    assert shown.split() == ["end"]


# ------------------------------------------------------------------------------ everywhere
def _fsize_limited(limit: int):
    def pre():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past it fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return pre


def test_synth_past_the_file_size_limit_names_the_file_and_the_limit(tmp_path):
    out = tmp_path / "c.pkl"
    done = subprocess.run(
        [sys.executable, "-m", "bridging.cli.data", "synth", str(out), "--layout", "cogmen"],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
        preexec_fn=_fsize_limited(32 * 1024),
    )
    assert done.returncode == 2
    line = one_error(done.stderr.splitlines(), "bridging-data")
    assert line.startswith(f"bridging-data: error: {out}: cannot write it: file too large")
    assert "ulimit -f" in line
    assert list(tmp_path.iterdir()) == []


def test_a_full_disk_in_any_writer_keeps_the_old_file(tmp_path):
    """In-process: the atomic writer's temporary file fails (the write raises ENOSPC); the
    target keeps its old bytes and the error names it."""
    target = tmp_path / "metrics.json"
    target.write_bytes(b"old")
    real_open = open

    class Full:
        def __init__(self, *a, **k):
            self.fh = real_open(*a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, data):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    import builtins

    builtins.open, saved = Full, builtins.open
    try:
        with pytest.raises(OutputError) as caught:
            atomic_write_bytes(target, b"new")
    finally:
        builtins.open = saved
    assert str(caught.value).startswith(f"{target}: cannot write it: no space left on device (")
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]


@pytest.mark.parametrize(
    "exc, full, why",
    [
        (OSError(errno.ENOSPC, "No space left on device"), True, "no space left on device"),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), True, "disk quota exceeded"),
        (OSError(errno.EFBIG, "File too large"), True, "file too large"),
        (RuntimeError("I/O error: No space left on device (os error 28)"), True, "no space"),
        (RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 128 vs 0"),
         True, None),
        (OSError(errno.EACCES, "Permission denied"), False, None),
        (RuntimeError("something else"), False, None),
    ],
)  # fmt: skip
def test_which_errors_are_a_full_disk(tmp_path, exc, full, why):
    assert is_disk_full(exc) is full
    out = disk_full_error(tmp_path / "x.ckpt", exc)
    if not full:
        assert out is exc
        return
    assert isinstance(out, OutputError)
    text = str(out)
    assert text.startswith(f"{tmp_path / 'x.ckpt'}: cannot write it: ")
    assert "free on its file system" in text
    if why:
        assert why in text
    else:  # torch's writer loses the errno: with room left it does not claim a full disk
        assert "the write stopped short" in text


def test_a_wrapped_full_disk_is_still_one(tmp_path):
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving failed") from inner
    except RuntimeError as outer:
        assert is_disk_full(outer)
        assert "no space left on device" in str(disk_full_error(tmp_path / "f", outer))


def test_the_corpus_writers_past_the_file_size_limit_keep_nothing(tmp_path):
    """In a child process (the limit is the process's): write_cogmen past ``ulimit -f``."""
    out = tmp_path / "c.pkl"
    code = (
        f"import sys; sys.path[:0] = {[str(Path(__file__).parent)]!r}\n"
        "from test_hostile_input import small\n"
        "from bridging.data.formats.cogmen import write_cogmen\n"
        "try:\n"
        f"    write_cogmen(small('iemocap_4', n=40), {str(out)!r})\n"
        "except OSError as e:\n"
        "    print(e)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=600,
        preexec_fn=_fsize_limited(8 * 1024),
    )
    assert done.stdout.startswith(f"{out}: cannot write it: file too large"), done.stderr
    assert list(tmp_path.iterdir()) == []
    write_cogmen(small("iemocap_4", n=8), out)  # without the limit it writes
    assert out.stat().st_size > 0
