"""Evaluation protocols: which dialogues are train, dev and test (docs/protocols.md).

``paper`` (the default)
    the splits as the source gives them (docs/method.md, section 1): sessions 1-4 train,
    session 5 test, dev as stored or the first 10% of the training dialogues in stored order.
``loso`` (leave one session out) with ``fold`` 1..5
    test = session ``fold`` (both actors); dev by ``dev``: ``next_session`` (what ``auto``
    means under loso) = the whole session ``fold % 5 + 1``, or ``within_train`` = the first
    ``int(0.1 * n)`` of the other four sessions' ``n`` dialogues in stored order (the paper's
    rule); train = the rest.

A dialogue's session is read from its id, ``Ses0N...`` (IEMOCAP's ``Ses01F_impro01``, and the
synthetic corpus's ``Ses01_synth000``: its actors ``2 (N - 1) + speaker`` are the two of
session N, session 5 its test split). An actor is a (session, speaker) pair, so splits made
of whole sessions are speaker-disjoint. The *stored order* of a corpus is its dev, then
train, then test dialogues as loaded: a DialogueRNN file's trainVid then testVid, the
synthetic generator's order; so loso fold 5 with ``within_train`` gives the paper split of
such sources back. Re-splitting a re-split corpus gives the same splits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

import numpy as np

from bridging.data.records import Corpus, DataError, Dialogue

PROTOCOLS = ("paper", "loso")
#: data.dev: auto = the protocol's own rule (paper: the source's; loso: next_session)
DEV_RULES = ("auto", "next_session", "within_train")
N_SESSIONS = 5
DEV_FRACTION = 0.1
SPLIT_ORDER = ("dev", "train", "test")
_SESSION_ID = re.compile(r"^Ses0([1-5])(?![0-9])")


@dataclass(frozen=True)
class Protocol:
    """A validated ``data.protocol``, ``data.fold``, ``data.dev`` (see the module doc)."""

    name: str = "paper"
    fold: int | None = None
    dev: str = "auto"

    @classmethod
    def from_config(cls, name="paper", fold=None, dev="auto", where="<data>") -> Protocol:
        """Check the three config values; a DataError names ``where`` and the bad key."""
        if name not in PROTOCOLS:
            raise DataError(
                f"{where}: data.protocol={name!r}: expected one of {_one_of(PROTOCOLS)}"
            )
        if dev not in DEV_RULES:
            raise DataError(f"{where}: data.dev={dev!r}: expected one of {_one_of(DEV_RULES)}")
        if name == "paper":
            _check_paper(fold, dev, where)
        elif isinstance(fold, bool) or not isinstance(fold, int) or not 1 <= fold <= N_SESSIONS:
            raise DataError(
                f"{where}: data.fold={fold!r}: expected an int 1..{N_SESSIONS} (the test "
                "session) with data.protocol=loso"
            )
        return cls(name, fold, dev)

    @property
    def dev_rule(self) -> str:
        """How dev is chosen: ``source`` (paper), ``next_session`` or ``within_train``."""
        if self.name == "paper":
            return "source"
        return "next_session" if self.dev == "auto" else self.dev

    def describe(self) -> dict:
        """The protocol, fold and dev rule (for DatasetFacts and summaries)."""
        return {"protocol": self.name, "fold": self.fold, "dev_rule": self.dev_rule}

    def apply(self, corpus: Corpus) -> Corpus:
        """``corpus`` with this protocol's splits (paper: unchanged)."""
        if self.name == "paper":
            return corpus
        return loso_splits(corpus, self.fold, self.dev_rule)


def _one_of(names) -> str:
    return ", ".join(names)


def _check_paper(fold, dev, where: str) -> None:
    if fold is not None:
        raise DataError(
            f"{where}: data.fold={fold!r}: a fold applies to data.protocol=loso only; "
            "with protocol=paper leave data.fold=null"
        )
    if dev != "auto":
        raise DataError(
            f"{where}: data.dev={dev}: applies to data.protocol=loso only (paper keeps the "
            "source's dev split); leave data.dev=auto"
        )


def session_of(dialogue_id: str, where: str) -> int:
    """The IEMOCAP session (1-5) in a dialogue id ``Ses0N...``; a DataError otherwise."""
    m = _SESSION_ID.match(dialogue_id)
    if not m:
        raise DataError(
            f"{where}: dialogue id {dialogue_id!r}: expected an IEMOCAP session id "
            "(Ses01..Ses05, as in Ses01F_impro01) for data.protocol=loso; data without "
            "sessions (e.g. MELD) has data.protocol=paper only"
        )
    return int(m.group(1))


