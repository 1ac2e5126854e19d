"""ModalityMask: scenario and dimension frequencies, the span rule, granularity, padding,
rescaling, reproducibility, and deterministic evaluation masking."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bridging.data.batch import DialogueBatch
from bridging.recipes.masking import SCENARIOS, ModalityMask, keep_only, span_mask

#: A policy with all four scenarios (nothing masked included: our p_none extension), to test
#: the machinery; not the default (the authors' policy has p_none 0, see test_default_policy_*).
PROBS = {"p_none": 0.6, "p_audio_full": 0.1, "p_other_full": 0.1, "p_random": 0.2}
#: The authors' committed policy (p_audio_full, p_other_full, then random = the rest).
AUTHORS = {"p_none": 0.0, "p_audio_full": 0.1, "p_other_full": 0.1, "p_random": 0.8}
SIGMAS = 5.0


def within(observed: float, p: float, n: int, sigmas: float = SIGMAS) -> bool:
    """|observed - p| within `sigmas` binomial standard deviations (n trials)."""
    sd = math.sqrt(max(p * (1 - p), 1e-12) / n)
    return abs(observed - p) <= sigmas * sd + 1e-12


def reference_span_mask(starts: torch.Tensor, span: int) -> torch.Tensor:
    """Slow reference: every start at i masks [i, min(i + span, D))."""
    flat = starts.reshape(-1, starts.shape[-1])
    out = torch.zeros_like(flat)
    d = flat.shape[-1]
    for r in range(flat.shape[0]):
        for i in range(d):
            if flat[r, i]:
                for j in range(i, min(i + span, d)):
                    out[r, j] = True
    return out.reshape(starts.shape)


def padded_features(sizes, lengths, seed=0):
    g = torch.Generator().manual_seed(seed)
    lengths = torch.as_tensor(lengths)
    b, t = len(lengths), int(lengths.max())
    valid = torch.arange(t)[None, :] < lengths[:, None]
    feats = {}
    for m, d in sizes.items():
        x = torch.rand(b, t, d, generator=g) + 0.5  # never zero at real positions
        feats[m] = x * valid[..., None]
    return feats, lengths, valid


# -- configuration ----------------------------------------------------------------------------
def test_probabilities_must_sum_to_one():
    with pytest.raises(ValueError, match=r"sum to 1.*p_none=0\.5.*p_random=0\.2.*sum 0\.9"):
        ModalityMask(p_none=0.5, p_audio_full=0.1, p_other_full=0.1, p_random=0.2)
    with pytest.raises(ValueError, match="p_random=1.5 must lie in"):
        ModalityMask(p_none=0.0, p_audio_full=0.0, p_other_full=0.0, p_random=1.5)
    with pytest.raises(ValueError, match="p_none=auto would be -0.1"):
        ModalityMask(p_none="auto", p_audio_full=0.5, p_other_full=0.4, p_random=0.2)
    auto = ModalityMask(p_none="auto", p_audio_full=0.3, p_other_full=0.3, p_random=0.2)
    assert auto.probs["p_none"] == pytest.approx(0.2)
    with pytest.raises(ValueError, match="granularity"):
        ModalityMask(granularity="frame")
    with pytest.raises(ValueError, match=r"span random\.a\.span=0 must be an integer >= 1"):
        ModalityMask(random={"a": {"p": 0.2, "span": 0}})
    with pytest.raises(ValueError, match=r"span span=1\.5 must be an integer >= 1"):
        ModalityMask(span=1.5)


def test_p_random_auto_is_the_rest():
    """The authors' "otherwise" branch: p_random=auto = 1 - p_none - p_audio_full - p_other_full."""
    mask = ModalityMask(p_none=0, p_audio_full=0.3, p_other_full=0.3, p_random="auto")
    assert mask.probs == pytest.approx(
        {"p_none": 0.0, "p_audio_full": 0.3, "p_other_full": 0.3, "p_random": 0.4}
    )
    mask = ModalityMask(p_none=0.1, p_audio_full=0.1, p_other_full=0.1, p_random=None)
    assert mask.probs["p_random"] == pytest.approx(0.7)
    assert ModalityMask(p_audio_full=0, p_other_full=0, p_random="auto").probs["p_random"] == 1.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (
            {"p_none": "auto", "p_random": "auto"},
            r"^mask probabilities: only one of p_none, p_random may be auto; "
            r"got p_none='auto', p_random='auto'$",
        ),
        (
            {"p_none": 0.5, "p_audio_full": 0.4, "p_other_full": 0.3, "p_random": "auto"},
            r"^mask probabilities: p_random=auto would be -0\.2 < 0 "
            r"\(p_none=0\.5, p_audio_full=0\.4, p_other_full=0\.3\)$",
        ),
        (
            {"p_audio_full": "auto"},
            r"^mask probability p_audio_full='auto' must be a number in \[0, 1\] "
            r"\(only p_none or p_random may be auto\)$",
        ),
        ({"p_other_full": "lots"}, r"^mask probability p_other_full='lots' is not a number$"),
        ({"p_random": -0.1}, r"^mask probability p_random=-0\.1 must lie in \[0, 1\]$"),
    ],
)
def test_bad_probabilities_are_one_line_errors_naming_the_key(kwargs, message):
    with pytest.raises(ValueError, match=message) as err:
        ModalityMask(**kwargs)
    assert "\n" not in str(err.value)


