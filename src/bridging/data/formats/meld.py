"""MELD's public feature pickles: the DialogueRNN/DialogueGCN layout, and MMGCN's with video.

**DialogueRNN/DialogueGCN** (declare-lab conv-emotion, ``MELD_features_raw.pkl``): a 9-tuple
``(videoIDs, videoSpeakers, videoLabelsEmotion, videoText, videoAudio, videoSentence,
trainVid, testVid, videoLabelsSentiment)``. Each dict maps a dialogue id (an integer) to a
per-utterance list: utterance ids; speakers as one-hot vectors (9 wide: a speaker's slot in
its dialogue, not a person); emotion label indices (meld_7: neutral 0, surprise 1, fear 2,
sadness 3, joy 4, disgust 5, anger 6); text features (600-d); audio features (300-d);
sentences; sentiment label indices (meld_3: neutral 0, positive 1, negative 2). ``trainVid``
holds MELD's train *and* dev dialogues, ``testVid`` the test ones. There is no video.

**MMGCN** (``MELD_features_raw1.pkl``): a 10-tuple ``(videoIDs, videoSpeakers, videoLabels,
videoText, videoAudio, videoVisual, videoSentence, trainVid, testVid, <unnamed>)``: the same
fields, the emotions as ``videoLabels``, plus visual features (342-d) at index 5. The 10th
item is unpacked into ``_`` by every public loader we found, so its meaning is not
established and it is not read: such a file gives ``meld_7`` only (docs/meld.md).

Files are loaded through the allow-list unpickler. Every check names the file, the split,
the dialogue and the field (``videoSpeakers``: not one-hot, widths that differ, more speakers
than ``max_speakers``; labels outside the label set; empty dialogues; fields of different
lengths; NaN or inf features).

**Dev split** (``dev_split``, docs/meld.md):

- ``official``: MELD's own split by dialogue id: the file numbers MELD's dev dialogues after
  its train dialogues, so dev = the ``trainVid`` ids 1039..1152, train = ids 0..1038; test =
  ``testVid`` (ids 1153..1432);
- ``first_fraction``: dev = the first ``int(0.1 * len(trainVid))`` dialogues of ``trainVid`` in
  stored order, train = the rest (the rule of DialogueRNN's MELD loader with ``valid=0.1``,
  and bridging's rule for IEMOCAP);
- ``auto`` (the default): ``official`` when the file allows it (every ``trainVid`` id an
  integer in 0..1152, some below 1039 and some above), else ``first_fraction``.
"""

from __future__ import annotations

import numbers
import os
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bridging.data.formats.dialoguernn import FIELDS as IEMOCAP_FIELDS
from bridging.data.formats.dialoguernn import _ids as id_list  # same rules for MELD's ids
from bridging.data.formats.safe_pickle import safe_load
from bridging.data.records import LABEL_SETS, MELD_LABEL_SETS, Corpus, DataError, Dialogue
from bridging.data.validate import (
    check_dialogue_ids,
    first_non_finite,
    limit_speakers,
    stack_features,
    to_label_array,
)

#: MELD's official dialogue-id ranges in the feature files (train, dev; test follows).
TRAIN_IDS = range(0, 1039)
DEV_IDS = range(1039, 1153)
#: MELD's speaker one-hot width (the most speakers in one dialogue).
N_SPEAKERS = 9
DEV_SPLITS = ("auto", "official", "first_fraction")
DEV_FRACTION = 0.1


@dataclass(frozen=True)
class Layout:
    """Where each field of a MELD tuple is."""

    name: str  # the Corpus source_format
    fields: tuple[str, ...]
    labels: dict  # label set -> index of its dict
    modalities: dict  # modality -> index of its dict
    sentences: int
    train: int
    test: int
    speakers: int = 1
    ids: int = 0


DIALOGUERNN = Layout(
    name="meld",
    fields=(
        "videoIDs",
        "videoSpeakers",
        "videoLabelsEmotion",
        "videoText",
        "videoAudio",
        "videoSentence",
        "trainVid",
        "testVid",
        "videoLabelsSentiment",
    ),
    labels={"meld_7": 2, "meld_3": 8},
    modalities={"a": 4, "t": 3},
    sentences=5,
    train=6,
    test=7,
)
MMGCN = Layout(
    name="meld_mmgcn",
    # IEMOCAP's DialogueRNN field names, then the unnamed 10th item
    fields=(*IEMOCAP_FIELDS, "(unnamed 10th item)"),
    labels={"meld_7": 2},
    modalities={"a": 4, "t": 3, "v": 5},
    sentences=6,
    train=7,
    test=8,
)
LAYOUTS = {"dialoguernn": DIALOGUERNN, "mmgcn": MMGCN}

