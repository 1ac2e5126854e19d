r"""The statistics of the report's claims: a hierarchical percentile bootstrap of test
weighted F1 over folds, seeds and test dialogues, and the power of a claim. Pure numpy
functions of per-dialogue confusion counts; :mod:`bridging.report.claims` turns runs into
their inputs and their results into verdicts.

Notation. One arm (an experiment) has, at fold f = 1..F and seed s = 1..S_f, a run whose
test predictions give per-dialogue confusion counts C[f,s,d] (K x K', rows gold, columns
predicted; d = 1..D[f,s]; :meth:`bridging.data.predictions.Predictions.dialogues`). The
paper protocol is F = 1. Everything is in wF1 points (100 x wF1).

Weighted F1 of counts C (:func:`bridging.data.predictions.f1_scores`, torchmetrics'
definitions)::

    TP_k = C[k,k]    n_k = sum_j C[k,j] (gold support)    P_k = sum_(i<K) C[i,k]
    FP_k = P_k - TP_k    FN_k = n_k - TP_k
    F1_k = 2 TP_k / (2 TP_k + FP_k + FN_k)     (0 when the denominator is 0)
    wF1(C) = sum_k (n_k / N) F1_k,   N = sum_k n_k

Point estimates (:func:`hierarchical_arm_interval`, :func:`hierarchical_paired_difference`)::

    w[f,s]  = 100 wF1( sum_d C[f,s,d] )                       one run's test wF1
    mean    = (1/F) sum_f (1/S_f) sum_s w[f,s]                 :func:`fold_mean`
    paired:   delta[f,s] = 100 ( wF1(sum_d A[f,s,d]) - wF1(sum_d B[f,s,d]) ),
              mean as above, arms A and B on the same folds, seeds and dialogues

One bootstrap resample b = 1..B (:func:`hierarchical_draws`; ``rng =
numpy.random.default_rng(seed)``)::

    f*_i    ~ Uniform{1..F}          i = 1..F, with replacement (no draw when F = 1)
    s*_ij   ~ Uniform{1..S_(f*_i)}   j = 1..S_(f*_i), with replacement
    m_ijd   = how often dialogue d is drawn among D[f*_i, s*_ij] draws from
              Uniform{1..D[f*_i, s*_ij]} with replacement
    w*_ij   = 100 wF1( sum_d m_ijd C[f*_i, s*_ij, d] )       :func:`hierarchical_wf1`
    T*_b    = (1/F) sum_i (1/S_(f*_i)) sum_j w*_ij             :func:`replicate_mean`

The paired version draws once and uses the same m for both arms: w*_ij is replaced by
wF1_A* - wF1_B* on the same drawn dialogues.

Interval (:func:`percentile_interval`): the percentile interval of level L (0.95)::

    [ q_((1 - L) / 2)(T*_1..T*_B),  q_((1 + L) / 2)(T*_1..T*_B) ]

with ``numpy.percentile``'s linear interpolation.

Power of a claim (:func:`power`, :func:`replicates_needed`) with interval [lo, hi] from n
replicates (seeds; fold x seed pairs under loso)::

    h        = (hi - lo) / 2                                  CI half-width
    d        = |mean|              for "A beats B" (boundary 0)
             = | m - |mean| |      for "A is comparable to B within m points"
    n_needed = max(1, ceil(n (h / d)^2))   (1 when h = 0; None, no n would, when d = 0 < h)

the n at which an interval shrinking as 1 / sqrt(n) at the spread observed would stop
straddling the boundary.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from bridging.data.predictions import f1_scores

#: defaults of bridging-report's --bootstrap, --bootstrap-seed, and the intervals' level
N_BOOT = 5000
BOOT_SEED = 0
LEVEL = 0.95


@dataclass(frozen=True)
class Draws:
    """The resamples of a hierarchical bootstrap over F folds (:func:`hierarchical_draws`):
    ``fold_idx`` [B, F] the folds drawn; ``seed_idx`` [B, F, S_max] the seeds drawn within
    each drawn fold (the first S_f of the fold's slots are used: ``seed_valid``); ``counts``
    [B, F, S_max, D_max] how often each test dialogue of the drawn (fold, seed) is drawn."""

    fold_idx: np.ndarray
    seed_idx: np.ndarray
    seed_valid: np.ndarray
    counts: np.ndarray
    balanced: bool  # every fold has as many seeds: every seed slot is used


def hierarchical_draws(n_dialogues: Sequence[Sequence[int]], n_boot: int, seed: int) -> Draws:
    """The resamples of the hierarchical bootstrap: ``n_dialogues[f][s]`` is the number of
    test dialogues of fold f's seed s. Each resample draws F folds with replacement, within
    each drawn fold its S_f seeds with replacement, within each drawn (fold, seed) its
    D_fs dialogues with replacement. The draws, in this order, from
    ``numpy.random.default_rng(seed)``:

    - folds: ``integers(0, F, (B, F))``; with one fold no draw at all (every slot is fold 0),
      so that one fold is exactly :func:`bootstrap_draws` (the paper protocol's bootstrap);
    - seeds: ``integers(0, S, (B, F, S))`` when every fold has S seeds, else
      ``integers(0, S[fold_idx][..., None], (B, F, S_max))`` of which the first S_f are used;
    - dialogues: ``integers(0, D[fold_idx, seed_idx][..., None], (B, F, S_max, D_max))`` of
      which the first D_fs are used."""
    sizes = [list(x) for x in n_dialogues]
    if not sizes or any(not x for x in sizes) or min(min(x) for x in sizes) < 1:
        raise ValueError(
            f"n_dialogues: expected per fold one positive count per seed, got {n_dialogues}"
        )
    f = len(sizes)
    n_seeds = np.asarray([len(x) for x in sizes], dtype=np.int64)
    s_max = int(n_seeds.max())
    d = np.ones((f, s_max), dtype=np.int64)  # padding: never used, but a valid bound
    for i, x in enumerate(sizes):
        d[i, : len(x)] = x
    d_max = int(d.max())
    rng = np.random.default_rng(seed)
    if f == 1:
        fold_idx = np.zeros((n_boot, 1), dtype=np.int64)
    else:
        fold_idx = rng.integers(0, f, size=(n_boot, f))
    balanced = bool((n_seeds == s_max).all())
    if balanced:
        seed_idx = rng.integers(0, s_max, size=(n_boot, f, s_max))
    else:
        seed_idx = rng.integers(0, n_seeds[fold_idx][..., None], size=(n_boot, f, s_max))
    seed_valid = np.arange(s_max) < n_seeds[fold_idx][..., None]
    high = d[fold_idx[..., None], seed_idx][..., None]
    dlg = rng.integers(0, high, size=(n_boot, f, s_max, d_max))
    valid = np.arange(d_max) < high
    slot = np.arange(n_boot * f * s_max).reshape(n_boot, f, s_max, 1) * d_max
    counts = np.bincount((slot + dlg)[valid], minlength=n_boot * f * s_max * d_max)
    counts = counts.reshape(n_boot, f, s_max, d_max)
    return Draws(fold_idx, seed_idx, seed_valid, counts, balanced)


def bootstrap_draws(n_dialogues: Sequence[int], n_boot: int, seed: int):
    """The resamples of one data set (the paper protocol: seeds, then test dialogues):
    ``seed_idx`` [B, S] (S = len(n_dialogues) seeds drawn with replacement) and ``counts``
    [B, S, D_max]: how often each dialogue of the drawn seed is drawn (D_s dialogues drawn
    with replacement from seed s's D_s). The draws, in this order, from
    ``numpy.random.default_rng(seed)``: ``integers(0, S, (B, S))`` then
    ``integers(0, D[seed_idx][..., None], (B, S, D_max))`` of which the first D_s are used
    (:func:`hierarchical_draws` with one fold)."""
    d = np.asarray(n_dialogues, dtype=np.int64)
    if d.ndim != 1 or len(d) == 0 or d.min() < 1:
        raise ValueError(f"n_dialogues: expected one positive count per seed, got {n_dialogues}")
    draws = hierarchical_draws([d.tolist()], n_boot, seed)
    return draws.seed_idx[:, 0], draws.counts[:, 0]


def resampled_wf1(confusions: Sequence[np.ndarray], seed_idx, counts) -> np.ndarray:
    """wF1 [B, S] of one arm on every drawn (seed, dialogue multiset): ``confusions[s]`` is
    the arm's per-dialogue confusion counts [D_s, K, K'] at seed s (:func:`hierarchical_wf1`
    with one fold)."""
    b, s = seed_idx.shape
    one = Draws(
        np.zeros((b, 1), dtype=np.int64), seed_idx[:, None], np.ones((b, 1, s), dtype=bool),
        counts[:, None], True,
    )  # fmt: skip
    return hierarchical_wf1([list(confusions)], one)[:, 0]


def hierarchical_wf1(confusions: Sequence[Sequence[np.ndarray]], draws: Draws) -> np.ndarray:
    """wF1 [B, F, S_max] of one arm on every drawn (fold, seed, dialogue multiset):
    ``confusions[f][s]`` is the arm's per-dialogue confusion counts [D_fs, K, K'] at fold f's
    seed s (unused seed slots: 0)."""
    b, f, s_max = draws.seed_idx.shape
    shape = confusions[0][0].shape[1:]
    total = np.zeros((b, f, s_max, int(np.prod(shape))))
    fold = np.broadcast_to(draws.fold_idx[..., None], draws.seed_idx.shape)
    for i, seeds in enumerate(confusions):
        for j, conf in enumerate(seeds):
            sel = (fold == i) & (draws.seed_idx == j) & draws.seed_valid
            flat = np.asarray(conf, dtype=np.float64).reshape(len(conf), -1)
            total[sel] = draws.counts[sel][:, : len(conf)] @ flat
    return f1_scores(total.reshape(b, f, s_max, *shape))["wf1"]


def replicate_mean(values: np.ndarray, draws: Draws) -> np.ndarray:
    """[B]: per resample, the mean over its drawn folds of the mean over each fold's drawn
    seeds of ``values`` [B, F, S_max] (with one fold: the mean over the drawn seeds)."""
    if draws.balanced:
        per_fold = values.mean(-1)
    else:
        per_fold = np.where(draws.seed_valid, values, 0.0).sum(-1) / draws.seed_valid.sum(-1)
    return per_fold.mean(-1)


def percentile_interval(replicates: np.ndarray, level: float) -> tuple[float, float]:
    """The percentile interval of ``level`` of the bootstrap replicates: their
    100 (1 - level) / 2 and 100 (1 + level) / 2 percentiles (linear interpolation)."""
    lo, hi = np.percentile(replicates, [50 * (1 - level), 50 * (1 + level)])
    return float(lo), float(hi)


def wf1_of(conf: np.ndarray) -> float:
    """wF1 (a fraction) of one run from its per-dialogue confusion counts [D, K, K']:
    the counts summed over the dialogues."""
    return float(f1_scores(np.asarray(conf).sum(0))["wf1"])


def fold_mean(per_fold: Sequence[Sequence[float]]) -> float:
    """The mean over folds of the mean over each fold's seeds (one fold: the seeds' mean)."""
    return float(np.mean([np.mean(x) for x in per_fold]))


def _sizes(confusions) -> list[list[int]]:
    return [[len(c) for c in seeds] for seeds in confusions]


def hierarchical_arm_interval(confusions, n_boot=N_BOOT, seed=BOOT_SEED, level=LEVEL) -> dict:
    """One arm over folds and seeds (``confusions[f][s]``: fold f's seed s, per-dialogue
    confusion counts): test wF1 (points) per fold and seed, the mean over folds of the
    per-fold means over seeds, and the hierarchical bootstrap CI of that mean."""
    per_rep = [[100 * wf1_of(c) for c in seeds] for seeds in confusions]
    draws = hierarchical_draws(_sizes(confusions), n_boot, seed)
    reps = 100 * replicate_mean(hierarchical_wf1(confusions, draws), draws)
    ci = percentile_interval(reps, level)
    return {"per_replicate": per_rep, "mean": fold_mean(per_rep), "ci": ci}


def hierarchical_paired_difference(
    conf_a, conf_b, n_boot=N_BOOT, seed=BOOT_SEED, level=LEVEL
) -> dict:
    """Arm A minus arm B in wF1 points over folds and seeds (``conf_a[f][s]``,
    ``conf_b[f][s]``: the two arms' per-dialogue confusions [D, K, K'] at fold f's seed s,
    on the same dialogues): per fold and seed, the mean over folds of the per-fold means,
    and the CI of that mean by the paired hierarchical bootstrap (one draw for both arms)."""
    same = len(conf_a) == len(conf_b) and all(
        len(x) == len(y) and all(np.shape(u) == np.shape(v) for u, v in zip(x, y))
        for x, y in zip(conf_a, conf_b)
    )
    if not same:
        raise ValueError("paired_difference: both arms need the same folds, seeds and dialogues")
    per_rep = [
        [100 * (wf1_of(u) - wf1_of(v)) for u, v in zip(x, y)] for x, y in zip(conf_a, conf_b)
    ]
    draws = hierarchical_draws(_sizes(conf_a), n_boot, seed)
    diff = hierarchical_wf1(conf_a, draws) - hierarchical_wf1(conf_b, draws)
    reps = 100 * replicate_mean(diff, draws)
    ci = percentile_interval(reps, level)
    return {"per_replicate": per_rep, "mean": fold_mean(per_rep), "ci": ci}


def arm_interval(confusions, n_boot=N_BOOT, seed=BOOT_SEED, level=LEVEL) -> dict:
    """One arm: per-seed test wF1 (points), their mean, and the bootstrap CI of the mean
    (:func:`hierarchical_arm_interval` with one fold)."""
    res = hierarchical_arm_interval([list(confusions)], n_boot, seed, level)
    return {"per_seed": res["per_replicate"][0], "mean": res["mean"], "ci": res["ci"]}


def paired_difference(conf_a, conf_b, n_boot=N_BOOT, seed=BOOT_SEED, level=LEVEL) -> dict:
    """Arm A minus arm B in wF1 points: per seed (``conf_a[s]``, ``conf_b[s]``: the two arms'
    per-dialogue confusions [D_s, K, K'] on the same dialogues), the mean over seeds, and the
    CI of the mean by the paired bootstrap (one draw for both arms;
    :func:`hierarchical_paired_difference` with one fold)."""
    if len(conf_a) != len(conf_b) or any(
        np.shape(x) != np.shape(y) for x, y in zip(conf_a, conf_b)
    ):
        raise ValueError("paired_difference: both arms need the same seeds and dialogues")
    res = hierarchical_paired_difference([list(conf_a)], [list(conf_b)], n_boot, seed, level)
    return {"per_seed": res["per_replicate"][0], "mean": res["mean"], "ci": res["ci"]}


def replicates_needed(half_width: float, distance: float, n_now: int) -> int | None:
    """The replicates (seeds; fold x seed pairs under loso) at which the CI would stop
    straddling the decision boundary, if its half-width shrinks as 1/sqrt(n) at the spread
    observed: ``ceil(n_now * (half_width / distance)^2)``, at least 1; None (no number
    would) when ``distance`` is 0 and the CI has a width."""
    if half_width <= 0:
        return 1
    if distance <= 0:
        return None
    return max(1, math.ceil(n_now * (half_width / distance) ** 2))


def power(kind: str, mean: float, lo: float, hi: float, n_now: int, margin: float) -> dict:
    """A claim's power: ``half_width`` (hi - lo) / 2; ``distance`` of the observed mean from
    the decision boundary: |mean| for "beats", | margin - |mean| | for "comparable";
    ``replicates`` (n_now) and ``replicates_needed`` (:func:`replicates_needed`)."""
    half = (hi - lo) / 2
    distance = abs(mean) if kind == "beats" else abs(margin - abs(mean))
    return {
        "half_width": half,
        "distance": distance,
        "replicates": n_now,
        "replicates_needed": replicates_needed(half, distance, n_now),
    }


__all__ = [
    "BOOT_SEED",
    "LEVEL",
    "N_BOOT",
    "Draws",
    "arm_interval",
    "bootstrap_draws",
    "fold_mean",
    "hierarchical_arm_interval",
    "hierarchical_draws",
    "hierarchical_paired_difference",
    "hierarchical_wf1",
    "paired_difference",
    "percentile_interval",
    "power",
    "replicate_mean",
    "replicates_needed",
    "resampled_wf1",
    "wf1_of",
]
