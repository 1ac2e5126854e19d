"""COGMEN model: shapes, head rule, padding independence, GNN-free variant, loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bridging.data.records import IGNORE_INDEX
from bridging.models.cogmen import COGMEN, ModelOutput
from bridging.models.seqcontext import AttentionPlan, SeqContext, length_groups, transformer_heads


def make_batch(lengths, d, n_speakers=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.as_tensor(lengths)
    t = int(lengths.max())
    mask = torch.arange(t)[None, :] < lengths[:, None]
    x = torch.randn(len(lengths), t, d, generator=gen) * mask[..., None]
    speakers = torch.randint(0, n_speakers, (len(lengths), t), generator=gen) * mask
    return x, lengths, speakers


def test_head_rule():
    assert transformer_heads(612) == 9  # av: 612 = 9 * 68 (7, 8 do not divide)
    assert transformer_heads(100) == 10  # a
    assert transformer_heads(768) == 8  # t
    assert transformer_heads(512) == 8  # v
    assert transformer_heads(1380) == 10  # atv
    assert transformer_heads(868) == 7  # at
    assert transformer_heads(13 * 17) == 13
    assert transformer_heads(11 * 11 * 17) == 11
    assert transformer_heads(17) == 1
    seq = SeqContext(612, "transformer", nlayer=1)
    layer = seq.transformer_encoder.layers[0]
    assert layer.self_attn.num_heads == 9
    assert layer.linear1.out_features == 2048
    assert layer.norm_first is False


@pytest.mark.parametrize("rnn", ["transformer", "lstm", "gru"])
@pytest.mark.parametrize("gnn", ["rgcn_transformer", "none"])
def test_shapes(rnn, gnn):
    d, c, heads = 30, 4, 3
    model = COGMEN(d, c, rnn=rnn, seqcontext_nlayer=2, gnn_nheads=heads, gnn=gnn)
    x, lengths, speakers = make_batch([5, 3, 7], d)
    out = model(x, lengths, speakers)
    assert isinstance(out, ModelOutput)
    n = int(lengths.sum())
    g = 100 if rnn == "transformer" else 200
    emb = 100 * heads if gnn != "none" else g
    assert model.embedding_size == emb
    assert out.log_probs.shape == (n, c) and out.logits.shape == (n, c)
    assert out.embeddings.shape == (n, emb)
    torch.testing.assert_close(out.log_probs, F.log_softmax(out.logits, -1))
    loss = model.loss(out, torch.randint(0, c, (n,)))
    loss.backward()
    assert torch.isfinite(loss)


def test_concat_and_highway_sizes():
    model = COGMEN(24, 6, gnn_nheads=2, concat_gin_gout=True, use_highway=True)
    assert model.clf.lin1.in_features == 100 * 2 + 100
    assert model.clf.highway.gate[0].in_features == 300
    x, lengths, speakers = make_batch([4, 6], 24)
    out = model(x, lengths, speakers)
    assert out.log_probs.shape == (10, 6) and out.embeddings.shape == (10, 200)
    lstm = COGMEN(24, 6, rnn="lstm", concat_gin_gout=True)
    assert lstm.clf.lin1.in_features == 100 + 200
    assert lstm.gcn.conv1.in_channels == 200


def test_gnn_none_has_no_graph():
    model = COGMEN(24, 4, gnn="none", concat_gin_gout=True, use_highway=True)
    assert model.gcn is None
    assert model.clf.lin1.in_features == 100
    assert not any(k.startswith("gcn.") for k in model.state_dict())
    x, lengths, speakers = make_batch([4, 6], 24)
    out = model(x, lengths, speakers)
    assert out.embeddings.shape == (10, 100)


@pytest.mark.parametrize("mode", ["train", "eval-no-grad", "eval-grad"])
def test_packed_encoder_equals_torch_encoder_with_padding_mask(mode):
    """Mask mode's packed layers == nn.TransformerEncoder(src_key_padding_mask) at real tokens."""
    torch.manual_seed(0)
    seq = SeqContext(28, "transformer", nlayer=3, drop_rate=0.0 if mode == "train" else 0.4)
    seq.train(mode == "train")
    x, lengths, _ = make_batch([6, 11, 9, 14, 1], 28, seed=2)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    with torch.set_grad_enabled(mode != "eval-no-grad"):  # no grad: torch's fast path
        want = seq.transformer_out(seq.transformer_encoder(x, src_key_padding_mask=~mask)[mask])
        got = seq(x, lengths, mask)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    if mode == "train":
        got.sum().backward()
        assert all(p.grad is not None for p in seq.parameters())


