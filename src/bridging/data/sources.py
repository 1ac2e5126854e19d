"""Entry points for reading data: detect a file's format, load it, convert it.

Formats (see each module's docstring for the layout):

- ``cogmen``: COGMEN's prepared pickle (data_iemocap.pkl / data_iemocap_4.pkl);
- ``dialoguernn``: DialogueRNN's IEMOCAP_features.pkl;
- ``native``: bridging's own safetensors + JSON corpus (directory or one .safetensors file).

Formats are detected by content: a directory, a JSON or a safetensors file is native; a
pickle is loaded through the allow-list unpickler and recognised by its shape (a dict with
train/test -> cogmen, a 9-tuple -> dialoguernn).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from bridging.data.cogmen_format import cogmen_from_object, is_cogmen_object, sample_class_map
from bridging.data.dialoguernn_format import dialoguernn_from_object, is_dialoguernn_object
from bridging.data.native import read_native, write_native
from bridging.data.records import LABEL_SETS, Corpus, DataError
from bridging.data.safe_pickle import safe_load
from bridging.data.validate import check_label_range, validate_corpus

FORMATS = ("cogmen", "dialoguernn", "native")


def _check_exists(path: Path) -> None:
    if not path.exists():
        raise DataError(f"{path}: no such file")


def _looks_native(path: Path) -> bool:
    if path.is_dir() or path.suffix in (".json", ".safetensors"):
        return True
    with open(path, "rb") as fh:
        head = fh.read(9)
    # safetensors: 8-byte little-endian header size, then the JSON header
    size = int.from_bytes(head[:8], "little")
    return len(head) == 9 and head[8:9] == b"{" and 1 < size < path.stat().st_size


def _load_pickle(path: Path):
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    return safe_load(path, encoding="latin1", extra=sample_class_map(), where=os.fspath(path))


def _format_of_object(obj, where) -> str:
    if is_cogmen_object(obj):
        return "cogmen"
    if is_dialoguernn_object(obj):
        return "dialoguernn"
    shape = type(obj).__name__
    if isinstance(obj, dict):
        shape += f" with keys {sorted(map(str, obj))[:10]}"
    elif isinstance(obj, (list, tuple)):
        shape += f" of {len(obj)} items"
    raise DataError(
        f"{where}: unrecognised data: a pickle holding a {shape}; expected a COGMEN file "
        "(dict with train, dev, test) or a DialogueRNN file (9-tuple); known formats: "
        f"{', '.join(FORMATS)}"
    )


def detect_format(path) -> str:
    """Return "cogmen", "dialoguernn" or "native" for the data at ``path`` (by content)."""
    path = Path(path)
    _check_exists(path)
    if _looks_native(path):
        return "native"
    return _format_of_object(_load_pickle(path), os.fspath(path))


def _max_label(corpus: Corpus) -> int:
    tops = [int(d.labels.max()) for s in corpus.splits.values() for d in s if len(d)]
    return max(tops, default=-1)


def load_corpus(
    path,
    format: str = "auto",
    label_set: str | None = "iemocap_4",
    *,
    modalities=None,
    validate: bool = True,
) -> Corpus:
    """Load the corpus at ``path`` in ``label_set`` (None: as stored) and validate it.

    ``format``: "auto" (detect by content) or one of :data:`FORMATS`. ``modalities``: those
    the caller needs, checked by :func:`validate_corpus` (default: those of the data).
    """
    if format != "auto" and format not in FORMATS:
        raise DataError(
            f"unknown data format {format!r}: known formats are {', '.join(FORMATS)} (or auto)"
        )
    if label_set is not None and label_set not in LABEL_SETS:
        raise DataError(f"unknown label set {label_set!r}: expected one of {sorted(LABEL_SETS)}")
    path = Path(path)
    _check_exists(path)
    where = os.fspath(path)
    if format == "auto" and _looks_native(path):
        format = "native"
    if format == "native":
        corpus = read_native(path, label_set=label_set)
    else:
        obj = _load_pickle(path)
        found = _format_of_object(obj, where)
        if format != "auto" and found != format:
            raise DataError(f"{where}: asked to read it as {format} but it holds {found} data")
        read = cogmen_from_object if found == "cogmen" else dialoguernn_from_object
        if label_set is None:
            # as stored: 4-way if no exc/fru label anywhere (data_iemocap_4.pkl and
            # IEMOCAP_features_4.pkl), else 6-way
            corpus = read(obj, label_set="iemocap_6", where=where, check_labels=False)
            if _max_label(corpus) < len(LABEL_SETS["iemocap_4"]):
                corpus = replace(corpus, label_set="iemocap_4", label_names=LABEL_SETS["iemocap_4"])
            check_label_range(corpus)
        else:
            corpus = read(obj, label_set=label_set, where=where)
    if validate:
        validate_corpus(corpus, modalities)
    return corpus


def convert(
    in_path, out_path, format: str = "auto", label_set: str | None = None, force: bool = False
) -> Corpus:
    """Convert data at ``in_path`` into bridging's format at ``out_path``; return the corpus.

    ``label_set`` None keeps the stored labels (a 6-way source stays 6-way; loading it later
    as iemocap_4 applies the dropping rule). An existing ``out_path`` is refused unless
    ``force`` (see :func:`~bridging.data.native.write_native`).
    """
    from bridging.io import refuse_existing

    refuse_existing(out_path, force)
    corpus = load_corpus(in_path, format=format, label_set=label_set)
    write_native(corpus, out_path, force=force)
    return corpus


__all__ = ["FORMATS", "detect_format", "load_corpus", "convert"]