def test_constructor_defaults_are_the_authors_policy():
    mask = ModalityMask(seed=0)
    assert mask.probs == pytest.approx(AUTHORS)
    assert (mask.default_p, mask.default_span, mask.granularity, mask.rescale) == (
        0.2,
        1,
        "batch",
        False,
    )
    for m in ("a", "t", "v"):
        assert mask.random_options(m) == {"p": 0.2, "span": 1}


# -- the span rule ----------------------------------------------------------------------------
@pytest.mark.parametrize("span", [1, 2, 3, 7, 16, 40])
def test_span_rule_matches_slow_reference(span):
    g = torch.Generator().manual_seed(span)
    starts = torch.rand(6, 5, 16, generator=g) < 0.15
    assert torch.equal(span_mask(starts, span), reference_span_mask(starts, span))


def test_drawn_masks_follow_the_span_rule_given_the_starts():
    mask = ModalityMask(
        p_none=0.0,
        p_audio_full=0.0,
        p_other_full=0.0,
        p_random=1.0,
        random={"a": {"p": 0.1, "span": 4}, "v": {"p": 0.3, "span": 2}},
        granularity="utterance",
        seed=3,
    )
    draw = mask.draw({"a": 30, "v": 20}, batch_size=4, max_len=5)
    for m, span in (("a", 4), ("v", 2)):
        assert torch.equal(~draw.keep[m], reference_span_mask(draw.starts[m], span))


# -- empirical frequencies --------------------------------------------------------------------
def test_scenario_frequencies_match_the_probabilities():
    mask = ModalityMask(**PROBS, granularity="utterance", seed=1)
    draw = mask.draw({"a": 2, "v": 2}, batch_size=200, max_len=250)
    n = draw.scenario.numel()
    for i, name in enumerate(SCENARIOS):
        freq = float((draw.scenario == i).float().mean())
        assert within(freq, PROBS[f"p_{name}"], n), (name, freq)


def test_batch_draws_apply_their_scenario():
    """Many batch-level draws: scenario frequencies, and each draw's masks follow its scenario."""
    mask = ModalityMask(**PROBS, random={"a": {"p": 0.3}, "v": {"p": 0.3}}, seed=2)
    n = 2000
    counts = torch.zeros(4)
    for _ in range(n):
        d = mask.draw({"a": 10, "v": 12}, batch_size=3, max_len=4)
        s = int(d.scenario)
        counts[s] += 1
        a, v = d.keep["a"], d.keep["v"]
        if SCENARIOS[s] == "none":
            assert a.all() and v.all()
        elif SCENARIOS[s] == "audio_full":
            assert not a.any() and v.all()
        elif SCENARIOS[s] == "other_full":
            assert a.all() and not v.any()
        else:
            assert torch.equal(~a, d.starts["a"]) and torch.equal(~v, d.starts["v"])
    for i, name in enumerate(SCENARIOS):
        assert within(float(counts[i]) / n, PROBS[f"p_{name}"], n), (name, counts)