def _plain_packed_encoder(seq, x, mask):
    """The mask-mode encoder before attention was split into length groups (verbatim): the
    attention over the whole padded batch, one F.scaled_dot_product_attention call."""
    b, t, d = x.shape
    flat_index = mask.reshape(-1).nonzero().squeeze(1)
    key_mask = mask[:, None, None, :]
    h = x.reshape(b * t, d).index_select(0, flat_index)
    for layer in seq.transformer_encoder.layers:
        attn = layer.self_attn
        heads = attn.num_heads
        qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)
        padded = qkv.new_zeros(b * t, 3 * d).index_copy(0, flat_index, qkv)
        q, k, v = padded.view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4).unbind(0)
        o = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask, dropout_p=attn.dropout if seq.training else 0.0
        )
        o = o.transpose(1, 2).reshape(b * t, d).index_select(0, flat_index)
        o = F.linear(o, attn.out_proj.weight, attn.out_proj.bias)
        h = layer.norm1(h + layer.dropout1(o))
        ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(h))))
        h = layer.norm2(h + layer.dropout2(ff))
    return seq.transformer_out(h)


def _assert_close_to_scale(got, want, tol=1e-5):
    """Equal to ``tol`` relative to the tensor's scale (its largest magnitude, at least 1):
    float32 sums over hundreds of utterances round differently in another order."""
    scale = max(1.0, float(want.abs().max()))
    assert float((got - want).abs().max()) <= tol * scale, (
        f"max difference {float((got - want).abs().max()):.3g} at scale {scale:.3g}"
    )


def _outputs_and_grads(fn, seq, x, weights, seed):
    """fn() at a fixed seed; its outputs, and the gradients of a random projection of them
    with respect to every parameter and the input."""
    torch.manual_seed(seed)
    out = fn()
    params = list(seq.parameters())
    grads = torch.autograd.grad((out * weights).sum(), [*params, x], allow_unused=True)
    return out, grads


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("train", [True, False])
def test_grouped_attention_equals_the_plain_computation(seed, train, monkeypatch):
    """Mask mode (attention per group of similar length) == the plain padded computation, in
    eval mode and in train mode with dropout (same seed, same masks): outputs in float32 to
    1e-5, outputs and gradients in float64 to 1e-12.

    Why the gradients are compared in float64: a ReLU's gradient jumps at 0. In float32 the
    two computations (the same sums in another order) differ by about 1e-7, and now and then
    a feed-forward pre-activation lies within that of zero: one computation puts it on each
    side, and the gradients of that unit differ by its whole contribution (seen: seed 18 on
    an AVX2 CPU, one pre-activation -1.9e-9 against 4.7e-8; seeds 0 and 2 on Intel CPUs,
    where torch draws dropout masks through MKL, so other masks). Neither side is wrong. In
    float64 the differences are about 1e-16 and such a tie does not happen."""
    import bridging.models.seqcontext as seqcontext

    monkeypatch.setattr(seqcontext, "GROUP_OVERHEAD", 300)  # small sizes: split them anyway
    gen = torch.Generator().manual_seed(100 + seed)
    lengths = torch.randint(1, 40, (12,), generator=gen)
    lengths[int(torch.randint(0, 12, (1,), generator=gen))] = 40  # one long dialogue
    d = 28
    x, lengths, _ = make_batch(lengths, d, seed=seed)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    torch.manual_seed(seed)
    seq = SeqContext(d, "transformer", nlayer=3, drop_rate=0.3, dropout_masks="torch")
    seq.train(train)
    assert len(AttentionPlan(mask, seq.nhead).groups) > 1  # really split
    w = torch.randn(int(lengths.sum()), seq.output_size, generator=gen)
    want32, got32, _ = _grouped_plain_and_stock(seq, x, w, lengths, mask, seed, train)
    torch.testing.assert_close(got32[0], want32[0], atol=1e-5, rtol=1e-5)
    want, got, stock = _grouped_plain_and_stock(
        seq.double(), x.double(), w.double(), lengths, mask, seed, train
    )
    torch.testing.assert_close(got[0], want[0], atol=1e-12, rtol=1e-12)
    for g, h in zip(got[1], want[1]):
        _assert_close_to_scale(g, h, tol=1e-12)
    if stock is not None:  # eval mode: and torch's own encoder with a key padding mask
        torch.testing.assert_close(got[0], stock[0], atol=1e-12, rtol=1e-12)
        for g, h in zip(got[1], stock[1]):
            _assert_close_to_scale(g, h, tol=1e-12)


