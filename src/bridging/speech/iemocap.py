"""IEMOCAP from the raw release: transcripts, evaluations and wav files -> a bridging dataset.

Layout read (docs/method.md, section 5), for every ``SessionN`` folder under the release root::

    SessionN/dialog/transcriptions/<dialogue>.txt   "<utt_id> [start-end]: text"
    SessionN/dialog/EmoEvaluation/<dialogue>.txt    "[start - end]\\t<utt_id>\\t<emo>\\t[V, A, D]"
    SessionN/sentences/wav/<dialogue>/<utt_id>.wav

- Dialogues are the files of ``EmoEvaluation`` (sub-folders such as Categorical/ and hidden
  files are ignored), in name order within each session, sessions in number order.
- Utterances are ordered by start time (the transcript's; the evaluation's when the
  transcript lacks the line).
- The speaker is the letter that starts the last ``_`` part of the utterance id
  (``Ses01F_impro01_M000`` -> M): the letter in the dialogue name is the gender of the
  speaker who wore the motion-capture markers in that session, not the utterance's speaker.
- Labels are the evaluation's consensus codes. ``iemocap_6``: hap sad neu ang exc fru;
  ``iemocap_4``: hap sad neu ang (exc and fru dropped, not merged). Utterances with any other
  code (xxx, sur, fea, oth, dis) are dropped, as in the public feature files
  (``keep_unlabelled=True`` keeps them as graph context with label -100).
- Split: sessions 1-4 train, session 5 test; dev = the first 10% of the training dialogues in
  this order (at least one when there are two or more).
- Audio features come from a registered extractor (:mod:`bridging.speech.extractors`); by
  default they are standardised with the training split's mean and std. The extractor spec,
  projection included, is saved in the dataset (``extractors["a"]``) and from there in every
  model trained on it, so that ``bridging-predict-audio`` re-creates the same features.
- Text (optional): a local sentence-transformers folder encodes the transcripts
  (:mod:`bridging.speech.text`; ``extractors["t"]``); without it the dataset has audio
  only. Transcripts are kept as the dialogues' sentences either way.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from bridging.data.records import LABEL_SETS, SPEAKER_CODES, SPEAKER_NAMES, Corpus, DataError
from bridging.data.records import Dialogue as CorpusDialogue

log = logging.getLogger(__name__)

#: IEMOCAP's categorical codes that some label set uses; everything else is dropped.
IEMOCAP_CODES = ("hap", "sad", "neu", "ang", "exc", "fru")
TRAIN_SESSIONS = (1, 2, 3, 4)
TEST_SESSIONS = (5,)

_TRANSCRIPT = re.compile(r"^\s*(Ses\S+)\s+\[\s*([0-9.]+)\s*-\s*([0-9.]+)\s*\]\s*:\s?(.*)$")
_EVALUATION = re.compile(
    r"^\s*\[\s*([0-9.]+)\s*-\s*([0-9.]+)\s*\]\s+(Ses\S+)\s+(\S+)\s+\[([^\]]*)\]"
)
_SESSION_DIR = re.compile(r"^Session(\d+)$")
_DIALOGUE = re.compile(r"^Ses(\d+)[MF]_")


@dataclass
class RawUtterance:
    id: str
    speaker: str
    start: float
    end: float
    emotion: str | None
    vad: tuple[float, ...] | None
    text: str | None
    wav: Path


@dataclass
class RawDialogue:
    id: str
    session: int
    utterances: list[RawUtterance] = field(default_factory=list)


def speaker_of(utterance_id: str) -> str:
    """M or F: the first letter of the utterance id's last ``_`` part (Ses01F_impro01_M000 -> M)."""
    last = utterance_id.rsplit("_", 1)[-1]
    code = last[:1]
    if "_" not in utterance_id or code not in SPEAKER_CODES:
        raise DataError(
            f"utterance id {utterance_id!r}: cannot read the speaker (expected the last part "
            "to start with M or F, as in Ses01F_impro01_M000)"
        )
    return code


def session_of(dialogue_id: str) -> int:
    m = _DIALOGUE.match(dialogue_id)
    if not m:
        raise DataError(f"dialogue {dialogue_id!r}: not an IEMOCAP dialogue name (SesNN[MF]_...)")
    return int(m.group(1))