@pytest.mark.parametrize("p,span", [(0.2, 1), (0.1, 3), (0.4, 2)])
def test_masked_dimension_frequencies(p, span):
    """P(dim j masked) = 1 - (1 - p)^min(span, j + 1): spans start with prob p, clipped."""
    mask = ModalityMask(
        p_none=0.0,
        p_audio_full=0.0,
        p_other_full=0.0,
        p_random=1.0,
        random={"v": {"p": p, "span": span}},
        granularity="utterance",
        seed=4,
    )
    d = 64
    draw = mask.draw({"v": d}, batch_size=100, max_len=100)
    n = 100 * 100
    starts = draw.starts["v"].float().reshape(n, d)
    assert within(float(starts.mean()), p, n * d)
    per_dim = (~draw.keep["v"]).float().reshape(n, d).mean(0)
    for j in range(d):
        expected = 1 - (1 - p) ** min(span, j + 1)
        assert within(float(per_dim[j]), expected, n, sigmas=5.5), (j, float(per_dim[j]), expected)


# -- granularity ------------------------------------------------------------------------------
def _random_only(granularity, seed=0, rescale=False):
    return ModalityMask(
        p_none=0.0,
        p_audio_full=0.0,
        p_other_full=0.0,
        p_random=1.0,
        p=0.5,
        granularity=granularity,
        rescale=rescale,
        seed=seed,
    )


def test_batch_granularity_zeroes_the_same_dims_everywhere():
    feats, lengths, valid = padded_features({"a": 40, "v": 30}, [5, 3, 7])
    out = _random_only("batch")(feats, lengths)
    for m in feats:
        zero = out[m][valid] == 0  # [N, D], real utterances
        assert zero.any() and not zero.all()
        assert (zero == zero[:1]).all()


def test_dialogue_granularity_shares_within_a_dialogue_only():
    feats, lengths, valid = padded_features({"a": 40}, [5, 4, 6])
    out = _random_only("dialogue")(feats, lengths)["a"]
    pats = []
    for i, n in enumerate(lengths.tolist()):
        zero = out[i, :n] == 0
        assert (zero == zero[:1]).all()
        pats.append(zero[0])
    assert not torch.equal(pats[0], pats[1]) or not torch.equal(pats[1], pats[2])


def test_utterance_granularity_differs_between_utterances():
    feats, lengths, valid = padded_features({"a": 40}, [6, 6])
    out = _random_only("utterance")(feats, lengths)["a"]
    zero = out[valid] == 0
    assert len({tuple(r.tolist()) for r in zero}) > 1


@pytest.mark.parametrize("granularity", ["batch", "dialogue", "utterance"])
@pytest.mark.parametrize("rescale", [False, True])
def test_padding_stays_zero_and_kept_values_are_untouched(granularity, rescale):
    feats, lengths, valid = padded_features({"a": 20, "t": 8, "v": 12}, [3, 8, 1, 5])
    mask = ModalityMask(**PROBS, granularity=granularity, rescale=rescale, seed=5)
    for _ in range(20):
        out = mask(feats, lengths)
        for m, x in feats.items():
            assert (out[m][~valid] == 0).all()
            kept = out[m] != 0
            if not rescale:
                assert torch.equal(out[m][kept], x[kept])


def test_dialogue_batch_in_dialogue_batch_out():
    feats, lengths, _ = padded_features({"a": 6, "v": 4}, [2, 3])
    b, t = feats["a"].shape[:2]
    batch = DialogueBatch(
        features=feats,
        lengths=lengths,
        speakers=torch.zeros(b, t, dtype=torch.long),
        labels=torch.zeros(b, t, dtype=torch.long),
        dialogue_ids=["x", "y"],
        index=torch.arange(2),
    )
    mask = ModalityMask(p_none=0, p_audio_full=0, p_other_full=1, p_random=0)
    out = mask(batch)
    assert isinstance(out, DialogueBatch) and out.dialogue_ids == ["x", "y"]
    assert torch.equal(out.features["a"], feats["a"]) and not out.features["v"].any()
    assert batch.features["v"].any()  # the input batch is not modified


# -- rescaling --------------------------------------------------------------------------------
def test_rescaling_preserves_each_modality_scale():
    mask = ModalityMask(
        p_none=0.5,
        p_audio_full=0.0,
        p_other_full=0.0,
        p_random=0.5,
        p=0.3,
        granularity="utterance",
        rescale=True,
        seed=6,
    )
    d = 25
    x = torch.ones(8, 9, d)
    out = mask({"a": x})["a"]
    kept = (out != 0).sum(-1)
    full = kept == d
    # none: unchanged; partial: kept dims scaled by D / kept, so every row sums to D
    assert torch.equal(out[full], x[full])
    partial = (kept > 0) & ~full
    assert partial.any()
    torch.testing.assert_close(out[partial].sum(-1), torch.full((int(partial.sum()),), float(d)))
    vals = out[partial]
    expected = (d / kept[partial].float())[:, None].expand_as(vals)
    torch.testing.assert_close(vals[vals != 0], expected[vals != 0])
    plain = ModalityMask(**PROBS, seed=6)
    assert set(plain({"a": x})["a"].unique().tolist()) <= {0.0, 1.0}


