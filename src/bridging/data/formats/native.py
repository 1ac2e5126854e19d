"""bridging's own corpus format: safetensors plus JSON, no pickle.

Directory layout (the default; ``write_native(corpus, "out/corpus")``)::

    corpus/
      meta.json            metadata (below)
      train.safetensors    one file per split
      dev.safetensors
      test.safetensors

Single-file layout (``write_native(corpus, "out/corpus.safetensors")``): one safetensors
file whose tensor names are prefixed with the split (``train/labels``, ``test/features/a``)
and whose header metadata holds the same JSON under the key ``"bridging"``.

Tensors of a split with N utterances in K dialogues, utterances in dialogue order:

- ``features/<m>``: float32 [N, D_m], one per modality (a, t, v);
- ``speakers``: int64 [N], speaker ids (index into ``speaker_names``);
- ``labels``: int64 [N], label indices of ``label_set``, -100 where unknown;
- ``offsets``: int64 [K + 1], dialogue k is rows ``offsets[k]:offsets[k+1]``;
- ``other_labels/<set>``: int64 [N], the same utterances in another label set (MELD corpora
  carry meld_7 and meld_3), when every dialogue has them (listed in ``other_label_sets``).

meta.json::

    {"format": "bridging-corpus", "version": 1,
     "label_set": "iemocap_4", "label_names": ["hap", "sad", "neu", "ang"],
     "speaker_names": ["M", "F"], "n_speakers": 2,
     "modalities": ["a", "t", "v"], "feature_sizes": {"a": 100, "t": 768, "v": 512},
     "source_format": "dialoguernn", "extractors": {"a": {...}, ...},
     "other_label_sets": [], "split_rule": null,
     "splits": {"train": {"file": "train.safetensors", "n_dialogues": K, "n_utterances": N,
                          "dialogue_ids": [...], "sentences": [[...], ...] or null}, ...}}

Writes are atomic: everything goes to a temporary sibling, then ``os.replace``; an existing
target is refused unless ``force=True`` (``bridging-data synth/convert --force``).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from bridging.data.records import LABEL_SETS, Corpus, DataError, Dialogue
from bridging.data.validate import check_dialogue_ids, convert_label_set
from bridging.utils.files import check_input_file, file_kind

FORMAT_NAME = "bridging-corpus"
FORMAT_VERSION = 1
META_FILE = "meta.json"
HEADER_KEY = "bridging"


def _split_tensors(
    dialogues: list[Dialogue], modalities: list[str], other_sets=()
) -> dict[str, np.ndarray]:
    lengths = np.array([len(d) for d in dialogues], dtype=np.int64)
    offsets = np.zeros(len(dialogues) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out = {
        "speakers": np.concatenate([d.speakers for d in dialogues]).astype(np.int64)
        if dialogues
        else np.zeros(0, np.int64),
        "labels": np.concatenate([d.labels for d in dialogues]).astype(np.int64)
        if dialogues
        else np.zeros(0, np.int64),
        "offsets": offsets,
    }
    for m in modalities:
        if dialogues:
            out[f"features/{m}"] = np.ascontiguousarray(
                np.concatenate([d.features[m] for d in dialogues]), dtype=np.float32
            )
    for name in other_sets if dialogues else ():
        labels = [d.other_labels[name] for d in dialogues]
        out[f"other_labels/{name}"] = np.concatenate(labels).astype(np.int64)
    return out


def _other_label_sets(dialogues: list[Dialogue]) -> list[str]:
    """The other label sets every dialogue has (``Dialogue.other_labels``)."""
    if not dialogues or any(not d.other_labels for d in dialogues):
        return []
    common = set.intersection(*(set(d.other_labels) for d in dialogues))
    return sorted(common)


def _metadata(corpus: Corpus) -> dict:
    modalities = corpus.modalities
    sizes = {}
    for dialogues in corpus.splits.values():
        for d in dialogues:
            for m in modalities:
                sizes.setdefault(m, int(d.features[m].shape[1]))
    splits = {}
    for split, dialogues in corpus.splits.items():
        has_sentences = bool(dialogues) and all(d.sentences is not None for d in dialogues)
        splits[split] = {
            "file": f"{split}.safetensors",
            "n_dialogues": len(dialogues),
            "n_utterances": int(sum(len(d) for d in dialogues)),
            "dialogue_ids": [d.id for d in dialogues],
            "sentences": [list(d.sentences) for d in dialogues] if has_sentences else None,
        }
        if bool(dialogues) and all(d.persons is not None for d in dialogues):
            splits[split]["persons"] = [list(d.persons) for d in dialogues]
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "label_set": corpus.label_set,
        "label_names": list(corpus.label_names),
        "speaker_names": list(corpus.speaker_names),
        "n_speakers": corpus.n_speakers,
        "modalities": modalities,
        "feature_sizes": sizes,
        "source_format": corpus.source_format,
        "extractors": corpus.extractors,
        "other_label_sets": _other_label_sets([d for ds in corpus.splits.values() for d in ds]),
        "split_rule": corpus.split_rule,
        "splits": splits,
    }


def write_native(corpus: Corpus, path, *, force: bool = False) -> Path:
    """Write ``corpus`` in bridging's format: a directory, or one file if ``path`` ends in
    ``.safetensors``. Atomic. An existing ``path`` is refused (an OutputError) unless
    ``force``, which replaces an existing native corpus (a folder holding meta.json, or a
    file); a folder that is not a bridging corpus is always refused. Files and folders get
    the umask's mode. Returns the path."""
    from bridging.utils.files import atomic_output, make_temp_dir, refuse_existing, umask_files

    path = Path(path)
    if path.exists() and path.is_dir() and not (path / META_FILE).is_file():
        raise DataError(f"{path}: exists and is not a bridging corpus; refusing to overwrite it")
    refuse_existing(path, force)
    meta = _metadata(corpus)
    modalities = meta["modalities"]
    if path.suffix == ".safetensors":
        if path.is_dir():
            raise DataError(f"{path}: is a directory; refusing to replace it with a file")
        tensors = {}
        for split, dialogues in corpus.splits.items():
            for k, v in _split_tensors(dialogues, modalities, meta["other_label_sets"]).items():
                tensors[f"{split}/{k}"] = v
        with atomic_output(path) as tmp:
            save_file(tensors, str(tmp), metadata={HEADER_KEY: json.dumps(meta)})
        return path
    tmp = make_temp_dir(path)
    try:
        for split, dialogues in corpus.splits.items():
            tensors = _split_tensors(dialogues, modalities, meta["other_label_sets"])
            save_file(tensors, str(tmp / f"{split}.safetensors"))
        (tmp / META_FILE).write_text(json.dumps(meta, indent=1))
        umask_files(tmp)
        if path.exists():
            trash = make_temp_dir(path, ".old")
            os.replace(path, trash / "old")
            os.replace(tmp, path)
            shutil.rmtree(trash, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        from bridging.utils.files import disk_full_error

        full = disk_full_error(path, exc)
        if full is not exc:
            raise full from None
        raise
    return path


def _read_meta(path: Path) -> tuple[dict, str]:
    """Return (metadata, kind) where kind is "dir" or "file"."""
    if path.is_dir() or path.name == META_FILE:
        meta_path = path / META_FILE if path.is_dir() else path
        check_input_file(meta_path, "JSON file")  # a FIFO would hang the read
        if not meta_path.is_file():
            raise DataError(f"{path}: a directory without {META_FILE}: not a bridging corpus")
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
            raise DataError(f"{meta_path}: unreadable metadata: {e}") from None
        return meta, "dir"
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="numpy") as fh:
            header = fh.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise DataError(f"{path}: not a readable safetensors file: {e}") from None
    if HEADER_KEY not in header:
        raise DataError(f"{path}: safetensors file without bridging metadata")
    try:
        return json.loads(header[HEADER_KEY]), "file"
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: unreadable bridging metadata: {e}") from None


