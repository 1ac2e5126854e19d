"""Speech-only inference from wav files, batch and live.

:class:`SpeechModel` wraps any bridging checkpoint that takes audio (``a``) and whose
training data stored its audio extractor (``facts.extractors["a"]``, written by
``bridging-data prepare-iemocap``): it re-creates that exact extraction (projection
included), runs the model with every other modality zeroed, and returns class probabilities.

Modes, for one dialogue of T utterances:

- ``predict_features(x, speakers)``: **batch** mode: the whole dialogue at once (the
  sequence context and the graph see past and future, as in training and evaluation).
- ``predict_prefixes(x, speakers)``: **causal** mode: row k is utterance k's prediction from
  utterances 0..k only, i.e. ``predict_features(x[:k+1], speakers[:k+1])[k]``. All T
  prefixes run as one padded batch (``pad_mode=mask`` makes a dialogue's outputs independent
  of its batch; a ``pad_mode=reference`` model runs them one by one).
- :class:`Session`: **live** use: ``add(wav, speaker)`` extracts the new utterance's features
  and returns its prediction from the dialogue so far. It recomputes the model over the
  dialogue so far at each step (about 15 ms for a 50-utterance dialogue on one CPU core
  with the paper's L 4 / H 7 student), so its outputs are exactly the causal mode's.

Why recompute: COGMEN's transformer (and the bidirectional LSTM/GRU) sequence context
attends over the whole dialogue, so the states of earlier utterances change when a later one
arrives; there is no incremental state to carry without retraining with a causal sequence
context. Recomputing the prefix is causal by construction: nothing after utterance k exists
when k is predicted, whatever the graph windows.

Graph windows in causal use: bridging builds edges i -> j for j in [i - wp, i + wf] and
messages flow source -> target (PyG), so utterance j aggregates from utterances
[j - wf, j + wp]: ``wf`` is how many *earlier* utterances feed an utterance and ``wp`` how
many *later* ones. In a prefix the newest utterance has no later one, so it receives from its
``wf`` predecessors. ``wf=0`` therefore leaves the newest utterance with its self-loop only
(no graph context); it is offered (``Session(..., wf=0)``) but the default keeps the model's
trained windows. A graph that is causal over the *whole* dialogue is ``wp=0``.
"""

from __future__ import annotations

import contextlib
import csv
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from bridging.data.batch import DialogueBatch
from bridging.data.records import IGNORE_INDEX, DataError
from bridging.speech.extractors import ExtractorError, FeaturePipeline, pipeline_from_spec


@contextlib.contextmanager
def graph_window(model, wp: int | None = None, wf: int | None = None):
    """Temporarily run a COGMEN with other graph windows (``None`` keeps the model's)."""
    old = (model.wp, model.wf)
    from bridging.models.graph import check_window

    for name, w in (("wp", wp), ("wf", wf)):
        if w is not None:
            check_window(name, w)
    model.wp = old[0] if wp is None else int(wp)
    model.wf = old[1] if wf is None else int(wf)
    try:
        yield model
    finally:
        model.wp, model.wf = old


def no_extractor_message(where: str, spec=None) -> str:
    name = spec.get("name") if isinstance(spec, dict) else None
    what = (
        f"its audio features are {name!r} (facts.extractors['a']), which bridging cannot "
        "re-create from a wav file"
        if name
        else "the checkpoint stores no audio feature extractor (facts.extractors['a'])"
    )
    return (
        f"{where}: predicting from wav files needs a model trained on features bridging "
        f"extracted from wav files; {what} (e.g. synthetic data or the public IEMOCAP "
        "pickles). Make one with `bridging-data prepare-iemocap ROOT OUT` (eGeMAPS, ComParE "
        "or HuBERT features) and `bridging-train data=iemocap data.path=OUT "
        "experiment=audio_only`."
    )


def recreatable(spec) -> bool:
    """Whether ``spec`` describes an extraction bridging can re-create from wav files."""
    from bridging.speech.extractors import EXTRACTORS

    return (
        isinstance(spec, dict)
        and isinstance(spec.get("params"), dict)
        and "version" in spec
        and spec.get("name") in EXTRACTORS
    )