# -- reproducibility --------------------------------------------------------------------------
def test_reproducible_under_the_seed_and_resumable():
    feats, lengths, _ = padded_features({"a": 20, "v": 16}, [4, 6, 2])

    def run(mask, k=10):
        return [mask(feats, lengths) for _ in range(k)]

    global_state = torch.get_rng_state()
    first = run(ModalityMask(**PROBS, granularity="utterance", seed=24))
    second = run(ModalityMask(**PROBS, granularity="utterance", seed=24))
    other = run(ModalityMask(**PROBS, granularity="utterance", seed=25))
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is not touched
    for x, y in zip(first, second):
        assert all(torch.equal(x[m], y[m]) for m in x)
    assert any(not torch.equal(x["a"], y["a"]) for x, y in zip(first, other))

    mask = ModalityMask(**PROBS, granularity="utterance", seed=24)
    run(mask, 4)
    state = mask.state_dict()
    tail = run(mask, 6)
    resumed = ModalityMask(**PROBS, granularity="utterance", seed=24)
    resumed.load_state_dict(state)
    for x, y in zip(tail, run(resumed, 6)):
        assert all(torch.equal(x[m], y[m]) for m in x)
    for x, y in zip(tail, first[4:]):
        assert all(torch.equal(x[m], y[m]) for m in x)


def test_default_seed_is_the_global_seed():
    torch.manual_seed(123)
    assert ModalityMask().seed == 123


# -- evaluation masking -----------------------------------------------------------------------
def test_evaluation_masking_is_deterministic():
    feats, _, _ = padded_features({"a": 10, "t": 5, "v": 7}, [3, 4])
    state = torch.get_rng_state()
    one = keep_only(feats, ["a"])
    two = keep_only(feats, ["a"])
    assert torch.equal(torch.get_rng_state(), state)
    for m in feats:
        assert torch.equal(one[m], two[m])
    assert torch.equal(one["a"], feats["a"])
    assert not one["t"].any() and not one["v"].any()


def test_nothing_masked_means_no_copy():
    feats, lengths, _ = padded_features({"a": 6, "v": 4}, [2, 3])
    out = ModalityMask(p_none=1, p_audio_full=0, p_other_full=0, p_random=0)(feats, lengths)
    assert all(out[m] is feats[m] for m in feats)
    out = ModalityMask(p_none=0, p_audio_full=1, p_other_full=0, p_random=0)(feats, lengths)
    assert out["v"] is feats["v"] and not out["a"].any()


# -- the authors' policy, re-implemented here -------------------------------------------------
#: COGMEN's IEMOCAP feature sizes (audio 100, video 512): realistic dimension counts.
IEMOCAP_SIZES = {"a": 100, "v": 512}


def _authors_spans(starts, length):
    """Every start at i masks [i, i + length), clipped at the modality's end."""
    masked = np.zeros_like(starts)
    for i in np.flatnonzero(starts):
        masked[i : i + length] = True
    return masked


def authors_batch_mask(rng, d_a, d_v, pmaf, pmvf, pmar, pmvr, aml, vml):
    """One training batch of the authors' masking, written from their description (slow
    reference): one uniform u per batch; u < pmaf: audio fully zeroed (video kept);
    pmaf <= u < pmaf + pmvf: video fully zeroed; otherwise random partial masking of BOTH
    modalities, each dimension starting a span with probability pmar (audio) / pmvr (video),
    spans aml / vml long, clipped. No "nothing masked" branch; one mask for the batch."""
    u = rng.uniform()
    if u < pmaf:
        return "audio_full", np.ones(d_a, bool), np.zeros(d_v, bool)
    if u < pmaf + pmvf:
        return "other_full", np.zeros(d_a, bool), np.ones(d_v, bool)
    audio = _authors_spans(rng.uniform(size=d_a) < pmar, aml)
    video = _authors_spans(rng.uniform(size=d_v) < pmvr, vml)
    return "random", audio, video


