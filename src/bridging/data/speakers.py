"""Who speaks each utterance, across dialogues: the speaker keys of speaker-wise
normalisation (:mod:`bridging.data.normalize`) and of the report's per-actor view.

Files store a speaker per utterance as a code local to its dialogue (IEMOCAP: M or F;
MELD: the slot of the speaker in the dialogue, s0, s1, ...). Who that person is, across
dialogues, comes from the data:

- **IEMOCAP** (dialogue ids ``Ses0N...``, the synthetic corpus's ``Ses0N_synth...``
  included): each session was recorded by two actors, one male and one female, so an actor
  is the session and the utterance's gender, ``Ses01M``, ``Ses01F``, ... (10 actors). The
  letter after ``Ses0N`` in a real dialogue id (``Ses01F_impro01``) says who wore the
  markers, not who speaks: it is not used.
- **Everything else** (MELD's pickles, other corpora): the files carry speaker slots, not
  names (MELD's ``videoSpeakers`` is a one-hot slot per dialogue), so a speaker is known
  within its dialogue only: the key is ``<dialogue id>/<slot name>``. Speaker-wise
  statistics then pool a person's utterances of one dialogue, as online normalisation does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

_IEMOCAP_SESSION = re.compile(r"^(Ses0[1-5])(?![0-9])")


def actor_keys(dialogue_id: str, speakers, speaker_names: Sequence[str]) -> list[str]:
    """The speaker key of each utterance of one dialogue (see the module's docstring):
    ``speakers`` are the dialogue's speaker codes, ``speaker_names`` the corpus's names of
    those codes (``("M", "F")`` for IEMOCAP)."""
    codes = np.asarray(speakers, dtype=np.int64).reshape(-1)
    names = [speaker_names[c] if 0 <= c < len(speaker_names) else f"s{c}" for c in codes]
    m = _IEMOCAP_SESSION.match(str(dialogue_id))
    if m and set(speaker_names) >= {"M", "F"}:
        return [f"{m.group(1)}{n}" for n in names]
    return [f"{dialogue_id}/{n}" for n in names]


def split_actor_ids(dialogues, speaker_names: Sequence[str]) -> tuple[list[np.ndarray], list[str]]:
    """Integer actor ids per dialogue (int64 ``[n_utterances]`` each) and the actor keys in
    id order (first appearance), for a list of :class:`~bridging.data.records.Dialogue`."""
    index: dict[str, int] = {}
    out = []
    for d in dialogues:
        keys = actor_keys(d.id, d.speakers, speaker_names)
        out.append(
            np.fromiter((index.setdefault(k, len(index)) for k in keys), np.int64, len(keys))
        )
    return out, list(index)
