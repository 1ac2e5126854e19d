"""In-memory records of a loaded corpus, before tensors are built.

Every source (COGMEN pickle, DialogueRNN pickle, MELD's DialogueRNN/MMGCN pickle, bridging's
own format, the synthetic generators) produces a :class:`Corpus`: named splits, each an
ordered list of :class:`Dialogue`. The DataModule validates a Corpus and turns it into tensors once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bridging.utils.errors import DataError

#: Modality names, in the fixed order in which models concatenate them.
MODALITY_ORDER: tuple[str, ...] = ("a", "t", "v")


def check_feature_sizes(sizes: dict) -> None:
    """ValueError unless ``sizes`` (modality -> feature size) names some of MODALITY_ORDER
    and nothing else (the synthetic generators' ``feature_sizes``)."""
    if not sizes or any(m not in MODALITY_ORDER for m in sizes):
        raise ValueError(f"feature_sizes must name some of {MODALITY_ORDER}, got {list(sizes)}")


#: Label index used for padded positions and utterances without a gold label.
IGNORE_INDEX = -100

#: Label sets, names in index order: IEMOCAP's (docs/method.md, section 1) and MELD's
#: (docs/meld.md): the 7 emotions and the 3 sentiments, indices as in MELD's files.
LABEL_SETS: dict[str, tuple[str, ...]] = {
    "iemocap_6": ("hap", "sad", "neu", "ang", "exc", "fru"),
    "iemocap_4": ("hap", "sad", "neu", "ang"),
    "meld_7": ("neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"),
    "meld_3": ("neutral", "positive", "negative"),
}
#: The label sets of MELD: every MELD file labels each utterance in both.
MELD_LABEL_SETS: tuple[str, ...] = ("meld_7", "meld_3")

#: Speaker codes of IEMOCAP: M -> 0, F -> 1.
SPEAKER_CODES: dict[str, int] = {"M": 0, "F": 1}
SPEAKER_NAMES: tuple[str, ...] = ("M", "F")


def ordered_modalities(names) -> list[str]:
    """Return modality names in the canonical order a, t, v; unknown names are an error."""
    names = list(names)
    unknown = [m for m in names if m not in MODALITY_ORDER]
    if unknown:
        raise DataError(f"unknown modality {unknown}: expected a subset of {list(MODALITY_ORDER)}")
    if len(set(names)) != len(names):
        raise DataError(f"modalities listed twice in {names}")
    return [m for m in MODALITY_ORDER if m in names]


@dataclass
class Dialogue:
    """One dialogue: ordered utterances with speaker ids, labels and features per modality.

    ``labels`` holds label indices of the corpus label set, IGNORE_INDEX where unknown.
    ``features`` maps modality name to a float32 array [n_utterances, D].
    """

    id: str
    speakers: np.ndarray  # int64 [n]
    labels: np.ndarray  # int64 [n]
    features: dict[str, np.ndarray]
    sentences: list[str] | None = None
    #: Synthetic data only: the generating latent emotion per utterance (6-way index in
    #: LABEL_SETS["iemocap_6"] order), kept so reports can show the annotation ceiling.
    latent: np.ndarray | None = None
    #: The same utterances' labels in other label sets (label set -> int64 [n]): MELD files
    #: label every utterance with an emotion (meld_7) and a sentiment (meld_3).
    other_labels: dict[str, np.ndarray] | None = None
    #: Who speaks each utterance across dialogues, by name, when the data knows it (MELD's
    #: annotation CSVs: ``Speaker``; the synthetic MELD corpus: its people); None: only the
    #: dialogue-local codes are known (:mod:`bridging.data.speakers` derives the actors).
    persons: list[str] | None = None

    def __len__(self) -> int:
        return int(self.labels.shape[0])


#: the order of the splits in a corpus's fingerprint
SPLIT_ORDER = {"train": 0, "dev": 1, "test": 2}


@dataclass
class Corpus:
    """A loaded dataset: splits (train/dev/test, any may be missing) of dialogues."""

    splits: dict[str, list[Dialogue]]
    label_names: tuple[str, ...]
    label_set: str
    source_format: str
    path: str | None = None
    n_speakers: int = 2
    speaker_names: tuple[str, ...] = SPEAKER_NAMES
    #: Feature extractors used to make the features (saved with models; docs/method.md 5).
    extractors: dict[str, dict] = field(default_factory=dict)
    #: How the dev split was recovered from a file that does not store it (e.g. MELD's
    #: official dialogue ids), for summaries; None when the splits are as stored.
    split_rule: str | None = None

    @property
    def modalities(self) -> list[str]:
        for dialogues in self.splits.values():
            for d in dialogues:
                return ordered_modalities(d.features.keys())
        return []

    def where(self) -> str:
        return self.path or f"<{self.source_format}>"

    def fingerprint(self) -> str:
        """The content's SHA-256 (hex): the label set, and per split in train/dev/test order
        and per dialogue in stored order its id, speakers, labels and every modality's
        features (float32). The same data gives the same fingerprint whatever file or path it
        came from; any changed number, label, id or split changes it."""
        import hashlib

        h = hashlib.sha256(f"label_set={self.label_set}\n".encode())
        for name in sorted(self.splits, key=lambda s: (SPLIT_ORDER.get(s, 9), s)):
            h.update(f"split={name}\n".encode())
            for d in self.splits[name]:
                h.update(f"dialogue={d.id}\n".encode())
                h.update(np.ascontiguousarray(d.speakers, dtype=np.int64).tobytes())
                h.update(np.ascontiguousarray(d.labels, dtype=np.int64).tobytes())
                for m in sorted(d.features):
                    x = np.ascontiguousarray(d.features[m], dtype=np.float32)
                    h.update(f"{m}{x.shape}".encode())
                    h.update(x.tobytes())
                if d.persons is not None:  # who speaks (speaker-wise normalisation reads it)
                    h.update(("persons=" + "\x1f".join(d.persons) + "\n").encode())
        return h.hexdigest()


def six_way_corpus(splits: dict, source_format: str, path: str | None, extractors: dict) -> Corpus:
    """A two-speaker corpus of ``splits`` labelled in IEMOCAP's 6-way set (``iemocap_6``)."""
    return Corpus(
        splits=splits,
        label_names=LABEL_SETS["iemocap_6"],
        label_set="iemocap_6",
        source_format=source_format,
        path=path,
        extractors=extractors,
    )