def _grouped_plain_and_stock(seq, x, w, lengths, mask, seed, train):
    """(outputs, gradients) of the plain padded computation, of the grouped one and, in eval
    mode, of torch's encoder with a key padding mask (None in train mode)."""
    x = x.detach().requires_grad_(True)
    want = _outputs_and_grads(lambda: _plain_packed_encoder(seq, x, mask), seq, x, w, seed)
    got = _outputs_and_grads(lambda: seq(x, lengths, mask), seq, x, w, seed)
    stock = None
    if not train:
        stock = _outputs_and_grads(
            lambda: seq.transformer_out(
                seq.transformer_encoder(x, src_key_padding_mask=~mask)[mask]
            ),
            seq,
            x,
            w,
            seed,
        )
    return want, got, stock


def test_grouped_attention_draws_the_same_random_numbers(monkeypatch):
    """With dropout_masks="torch", the dropout masks are those of the plain computation, and
    the generator ends in the same state (later draws, e.g. the next batch's shuffling, are
    unchanged)."""
    import bridging.models.seqcontext as seqcontext

    monkeypatch.setattr(seqcontext, "GROUP_OVERHEAD", 300)
    torch.manual_seed(0)
    seq = SeqContext(28, "transformer", nlayer=2, drop_rate=0.5, dropout_masks="torch").train()
    x, lengths, _ = make_batch([3, 17, 9, 30, 2, 25], 28, seed=4)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    assert len(AttentionPlan(mask, seq.nhead).groups) > 1
    torch.manual_seed(7)
    got = seq(x, lengths, mask)
    after_got = torch.get_rng_state()
    torch.manual_seed(7)
    want = _plain_packed_encoder(seq, x, mask)
    assert torch.equal(torch.get_rng_state(), after_got)
    torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)
    torch.manual_seed(8)  # another seed: other masks, other outputs
    assert (seq(x, lengths, mask) - want).abs().max() > 1e-3


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("train", [True, False])
def test_reference_mode_is_the_stock_encoder_over_the_padded_batch(seed, train):
    """pad_mode=reference stays bit-identical to nn.TransformerEncoder over the padded batch
    (padding attends, as in the reference code): outputs and gradients."""
    gen = torch.Generator().manual_seed(seed)
    d = 28
    x, lengths, _ = make_batch(torch.randint(1, 20, (7,), generator=gen), d, seed=seed)
    x.requires_grad_(True)
    mask = torch.arange(x.shape[1])[None, :] < lengths[:, None]
    torch.manual_seed(seed)
    seq = SeqContext(d, "transformer", nlayer=2, drop_rate=0.3, pad_mode="reference")
    seq.train(train)
    w = torch.randn(int(lengths.sum()), seq.output_size, generator=gen)
    got, got_g = _outputs_and_grads(lambda: seq(x, lengths, mask), seq, x, w, seed)
    want, want_g = _outputs_and_grads(
        lambda: seq.transformer_out(seq.transformer_encoder(x)[mask]), seq, x, w, seed
    )
    torch.testing.assert_close(got, want, atol=0, rtol=0)
    for g, h in zip(got_g, want_g):
        torch.testing.assert_close(g, h, atol=0, rtol=0)


