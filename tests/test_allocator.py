"""The C allocator setting (src/bridging/runs/allocator.py): with ``tuned`` a process that
allocates and frees the same large tensors again and again stops page-faulting them in;
with ``system`` (glibc's defaults) it faults them in every round. Each variant runs in a
fresh process, because the setting is process-wide and cannot be undone."""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

from bridging.runs.allocator import ALLOCATORS, TUNED, set_allocator

glibc = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
    reason="the settings are glibc's",
)

#: a batch's activations: 8 tensors allocated, touched and freed per round, their size
#: varying from round to round as batches of different dialogues do (a cycle of 6 sizes);
#: the minor page faults of each round
ROUNDS = r"""
import json, resource, sys
import torch
from bridging.runs.allocator import set_allocator
applied = set_allocator(sys.argv[1])
faults = []
for r in range(18):
    mib = (3, 9, 5, 12, 7, 4)[r % 6]
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    blocks = [torch.empty(mib * 256 * 1024).fill_(1.0) for _ in range(8)]
    del blocks
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({"applied": applied, "faults": faults}))
"""


def _rounds(mode: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", ROUNDS, mode], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


@glibc
def test_tuned_allocator_stops_page_faults_that_system_has_every_cycle():
    tuned, system = _rounds("tuned"), _rounds("system")
    assert tuned["applied"] == "tuned" and system["applied"] is None
    # rounds of the 2nd and 3rd cycles: every size has been allocated once before
    later_tuned, later_system = tuned["faults"][6:], system["faults"][6:]
    # glibc's defaults: the freed memory goes back to the kernel whenever a round's blocks
    # exceed what its adaptive thresholds keep (the 9 and 12 MiB rounds): faulted in again,
    # each cycle (a 12 MiB round is 8 x 3,072 pages)
    assert sum(later_system) > 10_000
    assert sum(later_system[:6]) > 5_000 and sum(later_system[6:]) > 5_000
    # tuned: the freed memory stays in the process and is reused
    assert sum(later_tuned) < 100


def test_unknown_allocator_is_refused_and_modes_are_listed():
    assert ALLOCATORS == ("tuned", "system")
    expected = r"allocator='jemalloc': expected one of \('tuned', 'system'\)"
    with pytest.raises(ValueError, match=expected):
        set_allocator("jemalloc")
    # system never changes anything, whatever ran before in this process
    assert set_allocator("system") in (None, "tuned")
    assert [name for _, _, name in TUNED] == ["M_MMAP_THRESHOLD", "M_TRIM_THRESHOLD", "M_TOP_PAD"]
