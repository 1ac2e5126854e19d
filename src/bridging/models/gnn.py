"""COGMEN's graph network (docs/method.md 2.3).

RGCNConv(g -> hidden, 2 * n_speakers^2 relations; mean aggregation per relation, root
weight, bias, no basis decomposition) -> TransformerConv(hidden -> hidden, H heads, concat,
root weight) -> BatchNorm1d(hidden * H) -> LeakyReLU(0.01). No nonlinearity between the
two convolutions. Attribute names (conv1, conv2, bn) are those of the reference.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import RGCNConv, TransformerConv


class GNN(nn.Module):
    def __init__(
        self, in_size: int, hidden_size: int = 100, num_relations: int = 8, heads: int = 1
    ):
        super().__init__()
        if heads < 1:
            raise ValueError(f"gnn heads must be >= 1, got {heads}")
        self.in_size = int(in_size)
        self.hidden_size = int(hidden_size)
        self.heads = int(heads)
        self.num_relations = int(num_relations)
        self.conv1 = RGCNConv(
            self.in_size,
            self.hidden_size,
            self.num_relations,
            num_bases=None,
            num_blocks=None,
            aggr="mean",
            root_weight=True,
            bias=True,
        )
        self.conv2 = TransformerConv(
            self.hidden_size, self.hidden_size, heads=self.heads, concat=True, root_weight=True
        )
        self.bn = nn.BatchNorm1d(self.hidden_size * self.heads)
        self.output_size = self.hidden_size * self.heads

    def forward(self, x: Tensor, edge_index: Tensor, edge_type: Tensor) -> Tensor:
        """``x`` [N, in_size], ``edge_index`` [2, E], ``edge_type`` [E] -> [N, hidden * heads]."""
        h = self.conv1(x, edge_index, edge_type)
        h = self.conv2(h, edge_index)
        return F.leaky_relu(self.bn(h), negative_slope=0.01)


__all__ = ["GNN"]
