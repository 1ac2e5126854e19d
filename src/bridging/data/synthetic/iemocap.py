"""The calibrated IEMOCAP-shaped generator (presets ``iemocap`` and ``independent`` of
:func:`bridging.data.synthetic.synthesize`).

The generative model of ``iemocap`` (every draw from one ``numpy.random.Generator(seed)``;
the parameters are :class:`CorpusParams`, each fitted to a fact about the real corpus that has
nothing to do with distillation or masking; the table of facts against the values measured on
the generated corpus is docs/synthetic.md, made by ``bridging-data calibrate``):

1. **Turns and latent emotions.** Two speakers alternate irregularly (the next turn is the
   other speaker's with probability ``switch_prob``). Each utterance has a *latent* emotion
   (one of the 6 IEMOCAP classes) from a per-speaker chain: keep one's own last emotion with
   probability ``persistence``, else take the other speaker's with probability ``coupling``,
   else draw from the dialogue's mood ``pi ~ Dirichlet(mood_concentration * 6 * prior)``.
2. **Shared affect.** The utterance expresses a continuous affect ``z = AFFECT[c] + dev``
   (valence, arousal) around its category's point: ``dev ~ spread[c] * N(0, I_2)`` when the
   speaker's latent emotion changes, and within a run of the same emotion an AR(1) process
   (coefficient ``expression_memory``): a speaker who sounds more frustrated than angry
   keeps sounding so, and the annotators hear it.
3. **Annotators.** 3 (or, with probability ``p_four_annotators``, 4) simulated annotators
   each perceive a class ``k`` with probability ``(1 - e[c]) * softmax_k(identity[c] *
   [k = c] - |z - AFFECT[k]|^2 / (2 tau^2)) + e[c] / 6`` (``e = uniform_confusion``): their
   confusions fall mostly on the classes whose affect is close (hap/exc, neu/sad/fru,
   ang/fru). They label a dialogue in order, and while a speaker's latent emotion stays the
   same each repeats their own previous label with probability ``annotator_memory``
   (IEMOCAP's evaluators watched whole dialogues). The stored label is the majority vote
   (a class with at least 2 votes and more than any other); utterances without a majority
   are dropped from the dialogue, as IEMOCAP's feature files do. The latent emotion is kept
   (``Dialogue.latent``, synthetic only) so reports can show the annotation ceiling.
4. **Modalities read the affect.** Modality ``m`` reads the category and an affect
   ``z_m = AFFECT[c] + sqrt(redundancy) * (z - AFFECT[c]) + sqrt(1 - redundancy) * spread[c] *
   N(0, I_2)``: with ``redundancy`` 1 every modality (and the annotators) see the same
   expression, with 0 only the category is shared.

   - text (768-d): valence and category, linear, no speaker effect: the strongest modality;
   - audio (100-d): arousal-dominated, *nonlinear* (a random one-hidden-layer tanh map),
     *speaker-dependent* (each actor has a feature baseline, an arousal gain and a resting
     arousal) and *heteroscedastic* (noise grows with arousal);
   - video (512-d): valence and arousal, linear, with per-actor baselines: the weakest.

   Each has unit-variance noise and a non-zero mean (``feature_mean``), so a zeroed modality
   lies off the data manifold, as in the real files. ``strength[m]`` scales the signal.

Label sets: the chain runs on 6 classes; ``iemocap_4`` drops exc and fru utterances exactly
like the real 4-way protocol, so lengths and totals refer to the 6-way dialogues (a 4-way
dialogue that would be empty is redrawn from a side stream).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from bridging.data.records import LABEL_SETS, MODALITY_ORDER, Corpus
from bridging.data.synthetic.common import (
    AFFECT,
    IEMOCAP_FEATURE_SIZES,
    IEMOCAP_SESSIONS,
    FeatureParams,
    IemocapShape,
    audio_features,
    embedding,
    emotion_chain,
    iemocap_corpus,
    replace_checked,
    two_speaker_dialogue,
    two_speaker_turns,
    video_features,
)

DEFAULT_FEATURE_SIZES = IEMOCAP_FEATURE_SIZES
N_CLASSES = 6
PRESETS = ("iemocap", "iemocap_v1", "independent", "legacy", "meld")
#: the presets of this generator (:func:`preset_params`)
CALIBRATED_PRESETS = ("iemocap", "iemocap_v1", "independent")
#: synthesize()'s defaults for the IEMOCAP-shaped presets (iemocap, independent, legacy):
#: those of :class:`~bridging.data.synthetic.common.IemocapShape`
IEMOCAP_DEFAULTS = {
    k: getattr(IemocapShape, k)
    for k in ("n_dialogues", "min_len", "max_len", "mean_len", "label_set", "dev_fraction")
}


@dataclass(frozen=True)
class CorpusParams(FeatureParams):
    """The knobs of the calibrated generator (see the module docstring and docs/synthetic.md):
    the feature knobs of :class:`~bridging.data.synthetic.common.FeatureParams` (first in
    :meth:`to_dict`), then its own.

    Values are those fitted by ``bridging-data calibrate --fit`` (seed 0) and ``--fit
    --cogmen`` to the facts listed in docs/synthetic.md; ``independent`` differs only in
    ``redundancy``; ``iemocap_v1`` (:data:`IEMOCAP_V1`) is the default until 2026-12-07.
    """

    #: probability that the next turn is the other speaker's
    switch_prob: float = 0.8
    #: context: keep one's own last latent emotion / take the other speaker's / mood draw
    persistence: float = 0.9642
    coupling: float = 0.5
    mood_concentration: float = 5.0
    #: latent class prior (6-way, hap sad neu ang exc fru), fitted so that the stored
    #: (majority-vote) labels have IEMOCAP's class frequencies
    prior: tuple = (0.0776, 0.1077, 0.3015, 0.0994, 0.1317, 0.2822)
    #: per-class spread of the expressed affect around the category's point
    spread: tuple = (0.4, 0.4, 0.4, 0.4, 0.4, 0.4)
    #: how clearly each category (6-way) shows to annotators beyond its affect, and the
    #: annotators' perception width in affect space
    identity: tuple = (1.6253, 1.6253, 1.6253, 1.6253, 1.6253, 1.6253)
    tau: float = 0.5
    #: per class (6-way): share of an annotator's perception spread evenly over the classes
    uniform_confusion: tuple = (0.5257, 0.2764, 0.5353, 0.104, 0.4007, 0.4007)
    p_four_annotators: float = 0.1
    #: within a speaker's run of one latent emotion, how much of the expressed affect carries
    #: over from the speaker's previous utterance (AR(1) coefficient; 0: independent)
    expression_memory: float = 0.9
    #: annotators label a dialogue in order: while a speaker's latent emotion stays the same,
    #: each repeats their own previous label for that speaker with this probability
    annotator_memory: float = 0.7704
    #: how much of the expressed affect every modality shares (1: all, 0: none)
    redundancy: float = 0.8
    #: the feature knobs whose defaults differ from FeatureParams': the audio and video
    #: strengths fitted so that bridging's COGMEN meets COGMEN's a and v figures, text's by
    #: the probe; the per-actor audio and video baselines assumptions bounded by COGMEN's a
    #: and v rows (their spread over seeds) and the actor probe (docs/synthetic.md, "The
    #: actor terms")
    strength: dict = field(default_factory=lambda: {"a": 0.4, "t": 5.5, "v": 1.05})
    audio_speaker_sd: float = 0.15
    audio_hetero: float = 0.6
    video_speaker_sd: float = 0.125

    def to_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **kw) -> CorpusParams:
        per_class = ("prior", "spread", "identity", "uniform_confusion")
        return replace_checked(self, kw, per_class, N_CLASSES)


#: The first calibrated corpus (the default until 2026-12-07), kept to reproduce earlier
#: figures: its audio and video actor terms were unfitted assumptions, and bridging's COGMEN
#: learnt its training actors instead of the emotion (docs/synthetic.md, "The old corpus").
IEMOCAP_V1 = {
    "strength": {"a": 0.92, "t": 5.5, "v": 1.19},
    "audio_speaker_sd": 0.8,
    "audio_gain_sd": 0.3,
    "audio_rest_sd": 0.3,
    "audio_hetero": 0.6,
    "video_speaker_sd": 0.6,
}


def preset_params(preset: str = "iemocap") -> CorpusParams:
    """The parameters of a calibrated preset (``iemocap``, ``iemocap_v1`` or
    ``independent``)."""
    if preset == "iemocap":
        return CorpusParams()
    if preset == "iemocap_v1":
        return CorpusParams().with_overrides(**IEMOCAP_V1)
    if preset == "independent":
        return CorpusParams(redundancy=0.0)
    raise ValueError(f"unknown synthetic preset {preset!r}: expected one of {PRESETS}")


# ---------------------------------------------------------------------------------------------
# labels: turns, latent chain, annotators
# ---------------------------------------------------------------------------------------------


def _expression(rng, speakers, latent, spread, memory) -> np.ndarray:
    """Deviation of the expressed affect from the category's point, ``[n, 2]``: fresh when a
    speaker's latent emotion changes, AR(1) with coefficient ``memory`` within a run."""
    n = len(latent)
    fresh = spread[latent, None] * rng.standard_normal((n, 2))
    if not memory:
        return fresh
    dev = fresh.copy()
    last = [-1, -1]
    keep = np.sqrt(1.0 - memory**2)
    for i in range(n):
        s = speakers[i]
        j = last[s]
        if j >= 0 and latent[j] == latent[i]:
            dev[i] = memory * dev[j] + keep * fresh[i]
        last[s] = i
    return dev


