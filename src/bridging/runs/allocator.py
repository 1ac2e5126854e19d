"""How a training process's C allocator keeps freed memory (``allocator`` in conf/train.yaml).

torch allocates CPU tensors with the C library's ``malloc``. glibc's defaults give memory
back to the kernel eagerly: blocks above the mmap threshold are unmapped when freed, and the
heap top is trimmed once more than the trim threshold is free. A training step allocates
and frees the same large activations (up to about 8 MiB each for the a+v teacher) every
batch, so with the defaults the kernel maps and zeroes them again every batch: 100,000 to
250,000 minor page faults per teacher epoch on the development machine (0.4-0.9 s of
system time), and measurably slower products on the freshly faulted memory
(BENCHMARKS.md, "The allocator").

``tuned`` (the default) keeps freed memory in the process for the next batch: mmap
threshold 32 MiB (glibc's upper bound for its own adaptive threshold), trim threshold 2 GiB,
top pad 256 MiB. After the first epoch a run page-faults almost never. The process's
resident memory stays at its peak instead of shrinking between batches; values are
unchanged (only where the bytes live changes). ``system`` leaves the C library's settings
as they are. On a C library other than glibc both are the same (nothing is changed).

The settings belong to the whole process and cannot be undone within it (glibc's adaptive
mmap threshold stays off once set), so :func:`set_allocator` applies ``tuned`` at most once
and ``system`` never changes anything.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

ALLOCATORS = ("tuned", "system")

# glibc's mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3

#: the ``tuned`` settings: (parameter, value, name)
TUNED = (
    (M_MMAP_THRESHOLD, 32 * 1024 * 1024, "M_MMAP_THRESHOLD"),
    (M_TRIM_THRESHOLD, 2 * 1024 * 1024 * 1024 - 1, "M_TRIM_THRESHOLD"),
    (M_TOP_PAD, 256 * 1024 * 1024, "M_TOP_PAD"),
)

_applied: str | None = None


def _mallopt():
    """glibc's ``mallopt``, or None on another C library."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    name = ctypes.util.find_library("c") or "libc.so.6"
    try:
        fn = ctypes.CDLL(name).mallopt
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int)
    fn.restype = ctypes.c_int
    return fn


def set_allocator(mode: str) -> str | None:
    """Apply the allocator setting ``mode`` (one of :data:`ALLOCATORS`) to this process.

    Returns what the process now runs with: ``"tuned"`` once the tuned settings are in
    place (now or by an earlier call), None when the C library's own settings are left
    (``system``, or not glibc). Raises ValueError for an unknown mode."""
    global _applied
    if mode not in ALLOCATORS:
        raise ValueError(f"allocator={mode!r}: expected one of {ALLOCATORS}")
    if mode == "system" or _applied == "tuned":
        return _applied
    mallopt = _mallopt()
    if mallopt is None:
        return None
    for param, value, name in TUNED:
        if mallopt(param, value) != 1:
            raise RuntimeError(f"allocator: glibc refused mallopt({name}, {value})")
    _applied = "tuned"
    return _applied


__all__ = ["ALLOCATORS", "TUNED", "set_allocator"]