def _read_lines(path: Path) -> list[str]:
    from bridging.utils.files import check_input_file

    check_input_file(path, "text file")  # a FIFO in the release would hang the read
    try:
        return path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        raise DataError(f"{path}: unreadable ({exc})") from None


def parse_transcription(path) -> dict[str, tuple[float, float, str]]:
    """``{utt_id: (start, end, text)}`` from a transcription file; other lines are skipped."""
    out = {}
    for line in _read_lines(Path(path)):
        m = _TRANSCRIPT.match(line)
        if m:
            out[m.group(1)] = (float(m.group(2)), float(m.group(3)), m.group(4).strip())
    return out


def parse_evaluation(path) -> dict[str, tuple[float, float, str, tuple[float, ...] | None]]:
    """``{utt_id: (start, end, emotion code, (V, A, D))}`` from an EmoEvaluation file."""
    path = Path(path)
    out = {}
    for line in _read_lines(path):
        m = _EVALUATION.match(line)
        if not m:
            continue
        try:
            vad = tuple(float(v) for v in m.group(5).split(",") if v.strip())
        except ValueError:
            vad = None
        out[m.group(3)] = (float(m.group(1)), float(m.group(2)), m.group(4), vad)
    if not out:
        raise DataError(
            f"{path}: no evaluation line ('[start - end]<TAB>utt_id<TAB>emotion<TAB>[V, A, D]')"
        )
    return out


def _session_dirs(root: Path) -> list[tuple[int, Path]]:
    found = []
    for p in root.iterdir() if root.is_dir() else ():
        m = _SESSION_DIR.match(p.name)
        if m and p.is_dir():
            found.append((int(m.group(1)), p))
    if not found:
        raise DataError(
            f"{root}: no Session1..Session5 folders: not the IEMOCAP release root "
            "(expected ROOT/SessionN/dialog/EmoEvaluation, ...)"
        )
    return sorted(found)


def scan_release(root, sessions=None) -> list[RawDialogue]:
    """Every dialogue of the release at ``root`` (all utterances, labelled or not), ordered by
    session then dialogue name; utterances by start time."""
    root = Path(root)
    if not root.exists():
        raise DataError(f"{root}: no such folder")
    dialogues = []
    for number, sdir in _session_dirs(root):
        if sessions is not None and number not in sessions:
            continue
        evdir = sdir / "dialog" / "EmoEvaluation"
        trdir = sdir / "dialog" / "transcriptions"
        wavdir = sdir / "sentences" / "wav"
        if not evdir.is_dir():
            raise DataError(f"{sdir}: no dialog/EmoEvaluation folder")
        files = sorted(
            p
            for p in evdir.iterdir()
            if p.is_file() and p.suffix == ".txt" and not p.name.startswith(".")
        )
        for ev in files:
            name = ev.stem
            evaluation = parse_evaluation(ev)
            tr = trdir / f"{name}.txt"
            transcript = parse_transcription(tr) if tr.is_file() else {}
            if not transcript:
                log.warning("%s: no transcription; ordering by the evaluation times", tr)
            dlg = RawDialogue(id=name, session=session_of(name))
            for uid, (start, end, emo, vad) in evaluation.items():
                t_start, t_end, text = transcript.get(uid, (start, end, None))
                dlg.utterances.append(
                    RawUtterance(
                        id=uid,
                        speaker=speaker_of(uid),
                        start=t_start,
                        end=t_end,
                        emotion=emo,
                        vad=vad,
                        text=text,
                        wav=wavdir / name / f"{uid}.wav",
                    )
                )
            dlg.utterances.sort(key=lambda u: (u.start, u.end, u.id))
            dialogues.append(dlg)
    if not dialogues:
        raise DataError(f"{root}: no dialogue found (no SessionN/dialog/EmoEvaluation/*.txt)")
    return dialogues


def label_index(code: str | None, label_set: str) -> int | None:
    names = LABEL_SETS[label_set]
    return names.index(code) if code in names else None


