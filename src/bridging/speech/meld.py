"""MELD from the raw release: annotation CSVs and wav files -> a bridging dataset.

Layout read (docs/meld.md, section 8), under a root folder ``ROOT``::

    ROOT/train_sent_emo.csv  ROOT/dev_sent_emo.csv  ROOT/test_sent_emo.csv
    ROOT/wav/train/diaX_uttY.wav  ROOT/wav/dev/diaX_uttY.wav  ROOT/wav/test/diaX_uttY.wav

(the wavs converted from MELD's mp4 clips with ffmpeg, X = ``Dialogue_ID``, Y =
``Utterance_ID``); ``csv_dir`` and ``wav_dir`` override ``ROOT`` and ``ROOT/wav``.

- The CSV columns read: ``Sr No.`` (named in errors; the line number when absent),
  ``Utterance``, ``Speaker``, ``Emotion``, ``Sentiment``, ``Dialogue_ID``, ``Utterance_ID``;
  the others (Season, Episode, StartTime, EndTime) are ignored.
- Splits: MELD's own, one CSV each (train, dev, test). Dialogues are the ``Dialogue_ID``
  values of a file in number order, utterances in ``Utterance_ID`` order. Dialogue ids
  restart in every file, so a dialogue is named ``<split>_dia<X>`` (``test_dia3``).
- Speakers are slots within their dialogue, by first appearance: the first person who speaks
  is ``s0``, the second ``s1``, ... (``bridging.data.formats.meld.speaker_names``, the ids of
  the MELD DataModule and of ``bridging-predict-audio``); a dialogue with more than 9
  speakers is refused.
- Labels: every utterance has an emotion (``meld_7``) and a sentiment (``meld_3``), indices
  of ``bridging.data.records.LABEL_SETS``; the one asked for is the corpus label set, the
  other is kept as ``other_labels`` (``read_native(path, label_set=...)`` switches).
- Audio and text features as for IEMOCAP (:func:`bridging.speech.iemocap.extract_corpus`):
  the extractor spec, standardisation included, is stored in the dataset.
"""

from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

from bridging.data.formats.meld import N_SPEAKERS, speaker_names
from bridging.data.records import LABEL_SETS, MELD_LABEL_SETS, Corpus, DataError
from bridging.speech.iemocap import PreparedDialogue, extract_corpus, write_prepared

log = logging.getLogger(__name__)

SPLITS = ("train", "dev", "test")
CSV_NAMES = {s: f"{s}_sent_emo.csv" for s in SPLITS}
REQUIRED = ("Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID")
#: the CSV column of each label set
LABEL_COLUMNS = {"meld_7": "Emotion", "meld_3": "Sentiment"}


def _row_name(row: dict, line: int) -> str:
    sr = (row.get("Sr No.") or "").strip()
    return f"Sr No. {sr}" if sr else f"line {line}"


def _index(row: dict, column: str, at: str) -> int:
    value = (row.get(column) or "").strip()
    if not value.isdigit():
        raise DataError(f"{at}: {column}: {value!r}, expected a non-negative integer")
    return int(value)


def _label(row: dict, label_set: str, at: str) -> int:
    column = LABEL_COLUMNS[label_set]
    value = (row.get(column) or "").strip()
    names = LABEL_SETS[label_set]
    if value.lower() not in names:
        raise DataError(f"{at}: {column}: {value!r}, expected one of {', '.join(names)}")
    return names.index(value.lower())


def read_split_csv(path, split: str, wav_dir) -> list[dict]:
    """The utterances of one annotation CSV: dicts with dialogue, utterance (ids), speaker,
    text, labels (label set -> index), wav and source (file and row, for messages)."""
    from bridging.utils.files import check_input_file

    path = Path(path)
    check_input_file(path, "CSV file")  # a FIFO would hang the read
    try:
        with open(path, encoding="utf-8-sig", errors="replace", newline="") as fh:
            reader = csv.DictReader(fh)
            columns = reader.fieldnames or []
            lacking = [c for c in REQUIRED if c not in columns]
            if lacking:
                raise DataError(
                    f"{path}: header: no {', '.join(repr(c) for c in lacking)} column, "
                    f"expected MELD's columns ({', '.join(REQUIRED)}, ...)"
                )
            rows = []
            for row in reader:
                line = reader.line_num
                at = f"{path}: {_row_name(row, line)}"
                if None in row or any(row.get(c) is None for c in REQUIRED):
                    raise DataError(
                        f"{at}: row: {len([v for v in row.values() if v is not None])} fields, "
                        f"expected {len(columns)} (the header's)"
                    )
                dia = _index(row, "Dialogue_ID", at)
                utt = _index(row, "Utterance_ID", at)
                speaker = row["Speaker"].strip()
                if not speaker:
                    raise DataError(f"{at}: Speaker: empty, expected the speaker's name")
                rows.append(
                    {
                        "dialogue": dia,
                        "utterance": utt,
                        "speaker": speaker,
                        "text": row["Utterance"].strip(),
                        "labels": {ls: _label(row, ls, at) for ls in MELD_LABEL_SETS},
                        "wav": Path(wav_dir) / split / f"dia{dia}_utt{utt}.wav",
                        "source": f"{path.name}, {_row_name(row, line)}",
                        "file": path,
                        "at": at,
                    }
                )
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None
    except csv.Error as exc:
        raise DataError(f"{path}: not a readable CSV file ({exc})") from None
    if not rows:
        raise DataError(f"{path}: no utterance row")
    return rows


