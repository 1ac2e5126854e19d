"""COGMEN's prepared IEMOCAP file (data_iemocap.pkl, data_iemocap_4.pkl).

Layout (as written by COGMEN's preprocess.py): a dict ``{"train", "dev", "test"}`` of lists of
pickled ``cogmen.Sample`` objects (class ``Sample`` of module ``cogmen.Sample``), one per
dialogue, with attributes ``vid``, ``speaker`` (list of "M"/"F"), ``label`` (list of int),
``text``, ``audio``, ``visual`` (per-utterance lists of vectors, or 2-D arrays),
``sentence`` (list of str) and ``sbert_sentence_embeddings`` ([n, 768]).

The text modality ``t`` is ``sbert_sentence_embeddings`` (what COGMEN feeds its model), not
``text``. Splits are used as stored. Loading needs neither the ``cogmen`` package nor
sentence-transformers: the Sample class is mapped to :class:`CogmenSample` by the allow-list
unpickler.
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
import types
from pathlib import Path

import numpy as np

from bridging.data.formats.safe_pickle import safe_load
from bridging.data.records import LABEL_SETS, Corpus, DataError, Dialogue
from bridging.data.validate import (
    check_dialogue_ids,
    check_label_range,
    check_not_four_way,
    map_speakers,
    stack_features,
    to_label_array,
)

#: Modality name -> Sample attribute.
MODALITY_FIELDS = {"a": "audio", "t": "sbert_sentence_embeddings", "v": "visual"}
SPLITS = ("train", "dev", "test")

#: Module paths under which the Sample class may have been pickled.
SAMPLE_MODULES = ("cogmen.Sample", "cogmen", "cogmen.sample", "cogmen.dataset", "cogmen.Dataset")

EXTRACTORS = {
    "a": {"name": "iemocap-public-audio", "dim_from_data": True, "note": "COGMEN pickle"},
    "t": {"name": "sentence-transformers/paraphrase-distilroberta-base-v1", "pooling": "mean"},
    "v": {"name": "iemocap-public-visual", "dim_from_data": True, "note": "COGMEN pickle"},
}


class CogmenSample:
    """Local stand-in for ``cogmen.Sample``: a plain attribute bag filled by unpickling."""

    def __init__(self, **fields):
        self.__dict__.update(fields)


def sample_class_map() -> dict[tuple[str, str], type]:
    """The ``extra`` mapping for :func:`safe_load` that resolves cogmen's Sample class."""
    return {(m, "Sample"): CogmenSample for m in SAMPLE_MODULES}


def read_cogmen(path, label_set: str = "iemocap_4") -> Corpus:
    """Read a COGMEN prepared file; labels must fit ``label_set`` (else DataError)."""
    where = os.fspath(path)
    obj = safe_load(path, encoding="latin1", extra=sample_class_map(), where=where)
    return cogmen_from_object(obj, label_set=label_set, where=where)


def is_cogmen_object(obj) -> bool:
    return isinstance(obj, dict) and "train" in obj and "test" in obj


def cogmen_from_object(obj, *, label_set: str, where: str, check_labels: bool = True) -> Corpus:
    """Build a Corpus from the unpickled top-level object of a COGMEN file.

    ``check_labels``: raise if a stored label is outside ``label_set``, or if iemocap_6 is
    asked for and the file looks 4-way (no exc or fru label).
    """
    if label_set not in LABEL_SETS:
        raise DataError(f"unknown label set {label_set!r}: expected one of {sorted(LABEL_SETS)}")
    if not is_cogmen_object(obj):
        raise DataError(
            f"{where}: not a COGMEN file: expected a dict with keys train, dev, test, got "
            f"{type(obj).__name__}"
            + (f" with keys {sorted(map(str, obj))}" if isinstance(obj, dict) else "")
        )
    splits: dict[str, list[Dialogue]] = {}
    for split in SPLITS:
        if split not in obj:
            continue
        samples = obj[split]
        if not isinstance(samples, (list, tuple)):
            raise DataError(
                f"{where}: split {split!r} is a {type(samples).__name__}, expected a list"
            )
        splits[split] = [
            _dialogue(s, where=where, split=split, index=i) for i, s in enumerate(samples)
        ]
    # the file stores its own dev split: a dialogue in two splits (or twice) is leakage
    check_dialogue_ids(where, {split: [d.id for d in ds] for split, ds in splits.items()})
    corpus = Corpus(
        splits=splits,
        label_names=LABEL_SETS[label_set],
        label_set=label_set,
        source_format="cogmen",
        path=where,
        extractors={m: dict(e) for m, e in EXTRACTORS.items()},
    )
    hint = ""
    if label_set == "iemocap_4":
        hint = "; a 6-way file (data_iemocap.pkl) needs label_set iemocap_6"
    if check_labels:
        check_label_range(corpus, hint=hint)
        check_not_four_way(corpus)
    return corpus


