"""The numeric precision of training (``trainer.precision``; docs/precision.md).

- ``32-true``: float32 throughout;
- ``bf16-mixed``: float32 weights, optimiser and losses, the matrix products (linear maps,
  attention, the GNN's projections) under ``torch.autocast`` in bfloat16: CPU and CUDA;
- ``16-mixed``: the same in float16 with loss scaling: CUDA only;
- ``auto``: ``bf16-mixed`` where it pays, ``32-true`` elsewhere. Measured (BENCHMARKS.md,
  "Training precision"): a CPU with AMX tiles (Intel Xeon, Sapphire Rapids and later) trains
  the a+v teacher about 1.9x faster in bf16; a CUDA device with bf16 support (Ampere and
  later) has bf16 tensor cores; an AVX512-BF16 CPU without AMX (AMD EPYC Zen 4) gains 1.23x
  on the teacher but loses on the audio-only recipes (0.86x); an AVX2 CPU emulates bfloat16,
  3.4-10x slower. So ``auto`` is bf16-mixed on AMX and on CUDA with bf16, 32-true elsewhere.

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


#: torch's probe and the kernel's /proc/cpuinfo flag for each bfloat16 unit of a CPU
BF16_UNITS = {
    "AMX": ("_is_amx_tile_supported", "amx_bf16"),
    "BF16": ("_is_avx512_bf16_supported", "avx512_bf16"),
}
CPUINFO = "/proc/cpuinfo"


def _cpuinfo_flags() -> set[str] | None:
    """The CPU's flags as the kernel lists them, None where they cannot be read."""
    try:
        with open(CPUINFO) as f:
            return set(next((ln for ln in f if ln.startswith("flags")), "").split())
    except OSError:
        return None


@functools.cache
def cpu_bf16_units() -> frozenset[str]:
    """The CPU's bfloat16 units among ``AMX`` (AMX tiles) and ``BF16`` (AVX512-BF16).

    torch's own probes answer (``torch.cpu._is_amx_tile_supported``,
    ``_is_avx512_bf16_supported``: the CPU *and* what torch's kernels can use on it); the
    kernel's /proc/cpuinfo flags are read only for a probe this torch lacks, never to overrule
    one that answered."""
    units, flags = set(), None
    for unit, (probe, flag) in BF16_UNITS.items():
        ask = getattr(torch.cpu, probe, None)
        if ask is not None:
            if ask():
                units.add(unit)
            continue
        if flags is None:
            flags = _cpuinfo_flags() or set()
        if flag in flags:
            units.add(unit)
    return frozenset(units)


def cpu_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 products natively (AMX tiles or AVX512-BF16)."""
    return bool(cpu_bf16_units())


def cpu_bf16_pays() -> bool:
    """Whether ``auto`` trains in bf16 on this CPU: with AMX tiles only. AVX512-BF16 alone
    (AMD Zen 4) made the audio-only recipes slower than float32 (BENCHMARKS.md)."""
    return "AMX" in cpu_bf16_units()


def cpu_isa() -> str:
    """The CPU's instruction set as the figures name it: torch's kernel capability plus
    the bfloat16 units (``AVX2``, ``AVX512+BF16``, ``AVX512+AMX+BF16`` ...)."""
    isa = torch.backends.cpu.get_cpu_capability()
    units = cpu_bf16_units()
    return "+".join([isa, *(unit for unit in BF16_UNITS if unit in units)])


def training_device(accelerator) -> str:
    """``cuda`` or ``cpu``: where a Trainer with ``accelerator`` will train."""
    acc = str(accelerator or "auto").lower()
    if acc in ("gpu", "cuda"):
        return "cuda"
    if acc == "auto" and torch.cuda.is_available():
        return "cuda"
    return "cpu"


def machine_summary(device) -> dict:
    """Where a run trained, for its metrics.json: the device (``cpu`` or ``cuda:<name>``),
    the CPU's instruction set (:func:`cpu_isa`) and the torch version. float32 kernels of
    two instruction sets sum in other orders, so the same seed can train to other figures
    on another CPU (docs/synthetic.md); this records which one a figure came from."""
    device = torch.device(device)
    name = "cpu"
    if device.type == "cuda":
        name = f"cuda:{torch.cuda.get_device_name(device)}"
    return {"device": name, "cpu_isa": cpu_isa(), "torch": torch.__version__}


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
        pays = torch.cuda.is_bf16_supported() if device == "cuda" else cpu_bf16_pays()
        return "bf16-mixed" if pays else "32-true"
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
    "BF16_UNITS",
    "cpu_bf16_units",
    "cpu_native_bf16",
    "cpu_bf16_pays",
    "cpu_isa",
    "machine_summary",
    "training_device",
    "resolve_precision",
    "compute_dtype",
]
