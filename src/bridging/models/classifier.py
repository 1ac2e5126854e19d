"""COGMEN's per-node classifier (docs/method.md 2.4).

[optional one-layer highway] -> Linear(in -> hidden) -> ReLU -> Dropout -> Linear(hidden -> C).
Returns scores (pre-log_softmax logits). Names (lin1, lin2, highway.{nonlinear,linear,gate}.0)
are those of the reference.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class Highway(nn.Module):
    """y = g * relu(N x) + (1 - g) * (L x), g = sigmoid(G x); ``num_layers`` times."""

    def __init__(self, size: int, num_layers: int = 1):
        super().__init__()
        self.num_layers = num_layers
        self.nonlinear = nn.ModuleList([nn.Linear(size, size) for _ in range(num_layers)])
        self.linear = nn.ModuleList([nn.Linear(size, size) for _ in range(num_layers)])
        self.gate = nn.ModuleList([nn.Linear(size, size) for _ in range(num_layers)])

    def forward(self, x: Tensor) -> Tensor:
        for nonlinear, linear, gate in zip(self.nonlinear, self.linear, self.gate):
            g = torch.sigmoid(gate(x))
            x = g * F.relu(nonlinear(x)) + (1 - g) * linear(x)
        return x


class Classifier(nn.Module):
    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        n_classes: int,
        drop_rate: float = 0.5,
        use_highway: bool = False,
    ):
        super().__init__()
        self.input_size = int(input_size)
        self.use_highway = bool(use_highway)
        if self.use_highway:
            self.highway = Highway(self.input_size, num_layers=1)
        self.lin1 = nn.Linear(self.input_size, hidden_size)
        self.drop = nn.Dropout(drop_rate)
        self.lin2 = nn.Linear(hidden_size, n_classes)

    def forward(self, h: Tensor) -> Tensor:
        """``h`` [N, input_size] -> logits [N, C]."""
        if self.use_highway:
            h = self.highway(h)
        return self.lin2(self.drop(F.relu(self.lin1(h))))


__all__ = ["Classifier", "Highway"]