def perception(z: np.ndarray, latent: np.ndarray, params: CorpusParams) -> np.ndarray:
    """Each annotator's class probabilities ``[n, 6]`` for expressed affects ``z [n, 2]``:
    ``(1 - uniform_confusion) * softmax(identity[c] * [k = c] - |z - AFFECT[k]|^2 / (2 tau^2))
    + uniform_confusion[c] / 6``."""
    d2 = ((z[:, None, :] - AFFECT[None, :, :]) ** 2).sum(-1)
    score = -d2 / (2.0 * params.tau**2)
    score[np.arange(len(latent)), latent] += np.asarray(params.identity)[latent]
    score -= score.max(1, keepdims=True)
    p = np.exp(score)
    p /= p.sum(1, keepdims=True)
    eps = np.asarray(params.uniform_confusion, dtype=np.float64)[latent, None]
    return (1.0 - eps) * p + eps / N_CLASSES


def annotate(rng, probs: np.ndarray, p_four: float, speakers=None, latent=None, memory=0.0):
    """Votes of 3 or 4 annotators per utterance -> (stored label or -1, unanimous, n votes).

    Each annotator draws a class from ``probs``; with ``memory`` > 0 (``speakers`` and
    ``latent`` given) annotators label the dialogue in order: while a speaker's latent
    emotion stays the same, an annotator repeats their own previous vote for that speaker
    with probability ``memory``. The stored label is the class with at least 2 votes and
    strictly more than any other."""
    n = probs.shape[0]
    n_ann = np.where(rng.random(n) < p_four, 4, 3)
    cum = np.cumsum(probs, axis=1)
    u = rng.random((n, 4))
    votes = (u[:, :, None] > cum[:, None, :]).sum(-1).clip(max=N_CLASSES - 1)  # [n, 4]
    if memory:
        stick = rng.random((n, 4)) < memory
        last = [-1, -1]
        for i in range(n):
            s = speakers[i]
            j = last[s]
            if j >= 0 and latent[j] == latent[i]:
                votes[i] = np.where(stick[i], votes[j], votes[i])
            last[s] = i
    label, unanimous = majority_vote(votes, n_ann)
    return label, unanimous, n_ann