def _two_sample_ok(x: np.ndarray, y: np.ndarray, n: int, sigmas: float = SIGMAS) -> np.ndarray:
    """Elementwise: frequencies x, y (each over n Bernoulli trials) agree within `sigmas`
    standard errors of their difference (pooled binomial variance, floored at one event)."""
    pooled = (x + y) / 2
    se = np.sqrt(np.maximum(pooled * (1 - pooled), 1.0 / n) * 2.0 / n)
    return np.abs(x - y) <= sigmas * se


@pytest.mark.parametrize(
    "overrides, authors",
    [
        # the authors' committed setting: (pmaf, pmvf, pmar, pmvr, aml, vml)
        ([], (0.1, 0.1, 0.2, 0.2, 1, 1)),
        # their commented setting, with spans to exercise the clipping at the modality's end
        (
            [
                "recipe.mask.p_audio_full=0.3",
                "recipe.mask.p_other_full=0.3",
                "recipe.mask.random.a.span=3",
                "recipe.mask.random.v.span=7",
            ],
            (0.3, 0.3, 0.2, 0.2, 3, 7),
        ),
    ],
)
def test_default_policy_matches_the_authors_branch_logic(compose_cfg, overrides, authors):
    """ModalityMask built from the composed experiment=masked config (as the masked recipe
    builds it) against the authors' branch logic re-implemented above: the same scenario
    frequencies, the same per-dimension masked frequencies per modality, and never a batch
    with nothing masked."""
    from omegaconf import OmegaConf

    cfg = compose_cfg(["experiment=masked", *overrides])
    options = OmegaConf.to_container(cfg.recipe.mask, resolve=True)
    mask = ModalityMask(**options, seed=int(cfg.seed))
    assert mask.probs["p_none"] == 0.0 and mask.granularity == "batch" and not mask.rescale
    pmaf, pmvf, pmar, pmvr, aml, vml = authors
    d_a, d_v = IEMOCAP_SIZES["a"], IEMOCAP_SIZES["v"]
    n = 8_000
    rng = np.random.default_rng(11)
    ours = {"a": np.zeros((n, d_a), bool), "v": np.zeros((n, d_v), bool)}
    ref = {"a": np.zeros((n, d_a), bool), "v": np.zeros((n, d_v), bool)}
    our_s, ref_s = [], []
    for i in range(n):
        draw = mask.draw(IEMOCAP_SIZES, batch_size=3, max_len=6)
        assert draw.scenario.numel() == 1  # one draw for the whole batch
        our_s.append(SCENARIOS[int(draw.scenario)])
        for m in ours:
            ours[m][i] = draw.masked[m].reshape(-1).numpy()
        s, a, v = authors_batch_mask(rng, d_a, d_v, pmaf, pmvf, pmar, pmvr, aml, vml)
        ref_s.append(s)
        ref["a"][i], ref["v"][i] = a, v
    our_s, ref_s = np.array(our_s), np.array(ref_s)
    # no "nothing masked" batch, in the scenarios and in the masks themselves
    assert not (our_s == "none").any() and not (ref_s == "none").any()
    assert (ours["a"].any(1) | ours["v"].any(1)).all()
    # scenario frequencies
    for name in ("audio_full", "other_full", "random"):
        x, y = np.array([(our_s == name).mean()]), np.array([(ref_s == name).mean()])
        assert _two_sample_ok(x, y, n).all(), (name, x, y)
    # each scenario zeroes what the authors' branch zeroes
    a_full, v_full = our_s == "audio_full", our_s == "other_full"
    assert ours["a"][a_full].all() and not ours["v"][a_full].any()
    assert ours["v"][v_full].all() and not ours["a"][v_full].any()
    # per-dimension masked frequencies, modality by modality
    for m in ("a", "v"):
        f_ours, f_ref = ours[m].mean(0), ref[m].mean(0)
        ok = _two_sample_ok(f_ours, f_ref, n)
        assert ok.all(), (m, np.flatnonzero(~ok)[:10], f_ours[~ok][:10], f_ref[~ok][:10])
        # and the modality's masked fraction (per-draw fractions are correlated within a
        # draw: their standard error comes from the per-draw spread)
        x, y = ours[m].mean(1), ref[m].mean(1)
        se = np.sqrt(x.var() / n + y.var() / n)
        assert abs(x.mean() - y.mean()) <= SIGMAS * se, (m, x.mean(), y.mean())
    if not overrides:  # the committed setting masks about 26% of each modality, not 14%
        for m in ("a", "v"):
            assert ours[m].mean() == pytest.approx(0.1 + 0.8 * 0.2, abs=0.02)
