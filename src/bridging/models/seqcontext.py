"""Sequence context over each dialogue (METHOD.md section 2.1).

- ``transformer``: ``nn.TransformerEncoder`` (d_model = input size, heads by
  :func:`transformer_heads`, feed-forward 2048, ReLU, post-norm, batch_first, dropout =
  drop_rate, L layers), then ``Linear(d_model -> hidden)``;
- ``lstm`` / ``gru``: bidirectional, ``hidden`` units per direction (output ``2 * hidden``),
  dropout between layers = drop_rate, over packed sequences (padding never seen).

Padding of the transformer: ``pad_mode="mask"`` (default) masks padded keys out of attention,
so a dialogue's outputs do not depend on the other dialogues of its batch; it runs the
encoder layers' per-token work (projections, feed-forward, norms) on the real utterances only
(same parameters and result as ``nn.TransformerEncoder`` with ``src_key_padding_mask``, about
2x less work at IEMOCAP's length spread). ``pad_mode="reference"`` reproduces the reference
code, where the zero vectors at padded positions take part in attention (the stock
``nn.TransformerEncoder`` over the padded batch, no mask). For the recurrent variants both
modes are the same (packed sequences).

Outputs are flat over the real utterances, dialogue-major: [N, output_size].

Attribute names follow the reference (``transformer_encoder``, ``transformer_out``, ``rnn``)
so that reference checkpoints map one to one (METHOD.md section 6).
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

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
    ) -> None:
        super().__init__()
        if rnn not in SEQ_KINDS:
            raise ValueError(f"unknown sequence context {rnn!r}: expected one of {SEQ_KINDS}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"unknown pad_mode {pad_mode!r}: expected one of {PAD_MODES}")
        if nlayer < 1:
            raise ValueError(f"sequence context needs at least one layer, got {nlayer}")
        self.input_size = int(input_size)
        self.kind = rnn
        self.hidden_size = int(hidden_size)
        self.nlayer = int(nlayer)
        self.pad_mode = pad_mode
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
        out, _ = self.rnn(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return out[mask]

    def _packed_encoder(self, x: Tensor, mask: Tensor) -> Tensor:
        """The encoder layers with padding masked out, per-token work on real tokens only.

        Same computation as ``self.transformer_encoder(x, src_key_padding_mask=~mask)`` at
        the real positions (tested), with the same parameters and dropout placement, but
        the projections, feed-forward blocks and norms run on the N real utterances instead
        of all B * T positions; only the attention itself uses the padded layout (with a key
        padding mask). Returns flat [N, D].
        """
        b, t, d = x.shape
        flat_index = mask.reshape(-1).nonzero().squeeze(1)  # positions of real tokens in B*T
        key_mask = mask[:, None, None, :]  # [B, 1, 1, T]: True = may be attended
        h = x.reshape(b * t, d).index_select(0, flat_index)
        for layer in self.transformer_encoder.layers:
            attn = layer.self_attn
            heads = attn.num_heads
            qkv = F.linear(h, attn.in_proj_weight, attn.in_proj_bias)  # [N, 3D]
            padded = qkv.new_zeros(b * t, 3 * d).index_copy(0, flat_index, qkv)
            q, k, v = padded.view(b, t, 3, heads, d // heads).permute(2, 0, 3, 1, 4).unbind(0)
            o = F.scaled_dot_product_attention(
                q, k, v, attn_mask=key_mask, dropout_p=attn.dropout if self.training else 0.0
            )  # [B, heads, T, D / heads]
            o = o.transpose(1, 2).reshape(b * t, d).index_select(0, flat_index)
            o = F.linear(o, attn.out_proj.weight, attn.out_proj.bias)
            h = layer.norm1(h + layer.dropout1(o))
            ff = layer.linear2(layer.dropout(layer.activation(layer.linear1(h))))
            h = layer.norm2(h + layer.dropout2(ff))
        return h


__all__ = ["SeqContext", "transformer_heads", "PAD_MODES", "SEQ_KINDS"]
