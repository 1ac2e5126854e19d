"""Entry points for reading data: detect a file's format, load it, convert it.

Formats (see each module's docstring for the layout):

- ``cogmen``: COGMEN's prepared pickle (data_iemocap.pkl / data_iemocap_4.pkl);
- ``dialoguernn``: DialogueRNN's IEMOCAP_features.pkl;
- ``meld``: MELD's feature pickles, DialogueRNN/DialogueGCN's 9-tuple or MMGCN's 10-tuple
  with video (:mod:`bridging.data.formats.meld`);
- ``native``: bridging's own safetensors + JSON corpus (directory or one .safetensors file).

Formats are detected by content: a directory, a JSON or a safetensors file is native; a
pickle is loaded through the allow-list unpickler and recognised by its shape (a dict with
train/test -> cogmen; a 9-tuple with one-hot speakers and the sentiment dict last, or a
10-tuple -> meld; another 9-tuple -> dialoguernn).

``dev_split`` (MELD: how the dev split is recovered from ``trainVid``, see
:mod:`bridging.data.formats.meld`) and ``max_speakers`` (refuse dialogues with more speakers
and size the corpus to it) are options of :func:`load_corpus` and of the DataModule.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from bridging.data.formats.cogmen import cogmen_from_object, is_cogmen_object, sample_class_map
from bridging.data.formats.dialoguernn import dialoguernn_from_object, is_dialoguernn_object
from bridging.data.formats.meld import DEV_SPLITS, is_meld_object, meld_from_object
from bridging.data.formats.native import read_native, write_native
from bridging.data.formats.safe_pickle import safe_load
from bridging.data.records import LABEL_SETS, Corpus, DataError
from bridging.data.validate import check_label_range, limit_speakers, validate_corpus

FORMATS = ("cogmen", "dialoguernn", "meld", "native")


def _check_exists(path: Path) -> None:
    from bridging.utils.files import check_input_file

    if not path.exists():
        raise DataError(f"{path}: no such file")
    check_input_file(path, "data file or folder")


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
    if is_meld_object(obj):  # before dialoguernn: both are 9-tuples
        return "meld"
    if is_dialoguernn_object(obj):
        return "dialoguernn"
    shape = type(obj).__name__
    if isinstance(obj, dict):
        shape += f" with keys {sorted(map(str, obj))[:10]}"
    elif isinstance(obj, (list, tuple)):
        shape += f" of {len(obj)} items"
    raise DataError(
        f"{where}: unrecognised data: a pickle holding a {shape}; expected a COGMEN file "
        "(dict with train, dev, test), a DialogueRNN file (9-tuple) or a MELD file (9-tuple "
        f"with one-hot speakers, or MMGCN's 10-tuple); known formats: {', '.join(FORMATS)}"
    )


def detect_format(path) -> str:
    """Return "cogmen", "dialoguernn", "meld" or "native" for the data at ``path`` (by
    content)."""
    path = Path(path)
    _check_exists(path)
    if _looks_native(path):
        return "native"
    return _format_of_object(_load_pickle(path), os.fspath(path))


def _max_label(corpus: Corpus) -> int:
    tops = [int(d.labels.max()) for s in corpus.splits.values() for d in s if len(d)]
    return max(tops, default=-1)


def _check_dev_split(dev_split: str, found: str, where: str) -> None:
    """``dev_split`` other than auto applies to MELD files (and first_fraction is what
    DialogueRNN's IEMOCAP files get anyway)."""
    if dev_split not in DEV_SPLITS:
        raise DataError(f"unknown dev_split {dev_split!r}: expected one of {', '.join(DEV_SPLITS)}")
    if dev_split == "auto" or found == "meld":
        return
    if found == "dialoguernn" and dev_split == "first_fraction":
        return
    how = {
        "cogmen": "its dev split is stored",
        "native": "its dev split is stored",
        "dialoguernn": "dev is the first 10% of trainVid (first_fraction)",
    }.get(found, "")
    raise DataError(
        f"{where}: dev_split={dev_split} applies to MELD files; this is {found} data ({how}): "
        "use dev_split=auto"
    )


def load_corpus(
    path,
    format: str = "auto",
    label_set: str | None = "iemocap_4",
    *,
    modalities=None,
    validate: bool = True,
    dev_split: str = "auto",
    max_speakers: int | None = None,
) -> Corpus:
    """Load the corpus at ``path`` in ``label_set`` (None: as stored) and validate it.

    ``format``: "auto" (detect by content) or one of :data:`FORMATS`. ``modalities``: those
    the caller needs, checked by :func:`validate_corpus` (default: those of the data).
    ``dev_split``: MELD's dev split rule (auto, official, first_fraction; docs/meld.md).
    ``max_speakers``: refuse dialogues with more speakers (naming them) and size the corpus
    to it (None: as stored).
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
        _check_dev_split(dev_split, "native", where)
        corpus = read_native(path, label_set=label_set)
    else:
        obj = _load_pickle(path)
        found = _format_of_object(obj, where)
        if format != "auto" and found != format:
            raise DataError(f"{where}: asked to read it as {format} but it holds {found} data")
        _check_dev_split(dev_split, found, where)
        read = cogmen_from_object if found == "cogmen" else dialoguernn_from_object
        if found == "meld":  # label_set None: as stored, the emotions (meld_7)
            corpus = meld_from_object(obj, label_set=label_set, where=where, dev_split=dev_split)
        elif label_set is None:
            # as stored: 4-way if no exc/fru label anywhere (data_iemocap_4.pkl and
            # IEMOCAP_features_4.pkl), else 6-way
            corpus = read(obj, label_set="iemocap_6", where=where, check_labels=False)
            if _max_label(corpus) < len(LABEL_SETS["iemocap_4"]):
                corpus = replace(corpus, label_set="iemocap_4", label_names=LABEL_SETS["iemocap_4"])
            check_label_range(corpus)
        else:
            corpus = read(obj, label_set=label_set, where=where)
    corpus = limit_speakers(corpus, max_speakers)
    if validate:
        validate_corpus(corpus, modalities)
    return corpus


def convert(
    in_path,
    out_path,
    format: str = "auto",
    label_set: str | None = None,
    force: bool = False,
    dev_split: str = "auto",
) -> Corpus:
    """Convert data at ``in_path`` into bridging's format at ``out_path``; return the corpus.

    ``label_set`` None keeps the stored labels (a 6-way source stays 6-way; loading it later
    as iemocap_4 applies the dropping rule). An existing ``out_path`` is refused unless
    ``force`` (see :func:`~bridging.data.formats.native.write_native`).
    """
    from bridging.utils.files import refuse_existing

    refuse_existing(out_path, force)
    corpus = load_corpus(in_path, format=format, label_set=label_set, dev_split=dev_split)
    write_native(corpus, out_path, force=force)
    return corpus


__all__ = ["FORMATS", "detect_format", "load_corpus", "convert"]
