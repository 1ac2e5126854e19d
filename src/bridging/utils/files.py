"""Small output helpers: atomic writes, JSON and CSV, output paths, config hashes.

Every writer goes through a temporary sibling of the target created with ``os.open(...,
0o666)``, so the file ends with the mode the umask gives (0644 under umask 022), as a plain
``open`` would, never ``mkstemp``'s 0600. A target that cannot be written (a directory, a
read-only folder) is an :class:`OutputError` naming the target, not the temporary file.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import secrets
import shutil
import stat
from pathlib import Path

from bridging.utils.errors import DataError


class OutputError(OSError):
    """An output that cannot be written: the message names the target and why."""


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


#: the errors of a write that ran out of room: the disk, the user's quota, the file size limit
_FULL_ERRNOS = {
    errno.ENOSPC: "no space left on device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large (the file size limit, ulimit -f)",
}
#: how writers that are not Python's own say it (safetensors' Rust I/O error, torch's zip
#: writer, which loses the errno: a short write is "unexpected pos N vs M")
_FULL_TEXTS = (
    ("no space left on device", errno.ENOSPC),
    ("os error 28", errno.ENOSPC),
    ("disk quota exceeded", errno.EDQUOT),
    ("os error 122", errno.EDQUOT),
    ("file too large", errno.EFBIG),
    ("os error 27", errno.EFBIG),
    ("unexpected pos", None),
    ("pytorchstreamwriter failed writing", None),
    ("file write failed", None),
)


def _full_errno(exc: BaseException) -> int | None | bool:
    """The errno of a write that ran out of room (ENOSPC, EDQUOT, EFBIG), None when the
    writer lost it (torch's zip writer), False when ``exc`` (or what caused it) is not one."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in _FULL_ERRNOS:
            return exc.errno
        text = str(exc).lower()
        for needle, code in _FULL_TEXTS:
            if needle in text:
                return code
        exc = exc.__cause__ or exc.__context__
    return False


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` is a write that ran out of room (see :func:`disk_full_error`)."""
    return _full_errno(exc) is not False


def existing_ancestor(path) -> Path:
    """``path`` itself when it exists, else its nearest folder above that does (``/`` at
    the most): where a new file of ``path`` would be made."""
    where = Path(path)
    while not where.exists() and where != where.parent:
        where = where.parent
    return where


def _free_space(path: Path) -> int | None:
    try:
        return shutil.disk_usage(existing_ancestor(path)).free
    except OSError:
        return None


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"  # pragma: no cover


def disk_full_error(path, exc: BaseException, hint: str = "free some space or write elsewhere"):
    """An OutputError for ``path`` whose write ran out of room (``exc``: ENOSPC, EDQUOT,
    EFBIG, or a writer's own words for it), naming the free space left; ``exc`` as it is
    when it is something else."""
    code = _full_errno(exc)
    if code is False or isinstance(exc, OutputError) and str(path) in str(exc):
        return exc
    free = _free_space(Path(path))
    room = f"{_size(free)} free on its file system" if free is not None else "free space unknown"
    if code is None:  # torch's zip writer: a short write; the free space tells which
        why = "the write stopped short (the disk is full?)"
        if free is not None and free < 1 << 20:
            why = _FULL_ERRNOS[errno.ENOSPC]
    else:
        why = _FULL_ERRNOS[code]
    return OutputError(f"{path}: cannot write it: {why} ({room}): {hint}")


def check_output_path(path, field: str = "output") -> Path:
    """Refuse, before any work, an output that cannot be written: a directory, or a file in
    a folder that is not writable (or below a file). Returns the path."""
    path = Path(path)
    name = f"{field}={path}" if field else str(path)
    if path.is_dir():
        raise OutputError(f"{name}: is a directory; give a file name")
    parent = existing_ancestor(path.parent)
    if not parent.is_dir():
        raise OutputError(f"{name}: cannot create it: {parent} is not a directory")
    if not os.access(parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        where = path if path.exists() else parent
        raise OutputError(f"{name}: cannot write it: {where} is read-only")
    return path


def file_kind(path) -> str | None:
    """What ``path`` is when it is neither a regular file nor a directory (following links):
    "a FIFO (named pipe)", "a character device", ...; None for a file, a folder or nothing."""
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return None
    kinds = [
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ]
    return next((what for test, what in kinds if test(mode)), "not a regular file")


def check_input_file(path, what: str = "file") -> Path:
    """Refuse (a DataError naming the path and what it is) an input that is neither a
    regular file nor a directory: reading a FIFO would hang, a device never ends. Every
    reader of data files and checkpoints calls it first. Returns the path."""
    kind = file_kind(path)
    if kind is not None:
        raise DataError(f"{path}: is {kind}, not a regular file or a directory; expected a {what}")
    return Path(path)


def same_file(a, b) -> bool:
    """Whether ``a`` and ``b`` name the same file or folder (through links, relative paths,
    hard links); False when either does not exist."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(os.path.realpath(a)) == os.path.abspath(os.path.realpath(b))


def refuse_own_input(output, inputs: dict, field: str = "OUT", name: str | None = None) -> Path:
    """Refuse (an OutputError naming both) an ``output`` that is one of the command's
    ``inputs`` (``{"the checkpoint": path, ...}``), however spelled (links, relative paths):
    an input is never replaced, not even when forced. ``name``: how the message names the
    output (default its path). Returns the output's path."""
    for what, src in inputs.items():
        if src is not None and same_file(output, src):
            raise OutputError(
                f"{name or output}: is {what} {src} itself; refusing to write over an input, "
                f"even when forced: give another {field}"
            )
    return Path(output)


def _identity(path) -> tuple[int, int] | None:
    """(st_dev, st_ino) of what ``path`` names (through links), None when it does not exist."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return None
    return st.st_dev, st.st_ino


def refuse_over_inputs(outputs, inputs, forceable: bool = True) -> None:
    """Refuse (an OutputError naming the output, the input and the option) any of
    ``outputs`` (``(option, path)`` pairs) that is one of ``inputs`` (``(what, path)``
    pairs, e.g. ``("a run's metrics.json", p)``) by resolved identity: the same device and
    inode, so a symbolic link, a hard link or another spelling of an input is one too.
    Call it before any work; ``forceable``: whether the command has a flag (--force,
    overwrite=true) that the message says does not apply."""
    seen: dict[tuple[int, int], tuple[str, object]] = {}
    for what, src in inputs:
        key = _identity(src) if src is not None else None
        if key is not None:
            seen.setdefault(key, (what, src))
    for field, out in outputs:
        key = _identity(out) if out is not None else None
        if key in seen:
            what, src = seen[key]
            forced = ", even when forced" if forceable else ""
            raise OutputError(
                f"{out}: is {what} {src} itself; refusing to write over an input{forced}: "
                f"give another {field}"
            )


def _tmp_name(path: Path, suffix: str = ".tmp") -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def make_parent(path: Path) -> None:
    """Create ``path``'s folder (with the umask's mode); an OutputError names ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{path}: cannot create its folder {path.parent}: {_why(exc)}") from None


@contextlib.contextmanager
def atomic_output(path):
    """Yield a temporary path next to ``path`` (an empty file, created with the umask's
    mode); on success it replaces ``path``, on failure it is removed and ``path`` is left as
    it was. Errors of the file system are OutputErrors naming ``path``."""
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: is a directory; refusing to replace it with a file")
    make_parent(path)
    tmp = _tmp_name(path)
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write it: {_why(exc)} ({path.parent})") from None
    mode = stat.S_IMODE(os.fstat(fd).st_mode)  # what the umask gives a new file
    os.close(fd)
    try:
        yield tmp
        try:
            # writers that replace the file themselves (safetensors) leave 0600: restore
            if stat.S_IMODE(os.stat(tmp).st_mode) != mode:
                os.chmod(tmp, mode)
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"{path}: cannot replace it: {_why(exc)}") from None
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        full = disk_full_error(path, exc)
        if full is not exc:
            raise full from None
        raise


def umask_files(folder) -> None:
    """Give the files directly in ``folder`` the mode the umask gives a new file (the
    folder's own mode without the execute bits, the folder made by :func:`make_temp_dir`),
    for writers that create files 0600 (safetensors)."""
    folder = Path(folder)
    mode = stat.S_IMODE(folder.stat().st_mode) & 0o666
    for f in folder.iterdir():
        if f.is_file() and stat.S_IMODE(f.stat().st_mode) != mode:
            os.chmod(f, mode)


def make_temp_dir(path: Path, suffix: str = ".tmp") -> Path:
    """A new empty folder next to ``path`` with the umask's mode (not ``mkdtemp``'s 0700)."""
    path = Path(path)
    make_parent(path)
    for _ in range(100):
        tmp = _tmp_name(path, suffix)
        try:
            os.mkdir(tmp, 0o777)
            return tmp
        except FileExistsError:
            continue
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(path, exc) from None
            raise OutputError(f"{path}: cannot write it: {_why(exc)} ({path.parent})") from None
    raise OutputError(f"{path}: cannot create a temporary folder next to it")


def atomic_write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename,
    so a reader never sees a half-written file and a failure leaves the old file intact."""
    path = Path(path)
    with atomic_output(path) as tmp:
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            if is_disk_full(exc):
                raise disk_full_error(path, exc) from None
            raise OutputError(f"{path}: cannot write it: {_why(exc)}") from None
    return path


def atomic_write_text(path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path, rows: list[dict]) -> Path:
    """``rows`` (dicts with the same keys, in order) as a CSV file with a header, atomically;
    no rows: an empty file."""
    import csv
    import io

    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return atomic_write_text(path, buf.getvalue())


def atomic_write_json(path, obj) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def config_hash(container) -> str:
    """A short, stable hash of a (resolved) config given as plain containers."""
    blob = json.dumps(container, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def refuse_existing(path, force: bool = False, hint: str = "force=True replaces it") -> Path:
    """Refuse an existing ``path`` (file, folder or link) unless ``force``: an OutputError
    naming it. Returns the path."""
    path = Path(path)
    if not force and (path.exists() or path.is_symlink()):
        kind = "a folder" if path.is_dir() else "a file"
        raise OutputError(f"{path}: exists ({kind}); refusing to overwrite it ({hint})")
    return path