class SpeechModel:
    """A trained recipe + its stored audio extraction, for speech-only predictions.

    ``source``: a checkpoint path or a loaded recipe. ``extractor_overrides``: extractor
    params to replace (e.g. ``{"path": "/models/hubert"}`` when the encoder folder moved;
    its weights must still match the stored hash). ``load_extractor=False`` skips the
    extractor (features given directly).
    """

    def __init__(
        self, source, extractor_overrides: dict | None = None, load_extractor: bool = True
    ):
        from bridging.recipes import load_recipe

        recipe = load_recipe(source) if isinstance(source, (str, os.PathLike)) else source
        self.recipe = recipe.eval()
        self.where = os.fspath(getattr(recipe, "checkpoint_path", None) or "<model>")
        if "a" not in recipe.modalities:
            raise DataError(
                f"{self.where}: the model takes {recipe.modalities}, not audio: nothing to "
                "predict from speech"
            )
        self.facts = recipe.facts
        self.label_names = list(self.facts.label_names)
        self.speaker_names = list(self.facts.speaker_names)
        self.dim = int(self.facts.feature_sizes["a"])
        from bridging.data.normalize import Normalization

        #: the model's feature normalisation (docs/normalization.md), read once
        self.normalization = Normalization.from_dict(self.facts.normalization, self.where)
        self.spec = (self.facts.extractors or {}).get("a")
        self.pipeline: FeaturePipeline | None = None
        if load_extractor:
            if not recreatable(self.spec):
                raise DataError(no_extractor_message(self.where, self.spec))
            try:
                self.pipeline = pipeline_from_spec(self.spec, extractor_overrides)
            except ExtractorError as exc:
                raise ExtractorError(f"{self.where}: {exc}") from None
            if self.pipeline.dim != self.dim:
                raise ExtractorError(
                    f"{self.where}: the stored extractor gives {self.pipeline.dim} features, "
                    f"the model takes {self.dim}"
                )

    @property
    def model(self):
        return self.recipe.model

    # -- inputs -----------------------------------------------------------------------------
    def speaker_ids(self, speakers) -> np.ndarray:
        """Speaker ids from names (M/F, as the training data) or integers (0/1)."""
        out = np.empty(len(speakers), dtype=np.int64)
        n = self.facts.n_speakers
        for i, s in enumerate(speakers):
            if isinstance(s, (int, np.integer)) and not isinstance(s, bool):
                v = int(s)
            elif isinstance(s, str) and s.strip() in self.speaker_names:
                v = self.speaker_names.index(s.strip())
            elif isinstance(s, str) and s.strip().lstrip("-").isdigit():
                v = int(s.strip())
            else:
                raise DataError(
                    f"speaker {s!r} of utterance {i}: expected one of {self.speaker_names} or "
                    f"an id 0..{n - 1}"
                )
            if not 0 <= v < n:
                raise DataError(f"speaker id {v} of utterance {i}: expected 0..{n - 1}")
            out[i] = v
        return out

    def _as_inputs(self, x, speakers) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.as_tensor(np.asarray(x, dtype=np.float32))
        if x.ndim != 2 or x.shape[1] != self.dim or x.shape[0] < 1:
            raise DataError(f"features of shape {tuple(x.shape)}: expected [T >= 1, {self.dim}]")
        spk = torch.as_tensor(self.speaker_ids(list(speakers)))
        if spk.shape[0] != x.shape[0]:
            raise DataError(f"{x.shape[0]} utterances but {spk.shape[0]} speakers")
        return x, spk

    def _run(self, x: torch.Tensor, lengths: torch.Tensor, speakers: torch.Tensor):
        b, t = speakers.shape
        # speaker statistics pool each row's (dialogue's or prefix's) utterances of a
        # speaker; online is causal
        norm = self.normalization
        if norm.active:
            x = norm.apply_padded({"a": x}, lengths, speakers, self.facts.n_speakers)["a"]
        batch = DialogueBatch(
            features={"a": x},
            lengths=lengths,
            speakers=speakers,
            labels=torch.full((b, t), IGNORE_INDEX, dtype=torch.long),
            dialogue_ids=[f"dialogue{i}" for i in range(b)],
            index=torch.arange(b),
        )
        device = next(self.recipe.parameters()).device
        with torch.inference_mode():
            return self.recipe(batch.to(device), keep=["a"]).log_probs.exp().cpu()

    # -- predictions ------------------------------------------------------------------------
    def predict_features(self, x, speakers, wp: int | None = None, wf: int | None = None):
        """Batch mode for one dialogue: probabilities [T, C] (numpy) from features [T, D]."""
        x, spk = self._as_inputs(x, speakers)
        t = x.shape[0]
        with graph_window(self.model, wp, wf):
            probs = self._run(x[None], torch.tensor([t]), spk[None])
        return probs.numpy()

    def predict_prefixes(self, x, speakers, wp: int | None = None, wf: int | None = None):
        """Causal mode: row k = utterance k predicted from utterances 0..k only."""
        x, spk = self._as_inputs(x, speakers)
        t = x.shape[0]
        with graph_window(self.model, wp, wf):
            if self.model.rnn.pad_mode != "mask" and self.model.rnn.kind == "transformer":
                rows = [
                    self._run(x[None, : k + 1], torch.tensor([k + 1]), spk[None, : k + 1])[-1]
                    for k in range(t)
                ]
                return torch.stack(rows).numpy()
            lengths = torch.arange(1, t + 1)
            mask = torch.arange(t)[None, :] < lengths[:, None]  # [T prefixes, T]
            xb = x[None].expand(t, t, -1) * mask[..., None]
            sb = spk[None].expand(t, t) * mask
            probs = self._run(xb.contiguous(), lengths, sb.contiguous())
        last = torch.cumsum(lengths, 0) - 1
        return probs[last].numpy()

    def features(self, files, workers: int = 1, cache_dir=None, progress=None) -> np.ndarray:
        """Model-input features [T, D] of audio files (the stored extraction + projection)."""
        if self.pipeline is None:
            raise DataError(no_extractor_message(self.where, self.spec))
        return self.pipeline.features(
            files, workers=workers, cache_dir=cache_dir, progress=progress, desc="audio features"
        )

    def predict_files(
        self, files, speakers, causal: bool = False, wp=None, wf=None, workers: int = 1
    ):
        """Probabilities [T, C] for one dialogue given as audio files in turn order."""
        x = self.features(files, workers=workers)
        fn = self.predict_prefixes if causal else self.predict_features
        return fn(x, speakers, wp=wp, wf=wf)