EXTRACTORS = {
    "a": {"name": "meld-public-audio", "note": "MELD feature pickle (300-d)"},
    "t": {"name": "meld-public-text", "note": "MELD feature pickle (600-d)"},
    "v": {"name": "meld-public-visual", "note": "MMGCN's MELD pickle (342-d)"},
}


# -- detection -------------------------------------------------------------------------------


def _speaker_kind(table) -> str | None:
    """ "codes" (IEMOCAP's "M"/"F"), "vectors" (MELD's one-hots) or None (cannot tell)."""
    if not isinstance(table, dict):
        return None
    for value in table.values():
        try:
            first = next(iter(value))
        except (TypeError, StopIteration):
            continue
        return "codes" if isinstance(first, (str, bytes)) else "vectors"
    return None


def layout_of(obj) -> Layout | None:
    """The MELD layout of an unpickled object, or None if it is not a MELD tuple.

    A 9-tuple is also IEMOCAP's DialogueRNN layout: MELD's has one-hot speakers (IEMOCAP's
    are "M"/"F") and a dict as its last item (IEMOCAP's is testVid)."""
    if not isinstance(obj, (tuple, list)) or len(obj) not in (9, 10):
        return None
    kind = _speaker_kind(obj[1])
    if kind == "codes":
        return None
    if len(obj) == 10:
        ids_ok = not isinstance(obj[7], dict) and not isinstance(obj[8], dict)
        return MMGCN if ids_ok else None
    if kind == "vectors":
        return DIALOGUERNN
    ids_ok = not isinstance(obj[6], dict) and not isinstance(obj[7], dict)
    return DIALOGUERNN if ids_ok and isinstance(obj[8], dict) else None


def is_meld_object(obj) -> bool:
    return layout_of(obj) is not None


# -- splits ----------------------------------------------------------------------------------


