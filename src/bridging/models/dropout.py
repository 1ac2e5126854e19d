"""Dropout with cheap random masks (docs/method.md 2.1, dropout masks).

torch's CPU ``bernoulli_`` (what ``F.dropout`` uses) draws one random number per element
from the serial generator, 11-15 ns per element on the development machine: about a
quarter of a training epoch's FLOP limit goes to drawing dropout masks. ``masks="lanes"``
(the default) draws 64-bit words from the *same* generator (``random_`` over the full int64
range) and uses each word as four 16-bit lanes, one per element: an element is kept when
its lane (read as a signed 16-bit integer) is below ``k - 32768``, ``k = round(keep *
65536)``, so the keep probability is ``k / 65536`` (dropout 0.1: 0.9000092) and kept values
are scaled by ``65536 / k``, which keeps the expectation exact. Forward and backward cost
about 4.5 ns per element instead of 10-13 (benchmarks/bench_flops.py --dropout).

The masks come from torch's generator, so a seed (and a resumed run's saved RNG state)
gives the same masks; they differ from ``F.dropout``'s for the same seed. ``masks="torch"``
is ``F.dropout`` itself, for bit-compatibility with runs made before.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor

DROPOUT_MASKS = ("lanes", "torch")

_LANES = 65536


def lane_keep_mask(shape: tuple[int, ...], p: float, device=None) -> tuple[Tensor, float]:
    """A bool keep mask of ``shape`` (each element kept with probability ``k / 65536``,
    ``k = round((1 - p) * 65536)``) and the scale ``65536 / k`` of kept elements."""
    n = math.prod(shape)
    k = round((1.0 - float(p)) * _LANES)
    if k <= 0:
        return torch.zeros(shape, dtype=torch.bool, device=device), 0.0
    words = torch.empty((n + 3) // 4, dtype=torch.int64, device=device)
    words.random_(-(2**63), None)  # full 64 random bits per word
    lanes = words.view(torch.int16)[:n].view(shape)
    return lanes < (k - _LANES // 2), _LANES / k


def dropout(x: Tensor, p: float, training: bool = True, masks: str = "lanes") -> Tensor:
    """Inverted dropout of ``x`` with rate ``p`` (identity unless ``training`` and p > 0)."""
    if not training or p <= 0.0:
        return x
    if masks == "torch":
        return F.dropout(x, p, True)
    if masks != "lanes":
        raise ValueError(f"unknown dropout masks {masks!r}: expected one of {DROPOUT_MASKS}")
    keep, scale = lane_keep_mask(tuple(x.shape), p, x.device)
    if x.dtype == torch.float32:
        return x * keep.to(x.dtype).mul_(scale)
    # lower precision (bf16 autocast): a mask holding the scale rounded to bfloat16 would
    # bias every kept value alike (65536 / k = 1.1111 becomes 1.1094, -0.16%); scaling by
    # the Python float rounds each product once instead, no bias in the expectation
    return (x * keep.to(x.dtype)).mul_(scale)


__all__ = ["DROPOUT_MASKS", "lane_keep_mask", "dropout"]