def majority_vote(votes: np.ndarray, n_ann: np.ndarray):
    """Votes ``[n, 4]`` of which the first ``n_ann[i]`` count -> (label or -1, unanimous).

    The label is the class with at least 2 votes and strictly more than any other class."""
    n = votes.shape[0]
    counts = np.zeros((n, N_CLASSES), dtype=np.int64)
    for j in range(votes.shape[1]):
        active = n_ann > j
        np.add.at(counts, (np.flatnonzero(active), votes[active, j]), 1)
    top = counts.max(1)
    winner = counts.argmax(1)
    unique_top = (counts == top[:, None]).sum(1) == 1
    label = np.where((top >= 2) & unique_top, winner, -1)
    return label, top == n_ann


@dataclass
class DialogueDraw:
    """The annotated utterances of one dialogue (kept ones) and its raw counts."""

    speakers: np.ndarray
    latent: np.ndarray
    deviation: np.ndarray  # [n, 2]: expressed affect minus the category's point
    labels: np.ndarray
    unanimous: np.ndarray
    n_raw: int  # utterances produced, with and without a majority


def _draw_dialogue(rng, n_keep: int, params: CorpusParams, prior: np.ndarray) -> DialogueDraw:
    """Produce raw utterances until ``n_keep`` of them have a majority label."""
    spread = np.asarray(params.spread)
    n_raw = int(np.ceil(n_keep / 0.6)) + 8
    mood = rng.dirichlet(params.mood_concentration * N_CLASSES * prior)
    while True:
        speakers = two_speaker_turns(rng, n_raw, params.switch_prob)
        latent = emotion_chain(rng, speakers, mood, params.persistence, params.coupling)
        dev = _expression(rng, speakers, latent, spread, params.expression_memory)
        probs = perception(AFFECT[latent] + dev, latent, params)
        labels, unanimous, _ = annotate(
            rng, probs, params.p_four_annotators, speakers, latent, params.annotator_memory
        )
        kept = np.flatnonzero(labels >= 0)
        if len(kept) >= n_keep:
            break
        n_raw *= 2
    kept = kept[:n_keep]
    return DialogueDraw(
        speakers=speakers[kept].astype(np.int64),
        latent=latent[kept],
        deviation=dev[kept],
        labels=labels[kept].astype(np.int64),
        unanimous=unanimous[kept],
        n_raw=int(kept[-1]) + 1,
    )