def _is_int_id(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def official_ids_apply(train_ids) -> bool:
    """True when ``trainVid`` follows MELD's numbering: integer ids in 0..1152 with some
    below and some above 1039 (train and dev)."""
    if not train_ids or not all(_is_int_id(v) for v in train_ids):
        return False
    ids = [int(v) for v in train_ids]
    return (
        min(ids) >= TRAIN_IDS.start
        and max(ids) < DEV_IDS.stop
        and any(v in DEV_IDS for v in ids)
        and any(v in TRAIN_IDS for v in ids)
    )


def _describe_ids(ids) -> str:
    bad = next((v for v in ids if not _is_int_id(v)), None)
    if bad is not None:
        return f"{len(ids)} ids, among them {bad!r} (not an integer)"
    if not ids:
        return "no id"
    return f"{len(ids)} integer ids from {min(ids)} to {max(ids)}"


def split_ids(train_ids: list, test_ids: list, dev_split: str, *, where: str, field: str):
    """``({"train", "dev", "test"} -> ids, rule)`` by the ``dev_split`` rule (module doc)."""
    if dev_split not in DEV_SPLITS:
        raise DataError(f"unknown dev_split {dev_split!r}: expected one of {', '.join(DEV_SPLITS)}")
    official = official_ids_apply(train_ids)
    if dev_split == "official" and not official:
        raise DataError(
            f"{where}: {field}: dev_split=official needs MELD's dialogue ids (integers, train "
            f"{TRAIN_IDS.start}..{TRAIN_IDS.stop - 1}, dev {DEV_IDS.start}..{DEV_IDS.stop - 1}); "
            f"it holds {_describe_ids(train_ids)}: use dev_split=first_fraction (or auto)"
        )
    if dev_split == "official" or (dev_split == "auto" and official):
        dev = [v for v in train_ids if int(v) in DEV_IDS]
        train = [v for v in train_ids if int(v) in TRAIN_IDS]
        rule = (
            f"official: dev = {field} ids {DEV_IDS.start}..{DEV_IDS.stop - 1} "
            f"({len(dev)} dialogues), train = ids {TRAIN_IDS.start}..{TRAIN_IDS.stop - 1}"
        )
        return {"train": train, "dev": dev, "test": list(test_ids)}, rule
    n_dev = int(DEV_FRACTION * len(train_ids))
    rule = (
        f"first_fraction: dev = the first {n_dev} of the {len(train_ids)} {field} dialogues "
        "in stored order, train = the rest"
    )
    return {"train": train_ids[n_dev:], "dev": train_ids[:n_dev], "test": list(test_ids)}, rule


# -- reading ---------------------------------------------------------------------------------


def read_meld(
    path, label_set: str | None = "meld_7", *, dev_split: str = "auto", max_speakers=None
) -> Corpus:
    """Read a MELD feature pickle (either layout) into a Corpus in ``label_set``."""
    where = os.fspath(path)
    obj = safe_load(path, encoding="latin1", where=where)
    return meld_from_object(
        obj, label_set=label_set, where=where, dev_split=dev_split, max_speakers=max_speakers
    )


def _vid_name(vid) -> str:
    return str(int(vid)) if _is_int_id(vid) else vid if isinstance(vid, str) else str(vid)


def meld_from_object(
    obj,
    *,
    label_set: str | None,
    where: str,
    dev_split: str = "auto",
    max_speakers=None,
) -> Corpus:
    """Build a Corpus from an unpickled MELD tuple. ``label_set`` None: meld_7 (emotions).

    ``max_speakers``: refuse dialogues with more speakers and size the corpus to it (None:
    the one-hot width). Every label set the layout stores is checked."""
    layout = layout_of(obj)
    if layout is None:
        got = type(obj).__name__
        if isinstance(obj, (tuple, list)):
            got += f" of {len(obj)} items"
        raise DataError(
            f"{where}: not a MELD file: expected the 9-tuple ({', '.join(DIALOGUERNN.fields)}) "
            f"or MMGCN's 10-tuple, got {got}"
        )
    label_set = label_set or "meld_7"
    if label_set not in MELD_LABEL_SETS:
        raise DataError(
            f"{where}: a MELD file holds {' and '.join(MELD_LABEL_SETS)} labels; {label_set} "
            "was asked for (data.label_set)"
        )
    if label_set not in layout.labels:
        raise DataError(
            f"{where}: an MMGCN-style MELD file (10 items): its videoLabels are the emotions "
            f"(meld_7); {label_set} is not read from it (its 10th item is not documented by "
            "any public loader, docs/meld.md)"
        )
    tables = [layout.speakers, layout.ids, layout.sentences]
    tables += list(layout.labels.values()) + list(layout.modalities.values())
    for i in tables:
        if obj[i] is not None and not isinstance(obj[i], dict):
            raise DataError(
                f"{where}: {layout.fields[i]} is a {type(obj[i]).__name__}, expected a dict "
                "dialogue id -> per-utterance list"
            )
    for i in (layout.speakers, *layout.labels.values()):
        if not obj[i]:
            raise DataError(f"{where}: {layout.fields[i]} is empty or missing")
    f_train, f_test = layout.fields[layout.train], layout.fields[layout.test]
    train_ids = id_list(obj[layout.train], name=f_train, where=where)
    test_ids = id_list(obj[layout.test], name=f_test, where=where)
    order, rule = split_ids(train_ids, test_ids, dev_split, where=where, field=f_train)
    check_dialogue_ids(
        where,
        {s: [_vid_name(v) for v in ids] for s, ids in order.items()},
        fields={"train": f_train, "dev": f_train, "test": f_test},
    )
    present = {m: i for m, i in layout.modalities.items() if obj[i]}
    reader = _DialogueReader(obj, layout, label_set, present, where)
    splits = {split: [reader.read(v, split) for v in ids] for split, ids in order.items()}
    width = reader.width or N_SPEAKERS
    corpus = Corpus(
        splits=splits,
        label_names=LABEL_SETS[label_set],
        label_set=label_set,
        source_format=layout.name,
        path=where,
        n_speakers=width,
        speaker_names=speaker_names(width),
        extractors={m: dict(EXTRACTORS[m]) for m in present},
        split_rule=rule,
    )
    return limit_speakers(corpus, max_speakers)


def speaker_names(n: int) -> tuple[str, ...]:
    """MELD's speakers are slots in a dialogue (first speaker, second, ...): s0, s1, ..."""
    return tuple(f"s{k}" for k in range(n))


class _DialogueReader:
    """Reads one dialogue at a time; remembers the speaker one-hot width of the first."""

    def __init__(self, obj, layout: Layout, label_set: str, present: dict, where: str):
        self.obj, self.layout, self.label_set = obj, layout, label_set
        self.present, self.where = present, where
        self.main = layout.labels[label_set]
        self.width: int | None = None
        self.width_from: str | None = None

    def _field(self, i: int, vid, split: str, at: str, *, required: bool = True):
        table = self.obj[i]
        if table is None or vid not in table:
            if not required:
                return None
            listed = self.layout.fields[self.layout.test if split == "test" else self.layout.train]
            raise DataError(f"{at}: listed in {listed} but missing from {self.layout.fields[i]}")
        return table[vid]

    def _count(self, name: str, got: int, n: int, at: str, what: str = "entry") -> None:
        if got != n:
            raise DataError(
                f"{at}: {name} has {got} entries but {self.layout.fields[self.main]} has {n}: "
                f"expected one {what} per utterance"
            )

    def _labels(self, i: int, vid, split: str, at: str, label_set: str, n=None) -> np.ndarray:
        name = self.layout.fields[i]
        try:
            y = to_label_array(
                self._field(i, vid, split, at),
                where=self.where,
                split=split,
                dialogue=_vid_name(vid),
            )
        except DataError as e:
            raise DataError(f"{at}: {name}: {str(e).split(': ', 2)[-1]}") from None
        if n is None and y.size == 0:
            raise DataError(f"{at}: {name} is empty: expected at least one utterance")
        if n is not None:
            self._count(name, y.size, n, at, "label")
        names = LABEL_SETS[label_set]
        bad = (y < 0) | (y >= len(names))
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{at}: {name}: label of utterance {k} is {int(y[k])}, outside {label_set} "
                f"(expected 0..{len(names) - 1}: {', '.join(names)})"
            )
        return y

    def _speakers(self, vid, split: str, at: str, n: int) -> np.ndarray:
        name = self.layout.fields[self.layout.speakers]
        values = self._field(self.layout.speakers, vid, split, at)
        try:
            rows = [np.asarray(v, dtype=np.float64).ravel() for v in values]
        except (TypeError, ValueError) as e:
            raise DataError(f"{at}: {name}: not numeric one-hot vectors: {e}") from None
        self._count(name, len(rows), n, at, "speaker")
        if self.width is None:
            self.width, self.width_from = len(rows[0]), at.split(": ", 1)[-1]
        if all(len(r) == self.width for r in rows):
            grid = np.stack(rows)
            ones = grid == 1.0
            if ((grid == 0.0) | ones).all() and (ones.sum(1) == 1).all():
                return ones.argmax(1).astype(np.int64)  # the common case, checked at once
        for k, row in enumerate(rows):  # name the first bad utterance
            if len(row) != self.width:
                raise DataError(
                    f"{at}: {name}: utterance {k} is {len(row)} wide, expected {self.width} "
                    f"like the speakers of {self.width_from}"
                )
            if np.count_nonzero(row == 1.0) != 1 or np.count_nonzero(row) != 1:
                shown = ", ".join(f"{v:g}" for v in row[:12]) + (", ..." if len(row) > 12 else "")
                raise DataError(
                    f"{at}: {name}: utterance {k} is [{shown}], expected a one-hot vector "
                    "(a single 1, the rest 0)"
                )
        raise AssertionError("unreachable: a bad speaker row was not found")  # pragma: no cover

    def read(self, vid, split: str) -> Dialogue:
        name = _vid_name(vid)
        at = f"{self.where}: split {split!r}, dialogue {name!r}"
        labels = self._labels(self.main, vid, split, at, self.label_set)
        n = labels.size
        other = {
            ls: self._labels(i, vid, split, at, ls, n)
            for ls, i in self.layout.labels.items()
            if ls != self.label_set
        }
        speakers = self._speakers(vid, split, at, n)
        features = {}
        for m, i in self.present.items():
            field = self.layout.fields[i]
            values = self._field(i, vid, split, at)
            x = stack_features(values, where=self.where, split=split, dialogue=name, modality=m)
            self._count(field, x.shape[0], n, at, "feature vector")
            bad = first_non_finite(x)
            if bad is not None:
                raise DataError(
                    f"{at}: {field}: utterance {bad[0]} has a non-finite feature "
                    f"({x[bad]} at index {bad[1]}): expected finite numbers (no NaN or inf)"
                )
            features[m] = x
        sentences = self._field(self.layout.sentences, vid, split, at, required=False)
        if sentences is not None:
            sentences = [s if isinstance(s, str) else str(s) for s in sentences]
            self._count(
                self.layout.fields[self.layout.sentences], len(sentences), n, at, "sentence"
            )
        return Dialogue(
            id=name,
            speakers=speakers,
            labels=labels,
            features=features,
            sentences=sentences,
            other_labels=other or None,
        )