def _brute_force_groups(lengths, heads, overhead):
    """Every way of cutting the sorted dialogues into contiguous runs; the cheapest cost."""
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    best = float("inf")
    n = len(order)
    for cuts in range(2 ** (n - 1)):
        bounds = [0] + [i + 1 for i in range(n - 1) if cuts >> i & 1] + [n]
        cost = sum(
            overhead + heads * (b - a) * lengths[order[a]] ** 2 for a, b in zip(bounds, bounds[1:])
        )
        best = min(best, cost)
    return best


@pytest.mark.parametrize("overhead", [0, 50, 400, 10**9])
def test_length_groups_cover_the_batch_at_the_least_cost(overhead):
    gen = torch.Generator().manual_seed(overhead % 97)
    for _ in range(20):
        lengths = torch.randint(
            1, 30, (int(torch.randint(1, 9, (1,), generator=gen)),), generator=gen
        ).tolist()
        groups = length_groups(lengths, heads=2, overhead=overhead)
        flat = [i for g in groups for i in g]
        assert sorted(flat) == list(range(len(lengths)))  # a partition
        assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)  # longest first
        cost = sum(overhead + 2 * len(g) * lengths[g[0]] ** 2 for g in groups)
        assert cost == _brute_force_groups(lengths, 2, overhead)
    assert length_groups([5, 9, 7], overhead=10**9) == [[1, 2, 0]]  # one group
    assert length_groups([5, 9, 5, 9], overhead=0) == [[1, 3], [0, 2]]  # equal lengths


def test_attention_plan_indices():
    x, lengths, _ = make_batch([3, 1, 4], 8)
    mask = torch.arange(4)[None, :] < lengths[:, None]
    plan = AttentionPlan(mask, heads=1)
    assert plan.flat_index.tolist() == [0, 1, 2, 4, 8, 9, 10, 11]
    # every real token appears once over the groups, and inverse puts them back in order
    order = torch.cat([gather[real] for _, _, gather, _, real in plan.groups])
    assert sorted(order.tolist()) == list(range(8))
    assert order[plan.inverse].tolist() == list(range(8))


def _alone_vs_batched(model, d):
    """Outputs of dialogue 0 alone vs. in a batch with longer dialogues."""
    x, lengths, speakers = make_batch([6, 11, 9, 14], d, seed=3)
    batched = model(x, lengths, speakers)
    n0 = int(lengths[0])
    alone = model(x[:1, :n0], lengths[:1], speakers[:1, :n0])
    return alone, batched, n0


@pytest.mark.parametrize("rnn", ["transformer", "lstm", "gru"])
@pytest.mark.parametrize("grad", [False, True])
def test_mask_mode_is_batch_independent(rnn, grad):
    torch.manual_seed(0)
    d = 28  # 7 heads
    model = COGMEN(d, 4, rnn=rnn, seqcontext_nlayer=2, gnn_nheads=2, drop_rate=0.3)
    # BatchNorm in eval uses running statistics: give them non-trivial values
    model.gcn.bn.running_mean.uniform_(-0.5, 0.5)
    model.gcn.bn.running_var.uniform_(0.5, 2.0)
    model.eval()
    with torch.set_grad_enabled(grad):  # no grad: torch's transformer fast path
        alone, batched, n0 = _alone_vs_batched(model, d)
    for field in ("log_probs", "logits", "embeddings"):
        torch.testing.assert_close(
            getattr(alone, field), getattr(batched, field)[:n0], atol=1e-5, rtol=1e-5
        )