# ---------------------------------------------------------------------------------------------
# features
# ---------------------------------------------------------------------------------------------


def _modality_affect(rng, m, latent, deviation, params) -> np.ndarray:
    """The (valence, arousal) modality ``m`` reads: shared with weight ``redundancy``."""
    rho = float(params.redundancy)
    spread = np.asarray(params.spread)[latent, None]
    own = spread * rng.standard_normal(deviation.shape)
    return AFFECT[latent] + np.sqrt(rho) * deviation + np.sqrt(1.0 - rho) * own


def _text(rng, dim, latent, affect, params) -> np.ndarray:
    onehot = np.eye(N_CLASSES)[latent]
    code = np.concatenate([1.0 * affect[:, :1], 0.4 * affect[:, 1:], 1.0 * onehot], axis=1)
    signal = params.strength["t"] * code @ embedding(rng, dim, code.shape[1]).T
    return signal + rng.standard_normal((len(latent), dim))


def _features(rng, sizes, latent, deviation, actor, n_actors, params) -> dict[str, np.ndarray]:
    out = {}
    onehot = np.eye(N_CLASSES)[latent]
    for m in MODALITY_ORDER:
        if m not in sizes:
            continue
        dim = int(sizes[m])
        affect = _modality_affect(rng, m, latent, deviation, params)
        if m == "t":
            x = _text(rng, dim, latent, affect, params)
        elif m == "a":
            x = audio_features(rng, dim, onehot, affect, actor, n_actors, params)
        else:
            x = video_features(rng, dim, onehot, affect, actor, n_actors, params)
        x += params.feature_mean * rng.standard_normal(dim)  # the modality's non-zero mean
        out[m] = x.astype(np.float32)
    return out


# ---------------------------------------------------------------------------------------------
# the corpus
# ---------------------------------------------------------------------------------------------


