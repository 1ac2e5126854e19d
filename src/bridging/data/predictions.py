"""Per-utterance predictions of a run, saved next to its metrics.json, and scores from them.

Every training run (``bridging-train``, every recipe), every ``bridging-eval`` output, the
speech-only evaluation of ``bridging-reproduce`` and the reference rows of
:mod:`bridging.runs.baselines` write ``test_predictions.npz`` (``<split>_predictions.npz`` for
another split) in their run dir, written atomically. It is a plain ``numpy.savez_compressed``
archive, readable with ``numpy.load(path)`` (no pickle):

==================  ===============  ==========================================================
array               dtype, shape     what
==================  ===============  ==========================================================
``dialogue_id``     str ``[n]``      the dialogue of each utterance
``utterance_index`` int64 ``[n]``    the utterance's position in its dialogue (0-based)
``gold``            int64 ``[n]``    gold label index, ``-100`` (IGNORE_INDEX) where unknown
``pred``            int64 ``[n]``    predicted label index (``-1``: a class outside the label
                                     set, only the annotation ceiling has these)
``probs``           float32 ``[n,K]`` the class probabilities (one-hot for the ceiling)
``label_names``     str ``[K]``      the label names, in index order
``split``           str ``[]``       the split (``test``)
``speaker``         str ``[n]``      who speaks each utterance, across dialogues
                                     (:func:`bridging.data.speakers.actor_keys`): on IEMOCAP
                                     the actor, session and gender (``Ses01F``); the
                                     speaker's name where the data gives it (MELD from
                                     its CSVs); else ``<dialogue id>/<slot>``. Optional:
                                     files written before
                                     it was recorded have none (:attr:`Predictions.speaker`
                                     None)
==================  ===============  ==========================================================

Rows are sorted by (dialogue id, utterance index), each utterance once. The metrics in the run's
metrics.json (``test.wf1``, ``acc``, ``mf1``, ``per_class_f1``, ``confusion``) equal
:meth:`Predictions.scores` of this file: the same definitions as the recipes' torchmetrics
(weighted F1 weighted by gold support; macro F1 over the classes that occur in gold or
prediction; utterances with an unknown gold label left out). Under DDP every process's
utterances are gathered and rank 0 writes the file; when the test split does not divide
evenly between the processes, Lightning's sampler repeats a few utterances: metrics.json
counts them, this file does not, and bridging-report then leaves that run out of the paired
claims, saying why.
"""

from __future__ import annotations

import io
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from bridging.data.records import IGNORE_INDEX, DataError
from bridging.utils.files import atomic_write_bytes

PREDICTIONS_FILE = "test_predictions.npz"
FIELDS = ("dialogue_id", "utterance_index", "gold", "pred", "probs", "label_names", "split")
#: arrays a file may lack (written before they were recorded)
OPTIONAL_FIELDS = ("speaker",)


def refuse_non_finite(probs, where) -> None:
    """Refuse (a DataError naming ``where``, the model) class probabilities that are not
    all finite: predictions never hold NaN."""
    probs = np.asarray(probs)
    bad = ~np.isfinite(probs).reshape(len(probs), -1).all(axis=1) if len(probs) else []
    if np.any(bad):
        raise DataError(
            f"{where}: the model's class probabilities are not finite (nan or inf) for "
            f"{int(np.sum(bad))} of {len(probs)} utterances; refusing to write them: features "
            "of enormous magnitude (standardise them), or a model whose training diverged"
        )


def predictions_file(split: str = "test") -> str:
    """The file name of a split's predictions in a run dir."""
    return f"{split}_predictions.npz"


class PredictionsError(ValueError):
    """A predictions file that cannot be read: the message is ``<file>: <field>: <expected>``."""


# ---------------------------------------------------------------------------------------------
# scores (numpy, batched over leading axes; the bootstrap of bridging.report.stats uses them)
# ---------------------------------------------------------------------------------------------


