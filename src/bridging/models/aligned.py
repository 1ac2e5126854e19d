"""``F.linear`` for CPU float32 with every matrix product written into row-aligned memory.

On the development machine's CPU BLAS (MKL on 2 AVX2 cores) a matrix product whose output
rows are not a multiple of 16 floats apart runs at about two thirds of the speed of an aligned
one: ``[977, 612] @ [612, 1836]`` (a transformer in-projection at d_model 612) 36.7 GFLOP/s
on one thread against 54.0 when the same product writes into rows 1,840 floats apart (see
``benchmarks/bench_flops.py --matmul``). COGMEN's a+v model has d_model 612 (and 1,836 for
the fused q/k/v projection), so 9 of the 12 products of each encoder layer (forward, input
gradient, weight gradient) have such outputs. :func:`aligned_linear` computes the same
products (same operands, same BLAS call) into buffers whose row stride is rounded up to a
multiple of :data:`ALIGN` and returns views of them: same values, no extra arithmetic.

Other devices and dtypes use ``F.linear`` unchanged, and so does a call under autocast
(``trainer.precision=bf16-mixed``): autocast then runs the product in bfloat16, which is
the point of mixed precision. The Function itself is autocast-aware
(``torch.amp.custom_fwd``/``custom_bwd`` with float32 inputs): applied directly under
autocast it computes in float32 with its backward under the same autocast state, never a
product of mixed dtypes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

#: row stride granularity of the outputs, in elements (16 float32 = 64 bytes, a cache line)
ALIGN = 16


def _mm_aligned(a: Tensor, b: Tensor, bias: Tensor | None = None) -> Tensor:
    """``bias + a @ b`` ([M, K] @ [K, N], operands of any strides) as an [M, N] view of an
    [M, N rounded up to ALIGN] buffer (contiguous when N is already a multiple)."""
    m, n = a.shape[0], b.shape[1]
    padded = -(-n // ALIGN) * ALIGN
    if padded == n:
        return a @ b if bias is None else torch.addmm(bias, a, b)
    out = a.new_empty(m, padded)[:, :n]
    if bias is None:
        torch.mm(a, b, out=out)
    else:
        torch.addmm(bias, a, b, out=out)
    return out


class _AlignedLinear(torch.autograd.Function):
    @staticmethod
    @torch.amp.custom_fwd(device_type="cpu", cast_inputs=torch.float32)
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return _mm_aligned(x, weight.t(), bias)

    @staticmethod
    @torch.amp.custom_bwd(device_type="cpu")
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        grad_x = grad_w = grad_b = None
        if ctx.needs_input_grad[0]:
            grad_x = _mm_aligned(grad, weight)  # [N, in]
        if ctx.needs_input_grad[1]:
            grad_w = _mm_aligned(grad.t(), x).contiguous()  # [out, in], the weight's layout
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(0)
        return grad_x, grad_w, grad_b


def aligned_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear(x, weight, bias)`` for a 2-D ``x`` [N, in]; on CPU float32 the forward and
    both gradient products write into row-aligned buffers (the result is a view, possibly
    not contiguous). Elsewhere, and under autocast, exactly ``F.linear``."""
    if x.device.type != "cpu" or x.dtype != torch.float32 or x.dim() != 2:
        return F.linear(x, weight, bias)
    if torch.is_autocast_enabled("cpu"):
        return F.linear(x, weight, bias)
    return _AlignedLinear.apply(x, weight, bias)


__all__ = ["aligned_linear", "ALIGN"]