# -- live -----------------------------------------------------------------------------------
@dataclass
class Prediction:
    index: int  # position of the utterance in the session
    speaker: str
    label: str
    probs: dict[str, float]

    @property
    def probabilities(self) -> np.ndarray:
        return np.array(list(self.probs.values()), dtype=np.float32)


class Session:
    """Live, causal emotion recognition over one conversation.

    ``Session(ckpt_path_or_recipe_or_SpeechModel, wp=None, wf=None, max_history=None)``;
    ``add(wav, speaker)`` (a path, or a waveform with ``sample_rate=``) returns the new
    utterance's :class:`Prediction` from the utterances so far. Guarantee (tested): the k-th
    ``add`` returns ``SpeechModel.predict_features(x[:k+1], speakers[:k+1], wp, wf)[k]``,
    which equals ``predict_prefixes(x, speakers, wp, wf)[k]``, ``x`` being the features of
    the utterances added. ``max_history``: keep only the last N utterances as context
    (bounded latency; the prediction then equals batch mode over those N).
    """

    def __init__(
        self,
        source,
        wp: int | None = None,
        wf: int | None = None,
        max_history: int | None = None,
        extractor_overrides: dict | None = None,
        load_extractor: bool = True,
    ):
        if isinstance(source, SpeechModel):
            self.model = source
        else:
            self.model = SpeechModel(source, extractor_overrides, load_extractor=load_extractor)
        self.wp, self.wf = wp, wf
        if max_history is not None and int(max_history) < 1:
            raise ValueError(f"max_history must be >= 1, got {max_history}")
        self.max_history = max_history
        self.reset()

    def reset(self) -> None:
        self._x: list[np.ndarray] = []
        self._spk: list[int] = []
        self.n_added = 0

    def __len__(self) -> int:
        return self.n_added

    def add(self, audio, speaker, sample_rate: int | None = None) -> Prediction:
        """Add one utterance (wav path, or waveform + ``sample_rate``) and predict it."""
        pipe = self.model.pipeline
        if pipe is None:
            raise DataError(no_extractor_message(self.model.where, self.model.spec))
        if isinstance(audio, (str, os.PathLike)):
            row = pipe.features_of(audio)
        else:
            if sample_rate is None:
                raise ValueError("a waveform needs its sample_rate")
            row = pipe.features_of_signal(audio, sample_rate, where=f"utterance {self.n_added}")
        return self.add_features(row, speaker)

    def add_features(self, row, speaker) -> Prediction:
        """Add one utterance given as model-input features [D] and predict it."""
        row = np.asarray(row, dtype=np.float32).reshape(-1)
        spk = int(self.model.speaker_ids([speaker])[0])
        self._x.append(row)
        self._spk.append(spk)
        if self.max_history is not None and len(self._x) > self.max_history:
            self._x.pop(0)
            self._spk.pop(0)
        probs = self.model.predict_features(np.stack(self._x), self._spk, self.wp, self.wf)[-1]
        names = self.model.label_names
        pred = Prediction(
            index=self.n_added,
            speaker=self.model.speaker_names[spk],
            label=names[int(np.argmax(probs))],
            probs={n: float(p) for n, p in zip(names, probs)},
        )
        self.n_added += 1
        return pred