# -- writing ---------------------------------------------------------------------------------


def _labels_in(d: Dialogue, corpus: Corpus, label_set: str) -> np.ndarray:
    if corpus.label_set == label_set:
        return d.labels
    if d.other_labels and label_set in d.other_labels:
        return d.other_labels[label_set]
    raise DataError(
        f"{corpus.where()}: dialogue {d.id!r}: the MELD layout stores {label_set} labels; the "
        f"corpus has {corpus.label_set} labels only"
    )


def _file_id(vid: str):
    """MELD's dialogue ids are integers: ``"1039"`` is written as 1039."""
    return int(vid) if vid.isdigit() else vid


def _train_vid_order(corpus: Corpus) -> list:
    """``trainVid`` in the order from which ``dev_split=auto`` gives the corpus's dev split
    back: train then dev when the ids follow MELD's numbering (as MELD's own file), else dev
    first (the first_fraction rule); a warning says when neither does."""
    train = [_file_id(d.id) for d in corpus.splits.get("train", [])]
    dev = [_file_id(d.id) for d in corpus.splits.get("dev", [])]
    want = sorted(map(str, dev))
    for ids in (train + dev, dev + train):
        got, _ = split_ids(ids, [], "auto", where=corpus.where(), field="trainVid")
        if sorted(map(str, got["dev"])) == want:
            return ids
    warnings.warn(
        f"writing {len(dev)} dev dialogues into trainVid; reading the file back with "
        f"dev_split=auto takes another dev split (the first {int(DEV_FRACTION * len(dev + train))}"
        f" of {len(dev + train)}, or MELD's id ranges)",
        stacklevel=3,
    )
    return dev + train


