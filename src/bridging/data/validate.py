"""Checks on a loaded :class:`Corpus`, and the helpers readers share to build one.

Every error is a :class:`DataError` whose message names the file (``corpus.where()``), the
split, the dialogue id, the field and what was expected, so that a bad real-data file can be
fixed without a debugger.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from bridging.data.records import (
    IGNORE_INDEX,
    LABEL_SETS,
    MELD_LABEL_SETS,
    SPEAKER_CODES,
    Corpus,
    DataError,
    Dialogue,
    ordered_modalities,
)

#: Splits that must be present and non-empty; dev may be empty (it can be derived).
REQUIRED_SPLITS = ("train", "test")


def _at(where: str, split: str, dialogue: str) -> str:
    return f"{where}: split {split!r}, dialogue {dialogue!r}"


def stack_features(values, *, where: str, split: str, dialogue: str, modality: str) -> np.ndarray:
    """Turn a per-utterance list of vectors (or a 2-D array) into a float32 array [n, D].

    An utterance whose size differs from the first one's is a DataError naming the file,
    dialogue, modality and utterance (instead of numpy's broadcast error).
    """
    at = f"{_at(where, split, dialogue)}, modality {modality!r}"
    if isinstance(values, np.ndarray):
        if values.ndim == 2:
            arr = values
        elif values.ndim == 1 and values.dtype == object:
            values = list(values)
            arr = None
        else:
            raise DataError(
                f"{at}: features have shape {values.shape}, expected [utterances, features]"
            )
    else:
        arr = None
    if arr is None:
        try:
            values = list(values)
        except TypeError:
            raise DataError(
                f"{at}: features are a {type(values).__name__}, expected a list of vectors"
            ) from None
        if not values:
            return np.zeros((0, 0), dtype=np.float32)
        shapes = [np.shape(u) for u in values]
        first = shapes[0]
        if len(first) != 1:
            raise DataError(f"{at}: utterance 0 has feature shape {first}, expected a vector")
        for i, s in enumerate(shapes):
            if s != first:
                raise DataError(
                    f"{at}: utterance {i} has feature shape {s}, expected {first} "
                    "(the size of utterance 0)"
                )
        try:
            arr = np.asarray(values, dtype=np.float32)
        except (TypeError, ValueError) as e:
            raise DataError(f"{at}: features are not numeric: {e}") from None
    if arr.dtype != np.float32:
        try:
            arr = arr.astype(np.float32)
        except (TypeError, ValueError) as e:
            raise DataError(f"{at}: features are not numeric: {e}") from None
    return np.ascontiguousarray(arr)


def map_speakers(codes, *, where: str, split: str, dialogue: str) -> np.ndarray:
    """Map speaker codes ("M"/"F") to ids; an unknown code is a DataError."""
    out = np.empty(len(codes), dtype=np.int64)
    for i, c in enumerate(codes):
        if isinstance(c, bytes):
            c = c.decode("latin1")
        idx = SPEAKER_CODES.get(c) if isinstance(c, str) else None
        if idx is None:
            raise DataError(
                f"{_at(where, split, dialogue)}: speaker of utterance {i} is {c!r}, "
                f"expected one of {sorted(SPEAKER_CODES)}"
            )
        out[i] = idx
    return out


def to_label_array(labels, *, where: str, split: str, dialogue: str) -> np.ndarray:
    """Labels as int64 [n]; non-integer labels are a DataError."""
    try:
        arr = np.asarray(labels)
    except (TypeError, ValueError) as e:
        raise DataError(f"{_at(where, split, dialogue)}: labels unreadable: {e}") from None
    if arr.ndim != 1:
        raise DataError(
            f"{_at(where, split, dialogue)}: labels have shape {arr.shape}, expected a list"
        )
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
            pass  # integral floats, as some re-saved files have
        else:
            raise DataError(
                f"{_at(where, split, dialogue)}: labels are {arr.dtype}, expected integers"
            )
    return arr.astype(np.int64)


def _first_outside(labels: np.ndarray, n_classes: int) -> int | None:
    """The position of the first label outside ``0..n_classes-1`` (IGNORE_INDEX allowed)."""
    bad = (labels != IGNORE_INDEX) & ((labels < 0) | (labels >= n_classes))
    return int(np.flatnonzero(bad)[0]) if bad.any() else None


def check_label_range(corpus: Corpus, *, hint: str = "") -> None:
    """Raise if any stored label is outside the corpus label set (IGNORE_INDEX allowed)."""
    n = len(corpus.label_names)
    for split, dialogues in corpus.splits.items():
        for d in dialogues:
            i = _first_outside(d.labels, n)
            if i is not None:
                raise DataError(
                    f"{_at(corpus.where(), split, d.id)}: label of utterance {i} is "
                    f"{int(d.labels[i])}, outside the label set {corpus.label_set} "
                    f"(0..{n - 1}: {', '.join(corpus.label_names)}){hint}"
                )


def check_not_four_way(corpus: Corpus, *, min_utterances: int = 200) -> None:
    """Refuse a 4-way file read as iemocap_6: no exc or fru label among many utterances.

    The labels 0..3 mean the same in both sets, so a 4-way file (data_iemocap_4.pkl,
    IEMOCAP_features_4.pkl) would otherwise load silently as a 6-way corpus with two empty
    classes. Small corpora are not judged.
    """
    if corpus.label_set != "iemocap_6":
        return
    labels = [d.labels for ds in corpus.splits.values() for d in ds]
    n = sum(len(y) for y in labels)
    if n >= min_utterances and not any((y >= 4).any() for y in labels):
        raise DataError(
            f"{corpus.where()}: iemocap_6 was asked for but none of its {n} utterances is "
            "exc or fru: it looks like a 4-way file; use label_set iemocap_4"
        )


def _drop_utterances(d: Dialogue, keep: np.ndarray) -> Dialogue:
    """``d`` with only the utterances where ``keep`` is True (every per-utterance field)."""
    return Dialogue(
        id=d.id,
        speakers=d.speakers[keep],
        labels=d.labels[keep],
        features={m: x[keep] for m, x in d.features.items()},
        sentences=None if d.sentences is None else [s for s, k in zip(d.sentences, keep) if k],
        latent=None if d.latent is None else d.latent[keep],
        other_labels=(
            None if d.other_labels is None else {k: v[keep] for k, v in d.other_labels.items()}
        ),
        persons=None if d.persons is None else [p for p, k in zip(d.persons, keep) if k],
    )


def _swap_label_set(corpus: Corpus, label_set: str) -> Corpus:
    """MELD: the same utterances in the other label set, from ``Dialogue.other_labels``
    (MELD files store both the emotion and the sentiment of every utterance)."""
    splits = {}
    for split, dialogues in corpus.splits.items():
        out = []
        for d in dialogues:
            other = d.other_labels or {}
            if label_set not in other:
                raise DataError(
                    f"{_at(corpus.where(), split, d.id)}: holds {corpus.label_set} labels only; "
                    f"{label_set} was asked for and the data has no {label_set} labels"
                )
            rest = {k: v for k, v in other.items() if k != label_set}
            rest[corpus.label_set] = d.labels
            out.append(replace(d, labels=other[label_set], other_labels=rest))
        splits[split] = out
    return replace(corpus, splits=splits, label_set=label_set, label_names=LABEL_SETS[label_set])


def convert_label_set(corpus: Corpus, label_set: str) -> Corpus:
    """Return ``corpus`` in ``label_set``.

    iemocap_6 -> iemocap_4 keeps hap, sad, neu, ang (same indices) and drops the exc and fru
    utterances (docs/method.md, section 1); dialogues left empty are dropped. Asking for iemocap_6
    from a 4-way corpus is an error (the dropped utterances cannot be restored). meld_7 <->
    meld_3 swaps in the other labels MELD files store for the same utterances
    (``Dialogue.other_labels``, docs/meld.md).
    """
    if label_set not in LABEL_SETS:
        raise DataError(f"unknown label set {label_set!r}: expected one of {sorted(LABEL_SETS)}")
    if corpus.label_set == label_set:
        return corpus
    if corpus.label_set in MELD_LABEL_SETS and label_set in MELD_LABEL_SETS:
        return _swap_label_set(corpus, label_set)
    if corpus.label_set == "iemocap_6" and label_set == "iemocap_4":
        dropped = (LABEL_SETS["iemocap_6"].index("exc"), LABEL_SETS["iemocap_6"].index("fru"))
        splits = {}
        for split, dialogues in corpus.splits.items():
            kept = []
            for d in dialogues:
                keep = ~np.isin(d.labels, dropped)
                if not keep.any():
                    continue
                kept.append(d if keep.all() else _drop_utterances(d, keep))
            splits[split] = kept
        return replace(
            corpus, splits=splits, label_set=label_set, label_names=LABEL_SETS[label_set]
        )
    raise DataError(
        f"{corpus.where()}: holds {corpus.label_set} labels; {label_set} was asked for and "
        f"cannot be made from it (supported: iemocap_6 -> iemocap_4, meld_7 <-> meld_3)"
    )


def limit_speakers(corpus: Corpus, max_speakers: int | None) -> Corpus:
    """Refuse a dialogue with a speaker id >= ``max_speakers`` (naming the dialogue) and size
    the corpus to ``max_speakers`` speakers when it allows more (``None``: as stored).

    The model's relation types and speaker handling are sized from ``corpus.n_speakers``, so
    this is how a config caps them (``data.max_speakers``; MELD's files allow 9)."""
    if max_speakers is None:
        return corpus
    limit = int(max_speakers)
    if limit < 1:
        raise DataError(f"max_speakers must be >= 1, got {max_speakers!r}")
    for split, dialogues in corpus.splits.items():
        for d in dialogues:
            bad = d.speakers >= limit
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                n = len(np.unique(d.speakers))
                raise DataError(
                    f"{_at(corpus.where(), split, d.id)}: speakers: utterance {i} is speaker "
                    f"{int(d.speakers[i])} of a dialogue with {n} speakers, but at most "
                    f"{limit} speakers are supported (data.max_speakers={limit}: ids "
                    f"0..{limit - 1})"
                )
    if corpus.n_speakers <= limit:
        return corpus
    return replace(corpus, n_speakers=limit, speaker_names=tuple(corpus.speaker_names[:limit]))


def first_non_finite(x: np.ndarray) -> tuple[int, int] | None:
    """(utterance, feature index) of the first NaN or inf of a [n, D] array, or None."""
    finite = np.isfinite(x)
    if finite.all():
        return None
    i, j = (int(v[0]) for v in np.nonzero(~finite))
    return i, j


def check_dialogue_ids(where: str, splits: dict, fields: dict | None = None) -> None:
    """Refuse leakage: a dialogue id listed twice in a split, or in two splits (train and
    test, dev and test, train and dev). ``splits``: split -> ordered ids; ``fields``: split
    -> the stored field it comes from (e.g. ``trainVid``), named in the message."""
    fields = fields or {}

    def name(split: str) -> str:
        return f"split {split!r}" + (f" ({fields[split]})" if fields.get(split) else "")

    seen: dict[str, tuple[str, int]] = {}
    for split, ids in splits.items():
        for i, vid in enumerate(ids):
            first = seen.get(vid)
            if first is None:
                seen[vid] = (split, i)
            elif first[0] == split:
                raise DataError(
                    f"{where}: dialogue id {vid!r} appears twice in {name(split)} (items "
                    f"{first[1]} and {i}): each dialogue must be listed once"
                )
            else:
                raise DataError(
                    f"{where}: dialogue id {vid!r} is in {name(first[0])} and in "
                    f"{name(split)}: a dialogue must be in one split only (leakage)"
                )


def validate_corpus(corpus: Corpus, modalities=None) -> Corpus:
    """Check a corpus for everything the tensors and models rely on; return it unchanged.

    ``modalities``: the modalities a recipe needs (each must be present in every dialogue);
    default: those of the first dialogue, which every dialogue must then have.
    """
    where = corpus.where()
    check_dialogue_ids(where, {s: [d.id for d in ds] for s, ds in corpus.splits.items()})
    if corpus.label_set in LABEL_SETS and tuple(corpus.label_names) != LABEL_SETS[corpus.label_set]:
        raise DataError(
            f"{where}: label names {list(corpus.label_names)} do not match label set "
            f"{corpus.label_set} {list(LABEL_SETS[corpus.label_set])}"
        )
    for split in REQUIRED_SPLITS:
        if not corpus.splits.get(split):
            raise DataError(
                f"{where}: split {split!r} is "
                f"{'missing' if split not in corpus.splits else 'empty'}: train and test "
                f"must hold at least one dialogue (splits: "
                f"{ {k: len(v) for k, v in corpus.splits.items()} })"
            )
    present = corpus.modalities
    if modalities is None:
        wanted = present
        if not wanted:
            raise DataError(f"{where}: the dialogues have no feature modality")
    else:
        wanted = ordered_modalities(modalities)
        missing = [m for m in wanted if m not in present]
        if missing:
            raise DataError(
                f"{where}: modality {missing} asked for but absent: the data has "
                f"{present or 'no modality'}"
            )
    n_classes = len(corpus.label_names)
    sizes: dict[str, tuple[int, str, str]] = {}
    for split, dialogues in corpus.splits.items():
        for d in dialogues:
            at = _at(where, split, d.id)
            n = len(d.labels)
            if n == 0:
                raise DataError(f"{at}: empty dialogue (no utterance)")
            if d.labels.ndim != 1:
                raise DataError(f"{at}: labels have shape {d.labels.shape}, expected [{n}]")
            if d.speakers.shape != (n,):
                raise DataError(
                    f"{at}: speakers has {d.speakers.shape[0] if d.speakers.ndim else 0} "
                    f"entries but labels has {n}: expected one speaker per utterance"
                )
            if d.sentences is not None and len(d.sentences) != n:
                raise DataError(
                    f"{at}: sentences has {len(d.sentences)} entries but labels has {n}: "
                    "expected one sentence per utterance"
                )
            i = _first_outside(d.labels, n_classes)
            if i is not None:
                raise DataError(
                    f"{at}: label of utterance {i} is {int(d.labels[i])}, outside the label "
                    f"set {corpus.label_set} (expected 0..{n_classes - 1} or {IGNORE_INDEX})"
                )
            bad = (d.speakers < 0) | (d.speakers >= corpus.n_speakers)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataError(
                    f"{at}: speaker id of utterance {i} is {int(d.speakers[i])}, expected "
                    f"0..{corpus.n_speakers - 1} ({', '.join(corpus.speaker_names)})"
                )
            if modalities is None and set(d.features) != set(wanted):
                raise DataError(
                    f"{at}: has modalities {ordered_modalities(d.features)} but the first "
                    f"dialogue has {wanted}: every dialogue must have the same modalities"
                )
            for m in wanted:
                x = d.features.get(m)
                if x is None:
                    raise DataError(
                        f"{at}: modality {m!r} asked for but absent in this dialogue "
                        f"(it has {ordered_modalities(d.features)})"
                    )
                if x.ndim != 2 or x.shape[0] != n:
                    raise DataError(
                        f"{at}: modality {m!r} has shape {x.shape}, expected [{n}, D]: "
                        f"one feature vector per utterance ({n} labels)"
                    )
                if not np.issubdtype(x.dtype, np.floating):
                    raise DataError(f"{at}: modality {m!r} has dtype {x.dtype}, expected float")
                first = sizes.setdefault(m, (x.shape[1], split, d.id))
                if x.shape[1] != first[0]:
                    raise DataError(
                        f"{at}: modality {m!r} has {x.shape[1]} features per utterance but "
                        f"{first[0]} in split {first[1]!r}, dialogue {first[2]!r}: feature "
                        "sizes must agree"
                    )
                bad = first_non_finite(x)
                if bad is not None:
                    i, j = bad
                    raise DataError(
                        f"{at}: modality {m!r}, utterance {i} has a non-finite feature "
                        f"({x[i, j]} at index {j}): expected finite numbers (no NaN or inf)"
                    )
    return corpus


__all__ = [
    "validate_corpus",
    "check_dialogue_ids",
    "convert_label_set",
    "limit_speakers",
    "first_non_finite",
    "check_label_range",
    "check_not_four_way",
    "stack_features",
    "map_speakers",
    "to_label_array",
]
