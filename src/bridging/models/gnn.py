"""COGMEN's graph network (docs/method.md 2.3).

RGCNConv(g -> hidden, R relations; mean aggregation per relation, root weight, bias; no
basis decomposition in the reference, ``num_bases`` B for PyG's basis decomposition: each
relation's weight is a learned mix of B shared [g, hidden] bases, B * g * hidden + R * B
weights instead of R * g * hidden) -> TransformerConv(hidden -> hidden, H heads, concat,
root weight) -> BatchNorm1d(hidden * H) -> LeakyReLU(0.01). No nonlinearity between the
two convolutions. Attribute names (conv1, conv2, bn) are those of the reference. A training
batch of a single node (which BatchNorm cannot normalise) uses the running statistics.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv, TransformerConv

import bridging.utils.pyg as pyg
from bridging.models.widen import widen

pyg.install()  # PyG's generated modules under bridging's cache, not the temporary folder


class FP32TransformerConv(TransformerConv):
    """PyG's ``TransformerConv`` whose attention scores, edge softmax and message
    aggregation run in float32 whatever the dtype of its projections: under bf16 autocast
    the four linear maps run in bfloat16, and their outputs are widened before the
    per-edge dot products, PyG's scatter softmax and the scatter-add over neighbours
    (sums of up to 11 messages per node, which bfloat16's 8 bits would round at each
    step). Otherwise it is ``TransformerConv`` exactly (same parameters and names)."""

    def message(self, query_i, key_j, value_j, edge_attr, index, ptr, size_i):
        return super().message(
            widen(query_i), widen(key_j), widen(value_j), edge_attr, index, ptr, size_i
        )


class GNN(nn.Module):
    def __init__(
        self,
        in_size: int,
        hidden_size: int = 100,
        num_relations: int = 8,
        heads: int = 1,
        num_bases: int | None = None,
    ):
        super().__init__()
        if heads < 1:
            raise ValueError(f"gnn heads must be >= 1, got {heads}")
        self.in_size = int(in_size)
        self.hidden_size = int(hidden_size)
        self.heads = int(heads)
        self.num_relations = int(num_relations)
        if num_bases is not None:
            ok = isinstance(num_bases, int) and not isinstance(num_bases, bool)
            if not ok or num_bases < 1:
                raise ValueError(f"num_bases must be null or an integer >= 1, got {num_bases!r}")
        self.num_bases = num_bases
        self.conv1 = RGCNConv(
            self.in_size,
            self.hidden_size,
            self.num_relations,
            num_bases=self.num_bases,
            num_blocks=None,
            aggr="mean",
            root_weight=True,
            bias=True,
        )
        self.conv2 = FP32TransformerConv(
            self.hidden_size, self.hidden_size, heads=self.heads, concat=True, root_weight=True
        )
        self.bn = nn.BatchNorm1d(self.hidden_size * self.heads)
        self.output_size = self.hidden_size * self.heads

    def relation_weight(self) -> Tensor:
        """The RGCN weight of every relation, [R, in, hidden] (with bases: comp @ bases)."""
        conv = self.conv1
        if self.num_bases is None:
            return conv.weight
        bases = conv.weight.view(self.num_bases, -1)
        return (conv.comp @ bases).view(self.num_relations, self.in_size, self.hidden_size)

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """``x`` [N, in_size], ``edge_index`` [2, E], ``edge_type`` [E] -> [N, hidden * heads]
        (float32 under autocast too: the RGCN's mean over neighbours runs on float32 input
        and only its products autocast)."""
        h = self.conv1(widen(x), edge_index, edge_type)
        h = self.conv2(h, edge_index)
        if self.training and h.shape[0] == 1:
            # one node (a one-utterance dialogue alone in a batch: MELD has 88 of them) has no
            # batch statistics: normalise it with the running ones instead of failing
            h = F.batch_norm(
                h,
                self.bn.running_mean,
                self.bn.running_var,
                self.bn.weight,
                self.bn.bias,
                training=False,
                eps=self.bn.eps,
            )
            return F.leaky_relu(h, negative_slope=0.01)
        return F.leaky_relu(self.bn(h), negative_slope=0.01)


__all__ = ["GNN", "FP32TransformerConv"]
