"""Dialogues too long for the machine, refused before any work (issue 21).

The sequence context's attention grows with the square of a dialogue's length, and with
unbounded graph windows so do the graph's edges: one 10,000-utterance dialogue needs about
15 GiB for a one-layer transformer's training step, and the default four layers about 45
(:meth:`bridging.models.cogmen.COGMEN.memory_bytes`, measured in BENCHMARKS.md, "Long
dialogues"). Without a check, such a dialogue fails deep inside the allocator, or the
kernel kills the run. :func:`check_dialogue_memory` names the longest dialogue of each split
and the memory it needs, and refuses it when that exceeds what the machine has free (the
CPU's available memory within the process's cgroup limit and its address-space limit,
``ulimit -v``, or the CUDA device's free memory), saying what would make it fit.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

log = logging.getLogger(__name__)

GIB = 1024**3
#: warn when a dialogue needs more than this share of the free memory
WARN_SHARE = 0.5
#: where Linux tells the free memory and the process's cgroup (v2) and its limits
MEMINFO = "/proc/meminfo"
CGROUP_SELF = "/proc/self/cgroup"
CGROUP_ROOT = "/sys/fs/cgroup"
#: the process's own figures (VmSize: the address space it has mapped)
STATUS = "/proc/self/status"


def _meminfo_available() -> int | None:
    try:
        for line in Path(MEMINFO).read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_room() -> int | None:
    """What the process's cgroup (v2) still allows, None without a limit."""
    try:
        rel = Path(CGROUP_SELF).read_text().strip().split("::", 1)[1]
        base = Path(CGROUP_ROOT) / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((base / "memory.current").read_text().strip())
    except (OSError, ValueError, IndexError):
        return None


def _address_space_room() -> int | None:
    """What the process's address-space limit (``ulimit -v``, RLIMIT_AS) still allows: the
    limit less the address space already mapped (VmSize: torch's libraries alone map
    gigabytes); None without a limit."""
    import resource

    try:
        limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    except (OSError, ValueError):
        return None
    if limit == resource.RLIM_INFINITY:
        return None
    used = 0
    try:
        for line in Path(STATUS).read_text().splitlines():
            if line.startswith("VmSize:"):
                used = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return max(0, limit - used)


def free_memory(device: str = "cpu") -> tuple[int | None, str]:
    """(free memory for a run on ``device``, what bounds it: ``"free on cpu"``, or ``"free
    on cpu within the address-space limit (ulimit -v)"`` where that is smaller); None when
    unknown. ``BRIDGING_MEMORY_BYTES`` states it instead (a machine whose figures cannot be
    read, or a test)."""
    where = f"free on {device}"
    given = os.environ.get("BRIDGING_MEMORY_BYTES")
    if given:
        return int(given), where
    if str(device).startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            return int(torch.cuda.mem_get_info(torch.device(device))[0]), where
        return None, where
    sizes = [x for x in (_meminfo_available(), _cgroup_room()) if x is not None]
    room = _address_space_room()
    if room is not None and (not sizes or room < min(sizes)):
        return room, f"{where} within the address-space limit (ulimit -v)"
    return (min(sizes) if sizes else None), where


def available_bytes(device: str = "cpu") -> int | None:
    """Free memory for a run on ``device`` ("cpu" or "cuda[:k]"), None when unknown: the
    smallest of the available memory, the cgroup's room and the address-space limit's
    (:func:`free_memory`)."""
    return free_memory(device)[0]


def _gib(n: float) -> str:
    return f"{n / GIB:.1f} GiB"


def _remedy(model, n: int, training: bool, batch: int, need: int) -> str:
    """What would make a dialogue of ``n`` utterances fit, ``need`` bytes being the whole
    model's estimate for it."""
    if not training:  # a trained model is what it is: the data has to change
        return "split it into shorter dialogues, or run on a machine with more memory"
    fixes = ["split it into shorter dialogues"]
    if model.rnn.memory_bytes(n, training, batch) * 2 > need:
        if batch > 1:
            fixes.append("train with model.pad_mode=mask (no padding to its length)")
        fixes.append("use model.rnn=lstm (memory linear in the length)")
    elif model.wp == -1 or model.wf == -1:
        fixes.append("bound the graph windows (model.wp, model.wf)")
    return ", or ".join(fixes)


def check_dialogue_memory(models, datamodule, stages: dict, device: str = "cpu") -> None:
    """Refuse (a DataError naming the data, the dialogue, its length, the memory it needs
    and the memory free) a dialogue that cannot fit. ``models``: (COGMEN, training?) pairs
    whose peak for a dialogue is compared one at a time (a student's frozen teacher runs in
    its own pass); ``stages``: split name -> whether that split is trained on. Splits absent
    from the data are skipped. A dialogue needing more than half the free memory is a
    warning."""
    from bridging.data.records import DataError

    free, room = free_memory(device)
    where = datamodule.facts.path or datamodule.facts.source_format
    for split_name, split_trains in stages.items():
        if split_name not in datamodule.splits:
            continue
        split = datamodule.split(split_name)
        if not len(split):
            continue
        longest = int(split.lengths.argmax())
        n = int(split.lengths[longest])
        batch_size = datamodule.batch_size if split_trains else datamodule.eval_batch_size
        for model, trains in models:
            training = trains and split_trains
            padded = min(batch_size, len(split)) if model.rnn.pad_mode == "reference" else 1
            need = model.memory_bytes(n, training, padded)
            if free is None or need <= WARN_SHARE * free:
                continue
            doing = "a training step on it" if training else "evaluating it"
            what = (
                f"dialogue {split.ids[longest]!r} of split {split_name!r} ({n} utterances): "
                f"{doing} needs about {_gib(need)}, {_gib(free)} {room}"
            )
            if need > free:
                raise DataError(f"{where}: {what}: {_remedy(model, n, training, padded, need)}")
            log.warning("%s: %s: the run may run out of memory", where, what)


def check_memory(recipe, datamodule, device: str, training: bool, splits=None) -> None:
    """Refuse, before any work, a dialogue too long for the memory free on ``device``
    (:func:`check_dialogue_memory`): the recipe's model on the
    ``splits`` (default: train trained on when ``training``, dev and test evaluated), a
    student's frozen teacher evaluated on them too."""
    stages = dict.fromkeys(splits or ("dev", "test"), False)
    if training and splits is None:
        stages = {"train": True, **stages}
    models = [(recipe.model, training)]
    teacher = getattr(recipe, "teacher", None)
    if teacher is not None:
        models.append((teacher.model, False))
    check_dialogue_memory(models, datamodule, stages, device)


__all__ = ["available_bytes", "check_dialogue_memory", "check_memory", "free_memory"]
