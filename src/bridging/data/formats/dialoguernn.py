"""DialogueRNN's IEMOCAP features file (IEMOCAP_features.pkl, pickled by Python 2).

Layout: a 9-tuple ``(videoIDs, videoSpeakers, videoLabels, videoText, videoAudio,
videoVisual, videoSentence, trainVid, testVid)``. Each of the first seven is a dict
dialogue id -> per-utterance list (utterance ids, "M"/"F" speakers, 6-way label indices,
feature vectors, sentences); ``trainVid``/``testVid`` are ordered collections of dialogue ids.
It is loaded with ``encoding="latin1"`` through the allow-list unpickler.

Splits: train and test as stored; dev = the FIRST ``int(0.1 * n_train)`` training dialogues
in stored order (docs/method.md, section 1), train = the rest. A set (unordered) of ids is taken in
sorted order so that the split is reproducible. Labels: iemocap_6 as stored; iemocap_4 keeps
hap, sad, neu, ang and drops the exc and fru utterances (dialogues left empty are dropped).
"""

from __future__ import annotations

import os
import pickle
import warnings
from pathlib import Path

from bridging.data.formats.safe_pickle import safe_load
from bridging.data.records import LABEL_SETS, Corpus, DataError, Dialogue, six_way_corpus
from bridging.data.validate import (
    check_dialogue_ids,
    check_not_four_way,
    convert_label_set,
    map_speakers,
    stack_features,
    to_label_array,
)

FIELDS = (
    "videoIDs",
    "videoSpeakers",
    "videoLabels",
    "videoText",
    "videoAudio",
    "videoVisual",
    "videoSentence",
    "trainVid",
    "testVid",
)
#: Modality name -> index of its dict in the tuple.
MODALITY_FIELDS = {"a": 4, "t": 3, "v": 5}
DEV_FRACTION = 0.1

EXTRACTORS = {
    "a": {"name": "iemocap-public-audio", "note": "DialogueRNN pickle"},
    "t": {"name": "iemocap-public-text", "note": "DialogueRNN pickle"},
    "v": {"name": "iemocap-public-visual", "note": "DialogueRNN pickle"},
}


def read_dialoguernn(path, label_set: str = "iemocap_4") -> Corpus:
    """Read a DialogueRNN features file into a Corpus in ``label_set``."""
    where = os.fspath(path)
    obj = safe_load(path, encoding="latin1", where=where)
    return dialoguernn_from_object(obj, label_set=label_set, where=where)


def is_dialoguernn_object(obj) -> bool:
    return isinstance(obj, (tuple, list)) and len(obj) == len(FIELDS)


def _ids(value, *, name: str, where: str) -> list[str]:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, dict):  # dicts keep insertion order
        return list(value)
    try:
        return list(value)
    except TypeError:
        raise DataError(
            f"{where}: {name} is a {type(value).__name__}, expected a list of dialogue ids"
        ) from None


def dialoguernn_from_object(
    obj, *, label_set: str, where: str, check_labels: bool = True
) -> Corpus:
    """Build a Corpus from the unpickled 9-tuple of a DialogueRNN file.

    ``check_labels``: with iemocap_6, raise if the file looks 4-way (no exc or fru label).
    Labels outside the set are left to :func:`validate_corpus`.
    """
    if label_set not in LABEL_SETS:
        raise DataError(f"unknown label set {label_set!r}: expected one of {sorted(LABEL_SETS)}")
    if not is_dialoguernn_object(obj):
        got = type(obj).__name__
        if isinstance(obj, (tuple, list)):
            got += f" of {len(obj)} items"
        raise DataError(
            f"{where}: not a DialogueRNN file: expected a 9-tuple ({', '.join(FIELDS)}), got {got}"
        )
    for i in range(7):
        if obj[i] is not None and not isinstance(obj[i], dict):
            raise DataError(
                f"{where}: {FIELDS[i]} is a {type(obj[i]).__name__}, expected a dict "
                "dialogue id -> per-utterance list"
            )
    train_ids = _ids(obj[7], name="trainVid", where=where)
    test_ids = _ids(obj[8], name="testVid", where=where)
    n_dev = int(DEV_FRACTION * len(train_ids))
    order = {"train": train_ids[n_dev:], "dev": train_ids[:n_dev], "test": test_ids}
    # dev is carved from trainVid: an id twice there, or in trainVid and testVid, is leakage
    check_dialogue_ids(
        where,
        {s: [v if isinstance(v, str) else str(v) for v in ids] for s, ids in order.items()},
        fields={"train": "trainVid", "dev": "trainVid", "test": "testVid"},
    )
    # A modality whose dict is missing or empty is absent from the file.
    present = {m: i for m, i in MODALITY_FIELDS.items() if obj[i]}
    splits = {
        split: [_dialogue(obj, vid, present, where=where, split=split) for vid in ids]
        for split, ids in order.items()
    }
    extractors = {m: dict(e) for m, e in EXTRACTORS.items() if m in present}
    corpus = six_way_corpus(splits, "dialoguernn", where, extractors)
    if check_labels and label_set == "iemocap_6":
        check_not_four_way(corpus)
    return convert_label_set(corpus, label_set)