# -- features outside the training range -----------------------------------------------------
#: a feature is far outside the training range beyond this many training standard deviations
FAR_SD = 10.0
#: an utterance is flagged when more than this share of its features is that far out (digital
#: silence gives about 11% of the eGeMAPS features beyond 10 sd, real speech none)
FAR_SHARE = 0.05
OUT_OF_RANGE = ("warn", "refuse")


class FeatureRangeWarning(UserWarning):
    """Features of an utterance far outside the range of the model's training data."""


def far_outside(pipeline, feats: np.ndarray) -> list[tuple[int, int, float, int]]:
    """Utterances whose model-input features lie far outside the training data: ``(row,
    features beyond FAR_SD, largest |z|, its feature index)`` for each. ``feats`` are the
    pipeline's projected features; the training mean and std saved with the extractor
    (``projection: standardize``) make them z-scores. Without a saved standardisation there
    is no training range to compare with: nothing is flagged."""
    if pipeline is None or not (pipeline.projection or {}).get("kind") == "standardize":
        return []
    z = np.abs(np.asarray(feats, dtype=np.float64))
    far = (z > FAR_SD).sum(1)
    out = []
    for i in np.flatnonzero(far > FAR_SHARE * z.shape[1]):
        j = int(z[i].argmax())
        out.append((int(i), int(far[i]), float(z[i, j]), j))
    return out


def range_message(file, n_far: int, dim: int, largest: float, index: int) -> str:
    return (
        f"{file}: features far outside the model's training range ({n_far} of {dim} beyond "
        f"{FAR_SD:g} training standard deviations, up to {largest:.1f} at feature {index}): "
        "digital silence or a near-constant recording? its prediction is unreliable"
    )


# -- manifests ------------------------------------------------------------------------------
MANIFEST_NAME = "manifest.csv"


@dataclass
class ManifestEntry:
    file: str  # as written in the manifest
    path: Path  # resolved
    speaker: str
    dialogue: str
    where: str = ""  # "<csv>, line <n>"