def group_dialogues(rows: list[dict], split: str, max_speakers: int = N_SPEAKERS):
    """Rows -> ``[(dialogue id, [row, ...] in Utterance_ID order, [speaker slot, ...])]`` in
    Dialogue_ID order; speaker slots by first appearance in the dialogue."""
    by_dialogue: dict[int, dict[int, dict]] = {}
    for r in rows:
        utts = by_dialogue.setdefault(r["dialogue"], {})
        if r["utterance"] in utts:
            raise DataError(
                f"{r['at']}: Utterance_ID: dialogue {r['dialogue']} utterance {r['utterance']} "
                f"is listed twice (also at {utts[r['utterance']]['source']}), expected one row "
                "per utterance"
            )
        utts[r["utterance"]] = r
    out = []
    for dia in sorted(by_dialogue):
        ordered = [by_dialogue[dia][u] for u in sorted(by_dialogue[dia])]
        slots: dict[str, int] = {}
        for r in ordered:
            slots.setdefault(r["speaker"], len(slots))
        if len(slots) > max_speakers:
            raise DataError(
                f"{ordered[0]['file']}: Dialogue_ID {dia}: Speaker: {len(slots)} speakers "
                f"({', '.join(slots)}), expected at most {max_speakers} (slots "
                f"s0..s{max_speakers - 1})"
            )
        out.append((f"{split}_dia{dia}", ordered, [slots[r["speaker"]] for r in ordered]))
    return out


def scan_meld(root, csv_dir=None, wav_dir=None, label_set: str = "meld_7", skip_missing=False):
    """Read the three CSVs: ``(dialogues, splits_idx)`` for :func:`extract_corpus`."""
    if label_set not in MELD_LABEL_SETS:
        raise DataError(
            f"unknown label set {label_set!r} for MELD: expected one of {list(MELD_LABEL_SETS)}"
        )
    root = Path(root)
    csv_dir = Path(csv_dir) if csv_dir is not None else root
    wav_dir = Path(wav_dir) if wav_dir is not None else root / "wav"
    for folder in (csv_dir, wav_dir):
        if not folder.is_dir():
            raise DataError(f"{folder}: no such folder (expected MELD's layout, docs/meld.md 8)")
    dialogues, splits_idx = [], {}
    others = [ls for ls in MELD_LABEL_SETS if ls != label_set]
    for split in SPLITS:
        path = csv_dir / CSV_NAMES[split]
        if not path.is_file():
            raise DataError(f"{path}: no such file (MELD's annotation CSV of the {split} split)")
        rows = read_split_csv(path, split, wav_dir)
        if skip_missing:
            missing = [r for r in rows if not r["wav"].is_file()]
            for r in missing:
                log.warning("%s: no such wav file (%s): utterance skipped", r["wav"], r["source"])
            rows = [r for r in rows if r["wav"].is_file()]
        splits_idx[split] = []
        for name, ordered, slots in group_dialogues(rows, split):
            splits_idx[split].append(len(dialogues))
            dialogues.append(
                PreparedDialogue(
                    id=name,
                    wavs=[r["wav"] for r in ordered],
                    keys=[f"{split}_{r['wav'].stem}" for r in ordered],
                    speakers=slots,
                    labels=[r["labels"][label_set] for r in ordered],
                    texts=[r["text"] for r in ordered],
                    sources=[r["source"] for r in ordered],
                    other_labels={ls: [r["labels"][ls] for r in ordered] for ls in others},
                    persons=[r["speaker"] for r in ordered],
                )
            )
    return dialogues, splits_idx


def build_corpus(
    root,
    label_set: str = "meld_7",
    csv_dir=None,
    wav_dir=None,
    skip_missing: bool = False,
    **kw,
) -> Corpus:
    """Read MELD at ``root`` and extract features: a validated :class:`Corpus` (9 speaker
    slots). ``kw``: the options of :func:`bridging.speech.iemocap.extract_corpus`."""
    dialogues, splits_idx = scan_meld(root, csv_dir, wav_dir, label_set, skip_missing)
    return extract_corpus(
        dialogues,
        splits_idx,
        label_set=label_set,
        source_format="meld_raw",
        path=os.fspath(root),
        n_speakers=N_SPEAKERS,
        speaker_names=speaker_names(N_SPEAKERS),
        **kw,
    )


def prepare_meld(root, out, cache_dir=None, **kw) -> Corpus:
    """:func:`build_corpus` then write it in bridging's native format at ``out``
    (``cache_dir`` default ``<out>.cache``, as :func:`bridging.speech.iemocap.prepare_iemocap`)."""
    return write_prepared(build_corpus, root, out, cache_dir=cache_dir, **kw)


__all__ = [
    "CSV_NAMES",
    "build_corpus",
    "group_dialogues",
    "prepare_meld",
    "read_split_csv",
    "scan_meld",
]