def write_meld(
    corpus: Corpus, path, *, layout: str = "dialoguernn", protocol: int = 4, force: bool = False
) -> None:
    """Write ``corpus`` as a MELD feature pickle (atomically); an existing ``path`` is refused
    (an OutputError) unless ``force``.

    ``layout``: ``dialoguernn`` (the 9-tuple: needs both meld_7 and meld_3 labels, from the
    corpus labels and ``Dialogue.other_labels``) or ``mmgcn`` (the 10-tuple with video; its
    10th item is written as an empty dict). Dialogue ids made of digits are written as
    integers, like MELD's; ``trainVid`` = train then dev dialogues (see
    :func:`_train_vid_order`). Speakers are one-hot rows ``corpus.n_speakers`` wide, features
    one float32 ``[n, D]`` array per dialogue.
    """
    from bridging.utils.files import atomic_output, refuse_existing

    if layout not in LAYOUTS:
        raise DataError(f"unknown MELD layout {layout!r}: expected one of {sorted(LAYOUTS)}")
    spec = LAYOUTS[layout]
    refuse_existing(path, force)
    train_vid = _train_vid_order(corpus)
    test_vid = [_file_id(d.id) for d in corpus.splits.get("test", [])]
    dialogues = [d for ds in corpus.splits.values() for d in ds]
    tables: list = [{} for _ in spec.fields]
    eye = np.eye(corpus.n_speakers, dtype=np.float32)
    for d in dialogues:
        vid = _file_id(d.id)
        if vid in tables[spec.ids]:
            raise DataError(f"{corpus.where()}: dialogue id {d.id!r} appears twice")
        n = len(d)
        tables[spec.ids][vid] = list(range(n))
        tables[spec.speakers][vid] = eye[d.speakers].tolist()
        for label_set, i in spec.labels.items():
            tables[i][vid] = [int(y) for y in _labels_in(d, corpus, label_set)]
        for m, i in spec.modalities.items():
            if m in d.features:
                tables[i][vid] = np.ascontiguousarray(d.features[m], dtype=np.float32)
        tables[spec.sentences][vid] = list(d.sentences) if d.sentences is not None else [""] * n
    tables[spec.train], tables[spec.test] = train_vid, test_vid
    with atomic_output(Path(path)) as tmp, open(tmp, "wb") as fh:
        pickle.dump(tuple(tables), fh, protocol=protocol)


__all__ = [
    "read_meld",
    "write_meld",
    "meld_from_object",
    "is_meld_object",
    "layout_of",
    "split_ids",
    "official_ids_apply",
    "speaker_names",
    "DEV_SPLITS",
    "TRAIN_IDS",
    "DEV_IDS",
    "N_SPEAKERS",
]
