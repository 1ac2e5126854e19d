"""Sequence context over each dialogue (docs/method.md 2.1).

- ``transformer``: ``nn.TransformerEncoder`` (d_model = input size, heads by
  :func:`transformer_heads`, feed-forward 2048, ReLU, post-norm, batch_first, dropout =
  drop_rate, L layers), then ``Linear(d_model -> hidden)``;
- ``lstm`` / ``gru``: bidirectional, ``hidden`` units per direction (output ``2 * hidden``),
  dropout between layers = drop_rate, over packed sequences (padding never seen).

Padding of the transformer: ``pad_mode="mask"`` (default) masks padded keys out of attention,
so a dialogue's outputs do not depend on the other dialogues of its batch; it runs the
encoder layers' per-token work (projections, feed-forward, norms) on the real utterances only,
the attention per group of dialogues of similar length (:class:`AttentionPlan`), and the
matrix products into row-aligned buffers (:func:`bridging.models.aligned.aligned_linear`):
same parameters and result as ``nn.TransformerEncoder`` with ``src_key_padding_mask`` (tested
to 1e-5, outputs and gradients, in eval mode and, with ``dropout_masks="torch"``, in train
mode with the same dropout masks for a seed as one padded attention block), at about half
the work of the padded computation at IEMOCAP's length spread. ``dropout_masks="lanes"``
(the default) draws the dropout masks four elements per 64-bit random word and the attention
masks per length group only (:mod:`bridging.models.dropout`).
``pad_mode="reference"`` reproduces the reference code, where the zero vectors at padded
positions take part in attention: the stock ``nn.TransformerEncoder`` over the padded batch,
no mask, unchanged (bit-identical to it). For the recurrent variants both modes are the same
(packed sequences).

Outputs are flat over the real utterances, dialogue-major: [N, output_size].

Attribute names follow the reference (``transformer_encoder``, ``transformer_out``, ``rnn``)
so that reference checkpoints map one to one (docs/method.md 2, reference checkpoints).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from bridging.models.aligned import aligned_linear
from bridging.models.dropout import DROPOUT_MASKS, dropout, lane_keep_mask
from bridging.models.widen import widen

PAD_MODES = ("mask", "reference")
SEQ_KINDS = ("transformer", "lstm", "gru")


def transformer_heads(d_model: int) -> int:
    """The smallest h in 7..14 that divides ``d_model``, else 1 (the reference rule)."""
    for h in range(7, 15):
        if d_model % h == 0:
            return h
    return 1


class SeqContext(nn.Module):
    """Contextualise the utterances of each dialogue: [B, T, D] -> flat [N, output_size]."""

    def __init__(
        self,
        input_size: int,
        rnn: str = "transformer",
        hidden_size: int = 100,
        nlayer: int = 2,
        drop_rate: float = 0.5,
        pad_mode: str = "mask",
        dim_feedforward: int = 2048,
        dropout_masks: str = "lanes",
    ) -> None:
        super().__init__()
        if rnn not in SEQ_KINDS:
            raise ValueError(f"unknown sequence context {rnn!r}: expected one of {SEQ_KINDS}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}: expected one of {PAD_MODES}")
        if dropout_masks not in DROPOUT_MASKS:
            raise ValueError(
                f"unknown dropout_masks {dropout_masks!r}: expected one of {DROPOUT_MASKS}"
            )
        if nlayer < 1:
            raise ValueError(f"sequence context needs at least one layer, got {nlayer}")
        self.input_size = int(input_size)
        self.kind = rnn
        self.hidden_size = int(hidden_size)
        self.nlayer = int(nlayer)
        self.pad_mode = pad_mode
        self.dropout_masks = dropout_masks
        if rnn == "transformer":
            self.nhead = transformer_heads(self.input_size)
            layer = nn.TransformerEncoderLayer(
                d_model=self.input_size,
                nhead=self.nhead,
                dim_feedforward=dim_feedforward,
                dropout=drop_rate,
                activation="relu",
                batch_first=True,
                norm_first=False,
            )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # nested-tensor notices
                self.transformer_encoder = nn.TransformerEncoder(
                    layer, num_layers=self.nlayer, enable_nested_tensor=False
                )
            self.transformer_out = nn.Linear(self.input_size, self.hidden_size)
            self.output_size = self.hidden_size
            self.dim_feedforward = int(dim_feedforward)
        else:
            cls = nn.LSTM if rnn == "lstm" else nn.GRU
            self.rnn = cls(
                self.input_size,
                self.hidden_size,
                num_layers=self.nlayer,
                dropout=drop_rate if self.nlayer > 1 else 0.0,
                bidirectional=True,
                batch_first=True,
            )
            self.output_size = 2 * self.hidden_size

    def memory_bytes(self, n: int, training: bool = True, padded_batch: int = 1) -> int:
        """About the peak memory (bytes, float32) of this context over one dialogue of ``n``
        utterances (measured: BENCHMARKS.md, "Long dialogues"). The transformer's attention
        holds heads x n^2 scores per layer in a training step: about 3 such matrices per
        layer are kept for the backward pass (weights, dropout mask, dropped weights) and one
        more is made while it runs. Evaluation without dropout goes through
        ``scaled_dot_product_attention``'s fused kernel, which never makes the matrix
        (``pad_mode="mask"``); the stock encoder of ``pad_mode="reference"`` is counted at
        one matrix (not measured). ``padded_batch``: dialogues padded to ``n`` in one
        attention block (``pad_mode="reference"``: the batch). The per-utterance work
        (projections, feed-forward) adds as many vectors of the feed-forward's width plus 4
        model widths. Recurrent contexts grow linearly: 0."""
        if self.kind != "transformer":
            return 0
        matrices = 3 * self.nlayer + 1 if training else 1
        square = self.nhead * int(n) ** 2 * max(1, int(padded_batch))
        if not training and self.pad_mode == "mask":
            square = 0
        per_token = self.dim_feedforward + 4 * self.input_size
        return 4 * matrices * (square + per_token * int(n))

    def forward(self, x: Tensor, lengths: Tensor, mask: Tensor | None = None) -> Tensor:
        """``x`` [B, T, D] (zeros at padding), ``lengths`` [B] -> flat [N, output_size].

        The output covers the real utterances only, flat and dialogue-major (N =
        lengths.sum()). ``mask`` (bool [B, T], True at real utterances) may be passed to
        avoid rebuilding it.
        """
        if mask is None:
            t = x.shape[1]
            mask = torch.arange(t, device=x.device)[None, :] < lengths.to(x.device)[:, None]
        if self.kind == "transformer":
            if self.pad_mode == "reference":
                # the reference: padded (zero) positions take part in attention
                h = self.transformer_encoder(x)[mask]
            else:
                h = self._packed_encoder(x, mask)
            return self.transformer_out(h)
        packed = pack_padded_sequence(
            x, lengths.detach().cpu(), batch_first=True, enforce_sorted=False
        )
        # float32 under CPU autocast: oneDNN's bfloat16 LSTM/GRU is not there on every CPU
        # (none on AVX2: "could not create a primitive descriptor"); CUDA autocast applies
        with torch.autocast("cpu", enabled=False):
            out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out[mask]

    def _packed_encoder(self, x: Tensor, mask: Tensor) -> Tensor:
        """The encoder layers with padding masked out, per-token work on real tokens only.

        Same computation as ``self.transformer_encoder(x, src_key_padding_mask=~mask)`` at
        the real positions (tested), with the same parameters, dropout placement and
        dropout masks, but the projections, feed-forward blocks and norms run on the N real
        utterances instead of all B * T positions, and the attention runs per group of
        dialogues of similar length (:func:`length_groups`), each padded only to its own
        longest dialogue. Returns flat [N, D].
        """
        b, t, d = x.shape
        plan = AttentionPlan(mask, self.nhead)
        h = x.reshape(b * t, d).index_select(0, plan.flat_index)
        masks, train = self.dropout_masks, self.training
        for layer in self.transformer_encoder.layers:
            attn = layer.self_attn
            p = layer.dropout.p if train else 0.0  # the layer's one dropout rate
            qkv = aligned_linear(h, attn.in_proj_weight, attn.in_proj_bias)  # [N, 3D]
            o = plan.attention(qkv, attn.num_heads, attn.dropout if train else 0.0, masks)
            o = aligned_linear(o, attn.out_proj.weight, attn.out_proj.bias)
            h = layer.norm1(h + dropout(o, p, train, masks))
            ff = layer.activation(aligned_linear(h, layer.linear1.weight, layer.linear1.bias))
            ff = dropout(ff, p, train, masks)
            ff = aligned_linear(ff, layer.linear2.weight, layer.linear2.bias)
            h = layer.norm2(h + dropout(ff, p, train, masks))
        return h


#: cost of one extra attention group, in attention scores (one score = one query-key pair
#: of one head): the per-call work (kernel calls, gathers) of a group is about that of this
#: many scores (measured with benchmarks/bench_flops.py --attention on the development
#: machine); it decides how finely :func:`length_groups` splits a batch.
GROUP_OVERHEAD = 60_000


def length_groups(lengths: list[int], heads: int = 1, overhead: int | None = None):
    """Split a batch's dialogues into groups of similar length for attention.

    The dialogues, sorted longest first (ties in batch order), are cut into contiguous runs
    that minimise sum over groups of ``overhead + heads * size * longest^2`` (dynamic
    programming, exact): the attention work of each group padded to its longest dialogue
    plus a fixed cost per group (default :data:`GROUP_OVERHEAD`). Returns lists of batch
    indices, longest group first.
    """
    overhead = GROUP_OVERHEAD if overhead is None else overhead
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    n = len(order)
    best = [0.0] + [float("inf")] * n
    cut = [0] * (n + 1)
    for i in range(1, n + 1):
        for j in range(i):  # the group order[j:i], whose longest is order[j]
            cost = best[j] + overhead + heads * (i - j) * lengths[order[j]] ** 2
            if cost < best[i]:
                best[i], cut[i] = cost, j
    groups = []
    while n > 0:
        groups.append(order[cut[n] : n])
        n = cut[n]
    return groups[::-1]


class AttentionPlan:
    """Index plan of one padded batch for attention over groups of similar length.

    ``mask`` (bool [B, T], True at real tokens, each dialogue at least one) defines the N
    real tokens, flat and dialogue-major (``flat_index``: their positions in B * T). Each
    group of :func:`length_groups` gets a gather index from the flat tokens into its own
    padded [n_g, T_g] layout (a padded slot repeats its dialogue's first token: as a key it
    is masked out, as a query its output is dropped, so it adds exactly zero to every
    output and gradient), its key mask and the rows of that layout that are real;
    ``inverse`` puts the groups' real rows back in flat order. Built once per forward and
    shared by every layer.
    """

    def __init__(self, mask: Tensor, heads: int = 1):
        self.b, self.t = mask.shape
        device = mask.device
        self.flat_index = mask.reshape(-1).nonzero().squeeze(1)
        self.n = int(self.flat_index.numel())
        lengths = mask.sum(1)
        offsets = torch.cumsum(lengths, 0) - lengths
        self.groups = []
        order = []
        for members in length_groups(lengths.tolist(), heads):
            dialogues = torch.tensor(members, dtype=torch.long, device=device)
            t_g = int(lengths[members[0]])
            pos = torch.arange(t_g, device=device)
            valid = pos[None, :] < lengths[dialogues][:, None]  # [n_g, T_g]
            first = offsets[dialogues][:, None]
            gather = torch.where(valid, first + pos, first).reshape(-1)
            real = valid.reshape(-1).nonzero().squeeze(1)
            self.groups.append((dialogues, t_g, gather, valid[:, None, None, :], real))
            order.append(gather.index_select(0, real))
        order = torch.cat(order)
        self.inverse = torch.empty_like(order)
        self.inverse[order] = torch.arange(self.n, device=device)

    def attention(
        self, qkv: Tensor, heads: int, dropout_p: float = 0.0, masks: str = "torch"
    ) -> Tensor:
        """Multi-head self-attention of the flat ``qkv`` [N, 3D] (queries, keys, values as
        ``nn.MultiheadAttention``'s in-projection gives them), padded keys masked out, with
        dropout ``dropout_p`` on the attention weights -> flat [N, D].

        ``masks="torch"``: the dropout mask is drawn with ``bernoulli_`` over the whole
        padded [B, heads, T, T] batch, as ``F.scaled_dot_product_attention`` draws it, so a
        seed gives the same masks as the plain (one padded block) computation; each group
        uses its part of it. ``masks="lanes"``: each group draws only its own [n_g, heads,
        T_g, T_g] mask with :func:`bridging.models.dropout.lane_keep_mask`.
        """
        d = qkv.shape[1] // 3
        hd = d // heads
        noise = None
        if dropout_p > 0.0 and masks == "torch":
            keep = 1.0 - dropout_p
            noise = qkv.new_empty(self.b, heads, self.t, self.t).bernoulli_(keep).div_(keep)
        outs = []
        for dialogues, t_g, gather, key_mask, real in self.groups:
            n_g = dialogues.numel()
            g = qkv.index_select(0, gather).view(n_g, t_g, 3, heads, hd)
            q, k, v = g.permute(2, 0, 3, 1, 4).unbind(0)  # [n_g, heads, T_g, hd] each
            if dropout_p <= 0.0:
                o = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask)
            else:
                # the softmax in float32 at least whatever the products' dtype (under bf16
                # autocast the scores come out in bfloat16)
                scores = widen(torch.matmul(q, k.transpose(-2, -1))) * hd**-0.5
                scores = scores.masked_fill(~key_mask, float("-inf"))
                weights = torch.softmax(scores, dim=-1)
                if noise is not None:
                    group_noise = noise[:, :, :t_g, :t_g].index_select(0, dialogues)
                else:
                    kept, scale = lane_keep_mask((n_g, heads, t_g, t_g), dropout_p, qkv.device)
                    group_noise = kept.to(weights.dtype).mul_(scale)
                o = torch.matmul(weights * group_noise, v)
            outs.append(o.transpose(1, 2).reshape(n_g * t_g, d).index_select(0, real))
        out = outs[0] if len(outs) == 1 else torch.cat(outs)
        return out.index_select(0, self.inverse)


__all__ = [
    "SeqContext",
    "transformer_heads",
    "length_groups",
    "AttentionPlan",
    "PAD_MODES",
    "SEQ_KINDS",
]