def _dialogue(sample, *, where: str, split: str, index: int) -> Dialogue:
    if not isinstance(sample, CogmenSample):
        raise DataError(
            f"{where}: split {split!r}, item {index}: a {type(sample).__name__}, "
            "expected a cogmen Sample"
        )
    fields = vars(sample)
    vid = fields.get("vid", f"{split}_{index}")
    vid = vid if isinstance(vid, str) else str(vid)
    for name in ("speaker", "label"):
        if fields.get(name) is None:
            raise DataError(
                f"{where}: split {split!r}, dialogue {vid!r}: the Sample has no {name!r} field"
            )
    features = {}
    for m, attr in MODALITY_FIELDS.items():
        values = fields.get(attr)
        if values is None:
            continue
        features[m] = stack_features(values, where=where, split=split, dialogue=vid, modality=m)
    sentences = fields.get("sentence")
    if sentences is not None:
        sentences = [s if isinstance(s, str) else str(s) for s in sentences]
    return Dialogue(
        id=vid,
        speakers=map_speakers(fields["speaker"], where=where, split=split, dialogue=vid),
        labels=to_label_array(fields["label"], where=where, split=split, dialogue=vid),
        features=features,
        sentences=sentences,
    )


_PICKLE_LOCK = threading.Lock()


def _sample_type() -> type:
    # A class that pickles as cogmen.Sample.Sample, the reference a real file holds.
    return type("Sample", (), {"__module__": "cogmen.Sample", "__qualname__": "Sample"})


def write_cogmen(corpus: Corpus, path, *, protocol: int = 4, force: bool = False) -> None:
    """Write ``corpus`` in COGMEN's prepared layout (atomically); an existing ``path`` is
    refused (an OutputError) unless ``force``.

    Each dialogue becomes a Sample pickled as ``cogmen.Sample.Sample`` with ``text`` and
    ``sbert_sentence_embeddings`` both holding the t features (the real files' ``text`` holds
    other features, which no loader here uses), ``audio``/``visual`` per-utterance lists and a
    2-D ``sbert_sentence_embeddings`` array, as SentenceTransformer.encode returns. A missing
    modality is written as None.
    """
    from bridging.utils.files import atomic_output, refuse_existing

    refuse_existing(path, force)
    sample_cls = _sample_type()
    data = {}
    for split in SPLITS:
        out = []
        for d in corpus.splits.get(split, []):
            s = sample_cls.__new__(sample_cls)
            t = d.features.get("t")
            s.vid = d.id
            s.speaker = [corpus.speaker_names[int(k)] for k in d.speakers]
            s.label = [int(y) for y in d.labels]
            s.text = None if t is None else list(t)
            s.audio = None if "a" not in d.features else list(d.features["a"])
            s.visual = None if "v" not in d.features else list(d.features["v"])
            s.sentence = list(d.sentences) if d.sentences is not None else [""] * len(d)
            s.sbert_sentence_embeddings = None if t is None else np.array(t, dtype=np.float32)
            out.append(s)
        data[split] = out
    with atomic_output(Path(path)) as tmp, open(tmp, "wb") as fh, _module_alias(sample_cls):
        pickle.dump(data, fh, protocol=protocol)


class _module_alias:
    """Temporarily register modules ``cogmen`` and ``cogmen.Sample`` so pickle can name the
    class; previous entries (e.g. a real cogmen install) are restored afterwards."""

    def __init__(self, cls: type):
        self.cls = cls

    def __enter__(self):
        _PICKLE_LOCK.acquire()
        self.saved = {k: sys.modules.get(k) for k in ("cogmen", "cogmen.Sample")}
        pkg = types.ModuleType("cogmen")
        mod = types.ModuleType("cogmen.Sample")
        mod.Sample = self.cls
        pkg.Sample = mod
        pkg.__path__ = []
        sys.modules["cogmen"] = pkg
        sys.modules["cogmen.Sample"] = mod
        return self

    def __exit__(self, *exc):
        try:
            for k, v in self.saved.items():
                if v is None:
                    sys.modules.pop(k, None)
                else:
                    sys.modules[k] = v
        finally:
            _PICKLE_LOCK.release()
        return False


__all__ = [
    "read_cogmen",
    "write_cogmen",
    "cogmen_from_object",
    "is_cogmen_object",
    "sample_class_map",
    "CogmenSample",
]