def select_utterances(dialogues, label_set: str, keep_unlabelled: bool = False):
    """``[(dialogue, [(utterance, label index or -100), ...]), ...]`` after the label rule;
    dialogues left without any labelled utterance are dropped."""
    if label_set not in LABEL_SETS:
        raise DataError(f"unknown label set {label_set!r}: expected one of {sorted(LABEL_SETS)}")
    out = []
    for d in dialogues:
        kept = []
        for u in d.utterances:
            y = label_index(u.emotion, label_set)
            if y is not None:
                kept.append((u, y))
            elif keep_unlabelled:
                kept.append((u, -100))
        if any(y >= 0 for _, y in kept):
            out.append((d, kept))
    return out


def split_dialogues(ids_sessions, dev_fraction: float = 0.1) -> dict[str, list[int]]:
    """Indices per split: sessions 1-4 train, 5 test, dev = the first 10% of train (stored
    order; at least one when train has two or more dialogues)."""
    train = [i for i, (_, s) in enumerate(ids_sessions) if s in TRAIN_SESSIONS]
    test = [i for i, (_, s) in enumerate(ids_sessions) if s in TEST_SESSIONS]
    n_dev = int(dev_fraction * len(train))
    if n_dev == 0 and len(train) >= 2:
        n_dev = 1
    return {"train": train[n_dev:], "dev": train[:n_dev], "test": test}


def encode_text(model_path, sentences: list[str]) -> tuple[np.ndarray, dict]:
    """Sentence embeddings from a local sentence-transformers folder, and their spec."""
    from bridging.speech.text import SentenceEncoder

    encoder = SentenceEncoder(model_path)
    return encoder.encode(sentences), encoder.spec()


@dataclass
class PreparedDialogue:
    """A dialogue read from a raw release, ready for feature extraction: per utterance its
    wav file, cache key (unique in the corpus), speaker id, label index, text and where it
    comes from (named when its wav is missing)."""

    id: str
    wavs: list[Path]
    keys: list[str]
    speakers: list[int]
    labels: list[int]
    texts: list[str]
    sources: list[str]
    other_labels: dict[str, list[int]] | None = None
    #: speaker names across dialogues, when the release gives them (MELD's ``Speaker``)
    persons: list[str] | None = None


def extract_corpus(
    dialogues: list[PreparedDialogue],
    splits_idx: dict[str, list[int]],
    *,
    label_set: str,
    source_format: str,
    path,
    n_speakers: int,
    speaker_names: tuple[str, ...],
    audio_features: str = "egemaps",
    extractor_options: dict | None = None,
    text_model=None,
    workers: int = 1,
    cache_dir=None,
    standardize: bool = True,
    progress: bool | None = None,
) -> Corpus:
    """Features for read dialogues (``splits_idx``: split -> indices into ``dialogues``): the
    audio extractor over every wav (cached per key), standardised with the training split's
    statistics, optional text from a local sentence-transformers folder; a validated
    :class:`Corpus` that stores the extractor specs. Shared by the IEMOCAP and MELD readers."""
    from bridging.data.validate import validate_corpus
    from bridging.speech.extractors import FeaturePipeline, create_extractor

    wavs = [w for d in dialogues for w in d.wavs]
    sources = [s for d in dialogues for s in d.sources]
    missing = [(w, s) for w, s in zip(wavs, sources) if not Path(w).is_file()]
    if missing:
        more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
        raise DataError(f"{missing[0][0]}: no such wav file ({missing[0][1]}){more}")

    extractor = create_extractor(audio_features, **(extractor_options or {}))
    pipeline = FeaturePipeline(extractor)
    raw_feats = pipeline.raw_features(
        wavs,
        keys=[k for d in dialogues for k in d.keys],
        cache_dir=cache_dir,
        workers=workers,
        progress=progress,
        desc=f"{audio_features} features",
    )
    # rows per dialogue
    bounds = np.cumsum([0] + [len(d.wavs) for d in dialogues])
    if standardize:
        train_rows = np.concatenate(
            [np.arange(bounds[i], bounds[i + 1]) for i in splits_idx["train"]]
        )
        pipeline.fit_standardize(raw_feats[train_rows], fitted_on="train")
    feats = pipeline.project(raw_feats)
    text_feats, text_spec = None, None
    if text_model:
        text_feats, text_spec = encode_text(text_model, [t for d in dialogues for t in d.texts])

    out = []
    for k, d in enumerate(dialogues):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        features = {"a": feats[lo:hi]}
        if text_feats is not None:
            features["t"] = text_feats[lo:hi]
        other = None
        if d.other_labels:
            other = {ls: np.array(v, dtype=np.int64) for ls, v in d.other_labels.items()}
        out.append(
            CorpusDialogue(
                id=d.id,
                speakers=np.array(d.speakers, dtype=np.int64),
                labels=np.array(d.labels, dtype=np.int64),
                features=features,
                sentences=list(d.texts),
                other_labels=other,
                persons=None if d.persons is None else list(d.persons),
            )
        )
    extractors = {"a": pipeline.spec}
    if text_spec is not None:
        extractors["t"] = text_spec
    corpus = Corpus(
        splits={s: [out[i] for i in idx] for s, idx in splits_idx.items()},
        label_names=LABEL_SETS[label_set],
        label_set=label_set,
        source_format=source_format,
        path=os.fspath(path),
        n_speakers=n_speakers,
        speaker_names=speaker_names,
        extractors=extractors,
    )
    validate_corpus(corpus)
    return corpus


