"""What a training run costs in floating-point work, and the machine's rate for it.

``recipe_epoch_flops(cfg)`` counts the FLOPs of one real training epoch of the configured
recipe (forward and backward of every training batch, under torch's ``FlopCounterMode``) and
of one pass over the dev split (forward); ``matmul_gflops(threads, dtype=...)`` measures the
matmul rate in the dtype of the training precision's products. Their quotient is an epoch's
*FLOP limit*: the time it could take if every operation ran at the matmul rate.
``bridging-reproduce`` prints the sum over its jobs as the estimate of a comparison;
benchmarks/bench_flops.py sets a whole-process epoch against it.
"""

from __future__ import annotations

import statistics
import time

import torch
from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count


def matmul_gflops(
    threads: int, n: int = 2048, repeat: int = 8, dtype: torch.dtype = torch.float32
) -> tuple[float, float]:
    """(best, median) GFLOP/s of an n x n matmul in ``dtype`` (the products' dtype of the
    training precision: bfloat16 under bf16-mixed) at ``threads`` torch threads."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(0)
        a = torch.randn(n, n, generator=gen).to(dtype)
        b = torch.randn(n, n, generator=gen).to(dtype)
        out = torch.empty(n, n, dtype=dtype)
        torch.mm(a, b, out=out)  # warm-up
        rates = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            torch.mm(a, b, out=out)
            rates.append(2 * n**3 / (time.perf_counter() - t0) / 1e9)
    finally:
        torch.set_num_threads(before)
    return max(rates), statistics.median(rates)


def _cpu_sdpa_formulas() -> dict:
    """FlopCounterMode has no formula for the CPU flash-attention kernels; count them as the
    other attention kernels are counted."""
    aten = torch.ops.aten
    mapping = {}
    fwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    bwd = getattr(aten, "_scaled_dot_product_flash_attention_for_cpu_backward", None)
    if fwd is not None:

        def fwd_flop(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs):
            return sdpa_flop_count(query_shape, key_shape, value_shape)

        mapping[fwd] = fwd_flop
    if bwd is not None:

        def bwd_flop(grad_out_shape, query_shape, key_shape, value_shape, *a, out_shape=None, **k):
            return sdpa_backward_flop_count(grad_out_shape, query_shape, key_shape, value_shape)

        mapping[bwd] = bwd_flop
    return mapping


def count_flops(fn) -> int:
    """FLOPs of ``fn()`` (torch's FlopCounterMode, CPU attention kernels included)."""
    with FlopCounterMode(display=False, custom_mapping=_cpu_sdpa_formulas()) as counter:
        fn()
    return int(counter.get_total_flops())


def flops_setup(cfg, datamodule=None):
    """``(datamodule, recipe)`` of ``cfg``, seeded and set up, to count FLOPs on."""
    import pytorch_lightning as pl

    from bridging.runs.train import build_datamodule, build_recipe

    pl.seed_everything(int(cfg.seed), workers=True, verbose=False)
    dm = datamodule or build_datamodule(cfg)
    dm.setup()
    return dm, build_recipe(cfg, dm.facts)


def train_step_flops(recipe, batch) -> int:
    """FLOPs of one training step of ``recipe`` on ``batch``: its losses' forward and
    backward, as the recipe performs them (no optimizer step)."""

    def step():
        recipe.zero_grad(set_to_none=True)
        recipe.training_losses(batch)["loss"].backward()

    return count_flops(step)


def recipe_epoch_flops(cfg, datamodule=None) -> dict:
    """FLOPs of one training epoch (forward + backward of every training batch, as the
    recipe performs them) and of one forward pass over the dev split. The student recipe
    needs a teacher: count it as its audio-only architecture (its teacher's outputs are
    cached, so a student epoch costs an audio-only epoch)."""
    dm, recipe = flops_setup(cfg, datamodule)
    recipe.train()
    train = sum(train_step_flops(recipe, batch) for batch in dm.train_dataloader())
    recipe.eval()
    with torch.no_grad():
        evals = sum(
            count_flops(lambda b=batch: recipe.eval_output(b)) for batch in dm.val_dataloader()
        )
    return {"train": train, "eval": evals}


__all__ = [
    "count_flops",
    "flops_setup",
    "matmul_gflops",
    "recipe_epoch_flops",
    "train_step_flops",
]
