"""The numeric precision of training (``trainer.precision``; docs/precision.md).

- ``32-true``: float32 throughout;
- ``bf16-mixed``: float32 weights, optimiser and losses, the matrix products (linear maps,
  attention, the GNN's projections) under ``torch.autocast`` in bfloat16: CPU and CUDA;
- ``16-mixed``: the same in float16 with loss scaling: CUDA only;
- ``auto``: ``bf16-mixed`` where the hardware computes bfloat16 natively (a CPU with AMX or
  AVX512-BF16, a CUDA device with bf16 support), ``32-true`` elsewhere (on an AVX2 CPU
  bfloat16 is emulated, slower than float32).

Training only: evaluation, prediction, import and export always run in float32, and so do
the validation and test at the end of a training run (its headline figures); checkpoints
hold float32 weights whatever the training precision.
"""

from __future__ import annotations

import functools

import torch

#: the values ``trainer.precision`` accepts (Lightning's names, and ``auto``)
PRECISIONS = ("auto", "32-true", "bf16-mixed", "16-mixed")
#: other spellings Lightning accepts for the same settings
ALIASES = {"32": "32-true", "bf16": "bf16-mixed", "16": "16-mixed"}


class PrecisionError(ValueError):
    """A ``trainer.precision`` that this machine or this project cannot train with."""


@functools.cache
def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 products natively (AMX tiles or AVX512-BF16)."""
    probes = ("_is_amx_tile_supported", "_is_avx512_bf16_supported")
    if any(getattr(torch.cpu, name, lambda: False)() for name in probes):
        return True
    try:  # older torch: the kernel's flags
        with open("/proc/cpuinfo") as f:
            flags = set(next((ln for ln in f if ln.startswith("flags")), "").split())
    except OSError:
        return False
    return bool(flags & {"amx_bf16", "avx512_bf16"})


def cpu_isa() -> str:
    """The CPU's instruction set as the figures name it: torch's kernel capability plus
    the bfloat16 units (``AVX2``, ``AVX512``, ``AVX512+AMX`` ...)."""
    isa = torch.backends.cpu.get_cpu_capability()
    probes = (("AMX", "_is_amx_tile_supported"), ("BF16", "_is_avx512_bf16_supported"))
    extras = [name for name, probe in probes if getattr(torch.cpu, probe, lambda: False)()]
    return "+".join([isa, *extras])


def training_device(accelerator) -> str:
    """``cuda`` or ``cpu``: where a Trainer with ``accelerator`` will train."""
    acc = str(accelerator or "auto").lower()
    if acc in ("gpu", "cuda"):
        return "cuda"
    if acc == "auto" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def resolve_precision(precision, accelerator="auto") -> str:
    """The Lightning precision to train with: ``precision`` as given (aliases to their
    names), ``auto`` decided by the device. A setting the device cannot run, or one this
    project does not support, is a :class:`PrecisionError` naming the accepted values."""
    value = ALIASES.get(str(precision), str(precision))
    if value not in PRECISIONS:
        raise PrecisionError(
            f"trainer.precision={precision!r}: expected one of {PRECISIONS} (true half "
            "precision would store half-precision weights; checkpoints hold float32)"
        )
    device = training_device(accelerator)
    if value == "auto":
        native = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_native_bf16()
        return "bf16-mixed" if native else "32-true"
    if value == "16-mixed" and device != "cuda":
        raise PrecisionError(
            f"trainer.precision=16-mixed: float16 autocast needs a CUDA device, training runs "
            f"on {device}; use bf16-mixed (or auto) on a CPU"
        )
    return value


def compute_dtype(precision: str) -> torch.dtype:
    """The dtype of the matrix products under a resolved precision."""
    return {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision, torch.float32)


__all__ = [
    "PRECISIONS",
    "PrecisionError",
    "cpu_native_bf16",
    "cpu_isa",
    "training_device",
    "resolve_precision",
    "compute_dtype",
]
