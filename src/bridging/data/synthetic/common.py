"""What the synthetic generators share: IEMOCAP's class counts and affect points, the shape
of an IEMOCAP-shaped corpus (:class:`IemocapShape`), dialogue lengths, two-speaker turns, the
per-speaker emotion chain, random feature embeddings, the audio and video features of the
calibrated generators (:class:`FeatureParams`) and the checked replacement of a generator's
parameters."""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace

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
#: IEMOCAP: dialogues, test dialogues (session 5), sessions; the features' sizes in COGMEN's
#: files (audio 100, text 768, video 512).
IEMOCAP_DIALOGUES, IEMOCAP_TEST_DIALOGUES, IEMOCAP_SESSIONS = 151, 31, 5
IEMOCAP_FEATURE_SIZES = {"a": 100, "t": 768, "v": 512}
#: Hidden width of the audio modality's random nonlinear map.
AUDIO_HIDDEN = 16
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


@dataclass(frozen=True)
class IemocapShape:
    """The size, splits, labels and seed of an IEMOCAP-shaped corpus: the arguments the
    IEMOCAP-shaped generators (``iemocap``, ``independent``, ``legacy``) share, with IEMOCAP's
    defaults (151 dialogues, lengths 8..110 with mean 49.2, iemocap_6, dev 10% of the
    training dialogues).

    Resolved when made: ``feature_sizes`` None is a 100, t 768, v 512 (any subset of a, t,
    v); ``n_test_dialogues`` None is 31 of 151 scaled to ``n_dialogues`` (at least 1); then
    checked. ``total_utterances``: if given, the 6-way lengths add up to exactly this.
    """

    n_dialogues: int = IEMOCAP_DIALOGUES
    min_len: int = 8
    max_len: int = 110
    mean_len: float = 49.2
    feature_sizes: dict | None = None
    label_set: str = "iemocap_6"
    seed: int = 0
    n_test_dialogues: int | None = None
    dev_fraction: float = 0.1
    total_utterances: int | None = None
    sentences: bool = True

    def __post_init__(self) -> None:
        sizes = self.feature_sizes
        sizes = dict(IEMOCAP_FEATURE_SIZES if sizes is None else sizes)
        n_test = self.n_test_dialogues
        if n_test is None:
            n_test = max(1, round(self.n_dialogues * IEMOCAP_TEST_DIALOGUES / IEMOCAP_DIALOGUES))
        check_shape(self.label_set, sizes, self.n_dialogues, n_test)
        object.__setattr__(self, "feature_sizes", sizes)
        object.__setattr__(self, "n_test_dialogues", n_test)

    @property
    def n_train(self) -> int:
        """Training dialogues, dev included (the first ``n_dev`` of them)."""
        return self.n_dialogues - self.n_test_dialogues

    @property
    def n_dev(self) -> int:
        return int(self.dev_fraction * self.n_train)

    def lengths(self, rng) -> np.ndarray:
        """The 6-way dialogue lengths, drawn from ``rng``."""
        return dialogue_lengths(
            rng, self.n_dialogues, self.min_len, self.max_len, self.mean_len, self.total_utterances
        )


#: The field names of :class:`IemocapShape` (the rest of a generator's keywords are its knobs).
SHAPE_FIELDS = tuple(f.name for f in fields(IemocapShape))


@dataclass(frozen=True)
class FeatureParams:
    """The feature knobs the calibrated generators (``iemocap``, ``meld``) share; their own
    parameter classes extend it, with their own defaults where they differ."""

    #: signal scale per modality (noise is unit variance per dimension)
    strength: dict = field(default_factory=lambda: {"a": 1.0, "t": 1.0, "v": 1.0})
    #: audio: per-actor feature baseline sd, arousal gain sd (log scale), resting arousal sd,
    #: and noise growth with arousal (sd = 1 + hetero * (arousal + 1) / 2)
    audio_speaker_sd: float = 0.8
    audio_gain_sd: float = 0.3
    audio_rest_sd: float = 0.3
    audio_hetero: float = 0.0
    #: video: per-actor feature baseline sd
    video_speaker_sd: float = 0.6
    #: scale of each modality's (non-zero) feature mean
    feature_mean: float = 1.0