def is_native_corpus(path) -> bool:
    """Whether ``path`` holds a bridging corpus (a folder with meta.json, or a safetensors
    file with bridging metadata) of this format."""
    path = Path(path)
    if not path.exists() or file_kind(path) is not None:
        return False
    try:
        _check_meta(_read_meta(path)[0], os.fspath(path))
    except DataError:
        return False
    return True


def _check_meta(meta, where: str) -> None:
    if not isinstance(meta, dict) or meta.get("format") != FORMAT_NAME:
        raise DataError(f"{where}: metadata is not of format {FORMAT_NAME!r}")
    if meta.get("version") != FORMAT_VERSION:
        raise DataError(
            f"{where}: format version {meta.get('version')!r}; this bridging reads "
            f"version {FORMAT_VERSION}"
        )
    for key in ("label_set", "label_names", "modalities", "splits"):
        if key not in meta:
            raise DataError(f"{where}: metadata has no {key!r}")
    if meta["label_set"] not in LABEL_SETS:
        raise DataError(
            f"{where}: unknown label set {meta['label_set']!r}: expected one of "
            f"{sorted(LABEL_SETS)}"
        )


def read_native(path, label_set: str | None = None) -> Corpus:
    """Read a corpus written by :func:`write_native`.

    ``label_set``: None for the stored one; iemocap_4 from a 6-way corpus drops exc and fru
    utterances; iemocap_6 from a 4-way corpus is a DataError.
    """
    path = Path(path)
    where = os.fspath(path)
    if not path.exists():
        raise DataError(f"{where}: no such file")
    check_input_file(path, "data file or folder")
    meta, kind = _read_meta(path)
    _check_meta(meta, where)
    root = path if path.is_dir() else path.parent
    combined = None
    if kind == "file":
        try:
            combined = load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise DataError(f"{where}: not a readable safetensors file: {e}") from None
    # a dialogue id in two splits (or twice in one) is leakage
    check_dialogue_ids(
        where,
        {
            split: [str(v) for v in (info.get("dialogue_ids") or [])]
            for split, info in meta["splits"].items()
            if isinstance(info, dict)
        },
    )
    splits = {}
    for split, info in meta["splits"].items():
        if kind == "dir":
            file = root / info.get("file", f"{split}.safetensors")
            check_input_file(file, "safetensors file")  # a FIFO would hang the read
            try:
                tensors = load_file(str(file))
            except FileNotFoundError:
                raise DataError(f"{where}: split {split!r}: no such file {file}") from None
            except (SafetensorError, OSError, ValueError) as e:
                raise DataError(f"{file}: not a readable safetensors file: {e}") from None
        else:
            prefix = f"{split}/"
            tensors = {k[len(prefix) :]: v for k, v in combined.items() if k.startswith(prefix)}
        splits[split] = _split_dialogues(
            tensors, info, meta["modalities"], where, split, meta.get("other_label_sets") or []
        )
    corpus = Corpus(
        splits=splits,
        label_names=tuple(meta["label_names"]),
        label_set=meta["label_set"],
        source_format="native",
        path=where,
        n_speakers=int(meta.get("n_speakers", 2)),
        speaker_names=tuple(meta.get("speaker_names", ("M", "F"))),
        extractors=meta.get("extractors") or {},
        split_rule=meta.get("split_rule"),
    )
    if label_set is not None:
        corpus = convert_label_set(corpus, label_set)
    return corpus


