"""Mixed precision inside the models (docs/precision.md): what must not run in 16 bits."""

from __future__ import annotations

from torch import Tensor


def widen(t: Tensor) -> Tensor:
    """``t`` in float32 when it is a 16-bit float (bfloat16 or float16, e.g. the output of a
    product under autocast); any other tensor (float32, float64, integers) as it is."""
    return t.float() if t.is_floating_point() and t.element_size() < 4 else t


__all__ = ["widen"]