def audio_features(rng, dim, onehot, affect, actor, n_actors, params, class_weight=0.5):
    """Audio features ``[n, dim]`` (before the modality's mean): mostly the arousal, with a
    per-actor gain and resting level, through a random tanh map of width
    :data:`AUDIO_HIDDEN`; plus a per-actor baseline and noise growing with the arousal.
    ``onehot`` [n, classes] (weight ``class_weight``), ``affect`` [n, 2] (valence, arousal),
    ``actor`` [n] in ``range(n_actors)``, ``params`` a :class:`FeatureParams`."""
    gain = np.exp(params.audio_gain_sd * rng.standard_normal(n_actors))
    rest = params.audio_rest_sd * rng.standard_normal(n_actors)
    arousal = gain[actor] * affect[:, 1] + rest[actor]
    code = np.concatenate(
        [2.0 * arousal[:, None], 0.5 * affect[:, :1], class_weight * onehot], axis=1
    )
    w1 = rng.standard_normal((code.shape[1], AUDIO_HIDDEN)) / np.sqrt(code.shape[1])
    b1 = 0.5 * rng.standard_normal(AUDIO_HIDDEN)
    hidden = np.tanh(code @ w1 + b1)
    signal = params.strength["a"] * np.sqrt(AUDIO_HIDDEN / 4.0) * hidden
    signal = signal @ embedding(rng, dim, AUDIO_HIDDEN).T
    baseline = params.audio_speaker_sd * rng.standard_normal((n_actors, dim))
    sd = 1.0 + params.audio_hetero * (np.clip(affect[:, 1], -1.5, 1.5) + 1.0) / 2.0
    return signal + baseline[actor] + sd[:, None] * rng.standard_normal((len(onehot), dim))


def video_features(rng, dim, onehot, affect, actor, n_actors, params) -> np.ndarray:
    """Video features ``[n, dim]`` (before the modality's mean): valence, arousal and a little
    of the class, a per-actor baseline, unit noise (arguments as :func:`audio_features`)."""
    code = np.concatenate([0.8 * affect[:, :1], 0.6 * affect[:, 1:], 0.3 * onehot], axis=1)
    signal = params.strength["v"] * code @ embedding(rng, dim, code.shape[1]).T
    baseline = params.video_speaker_sd * rng.standard_normal((n_actors, dim))
    return signal + baseline[actor] + rng.standard_normal((len(onehot), dim))


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
    refused, a dict-valued field (``strength``) is updated, not replaced, and every field
    named in ``per_class`` needs ``n_classes`` numbers."""
    known = {f.name for f in fields(params)}
    unknown = sorted(set(kw) - known)
    if unknown:
        raise ValueError(f"unknown synthetic parameters {unknown}; known: {sorted(known)}")
    for k in kw:
        if isinstance(getattr(params, k), dict):
            kw[k] = {**getattr(params, k), **dict(kw[k] or {})}
    for k in per_class:
        if k in kw:
            kw[k] = tuple(float(x) for x in kw[k])
            if len(kw[k]) != n_classes:
                raise ValueError(f"synthetic parameter {k} needs {n_classes} values")
    return replace(params, **kw)


__all__ = [
    "AFFECT",
    "AUDIO_HIDDEN",
    "FeatureParams",
    "IEMOCAP_6_COUNTS",
    "IEMOCAP_DIALOGUES",
    "IEMOCAP_FEATURE_SIZES",
    "IEMOCAP_SESSIONS",
    "IEMOCAP_TEST_DIALOGUES",
    "IemocapShape",
    "SHAPE_FIELDS",
    "audio_features",
    "video_features",
    "check_shape",
    "iemocap_corpus",
    "two_speaker_dialogue",
    "dialogue_lengths",
    "embedding",
    "emotion_chain",
    "replace_checked",
    "two_speaker_turns",
]