def test_mask_mode_is_batch_independent_in_train_mode_without_dropout():
    torch.manual_seed(0)
    d = 28
    model = COGMEN(d, 4, gnn="none", drop_rate=0.0)
    model.train()
    alone, batched, n0 = _alone_vs_batched(model, d)
    torch.testing.assert_close(alone.log_probs, batched.log_probs[:n0], atol=1e-5, rtol=1e-5)


def test_reference_mode_depends_on_padding():
    torch.manual_seed(0)
    d = 28
    model = COGMEN(d, 4, rnn="transformer", gnn="none", pad_mode="reference").eval()
    with torch.no_grad():
        alone, batched, n0 = _alone_vs_batched(model, d)
    assert (alone.log_probs - batched.log_probs[:n0]).abs().max() > 1e-4
    # the same weights in mask mode agree with the alone run (no padding there)
    masked = COGMEN(d, 4, rnn="transformer", gnn="none", pad_mode="mask").eval()
    masked.load_state_dict(model.state_dict())
    with torch.no_grad():
        alone_m, batched_m, _ = _alone_vs_batched(masked, d)
    torch.testing.assert_close(alone_m.log_probs, alone.log_probs, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(alone_m.log_probs, batched_m.log_probs[:n0], atol=1e-5, rtol=1e-5)


def test_loss_ignores_padding_labels_and_matches_nll():
    torch.manual_seed(0)
    model = COGMEN(16, 3, gnn="none")
    x, lengths, speakers = make_batch([4, 5], 16)
    out = model(x, lengths, speakers)
    labels = torch.tensor([0, 2, IGNORE_INDEX, 1, 1, 0, IGNORE_INDEX, 2, 2])
    keep = labels != IGNORE_INDEX
    want = F.nll_loss(out.log_probs[keep], labels[keep])
    torch.testing.assert_close(model.loss(out, labels), want)
    # changing an ignored utterance's output does not change the loss
    all_ignored = torch.full_like(labels, IGNORE_INDEX)
    loss0 = model.loss(out, all_ignored)
    assert loss0.item() == 0.0
    loss0.backward()


def test_class_weights_loss():
    torch.manual_seed(0)
    weights = [1 / 0.14, 1 / 0.24, 1 / 0.38, 1 / 0.24]
    model = COGMEN(16, 4, gnn="none", class_weights=weights)
    x, lengths, speakers = make_batch([5, 6], 16)
    out = model(x, lengths, speakers)
    labels = torch.tensor([0, 1, 2, 3, 2, IGNORE_INDEX, 2, 2, 1, 0, 3])
    # hand-written weighted NLL: sum_i w_{y_i} * -log p_i(y_i) / sum_i w_{y_i}
    num, den = 0.0, 0.0
    for i, y in enumerate(labels.tolist()):
        if y == IGNORE_INDEX:
            continue
        num += weights[y] * -out.log_probs[i, y].item()
        den += weights[y]
    got = model.loss(out, labels)
    assert got.item() == pytest.approx(num / den, rel=1e-5)
    unweighted = COGMEN(16, 4, gnn="none")
    unweighted.load_state_dict(model.state_dict())
    plain = unweighted.loss(out, labels)
    assert abs(plain.item() - got.item()) > 1e-4
    with pytest.raises(ValueError, match="class_weights"):
        COGMEN(16, 4, class_weights=[1.0, 2.0])


def test_bad_inputs():
    model = COGMEN(16, 4)
    x, lengths, speakers = make_batch([3, 2], 16)
    with pytest.raises(ValueError, match="expected input"):
        model(x[..., :8], lengths, speakers)
    with pytest.raises(ValueError, match="lengths"):
        model(x, torch.tensor([3, 0]), speakers)
    with pytest.raises(ValueError, match="gnn"):
        COGMEN(16, 4, gnn="gat")
    with pytest.raises(ValueError, match="pad_mode"):
        COGMEN(16, 4, pad_mode="zeros")
