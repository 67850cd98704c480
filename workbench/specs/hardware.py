"""What this machine's CPU gives a job, read without TensorFlow (the page's checks and the CLI's use it):
the cores the job may really use, and whether the CPU computes bfloat16 fast.

    job_cores()               cores of the process's affinity mask, capped by a cgroup CPU quota
    fast_bf16()               the CPU has AVX-512 BF16 or AMX-BF16 (/proc/cpuinfo's flags)
    precision_warning(p, on_cpu)  a sentence when p is mixed_bfloat16 on a CPU without them, else ""
    run_warning(spec, gpu_count)  the same for a spec about to run here

Without those instructions TensorFlow emulates bfloat16 and `mixed_bfloat16` trained about 6x slower than
float32 on the project's 2-core AVX2 CPU (issue 25), so a run keeps float32 unless the user picks otherwise,
and picking it there is warned about at the form, on the command line and in the job's log.
"""

from __future__ import annotations

import math
import os
from functools import cache
from pathlib import Path
from typing import Any

BF16_FLAGS = ("avx512_bf16", "amx_bf16")
CPUINFO = Path("/proc/cpuinfo")
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_flags(cpuinfo: Path = CPUINFO) -> set[str]:
    """The CPU's feature flags (the first processor's `flags` line), empty where there is no cpuinfo."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return set(value.split())
    return set()


@cache
def fast_bf16() -> bool:
    """Whether this CPU has bfloat16 arithmetic in hardware (AVX-512 BF16 or AMX-BF16)."""
    return bool(cpu_flags() & set(BF16_FLAGS))


def precision_warning(precision: str, on_cpu: bool, has_fast_bf16: bool | None = None) -> str:
    """The warning for training in `precision` on this CPU (empty when there is nothing to say)."""
    fast = fast_bf16() if has_fast_bf16 is None else has_fast_bf16
    if precision != "mixed_bfloat16" or not on_cpu or fast:
        return ""
    return (
        "mixed_bfloat16 on this CPU is slow: it has neither AVX-512 BF16 nor AMX-BF16, so TensorFlow emulates "
        "bfloat16 (about 6x slower than float32 here); choose float32 unless you mean to test bfloat16"
    )


def run_warning(spec: Any, gpu_count: int) -> str:
    """`precision_warning` for a spec about to run on a machine with `gpu_count` GPUs (gpus 0: the CPU)."""
    return precision_warning(getattr(spec, "precision", "float32"), on_cpu=gpu_count == 0 or spec.gpus == 0)


def job_cores(cpu_max: Path = CGROUP_CPU_MAX) -> int:
    """The cores this process may run on: its affinity mask (`os.sched_getaffinity`, which taskset, Docker's
    --cpuset-cpus and Slurm set), capped by a cgroup v2 CPU quota (Docker's --cpus) where there is one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        quota, period = cpu_max.read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.ceil(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)