def sessions_of(dialogue_ids, where: str) -> list[int]:
    """The sessions of some dialogues, sorted."""
    return sorted({session_of(i, where) for i in dialogue_ids})


def stored_order(corpus: Corpus) -> list[Dialogue]:
    """Every dialogue of ``corpus``: dev, then train, then test, each as stored."""
    return [d for split in SPLIT_ORDER for d in corpus.splits.get(split, [])]


def fold_sessions(fold: int) -> dict[str, list[int]]:
    """Sessions of each split of a loso fold with whole-session dev."""
    dev = fold % N_SESSIONS + 1
    train = [s for s in range(1, N_SESSIONS + 1) if s not in (fold, dev)]
    return {"train": train, "dev": [dev], "test": [fold]}


def loso_splits(corpus: Corpus, fold: int, dev_rule: str = "next_session") -> Corpus:
    """``corpus`` re-split for loso fold ``fold``: test = session ``fold``; dev = session
    ``fold % 5 + 1`` (``next_session``) or the first 10% of the other dialogues in stored
    order (``within_train``); train = the rest."""
    where = corpus.where()
    dialogues = stored_order(corpus)
    sessions = [session_of(d.id, where) for d in dialogues]
    _check_sessions(sessions, fold, where)
    test = [d for d, s in zip(dialogues, sessions) if s == fold]
    rest = [(d, s) for d, s in zip(dialogues, sessions) if s != fold]
    if dev_rule == "within_train":
        n_dev = int(DEV_FRACTION * len(rest))
        dev, train = [d for d, _ in rest[:n_dev]], [d for d, _ in rest[n_dev:]]
    else:
        dev_session = fold_sessions(fold)["dev"][0]
        dev = [d for d, s in rest if s == dev_session]
        train = [d for d, s in rest if s != dev_session]
    return replace(corpus, splits={"train": train, "dev": dev, "test": test})


def _check_sessions(sessions: list[int], fold: int, where: str) -> None:
    """Every session must hold dialogues, whatever the fold and dev rule: a fold of a file
    missing a session would train on fewer sessions than the protocol says (and
    ``bridging-data inspect --protocol loso``, which counts every fold, refuses the file)."""
    missing = [s for s in range(1, N_SESSIONS + 1) if s not in sessions]
    if missing:
        which = f"session {missing[0]} has" if len(missing) == 1 else "sessions "
        if len(missing) > 1:
            which += f"{', '.join(map(str, missing))} have"
        raise DataError(
            f"{where}: data.fold={fold}: {which} no dialogue (sessions present: "
            f"{sorted(set(sessions))}); loso needs all of Ses01..Ses05 (every fold trains on "
            "three of them)"
        )


def split_counts(dialogues: list[Dialogue], label_names, where: str) -> dict:
    """Dialogues, utterances, label counts and sessions of one split (JSON-ready)."""
    labels = np.concatenate([d.labels for d in dialogues]) if dialogues else np.zeros(0, int)
    counts = np.bincount(labels[labels >= 0], minlength=len(label_names)).tolist()
    return {
        "dialogues": len(dialogues),
        "utterances": int(labels.size),
        "label_counts": dict(zip(label_names, counts)),
        "sessions": sessions_of((d.id for d in dialogues), where),
    }


def loso_summary(corpus: Corpus, dev: str = "auto") -> dict:
    """Counts of every loso fold (per split: dialogues, utterances, labels, sessions)."""
    where = corpus.where()
    folds = [Protocol.from_config("loso", k, dev, where) for k in range(1, N_SESSIONS + 1)]
    return {
        "format": corpus.source_format,
        "path": corpus.path,
        "label_set": corpus.label_set,
        "label_names": list(corpus.label_names),
        "protocol": "loso",
        "dev_rule": folds[0].dev_rule,
        "folds": {str(p.fold): _fold_counts(p.apply(corpus), where) for p in folds},
    }


def _fold_counts(corpus: Corpus, where: str) -> dict:
    return {
        name: split_counts(corpus.splits[name], corpus.label_names, where)
        for name in ("train", "dev", "test")
    }


__all__ = [
    "PROTOCOLS",
    "DEV_RULES",
    "Protocol",
    "session_of",
    "sessions_of",
    "stored_order",
    "fold_sessions",
    "loso_splits",
    "split_counts",
    "loso_summary",
]