def read_manifest(source) -> list[ManifestEntry]:
    """Utterances from a CSV (columns ``file``, ``speaker``, optional ``dialogue``; files
    relative to the CSV's folder; rows in turn order) or a folder holding ``manifest.csv``."""
    source = Path(source)
    from bridging.utils.files import check_input_file

    check_input_file(source, "CSV file or folder")
    if source.is_dir():
        csv_path = source / MANIFEST_NAME
        check_input_file(csv_path, "CSV file")  # a FIFO would hang the read
        if not csv_path.is_file():
            raise DataError(
                f"{source}: a folder without {MANIFEST_NAME} (columns file,speaker[,dialogue], "
                "one row per utterance in turn order)"
            )
    elif source.is_file():
        csv_path = source
    else:
        raise DataError(f"{source}: no such CSV file or folder")
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            fields = [(f or "").strip() for f in (reader.fieldnames or [])]
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"{csv_path}: unreadable CSV ({exc})") from None
    for col in ("file", "speaker"):
        if col not in fields:
            raise DataError(
                f"{csv_path}: no {col!r} column (columns: {fields}; expected file,speaker"
                "[,dialogue])"
            )
    base = csv_path.parent
    out = []
    for n, row in enumerate(rows, start=2):
        row = {(k or "").strip(): (v or "").strip() for k, v in row.items()}
        if not row.get("file"):
            raise DataError(f"{csv_path}, line {n}: empty 'file'")
        if not row.get("speaker"):
            raise DataError(f"{csv_path}, line {n}: empty 'speaker' for {row['file']}")
        path = Path(row["file"])
        out.append(
            ManifestEntry(
                file=row["file"],
                path=path if path.is_absolute() else base / path,
                speaker=row["speaker"],
                dialogue=row.get("dialogue", "") or "",
                where=f"{csv_path}, line {n}",
            )
        )
    if not out:
        raise DataError(f"{csv_path}: no utterance rows")
    return out


def predict_audio(
    ckpt_path,
    input,
    output=None,
    causal: bool = False,
    workers: int = 1,
    cache_dir=None,
    wp=None,
    wf=None,
    extractor_overrides=None,
    progress=None,
    out_of_range: str = "warn",
) -> list[dict]:
    """Library side of ``bridging-predict-audio``: rows (dialogue if given, file, speaker,
    pred, prob_<label>), written to ``output`` as CSV when given.

    ``out_of_range``: what to do with an utterance whose features lie far outside the
    training range (:func:`far_outside`, e.g. an all-silent wav): ``warn`` (a
    :class:`FeatureRangeWarning` naming the file, the prediction is still made) or
    ``refuse`` (a DataError)."""
    from bridging.utils.files import atomic_write_csv, check_output_path

    if out_of_range not in OUT_OF_RANGE:
        raise DataError(f"out_of_range={out_of_range!r}: expected one of {list(OUT_OF_RANGE)}")
    if output is not None:
        check_output_path(output)
    entries = read_manifest(input)
    model = SpeechModel(ckpt_path, extractor_overrides)
    speakers = []
    for e in entries:  # check every row before the (long) extraction
        try:
            speakers.append(int(model.speaker_ids([e.speaker])[0]))
        except DataError as exc:
            raise DataError(f"{e.where}: {str(exc).replace(' of utterance 0', '')}") from None
    feats = model.features(
        [e.path for e in entries], workers=workers, cache_dir=cache_dir, progress=progress
    )
    for i, n_far, largest, index in far_outside(model.pipeline, feats):
        msg = range_message(entries[i].path, n_far, feats.shape[1], largest, index)
        if out_of_range == "refuse":
            raise DataError(f"{msg} (refused: out of range; 'warn' predicts anyway)")
        warnings.warn(msg, FeatureRangeWarning, stacklevel=2)
    groups: dict[str, list[int]] = {}
    for i, e in enumerate(entries):
        groups.setdefault(e.dialogue, []).append(i)
    has_dialogue = any(e.dialogue for e in entries)
    rows: list[dict | None] = [None] * len(entries)
    for dialogue, idx in groups.items():
        spk = np.array([speakers[i] for i in idx], dtype=np.int64)
        fn = model.predict_prefixes if causal else model.predict_features
        probs = fn(feats[idx], spk, wp=wp, wf=wf)
        for i, s, p in zip(idx, spk, probs):
            row = {"dialogue": dialogue} if has_dialogue else {}
            row.update(
                file=entries[i].file,
                speaker=model.speaker_names[int(s)],
                pred=model.label_names[int(np.argmax(p))],
            )
            row.update({f"prob_{n}": f"{float(v):.6f}" for n, v in zip(model.label_names, p)})
            rows[i] = row
    if output is not None:
        atomic_write_csv(output, rows)
    return rows


__all__ = [
    "FeatureRangeWarning",
    "far_outside",
    "Prediction",
    "Session",
    "SpeechModel",
    "graph_window",
    "predict_audio",
    "read_manifest",
]
