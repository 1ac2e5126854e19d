"""The first synthetic generator: ``synthesize(preset="legacy")``.

Kept so that earlier results can be reproduced; the default corpus is the calibrated one in
:mod:`bridging.data.synthetic` (see docs/synthetic.md).

Design (all draws from one ``numpy.random.Generator(seed)``):

- **Dialogues and turns.** ``n_dialogues`` dialogues with lengths from a scaled Beta on
  ``[min_len, max_len]`` with mean ``mean_len`` (optionally adjusted to hit
  ``total_utterances`` exactly). Two speakers (M 0, F 1) alternate irregularly: the next
  utterance is by the other speaker with probability ``switch_prob``.
- **Emotions** follow a per-speaker Markov chain on the 6 IEMOCAP classes: each dialogue
  draws a mood ``pi ~ Dirichlet(6 * mood_concentration * p)`` (``p`` = IEMOCAP's 6-way class
  frequencies); at each turn the speaker keeps their own last emotion with probability
  ``persistence``, else adopts the other speaker's last emotion with probability
  ``coupling``, else draws a fresh one from ``pi``. So emotions persist within a speaker,
  spread between speakers, and cluster by dialogue: context and the speaker graph help.
- **Features** of modality m for an utterance of class c by speaker s in dialogue d::

      x = informativeness[m] * A_m @ (code_m(c) + mood_signal * E_pi[code_m]) + offset[d, s, m]
          + bias_m + noise

  ``code_m(c)`` is a class code made of an affect part (valence, arousal) and a
  class-specific part, weighted per modality: audio mostly carries arousal (so it confuses
  hap/ang/exc and sad/neu, as speech does), text mostly valence and class identity, video in
  between. ``A_m`` is a random orthonormal embedding into D_m dimensions, ``offset`` a
  dialogue-level speaker offset (removable only with context), ``noise`` standard normal,
  and the faint mood term makes the whole dialogue's features carry its emotional tone.
  Text is the most informative modality, then video, then audio. With the defaults, on the
  4-way set, per-utterance logistic regression reaches about 48% accuracy on a, 62-65% on
  v, 76-78% on t, 68-70% on a+v and 89% on a+t+v (test split, majority class 35-40%); a
  small BiGRU over the dialogue gains about 8-10 points on a+v and 3-5 on a+t+v, and on a
  alone a smaller, seed-dependent 1-12 points (``mood_signal``, ``persistence`` and
  ``speaker_offset`` are the knobs that make context matter more).
- **Splits** like the real protocol: the last ``n_test_dialogues`` dialogues are test
  (session 5 analogue), the first ``int(dev_fraction * n_train)`` training dialogues are dev.
- **Label sets.** The chain always runs on 6 classes; ``iemocap_4`` then drops exc and fru
  utterances exactly like the real 4-way protocol, so lengths and totals refer to the 6-way
  dialogues. A dialogue that would be left empty is redrawn (from a side stream: all other
  dialogues equal those of the 6-way corpus with the same seed).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bridging.data.records import LABEL_SETS, MODALITY_ORDER, Corpus
from bridging.data.synthetic.common import (
    AFFECT,
    IEMOCAP_6_COUNTS,
    SHAPE_FIELDS,
    IemocapShape,
    emotion_chain,
    iemocap_corpus,
    replace_checked,
    two_speaker_dialogue,
    two_speaker_turns,
)

#: Signal scale per modality (noise is unit variance per dimension).
DEFAULT_INFORMATIVENESS = {"a": 1.3, "t": 2.2, "v": 1.8}
#: Weights of (valence, arousal, class-specific) in each modality's class code.
CODE_WEIGHTS = {"a": (0.3, 1.0, 0.45), "t": (1.0, 0.5, 1.0), "v": (0.7, 0.7, 0.8)}


@dataclass(frozen=True)
class LegacyParams:
    """The knobs of the first generator (module docstring)."""

    #: probability that the next turn is the other speaker's
    switch_prob: float = 0.8
    #: keep one's own last emotion / else take the other speaker's / else a mood draw
    persistence: float = 0.85
    coupling: float = 0.4
    #: the dialogue's mood ~ Dirichlet(6 * mood_concentration * class frequencies)
    mood_concentration: float = 1.0
    #: sd of the per-dialogue speaker offsets (removable only with context)
    speaker_offset: float = 0.7
    #: how much of the mood's expected class code every utterance carries
    mood_signal: float = 0.5
    #: modality -> signal scale; a partial dict updates the defaults
    informativeness: dict = field(default_factory=lambda: dict(DEFAULT_INFORMATIVENESS))
    #: the 6-way class counts the mood's Dirichlet is centred on
    class_counts: tuple = IEMOCAP_6_COUNTS

    def with_overrides(self, **kw) -> LegacyParams:
        return replace_checked(self, kw, ("class_counts",), len(IEMOCAP_6_COUNTS))


def synthesize_legacy(*, params: LegacyParams | None = None, **kw) -> Corpus:
    """Generate a synthetic IEMOCAP-like corpus (see the module docstring).

    ``kw``: the fields of :class:`~bridging.data.synthetic.common.IemocapShape` (how many
    dialogues, their lengths, the feature sizes, label set, seed; IEMOCAP's by default), and
    :class:`LegacyParams` fields that replace those of ``params``.
    """
    shape = IemocapShape(**{k: kw.pop(k) for k in SHAPE_FIELDS if k in kw})
    p = (params or LegacyParams()).with_overrides(**kw)
    n_dialogues, label_set, seed = shape.n_dialogues, shape.label_set, shape.seed
    sizes, info = shape.feature_sizes, p.informativeness
    rng = np.random.default_rng(seed)
    n_classes6 = len(LABEL_SETS["iemocap_6"])
    prior = np.asarray(p.class_counts, dtype=np.float64)
    prior = prior / prior.sum()
    lengths = shape.lengths(rng)
    all_speakers, all_labels, moods = _draw_dialogues(
        rng, lengths, seed, label_set, p.switch_prob, p.persistence, p.coupling,
        p.mood_concentration * n_classes6 * prior,
    )  # fmt: skip
    labels_flat = np.concatenate(all_labels)
    dialogue_of = np.repeat(np.arange(n_dialogues), lengths)
    speaker_flat = np.concatenate(all_speakers)
    features = {}
    for m in MODALITY_ORDER:
        if m in sizes:
            features[m] = _modality_features(
                rng, m, int(sizes[m]), info[m], labels_flat, dialogue_of, speaker_flat,
                np.asarray(moods), n_dialogues, p.speaker_offset, p.mood_signal,
            )  # fmt: skip
    n_train, n_dev = shape.n_train, shape.n_dev
    dialogues = _dialogues(lengths, n_train, speaker_flat, labels_flat, features, shape.sentences)
    splits = {
        "train": dialogues[n_dev:n_train],
        "dev": dialogues[:n_dev],
        "test": dialogues[n_train:],
    }
    extractors = {
        m: {"name": "synthetic", "seed": seed, "informativeness": info[m]} for m in features
    }
    return iemocap_corpus(splits, extractors, label_set)


def _draw_dialogues(rng, lengths, seed, label_set, switch_prob, persistence, coupling, alpha):
    """Speakers, labels and mood of every dialogue (in this order from ``rng``)."""
    keep4 = np.arange(len(alpha)) < len(LABEL_SETS["iemocap_4"])
    all_speakers, all_labels, moods = [], [], []
    for k, n in enumerate(lengths):
        draw, attempt = rng, 0
        while True:
            speakers = two_speaker_turns(draw, int(n), switch_prob)
            mood = draw.dirichlet(alpha)
            labels = emotion_chain(draw, speakers, mood, persistence, coupling)
            # A 4-way corpus must not lose whole dialogues: redraw those without a 4-way
            # label from a side stream, so that every other dialogue is the same as in the
            # 6-way corpus of the same seed (4-way = 6-way minus exc/fru, dialogue for dialogue).
            if label_set == "iemocap_6" or keep4[labels].any():
                break
            attempt += 1
            draw = np.random.default_rng([seed, k, attempt])
        all_speakers.append(speakers)
        all_labels.append(labels)
        moods.append(mood)
    return all_speakers, all_labels, moods


def _modality_features(
    rng, m, dim, scale, labels_flat, dialogue_of, speaker_flat, moods, n_dialogues,
    speaker_offset, mood_signal,
):  # fmt: skip
    """One modality's features [N, dim]: class codes (valence, arousal, one-hot class
    identity, weighted per modality) embedded in ``dim`` dimensions, speaker offsets per
    dialogue, the dialogue's mood faintly, a bias, unit noise."""
    identity = np.eye(len(LABEL_SETS["iemocap_6"]))
    wv, wa, ws = CODE_WEIGHTS[m]
    codes = np.concatenate([AFFECT * [wv, wa], ws * identity], axis=1)  # [6, 8]
    k = codes.shape[1]
    if dim >= k:
        embed, _ = np.linalg.qr(rng.standard_normal((dim, k)))
    else:
        embed = rng.standard_normal((dim, k)) / np.sqrt(k)
    protos = (scale * codes @ embed.T).astype(np.float32)  # [6, D]
    offsets = (speaker_offset * rng.standard_normal((n_dialogues, 2, dim))).astype(np.float32)
    bias = (0.5 * rng.standard_normal(dim)).astype(np.float32)
    x = rng.standard_normal((len(labels_flat), dim), dtype=np.float32)
    x += protos[labels_flat]
    x += offsets[dialogue_of, speaker_flat]
    if mood_signal:
        # the dialogue's mood (expected class code) is faintly present in every utterance
        x += (mood_signal * moods @ protos)[dialogue_of].astype(np.float32)
    x += bias
    return x


def _dialogues(lengths, n_train, speaker_flat, labels_flat, features, sentences):
    """The Dialogue records (sessions 1-4 for training, 5 for test, as IEMOCAP's ids)."""
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    dialogues = []
    for k in range(len(lengths)):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        session = 5 if k >= n_train else 1 + (4 * k) // max(n_train, 1)
        vid = f"Ses0{session}_synth{k:03d}"
        speakers = speaker_flat[lo:hi].astype(np.int64)
        features_k = {m: x[lo:hi] for m, x in features.items()}
        dialogues.append(
            two_speaker_dialogue(vid, speakers, labels_flat[lo:hi], features_k, sentences)
        )
    return dialogues


__all__ = ["synthesize_legacy", "LegacyParams", "DEFAULT_INFORMATIVENESS", "IEMOCAP_6_COUNTS"]