def confusion_matrix(gold, pred, n_classes: int) -> np.ndarray:
    """Counts ``[K, K + 1]``: rows gold, columns predicted; the last column counts predictions
    outside the label set (any index not in ``0..K-1``). Unknown gold labels are left out."""
    gold = np.asarray(gold, dtype=np.int64)
    pred = np.asarray(pred, dtype=np.int64)
    known = (gold >= 0) & (gold < n_classes)
    g, p = gold[known], pred[known]
    p = np.where((p >= 0) & (p < n_classes), p, n_classes)
    flat = np.bincount(g * (n_classes + 1) + p, minlength=n_classes * (n_classes + 1))
    return flat.reshape(n_classes, n_classes + 1)


def f1_scores(confusion) -> dict[str, np.ndarray]:
    """Weighted F1, accuracy, macro F1 and per-class F1 from confusion counts ``[..., K, K']``
    (``K' = K`` or ``K + 1``, the extra column: predictions outside the label set), batched
    over the leading axes. The definitions of torchmetrics' MulticlassF1Score/Accuracy: F1 of a
    class is 0 when it has no true positive; weighted by gold support; the macro average
    leaves out classes with no gold, no prediction and so no error."""
    c = np.asarray(confusion, dtype=np.float64)
    k = c.shape[-2]
    tp = np.diagonal(c[..., :, :k], axis1=-2, axis2=-1)
    support = c.sum(-1)
    predicted = c[..., :, :k].sum(-2)
    fn, fp = support - tp, predicted - tp
    denom = 2 * tp + fp + fn
    f1 = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    total = support.sum(-1)
    wf1 = np.divide((support * f1).sum(-1), total, out=np.zeros_like(total), where=total > 0)
    acc = np.divide(tp.sum(-1), total, out=np.zeros_like(total), where=total > 0)
    present = (denom > 0).astype(np.float64)
    n_present = present.sum(-1)
    mf1 = np.divide(
        (present * f1).sum(-1), n_present, out=np.zeros_like(total), where=n_present > 0
    )
    return {"wf1": wf1, "acc": acc, "mf1": mf1, "f1": f1}


def scores_dict(confusion, label_names: Sequence[str]) -> dict:
    """The test-metrics object of metrics.json (without ``loss``) from confusion counts
    ``[K, K']``: ``wf1``, ``acc``, ``mf1``, ``per_class_f1``, ``confusion`` (``[K, K]``; counts of
    predictions outside the label set, if any, in ``outside_label_set``)."""
    c = np.asarray(confusion)
    s = f1_scores(c)
    k = c.shape[0]
    out = {
        "wf1": float(s["wf1"]),
        "acc": float(s["acc"]),
        "mf1": float(s["mf1"]),
        "per_class_f1": {str(n): float(v) for n, v in zip(label_names, s["f1"])},
        "confusion": c[:, :k].astype(np.int64).tolist(),
    }
    if c.shape[1] > k and int(c[:, k:].sum()):
        out["outside_label_set"] = int(c[:, k:].sum())
    return out


# ---------------------------------------------------------------------------------------------
# the file
# ---------------------------------------------------------------------------------------------