def _sessions(n_dialogues: int, n_train: int) -> np.ndarray:
    """Session (1-5) of each dialogue: the test dialogues are session 5, the training ones
    spread evenly over sessions 1-4."""
    k = np.arange(n_dialogues)
    return np.where(k >= n_train, 5, 1 + (4 * k) // max(n_train, 1))


@dataclass
class Annotations:
    """Raw annotation counts of a generated corpus (for calibration): per kept utterance,
    whether its annotators were unanimous; per dialogue, how many utterances were produced."""

    unanimous: dict[str, list[np.ndarray]]
    n_raw: dict[str, list[int]]


def generate(
    *, params: CorpusParams | None = None, preset: str = "iemocap", **shape
) -> tuple[Corpus, Annotations]:
    """The calibrated corpus and its raw annotation counts (see
    :func:`bridging.data.synthetic.synthesize`). ``shape``: the fields of
    :class:`~bridging.data.synthetic.common.IemocapShape` (its defaults are IEMOCAP's)."""
    params = params or preset_params(preset)
    shape = IemocapShape(**shape)
    n_dialogues, label_set, seed = shape.n_dialogues, shape.label_set, shape.seed
    rng = np.random.default_rng(seed)
    prior = np.asarray(params.prior, dtype=np.float64)
    prior = prior / prior.sum()
    lengths = shape.lengths(rng)
    keep4 = np.arange(N_CLASSES) < len(LABEL_SETS["iemocap_4"])
    draws = []
    for k, n in enumerate(lengths):
        draw, attempt = rng, 0
        while True:
            d = _draw_dialogue(draw, int(n), params, prior)
            # a 4-way corpus must not lose whole dialogues: redraw those without a 4-way
            # label from a side stream (every other dialogue equals the 6-way corpus's)
            if label_set == "iemocap_6" or keep4[d.labels].any():
                break
            attempt += 1
            draw = np.random.default_rng([seed, k, attempt])
        draws.append(d)

    n_train = shape.n_train
    session = _sessions(n_dialogues, n_train)
    dialogue_of = np.repeat(np.arange(n_dialogues), lengths)
    speakers = np.concatenate([d.speakers for d in draws])
    actor = 2 * (session[dialogue_of] - 1) + speakers  # 10 actors: (M, F) per session
    latent = np.concatenate([d.latent for d in draws])
    deviation = np.concatenate([d.deviation for d in draws])
    n_actors = 2 * IEMOCAP_SESSIONS
    features = _features(rng, shape.feature_sizes, latent, deviation, actor, n_actors, params)

    n_dev = shape.n_dev
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    dialogues = []
    for k, d in enumerate(draws):
        lo, hi = int(bounds[k]), int(bounds[k + 1])
        vid = f"Ses0{session[k]}_synth{k:03d}"
        features_k = {m: x[lo:hi] for m, x in features.items()}
        dialogues.append(
            two_speaker_dialogue(vid, d.speakers, d.labels, features_k, shape.sentences, d.latent)
        )
    split_of = {
        "train": slice(n_dev, n_train),
        "dev": slice(0, n_dev),
        "test": slice(n_train, None),
    }
    corpus = iemocap_corpus(
        {s: dialogues[sl] for s, sl in split_of.items()},
        {m: {"name": "synthetic", "preset": preset, "seed": seed} for m in features},
        label_set,
    )
    annotations = Annotations(
        unanimous={s: [d.unanimous for d in draws[sl]] for s, sl in split_of.items()},
        n_raw={s: [d.n_raw for d in draws[sl]] for s, sl in split_of.items()},
    )
    if label_set != "iemocap_6":
        keep = {
            s: [np.isin(d.labels, np.flatnonzero(keep4)) for d in draws[sl]]
            for s, sl in split_of.items()
        }
        annotations.unanimous = {
            s: [u[k] for u, k in zip(annotations.unanimous[s], keep[s]) if k.any()]
            for s in split_of
        }
    return corpus, annotations


__all__ = [
    "DEFAULT_FEATURE_SIZES",
    "IEMOCAP_DEFAULTS",
    "CALIBRATED_PRESETS",
    "IEMOCAP_V1",
    "N_CLASSES",
    "PRESETS",
    "Annotations",
    "CorpusParams",
    "annotate",
    "generate",
    "majority_vote",
    "perception",
    "preset_params",
]
