"""What the synthetic generators share: IEMOCAP's class counts and affect points, dialogue
lengths, two-speaker turns, the per-speaker emotion chain, random feature embeddings and the
checked replacement of a generator's parameters."""

from __future__ import annotations

from dataclasses import fields, replace

import numpy as np

from bridging.data.records import (
    LABEL_SETS,
    SPEAKER_NAMES,
    Corpus,
    Dialogue,
    check_feature_sizes,
    six_way_corpus,
)
from bridging.data.validate import convert_label_set

#: IEMOCAP 6-way utterance counts (hap, sad, neu, ang, exc, fru): 7,433 in all.
IEMOCAP_6_COUNTS = (648, 1084, 1708, 1103, 1041, 1849)
#: (valence, arousal) of each 6-way class, roughly as in the affect literature.
AFFECT = np.array(
    [[0.9, 0.4], [-0.9, -0.9], [0.0, -0.4], [-0.8, 0.9], [1.0, 1.0], [-0.7, 0.3]],
    dtype=np.float64,
)


def dialogue_lengths(rng, n, min_len, max_len, mean_len, total) -> np.ndarray:
    """``n`` dialogue lengths in ``min_len..max_len`` from a scaled Beta with mean ``mean_len``;
    with ``total`` given, nudged by one at random dialogues until they add up to it."""
    if not (1 <= min_len <= max_len):
        raise ValueError(f"need 1 <= min_len ({min_len}) <= max_len ({max_len})")
    if min_len == max_len:
        lengths = np.full(n, min_len, dtype=np.int64)
    else:
        mean_len = float(np.clip(mean_len, min_len, max_len))
        m = (mean_len - min_len) / (max_len - min_len)
        m = float(np.clip(m, 0.02, 0.98))
        conc = 5.0
        u = rng.beta(conc * m, conc * (1 - m), size=n)
        lengths = np.rint(min_len + u * (max_len - min_len)).astype(np.int64)
    if total is not None:
        if not (n * min_len <= total <= n * max_len):
            raise ValueError(
                f"total_utterances {total} impossible for {n} dialogues of {min_len}..{max_len}"
            )
        diff = int(total - lengths.sum())
        while diff != 0:
            step = 1 if diff > 0 else -1
            room = lengths < max_len if step > 0 else lengths > min_len
            idx = rng.permutation(np.flatnonzero(room))[: abs(diff)]
            lengths[idx] += step
            diff -= step * len(idx)
    return lengths


def two_speaker_turns(rng, n, switch_prob) -> np.ndarray:
    """The speaker (0 or 1) of each of ``n`` turns: the other one with probability
    ``switch_prob``, the first drawn at random."""
    switches = rng.random(n) < switch_prob
    switches[0] = False
    return (rng.integers(2) + np.cumsum(switches)) % 2


def emotion_chain(rng, speakers, mood, persistence, coupling) -> np.ndarray:
    """A class per turn from a per-speaker chain: one's own last class with probability
    ``persistence``, else the other speaker's with probability ``coupling``, else a draw
    from ``mood`` (the legacy and the calibrated IEMOCAP generators)."""
    n = len(speakers)
    out = np.empty(n, dtype=np.int64)
    fresh = rng.choice(len(mood), size=n, p=mood)
    u = rng.random((n, 2))
    last = [-1, -1]
    for i in range(n):
        s = speakers[i]
        own, other = last[s], last[1 - s]
        if own >= 0 and u[i, 0] < persistence:
            y = own
        elif other >= 0 and u[i, 1] < coupling:
            y = other
        else:
            y = fresh[i]
        out[i] = y
        last[s] = y
    return out


def embedding(rng, dim: int, k: int) -> np.ndarray:
    """A random ``[dim, k]`` map with orthonormal columns (or scaled Gaussian if dim < k)."""
    if dim >= k:
        q, _ = np.linalg.qr(rng.standard_normal((dim, k)))
        return q
    return rng.standard_normal((dim, k)) / np.sqrt(k)


def check_shape(label_set, sizes, n_dialogues, n_test) -> None:
    """ValueError for an unknown label set, bad feature sizes or a test split that is not
    between 1 and ``n_dialogues - 1`` dialogues."""
    if label_set not in LABEL_SETS:
        raise ValueError(f"unknown label set {label_set!r}: expected one of {sorted(LABEL_SETS)}")
    check_feature_sizes(sizes)
    if not (1 <= n_test < n_dialogues):
        raise ValueError(f"need 1 <= n_test_dialogues ({n_test}) < n_dialogues ({n_dialogues})")


def two_speaker_dialogue(vid, speakers, labels, features, sentences: bool, latent=None):
    """An IEMOCAP-shaped synthetic :class:`Dialogue` (speakers M 0, F 1); with ``sentences``,
    a placeholder sentence per turn naming the dialogue, the turn and the speaker."""
    return Dialogue(
        id=vid,
        speakers=speakers,
        labels=labels,
        features=features,
        sentences=(
            [f"{vid} turn {i} ({SPEAKER_NAMES[s]})" for i, s in enumerate(speakers)]
            if sentences
            else None
        ),
        latent=latent,
    )


def iemocap_corpus(splits: dict, extractors: dict, label_set: str) -> Corpus:
    """The synthetic IEMOCAP-shaped corpus of 6-way ``splits``, in ``label_set``."""
    return convert_label_set(six_way_corpus(splits, "synthetic", None, extractors), label_set)


def replace_checked(params, kw: dict, per_class: tuple, n_classes: int):
    """``params`` (a frozen dataclass) with the fields in ``kw`` replaced: unknown names are
    refused, ``strength`` updates the current dict, and every field named in ``per_class``
    needs ``n_classes`` numbers."""
    known = {f.name for f in fields(params)}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise ValueError(f"unknown synthetic parameters {unknown}; known: {sorted(known)}")
    if "strength" in kw:
        kw["strength"] = {**params.strength, **dict(kw["strength"])}
    for k in per_class:
        if k in kw:
            kw[k] = tuple(float(x) for x in kw[k])
            if len(kw[k]) != n_classes:
                raise ValueError(f"synthetic parameter {k} needs {n_classes} values")
    return replace(params, **kw)


__all__ = [
    "AFFECT",
    "IEMOCAP_6_COUNTS",
    "check_shape",
    "iemocap_corpus",
    "two_speaker_dialogue",
    "dialogue_lengths",
    "embedding",
    "emotion_chain",
    "replace_checked",
    "two_speaker_turns",
]
