"""Cheap dropout masks (bridging.models.dropout) and their use in the packed encoder."""

from __future__ import annotations

import math
import struct

import pytest
import torch

import bridging.models.seqcontext as seqcontext
from bridging.models.dropout import dropout, lane_keep_mask
from bridging.models.seqcontext import AttentionPlan, SeqContext


def _slow_lane_mask(n: int, p: float, seed: int) -> tuple[list[bool], float]:
    """The rule written out word by word: 64-bit words from torch's generator, each split
    into four little-endian signed 16-bit lanes; keep when lane + 32768 < round(keep*65536)."""
    torch.manual_seed(seed)
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), None).tolist()
    k = round((1 - p) * 65536)
    lanes = []
    for w in words:
        lanes.extend(struct.unpack("<4h", struct.pack("<q", w)))
    return [lane + 32768 < k for lane in lanes[:n]], 65536 / k


@pytest.mark.parametrize("n", [1, 7, 64, 1001])
@pytest.mark.parametrize("p", [0.1, 0.5])
def test_lane_mask_equals_the_rule_written_out(n, p):
    want, want_scale = _slow_lane_mask(n, p, seed=n)
    torch.manual_seed(n)
    got, scale = lane_keep_mask((n,), p)
    assert got.dtype == torch.bool and got.shape == (n,)
    assert got.tolist() == want
    assert scale == want_scale


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5, 0.9])
def test_keep_rate_and_unbiased_scale(p):
    torch.manual_seed(0)
    shape = (300, 1000)
    keep, scale = lane_keep_mask(shape, p)
    k = round((1 - p) * 65536)
    q = k / 65536  # the quantised keep probability
    assert abs(q - (1 - p)) <= 0.5 / 65536
    n = math.prod(shape)
    se = math.sqrt(q * (1 - q) / n)
    assert abs(float(keep.float().mean()) - q) < 5 * se
    assert abs(scale * q - 1.0) < 1e-12  # E[mask * scale] = 1 exactly
    # every 16-bit lane is uniform: the four lanes of a word keep at the same rate
    per_lane = keep.reshape(-1)[: n - n % 4].view(-1, 4).float().mean(0)
    assert float((per_lane - q).abs().max()) < 5 * math.sqrt(q * (1 - q) / (n / 4))


def test_dropout_values_gradients_and_seeding():
    x = torch.randn(50, 40, requires_grad=True)
    torch.manual_seed(3)
    y = dropout(x, 0.25)
    torch.manual_seed(3)
    keep, scale = lane_keep_mask((50, 40), 0.25)
    torch.testing.assert_close(y, torch.where(keep, x * scale, torch.zeros(())))
    g = torch.randn(50, 40)
    y.backward(g)
    torch.testing.assert_close(x.grad, torch.where(keep, g * scale, torch.zeros(())))
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.25), y)  # same seed, same masks
    torch.manual_seed(4)
    assert not torch.equal(dropout(x, 0.25), y)
    assert dropout(x, 0.25, training=False) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    torch.manual_seed(3)
    want = torch.nn.functional.dropout(x, 0.25, True)
    torch.manual_seed(3)
    assert torch.equal(dropout(x, 0.25, masks="torch"), want)
    with pytest.raises(ValueError, match="unknown dropout masks"):
        dropout(x, 0.25, masks="bits")


def _batch(lengths, d, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.as_tensor(lengths)
    mask = torch.arange(int(lengths.max()))[None, :] < lengths[:, None]
    return torch.randn(len(lengths), mask.shape[1], d, generator=gen) * mask[..., None], lengths


def test_lanes_encoder_with_all_kept_masks_is_the_dropout_free_encoder(monkeypatch):
    """The lanes path in train mode (explicit softmax, one mask per length group) with masks
    that keep everything at scale 1 equals the encoder without dropout."""
    monkeypatch.setattr(seqcontext, "GROUP_OVERHEAD", 300)
    x, lengths = _batch([3, 17, 9, 30, 2, 25], 28, seed=4)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    torch.manual_seed(0)
    seq = SeqContext(28, "transformer", nlayer=2, drop_rate=0.4, dropout_masks="lanes").train()
    assert len(AttentionPlan(mask, seq.nhead).groups) > 1
    shapes = []

    def all_kept(shape, p, device=None):
        shapes.append(shape)
        return torch.ones(shape, dtype=torch.bool), 1.0

    monkeypatch.setattr(seqcontext, "lane_keep_mask", all_kept)
    monkeypatch.setattr(
        "bridging.models.dropout.lane_keep_mask", all_kept
    )  # the dropout() of the feed-forward blocks
    got = seq(x, lengths, mask)
    seq.eval()
    want = seq(x, lengths, mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    plan = AttentionPlan(mask, seq.nhead)
    attention_shapes = [(int(d.numel()), seq.nhead, t, t) for d, t, *_ in plan.groups]
    assert shapes.count(attention_shapes[0]) == 2  # one per layer, per group
    assert set(attention_shapes) <= set(shapes)


def test_lanes_encoder_trains_reproducibly_and_stays_batch_local():
    x, lengths = _batch([5, 12, 8], 28, seed=1)
    x.requires_grad_(True)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    torch.manual_seed(0)
    seq = SeqContext(28, "transformer", nlayer=2, drop_rate=0.3).train()
    assert seq.dropout_masks == "lanes"
    torch.manual_seed(5)
    a = seq(x, lengths, mask)
    torch.manual_seed(5)
    b = seq(x, lengths, mask)
    assert torch.equal(a, b)
    torch.manual_seed(6)
    assert (seq(x, lengths, mask) - a).abs().max() > 1e-3
    # the first dialogue's outputs never depend on the others' inputs (padding and groups)
    (g,) = torch.autograd.grad(a[: int(lengths[0])].sum(), [x])
    assert float(g[1:].abs().max()) == 0.0
    assert float(g[0, : int(lengths[0])].abs().max()) > 0.0


def test_unknown_dropout_masks_refused():
    with pytest.raises(ValueError, match="unknown dropout_masks 'bits'"):
        SeqContext(28, "transformer", dropout_masks="bits")
