"""A seeded MELD-shaped synthetic corpus: ``synthesize(preset="meld")`` (docs/meld.md).

Shaped after MELD's public statistics (the MELD README's split sizes and class counts; the
dialogue lengths, speakers per dialogue, turn-taking and label repeats measured on MELD's
annotation CSVs ``data/MELD/{train,dev,test}_sent_emo.csv``, declare-lab/MELD):

- **Dialogues**: 1,433 by default, 1,039 train, 114 dev, 280 test (MELD's README), ids
  numbered as in MELD's feature files (train 0.., dev 1039.., test 1153..), so that the MELD
  reader's ``dev_split=official`` recovers the dev split; with MELD's split sizes the
  utterance totals are MELD's: 9,989 / 1,109 / 2,610 (13,708).
- **Lengths and speakers**: each dialogue draws its (length, number of speakers) pair from
  the joint counts of MELD's 1,432 annotated dialogues (:data:`LENGTH_SPEAKERS`: lengths 1 to
  33, mean 9.6; 2 speakers most often, up to 9), then lengths are nudged by one utterance at a
  time to the split totals. Turn-taking: the next utterance is another speaker's with
  probability 0.776 (MELD: 0.776); a dialogue's speakers are numbered by first appearance,
  as MELD's one-hot slots, and speak with skewed weights (``speaker_decay``; MELD's shares of
  utterances by first-appearance rank: 0.44, 0.35, 0.14, 0.05, 0.02, ...). Each slot is
  played by one of the six main characters (probability ``main_cast``) or a one-off minor
  character: the audio's speaker effects follow the person.
- **Labels**: 7 emotions with MELD's frequencies (:data:`EMOTION_COUNTS`, neutral 47%): a
  chain that repeats the previous utterance's emotion with probability ``persistence``
  (0.16: consecutive utterances share their emotion 40% of the time, as in MELD) and
  otherwise draws from the class prior (whose stationary distribution is the prior). The
  sentiment (meld_3) follows the emotion as in MELD's annotations: neutral -> neutral, joy ->
  positive, anger, disgust, fear, sadness -> negative, surprise -> positive with probability
  780 / 1636 (MELD's share), else negative. Both label sets are kept (``Dialogue.other_labels``),
  so the MELD writer can store both and ``label_set`` picks the one trained on.
- **Features** (a 300, t 600 like MELD's feature file; v 342 on request, like MMGCN's): each
  reads the emotion through a (valence, arousal) point per class plus a per-utterance
  deviation. Text: the class and its valence, linear, no speaker effect, the strongest;
  audio: arousal-dominated, nonlinear, speaker-dependent (per-person baseline, gain and
  resting arousal) and weak; video: valence and arousal, linear, weak. Unit-variance noise
  and a non-zero mean per modality. Strengths were set so that a per-utterance logistic
  regression reaches roughly MELD's unimodal figures (docs/meld.md).

Every draw comes from one ``numpy.random.Generator(seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from bridging.data.formats.meld import DEV_IDS, N_SPEAKERS, TRAIN_IDS, speaker_names
from bridging.data.records import LABEL_SETS, MELD_LABEL_SETS, Corpus, Dialogue, check_feature_sizes
from bridging.data.synthetic.common import (
    FeatureParams,
    audio_features,
    embedding,
    replace_checked,
    video_features,
)

#: MELD's splits (README): dialogues and utterances.
SPLIT_DIALOGUES = {"train": 1039, "dev": 114, "test": 280}
SPLIT_UTTERANCES = {"train": 9989, "dev": 1109, "test": 2610}
MELD_DIALOGUES = sum(SPLIT_DIALOGUES.values())  # 1433
#: MELD's 7-way utterance counts over all splits (README), in meld_7 order.
EMOTION_COUNTS = {
    "neutral": 6436,
    "surprise": 1636,
    "fear": 358,
    "sadness": 1002,
    "joy": 2308,
    "disgust": 361,
    "anger": 1607,
}
#: MELD's annotation CSVs: (dialogue length, distinct speakers) -> number of dialogues.
LENGTH_SPEAKERS = {
    (1, 1): 88, (2, 1): 7, (2, 2): 74, (3, 1): 2, (3, 2): 61, (3, 3): 15, (4, 2): 38,
    (4, 3): 25, (4, 4): 6, (5, 1): 6, (5, 2): 63, (5, 3): 21, (5, 4): 10, (5, 5): 1,
    (6, 1): 3, (6, 2): 49, (6, 3): 27, (6, 4): 10, (6, 5): 1, (7, 1): 5, (7, 2): 41,
    (7, 3): 24, (7, 4): 17, (7, 5): 2, (8, 1): 5, (8, 2): 48, (8, 3): 20, (8, 4): 14,
    (8, 5): 2, (8, 6): 1, (9, 1): 3, (9, 2): 28, (9, 3): 29, (9, 4): 8, (9, 5): 9,
    (10, 1): 3, (10, 2): 30, (10, 3): 27, (10, 4): 9, (10, 5): 11, (10, 6): 1, (10, 7): 1,
    (11, 2): 29, (11, 3): 29, (11, 4): 6, (11, 5): 8, (11, 6): 5, (11, 7): 1, (11, 8): 1,
    (12, 2): 35, (12, 3): 19, (12, 4): 13, (12, 5): 8, (12, 6): 4, (13, 2): 23, (13, 3): 17,
    (13, 4): 6, (13, 5): 3, (13, 6): 4, (13, 7): 1, (14, 2): 23, (14, 3): 18, (14, 4): 10,
    (14, 5): 4, (14, 6): 1, (14, 8): 1, (15, 2): 18, (15, 3): 22, (15, 4): 7, (15, 5): 4,
    (15, 6): 2, (15, 7): 2, (16, 2): 25, (16, 3): 13, (16, 4): 12, (16, 5): 7, (16, 6): 2,
    (16, 7): 1, (17, 2): 15, (17, 3): 15, (17, 4): 9, (17, 5): 4, (17, 6): 2, (17, 7): 1,
    (17, 9): 1, (18, 2): 12, (18, 3): 10, (18, 4): 1, (18, 5): 5, (18, 6): 3, (18, 8): 1,
    (19, 2): 8, (19, 3): 12, (19, 4): 12, (19, 5): 5, (19, 7): 1, (20, 1): 1, (20, 2): 7,
    (20, 3): 10, (20, 4): 5, (20, 5): 1, (20, 6): 1, (20, 7): 2, (21, 2): 7, (21, 3): 3,
    (21, 4): 8, (21, 5): 1, (21, 6): 4, (22, 2): 4, (22, 3): 6, (22, 4): 5, (22, 5): 1,
    (22, 6): 2, (23, 2): 3, (23, 3): 5, (23, 4): 1, (23, 5): 2, (23, 7): 1, (24, 2): 2,
    (24, 4): 2, (24, 6): 1, (33, 7): 1,
}  # fmt: skip
#: MELD: surprise utterances with a positive sentiment (780 of 1,636 in the CSVs).
P_SURPRISE_POSITIVE = 780 / 1636
#: (valence, arousal) of each meld_7 class (circumplex placement; our choice).
AFFECT = np.array(
    [
        [0.0, 0.0],  # neutral
        [0.2, 0.9],  # surprise
        [-0.6, 0.6],  # fear
        [-0.7, -0.5],  # sadness
        [0.8, 0.5],  # joy
        [-0.7, 0.2],  # disgust
        [-0.8, 0.8],  # anger
    ]
)
DEFAULT_FEATURE_SIZES = {"a": 300, "t": 600}
VISUAL_SIZE = 342
N_CLASSES = len(LABEL_SETS["meld_7"])
#: main characters (Friends' six); one-off minor characters get ids after them
MAIN_CAST = 6


def person_name(person: int) -> str:
    """A synthetic MELD person's name (``Dialogue.persons``): main0..main5, minor<k>."""
    return f"main{person}" if person < MAIN_CAST else f"minor{person - MAIN_CAST}"