def write_prepared(build, root, out, cache_dir=None, **kw) -> Corpus:
    """``build(root, cache_dir=..., **kw)`` then write the corpus in bridging's native format
    at ``out`` (replacing a corpus there); ``cache_dir`` default ``<out>.cache``."""
    from bridging.data.formats.native import write_native

    out = Path(out)
    if cache_dir is None:
        cache_dir = out.with_name(out.name + ".cache")
    corpus = build(root, cache_dir=cache_dir, **kw)
    write_native(corpus, out, force=True)  # a rerun replaces its corpus (never another folder)
    return corpus


def build_corpus(
    root,
    label_set: str = "iemocap_4",
    keep_unlabelled: bool = False,
    **kw,
) -> Corpus:
    """Read the release at ``root`` and extract features: a validated :class:`Corpus`.

    ``kw``: the options of :func:`extract_corpus` (audio_features, extractor_options,
    text_model, workers, cache_dir, standardize, progress)."""
    root = Path(root)
    raw = scan_release(root)
    chosen = select_utterances(raw, label_set, keep_unlabelled)
    if not chosen:
        raise DataError(f"{root}: no utterance with a label of {label_set}")
    splits_idx = split_dialogues([(d.id, d.session) for d, _ in chosen])
    if not splits_idx["train"] or not splits_idx["test"]:
        raise DataError(
            f"{root}: sessions 1-4 give {len(splits_idx['train']) + len(splits_idx['dev'])} "
            f"training dialogues and session 5 gives {len(splits_idx['test'])} test dialogues; "
            "both must hold at least one"
        )
    dialogues = [
        PreparedDialogue(
            id=d.id,
            wavs=[u.wav for u, _ in kept],
            keys=[u.id for u, _ in kept],
            speakers=[SPEAKER_CODES[u.speaker] for u, _ in kept],
            labels=[y for _, y in kept],
            texts=[u.text or "" for u, _ in kept],
            sources=["of a labelled utterance"] * len(kept),
        )
        for d, kept in chosen
    ]
    return extract_corpus(
        dialogues,
        splits_idx,
        label_set=label_set,
        source_format="iemocap_raw",
        path=root,
        n_speakers=len(SPEAKER_NAMES),
        speaker_names=SPEAKER_NAMES,
        **kw,
    )


def prepare_iemocap(root, out, cache_dir=None, **kw) -> Corpus:
    """:func:`build_corpus` then write it in bridging's native format at ``out``.

    ``cache_dir`` default: ``<out>.cache``: per-utterance raw features keyed by extractor spec
    and utterance id, so an interrupted or repeated run (another label set, standardisation
    on or off) re-extracts nothing; delete it when done, or when the wav files change.
    """
    return write_prepared(build_corpus, root, out, cache_dir=cache_dir, **kw)


__all__ = [
    "PreparedDialogue",
    "RawDialogue",
    "RawUtterance",
    "build_corpus",
    "extract_corpus",
    "parse_evaluation",
    "parse_transcription",
    "prepare_iemocap",
    "scan_release",
    "select_utterances",
    "speaker_of",
    "split_dialogues",
    "write_prepared",
]
