"""The distillation losses (bridging.losses.kd) against plain torch and slow references."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from bridging.losses.kd import (
    EmbeddingProjection,
    draw_negatives,
    embedding_kd_loss,
    kd_kl,
    logit_kd_loss,
)


def _logits(n=40, c=4, seed=0, scale=3.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * scale


def _labels(n=40, c=4, seed=1, ignore=(3, 17)):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    y[list(ignore)] = -100
    return y


def test_alpha_zero_is_plain_cross_entropy():
    s, t, y = _logits(seed=0), _logits(seed=1), _labels()
    got = logit_kd_loss(s, t, y, T=4.0, alpha=0.0)
    torch.testing.assert_close(got, F.cross_entropy(s, y, ignore_index=-100))
    torch.testing.assert_close(got, F.nll_loss(F.log_softmax(s, -1), y))
    w = torch.tensor([1.0, 2.0, 0.5, 3.0])
    got_w = logit_kd_loss(s, t, y, T=4.0, alpha=0.0, class_weights=w)
    torch.testing.assert_close(got_w, F.cross_entropy(s, y, weight=w, ignore_index=-100))


def test_alpha_one_is_the_scaled_kl_and_matches_torch():
    s, t, y = _logits(seed=0), _logits(seed=1), _labels()
    T = 3.0
    expected = (
        T * T * F.kl_div(F.log_softmax(s / T, -1), F.softmax(t / T, -1), reduction="batchmean")
    )
    torch.testing.assert_close(logit_kd_loss(s, t, y, T=T, alpha=1.0), expected)
    mixed = logit_kd_loss(s, t, y, T=T, alpha=0.3)
    torch.testing.assert_close(mixed, 0.3 * expected + 0.7 * F.cross_entropy(s, y))


def test_kl_is_zero_when_student_equals_teacher():
    z = _logits()
    for T in (1.0, 2.0, 8.0):
        assert float(kd_kl(z, z.clone(), T)) == pytest.approx(0.0, abs=1e-6)
    assert float(kd_kl(_logits(seed=0), _logits(seed=5), 2.0)) > 0.01


def test_kl_treats_the_teacher_as_constant():
    s = _logits(seed=0).requires_grad_(True)
    t = _logits(seed=1).requires_grad_(True)
    kd_kl(s, t, 2.0).backward()
    assert s.grad is not None and t.grad is None


def _grad_norm(T, scaled=True):
    s = _logits(seed=0).requires_grad_(True)
    t = _logits(seed=1)
    loss = kd_kl(s, t, T)
    if not scaled:
        loss = loss / (T * T)
    loss.backward()
    return float(s.grad.norm())


def test_gradient_scale_stays_comparable_across_temperatures():
    g1, g8 = _grad_norm(1.0), _grad_norm(8.0)
    assert 1 / 4 < g8 / g1 < 4  # with the T^2 factor: the same order of magnitude
    u1, u8 = _grad_norm(1.0, scaled=False), _grad_norm(8.0, scaled=False)
    assert u8 / u1 < 1 / 16  # without it the gradient shrinks ~T^2 (64x here)
    torch.testing.assert_close(torch.tensor(g8 / u8), torch.tensor(64.0))


def _slow_triplet(s, t, y, negatives, margin=1.0):
    """The authors' n-way triplet, one utterance at a time."""
    total = torch.zeros(())
    for i in range(len(y)):
        if int(y[i]) == -100:
            continue
        negs = [int(j) for j in negatives[i] if int(j) >= 0]
        if not negs:
            continue
        d_pos = math.dist(s[i].tolist(), t[i].tolist())
        d_neg = sum(math.dist(s[i].tolist(), t[j].tolist()) for j in negs)
        total = total + max(0.0, len(negs) * d_pos - d_neg + margin)
    return total