@dataclass(frozen=True)
class MeldParams(FeatureParams):
    """The knobs of the MELD-shaped generator (module docstring): the feature knobs of
    :class:`~bridging.data.synthetic.common.FeatureParams` (``audio_hetero`` 0: audio noise
    that does not grow with arousal), then its own."""

    switch_prob: float = 0.776
    #: the k-th speaker (first-appearance order) is picked with weight speaker_decay ** k
    speaker_decay: float = 0.9
    #: probability that the emotion repeats the previous utterance's
    persistence: float = 0.16
    #: class prior (meld_7 order); default MELD's frequencies
    prior: tuple = tuple(EMOTION_COUNTS.values())
    #: per-utterance spread of the expressed (valence, arousal) around the class point
    spread: float = 0.35
    #: probability that a dialogue's speaker slot is one of the six main characters
    main_cast: float = 0.9
    #: the feature knobs whose defaults differ from FeatureParams'
    strength: dict = field(default_factory=lambda: {"a": 0.35, "t": 1.2, "v": 0.4})

    def with_overrides(self, **kw) -> MeldParams:
        return replace_checked(self, kw, ("prior",), N_CLASSES)


# -- dialogue shapes -------------------------------------------------------------------------


def split_sizes(n_dialogues: int, n_test: int | None, dev_fraction: float | None) -> dict:
    """Dialogues per split: test 280/1433 of them and dev 114/1153 of the rest by default
    (MELD's proportions), at least one each."""
    if n_dialogues < 3:
        raise ValueError(
            f"preset meld needs n_dialogues >= 3 (train, dev, test), got {n_dialogues}"
        )
    if n_test is None:
        n_test = max(1, round(n_dialogues * SPLIT_DIALOGUES["test"] / MELD_DIALOGUES))
    if not (1 <= n_test <= n_dialogues - 2):
        raise ValueError(f"need 1 <= n_test_dialogues ({n_test}) <= n_dialogues - 2")
    n_trainvid = n_dialogues - n_test
    frac = SPLIT_DIALOGUES["dev"] / (SPLIT_DIALOGUES["train"] + SPLIT_DIALOGUES["dev"])
    frac = frac if dev_fraction is None else float(dev_fraction)
    n_dev = min(max(1, round(frac * n_trainvid)), n_trainvid - 1)
    return {"train": n_trainvid - n_dev, "dev": n_dev, "test": n_test}