def _lookup(obj, field: int, vid, *, where: str, split: str):
    table = obj[field]
    if table is None or vid not in table:
        raise DataError(
            f"{where}: split {split!r}, dialogue {vid!r}: listed in "
            f"{'testVid' if split == 'test' else 'trainVid'} but missing from {FIELDS[field]}"
        )
    return table[vid]


def _dialogue(obj, vid, present: dict[str, int], *, where: str, split: str) -> Dialogue:
    name = vid if isinstance(vid, str) else str(vid)
    speakers = _lookup(obj, 1, vid, where=where, split=split)
    labels = _lookup(obj, 2, vid, where=where, split=split)
    features = {
        m: stack_features(
            _lookup(obj, i, vid, where=where, split=split),
            where=where,
            split=split,
            dialogue=name,
            modality=m,
        )
        for m, i in present.items()
    }
    sentences = None
    if obj[6] and vid in obj[6]:
        sentences = [s if isinstance(s, str) else str(s) for s in obj[6][vid]]
    return Dialogue(
        id=name,
        speakers=map_speakers(speakers, where=where, split=split, dialogue=name),
        labels=to_label_array(labels, where=where, split=split, dialogue=name),
        features=features,
        sentences=sentences,
    )


def write_dialoguernn(corpus: Corpus, path, *, protocol: int = 2, force: bool = False) -> None:
    """Write ``corpus`` as a DialogueRNN 9-tuple (atomically); an existing ``path`` is
    refused (an OutputError) unless ``force``.

    ``trainVid`` = dev dialogues then train dialogues, so that the reader's "first 10%" rule
    gives the same dev split back when len(dev) == int(0.1 * (len(dev) + len(train))); a
    warning says when it will not. Labels are written as stored (a 4-way corpus gives a
    4-way file, like DialogueRNN's IEMOCAP_features_4.pkl).
    """
    from bridging.utils.files import atomic_output, refuse_existing

    refuse_existing(path, force)
    train = list(corpus.splits.get("dev", [])) + list(corpus.splits.get("train", []))
    test = list(corpus.splits.get("test", []))
    n_dev = len(corpus.splits.get("dev", []))
    if n_dev != int(DEV_FRACTION * len(train)):
        warnings.warn(
            f"writing {n_dev} dev dialogues into trainVid; the reader will take the first "
            f"{int(DEV_FRACTION * len(train))} of {len(train)} as dev",
            stacklevel=2,
        )
    tables: list[dict] = [{} for _ in range(7)]
    for d in train + test:
        if d.id in tables[0]:
            raise DataError(f"{corpus.where()}: dialogue id {d.id!r} appears twice")
        n = len(d)
        tables[0][d.id] = [f"{d.id}_{i:03d}" for i in range(n)]
        tables[1][d.id] = [corpus.speaker_names[int(k)] for k in d.speakers]
        tables[2][d.id] = [int(y) for y in d.labels]
        for m, i in MODALITY_FIELDS.items():
            if m in d.features:
                tables[i][d.id] = list(d.features[m])
        tables[6][d.id] = list(d.sentences) if d.sentences is not None else [""] * n
    data = (*tables, [d.id for d in train], [d.id for d in test])
    with atomic_output(Path(path)) as tmp, open(tmp, "wb") as fh:
        pickle.dump(data, fh, protocol=protocol)


__all__ = [
    "read_dialoguernn",
    "write_dialoguernn",
    "dialoguernn_from_object",
    "is_dialoguernn_object",
    "FIELDS",
]