@dataclass
class Predictions:
    """One split's per-utterance predictions (see the module docstring for the fields)."""

    dialogue_id: np.ndarray
    utterance_index: np.ndarray
    gold: np.ndarray
    pred: np.ndarray
    probs: np.ndarray
    label_names: tuple[str, ...]
    split: str = "test"
    #: the speaker key of each utterance (str ``[n]``); None when not recorded
    speaker: np.ndarray | None = None

    @classmethod
    def build(
        cls,
        dialogue_id,
        utterance_index,
        gold,
        pred,
        probs,
        label_names,
        split="test",
        speaker=None,
    ) -> Predictions:
        """Arrays in any order, possibly with repeated utterances (DDP's sampler pads with
        repeats): sorted by (dialogue id, utterance index), each utterance kept once
        (``speaker``, optional, in the same order as the others)."""
        ids = np.asarray([str(x) for x in dialogue_id], dtype=str)
        pos = np.asarray(utterance_index, dtype=np.int64)
        order = np.lexsort((pos, ids))
        ids, pos = ids[order], pos[order]
        keep = np.ones(len(ids), dtype=bool)
        if len(ids) > 1:
            keep[1:] = (ids[1:] != ids[:-1]) | (pos[1:] != pos[:-1])
        sel = order[keep]
        return cls(
            dialogue_id=ids[keep],
            utterance_index=pos[keep],
            gold=np.asarray(gold, dtype=np.int64)[sel],
            pred=np.asarray(pred, dtype=np.int64)[sel],
            probs=np.asarray(probs, dtype=np.float32)[sel],
            label_names=tuple(str(n) for n in label_names),
            split=str(split),
            speaker=None
            if speaker is None
            else np.asarray([str(x) for x in speaker], dtype=str)[sel],
        )

    def with_speakers(self, dialogues, speaker_names: Sequence[str]) -> Predictions:
        """A copy with :attr:`speaker` filled from the split's ``dialogues`` (each with ``id``
        and ``speakers``, the codes of ``speaker_names``): see :func:`speaker_keys_for`."""
        keys = speaker_keys_for(self.dialogue_id, self.utterance_index, dialogues, speaker_names)
        return replace(self, speaker=keys)

    def __len__(self) -> int:
        return int(self.gold.shape[0])

    @property
    def n_classes(self) -> int:
        return len(self.label_names)

    # -- scores ----------------------------------------------------------------------------
    def confusion(self) -> np.ndarray:
        """``[K, K + 1]`` counts (see :func:`confusion_matrix`)."""
        return confusion_matrix(self.gold, self.pred, self.n_classes)

    def scores(self) -> dict:
        """``wf1``, ``acc``, ``mf1``, ``per_class_f1``, ``confusion``, as in metrics.json."""
        return scores_dict(self.confusion(), self.label_names)

    def dialogues(self) -> tuple[list[str], np.ndarray]:
        """The dialogue ids (sorted) and each dialogue's confusion counts ``[D, K, K + 1]``."""
        ids, inverse = np.unique(self.dialogue_id, return_inverse=True)
        k = self.n_classes
        gold, pred = self.gold, np.where((self.pred >= 0) & (self.pred < k), self.pred, k)
        known = (gold >= 0) & (gold < k)
        cell = (inverse[known] * k + gold[known]) * (k + 1) + pred[known]
        counts = np.bincount(cell, minlength=len(ids) * k * (k + 1))
        return [str(i) for i in ids], counts.reshape(len(ids), k, k + 1)

    def same_items(self, other: Predictions) -> bool:
        """The same utterances with the same gold labels and label names (the same test data)."""
        return (
            self.label_names == other.label_names
            and len(self) == len(other)
            and bool(np.array_equal(self.dialogue_id, other.dialogue_id))
            and bool(np.array_equal(self.utterance_index, other.utterance_index))
            and bool(np.array_equal(self.gold, other.gold))
        )

    # -- files -----------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write the archive atomically (a temporary file in the same folder, then a rename)."""
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            dialogue_id=self.dialogue_id.astype(str),
            utterance_index=self.utterance_index.astype(np.int64),
            gold=self.gold.astype(np.int64),
            pred=self.pred.astype(np.int64),
            probs=self.probs.astype(np.float32),
            label_names=np.asarray(self.label_names, dtype=str),
            split=np.asarray(self.split, dtype=str),
            **({} if self.speaker is None else {"speaker": np.asarray(self.speaker, dtype=str)}),
        )
        return atomic_write_bytes(path, buf.getvalue())

    @classmethod
    def load(cls, path) -> Predictions:
        """Read and check an archive; PredictionsError ``<file>: <field>: <expected>``."""
        from bridging.utils.files import file_kind

        path = Path(path)
        kind = file_kind(path)
        if kind is not None:  # a FIFO would hang np.load
            raise PredictionsError(f"{path}: file: is {kind}; expected a numpy .npz archive")
        try:
            with np.load(path, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as e:
            # a truncated or damaged archive (BadZipFile: e.g. a run killed while writing)
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise PredictionsError(f"{path}: file: expected a numpy .npz archive ({msg})") from e
        for k in FIELDS:
            if k not in arrays:
                raise PredictionsError(f"{path}: {k}: expected an array named {k!r}")

        def check(name, ok, what):
            if not ok:
                raise PredictionsError(f"{path}: {name}: expected {what}")

        names, probs = arrays["label_names"], arrays["probs"]
        check("label_names", names.ndim == 1 and names.dtype.kind == "U", "a 1-d string array")
        n = arrays["gold"].shape[0] if arrays["gold"].ndim == 1 else -1
        check("gold", n >= 0 and arrays["gold"].dtype.kind in "iu", "a 1-d integer array")
        for k in ("utterance_index", "pred"):
            a = arrays[k]
            check(k, a.shape == (n,) and a.dtype.kind in "iu", f"an integer array of length {n}")
        check(
            "dialogue_id",
            arrays["dialogue_id"].shape == (n,) and arrays["dialogue_id"].dtype.kind == "U",
            f"a string array of length {n}",
        )
        k = len(names)
        check(
            "probs", probs.shape == (n, k) and probs.dtype.kind == "f", f"floats of shape {n}x{k}"
        )
        gold = arrays["gold"].astype(np.int64)
        check(
            "gold",
            bool(np.all((gold == IGNORE_INDEX) | ((gold >= 0) & (gold < k)))),
            f"label indices in 0..{k - 1} or {IGNORE_INDEX}",
        )
        pred = arrays["pred"].astype(np.int64)
        check("pred", bool(np.all((pred >= -1) & (pred < k))), f"label indices in -1..{k - 1}")
        speaker = arrays.get("speaker")
        if speaker is not None:
            check(
                "speaker",
                speaker.shape == (n,) and speaker.dtype.kind == "U",
                f"a string array of length {n}",
            )
        return cls(
            dialogue_id=arrays["dialogue_id"],
            utterance_index=arrays["utterance_index"].astype(np.int64),
            gold=gold,
            pred=pred,
            probs=probs.astype(np.float32),
            label_names=tuple(str(x) for x in names),
            split=str(arrays["split"]),
            speaker=speaker,
        )


def speaker_keys_for(dialogue_id, utterance_index, dialogues, speaker_names) -> np.ndarray:
    """The speaker key (:func:`bridging.data.speakers.actor_keys`) of each row given by its
    ``dialogue_id`` and ``utterance_index``, looked up in ``dialogues`` (the split's
    :class:`~bridging.data.records.Dialogue` list: ``id``, ``speakers``) whose speaker codes
    name ``speaker_names``. A str array ``[n]``; ValueError for a row whose dialogue or
    utterance is not among ``dialogues``."""
    from bridging.data.speakers import actor_keys

    keys = {
        str(d.id): actor_keys(d.id, d.speakers, speaker_names, getattr(d, "persons", None))
        for d in dialogues
    }
    out = []
    for dlg, pos in zip(dialogue_id, np.asarray(utterance_index, dtype=np.int64).tolist()):
        of = keys.get(str(dlg))
        if of is None or not 0 <= pos < len(of):
            raise ValueError(
                f"speaker: utterance {pos} of dialogue {dlg} is not in the split's dialogues"
            )
        out.append(of[pos])
    return np.asarray(out, dtype=str)


def from_recipe_arrays(arrays: dict, dialogue_ids: Sequence[str], label_names, split="test"):
    """:class:`Predictions` from what a recipe collected at test time (``dialogue``: the
    dialogues' positions in their split, ``position``, ``gold``, ``pred``, ``probs``), with
    ``dialogue_ids`` the split's ids in order."""
    ids = np.asarray(list(dialogue_ids), dtype=str)
    return Predictions.build(
        dialogue_id=ids[np.asarray(arrays["dialogue"], dtype=np.int64)],
        utterance_index=arrays["position"],
        gold=arrays["gold"],
        pred=arrays["pred"],
        probs=arrays["probs"],
        label_names=label_names,
        split=split,
    )


__all__ = [
    "PREDICTIONS_FILE",
    "Predictions",
    "PredictionsError",
    "confusion_matrix",
    "f1_scores",
    "from_recipe_arrays",
    "predictions_file",
    "scores_dict",
    "speaker_keys_for",
]