def _shapes(rng, n: int, min_len: int, max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """(lengths, speaker counts) of ``n`` dialogues from MELD's joint table, restricted to
    lengths in [min_len, max_len]."""
    pairs = [(k, v) for k, v in LENGTH_SPEAKERS.items() if min_len <= k[0] <= max_len]
    if not pairs:
        raise ValueError(f"no MELD dialogue length lies in [{min_len}, {max_len}]")
    keys = np.array([k for k, _ in pairs], dtype=np.int64)
    p = np.array([v for _, v in pairs], dtype=np.float64)
    pick = rng.choice(len(keys), size=n, p=p / p.sum())
    return keys[pick, 0].copy(), keys[pick, 1].copy()


def _to_total(rng, lengths, low, high: int, total: int) -> np.ndarray:
    """Nudge ``lengths`` one utterance at a time (random dialogues within [low, high]) until
    they sum to ``total``."""
    if not (int(low.sum()) <= total <= high * len(lengths)):
        raise ValueError(
            f"{total} utterances impossible for {len(lengths)} dialogues of at most {high}"
        )
    diff = int(total - lengths.sum())
    while diff:
        step = 1 if diff > 0 else -1
        room = np.flatnonzero(lengths < high if step > 0 else lengths > low)
        idx = rng.permutation(room)[: abs(diff)]
        lengths[idx] += step
        diff -= step * len(idx)
    return lengths


def _turns(rng, n: int, k: int, params: MeldParams) -> np.ndarray:
    """Speaker slot of each of ``n`` utterances with exactly ``k`` speakers, numbered by first
    appearance: the next utterance switches speaker with probability ``switch_prob``, to a
    speaker picked with weight ``speaker_decay ** slot`` (the next unseen slot included);
    unseen slots are forced in when only as many utterances as unseen speakers remain."""
    out = np.zeros(n, dtype=np.int64)
    w = params.speaker_decay ** np.arange(k, dtype=np.float64)
    seen = 1
    u = rng.random((n, 2))
    for i in range(1, n):
        unseen = k - seen
        cur = out[i - 1]
        if unseen and n - i <= unseen:
            out[i] = seen
        elif k > 1 and u[i, 0] < params.switch_prob:
            cand = np.arange(min(seen + 1, k))
            cand = cand[cand != cur]
            cw = np.cumsum(w[cand])
            out[i] = cand[
                np.searchsorted(cw, u[i, 1] * cw[-1], side="right").clip(max=len(cand) - 1)
            ]
        else:
            out[i] = cur
        seen = max(seen, int(out[i]) + 1)
    return out


def _emotions(rng, n: int, prior: np.ndarray, persistence: float) -> np.ndarray:
    fresh = rng.choice(N_CLASSES, size=n, p=prior)
    keep = rng.random(n) < persistence
    out = fresh.copy()
    for i in range(1, n):
        if keep[i]:
            out[i] = out[i - 1]
    return out


def sentiment_of(rng, emotions: np.ndarray) -> np.ndarray:
    """meld_3 labels from meld_7 ones, as in MELD's annotations (module docstring)."""
    names = LABEL_SETS["meld_7"]
    sent = LABEL_SETS["meld_3"]
    out = np.full(len(emotions), sent.index("negative"), dtype=np.int64)
    out[emotions == names.index("neutral")] = sent.index("neutral")
    out[emotions == names.index("joy")] = sent.index("positive")
    surprise = emotions == names.index("surprise")
    positive = rng.random(len(emotions)) < P_SURPRISE_POSITIVE
    out[surprise & positive] = sent.index("positive")
    return out


def _cast(rng, n_slots: np.ndarray, main_cast: float) -> list[np.ndarray]:
    """Per dialogue, the person playing each speaker slot: a main character (distinct within
    the dialogue) or a new minor one."""
    next_minor = MAIN_CAST
    out = []
    for k in n_slots:
        mains = rng.permutation(MAIN_CAST)
        people = np.empty(k, dtype=np.int64)
        for j in range(k):
            if j < MAIN_CAST and rng.random() < main_cast:
                people[j] = mains[j]
            else:
                people[j] = next_minor
                next_minor += 1
        out.append(people)
    return out


# -- features --------------------------------------------------------------------------------


def _features(rng, sizes, labels, person, n_people, params: MeldParams) -> dict[str, np.ndarray]:
    n = len(labels)
    onehot = np.eye(N_CLASSES)[labels]
    affect = AFFECT[labels] + params.spread * rng.standard_normal((n, 2))
    out = {}
    for m in ("a", "t", "v"):
        if m not in sizes:
            continue
        dim = int(sizes[m])
        if m == "t":
            code = np.concatenate([onehot, 0.8 * affect[:, :1]], axis=1)
            x = params.strength["t"] * code @ embedding(rng, dim, code.shape[1]).T
            x += rng.standard_normal((n, dim))
        elif m == "a":
            x = audio_features(rng, dim, onehot, affect, person, n_people, params, 0.4)
        else:
            x = video_features(rng, dim, onehot, affect, person, n_people, params)
        x += params.feature_mean * rng.standard_normal(dim)
        out[m] = x.astype(np.float32)
    return out


# -- the corpus ------------------------------------------------------------------------------


def _id_offsets(sizes: dict) -> dict:
    """First dialogue id of each split: MELD's (train 0, dev 1039, test 1153) when the
    splits fit in MELD's ranges, else consecutive after them."""
    dev0 = max(DEV_IDS.start, sizes["train"])
    test0 = max(DEV_IDS.stop, dev0 + sizes["dev"])
    return {"train": TRAIN_IDS.start, "dev": dev0, "test": test0}


def meld_corpus(
    *,
    n_dialogues,
    min_len,
    max_len,
    mean_len,
    feature_sizes,
    label_set,
    seed,
    n_test_dialogues,
    dev_fraction,
    total_utterances,
    sentences,
    **overrides,
) -> Corpus:
    """:func:`bridging.data.synthetic.synthesize_meld` with every argument given (None:
    MELD's default)."""
    if mean_len is not None:
        raise ValueError(
            "preset meld draws dialogue lengths from MELD's length table: mean_len does not "
            "apply (give min_len, max_len or total_utterances)"
        )
    label_set = label_set or "meld_7"
    if label_set not in MELD_LABEL_SETS:
        raise ValueError(
            f"preset meld makes MELD labels: label_set must be one of {list(MELD_LABEL_SETS)}, "
            f"got {label_set!r}"
        )
    params = MeldParams().with_overrides(**overrides)
    sizes = dict(DEFAULT_FEATURE_SIZES if feature_sizes is None else feature_sizes)
    check_feature_sizes(sizes)
    n_dialogues = MELD_DIALOGUES if n_dialogues is None else int(n_dialogues)
    lo, hi = int(min_len or 1), int(max_len or max(k[0] for k in LENGTH_SPEAKERS))
    if not (1 <= lo <= hi):
        raise ValueError(f"need 1 <= min_len ({lo}) <= max_len ({hi})")
    per_split = split_sizes(n_dialogues, n_test_dialogues, dev_fraction)
    rng = np.random.default_rng(seed)
    prior = np.asarray(params.prior, dtype=np.float64)
    prior = prior / prior.sum()

    lengths, n_spk = _shapes(rng, n_dialogues, lo, hi)
    low = np.maximum(n_spk, lo)
    lengths = np.maximum(lengths, low)
    bounds = np.cumsum([0, *per_split.values()])
    if total_utterances is not None:
        shares = np.array(list(per_split.values()), dtype=np.float64) / n_dialogues
        totals = np.floor(shares * int(total_utterances)).astype(np.int64)
        totals[0] += int(total_utterances) - int(totals.sum())
    elif per_split == SPLIT_DIALOGUES and min_len is None and max_len is None:
        totals = np.array([SPLIT_UTTERANCES[s] for s in per_split], dtype=np.int64)
    else:
        totals = None
    if totals is not None:
        for j in range(3):
            sl = slice(bounds[j], bounds[j + 1])
            lengths[sl] = _to_total(rng, lengths[sl], low[sl], hi, int(totals[j]))

    people = _cast(rng, n_spk, params.main_cast)
    n_people = int(max((p.max() for p in people), default=0)) + 1
    speakers = [_turns(rng, int(n), int(k), params) for n, k in zip(lengths, n_spk)]
    emotions = _emotions(rng, int(lengths.sum()), prior, params.persistence)
    sentiment = sentiment_of(rng, emotions)
    person = np.concatenate([p[s] for p, s in zip(people, speakers)])
    feats = _features(rng, sizes, emotions, person, n_people, params)

    offsets = _id_offsets(per_split)
    starts = np.concatenate([[0], np.cumsum(lengths)])
    names = speaker_names(N_SPEAKERS)
    splits: dict[str, list[Dialogue]] = {}
    k = 0
    for split, count in per_split.items():
        splits[split] = []
        for j in range(count):
            a, b = int(starts[k]), int(starts[k + 1])
            vid = str(offsets[split] + j)
            emo, sen = emotions[a:b], sentiment[a:b]
            main, other = (emo, sen) if label_set == "meld_7" else (sen, emo)
            splits[split].append(
                Dialogue(
                    id=vid,
                    speakers=speakers[k],
                    labels=main.copy(),
                    features={m: x[a:b] for m, x in feats.items()},
                    sentences=(
                        [f"dia{vid} utt{i} ({names[s]})" for i, s in enumerate(speakers[k])]
                        if sentences
                        else None
                    ),
                    other_labels={"meld_3" if label_set == "meld_7" else "meld_7": other.copy()},
                    persons=[person_name(p) for p in people[k][speakers[k]]],
                )
            )
            k += 1
    return Corpus(
        splits=splits,
        label_names=LABEL_SETS[label_set],
        label_set=label_set,
        source_format="synthetic",
        path=None,
        n_speakers=N_SPEAKERS,
        speaker_names=names,
        extractors={m: {"name": "synthetic", "preset": "meld", "seed": seed} for m in feats},
        split_rule=None,
    )


__all__ = [
    "MeldParams",
    "sentiment_of",
    "split_sizes",
    "EMOTION_COUNTS",
    "LENGTH_SPEAKERS",
    "SPLIT_DIALOGUES",
    "SPLIT_UTTERANCES",
    "DEFAULT_FEATURE_SIZES",
    "VISUAL_SIZE",
]