def test_negatives_are_one_random_teacher_utterance_of_each_other_class():
    y = _labels(n=60)
    y[y == 2] = 1  # class 2 absent from the batch
    neg = draw_negatives(y, torch.Generator().manual_seed(0))
    assert neg.shape == (60, 4)
    for i in range(60):
        for c in range(4):
            j = int(neg[i, c])
            if int(y[i]) == -100 or c == int(y[i]) or c == 2:
                assert j == -1
            else:
                assert int(y[j]) == c
    again = draw_negatives(y, torch.Generator().manual_seed(0))
    assert torch.equal(neg, again)
    other = draw_negatives(y, torch.Generator().manual_seed(1))
    assert not torch.equal(neg, other)  # drawn at random, per utterance


@pytest.mark.parametrize("margin", [1.0, 5.0])
def test_triplet_equals_the_slow_reference(margin):
    g = torch.Generator().manual_seed(3)
    s, t = torch.randn(50, 16, generator=g), torch.randn(50, 16, generator=g)
    t[:10] = s[:10] + 0.01  # some utterances close to their positive
    y = _labels(n=50)
    neg = draw_negatives(y, torch.Generator().manual_seed(7))
    expected = _slow_triplet(s, t, y, neg, margin)
    got = embedding_kd_loss(s, t, y, kind="triplet", margin=margin, negatives=neg)
    torch.testing.assert_close(got, expected.to(got.dtype), rtol=1e-5, atol=1e-4)
    # the same generator state gives the same negatives, hence the same loss
    via_gen = embedding_kd_loss(s, t, y, margin=margin, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(via_gen, got)
    n_triplets = int((y != -100).sum())
    mean = embedding_kd_loss(s, t, y, margin=margin, negatives=neg, reduction="mean")
    torch.testing.assert_close(mean, got / n_triplets)


def test_triplet_gradient_flows_to_the_student_only():
    g = torch.Generator().manual_seed(0)
    s = torch.randn(30, 8, generator=g).requires_grad_(True)
    t = torch.randn(30, 8, generator=g).requires_grad_(True)
    embedding_kd_loss(s, t, _labels(n=30, ignore=()), generator=g).backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and t.grad is None


def test_triplet_single_class_batch_has_no_triplets():
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    y = torch.zeros(5, dtype=torch.long)
    assert float(embedding_kd_loss(s, t, y)) == 0.0


def test_mse_and_cosine_values():
    s = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 4.0]])
    mse = embedding_kd_loss(s, t, kind="mse")
    assert float(mse) == pytest.approx((1 + 1 + 0 + 4) / 4)
    cos = embedding_kd_loss(s, t, kind="cosine")
    assert float(cos) == pytest.approx(((1 - 0) + (1 - 1)) / 2)
    assert float(embedding_kd_loss(t, t, kind="mse")) == 0.0
    assert float(embedding_kd_loss(3 * t, t, kind="cosine")) == pytest.approx(0.0, abs=1e-6)


def test_size_mismatch_error_names_both_sizes_and_the_option():
    s, t, y = torch.randn(6, 700), torch.randn(6, 100), torch.zeros(6, dtype=torch.long)
    for kind in ("triplet", "mse", "cosine"):
        with pytest.raises(ValueError, match=r"700 features, the teacher's 100.*kd\.projection"):
            embedding_kd_loss(s, t, y, kind=kind)
    proj = EmbeddingProjection(700, 100)
    assert embedding_kd_loss(proj(s), t, kind="mse").requires_grad


def test_bad_arguments():
    s, t, y = _logits(), _logits(seed=1), _labels()
    with pytest.raises(ValueError, match="alpha"):
        logit_kd_loss(s, t, y, T=1.0, alpha=1.5)
    with pytest.raises(ValueError, match="temperature"):
        logit_kd_loss(s, t, y, T=0.0, alpha=0.5)
    with pytest.raises(ValueError, match="unknown embedding distillation"):
        embedding_kd_loss(s, t, y, kind="l1")
    with pytest.raises(ValueError, match="same dialogues"):
        kd_kl(s, t[:5], 1.0)