def _split_dialogues(tensors, info, modalities, where, split, other_sets=()) -> list[Dialogue]:
    at = f"{where}: split {split!r}"
    for key in ("speakers", "labels", "offsets"):
        if key not in tensors:
            raise DataError(f"{at}: no {key!r} tensor")
    offsets = tensors["offsets"].astype(np.int64)
    ids = info.get("dialogue_ids") or []
    n = int(tensors["labels"].shape[0])
    if (
        offsets.ndim != 1
        or len(offsets) != len(ids) + 1
        or offsets[0] != 0
        or offsets[-1] != n
        or np.any(np.diff(offsets) < 0)
    ):
        raise DataError(
            f"{at}: offsets {offsets.tolist()[:5]}... do not describe {len(ids)} dialogues "
            f"over {n} utterances (expected {len(ids) + 1} increasing values from 0 to {n})"
        )
    feats = {}
    for m in modalities:
        if len(ids) == 0:
            continue
        x = tensors.get(f"features/{m}")
        if x is None:
            raise DataError(f"{at}: modality {m!r} is listed in the metadata but has no tensor")
        if x.ndim != 2 or x.shape[0] != n:
            raise DataError(f"{at}: features/{m} has shape {tuple(x.shape)}, expected [{n}, D]")
        feats[m] = x
    speakers = tensors["speakers"].astype(np.int64)
    labels = tensors["labels"].astype(np.int64)
    if speakers.shape != (n,):
        raise DataError(f"{at}: speakers has shape {tuple(speakers.shape)}, expected [{n}]")
    other = {}
    for name in other_sets if ids else ():
        y = tensors.get(f"other_labels/{name}")
        if y is None or y.shape != (n,):
            got = "no tensor" if y is None else f"shape {tuple(y.shape)}"
            raise DataError(f"{at}: other_labels/{name}: {got}, expected [{n}] labels")
        other[name] = y.astype(np.int64)
    sentences = info.get("sentences")
    persons = info.get("persons")
    if persons is not None:
        lengths = np.diff(offsets)
        ok = isinstance(persons, list) and len(persons) == len(ids)
        ok = ok and all(
            isinstance(p, list) and len(p) == int(n) and all(isinstance(s, str) and s for s in p)
            for p, n in zip(persons, lengths)
        )
        if not ok:
            raise DataError(
                f"{at}: persons: expected one list of speaker names (non-empty strings) per "
                "dialogue, one name per utterance"
            )
    out = []
    for k, vid in enumerate(ids):
        lo, hi = int(offsets[k]), int(offsets[k + 1])
        out.append(
            Dialogue(
                id=str(vid),
                speakers=speakers[lo:hi],
                labels=labels[lo:hi],
                features={m: x[lo:hi] for m, x in feats.items()},
                sentences=None if sentences is None else list(sentences[k]),
                other_labels={k2: y[lo:hi] for k2, y in other.items()} or None,
                persons=None if persons is None else list(persons[k]),
            )
        )
    return out


__all__ = ["read_native", "write_native", "FORMAT_VERSION", "META_FILE"]
