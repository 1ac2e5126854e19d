"""An allow-list unpickler for the public IEMOCAP pickles.

``pickle.load`` runs whatever callable a file names, so a downloaded pickle can execute
arbitrary code. :func:`safe_load` resolves only the globals that the COGMEN and DialogueRNN
files need: builtin containers and scalars, ``collections.OrderedDict``/``defaultdict``,
numpy array, scalar and dtype reconstruction, ``copyreg._reconstructor`` for allowed classes,
plus an ``extra`` mapping (the COGMEN reader maps ``cogmen.Sample`` to a local record class).
Any other global is refused with a :class:`DataError` naming the file and ``module.name``.

Python 2 module names (``__builtin__``, ``copy_reg``) are translated as ``pickle`` does.
"""

from __future__ import annotations

import _compat_pickle
import builtins
import collections
import copyreg
import io
import os
import pickle
from collections.abc import Callable

import numpy as np

from bridging.data.records import DataError

try:  # numpy >= 1.26 has numpy._core; importing numpy.core warns on numpy 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - old numpy
    from numpy.core import multiarray as _multiarray
    from numpy.core import numeric as _numeric

_BUILTIN_NAMES = (
    "dict",
    "list",
    "tuple",
    "set",
    "frozenset",
    "str",
    "bytes",
    "bytearray",
    "int",
    "float",
    "complex",
    "bool",
    "slice",
    "range",
    "object",
)

_ALLOWED_CLASSES: set[type] = {getattr(builtins, n) for n in _BUILTIN_NAMES} | {
    collections.OrderedDict,
    collections.defaultdict,
    np.ndarray,
    np.dtype,
}


def _codecs_encode(obj, encoding="utf-8", errors="strict"):
    # Python 3 pickles bytes with protocol < 3 as _codecs.encode(str, "latin1"); only that
    # harmless use is allowed, not the whole codec registry.
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise pickle.UnpicklingError(f"_codecs.encode with encoding {encoding!r} is refused")
    import codecs

    return codecs.encode(obj, encoding, errors)


def _numpy_globals() -> dict[tuple[str, str], object]:
    out: dict[tuple[str, str], object] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }
    for pkg in ("numpy.core", "numpy._core"):
        out[(f"{pkg}.multiarray", "_reconstruct")] = _multiarray._reconstruct
        out[(f"{pkg}.multiarray", "scalar")] = _multiarray.scalar
        out[(f"{pkg}.numeric", "_frombuffer")] = _numeric._frombuffer
    return out


_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    **{("builtins", n): getattr(builtins, n) for n in _BUILTIN_NAMES},
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("collections", "defaultdict"): collections.defaultdict,
    ("_codecs", "encode"): _codecs_encode,
    **_numpy_globals(),
}


def _make_reconstructor(extra_classes) -> Callable:
    allowed = _ALLOWED_CLASSES | set(extra_classes)

    def reconstructor(cls, base, state):
        # protocol 0/1 pickles build instances as copyreg._reconstructor(cls, base, state)
        if cls not in allowed or base not in allowed:
            raise pickle.UnpicklingError(f"copyreg._reconstructor for {cls!r} is refused")
        return copyreg._reconstructor(cls, base, state)

    return reconstructor


_ALLOWED_GLOBALS[("copyreg", "_reconstructor")] = _make_reconstructor(())


def _python3_name(module: str, name: str) -> tuple[str, str]:
    if (module, name) in _compat_pickle.NAME_MAPPING:
        return _compat_pickle.NAME_MAPPING[(module, name)]
    return _compat_pickle.IMPORT_MAPPING.get(module, module), name


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, file, *, encoding: str, allowed: dict, where: str):
        super().__init__(file, encoding=encoding)
        self._allowed = allowed
        self._where = where

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        key = (module, name)
        if key in self._allowed:
            return self._allowed[key]
        key = _python3_name(module, name)
        if key in self._allowed:
            return self._allowed[key]
        raise DataError(
            f"{self._where}: refused to unpickle {module}.{name}: it is not on the allow-list "
            "(builtin containers, numpy arrays and dtypes, and the record classes of the "
            "supported formats); the file is not a supported data file or may be malicious"
        )

    def persistent_load(self, pid):
        raise DataError(f"{self._where}: refused to unpickle a persistent id ({pid!r})")


def safe_load(
    path_or_file,
    *,
    encoding: str = "ASCII",
    extra: dict[tuple[str, str], object] | None = None,
    where: str | None = None,
):
    """Unpickle ``path_or_file`` resolving only allow-listed globals.

    ``extra`` maps ``(module, name)`` to the object to use instead (e.g. a local record class
    for ``("cogmen.Sample", "Sample")``); classes named there are also allowed in
    ``copyreg._reconstructor``. ``where`` names the file in error messages (default: the
    path). Raises :class:`DataError` for refused globals and for unreadable or corrupt files.
    """
    if isinstance(path_or_file, (str, os.PathLike)):
        where = where or os.fspath(path_or_file)
        try:
            fh = open(path_or_file, "rb")
        except FileNotFoundError:
            raise DataError(f"{where}: no such file") from None
        except OSError as e:
            raise DataError(f"{where}: cannot open: {e}") from None
        with fh:
            return _load(fh, encoding=encoding, extra=extra, where=where)
    if isinstance(path_or_file, (bytes, bytearray, memoryview)):
        return _load(
            io.BytesIO(path_or_file), encoding=encoding, extra=extra, where=where or "<bytes>"
        )
    return _load(
        path_or_file,
        encoding=encoding,
        extra=extra,
        where=where or getattr(path_or_file, "name", "<stream>"),
    )


def _load(fh, *, encoding: str, extra, where: str):
    allowed = dict(_ALLOWED_GLOBALS)
    if extra:
        allowed.update(extra)
        extra_classes = [v for v in extra.values() if isinstance(v, type)]
        if extra_classes:
            allowed[("copyreg", "_reconstructor")] = _make_reconstructor(extra_classes)
    unpickler = _AllowListUnpickler(fh, encoding=encoding, allowed=allowed, where=where)
    try:
        return unpickler.load()
    except DataError:
        raise
    except Exception as e:  # corrupt data makes pickle raise almost anything
        raise DataError(
            f"{where}: not a readable pickle or corrupt: {type(e).__name__}: {e}"
        ) from None


__all__ = ["safe_load"]
