"""COGMEN model: shapes, head rule, padding independence, GNN-free variant, loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bridging.data.records import IGNORE_INDEX
from bridging.models.cogmen import COGMEN, ModelOutput
from bridging.models.seqcontext import SeqContext, transformer_heads


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
