"""PyTorch Geometric's generated modules under bridging's cache, not the temporary folder.

PyG compiles each message-passing layer's ``propagate`` from a jinja template into a Python
module file (``torch_geometric.nn.conv.rgcn_conv_RGCNConv_propagate_<random>.py``) that it
writes with ``tempfile.NamedTemporaryFile(delete=False)`` and never removes: two files in the
temporary folder per training process. :func:`install` makes PyG write them under
:func:`cache_dir` instead (``$XDG_CACHE_HOME/bridging/pyg``, else ``~/.cache/bridging/pyg``),
named by their content, so every process reuses the same two files. Where that folder
cannot be written, the module is loaded from a temporary file that is removed at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import sys
import tempfile
from pathlib import Path


def cache_dir() -> Path:
    """Where the generated modules go: ``$XDG_CACHE_HOME/bridging/pyg`` (``~/.cache``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bridging" / "pyg"


def _cached_file(name: str, text: str) -> Path | None:
    """``<cache_dir>/<name>`` holding ``text`` (written atomically when missing or
    different); None when the cache cannot be written."""
    from bridging.utils.files import atomic_write_text

    path = cache_dir() / name
    try:
        if path.is_file() and not path.is_symlink() and path.read_text() == text:
            return path
        return atomic_write_text(path, text)
    except (OSError, UnicodeDecodeError):
        return None


def _load(module_name: str, path) -> object:
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module


def module_from_template(module_name: str, template_path: str, tmp_dirname: str, **kwargs):
    """``torch_geometric.template.module_from_template`` with the module file in
    :func:`cache_dir`, named ``<module_name>_<sha256 of the code>.py`` (the same code is the
    same file in every process)."""
    if module_name in sys.modules:
        return sys.modules[module_name]
    from jinja2 import Environment, FileSystemLoader

    env = Environment(loader=FileSystemLoader(os.path.dirname(template_path)))
    text = env.get_template(os.path.basename(template_path)).render(**kwargs)
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    path = _cached_file(f"{module_name}_{digest}.py", text)
    if path is not None:
        return _load(module_name, path)
    fd, tmp = tempfile.mkstemp(prefix=f"{module_name}_", suffix=".py")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        return _load(module_name, tmp)
    finally:
        with contextlib.suppress(OSError):
            os.unlink(tmp)


def install() -> None:
    """Make PyG's message-passing layers generate their modules through
    :func:`module_from_template` (before any layer is built; idempotent)."""
    from torch_geometric.nn.conv import message_passing

    message_passing.module_from_template = module_from_template


__all__ = ["cache_dir", "install", "module_from_template"]
